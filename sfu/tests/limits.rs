//! What a peer can make an SFU room hold: garbage offers hold nothing, a
//! peer has one connection, the owner's allowance is taken and given back,
//! ports come from one pool that skips taken ports and warns once when the
//! range runs out; and none of it logs an ERROR (webrtc-rs's `log` records
//! included: they are captured here like the SFU's `tracing` events).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use protocol::SignalData;
use sfu::{
    PcOptions, PeerAllowance, PeerId, RoomHandle, Sfu, SfuConfig, apply_as_polite, build_pc,
    candidate_to_wire,
};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ───────────── every WARN and ERROR of the process, `log` records included ─────────────

#[derive(Default)]
struct Logged {
    errors: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
}

struct Capture(&'static Logged);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, ev: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={v:?}", f.name()));
            }
        }
        let mut text = Text(ev.metadata().target().to_owned());
        ev.record(&mut text);
        let level = *ev.metadata().level();
        let lines = if level == tracing::Level::ERROR {
            &self.0.errors
        } else {
            &self.0.warnings
        };
        lines.lock().expect("log lines").push(text.0);
    }
}

/// Installs the capture once for this test binary (WARN and above, so
/// webrtc-rs's per-packet trace logs are never even formatted).
fn logged() -> &'static Logged {
    static LOGGED: OnceLock<&'static Logged> = OnceLock::new();
    LOGGED.get_or_init(|| {
        let logged: &'static Logged = Box::leak(Box::default());
        tracing_subscriber::registry()
            .with(Capture(logged).with_filter(LevelFilter::WARN))
            .try_init()
            .expect("the only subscriber of this test binary");
        logged
    })
}

fn assert_no_error() {
    let errors = logged().errors.lock().expect("log lines").clone();
    assert!(errors.is_empty(), "ERROR logged: {errors:#?}");
}

// ───────────── a room, and what it says to each peer ─────────────

struct Setup {
    sfu: Sfu,
    room: RoomHandle,
    /// Answers the room sent, by peer.
    answers: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// The candidates the room trickled, by peer.
    candidates: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Peers whose signals also go to a client.
    inboxes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<SignalData>>>>,
}

fn setup(port_min: u16, port_max: u16) -> Setup {
    logged();
    let sfu = Sfu::new(SfuConfig {
        bind_ip: LO,
        port_min,
        port_max,
        nat_1to1_ip: None,
        pli_throttle: Duration::from_millis(500),
        ice_tcp: false,
        // The port range's limits: the webrtc engine's (the shard has one port).
        engine: sfu::SfuEngine::Webrtc,
    })
    .expect("sfu");
    let (tx, mut rx) = mpsc::unbounded_channel::<(PeerId, SignalData)>();
    let room = sfu.spawn_room(tx);
    let answers: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let candidates: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let inboxes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<SignalData>>>> = Arc::default();
    {
        let (answers, candidates, inboxes) = (answers.clone(), candidates.clone(), inboxes.clone());
        tokio::spawn(async move {
            while let Some((to, s)) = rx.recv().await {
                let (list, text) = match &s {
                    SignalData::Answer { sdp } => (&answers, sdp.clone()),
                    SignalData::Candidate { candidate: Some(c) } => {
                        (&candidates, c.candidate.clone())
                    }
                    _ => (&answers, String::new()),
                };
                if !text.is_empty() {
                    let mut l = list.lock().expect("signals");
                    l.entry(to.to_string()).or_default().push(text);
                }
                if let Some(inbox) = inboxes.lock().expect("inboxes").get(to.as_str()) {
                    let _ = inbox.send(s);
                }
            }
        });
    }
    Setup {
        sfu,
        room,
        answers,
        candidates,
        inboxes,
    }
}

impl Setup {
    fn answered(&self, peer: &str) -> usize {
        self.answers
            .lock()
            .expect("answers")
            .get(peer)
            .map_or(0, Vec::len)
    }

