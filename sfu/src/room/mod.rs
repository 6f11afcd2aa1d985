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
//!
//! What a peer can make the room hold: one connection (and one port of the
//! server's [`PortPool`]) per peer, built only for an offer that passed
//! [`check_description`](crate::validate::check_description) and whose
//! [`PeerAllowance`] (the server's per-address count) agreed; released when
//! the peer leaves, says `bye`, its connection fails, its first offer cannot
//! be applied, or the room ends.

mod forward;
mod metrics;
mod negotiation;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::config::SfuConfig;
use crate::error::SfuError;
use crate::peer::{PcOptions, Transports, build_pc, candidate_to_wire};
use crate::ports::{PortLease, PortPool};
use protocol::PeerId;

pub use self::forward::MAX_TRACKS_PER_PEER;
pub(crate) use self::forward::{forwarded_track, rand_u32};
pub use self::metrics::{PeerMetrics, PeerSnapshot, RoomMetrics, RoomTotals, SINGLE_LAYER};

/// Signals queued to one room and not yet taken by its task; more are
/// refused ([`RoomHandle::try_signal`]). Leaves are never refused.
pub const SIGNAL_QUEUE: usize = 256;

/// What the owner of the SFU counts per peer connection, beyond the room
/// (the signaling server: connections per client address). The room calls
/// [`acquire`](PeerAllowance::acquire) before it builds a peer's connection
/// and [`release`](PeerAllowance::release) when that connection ends,
/// whatever the reason; one allowance stands for one peer of one room.
pub trait PeerAllowance: Send + Sync {
    /// Counts this peer's connection; `false`: refused (no connection is
    /// built). Must answer `true` while it is already counted.
    fn acquire(&self) -> bool;
    /// The connection is gone: uncount it (nothing if it was not counted).
    fn release(&self);
}

pub(crate) enum Cmd {
    /// A signal, with the sender's allowance (used if it brings a new connection).
    Signal(PeerId, SignalData, Option<Arc<dyn PeerAllowance>>),
    Leave(PeerId),
    /// A subscriber shows a publisher's camera this many device pixels tall.
    View(PeerId, PeerId, u16),
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
    /// The connection's port; back to the pool when the peer is dropped.
    _port: PortLease,
    /// Released when the peer is removed.
    allowance: Option<Arc<dyn PeerAllowance>>,
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
///
/// One ordered queue for signals and leaves, so a leave is never taken
/// before a signal the peer sent earlier (which could then build a
/// connection for a peer that is gone). It is unbounded so that a leave is
/// never refused; signals are bounded by a count instead ([`SIGNAL_QUEUE`]).
#[derive(Clone, Debug)]
pub struct RoomHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    /// Signals queued and not yet taken by the room task.
    queued: Arc<AtomicUsize>,
    pub metrics: Arc<RoomMetrics>,
    /// A room on the shard: its thread is woken for each command.
    waker: Option<Arc<crate::engine::Waker>>,
}

impl RoomHandle {
    /// The handle of a room on the shard's thread.
    pub(crate) fn on_shard(
        tx: mpsc::UnboundedSender<Cmd>,
        queued: Arc<AtomicUsize>,
        metrics: Arc<RoomMetrics>,
        waker: Arc<crate::engine::Waker>,
    ) -> Self {
        Self {
            tx,
            queued,
            metrics,
            waker: Some(waker),
        }
    }

    /// Queues a command and wakes whoever takes it.
    fn send(&self, cmd: Cmd) -> Result<(), mpsc::error::SendError<Cmd>> {
        self.tx.send(cmd)?;
        if let Some(w) = &self.waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues a signal without waiting, in order; fails when
    /// [`SIGNAL_QUEUE`] signals wait already (a flooding peer) or the room
    /// is gone. `allowance`: counted if this signal brings the peer a new
    /// connection (see [`PeerAllowance`]); `None`: nothing is counted.
    pub fn try_signal(
        &self,
        from: PeerId,
        s: SignalData,
        allowance: Option<Arc<dyn PeerAllowance>>,
    ) -> Result<(), SfuError> {
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < SIGNAL_QUEUE).then_some(n + 1)
            });
        if reserved.is_err() {
            return Err(SfuError::Busy);
        }
        self.send(Cmd::Signal(from, s, allowance)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            SfuError::Busy
        })
    }

    /// Removes a peer (closes its connection) without waiting; queued
    /// behind its earlier signals. Never refused while the room runs.
    pub fn try_leave(&self, peer: PeerId) -> Result<(), SfuError> {
        self.send(Cmd::Leave(peer)).map_err(|_| SfuError::Busy)
    }

    /// `viewer` shows `publisher`'s camera `height` device pixels tall: the
    /// simulcast layer it gets follows (the shard engine; one layer on the
    /// webrtc engine). Not counted against [`SIGNAL_QUEUE`]: it replaces no
    /// state that could pile up (each one sets the wish anew).
    pub fn try_view(&self, viewer: PeerId, publisher: PeerId, height: u16) -> Result<(), SfuError> {
        self.send(Cmd::View(viewer, publisher, height))
            .map_err(|_| SfuError::Busy)
    }

    /// Queues a signal, nothing counted (tests and bots); it may wait for
    /// room in the queue.
    pub async fn signal(&self, from: PeerId, s: SignalData) {
        while self.try_signal(from.clone(), s.clone(), None).is_err() && !self.tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    pub async fn leave(&self, peer: PeerId) {
        let _ = self.try_leave(peer);
    }
    /// Whether the room's offer to `peer` awaits its answer.
    pub async fn offer_in_flight(&self, peer: &PeerId) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.send(Cmd::OfferInFlight(peer.clone(), tx));
        rx.await.unwrap_or(false)
    }
    pub async fn stats(&self) -> String {
        let (tx, rx) = oneshot::channel();
        let _ = self.send(Cmd::Stats(tx));
        rx.await.unwrap_or_default()
    }
}

