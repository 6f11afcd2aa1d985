//! One task per room owns every peer connection of the room and the
//! forwarding state; a cloneable [`RoomHandle`] sends it commands, and
//! webrtc-rs callbacks only push events into its (unbounded) queue.
//!
//! Each published track has a reader task feeding a `broadcast` channel;
//! each subscription has its own forwarding task with its own receiver, so
//! a slow subscriber lags (and drops, counted) alone.
//!
//! Negotiation: the browser is the polite side of perfect negotiation, the
//! room the impolite one: a browser offer that collides with the room's own
//! pending offer is ignored (the browser rolls back and answers); changes
//! made while an offer is in flight are queued and re-offered after the answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::{IceCandidate, SignalData};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::config::{Ports, SfuConfig};
use crate::peer::{build_pc, candidate_from_wire, candidate_to_wire};
use crate::{PeerId, SfuError};

#[derive(Default, Debug)]
pub struct Metrics {
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub rtp_dropped_lagged: AtomicU64,
    pub rtp_write_err: AtomicU64,
    pub pli_from_subscribers: AtomicU64,
    pub pli_to_publishers: AtomicU64,
    pub pli_throttled: AtomicU64,
    pub offers_sent: AtomicU64,
    pub offers_ignored_glare: AtomicU64,
}

enum Cmd {
    Signal(PeerId, SignalData),
    Leave(PeerId),
    Stats(tokio::sync::oneshot::Sender<String>),
    OfferInFlight(PeerId, tokio::sync::oneshot::Sender<bool>),
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

type TrackKey = (PeerId, String); // (publisher, track id)

struct Published {
    remote: Arc<dyn TrackRemote>,
    media_ssrc: u32,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    tx: broadcast::Sender<rtp::Packet>,
    last_pli: Option<Instant>,
    reader: tokio::task::JoinHandle<()>,
}

struct Subscription {
    sender: Arc<dyn RtpSender>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Peer {
    pc: Arc<dyn PeerConnection>,
    offer_in_flight: bool,
    needs_renegotiation: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    subs: HashMap<TrackKey, Subscription>,
    /// tracks added since the last completed negotiation: request keyframes when it completes
    awaiting_keyframe: Vec<TrackKey>,
}

#[derive(Clone, Debug)]
pub struct RoomHandle {
    tx: mpsc::Sender<Cmd>,
    pub metrics: Arc<Metrics>,
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
    pub async fn offer_in_flight(&self, peer: &str) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Cmd::OfferInFlight(peer.to_string(), tx)).await;
        rx.await.unwrap_or(false)
    }
    pub async fn stats(&self) -> String {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Cmd::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }
}

pub fn spawn_room(cfg: SfuConfig, out: mpsc::UnboundedSender<(PeerId, SignalData)>) -> RoomHandle {
    let (tx, rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::default());
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
    metrics: Arc<Metrics>,
}

