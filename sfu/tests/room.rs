//! In-process tests: webrtc-rs publishers and subscribers (standing in for
//! browsers, the polite side) against one SFU room on 127.0.0.1. Signals
//! go through their PROTOCOL.md JSON form, as the signaling server relays them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::SignalData;
use rtc::interceptor::{Interceptor, Packet, Slot, TaggedPacket};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use sfu::{
    PcOptions, PeerId, ReadFilter, RoomHandle, Sfu, SfuConfig, SfuEngine, Transports,
    apply_as_polite, build_pc, candidate_to_wire,
};
use tokio::sync::mpsc;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ───────────── signaling router: room out -> JSON -> client inbox ─────────────

type Inboxes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<SignalData>>>>;

fn spawn_router(mut out: mpsc::UnboundedReceiver<(PeerId, SignalData)>, inboxes: Inboxes) {
    tokio::spawn(async move {
        while let Some((to, s)) = out.recv().await {
            // PROTOCOL.md wire shape round trip: {"room","from":"sfu","data":SIGNAL}
            let wire = serde_json::json!({"room": "r", "from": "sfu", "data": s});
            let text = wire.to_string();
            let back: serde_json::Value = serde_json::from_str(&text).expect("json");
            let s: SignalData = serde_json::from_value(back["data"].clone()).expect("signal");
            if let Some(tx) = inboxes.lock().expect("lock").get(to.as_str()) {
                let _ = tx.send(s);
            }
        }
    });
}

// ───────────── client (stands in for the browser: polite side) ─────────────

#[derive(Default)]
struct Counters {
    video_rx: AtomicU64,
    audio_rx: AtomicU64,
    keyframes_rx: AtomicU64,
    tracks_opened: AtomicU64,
    tracks_ended: AtomicU64,
    pli_rx: AtomicU64, // publisher side: PLIs that reached our local video track
    connected: AtomicBool,
    first_candidate_json: Mutex<Option<String>>,
    offers_rx: AtomicU64,
    rollbacks: AtomicU64,
    hold_inbox: AtomicBool,
    last_offer: Mutex<String>,
    /// Distinct video sequence numbers the application received.
    video_seqs: Mutex<std::collections::HashSet<u16>>,
    /// Codec of the first video track received.
    video_mime: Mutex<Option<String>>,
}

/// How a test client behaves.
#[derive(Clone, Default)]
struct Opts {
    /// Publish video + audio (else only a data channel, to have something to offer).
    publish: bool,
    /// Video codec to publish: "video/VP8" (default) or "video/H264".
    video_mime: Option<&'static str>,
    /// Send one PLI after this many video packets.
    send_pli_after: Option<u64>,
    /// Never read the received tracks (a stalled application).
    stalled: bool,
    /// Drop every n-th new inbound video packet before the NACK generator sees it.
    drop_every: Option<u64>,
    transports: Transports,
}

impl Opts {
    fn publisher() -> Self {
        Self {
            publish: true,
            ..Self::default()
        }
    }
    fn subscriber() -> Self {
        Self::default()
    }
}

