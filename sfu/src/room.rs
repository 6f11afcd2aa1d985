//! One task per room owns every peer connection of the room and the
//! forwarding state; a cloneable [`RoomHandle`] sends it commands, and
//! webrtc-rs callbacks only push events into its (unbounded) queue.
//!
//! Each published track has one reader task that writes every packet to
//! every subscriber's track at once, without waiting: a subscriber whose
//! connection cannot take the packet right now (its driver queue is full)
//! misses it alone, counted, and nobody else waits for it. (An earlier
//! version gave each subscription its own task fed by a `broadcast`
//! channel: one more task and one more wake-up per packet per subscriber,
//! for the same isolation.)
//!
//! Negotiation: the browser is the polite side of perfect negotiation, the
//! room the impolite one: a browser offer that collides with the room's own
//! pending offer is ignored (the browser rolls back and answers); changes
//! made while an offer is in flight are queued and re-offered after the answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use protocol::{IceCandidate, SignalData};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
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
use crate::peer::{PcOptions, Transports, build_pc, candidate_from_wire, candidate_to_wire};
use crate::{PeerId, SfuError};

#[derive(Default, Debug)]
pub struct Metrics {
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
    /// Packets a subscriber missed because its connection's queue was full.
    pub rtp_dropped_slow: AtomicU64,
    pub rtp_write_err: AtomicU64,
    pub pli_from_subscribers: AtomicU64,
    pub pli_to_publishers: AtomicU64,
    pub pli_throttled: AtomicU64,
    pub offers_sent: AtomicU64,
    pub offers_ignored_glare: AtomicU64,
    /// Tracks being forwarded now (a gauge).
    pub published_tracks: AtomicU64,
    /// Tracks not forwarded: their publisher had [`MAX_TRACKS_PER_PEER`] already.
    pub tracks_refused: AtomicU64,
    /// Per-peer counters, while the peer is in the room.
    pub peers: std::sync::Mutex<HashMap<PeerId, Arc<PeerMetrics>>>,
}