/// Starts a room's task, its connections on ports of `ports`. What the room
/// sends a peer (answers, offers, its candidates) comes out of `out`,
/// addressed to that peer. (Through [`crate::Sfu::spawn_room`], which
/// shares one pool among the rooms of a server.)
pub(crate) fn spawn_room(
    cfg: SfuConfig,
    ports: Arc<PortPool>,
    out: mpsc::UnboundedSender<(PeerId, SignalData)>,
) -> RoomHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(RoomMetrics::default());
    let room = Room {
        ports,
        queued: queued.clone(),
        cfg,
        out,
        ev_tx,
        peers: HashMap::new(),
        published: HashMap::new(),
        metrics: metrics.clone(),
    };
    tokio::spawn(room.run(rx, ev_rx));
    RoomHandle {
        tx,
        queued,
        metrics,
        waker: None,
    }
}

struct Room {
    cfg: SfuConfig,
    ports: Arc<PortPool>,
    /// Shared with the handles: signals queued and not yet taken.
    queued: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<(PeerId, SignalData)>,
    ev_tx: mpsc::UnboundedSender<Ev>,
    peers: HashMap<PeerId, Peer>,
    published: HashMap<TrackKey, Published>,
    metrics: Arc<RoomMetrics>,
}

impl Room {
    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        mut evs: mpsc::UnboundedReceiver<Ev>,
    ) {
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
            match r {
                Ok(()) => {}
                // What a peer sent, or the state it left its connection
                // in: its business, not the operator's (and a flood of
                // garbage must not flood the log).
                Err(e) if e.caused_by_peer() => tracing::debug!("sfu room: {e}"),
                Err(e) => tracing::warn!("sfu room: {e}"),
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
            Cmd::Signal(peer, s, allowance) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                self.on_signal(peer, s, allowance).await
            }
            Cmd::Leave(peer) => self.remove_peer(&peer).await,
            // One layer per track on this engine: nothing to choose.
            Cmd::View(..) => Ok(()),
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

    /// A new peer: its connection, on a free port of the pool, if its
    /// allowance agrees (released again if no connection can be built).
    async fn add_peer(
        &mut self,
        peer: &PeerId,
        allowance: Option<Arc<dyn PeerAllowance>>,
    ) -> Result<(), SfuError> {
        if let Some(a) = &allowance
            && !a.acquire()
        {
            return Err(SfuError::Refused);
        }
        let built = self.build_peer_connection(peer).await;
        let (pc, port) = match built {
            Ok(b) => b,
            Err(e) => {
                if let Some(a) = &allowance {
                    a.release();
                }
                return Err(e);
            }
        };
        let metrics = self.metrics.add_peer(peer.clone());
        self.peers.insert(
            peer.clone(),
            Peer {
                pc,
                _port: port,
                allowance,
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

    /// A connection on a port of the pool. The pool hands out ports that
    /// could be bound a moment ago; a build can still fail (another process
    /// took the port since), so a few are tried.
    async fn build_peer_connection(
        &mut self,
        peer: &PeerId,
    ) -> Result<(Arc<dyn PeerConnection>, PortLease), SfuError> {
        const BUILD_TRIES: usize = 3;
        let mut last = SfuError::NoPort;
        for _ in 0..BUILD_TRIES {
            let lease = self.ports.lease().ok_or(SfuError::NoPort)?;
            let port = lease.port();
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
                Ok(pc) => return Ok((pc, lease)),
                Err(e) => {
                    tracing::debug!(port, "sfu: cannot build a connection: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn remove_peer(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.remove(peer) else {
            return Ok(());
        };
        self.metrics.remove_peer(peer);
        self.drop_subscriptions(peer, p.subs);
        p.drains.iter().for_each(|t| t.abort());
        let _ = p.pc.close().await;
        if let Some(a) = &p.allowance {
            a.release();
        }
        self.unpublish(peer).await;
        Ok(())
    }
}