    fn ports_in_use(&self) -> usize {
        self.sfu.ports().in_use()
    }

    async fn offer(&self, peer: &str, sdp: String) {
        self.room
            .signal(PeerId::from(peer.to_owned()), SignalData::Offer { sdp })
            .await;
    }

    /// A fake offer from `peer` and its answer: every signal queued before
    /// it has been handled once this returns.
    async fn barrier(&self, peer: &str) {
        let before = self.answered(peer);
        self.offer(peer, fake_offer(peer)).await;
        wait_until(&format!("{peer} answered"), 10, || {
            self.answered(peer) > before
        })
        .await;
    }
}

async fn wait_until(what: &str, secs: u64, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timeout waiting for {what}; warnings: {:#?}",
            logged().warnings.lock().expect("log lines")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An offer that passes every check and builds a connection, from a peer
/// that will never connect (its credentials are made up): a data channel
/// section, as a client with no camera offers.
fn fake_offer(seed: &str) -> String {
    let ufrag: String = format!("{seed}ufrag")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\n\
         a=fingerprint:sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85\r\n\
         a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"
    )
}

/// The kinds of garbage an attacker sent: not SDP, SDP without media, an
/// offer without a fingerprint, one without ICE credentials, binary noise.
fn garbage(i: usize) -> String {
    match i % 5 {
        0 => format!("garbage offer {i}"),
        1 => "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_owned(),
        2 => fake_offer("g").replace("a=fingerprint", "a=nofingerprint"),
        3 => fake_offer("g").replace("a=ice-ufrag", "a=ice-nope"),
        _ => (0..200u32)
            .map(|k| char::from_u32((k * 7919 + i as u32) % 0x2FF + 1).unwrap_or('x'))
            .collect(),
    }
}

// ───────────── a real webrtc-rs client ─────────────

struct ClientEvents {
    to_sfu: mpsc::UnboundedSender<SignalData>,
    connected: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ClientEvents {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Some(c) = candidate_to_wire(&ev) {
            let _ = self
                .to_sfu
                .send(SignalData::Candidate { candidate: Some(c) });
        }
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        if s == RTCPeerConnectionState::Connected {
            self.connected.store(true, Ordering::SeqCst);
        }
    }
}

/// A client with a data channel that connects to the room; `connected`
/// turns true when its connection is up.
async fn real_client(s: &Setup, id: &str) -> (Arc<dyn PeerConnection>, Arc<AtomicBool>) {
    let connected = Arc::new(AtomicBool::new(false));
    let (to_sfu, mut to_sfu_rx) = mpsc::unbounded_channel::<SignalData>();
    let handler = Arc::new(ClientEvents {
        to_sfu: to_sfu.clone(),
        connected: connected.clone(),
    });
    let pc = build_pc(&PcOptions::client(LO), handler, |r| r)
        .await
        .expect("client pc");
    pc.create_data_channel("ctl", None).await.expect("dc");
    {
        let room = s.room.clone();
        let peer = PeerId::from(id.to_owned());
        tokio::spawn(async move {
            while let Some(sig) = to_sfu_rx.recv().await {
                room.signal(peer.clone(), sig).await;
            }
        });
    }
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<SignalData>();
    s.inboxes
        .lock()
        .expect("inboxes")
        .insert(id.to_owned(), in_tx);
    {
        let pc = pc.clone();
        let to_sfu = to_sfu.clone();
        tokio::spawn(async move {
            let mut pending: Vec<RTCIceCandidateInit> = vec![];
            while let Some(sig) = in_rx.recv().await {
                if let Err(e) = apply_as_polite(&pc, &mut pending, sig, &to_sfu).await {
                    eprintln!("[client] {e}");
                }
            }
        });
    }
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer.clone()).await.expect("sld");
    // Through the same queue as the candidates, which must follow it.
    let _ = to_sfu.send(SignalData::Offer { sdp: offer.sdp });
    (pc, connected)
}