impl Metrics {
    /// A snapshot of the per-peer counters, sorted by peer id.
    pub fn peer_snapshot(&self) -> Vec<(PeerId, PeerSnapshot)> {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = peers
            .iter()
            .map(|(id, m)| (id.clone(), m.snapshot()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// One peer's media counters: what it published (in) and what it was sent (out).
#[derive(Default, Debug)]
pub struct PeerMetrics {
    pub rtp_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Publisher → SFU packets missing from the sequence numbers (before NACK repair).
    pub lost_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Packets this subscriber missed because its connection's queue was full.
    pub dropped_out: AtomicU64,
    /// SFU → subscriber packets lost as the subscriber reports them (RTCP receiver
    /// reports, cumulative, summed over the streams it receives), by SSRC.
    lost_out: std::sync::Mutex<HashMap<u32, u32>>,
}

/// [`PeerMetrics`] read at one instant.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub rtp_in: u64,
    pub bytes_in: u64,
    pub lost_in: u64,
    pub rtp_out: u64,
    pub bytes_out: u64,
    pub dropped_out: u64,
    pub lost_out: u64,
}

impl PeerMetrics {
    pub fn snapshot(&self) -> PeerSnapshot {
        let lost_out = self
            .lost_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|&v| u64::from(v))
            .sum();
        PeerSnapshot {
            rtp_in: self.rtp_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            lost_in: self.lost_in.load(Ordering::Relaxed),
            rtp_out: self.rtp_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            dropped_out: self.dropped_out.load(Ordering::Relaxed),
            lost_out,
        }
    }

    fn on_reception_reports(&self, reports: &[ReceptionReport]) {
        let mut m = self.lost_out.lock().unwrap_or_else(PoisonError::into_inner);
        for r in reports {
            m.insert(r.ssrc, r.total_lost);
        }
    }
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
    sinks: Sinks,
    last_pli: Option<Instant>,
    reader: tokio::task::JoinHandle<()>,
}

/// Every subscriber's copy of one published track. Locked by the reader
/// task for one packet's fan-out (no await inside) and by the room to add
/// or remove a subscriber.
type Sinks = Arc<Mutex<Vec<Arc<Sink>>>>;

/// Tracks one peer may publish: microphone, camera, and room for a screen
/// share with its audio.
pub const MAX_TRACKS_PER_PEER: usize = 4;

/// Payload type not known yet: the subscriber has not answered.
const PT_UNKNOWN: u32 = u32::MAX;

/// One subscriber's copy of one published track.
struct Sink {
    subscriber: PeerId,
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// The payload type negotiated on the subscriber's connection, or [`PT_UNKNOWN`].
    pt: std::sync::atomic::AtomicU32,
    metrics: Arc<PeerMetrics>,
}

struct Subscription {
    sender: Arc<dyn RtpSender>,
    sink: Arc<Sink>,
    /// The publisher's codec, to find its payload type on this connection.
    codec: RTCRtpCodec,
    rtcp_task: tokio::task::JoinHandle<()>,
}

struct Peer {
    pc: Arc<dyn PeerConnection>,
    metrics: Arc<PeerMetrics>,
    offer_in_flight: bool,
    needs_renegotiation: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    subs: HashMap<TrackKey, Subscription>,
    /// tracks added since the last completed negotiation: request keyframes when it completes
    awaiting_keyframe: Vec<TrackKey>,
    /// readers that discard refused tracks
    drains: Vec<tokio::task::JoinHandle<()>>,
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
                    let mut late = Vec::new();
                    for p in self.peers.values() {
                        if p.subs.values().any(|s| s.sink.pt.load(Ordering::Relaxed) == PT_UNKNOWN) {
                            late.extend(resolve_payload_types(p).await);
                        }
                    }
                    // The keyframe requested at the answer went nowhere for these.
                    for k in late {
                        self.request_keyframe(&k, true).await;
                    }
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
                    let metrics = Arc::new(PeerMetrics::default());
                    self.metrics
                        .peers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(peer.clone(), metrics.clone());
                    self.peers.insert(
                        peer.clone(),
                        Peer {
                            pc,
                            metrics,
                            offer_in_flight: false,
                            needs_renegotiation: false,
                            pending_candidates: vec![],
                            subs: HashMap::new(),
                            awaiting_keyframe: vec![],
                            drains: vec![],
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
                let _ = resolve_payload_types(p).await;
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
                let already = self.published.keys().filter(|k| k.0 == peer).count();
                if already >= MAX_TRACKS_PER_PEER || self.published.contains_key(&key) {
                    // Every track is sent to every other peer: a peer may not multiply
                    // that. The track is still read (and dropped) so that its queue in
                    // webrtc-rs does not fill and log an error per packet.
                    self.metrics.tracks_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = %peer, track = %key.1, "sfu: track refused, {already} already published");
                    let drain = tokio::spawn(async move { while track.poll().await.is_some() {} });
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.drains.push(drain);
                    }
                    return Ok(());
                }
                let sinks: Sinks = Arc::default();
                let publisher_metrics = self.peers.get(&peer).map(|p| p.metrics.clone());
                let reader = tokio::spawn(read_and_forward(
                    track.clone(),
                    sinks.clone(),
                    self.metrics.clone(),
                    publisher_metrics.unwrap_or_default(),
                ));
                tracing::debug!(peer = %peer, track = %key.1, codec = %codec.mime_type, media_ssrc, "sfu: publishing");
                self.metrics
                    .published_tracks
                    .fetch_add(1, Ordering::Relaxed);
                self.published.insert(
                    key.clone(),
                    Published {
                        remote: track,
                        media_ssrc,
                        kind,
                        codec,
                        sinks,
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

    /// Add one TrackLocalStaticRTP for `key` on `sub`'s PC, its sink in the
    /// publisher's fan-out, and a task reading the subscriber's RTCP for it.
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
        let sink = Arc::new(Sink {
            subscriber: sub.clone(),
            local: local.clone(),
            ssrc,
            pt: std::sync::atomic::AtomicU32::new(PT_UNKNOWN),
            metrics: p.metrics.clone(),
        });
        pubd.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sink.clone());
        // RTCP task: subscriber PLI/FIR and reception reports arrive on the local
        // track (the interceptor delivers them to the application).
        let rtcp_task = {
            let ev_tx = self.ev_tx.clone();
            let key = key.clone();
            let metrics = p.metrics.clone();
            tokio::spawn(async move {
                // poll() returns None until bound: wait for bind by retrying.
                loop {
                    match local.poll().await {
                        Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                            let mut keyframe = false;
                            for pkt in &pkts {
                                let any = pkt.as_any();
                                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                                    metrics.on_reception_reports(&rr.reports);
                                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                                    metrics.on_reception_reports(&sr.reports);
                                } else if crate::is_keyframe_request(pkt.as_ref()) {
                                    keyframe = true;
                                }
                            }
                            if keyframe {
                                let _ = ev_tx.send(Ev::KeyframeRequest(key.clone()));
                            }
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
                sink,
                codec: pubd.codec.clone(),
                rtcp_task,
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
        self.metrics
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(peer);
        // Its subscriptions: out of every publisher's fan-out.
        for (key, s) in p.subs {
            s.rtcp_task.abort();
            if let Some(pb) = self.published.get(&key) {
                pb.sinks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|k| &k.subscriber != peer);
            }
        }
        p.drains.iter().for_each(|t| t.abort());
        let _ = p.pc.close().await;
        // Its publications: off every subscriber's connection. An error on one
        // subscriber is logged and the cleanup goes on.
        let gone: Vec<TrackKey> = self
            .published
            .keys()
            .filter(|k| &k.0 == peer)
            .cloned()
            .collect();
        for k in gone {
            if let Some(pb) = self.published.remove(&k) {
                pb.reader.abort();
                self.metrics
                    .published_tracks
                    .fetch_sub(1, Ordering::Relaxed);
            }
            let subs: Vec<PeerId> = self.peers.keys().cloned().collect();
            for s in subs {
                let Some(sp) = self.peers.get_mut(&s) else {
                    continue;
                };
                if let Some(sub) = sp.subs.remove(&k) {
                    sub.rtcp_task.abort();
                    if let Err(e) = sp.pc.remove_track(&sub.sender).await {
                        tracing::warn!(peer = %s, "sfu: remove track: {e}");
                    }
                    if let Err(e) = self.negotiate(&s).await {
                        tracing::warn!(peer = %s, "sfu: renegotiate after a leave: {e}");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Learns the payload type each new subscription was given on `p`'s
/// connection (known once the subscriber has answered); returns the tracks
/// resolved by this call.
async fn resolve_payload_types(p: &Peer) -> Vec<TrackKey> {
    let mut resolved = Vec::new();
    for (key, sub) in &p.subs {
        if sub.sink.pt.load(Ordering::Relaxed) != PT_UNKNOWN {
            continue;
        }
        let Ok(params) = sub.sender.get_parameters().await else {
            continue;
        };
        // Same codec and parameters (H.264 comes in several profiles and
        // packetization modes, each its own payload type), else same codec.
        let codecs = &params.rtp_parameters.codecs;
        let same_mime = |c: &&RTCRtpCodecParameters| {
            c.rtp_codec
                .mime_type
                .eq_ignore_ascii_case(&sub.codec.mime_type)
        };
        if let Some(c) = codecs
            .iter()
            .filter(same_mime)
            .find(|c| c.rtp_codec.sdp_fmtp_line == sub.codec.sdp_fmtp_line)
            .or_else(|| codecs.iter().find(same_mime))
        {
            sub.sink
                .pt
                .store(u32::from(c.payload_type), Ordering::Relaxed);
            resolved.push(key.clone());
        }
    }
    resolved
}

/// The reader of one published track: counts what arrives and writes each
/// packet to every subscriber at once.
async fn read_and_forward(
    track: Arc<dyn TrackRemote>,
    sinks: Sinks,
    room: Arc<Metrics>,
    publisher: Arc<PeerMetrics>,
) {
    let mut highest: Option<u16> = None;
    while let Some(ev) = track.poll().await {
        let pkt = match ev {
            TrackRemoteEvent::OnRtpPacket(p) => p,
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => continue,
        };
        room.rtp_in.fetch_add(1, Ordering::Relaxed);
        publisher.rtp_in.fetch_add(1, Ordering::Relaxed);
        publisher
            .bytes_in
            .fetch_add(pkt.payload.len() as u64, Ordering::Relaxed);
        let seq = pkt.header.sequence_number;
        match highest {
            None => highest = Some(seq),
            Some(h) => {
                let delta = seq.wrapping_sub(h);
                if delta != 0 && delta < 0x8000 {
                    // ahead: a jump of k means k - 1 missing (a late packet is not counted again)
                    publisher
                        .lost_in
                        .fetch_add(u64::from(delta - 1), Ordering::Relaxed);
                    highest = Some(seq);
                }
            }
        }
        let sinks = sinks.lock().unwrap_or_else(PoisonError::into_inner);
        for sink in sinks.iter() {
            forward(sink, &pkt, &room);
        }
    }
}

/// Writes one packet to one subscriber without waiting: the subscriber's SSRC
/// and payload type, no header extensions (their ids are not negotiated on
/// this leg). A full queue drops the packet for this subscriber only.
fn forward(sink: &Sink, pkt: &rtp::Packet, room: &Metrics) {
    let pt = sink.pt.load(Ordering::Relaxed);
    let Ok(pt) = u8::try_from(pt) else {
        return; // not negotiated yet
    };
    let out = rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            padding: pkt.header.padding,
            marker: pkt.header.marker,
            payload_type: pt,
            sequence_number: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            ssrc: sink.ssrc,
            csrc: pkt.header.csrc.clone(),
            ..Default::default()
        },
        payload: pkt.payload.clone(),
    };
    let bytes = out.payload.len() as u64;
    // One poll: Ready unless the connection's queue is full. `unconstrained`
    // keeps tokio's cooperative budget from failing sends that are ready
    // (one packet fans out to more subscribers than the budget's 128).
    match tokio::task::unconstrained(sink.local.write_rtp(out)).now_or_never() {
        Some(Ok(())) => {
            room.rtp_out.fetch_add(1, Ordering::Relaxed);
            sink.metrics.rtp_out.fetch_add(1, Ordering::Relaxed);
            sink.metrics.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
        Some(Err(_)) => {
            room.rtp_write_err.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            room.rtp_dropped_slow.fetch_add(1, Ordering::Relaxed);
            sink.metrics.dropped_out.fetch_add(1, Ordering::Relaxed);
        }
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
