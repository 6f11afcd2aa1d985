//! One task per room owns every peer connection of the room and the
//! forwarding state; a cloneable [`RoomHandle`] sends it commands, and
//! webrtc-rs callbacks only push events into its (unbounded) queue.
//!
//! By concern:
//! - this file: the handle, the room task and its command and event loop,
//!   peers joining and leaving;
//! - [`negotiation`]: offer/answer and ICE with each peer ([`Negotiation`]);
//! - [`forward`]: publishing, subscribing, the RTP fan-out and the RTCP
//!   way back;
//! - [`metrics`]: the room's and each peer's counters.

mod forward;
mod metrics;
mod negotiation;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protocol::{IceCandidate, SignalData};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

use self::forward::{Published, Subscription, TrackKey};
use self::negotiation::Negotiation;
use crate::config::{Ports, SfuConfig};
use crate::peer::{PcOptions, Transports, build_pc, candidate_to_wire};
use protocol::PeerId;

use crate::error::SfuError;

pub use self::forward::MAX_TRACKS_PER_PEER;
pub use self::metrics::{PeerMetrics, PeerSnapshot, RoomMetrics, RoomTotals};

enum Cmd {
    Signal(PeerId, SignalData),
    Leave(PeerId),
    Stats(oneshot::Sender<String>),
    OfferInFlight(PeerId, oneshot::Sender<bool>),
}

enum Ev {
    Track(PeerId, Arc<dyn TrackRemote>),
    Candidate(PeerId, IceCandidate),
    State(PeerId, RTCPeerConnectionState),
    KeyframeRequest(TrackKey),
}

/// Callback adapter: never holds the PC; only pushes into the room's unbounded event queue.
struct PeerEvents {
    peer: PeerId,
    tx: mpsc::UnboundedSender<Ev>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerEvents {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Some(c) = candidate_to_wire(&ev) {
            let _ = self.tx.send(Ev::Candidate(self.peer.clone(), c));
        }
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.tx.send(Ev::State(self.peer.clone(), s));
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(Ev::Track(self.peer.clone(), track));
    }
}

/// One peer of the room: its connection to the SFU and what flows on it.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    metrics: Arc<PeerMetrics>,
    negotiation: Negotiation,
    /// The browser's candidates that arrived before there was a remote description.
    pending_candidates: Vec<RTCIceCandidateInit>,
    /// The tracks this peer receives.
    subs: HashMap<TrackKey, Subscription>,
    /// Tracks added since the last completed negotiation: request keyframes when it completes.
    awaiting_keyframe: Vec<TrackKey>,
    /// Readers that discard refused tracks.
    drains: Vec<JoinHandle<()>>,
}

/// Commands to one room's task; cloneable. The room ends when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    tx: mpsc::Sender<Cmd>,
    pub metrics: Arc<RoomMetrics>,
}

impl RoomHandle {
    /// Queues a signal without waiting, in order; fails when the room's
    /// queue is full (a flooding peer) or the room is gone.
    pub fn try_signal(&self, from: PeerId, s: SignalData) -> Result<(), SfuError> {
        self.tx
            .try_send(Cmd::Signal(from, s))
            .map_err(|_| SfuError::Busy)
    }

    /// Removes a peer without waiting.
    pub fn try_leave(&self, peer: PeerId) -> Result<(), SfuError> {
        self.tx
            .try_send(Cmd::Leave(peer))
            .map_err(|_| SfuError::Busy)
    }

    pub async fn signal(&self, from: PeerId, s: SignalData) {
        let _ = self.tx.send(Cmd::Signal(from, s)).await;
    }
    pub async fn leave(&self, peer: PeerId) {
        let _ = self.tx.send(Cmd::Leave(peer)).await;
    }
    /// Whether the room's offer to `peer` awaits its answer.
    pub async fn offer_in_flight(&self, peer: &PeerId) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::OfferInFlight(peer.clone(), tx)).await;
        rx.await.unwrap_or(false)
    }
    pub async fn stats(&self) -> String {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }
}