struct ClientEvents {
    tx: mpsc::UnboundedSender<SignalData>, // to SFU
    c: Arc<Counters>,
    send_pli_after: Option<u64>,
    stalled: bool,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ClientEvents {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Some(c) = candidate_to_wire(&ev) {
            let mut f = self.c.first_candidate_json.lock().expect("lock");
            if f.is_none() {
                // also record what webrtc-rs's own to_json() looks like
                let raw = serde_json::to_string(&ev.candidate.to_json().expect("json")).expect("s");
                *f = Some(format!(
                    "to_json()={raw} | wire={}",
                    serde_json::to_string(&c).expect("s")
                ));
            }
            let _ = self.tx.send(SignalData::Candidate { candidate: Some(c) });
        }
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        if s == RTCPeerConnectionState::Connected {
            self.c.connected.store(true, Ordering::SeqCst);
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.stalled {
            // Hold the track and never read it: its queue in webrtc-rs fills up.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(track);
            });
            return;
        }
        let c = self.c.clone();
        let send_pli_after = self.send_pli_after;
        tokio::spawn(async move {
            let kind = track.kind().await;
            let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
            if kind == RtpCodecKind::Video
                && let Some(codec) = track.codec(ssrc).await
            {
                c.video_mime
                    .lock()
                    .expect("l")
                    .get_or_insert(codec.mime_type);
            }
            let mut n = 0u64;
            while let Some(ev) = track.poll().await {
                match ev {
                    TrackRemoteEvent::OnOpen(_) => {
                        c.tracks_opened.fetch_add(1, Ordering::SeqCst);
                    }
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        n += 1;
                        if kind == RtpCodecKind::Video {
                            c.video_rx.fetch_add(1, Ordering::SeqCst);
                            c.video_seqs
                                .lock()
                                .expect("l")
                                .insert(p.header.sequence_number);
                            if is_keyframe(&p.payload) {
                                c.keyframes_rx.fetch_add(1, Ordering::SeqCst);
                            }
                            if Some(n) == send_pli_after {
                                let pli = PictureLossIndication {
                                    sender_ssrc: 0,
                                    media_ssrc: ssrc,
                                };
                                track.write_rtcp(vec![Box::new(pli)]).await.expect("pli");
                            }
                        } else {
                            c.audio_rx.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => {
                        c.tracks_ended.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    _ => {}
                }
            }
        });
    }
}

/// Drops every n-th video packet the first time its sequence number is seen
/// (a lossy link), so the NACK generator above it asks the SFU again.
fn dropper(every: u64, dropped: Arc<Mutex<Vec<u16>>>) -> impl Interceptor {
    let mut seen = 0u64;
    let mut video_pt: Option<u8> = None;
    let mut first_copies = std::collections::HashSet::new();
    ReadFilter::new(move |msg: &mut TaggedPacket| {
        let Packet::Rtp(p) = &msg.message.packet else {
            return true;
        };
        if p.header.payload_type == OPUS_PT || p.payload.is_empty() {
            return true;
        }
        // the first non-audio payload type is the video codec (RTX has its own)
        let pt = *video_pt.get_or_insert(p.header.payload_type);
        let seq = p.header.sequence_number;
        if pt == p.header.payload_type && first_copies.insert(seq) {
            seen += 1;
            if seen.is_multiple_of(every) {
                dropped.lock().expect("l").push(seq);
                return false;
            }
        }
        true
    })
}

const OPUS_PT: u8 = 111; // webrtc-rs default

struct Client {
    id: PeerId,
    pc: Arc<dyn PeerConnection>,
    c: Arc<Counters>,
    to_sfu: mpsc::UnboundedSender<SignalData>,
    /// Video sequence numbers the Dropper threw away (first copies only).
    dropped: Arc<Mutex<Vec<u16>>>,
}

async fn client(room: &RoomHandle, inboxes: &Inboxes, id: &str, opts: Opts) -> Client {
    let c = Arc::new(Counters::default());
    let (to_sfu_tx, mut to_sfu_rx) = mpsc::unbounded_channel::<SignalData>();
    let handler = Arc::new(ClientEvents {
        tx: to_sfu_tx.clone(),
        c: c.clone(),
        send_pli_after: opts.send_pli_after,
        stalled: opts.stalled,
    });
    let pc_opts = PcOptions {
        transports: opts.transports,
        ..PcOptions::client(LO)
    };
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let drop_every = opts.drop_every;
    let d = dropped.clone();
    let pc = build_pc(&pc_opts, handler, move |r| match drop_every {
        // wire-most: before the NACK generator (7 000) and the receiver report (10 000)
        Some(n) => r.with(Slot::from(500), dropper(n, d)),
        None => r,
    })
    .await
    .expect("client pc");
    {
        let room = room.clone();
        let id = PeerId::from(id.to_owned());
        tokio::spawn(async move {
            while let Some(s) = to_sfu_rx.recv().await {
                room.signal(id.clone(), s).await;
            }
        });
    }
    if opts.publish {
        let mime = opts.video_mime.unwrap_or("video/VP8");
        let video = add_local(&pc, RtpCodecKind::Video, mime, 90000, 0, 0x1111).await;
        let audio = add_local(&pc, RtpCodecKind::Audio, "audio/opus", 48000, 2, 0x2222).await;
        spawn_media_writer(pc.clone(), video, audio, c.clone()).await;
    } else {
        // the subscriber needs *something* to offer: a data channel
        pc.create_data_channel("ctl", None).await.expect("dc");
    }
    // inbox from SFU: polite side
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<SignalData>();
    inboxes.lock().expect("lock").insert(id.to_string(), in_tx);
    {
        let pc = pc.clone();
        let to_sfu = to_sfu_tx.clone();
        let c2 = c.clone();
        tokio::spawn(async move {
            let mut pending: Vec<RTCIceCandidateInit> = vec![];
            while let Some(s) = in_rx.recv().await {
                while c2.hold_inbox.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let r = apply_as_polite(&pc, &mut pending, s, &to_sfu).await;
                if let Ok(applied) = &r {
                    if let Some(o) = &applied.offer {
                        c2.offers_rx.fetch_add(1, Ordering::SeqCst);
                        *c2.last_offer.lock().expect("l") = o.clone();
                    }
                    if applied.rolled_back {
                        c2.rollbacks.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if let Err(e) = r {
                    eprintln!("[client] error: {e:#}");
                }
            }
        });
    }
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer.clone()).await.expect("sld");
    let _ = to_sfu_tx.send(SignalData::Offer { sdp: offer.sdp });
    Client {
        id: PeerId::from(id.to_owned()),
        pc,
        c,
        to_sfu: to_sfu_tx,
        dropped,
    }
}

async fn add_local(
    pc: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
    ssrc: u32,
) -> (
    Arc<TrackLocalStaticRTP>,
    Arc<dyn webrtc::rtp_transceiver::RtpSender>,
) {
    let t = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "pubstream".into(),
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
                sdp_fmtp_line: if mime == H264 {
                    H264_FMTP.into()
                } else {
                    String::new()
                },
                ..Default::default()
            },
            ..Default::default()
        }],
    )));
    let s = pc
        .add_track(t.clone() as Arc<dyn TrackLocal>)
        .await
        .expect("add_track");
    (t, s)
}

