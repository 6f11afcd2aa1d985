//! One raw socket.io connection: TCP → WebSocket → Engine.IO open →
//! namespace connect → `join` with ack, then an event loop that answers
//! pings, sends chats on command and counts what arrives.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::call_setup;
use crate::eio::{self, Packet};
use crate::stats::Latency;

/// A socket.io connection's WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Where the server is: always a loopback address.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub ws_url: String,
    pub base_url: String,
}

impl Target {
    /// Accepts `http://127.0.0.1:PORT` (or `ws://`, or `localhost`); any
    /// path is ignored. Refuses every host but loopback.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .with_context(|| format!("{url}: expected http://127.0.0.1:PORT"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = hostport
            .rsplit_once(':')
            .with_context(|| format!("{url}: no port"))?;
        if host != "127.0.0.1" && host != "localhost" {
            bail!("{url}: this tool only targets 127.0.0.1 (got host {host:?})");
        }
        let port: u16 = port.parse().with_context(|| format!("{url}: bad port"))?;
        if port == 0 {
            bail!("{url}: port 0");
        }
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        Ok(Self {
            addr,
            ws_url: format!("ws://{addr}{}", eio::WS_PATH),
            base_url: format!("http://{addr}"),
        })
    }
}

/// Counters and histograms shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// Time base of the timestamps embedded in chat texts.
    pub origin: Instant,
    /// TCP connect + WebSocket upgrade + Engine.IO open packet.
    pub connect_lat: Latency,
    /// `join` sent → its ack.
    pub join_lat: Latency,
    /// Start of the attempt (after the concurrency permit) → join ack.
    pub total_lat: Latency,
    pub chat_ack_lat: Latency,
    pub delivery_lat: Latency,
    pub deliveries: AtomicU64,
    pub misrouted: AtomicU64,
    pub chat_sent: AtomicU64,
    pub chat_send_failed: AtomicU64,
    pub chat_acks: AckTally,
    /// `signal` relaying ([`crate::signal`]): counts, acks, and relay
    /// latency of session descriptions and of ICE candidates.
    pub signals_sent: AtomicU64,
    pub signal_send_failed: AtomicU64,
    pub signal_bytes_sent: AtomicU64,
    pub signals_received: AtomicU64,
    pub signal_acks: AckTally,
    pub sdp_lat: Latency,
    pub candidate_lat: Latency,
    /// Connections the server closed after a successful join.
    pub closed_after_join: AtomicU64,
    pub other_events: AtomicU64,
    pub pings: AtomicU64,
    pub joined: AtomicU64,
}

impl Shared {
    pub fn new() -> Result<Self> {
        Ok(Self {
            origin: Instant::now(),
            connect_lat: Latency::new()?,
            join_lat: Latency::new()?,
            total_lat: Latency::new()?,
            chat_ack_lat: Latency::new()?,
            delivery_lat: Latency::new()?,
            deliveries: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            chat_sent: AtomicU64::new(0),
            chat_send_failed: AtomicU64::new(0),
            chat_acks: AckTally::default(),
            signals_sent: AtomicU64::new(0),
            signal_send_failed: AtomicU64::new(0),
            signal_bytes_sent: AtomicU64::new(0),
            signals_received: AtomicU64::new(0),
            signal_acks: AckTally::default(),
            sdp_lat: Latency::new()?,
            candidate_lat: Latency::new()?,
            closed_after_join: AtomicU64::new(0),
            other_events: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        })
    }

    pub fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn count_ack(&self, kind: AckKind, body: &str) {
        match kind {
            AckKind::Chat => self.chat_acks.count(body),
            AckKind::Signal => self.signal_acks.count(body),
        }
    }
}

