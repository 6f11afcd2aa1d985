//! One webrtc-rs bot in an SFU room: a raw socket.io connection that joined
//! with `mode: "sfu"`, and a peer connection on 127.0.0.1 whose signals go
//! to `"sfu"` through `signal` events. The bot is the polite side of perfect
//! negotiation (it rolls back its own offer when the SFU's collides).
//!
//! A publisher sends synthetic VP8 (keyframes on PLI and periodically) and
//! Opus RTP at fixed packet rates; a subscriber counts the RTP of every
//! track it receives and detects loss from sequence-number gaps.
//! Negotiation uses `sfu::apply_as_polite`, as the SFU tests do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use protocol::SignalData;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde::Deserialize;
use sfu::{PcOptions, apply_as_polite, build_pc, candidate_to_wire};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::client::{ConnConfig, Shared, Stage, Target, Ws, establish, recv_text, send_text};
use crate::eio::{self, Packet};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const VIDEO_SSRC: u32 = 0x1111;
const AUDIO_SSRC: u32 = 0x2222;

/// Received RTP of one track, with RFC 3550 style loss accounting.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackStat {
    pub received: u64,
    /// Extended sequence number of the first packet (offset by 2^16 so
    /// that slightly older packets stay positive).
    first: Option<u64>,
    highest: u64,
    /// Sequence gaps seen (a jump of k counts k − 1).
    pub gap_packets: u64,
    /// Packets older than the highest seen (reordered or duplicated).
    pub late: u64,
}

impl TrackStat {
    fn on_packet(&mut self, seq: u16) {
        self.received += 1;
        let Some(_) = self.first else {
            let ext = u64::from(seq) + (1 << 16);
            self.first = Some(ext);
            self.highest = ext;
            return;
        };
        // Signed distance from the highest sequence number seen.
        #[allow(clippy::cast_possible_wrap)]
        let delta = i64::from(seq.wrapping_sub((self.highest & 0xffff) as u16) as i16);
        if delta > 0 {
            self.gap_packets += (delta - 1).unsigned_abs();
            self.highest += delta.unsigned_abs();
        } else {
            self.late += 1;
        }
    }

    /// Packets the sequence numbers say were sent since the first received.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest + 1 - f)
    }
}

/// Everything a bot counts; shared with its callbacks and tasks.
#[derive(Debug, Default)]
pub struct BotState {
    pub connected: AtomicBool,
    pub failed: AtomicBool,
    pub video: Mutex<TrackStat>,
    pub audio: Mutex<TrackStat>,
    pub keyframes_rx: AtomicU64,
    pub tracks: AtomicU64,
    pub offers_rx: AtomicU64,
    pub rollbacks: AtomicU64,
    /// Signals the bot could not apply, or `signal` acks that were errors.
    pub signal_errors: AtomicU64,
    pub first_signal_error: Mutex<Option<String>>,
    pub socket_closed: AtomicBool,
    // Publisher side.
    pub video_sent: AtomicU64,
    pub audio_sent: AtomicU64,
    pub write_errors: AtomicU64,
    pub keyframes_sent: AtomicU64,
    pub pli_rx: AtomicU64,
}

impl BotState {
    fn stat(&self, kind: RtpCodecKind) -> &Mutex<TrackStat> {
        if kind == RtpCodecKind::Video {
            &self.video
        } else {
            &self.audio
        }
    }

    /// (video, audio) counters now.
    pub fn snapshot(&self) -> (TrackStat, TrackStat) {
        let v = *self.video.lock().unwrap_or_else(PoisonError::into_inner);
        let a = *self.audio.lock().unwrap_or_else(PoisonError::into_inner);
        (v, a)
    }

    fn signal_error(&self, what: String) {
        self.signal_errors.fetch_add(1, Ordering::Relaxed);
        let mut f = self
            .first_signal_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if f.is_none() {
            *f = Some(what);
        }
    }
}