const H264: &str = "video/H264";
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// A synthetic one-packet frame: VP8 payload descriptor + header, or one H.264 NAL unit.
fn video_payload(mime: &str, keyframe: bool) -> Vec<u8> {
    if mime.eq_ignore_ascii_case(H264) {
        // NAL header: IDR slice (type 5) or non-IDR slice (type 1)
        vec![if keyframe { 0x65 } else { 0x41 }, 0x88, 0x84, 0, 0, 0]
    } else {
        vec![0x10, if keyframe { 0x00 } else { 0x01 }, 0, 0, 0, 0, 0, 0]
    }
}

/// Either codec's keyframe, as `video_payload` writes it.
fn is_keyframe(payload: &[u8]) -> bool {
    match payload {
        [0x65, ..] => true,                    // H.264 IDR
        [0x10, second, ..] => second & 1 == 0, // VP8: P bit clear
        _ => false,
    }
}

/// 50 pps video (keyframe on demand) + 50 pps audio of synthetic RTP.
async fn spawn_media_writer(
    _pc: Arc<dyn PeerConnection>,
    (video, vsender): (
        Arc<TrackLocalStaticRTP>,
        Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    ),
    (audio, asender): (
        Arc<TrackLocalStaticRTP>,
        Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    ),
    c: Arc<Counters>,
) {
    let want_kf = Arc::new(AtomicBool::new(true));
    {
        let video = video.clone();
        let want_kf = want_kf.clone();
        let c = c.clone();
        tokio::spawn(async move {
            loop {
                match video.poll().await {
                    Some(TrackLocalEvent::OnRtcpPacket(pkts))
                        if pkts.iter().any(|p| sfu::is_keyframe_request(p.as_ref())) =>
                    {
                        c.pli_rx.fetch_add(1, Ordering::SeqCst);
                        want_kf.store(true, Ordering::SeqCst);
                    }
                    Some(_) => {}
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    }
    let mime = video
        .codec(0x1111)
        .await
        .map(|c| c.mime_type)
        .unwrap_or_default();
    tokio::spawn(async move {
        let mut seq: u16 = 0;
        let (mut vpt, mut apt) = (None, None);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if vpt.is_none() {
                vpt = vsender
                    .get_parameters()
                    .await
                    .ok()
                    .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type));
                apt = asender
                    .get_parameters()
                    .await
                    .ok()
                    .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type));
                if vpt.is_none() {
                    continue;
                }
            }
            seq = seq.wrapping_add(1);
            let kf = want_kf.swap(false, Ordering::SeqCst);
            let vp = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type: vpt.unwrap_or(96),
                    sequence_number: seq,
                    timestamp: seq as u32 * 1800,
                    ssrc: 0x1111,
                    ..Default::default()
                },
                payload: video_payload(&mime, kf).into(),
            };
            let ap = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type: apt.unwrap_or(111),
                    sequence_number: seq,
                    timestamp: seq as u32 * 960,
                    ssrc: 0x2222,
                    ..Default::default()
                },
                payload: vec![0xfc; 40].into(),
            };
            if video.write_rtp(vp).await.is_err() || audio.write_rtp(ap).await.is_err() {
                // not bound yet / closed
            }
        }
    });
}