/// Starts a room's task. What the room sends a peer (answers, offers, its
/// candidates) comes out of `out`, addressed to that peer.
pub fn spawn_room(cfg: SfuConfig, out: mpsc::UnboundedSender<(PeerId, SignalData)>) -> RoomHandle {
    let (tx, rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(RoomMetrics::default());
    let room = Room {
        ports: Ports::new(cfg.port_min, cfg.port_max),
        cfg,
        out,
        ev_tx,
        peers: HashMap::new(),
        published: HashMap::new(),
        metrics: metrics.clone(),
    };
    tokio::spawn(room.run(rx, ev_rx));
    RoomHandle { tx, metrics }
}

struct Room {
    cfg: SfuConfig,
    ports: Ports,
    out: mpsc::UnboundedSender<(PeerId, SignalData)>,
    ev_tx: mpsc::UnboundedSender<Ev>,
    peers: HashMap<PeerId, Peer>,
    published: HashMap<TrackKey, Published>,
    metrics: Arc<RoomMetrics>,
}

impl Room {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut evs: mpsc::UnboundedReceiver<Ev>) {
        // Backstop for payload types not yet readable right after an answer.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `evs` never closes (the room holds a sender for its callbacks):
            // the room ends when the last handle, hence `cmds`, is gone.
            let r = tokio::select! {
                c = cmds.recv() => match c {
                    Some(c) => self.on_cmd(c).await,
                    None => break,
                },
                Some(e) = evs.recv() => self.on_ev(e).await,
                _ = tick.tick() => {
                    self.resolve_late_payload_types().await;
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::warn!("sfu room: {e}");
            }
        }
        // Every handle is gone: close the connections and stop their tasks.
        let ids: Vec<PeerId> = self.peers.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.remove_peer(&id).await {
                tracing::debug!("sfu room shutdown: {e}");
            }
        }
    }

    async fn on_cmd(&mut self, c: Cmd) -> Result<(), SfuError> {
        match c {
            Cmd::Signal(peer, s) => self.on_signal(peer, s).await,
            Cmd::Leave(peer) => self.remove_peer(&peer).await,
            Cmd::OfferInFlight(peer, reply) => {
                let in_flight = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| p.negotiation.offer_in_flight());
                let _ = reply.send(in_flight);
                Ok(())
            }
            Cmd::Stats(reply) => {
                let mut s = String::new();
                for (id, p) in &self.peers {
                    let report = p
                        .pc
                        .get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
                        .await;
                    s.push_str(&format!(
                        "peer {id}: subs={} stats_entries={}\n",
                        p.subs.len(),
                        report.len()
                    ));
                }
                let _ = reply.send(s);
                Ok(())
            }
        }
    }

    async fn on_ev(&mut self, e: Ev) -> Result<(), SfuError> {
        match e {
            Ev::Candidate(peer, c) => {
                let _ = self
                    .out
                    .send((peer, SignalData::Candidate { candidate: Some(c) }));
            }
            Ev::State(peer, s) => {
                tracing::debug!(peer = %peer, "sfu: connection {s}");
                if s == RTCPeerConnectionState::Failed {
                    self.remove_peer(&peer).await?;
                }
                // A keyframe requested before the subscriber's DTLS is up is sent into the
                // void (seen: 2nd subscriber got 0 keyframes). Ask again once connected.
                if s == RTCPeerConnectionState::Connected {
                    let keys: Vec<TrackKey> = self
                        .peers
                        .get(&peer)
                        .map(|p| p.subs.keys().cloned().collect())
                        .unwrap_or_default();
                    for k in keys {
                        self.request_keyframe(&k, true).await;
                    }
                }
            }
            Ev::KeyframeRequest(k) => {
                self.metrics
                    .pli_from_subscribers
                    .fetch_add(1, Ordering::Relaxed);
                self.request_keyframe(&k, false).await;
            }
            Ev::Track(peer, track) => self.publish(peer, track).await?,
        }
        Ok(())
    }

    /// A new peer: its connection, on the next free port of the range.
    async fn add_peer(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        // 0.21: one socket per PC, a taken port fails build() with
        // "no udp_sockets or tcp_listeners available": try the next port.
        let span = self.ports.span();
        let mut built = None;
        for _ in 0..span {
            let port = self.ports.next();
            let handler = Arc::new(PeerEvents {
                peer: peer.clone(),
                tx: self.ev_tx.clone(),
            });
            let opts = PcOptions {
                ip: self.cfg.bind_ip,
                port,
                nat_1to1_ip: self.cfg.nat_1to1_ip.clone(),
                transports: if self.cfg.ice_tcp {
                    Transports::UdpAndTcp
                } else {
                    Transports::Udp
                },
            };
            match build_pc(&opts, handler, |r| r).await {
                Ok(pc) => {
                    built = Some(pc);
                    break;
                }
                Err(e) => tracing::debug!(port, "sfu: cannot bind: {e}"),
            }
        }
        let pc = built.ok_or(SfuError::NoPort)?;
        let metrics = self.metrics.add_peer(peer.clone());
        self.peers.insert(
            peer.clone(),
            Peer {
                pc,
                metrics,
                negotiation: Negotiation::default(),
                pending_candidates: vec![],
                subs: HashMap::new(),
                awaiting_keyframe: vec![],
                drains: vec![],
            },
        );
        Ok(())
    }

    async fn remove_peer(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.remove(peer) else {
            return Ok(());
        };
        self.metrics.remove_peer(peer);
        self.drop_subscriptions(peer, p.subs);
        p.drains.iter().for_each(|t| t.abort());
        let _ = p.pc.close().await;
        self.unpublish(peer).await;
        Ok(())
    }
}