/// Acks of one kind: successes, failures, and failures by error code.
#[derive(Debug, Default)]
pub struct AckTally {
    pub ok: AtomicU64,
    pub err: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl AckTally {
    fn count(&self, body: &str) {
        match ack_result(body) {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(code) => {
                self.err.fetch_add(1, Ordering::Relaxed);
                let mut m = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
                *m.entry(code).or_default() += 1;
            }
        }
    }

    /// Acks received so far, ok or not.
    pub fn settled(&self) -> u64 {
        self.ok.load(Ordering::Relaxed) + self.err.load(Ordering::Relaxed)
    }

    /// (ok, failed, failures by code).
    pub fn snapshot(&self) -> (u64, u64, BTreeMap<String, u64>) {
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (
            self.ok.load(Ordering::Relaxed),
            self.err.load(Ordering::Relaxed),
            errors,
        )
    }
}

/// What one connection does.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    pub room: String,
    pub name: String,
    /// Wait for the `40{sid}` reply before sending `join` (what real
    /// clients do). `false` sends `40` and `join` back to back.
    pub wait_connect: bool,
    /// Source address (to get past ~28k ephemeral ports per source IP).
    pub local_ip: Option<Ipv4Addr>,
    /// Bound on connect + join.
    pub join_timeout: Duration,
    /// `mode` of the join (`"sfu"`); `None` leaves it to the server.
    pub mode: Option<&'static str>,
}

/// How far a connection attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Tcp,
    WsHandshake,
    EioOpen,
    SioConnect,
    JoinSent,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp_connect",
            Self::WsHandshake => "ws_handshake",
            Self::EioOpen => "eio_open",
            Self::SioConnect => "sio_connect",
            Self::JoinSent => "join_ack",
        }
    }
}

/// Why a connection did not end up joined.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Coarse class, for tallies (`join_ack_timeout`, `tcp_connect`, …).
    pub kind: String,
    /// The first error text seen, for diagnosis.
    pub detail: String,
    /// The join was sent and no ack ever came.
    pub lost_ack: bool,
}

impl Failure {
    fn at(stage: Stage, what: &str, detail: impl ToString) -> Self {
        Self {
            kind: format!("{}_{what}", stage.name()),
            detail: detail.to_string(),
            lost_ack: stage == Stage::JoinSent && what != "error",
        }
    }
}

/// Sent by a connection once its join settled.
pub type Outcome = Result<(), Failure>;

/// Commands a connection accepts after joining.
#[derive(Debug, Clone, Copy)]
pub enum Cmd {
    /// Send chat message number `seq` (with an ack).
    Chat { seq: u64 },
    /// Start call set-up number `seq` with the room's other peer: an
    /// offer, trickled candidates and end-of-candidates, as Chromium does;
    /// the other side answers the same way ([`crate::signal`]).
    Call { seq: u64 },
}

/// What an outstanding ack is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckKind {
    Chat,
    Signal,
}

/// What a connection reports when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnFinal {
    pub joined: bool,
    /// Chat events received from others.
    pub received: u64,
    /// Chat events this connection sent.
    pub sent: u64,
    /// Chat and signal acks never received.
    pub pending_acks: u64,
    /// `signal` events this connection sent.
    pub signals_sent: u64,
    /// `signal` events relayed to it.
    pub signals_received: u64,
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of idle connections must stay cheap.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Next text frame; `None` once the connection is closed.
pub async fn recv_text(ws: &mut Ws) -> Result<Option<Utf8Bytes>, WsError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(Some(t)),
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<(), WsError> {
    ws.send(Message::Text(text.into())).await
}

#[derive(Deserialize)]
struct AckBody {
    ok: Option<bool>,
    error: Option<AckError>,
}

#[derive(Deserialize)]
struct AckError {
    code: Option<String>,
}

/// `Ok(())` for `[{"ok":true,...}]`, else the error code.
fn ack_result(body: &str) -> Result<(), String> {
    match serde_json::from_str::<(AckBody,)>(body) {
        Ok((AckBody { ok: Some(true), .. },)) => Ok(()),
        Ok((a,)) => Err(a
            .error
            .and_then(|e| e.code)
            .unwrap_or_else(|| "no_code".to_owned())),
        Err(_) => Err("malformed_ack".to_owned()),
    }
}

#[derive(Deserialize)]
struct JoinAck {
    #[serde(default)]
    peers: Vec<PeerRef>,
}

#[derive(Deserialize)]
struct PeerRef {
    id: String,
}

/// A joined connection.
pub struct Joined {
    pub ws: Ws,
    /// The first of the room's other peers, per the join ack.
    pub first_peer: Option<String>,
}