/// What the publisher sends.
#[derive(Debug, Clone, Copy)]
pub struct MediaSpec {
    pub video_pps: u32,
    pub video_bytes: usize,
    pub audio_pps: u32,
    pub audio_bytes: usize,
    pub keyframe_every: Duration,
}

/// A running bot.
pub struct Bot {
    pub name: String,
    pub pc: Arc<dyn PeerConnection>,
    pub st: Arc<BotState>,
}

impl Bot {
    /// Closes the peer connection, bounded.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.pc.close()).await;
    }
}

struct BotEvents {
    to_sfu: mpsc::UnboundedSender<SignalData>,
    st: Arc<BotState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for BotEvents {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Some(c) = candidate_to_wire(&ev) {
            let _ = self
                .to_sfu
                .send(SignalData::Candidate { candidate: Some(c) });
        }
    }

    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        match s {
            RTCPeerConnectionState::Connected => self.st.connected.store(true, Ordering::Relaxed),
            RTCPeerConnectionState::Failed => self.st.failed.store(true, Ordering::Relaxed),
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // Callbacks run on the connection's driver: count in a task of its own.
        let st = self.st.clone();
        tokio::spawn(async move {
            let kind = track.kind().await;
            st.tracks.fetch_add(1, Ordering::Relaxed);
            while let Some(ev) = track.poll().await {
                match ev {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        if kind == RtpCodecKind::Video
                            && p.payload.len() > 1
                            && p.payload[1] & 1 == 0
                        {
                            st.keyframes_rx.fetch_add(1, Ordering::Relaxed);
                        }
                        st.stat(kind)
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .on_packet(p.header.sequence_number);
                    }
                    TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                    _ => {}
                }
            }
        });
    }
}

#[derive(Deserialize)]
struct SignalIn {
    from: String,
    data: SignalData,
}