// ───────────── the tests ─────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_offers_take_no_port_and_a_real_peer_still_connects() {
    // 20 ports; the attack of the issue took 1 000 with 1 010 offers.
    let s = setup(44000, 44019);
    let t0 = Instant::now();
    for i in 0..1000 {
        s.offer(&format!("attacker{i}"), garbage(i)).await;
        assert_eq!(s.ports_in_use(), 0, "garbage offer {i} took a port");
    }
    let (pc, connected) = real_client(&s, "real").await;
    wait_until("the real peer connected", 15, || {
        connected.load(Ordering::SeqCst)
    })
    .await;
    eprintln!(
        "[test] 1000 garbage offers and a real connection in {:?}",
        t0.elapsed()
    );
    assert_eq!(s.answered("real"), 1);
    let answered: usize = s
        .answers
        .lock()
        .expect("answers")
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(answered, 1, "no garbage offer was answered");
    assert_eq!(
        s.room.metrics.totals().peers,
        1,
        "only the real peer is in the room"
    );
    assert_eq!(s.ports_in_use(), 1);
    let _ = pc.close().await;
    assert_no_error();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_by_another_process_is_skipped_without_an_error() {
    let taken: Vec<UdpSocket> = (44100..44103)
        .map(|p| UdpSocket::bind((LO, p)).expect("hold a port of the range"))
        .collect();
    let s = setup(44100, 44104);
    let (pc, connected) = real_client(&s, "real").await;
    wait_until("the real peer connected", 15, || {
        connected.load(Ordering::SeqCst)
    })
    .await;
    let trickled = s.candidates.lock().expect("candidates")["real"].clone();
    assert!(
        trickled.iter().all(|c| c.contains(" 44103 typ host")),
        "the first free port of the range: {trickled:?}"
    );
    assert_eq!(s.sfu.ports().skipped.load(Ordering::Relaxed), 3);
    // The next connection does not probe the taken ports again first.
    s.barrier("next").await;
    assert_eq!(s.sfu.ports().skipped.load(Ordering::Relaxed), 3);
    assert_eq!(s.ports_in_use(), 2);
    drop(taken);
    let _ = pc.close().await;
    assert_no_error();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_range_refuses_new_peers_with_one_warning_until_a_port_is_free() {
    let s = setup(44200, 44201);
    let warned = || {
        logged()
            .warnings
            .lock()
            .expect("log lines")
            .iter()
            .filter(|l| l.contains("no free port left") && l.contains("ports=2"))
            .count()
    };
    s.barrier("a").await;
    s.barrier("b").await;
    for i in 0..20 {
        s.offer(&format!("late{i}"), fake_offer("late")).await;
    }
    // Handled in order: once "a" is answered again, every late offer was seen.
    s.barrier("a").await;
    assert_eq!(s.answered("late0") + s.answered("late19"), 0);
    assert_eq!(s.ports_in_use(), 2);
    assert_eq!(
        warned(),
        1,
        "one WARN for the range running out, not one per offer"
    );
    s.room.leave(PeerId::from("a".to_owned())).await;
    // The closed connection's driver lets go of its socket a moment later
    // (the first lease was the range's first port).
    wait_until("a's port unbound", 5, || {
        UdpSocket::bind((LO, 44200)).is_ok()
    })
    .await;
    s.barrier("late0").await;
    assert_eq!(s.ports_in_use(), 2);
    assert_no_error();
}

/// The owner's count, as the signaling server keeps one per address.
#[derive(Default)]
struct Count {
    n: Arc<AtomicUsize>,
    limit: usize,
    counted: Mutex<bool>,
}

impl PeerAllowance for Count {
    fn acquire(&self) -> bool {
        let mut counted = self.counted.lock().expect("counted");
        if *counted {
            return true;
        }
        let limit = self.limit;
        let ok = self
            .n
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        *counted = ok;
        ok
    }
    fn release(&self) {
        if std::mem::take(&mut *self.counted.lock().expect("counted")) {
            self.n.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_peer_counted_once_and_given_back_whatever_ends_it() {
    let s = setup(44300, 44319);
    let n = Arc::new(AtomicUsize::new(0));
    let seats: HashMap<&str, Arc<dyn PeerAllowance>> = ["a", "b", "c"]
        .into_iter()
        .map(|p| {
            let seat = Count {
                n: n.clone(),
                limit: 2,
                ..Count::default()
            };
            (p, Arc::new(seat) as Arc<dyn PeerAllowance>)
        })
        .collect();
    let offer = |p: &'static str| {
        let sdp = fake_offer(p);
        s.room
            .try_signal(
                PeerId::from(p.to_owned()),
                SignalData::Offer { sdp },
                Some(seats[p].clone()),
            )
            .expect("queued");
    };
    // One peer offering again and again has one connection, counted once.
    for _ in 0..5 {
        offer("a");
    }
    offer("b");
    offer("c"); // over the limit of 2: no connection
    s.barrier("x").await;
    assert_eq!(
        (s.answered("a"), s.answered("b"), s.answered("c")),
        (5, 1, 0)
    );
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert_eq!(s.ports_in_use(), 3, "a, b and the barrier's peer");
    // Leave gives it back; so does bye.
    s.room.leave(PeerId::from("a".to_owned())).await;
    s.room
        .signal(PeerId::from("b".to_owned()), SignalData::Bye)
        .await;
    s.barrier("x").await;
    assert_eq!(n.load(Ordering::SeqCst), 0);
    assert_eq!(s.ports_in_use(), 1);
    // A first offer that passes the SFU's checks but that webrtc-rs cannot
    // apply (an extmap id of 0) keeps no connection and no count.
    let unusable = fake_offer("c").replace(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\na=extmap:0 urn:x",
    );
    sfu::validate_offer(&unusable).expect("passes the checks");
    s.room
        .try_signal(
            PeerId::from("c".to_owned()),
            SignalData::Offer { sdp: unusable },
            Some(seats["c"].clone()),
        )
        .expect("queued");
    s.barrier("x").await;
    assert_eq!(
        (s.answered("c"), n.load(Ordering::SeqCst), s.ports_in_use()),
        (0, 0, 1)
    );
    // Now there is room for c.
    offer("c");
    s.barrier("x").await;
    assert_eq!(s.answered("c"), 1);
    assert_eq!(n.load(Ordering::SeqCst), 1);
    // The room's end gives back what its connections held.
    let Setup { room, sfu, .. } = s;
    drop(room);
    wait_until("the ended room's counts given back", 5, || {
        n.load(Ordering::SeqCst) == 0 && sfu.ports().in_use() == 0
    })
    .await;
    assert_no_error();
}

/// webrtc-rs gives up on ICE after 5 s + 25 s of checks without an answer:
/// the room then drops the peer like any failed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_connects_is_dropped_when_ice_fails() {
    let s = setup(44400, 44401);
    let n = Arc::new(AtomicUsize::new(0));
    let seat = Arc::new(Count {
        n: n.clone(),
        limit: 1,
        ..Count::default()
    });
    let sdp = fake_offer("never");
    s.room
        .try_signal(
            PeerId::from("never".to_owned()),
            SignalData::Offer { sdp },
            Some(seat),
        )
        .expect("queued");
    wait_until("the fake peer answered", 10, || s.answered("never") == 1).await;
    assert_eq!((n.load(Ordering::SeqCst), s.ports_in_use()), (1, 1));
    let t0 = Instant::now();
    wait_until("the fake peer's connection failed", 40, || {
        s.room.metrics.totals().peers == 0
    })
    .await;
    eprintln!(
        "[test] a peer that never connected dropped after {:?}",
        t0.elapsed()
    );
    assert_eq!((n.load(Ordering::SeqCst), s.ports_in_use()), (0, 0));
    assert_no_error();
}