impl Room {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut evs: mpsc::UnboundedReceiver<Ev>) {
        loop {
            let r = tokio::select! {
                Some(c) = cmds.recv() => self.on_cmd(c).await,
                Some(e) = evs.recv() => self.on_ev(e).await,
                else => break,
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
                let _ = reply.send(self.peers.get(&peer).is_some_and(|p| p.offer_in_flight));
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

    async fn on_signal(&mut self, peer: PeerId, s: SignalData) -> Result<(), SfuError> {
        match s {
            SignalData::Offer { sdp: offer } => {
                if !self.peers.contains_key(&peer) {
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
                        match build_pc(
                            self.cfg.bind_ip,
                            port,
                            self.cfg.nat_1to1_ip.clone(),
                            handler,
                        )
                        .await
                        {
                            Ok(pc) => {
                                built = Some(pc);
                                break;
                            }
                            Err(e) => tracing::debug!(port, "sfu: cannot bind: {e}"),
                        }
                    }
                    let pc = built.ok_or(SfuError::NoPort)?;
                    self.peers.insert(
                        peer.clone(),
                        Peer {
                            pc,
                            offer_in_flight: false,
                            needs_renegotiation: false,
                            pending_candidates: vec![],
                            subs: HashMap::new(),
                            awaiting_keyframe: vec![],
                        },
                    );
                }
                let p = self.peers.get_mut(&peer).ok_or(SfuError::NoPeer)?;
                // Impolite side of perfect negotiation: ignore a colliding offer.
                if p.offer_in_flight || p.pc.signaling_state_is_not_stable().await {
                    self.metrics
                        .offers_ignored_glare
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                p.pc.set_remote_description(
                    RTCSessionDescription::offer(offer).map_err(SfuError::webrtc("offer"))?,
                )
                .await
                .map_err(SfuError::webrtc("apply offer"))?;
                for c in p.pending_candidates.drain(..) {
                    p.pc.add_ice_candidate(c)
                        .await
                        .map_err(SfuError::webrtc("candidate"))?;
                }
                let answer =
                    p.pc.create_answer(None)
                        .await
                        .map_err(SfuError::webrtc("create answer"))?;
                p.pc.set_local_description(answer.clone())
                    .await
                    .map_err(SfuError::webrtc("set answer"))?;
                let _ = self
                    .out
                    .send((peer.clone(), SignalData::Answer { sdp: answer.sdp }));
                // New peer: subscribe it to everything already published.
                let keys: Vec<TrackKey> = self
                    .published
                    .keys()
                    .filter(|k| k.0 != peer)
                    .cloned()
                    .collect();
                let mut added = false;
                for k in keys {
                    if !self
                        .peers
                        .get(&peer)
                        .is_some_and(|p| p.subs.contains_key(&k))
                    {
                        self.subscribe(&peer, k).await?;
                        added = true;
                    }
                }
                if added || self.peers.get(&peer).is_some_and(|p| p.needs_renegotiation) {
                    self.negotiate(&peer).await?;
                }
            }
            SignalData::Answer { sdp: answer } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return Ok(());
                };
                p.pc.set_remote_description(
                    RTCSessionDescription::answer(answer).map_err(SfuError::webrtc("answer"))?,
                )
                .await
                .map_err(SfuError::webrtc("apply answer"))?;
                p.offer_in_flight = false;
                for c in p.pending_candidates.drain(..) {
                    p.pc.add_ice_candidate(c)
                        .await
                        .map_err(SfuError::webrtc("candidate"))?;
                }
                let want_kf: Vec<TrackKey> = p.awaiting_keyframe.drain(..).collect();
                let again = std::mem::take(&mut p.needs_renegotiation);
                for k in want_kf {
                    self.request_keyframe(&k, true).await;
                }
                if again {
                    self.negotiate(&peer).await?;
                }
            }
            SignalData::Candidate { candidate: Some(c) } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return Ok(());
                };
                if p.pc.remote_description().await.is_none() {
                    p.pending_candidates.push(candidate_from_wire(c));
                } else {
                    p.pc.add_ice_candidate(candidate_from_wire(c))
                        .await
                        .map_err(SfuError::webrtc("candidate"))?;
                }
            }
            SignalData::Candidate { candidate: None } => {}
            SignalData::Bye => self.remove_peer(&peer).await?,
        }
        Ok(())
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
            Ev::Track(peer, track) => {
                if !self.peers.contains_key(&peer) {
                    return Ok(());
                }
                let Some(media_ssrc) = track.ssrcs().await.first().copied() else {
                    return Ok(());
                };
                let Some(codec) = track.codec(media_ssrc).await else {
                    return Ok(());
                };
                let kind = track.kind().await;
                let key: TrackKey = (peer.clone(), track.track_id().await);
                let (tx, _) = broadcast::channel(1024);
                let reader = {
                    let tx = tx.clone();
                    let track = track.clone();
                    let m = self.metrics.clone();
                    tokio::spawn(async move {
                        while let Some(ev) = track.poll().await {
                            match ev {
                                TrackRemoteEvent::OnRtpPacket(p) => {
                                    m.rtp_in.fetch_add(1, Ordering::Relaxed);
                                    let _ = tx.send(p);
                                }
                                TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                                _ => {}
                            }
                        }
                    })
                };
                tracing::debug!(peer = %peer, track = %key.1, codec = %codec.mime_type, media_ssrc, "sfu: publishing");
                self.published.insert(
                    key.clone(),
                    Published {
                        remote: track,
                        media_ssrc,
                        kind,
                        codec,
                        tx,
                        last_pli: None,
                        reader,
                    },
                );
                let others: Vec<PeerId> =
                    self.peers.keys().filter(|p| **p != peer).cloned().collect();
                for o in others {
                    self.subscribe(&o, key.clone()).await?;
                    self.negotiate(&o).await?;
                }
            }
        }
        Ok(())
    }

    /// Add one TrackLocalStaticRTP for `key` on `sub`'s PC, plus its forward + RTCP tasks.
    async fn subscribe(&mut self, sub: &PeerId, key: TrackKey) -> Result<(), SfuError> {
        let pubd = self.published.get(&key).ok_or(SfuError::NoTrack)?;
        let ssrc: u32 = rand_u32();
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            key.0.clone(),                  // stream id = publisher peer id
            format!("{}-{}", key.0, key.1), // track id, unique per room
            key.1.clone(),
            pubd.kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: pubd.codec.clone(),
                ..Default::default()
            }],
        )));
        let p = self.peers.get_mut(sub).ok_or(SfuError::NoPeer)?;
        let sender =
            p.pc.add_track(local.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(SfuError::webrtc("add track"))?;
        let mime = pubd.codec.mime_type.to_ascii_lowercase();
        // forward task: own broadcast receiver; a slow subscriber lags (drops) alone.
        let fwd = {
            let mut rx = pubd.tx.subscribe();
            let local = local.clone();
            let sender = sender.clone();
            let m = self.metrics.clone();
            tokio::spawn(async move {
                let mut pt: Option<u8> = None;
                loop {
                    let mut pkt = match rx.recv().await {
                        Ok(p) => p,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            m.rtp_dropped_lagged.fetch_add(n, Ordering::Relaxed);
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    };
                    if pt.is_none() {
                        // negotiated PT on THIS leg (empty until negotiation completes)
                        if let Ok(params) = sender.get_parameters().await {
                            pt = params
                                .rtp_parameters
                                .codecs
                                .iter()
                                .find(|c| c.rtp_codec.mime_type.to_ascii_lowercase() == mime)
                                .map(|c| c.payload_type);
                        }
                        if pt.is_none() {
                            continue;
                        }
                    }
                    pkt.header.ssrc = ssrc;
                    pkt.header.payload_type = pt.unwrap_or_default();
                    pkt.header.extension = false;
                    pkt.header.extensions.clear();
                    pkt.header.extensions_padding = 0;
                    match local.write_rtp(pkt).await {
                        Ok(()) => {
                            m.rtp_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            m.rtp_write_err.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        // RTCP task: subscriber PLI/FIR arrive on the local track (thanks to the interceptor).
        let rtcp = {
            let local = local.clone();
            let ev_tx = self.ev_tx.clone();
            let key = key.clone();
            tokio::spawn(async move {
                // poll() returns None until bound: wait for bind by retrying.
                loop {
                    match local.poll().await {
                        Some(TrackLocalEvent::OnRtcpPacket(_pkts)) => {
                            let _ = ev_tx.send(Ev::KeyframeRequest(key.clone()));
                        }
                        Some(_) => {}
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            })
        };
        p.subs.insert(
            key.clone(),
            Subscription {
                sender,
                tasks: vec![fwd, rtcp],
            },
        );
        p.awaiting_keyframe.push(key);
        Ok(())
    }

    async fn request_keyframe(&mut self, key: &TrackKey, force: bool) {
        let throttle = self.cfg.pli_throttle;
        let Some(pb) = self.published.get_mut(key) else {
            return;
        };
        if pb.kind != RtpCodecKind::Video {
            return;
        }
        let now = Instant::now();
        if !force
            && pb
                .last_pli
                .is_some_and(|t| now.duration_since(t) < throttle)
        {
            self.metrics.pli_throttled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pb.last_pli = Some(now);
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: pb.media_ssrc,
        };
        if pb.remote.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
            self.metrics
                .pli_to_publishers
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn negotiate(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Ok(());
        };
        if p.offer_in_flight || p.pc.signaling_state_is_not_stable().await {
            p.needs_renegotiation = true; // queued: re-run when the answer lands
            return Ok(());
        }
        let offer =
            p.pc.create_offer(None)
                .await
                .map_err(SfuError::webrtc("create offer"))?;
        p.pc.set_local_description(offer.clone())
            .await
            .map_err(SfuError::webrtc("set offer"))?;
        p.offer_in_flight = true;
        self.metrics.offers_sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .out
            .send((peer.clone(), SignalData::Offer { sdp: offer.sdp }));
        Ok(())
    }

    async fn remove_peer(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.remove(peer) else {
            return Ok(());
        };
        for (_, s) in p.subs {
            s.tasks.iter().for_each(|t| t.abort());
        }
        let _ = p.pc.close().await;
        let gone: Vec<TrackKey> = self
            .published
            .keys()
            .filter(|k| &k.0 == peer)
            .cloned()
            .collect();
        for k in gone {
            if let Some(pb) = self.published.remove(&k) {
                pb.reader.abort();
            }
            let subs: Vec<PeerId> = self.peers.keys().cloned().collect();
            for s in subs {
                let Some(sp) = self.peers.get_mut(&s) else {
                    continue;
                };
                if let Some(sub) = sp.subs.remove(&k) {
                    sub.tasks.iter().for_each(|t| t.abort());
                    sp.pc
                        .remove_track(&sub.sender)
                        .await
                        .map_err(SfuError::webrtc("remove track"))?;
                    self.negotiate(&s).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
trait SignalingStateExt {
    async fn signaling_state_is_not_stable(&self) -> bool;
}

#[async_trait::async_trait]
impl SignalingStateExt for Arc<dyn PeerConnection> {
    async fn signaling_state_is_not_stable(&self) -> bool {
        // No signaling_state() getter on the async trait: derive it from pending descriptions.
        self.pending_local_description().await.is_some()
            && self.pending_remote_description().await.is_none()
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() as u32) | 1
}