/// The bot's socket.io side: sends what the peer connection emits as
/// `signal` to `"sfu"`, hands `signal` from `"sfu"` to the inbox, answers
/// pings, until shutdown or the server closes the connection.
async fn socket_loop(
    mut ws: Ws,
    room: String,
    mut out: mpsc::UnboundedReceiver<SignalData>,
    inbox: mpsc::UnboundedSender<SignalData>,
    mut shutdown: watch::Receiver<bool>,
    st: Arc<BotState>,
) {
    let mut next_ack: u64 = 1;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            s = out.recv() => {
                let Some(s) = s else { break };
                let payload = serde_json::json!({"room": room, "to": protocol::SFU_PEER, "data": s});
                let text = eio::event(Some(next_ack), "signal", &payload.to_string());
                next_ack += 1;
                if let Err(e) = send_text(&mut ws, text).await {
                    st.signal_error(format!("sending signal: {e}"));
                    st.socket_closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
            msg = recv_text(&mut ws) => {
                let Ok(Some(text)) = msg else {
                    st.socket_closed.store(true, Ordering::Relaxed);
                    return;
                };
                match eio::parse(&text) {
                    Packet::Ping => {
                        let sent = send_text(&mut ws, eio::PONG).await;
                        if sent.is_err() {
                            st.socket_closed.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    Packet::Event(body) if body.starts_with(r#"["signal","#) => {
                        match serde_json::from_str::<(String, SignalIn)>(body) {
                            Ok((_, s)) if s.from == protocol::SFU_PEER => {
                                let _ = inbox.send(s.data);
                            }
                            Ok(_) => {}
                            Err(e) => st.signal_error(format!("bad signal event: {e}")),
                        }
                    }
                    Packet::Ack(_, body) if !body.contains(r#""ok":true"#) => {
                        st.signal_error(format!("signal ack {body}"));
                    }
                    Packet::Close | Packet::Disconnect => {
                        st.socket_closed.store(true, Ordering::Relaxed);
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// Applies the SFU's signals as the polite peer, counting offers and rollbacks.
async fn apply_signal(
    pc: &Arc<dyn PeerConnection>,
    to_sfu: &mpsc::UnboundedSender<SignalData>,
    st: &BotState,
    pending: &mut Vec<RTCIceCandidateInit>,
    s: SignalData,
) -> Result<()> {
    let applied = apply_as_polite(pc, pending, s, to_sfu).await?;
    if applied.offer.is_some() {
        st.offers_rx.fetch_add(1, Ordering::Relaxed);
    }
    if applied.rolled_back {
        st.rollbacks.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Where a bot connects and what it does.
pub struct BotSpec<'a> {
    pub target: &'a Target,
    pub shared: &'a Shared,
    pub room: &'a str,
    pub name: String,
    /// `Some` for the publisher.
    pub media: Option<MediaSpec>,
    pub join_timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// Joins the room, builds the peer connection and sends the first offer.
pub async fn start(spec: BotSpec<'_>) -> Result<Bot> {
    let cfg = ConnConfig {
        room: spec.room.to_owned(),
        name: spec.name.clone(),
        wait_connect: true,
        local_ip: None,
        join_timeout: spec.join_timeout,
        mode: Some("sfu"),
    };
    let mut stage = Stage::Tcp;
    let ws = tokio::time::timeout(
        spec.join_timeout,
        establish(&cfg, spec.target, spec.shared, Instant::now(), &mut stage),
    )
    .await
    .map_err(|_| anyhow!("{}: join timed out", spec.name))?
    .map_err(|f| anyhow!("{}: {} ({})", spec.name, f.kind, f.detail))?
    .ws;

    let st = Arc::new(BotState::default());
    let (to_sfu, out_rx) = mpsc::unbounded_channel::<SignalData>();
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<SignalData>();
    tokio::spawn(socket_loop(
        ws,
        spec.room.to_owned(),
        out_rx,
        in_tx,
        spec.shutdown.clone(),
        st.clone(),
    ));
    let handler = Arc::new(BotEvents {
        to_sfu: to_sfu.clone(),
        st: st.clone(),
    });
    let pc = build_pc(&PcOptions::client(LO), handler, |r| r)
        .await
        .with_context(|| format!("{}: building the peer connection", spec.name))?;
    if let Some(media) = spec.media {
        let video = add_local(&pc, RtpCodecKind::Video, "video/VP8", 90_000, 0, VIDEO_SSRC).await?;
        let audio = add_local(
            &pc,
            RtpCodecKind::Audio,
            "audio/opus",
            48_000,
            2,
            AUDIO_SSRC,
        )
        .await?;
        spawn_publisher(video, audio, media, st.clone(), spec.shutdown.clone());
    } else {
        // A subscriber needs something to offer: a data channel.
        pc.create_data_channel("ctl", None)
            .await
            .with_context(|| format!("{}: data channel", spec.name))?;
    }
    {
        let pc = pc.clone();
        let to_sfu = to_sfu.clone();
        let st = st.clone();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(s) = in_rx.recv().await {
                if let Err(e) = apply_signal(&pc, &to_sfu, &st, &mut pending, s).await {
                    st.signal_error(format!("applying an SFU signal: {e:#}"));
                }
            }
        });
    }
    let offer = pc.create_offer(None).await.context("create_offer")?;
    pc.set_local_description(offer.clone())
        .await
        .context("set_local_description")?;
    let _ = to_sfu.send(SignalData::Offer { sdp: offer.sdp });
    Ok(Bot {
        name: spec.name,
        pc,
        st,
    })
}

type Local = (Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>);

async fn add_local(
    pc: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
    ssrc: u32,
) -> Result<Local> {
    let t = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "bench-publisher".into(),
        format!("{mime}-track"),
        mime.into(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )));
    let s = pc
        .add_track(t.clone() as Arc<dyn TrackLocal>)
        .await
        .with_context(|| format!("add_track {mime}"))?;
    Ok((t, s))
}

/// The payload type negotiated on a sender leg (none before negotiation).
async fn negotiated_pt(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    sender
        .get_parameters()
        .await
        .ok()
        .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
}

fn interval(pps: u32) -> tokio::time::Interval {
    let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(pps.max(1))));
    // Keep the average rate: catch up after a stall.
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    i
}

/// Video and audio writers at fixed packet rates, plus a task that turns
/// the PLIs reaching the local video track into keyframes.
fn spawn_publisher(
    (video, vsender): Local,
    (audio, asender): Local,
    m: MediaSpec,
    st: Arc<BotState>,
    shutdown: watch::Receiver<bool>,
) {
    let want_kf = Arc::new(AtomicBool::new(true));
    {
        let video = video.clone();
        let want_kf = want_kf.clone();
        let st = st.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                match video.poll().await {
                    Some(TrackLocalEvent::OnRtcpPacket(pkts))
                        if pkts.iter().any(|p| sfu::is_keyframe_request(p.as_ref())) =>
                    {
                        st.pli_rx.fetch_add(1, Ordering::Relaxed);
                        want_kf.store(true, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    // Not bound yet: poll returns at once.
                    None => {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                            _ = shutdown.changed() => break,
                        }
                    }
                }
            }
        });
    }
    {
        let st = st.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = interval(m.video_pps);
            let mut seq: u16 = 0;
            let mut pt = None;
            let ts_step = 90_000 / m.video_pps.max(1);
            let mut last_kf = Instant::now();
            let mut payload = vec![0u8; m.video_bytes.max(3)];
            payload[0] = 0x10; // VP8 payload descriptor: S=1, partition 0
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => break,
                }
                if pt.is_none() {
                    pt = negotiated_pt(&vsender).await;
                    if pt.is_none() {
                        continue;
                    }
                }
                let kf =
                    want_kf.swap(false, Ordering::Relaxed) || last_kf.elapsed() >= m.keyframe_every;
                if kf {
                    last_kf = Instant::now();
                }
                // VP8 payload header, first byte: P bit (bit 0) clear = keyframe.
                payload[1] = u8::from(!kf);
                seq = seq.wrapping_add(1);
                let p = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        marker: true,
                        payload_type: pt.unwrap_or(96),
                        sequence_number: seq,
                        timestamp: u32::from(seq).wrapping_mul(ts_step),
                        ssrc: VIDEO_SSRC,
                        ..Default::default()
                    },
                    payload: payload.clone().into(),
                };
                if video.write_rtp(p).await.is_ok() {
                    st.video_sent.fetch_add(1, Ordering::Relaxed);
                    if kf {
                        st.keyframes_sent.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    st.write_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let mut shutdown = shutdown;
    tokio::spawn(async move {
        let mut tick = interval(m.audio_pps);
        let mut seq: u16 = 0;
        let mut pt = None;
        let ts_step = 48_000 / m.audio_pps.max(1);
        let payload = vec![0xfc_u8; m.audio_bytes.max(1)];
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if pt.is_none() {
                pt = negotiated_pt(&asender).await;
                if pt.is_none() {
                    continue;
                }
            }
            seq = seq.wrapping_add(1);
            let p = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type: pt.unwrap_or(111),
                    sequence_number: seq,
                    timestamp: u32::from(seq).wrapping_mul(ts_step),
                    ssrc: AUDIO_SSRC,
                    ..Default::default()
                },
                payload: payload.clone().into(),
            };
            if audio.write_rtp(p).await.is_ok() {
                st.audio_sent.fetch_add(1, Ordering::Relaxed);
            } else {
                st.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_from_sequence_gaps() {
        let mut t = TrackStat::default();
        assert_eq!(t.expected(), 0);
        for s in [65530_u16, 65531, 65533, 65534, 65535, 0, 1, 3] {
            t.on_packet(s);
        }
        // 65530..=3 is 10 packets; 65532 and 2 are missing.
        assert_eq!(t.expected(), 10);
        assert_eq!(t.received, 8);
        assert_eq!(t.gap_packets, 2);
        // A late 2 arrives: no longer lost.
        t.on_packet(2);
        assert_eq!(t.expected() - t.received, 1);
        assert_eq!(t.late, 1);
    }
}