/// TCP connect, WebSocket upgrade, Engine.IO open, namespace connect and
/// `join` (ack id 0). `stage` tells how far it got when it fails.
pub async fn establish(
    cfg: &ConnConfig,
    target: &Target,
    shared: &Shared,
    t0: Instant,
    stage: &mut Stage,
) -> Result<Joined, Failure> {
    *stage = Stage::Tcp;
    let sock = TcpSocket::new_v4().map_err(|e| Failure::at(*stage, "error", e))?;
    if let Some(ip) = cfg.local_ip {
        sock.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
            .map_err(|e| Failure::at(*stage, "bind", e))?;
    }
    let tcp = sock
        .connect(target.addr)
        .await
        .map_err(|e| Failure::at(*stage, "error", e))?;
    tcp.set_nodelay(true)
        .map_err(|e| Failure::at(*stage, "error", e))?;

    *stage = Stage::WsHandshake;
    let (mut ws, _resp) =
        tokio_tungstenite::client_async_with_config(target.ws_url.as_str(), tcp, Some(ws_config()))
            .await
            .map_err(|e| Failure::at(*stage, "error", e))?;

    *stage = Stage::EioOpen;
    let text = next_text(&mut ws, *stage).await?;
    if !matches!(eio::parse(&text), Packet::Open(_)) {
        return Err(Failure::at(*stage, "error", format!("unexpected {text}")));
    }
    shared.connect_lat.record(t0.elapsed());

    send_text(&mut ws, eio::CONNECT)
        .await
        .map_err(|e| Failure::at(*stage, "error", e))?;
    if cfg.wait_connect {
        *stage = Stage::SioConnect;
        loop {
            let text = next_text(&mut ws, *stage).await?;
            match eio::parse(&text) {
                Packet::Connect(_) => break,
                p => handshake_other(&mut ws, shared, *stage, p, &text).await?,
            }
        }
    }

    *stage = Stage::JoinSent;
    let payload = match cfg.mode {
        Some(mode) => format!(
            r#"{{"room":"{}","name":"{}","mode":"{mode}"}}"#,
            cfg.room, cfg.name
        ),
        None => format!(r#"{{"room":"{}","name":"{}"}}"#, cfg.room, cfg.name),
    };
    let tj = Instant::now();
    let first_peer;
    send_text(&mut ws, eio::event(Some(0), "join", &payload))
        .await
        .map_err(|e| Failure::at(*stage, "send", e))?;
    loop {
        let text = next_text(&mut ws, *stage).await?;
        match eio::parse(&text) {
            // In no-wait mode the `40{sid}` reply arrives here.
            Packet::Connect(_) => {}
            Packet::Ack(0, body) => match ack_result(body) {
                Ok(()) => {
                    first_peer = serde_json::from_str::<(JoinAck,)>(body)
                        .ok()
                        .and_then(|(a,)| a.peers.into_iter().next())
                        .map(|p| p.id);
                    break;
                }
                Err(code) => {
                    return Err(Failure {
                        kind: format!("join_error_{code}"),
                        detail: text.to_string(),
                        lost_ack: false,
                    });
                }
            },
            p => handshake_other(&mut ws, shared, *stage, p, &text).await?,
        }
    }
    shared.join_lat.record(tj.elapsed());
    shared.total_lat.record(t0.elapsed());
    Ok(Joined { ws, first_peer })
}

async fn next_text(ws: &mut Ws, stage: Stage) -> Result<Utf8Bytes, Failure> {
    match recv_text(ws).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(Failure::at(stage, "closed", "connection closed")),
        Err(e) => Err(Failure::at(stage, "closed", e)),
    }
}