fn cfg(port_min: u16) -> SfuConfig {
    SfuConfig {
        bind_ip: LO,
        port_min,
        port_max: port_min + 20,
        nat_1to1_ip: None,
        pli_throttle: Duration::from_millis(500),
        ice_tcp: false,
        engine: engine(),
    }
}

/// The media core under test: `SFU_ENGINE=webrtc` runs this suite on the
/// `webrtc` engine, else on the shard (the default engine).
fn engine() -> SfuEngine {
    match std::env::var("SFU_ENGINE").as_deref() {
        Ok("webrtc") => SfuEngine::Webrtc,
        _ => SfuEngine::Shard,
    }
}

async fn wait_until(what: &str, secs: u64, f: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        if t0.elapsed() > Duration::from_secs(secs) {
            panic!("timeout waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("[test] {what} after {:?}", t0.elapsed());
}

/// Per-peer counters, by the name the test gave each peer.
fn snapshot_by_name(room: &RoomHandle) -> HashMap<String, sfu::PeerSnapshot> {
    room.metrics
        .peer_snapshot()
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect()
}

fn setup(port_min: u16) -> (RoomHandle, Inboxes) {
    setup_with(cfg(port_min))
}

fn setup_with(cfg: SfuConfig) -> (RoomHandle, Inboxes) {
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let room = Sfu::new(cfg).expect("sfu").spawn_room(out_tx);
    let inboxes: Inboxes = Default::default();
    spawn_router(out_rx, inboxes.clone());
    (room, inboxes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_two_subscribers_receive_and_pli_reaches_publisher() {
    let (room, inboxes) = setup(41000);
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    wait_until("publisher connected", 10, || {
        p.c.connected.load(Ordering::SeqCst)
    })
    .await;
    let s1 = client(
        &room,
        &inboxes,
        "s1",
        Opts {
            send_pli_after: Some(25),
            ..Opts::subscriber()
        },
    )
    .await; // s1 sends one PLI
    let s2 = client(&room, &inboxes, "s2", Opts::subscriber()).await;
    for s in [&s1, &s2] {
        let c = s.c.clone();
        wait_until(&format!("{} video+audio", s.id), 15, move || {
            c.video_rx.load(Ordering::SeqCst) > 50 && c.audio_rx.load(Ordering::SeqCst) > 50
        })
        .await;
    }
    let c = p.c.clone();
    wait_until("PLI at publisher", 5, move || {
        c.pli_rx.load(Ordering::SeqCst) >= 1
    })
    .await;
    eprintln!(
        "[test] candidate JSON: {:?}",
        p.c.first_candidate_json.lock().expect("l")
    );
    eprintln!(
        "[test] s1 v={} a={} kf={}",
        s1.c.video_rx.load(Ordering::SeqCst),
        s1.c.audio_rx.load(Ordering::SeqCst),
        s1.c.keyframes_rx.load(Ordering::SeqCst)
    );
    eprintln!(
        "[test] s2 v={} a={} kf={}",
        s2.c.video_rx.load(Ordering::SeqCst),
        s2.c.audio_rx.load(Ordering::SeqCst),
        s2.c.keyframes_rx.load(Ordering::SeqCst)
    );
    eprintln!(
        "[test] publisher pli_rx={}",
        p.c.pli_rx.load(Ordering::SeqCst)
    );
    eprintln!("[test] metrics {:?}", room.metrics.totals());
    eprintln!("[test] stats:\n{}", room.stats().await);
    for x in [p, s1, s2] {
        let _ = x.pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_leaving_removes_its_tracks() {
    let (room, inboxes) = setup(41100);
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    let s1 = client(&room, &inboxes, "s1", Opts::subscriber()).await;
    let c = s1.c.clone();
    wait_until("s1 media", 15, move || {
        c.video_rx.load(Ordering::SeqCst) > 20 && c.audio_rx.load(Ordering::SeqCst) > 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offers_before = s1.c.offers_rx.load(Ordering::SeqCst);
    let _ = p.pc.close().await;
    room.leave(p.id.clone()).await;
    // webrtc-rs never fires TrackRemoteEvent::OnEnded for a remotely removed track (the rtc
    // core emits no RTCTrackEvent::OnClose), so observe the renegotiated directions instead.
    let c = s1.c.clone();
    wait_until("s1 answered the removal offer", 10, move || {
        c.offers_rx.load(Ordering::SeqCst) > offers_before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = s1.c.last_offer.lock().expect("l").clone();
    let dirs: Vec<&str> = last
        .lines()
        .filter(|l| ["a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"].contains(&l.trim()))
        .collect();
    eprintln!(
        "[test] directions in SFU's last offer to s1: {dirs:?}; tracks_ended={}",
        s1.c.tracks_ended.load(Ordering::SeqCst)
    );
    // m=application carries a=sendrecv in webrtc-rs output; the two media m-lines must be recvonly
    assert_eq!(
        dirs.iter().filter(|d| d.trim() == "a=recvonly").count(),
        2,
        "both forwarded m-lines stopped"
    );
    assert!(
        !dirs.iter().any(|d| d.trim() == "a=sendonly"),
        "SFU still offers to send"
    );
    let before = s1.c.video_rx.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        before,
        s1.c.video_rx.load(Ordering::SeqCst),
        "no media after leave"
    );
    let ts = s1.pc.get_transceivers().await;
    for t in ts {
        eprintln!(
            "[test] s1 transceiver mid={:?} dir={:?} cur={:?}",
            t.mid().await,
            t.direction().await,
            t.current_direction().await
        );
    }
    eprintln!("[test] metrics {:?}", room.metrics.totals());
    let _ = s1.pc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_gets_a_keyframe() {
    let (room, inboxes) = setup(41200);
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    wait_until("publisher connected", 10, || {
        p.c.connected.load(Ordering::SeqCst)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // publisher's initial keyframe is long gone
    let pli_before = p.c.pli_rx.load(Ordering::SeqCst);
    let late = client(&room, &inboxes, "late", Opts::subscriber()).await;
    let c = late.c.clone();
    wait_until("late subscriber keyframe", 15, move || {
        c.keyframes_rx.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(p.c.pli_rx.load(Ordering::SeqCst) > pli_before);
    eprintln!("[test] metrics {:?}", room.metrics.totals());
    let _ = late.pc.close().await;
    let _ = p.pc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_sfu_impolite_browser_polite() {
    let (room, inboxes) = setup(41300);
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    let s1 = client(&room, &inboxes, "s1", Opts::subscriber()).await;
    let c = s1.c.clone();
    wait_until("s1 media", 15, move || {
        c.video_rx.load(Ordering::SeqCst) > 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // let s1's leg settle (stable)
    // 1. hold s1's inbox; a second publisher makes the SFU offer to s1 (held in flight)
    s1.c.hold_inbox.store(true, Ordering::SeqCst);
    let offers0 = room.metrics.totals().offers_sent;
    let p2 = client(&room, &inboxes, "pub2", Opts::publisher()).await;
    let t0 = std::time::Instant::now();
    while !room.offer_in_flight(&s1.id).await {
        assert!(t0.elapsed() < Duration::from_secs(10), "no SFU offer to s1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "[test] SFU offer to s1 in flight (offers_sent {} -> {})",
        offers0,
        room.metrics.totals().offers_sent
    );
    // 2. s1 starts publishing at the same time: its offer collides and the SFU ignores it
    let v = add_local(&s1.pc, RtpCodecKind::Video, "video/VP8", 90000, 0, 0x1111).await;
    let a = add_local(&s1.pc, RtpCodecKind::Audio, "audio/opus", 48000, 2, 0x2222).await;
    spawn_media_writer(s1.pc.clone(), v, a, s1.c.clone()).await;
    let o = s1.pc.create_offer(None).await.expect("offer");
    s1.pc.set_local_description(o.clone()).await.expect("sld");
    let _ = s1.to_sfu.send(SignalData::Offer { sdp: o.sdp });
    let m = room.metrics.clone();
    wait_until("SFU ignored colliding offer", 5, move || {
        m.offers_ignored_glare.load(Ordering::SeqCst) >= 1
    })
    .await;
    // 3. release: s1 rolls back, answers, re-offers; everything converges
    s1.c.hold_inbox.store(false, Ordering::SeqCst);
    let c = s1.c.clone();
    wait_until("s1 rolled back", 5, move || {
        c.rollbacks.load(Ordering::SeqCst) >= 1
    })
    .await;
    let (pc_, p2c) = (p.c.clone(), p2.c.clone());
    wait_until("pub and pub2 receive s1's media", 15, move || {
        pc_.video_rx.load(Ordering::SeqCst) > 20 && p2c.video_rx.load(Ordering::SeqCst) > 20
    })
    .await;
    let v0 = s1.c.video_rx.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s1.c.video_rx.load(Ordering::SeqCst) > v0 + 30,
        "s1 now gets pub and pub2 video"
    );
    eprintln!("[test] metrics {:?}", room.metrics.totals());
    for x in [p, p2, s1] {
        let _ = x.pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_and_stalled_subscribers_do_not_hold_back_the_others() {
    let (room, inboxes) = setup(41400);
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    wait_until("publisher connected", 10, || {
        p.c.connected.load(Ordering::SeqCst)
    })
    .await;
    let clean = client(&room, &inboxes, "clean", Opts::subscriber()).await;
    let lossy_opts = Opts {
        drop_every: Some(10),
        ..Opts::subscriber()
    };
    let lossy = client(&room, &inboxes, "lossy", lossy_opts).await;
    let stalled_opts = Opts {
        stalled: true,
        ..Opts::subscriber()
    };
    let stalled = client(&room, &inboxes, "stalled", stalled_opts).await;
    let (c, d) = (clean.c.clone(), lossy.dropped.clone());
    wait_until(
        "clean: 150 video packets; lossy: 12 dropped",
        20,
        move || c.video_rx.load(Ordering::SeqCst) > 150 && d.lock().expect("l").len() >= 12,
    )
    .await;
    // The lossy link is repaired by NACK: the SFU retransmits what the subscriber misses.
    let (c, d) = (lossy.c.clone(), lossy.dropped.clone());
    wait_until("lossy: dropped packets retransmitted", 10, move || {
        let dropped = d.lock().expect("l").clone();
        let seqs = c.video_seqs.lock().expect("l");
        // the last few may still be on their way
        let settled = &dropped[..dropped.len().saturating_sub(3)];
        settled.len() >= 9 && settled.iter().all(|s| seqs.contains(s))
    })
    .await;
    // The clean subscriber saw every packet, in a run without gaps.
    {
        let seqs = clean.c.video_seqs.lock().expect("l");
        let (min, max) = (
            seqs.iter().min().copied().unwrap_or(0),
            seqs.iter().max().copied().unwrap_or(0),
        );
        assert_eq!(
            seqs.len(),
            usize::from(max - min) + 1,
            "clean subscriber has gaps"
        );
    }
    // Its receiver reports (loss seen before repair) reach the per-peer metrics.
    let m = room.metrics.clone();
    wait_until("lossy's RTCP receiver reports counted", 5, move || {
        m.peer_snapshot()
            .iter()
            .any(|(id, s)| id.as_str() == "lossy" && s.lost_out > 0)
    })
    .await;
    let snap = snapshot_by_name(&room);
    eprintln!("[test] per-peer metrics {snap:#?}");
    assert_eq!(snap["clean"].lost_out, 0);
    assert!(snap["pub"].rtp_in > 300 && snap["pub"].bytes_in > 0);
    for id in ["clean", "lossy", "stalled"] {
        assert!(snap[id].rtp_out > 150, "{id} was sent media");
        assert_eq!(snap[id].dropped_out, 0, "{id}: nothing dropped at the SFU");
    }
    assert_eq!(
        room.metrics.totals().rtp_dropped_slow,
        0,
        "no subscriber fell behind at the SFU"
    );
    for x in [p, clean, lossy, stalled] {
        let _ = x.pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_reaches_subscribers_as_h264() {
    let (room, inboxes) = setup(41500);
    let opts = Opts {
        video_mime: Some(H264),
        ..Opts::publisher()
    };
    let p = client(&room, &inboxes, "pub", opts).await;
    let s1 = client(&room, &inboxes, "s1", Opts::subscriber()).await;
    let c = s1.c.clone();
    wait_until("s1 H.264 video with a keyframe", 15, move || {
        c.video_rx.load(Ordering::SeqCst) > 30 && c.keyframes_rx.load(Ordering::SeqCst) >= 1
    })
    .await;
    let mime =
        s1.c.video_mime
            .lock()
            .expect("l")
            .clone()
            .unwrap_or_default();
    assert!(mime.eq_ignore_ascii_case(H264), "subscriber got {mime}");
    for x in [p, s1] {
        let _ = x.pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_without_udp_connects_over_ice_tcp() {
    let (room, inboxes) = setup_with(SfuConfig {
        ice_tcp: true,
        ..cfg(41600)
    });
    let p = client(&room, &inboxes, "pub", Opts::publisher()).await;
    let opts = Opts {
        transports: Transports::TcpOnly,
        ..Opts::subscriber()
    };
    let s1 = client(&room, &inboxes, "tcp", opts).await;
    let c = s1.c.clone();
    wait_until("TCP-only subscriber gets video + audio", 20, move || {
        c.video_rx.load(Ordering::SeqCst) > 50 && c.audio_rx.load(Ordering::SeqCst) > 50
    })
    .await;
    let snap = snapshot_by_name(&room);
    assert!(snap["tcp"].rtp_out > 100);
    for x in [p, s1] {
        let _ = x.pc.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_task_ends_when_its_last_handle_is_dropped() {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let room = Sfu::new(cfg(41700)).expect("sfu").spawn_room(out_tx);
    let second = room.clone();
    drop(room);
    // Still one handle: the room keeps running.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), out_rx.recv())
            .await
            .is_err()
    );
    drop(second);
    // The task ended and dropped its side of the channel.
    let end = tokio::time::timeout(Duration::from_secs(2), out_rx.recv()).await;
    assert!(matches!(end, Ok(None)), "room task still running: {end:?}");
}