/// A packet other than the one awaited during the handshake.
async fn handshake_other(
    ws: &mut Ws,
    shared: &Shared,
    stage: Stage,
    p: Packet<'_>,
    raw: &str,
) -> Result<(), Failure> {
    match p {
        Packet::Ping => {
            shared.pings.fetch_add(1, Ordering::Relaxed);
            send_text(ws, eio::PONG)
                .await
                .map_err(|e| Failure::at(stage, "closed", e))
        }
        Packet::ConnectError(body) => Err(Failure::at(stage, "connect_error", body)),
        Packet::Close | Packet::Disconnect => {
            Err(Failure::at(stage, "closed", format!("server sent {raw:?}")))
        }
        _ => {
            shared.other_events.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Sends one side's signals of a call set-up, each with an ack; `Err` when
/// the connection is gone.
async fn send_signals(
    ws: &mut Ws,
    payloads: Vec<String>,
    next_ack: &mut u64,
    pending: &mut VecDeque<(u64, Instant, AckKind)>,
    shared: &Shared,
    fin: &mut ConnFinal,
) -> Result<(), WsError> {
    for payload in payloads {
        let id = *next_ack;
        *next_ack += 1;
        let frame = eio::event(Some(id), "signal", &payload);
        let len = frame.len() as u64;
        if let Err(e) = send_text(ws, frame).await {
            shared.signal_send_failed.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        fin.signals_sent += 1;
        shared.signals_sent.fetch_add(1, Ordering::Relaxed);
        shared.signal_bytes_sent.fetch_add(len, Ordering::Relaxed);
        pending.push_back((id, Instant::now(), AckKind::Signal));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ChatIn<'a> {
    #[serde(borrow)]
    room: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// Send timestamp (µs since [`Shared::origin`]) of a bench chat text
/// `bench <seq> <t_us>`.
fn sent_at_us(text: &str) -> Option<u64> {
    let mut words = text.strip_prefix("bench ")?.split(' ');
    let _seq = words.next()?;
    words.next()?.parse().ok()
}

/// Everything a connection needs besides its own config.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub target: Arc<Target>,
    pub shared: Arc<Shared>,
    pub permits: Arc<Semaphore>,
    pub outcomes: mpsc::Sender<Outcome>,
    pub shutdown: watch::Receiver<bool>,
}

/// Runs one connection until shutdown (or until the server closes it).
/// Reports exactly one [`Outcome`] once the join settled.
pub async fn run_conn(cfg: ConnConfig, ctx: Ctx, mut cmds: mpsc::Receiver<Cmd>) -> ConnFinal {
    let Ctx {
        target,
        shared,
        permits,
        outcomes,
        mut shutdown,
    } = ctx;
    let mut fin = ConnFinal::default();
    let Ok(permit) = permits.acquire_owned().await else {
        let _ = outcomes
            .send(Err(Failure::at(Stage::Tcp, "aborted", "semaphore closed")))
            .await;
        return fin;
    };
    let t0 = Instant::now();
    let mut stage = Stage::Tcp;
    let res = tokio::select! {
        r = tokio::time::timeout(cfg.join_timeout, establish(&cfg, &target, &shared, t0, &mut stage)) => r,
        _ = shutdown.changed() => {
            Ok(Err(Failure::at(stage, "aborted", "shutdown before joined")))
        }
    };
    drop(permit);
    let (mut ws, mut partner) = match res {
        Ok(Ok(j)) => (j.ws, j.first_peer),
        Ok(Err(f)) => {
            let _ = outcomes.send(Err(f)).await;
            return fin;
        }
        Err(_elapsed) => {
            let f = Failure::at(
                stage,
                "timeout",
                format!("no progress in {:?}", cfg.join_timeout),
            );
            let _ = outcomes.send(Err(f)).await;
            return fin;
        }
    };
    fin.joined = true;
    shared.joined.fetch_add(1, Ordering::Relaxed);
    let _ = outcomes.send(Ok(())).await;
    drop(outcomes);

    let mut pending: VecDeque<(u64, Instant, AckKind)> = VecDeque::new();
    let mut next_ack: u64 = 1;
    let mut cmds_open = true;
    let mut closed = false;
    while !*shutdown.borrow() {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            cmd = cmds.recv(), if cmds_open => match cmd {
                Some(Cmd::Chat { seq }) => {
                    let payload = format!(
                        r#"{{"room":"{}","text":"bench {seq} {}"}}"#,
                        cfg.room,
                        shared.now_us()
                    );
                    let id = next_ack;
                    next_ack += 1;
                    let sent = Instant::now();
                    if send_text(&mut ws, eio::event(Some(id), "chat", &payload)).await.is_ok() {
                        fin.sent += 1;
                        shared.chat_sent.fetch_add(1, Ordering::Relaxed);
                        pending.push_back((id, sent, AckKind::Chat));
                    } else {
                        shared.chat_send_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Cmd::Call { seq }) => {
                    let Some(to) = partner.as_deref() else {
                        shared.signal_send_failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let burst = call_setup::burst(&cfg.room, to, call_setup::Role::Offerer, seq, shared.now_us());
                    if send_signals(&mut ws, burst, &mut next_ack, &mut pending, &shared, &mut fin).await.is_err() {
                        closed = true;
                        break;
                    }
                }
                None => cmds_open = false,
            },
            msg = recv_text(&mut ws) => {
                let Ok(Some(text)) = msg else {
                    closed = true;
                    break;
                };
                match eio::parse(&text) {
                    Packet::Ping => {
                        shared.pings.fetch_add(1, Ordering::Relaxed);
                        if send_text(&mut ws, eio::PONG).await.is_err() {
                            closed = true;
                            break;
                        }
                    }
                    Packet::Event(body) if body.starts_with(r#"["chat","#) => {
                        let now = shared.now_us();
                        match serde_json::from_str::<(&str, ChatIn<'_>)>(body) {
                            Ok((_, chat)) => {
                                fin.received += 1;
                                shared.deliveries.fetch_add(1, Ordering::Relaxed);
                                if chat.room != cfg.room {
                                    shared.misrouted.fetch_add(1, Ordering::Relaxed);
                                }
                                if let Some(t) = sent_at_us(&chat.text) {
                                    shared.delivery_lat.record_us(now.saturating_sub(t));
                                }
                            }
                            Err(_) => {
                                shared.other_events.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Packet::Event(body) if body.starts_with(r#"["signal","#) => {
                        let now = shared.now_us();
                        let Some(got) = call_setup::received(body) else {
                            shared.other_events.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        fin.signals_received += 1;
                        shared.signals_received.fetch_add(1, Ordering::Relaxed);
                        if got.room != cfg.room {
                            shared.misrouted.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(t) = got.sent_at_us {
                            let lat = if got.is_sdp { &shared.sdp_lat } else { &shared.candidate_lat };
                            lat.record_us(now.saturating_sub(t));
                        }
                        if let Some(seq) = got.offer_seq {
                            // Answer at once, from the peer that offered.
                            let burst = call_setup::burst(&cfg.room, &got.from, call_setup::Role::Answerer, seq, shared.now_us());
                            if send_signals(&mut ws, burst, &mut next_ack, &mut pending, &shared, &mut fin).await.is_err() {
                                closed = true;
                                break;
                            }
                        }
                    }
                    Packet::Event(body) if body.starts_with(r#"["peer-joined","#) => {
                        if partner.is_none() {
                            partner = serde_json::from_str::<(&str, PeerRef)>(body).ok().map(|(_, p)| p.id);
                        }
                    }
                    Packet::Event(body) if body.starts_with(r#"["peer-left","#) => {
                        let left = serde_json::from_str::<(&str, PeerRef)>(body).ok().map(|(_, p)| p.id);
                        if left.is_some() && left == partner {
                            partner = None;
                        }
                    }
                    Packet::Ack(id, body) => {
                        if let Some(pos) = pending.iter().position(|(i, _, _)| *i == id) {
                            if let Some((_, sent, kind)) = pending.remove(pos) {
                                if kind == AckKind::Chat {
                                    shared.chat_ack_lat.record(sent.elapsed());
                                }
                                shared.count_ack(kind, body);
                            }
                        } else {
                            shared.other_events.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Packet::Close | Packet::Disconnect => {
                        closed = true;
                        break;
                    }
                    _ => {
                        shared.other_events.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    if closed {
        shared.closed_after_join.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    fin.pending_acks = pending.len() as u64;
    fin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_only_loopback() -> Result<()> {
        let t = Target::parse("http://127.0.0.1:3000")?;
        assert_eq!(
            t.ws_url,
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(Target::parse("ws://localhost:81/x")?.addr.port(), 81);
        assert!(Target::parse("http://10.0.0.1:3000").is_err());
        assert!(Target::parse("http://example.com:80").is_err());
        assert!(Target::parse("http://127.0.0.1").is_err());
        assert!(Target::parse("https://127.0.0.1:3000").is_err());
        Ok(())
    }

    #[test]
    fn acks_and_texts() {
        assert_eq!(ack_result(r#"[{"ok":true,"id":"x"}]"#), Ok(()));
        assert_eq!(
            ack_result(r#"[{"ok":false,"error":{"code":"room_full","message":"m"}}]"#),
            Err("room_full".to_owned())
        );
        assert_eq!(ack_result("[]"), Err("malformed_ack".to_owned()));
        assert_eq!(sent_at_us("bench 3 12345"), Some(12345));
        assert_eq!(sent_at_us("hello"), None);
    }
}
