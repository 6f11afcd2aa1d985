//! The call: signaling, one peer connection per remote peer, chat over the
//! relay or the data channels, pings on both paths, reconnection.
//!
//! One `Call` per page, kept in a thread-local (the page is one thread);
//! browser callbacks reach it through [`with_call`], never by owning it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use protocol::{
    ChatAck, ChatMessage, ChatRequest, ErrorCode, JoinAck, JoinRequest, LeaveRequest, MediaState,
    MediaStateEvent, MediaStateRequest, Mode, PeerId, PeerInfo, PeerJoined, PeerLeft, PingEvent,
    PingRequest, ReceiptEvent, ReceiptRequest, RoomName, SignalEvent, SignalRequest, TypingEvent,
    TypingRequest, events,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use web_sys::{MediaStream, RtcConfiguration};

use crate::js::{from_js, now_ms, random_id, unix_ms};
use crate::media;
use crate::rtc::{self, PeerConn, PeerEvent};
use crate::signaling::{RequestError, Signaling};
use crate::state::{ChatEntry, ChatLine, PeerView, Phase, Quality, Ui, Via};

/// What the lobby hands over.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub room: String,
    pub name: String,
    pub mode: Mode,
    pub password: Option<String>,
}

/// Messages on the data channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum Wire {
    Chat {
        id: String,
        text: String,
        ts: f64,
        name: String,
    },
    Ack {
        id: String,
    },
    Ping {
        seq: u32,
    },
    Pong {
        seq: u32,
    },
}

pub struct Call {
    ui: Ui,
    sig: Signaling,
    params: JoinParams,
    ice: RefCell<RtcConfiguration>,
    self_id: RefCell<Option<String>>,
    peers: RefCell<HashMap<String, Rc<PeerConn>>>,
    /// When the user asked to join: the origin of "first frame" times.
    joined_at: Cell<f64>,
    /// Pings in flight: `(peer, seq, via)` → sent at.
    pings: RefCell<HashMap<(String, u32, bool), f64>>,
    seq: Cell<u32>,
    /// Relay messages waiting for receipts: id → peers that have not confirmed.
    pending: RefCell<HashMap<String, HashSet<String>>>,
    last_typing_sent: Cell<f64>,
    typing_active: Cell<bool>,
    screen: RefCell<Option<MediaStream>>,
    ever_connected: Cell<bool>,
    left: Cell<bool>,
    last_stats: RefCell<HashMap<String, (i64, u64)>>,
    /// False while the camera/microphone are still being acquired: joining
    /// does not wait for them, offers do.
    media_ready: Cell<bool>,
    /// Peers listed by the join ack, to call once our media is ready.
    deferred: RefCell<Vec<PeerInfo>>,
    /// An SFU room: one connection, to `"sfu"`, carries everyone's media.
    sfu: Cell<bool>,
    /// That connection's state, for tiles added after it changed.
    sfu_state: RefCell<String>,
}

thread_local! {
    static CALL: RefCell<Option<Rc<Call>>> = const { RefCell::new(None) };
    static TICKING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on the current call, if there is one.
pub fn with_call<R>(f: impl FnOnce(&Rc<Call>) -> R) -> Option<R> {
    let call = CALL.with(|c| c.borrow().clone());
    call.as_ref().map(f)
}

/// Starts a call: fetch the ICE configuration, connect, join. With
/// `media_pending`, the local stream arrives later through [`set_local_media`].
pub fn start(
    ui: Ui,
    params: JoinParams,
    local: Option<MediaStream>,
    media_pending: bool,
    clicked_at: f64,
) {
    if let Some(old) = CALL.with(|c| c.borrow_mut().take()) {
        old.shutdown();
    }
    rtc::LOCAL.with(|l| *l.borrow_mut() = local.clone());
    ui.room.set(params.room.clone());
    ui.self_name.set(params.name.clone());
    ui.phase.set(Phase::Connecting);
    ui.set_status("connecting", "Connecting to the server…");
    ui.has_mic.set(media::has(local.as_ref(), "audio"));
    ui.has_cam.set(media::has(local.as_ref(), "video"));
    ui.mic_on.set(media::has(local.as_ref(), "audio"));
    ui.cam_on.set(media::has(local.as_ref(), "video"));
    ui.local_rev.update(|r| *r += 1);

    let call = Rc::new(Call {
        ui,
        sig: Signaling::connect(),
        params,
        ice: RefCell::new(RtcConfiguration::new()),
        self_id: RefCell::new(None),
        peers: RefCell::new(HashMap::new()),
        joined_at: Cell::new(clicked_at),
        pings: RefCell::new(HashMap::new()),
        seq: Cell::new(0),
        pending: RefCell::new(HashMap::new()),
        last_typing_sent: Cell::new(f64::NEG_INFINITY),
        typing_active: Cell::new(false),
        screen: RefCell::new(None),
        ever_connected: Cell::new(false),
        left: Cell::new(false),
        last_stats: RefCell::new(HashMap::new()),
        media_ready: Cell::new(!media_pending),
        deferred: RefCell::new(Vec::new()),
        sfu: Cell::new(false),
        sfu_state: RefCell::new("new".into()),
    });
    CALL.with(|c| *c.borrow_mut() = Some(call.clone()));
    call.wire();
    wasm_bindgen_futures::spawn_local(async move {
        load_ice_config().await;
    });
    if !TICKING.with(|t| t.replace(true)) {
        set_interval(tick, Duration::from_secs(1));
    }
}

/// The camera/microphone acquired after joining: show it, send it to the
/// peers already connected, and call the peers that were waiting for it.
pub fn set_local_media(stream: Option<MediaStream>) {
    let call = CALL.with(|c| c.borrow().clone()).filter(|c| !c.left.get());
    let Some(call) = call else {
        // The user left before the camera was ready.
        if let Some(s) = stream {
            media::stop(&s);
        }
        return;
    };
    rtc::LOCAL.with(|l| *l.borrow_mut() = stream.clone());
    let ui = call.ui;
    ui.has_mic.set(media::has(stream.as_ref(), "audio"));
    ui.has_cam.set(media::has(stream.as_ref(), "video"));
    ui.mic_on.set(media::has(stream.as_ref(), "audio"));
    ui.cam_on.set(media::has(stream.as_ref(), "video"));
    ui.local_rev.update(|r| *r += 1);
    call.media_ready.set(true);
    // Connections made while waiting (we answered a newcomer): add our tracks.
    let existing: Vec<Rc<PeerConn>> = call.peers.borrow().values().cloned().collect();
    if let Some(stream) = stream {
        wasm_bindgen_futures::spawn_local(async move {
            for pc in existing {
                for kind in ["audio", "video"] {
                    let track = if kind == "audio" {
                        stream.get_audio_tracks().get(0)
                    } else {
                        stream.get_video_tracks().get(0)
                    };
                    if let Ok(track) =
                        wasm_bindgen::JsCast::dyn_into::<web_sys::MediaStreamTrack>(track)
                    {
                        pc.replace_track(kind, Some(&track)).await;
                    }
                }
            }
        });
    }
    let waiting: Vec<PeerInfo> = call.deferred.borrow_mut().drain(..).collect();
    for p in &waiting {
        call.connect_peer(p, true);
    }
    call.announce_media();
}

/// `/api/config` → the RTCConfiguration every new peer connection uses.
async fn load_ice_config() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str("/api/config")).await;
    let json = match resp {
        Ok(r) => {
            let r: web_sys::Response = wasm_bindgen::JsCast::unchecked_into(r);
            match r.json() {
                Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.ok(),
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    if let Some(json) = json {
        let servers = crate::js::get(&json, "iceServers");
        with_call(|c| *c.ice.borrow_mut() = rtc::rtc_config(&servers));
    }
}

/// Every second: stats for the tiles, pings on both paths, typing expiry.
fn tick() {
    with_call(|c| c.tick());
}

impl Call {
    fn wire(self: &Rc<Self>) {
        let sig = &self.sig;
        sig.on("connect", |_| {
            with_call(|c| c.on_connect());
        });
        sig.on("disconnect", |reason| {
            with_call(|c| c.on_disconnect(reason.as_string().unwrap_or_default()));
        });
        sig.on("connect_error", |e| {
            with_call(|c| c.on_connect_error(crate::js::error_text(&e)));
        });
        sig.on_manager("reconnect_attempt", |n| {
            with_call(|c| {
                if !c.left.get() {
                    c.ui.set_status(
                        if c.ever_connected.get() {
                            "reconnecting"
                        } else {
                            "unreachable"
                        },
                        format!(
                            "Connection lost — reconnecting (attempt {})…",
                            n.as_f64().unwrap_or(1.0)
                        ),
                    );
                }
            });
        });
        on_room_event(sig, events::PEER_JOINED, |c, p: PeerJoined| {
            c.on_peer_joined(p)
        });
        on_room_event(sig, events::PEER_LEFT, |c, p: PeerLeft| {
            c.remove_peer(p.id.as_str(), true)
        });
        on_room_event(sig, events::SIGNAL, |c, s: SignalEvent| c.on_signal(s));
        on_room_event(sig, events::CHAT, |c, m: ChatMessage| c.on_relay_chat(m));
        on_room_event(sig, events::TYPING, |c, t: TypingEvent| c.on_typing(t));
        on_room_event(sig, events::MEDIA_STATE, |c, m: MediaStateEvent| {
            c.ui.update_peer(m.from.as_str(), |p| {
                p.media = MediaState {
                    audio: m.audio,
                    video: m.video,
                    screen: m.screen,
                }
            })
        });
        on_room_event(sig, events::CHAT_RECEIPT, |c, r: ReceiptEvent| {
            c.on_receipt(&r.id, r.from.as_str())
        });
        on_room_event(sig, events::PING, |c, p: PingEvent| c.on_relay_ping(p));
    }

    fn is_room(&self, room: &RoomName) -> bool {
        room.as_str() == self.params.room
    }

    fn room(&self) -> RoomName {
        RoomName::parse(&self.params.room)
            .unwrap_or_else(|_| RoomName::parse("invalid").expect("a constant valid room name"))
    }

    fn on_connect(self: &Rc<Self>) {
        if self.left.get() {
            return;
        }
        let rejoin = self.ever_connected.replace(true);
        self.ui.set_status(
            if rejoin { "reconnecting" } else { "connecting" },
            if rejoin {
                "Reconnected — rejoining the room…"
            } else {
                "Joining the room…"
            },
        );
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move { this.join().await });
    }

    async fn join(self: Rc<Self>) {
        let Ok(room) = RoomName::parse(&self.params.room) else {
            self.fail(
                "error",
                "That room name is not valid (1–64 letters, digits, _ or -).",
            );
            return;
        };
        let Ok(name) = protocol::DisplayName::parse(&self.params.name) else {
            self.fail("error", "Your name must be 1–32 characters.");
            return;
        };
        let password = match self.params.password.clone().map(protocol::Password::parse) {
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                self.fail(
                    "error",
                    "The password is too long (at most 128 characters).",
                );
                return;
            }
            None => None,
        };
        let req = JoinRequest {
            room,
            name,
            mode: Some(self.params.mode),
            password,
        };
        match self.sig.request::<_, JoinAck>(events::JOIN, &req).await {
            Ok(ack) => self.on_joined(ack),
            Err(RequestError::Server { code, message }) => {
                let (kind, text) = match code {
                    ErrorCode::RoomFull => ("room_full", "This room is full.".to_owned()),
                    ErrorCode::Unauthorized => {
                        ("unauthorized", "Wrong or missing room password.".to_owned())
                    }
                    _ => ("error", format!("Cannot join: {message}")),
                };
                self.fail(kind, &text);
            }
            Err(e @ RequestError::Transport(_)) => {
                self.ui
                    .set_status("unreachable", format!("Cannot join: {e}"));
            }
        }
    }

    fn fail(&self, kind: &'static str, text: &str) {
        self.ui.phase.set(Phase::Error);
        self.ui.set_status(kind, text);
        self.left.set(true);
        self.sig.close();
    }

    fn on_joined(self: &Rc<Self>, ack: JoinAck) {
        let me = ack.self_.id.to_string();
        *self.self_id.borrow_mut() = Some(me.clone());
        self.ui.self_id.set(me.clone());
        self.ui.phase.set(Phase::Joined);
        self.ui
            .clear_status(&["connecting", "reconnecting", "unreachable"]);
        self.sfu.set(ack.room.mode == Mode::Sfu);
        // History: shown once (a rejoin brings the same messages again).
        self.ui.chat.update(|chat| {
            for m in &ack.history {
                if !chat
                    .iter()
                    .any(|e| matches!(e, ChatEntry::Msg(l) if l.id == m.id))
                {
                    chat.push(ChatEntry::Msg(line_from_relay(m, Some(me.as_str()))));
                }
            }
        });
        self.ui.peers.set(
            ack.peers
                .iter()
                .map(|p| PeerView::new(p.id.to_string(), p.name.clone(), p.media))
                .collect(),
        );
        // Mesh: a connection to each peer. SFU: one connection to the server.
        let calls = if self.sfu.get() {
            vec![sfu_peer()]
        } else {
            ack.peers.clone()
        };
        if self.media_ready.get() {
            for p in &calls {
                self.connect_peer(p, true);
            }
        } else {
            *self.deferred.borrow_mut() = calls;
        }
        self.announce_media();
    }

    /// Creates the connection to `peer` (initiator: we offer).
    fn connect_peer(self: &Rc<Self>, peer: &PeerInfo, initiator: bool) -> Option<Rc<PeerConn>> {
        let me = self.self_id.borrow().clone()?;
        let id = peer.id.to_string();
        if let Some(existing) = self.peers.borrow().get(&id) {
            return Some(existing.clone());
        }
        let local = rtc::LOCAL.with(|l| l.borrow().clone());
        let sink: rtc::Sink = Rc::new(|peer: &str, ev: PeerEvent| {
            let peer = peer.to_owned();
            with_call(move |c| c.on_peer_event(&peer, ev));
        });
        // The data channel is peer to peer: none on the connection to the SFU.
        let data = id != protocol::SFU_PEER;
        match PeerConn::new(
            &id,
            &me,
            &self.ice.borrow(),
            local.as_ref(),
            initiator,
            data,
            sink,
        ) {
            Ok(pc) => {
                self.peers.borrow_mut().insert(id, pc.clone());
                Some(pc)
            }
            Err(e) => {
                self.ui
                    .set_status("error", format!("Cannot create a connection: {e}"));
                None
            }
        }
    }

    fn on_peer_joined(self: &Rc<Self>, p: PeerJoined) {
        let id = p.id.to_string();
        let sfu_state = self.sfu.get().then(|| self.sfu_state.borrow().clone());
        self.ui.peers.update(|ps| {
            if !ps.iter().any(|v| v.id == id) {
                let mut view = PeerView::new(id.clone(), p.name.clone(), None);
                if let Some(state) = sfu_state {
                    // Through the SFU, the newcomer rides our existing connection.
                    view.connection = state;
                }
                ps.push(view);
            }
        });
        self.ui.notice(format!("{} joined", p.name));
        if self.sfu.get() {
            // The SFU adds the newcomer's tracks to our connection itself.
            self.announce_media();
            return;
        }
        // The newcomer offers; we answer. Ready the connection now.
        self.connect_peer(
            &PeerInfo {
                id: p.id,
                name: p.name,
                media: None,
            },
            false,
        );
        // Tell the newcomer what we send.
        self.announce_media();
    }

    fn remove_peer(&self, id: &str, notice: bool) {
        if let Some(pc) = self.peers.borrow_mut().remove(id) {
            pc.close();
        }
        self.deferred.borrow_mut().retain(|p| p.id.as_str() != id);
        let name = self.ui.peer_name(id);
        self.ui.peers.update(|ps| ps.retain(|p| p.id != id));
        self.ui.typing.update(|t| t.retain(|(p, _)| p != id));
        self.ui.rtt.update(|r| r.retain(|row| row.peer != id));
        self.last_stats.borrow_mut().remove(id);
        // A peer that left can no longer confirm anything.
        let done: Vec<String> = {
            let mut pending = self.pending.borrow_mut();
            pending
                .iter_mut()
                .filter_map(|(msg, waiting)| {
                    (waiting.remove(id) && waiting.is_empty()).then(|| msg.clone())
                })
                .collect()
        };
        for msg in done {
            self.pending.borrow_mut().remove(&msg);
            self.ui.update_msg(&msg, |m| m.ticks = 2);
        }
        if notice {
            self.ui.notice(format!("{name} left"));
        }
    }

    fn on_signal(self: &Rc<Self>, s: SignalEvent) {
        let from = s.from.to_string();
        let pc = self.peers.borrow().get(&from).cloned();
        let pc = match pc {
            Some(pc) => Some(pc),
            // A signal from a peer we have not seen join (it raced its peer-joined).
            None => self.connect_peer(
                &PeerInfo {
                    id: s.from.clone(),
                    name: self.ui.peer_name(&from),
                    media: None,
                },
                false,
            ),
        };
        if let Some(pc) = pc {
            pc.handle(s.data);
        }
    }

    fn on_peer_event(self: &Rc<Self>, peer: &str, ev: PeerEvent) {
        match ev {
            PeerEvent::Signal(data) => {
                let req = SignalRequest {
                    room: self.room(),
                    to: PeerId::from(peer.to_owned()),
                    data,
                };
                self.sig.send(events::SIGNAL, req);
            }
            PeerEvent::Stream if peer == protocol::SFU_PEER => self.ui.peers.update(|ps| {
                for p in ps {
                    p.stream_rev += 1;
                }
            }),
            PeerEvent::Stream => self.ui.update_peer(peer, |p| p.stream_rev += 1),
            PeerEvent::State(state) => {
                if state == "failed" {
                    self.ui.set_status(
                        "ice-failed",
                        format!(
                            "The connection to {} failed — restarting ICE…",
                            self.ui.peer_name(peer)
                        ),
                    );
                } else if state == "connected" {
                    self.ui.clear_status(&["ice-failed"]);
                }
                if peer == protocol::SFU_PEER {
                    *self.sfu_state.borrow_mut() = state.clone();
                    self.ui.peers.update(|ps| {
                        for p in ps {
                            p.connection = state.clone();
                        }
                    });
                } else {
                    self.ui.update_peer(peer, |p| p.connection = state);
                }
            }
            PeerEvent::DataOpen => {}
            PeerEvent::DataMessage(text) => self.on_data(peer, &text),
            PeerEvent::Error(e) => log(&format!("peer {peer}: {e}")),
        }
    }

    fn on_data(&self, peer: &str, text: &str) {
        let Ok(msg) = serde_json::from_str::<Wire>(text) else {
            log(&format!("unreadable data channel message from {peer}"));
            return;
        };
        match msg {
            Wire::Chat { id, text, ts, name } => {
                let Ok(text) = protocol::ChatText::parse(text) else {
                    return;
                };
                self.add_line(ChatLine {
                    id: id.clone(),
                    from: peer.to_owned(),
                    author: name,
                    text: text.as_str().to_owned(),
                    ts,
                    via: Via::P2p,
                    ticks: 0,
                });
                self.send_data(peer, &Wire::Ack { id });
            }
            Wire::Ack { id } => self.on_receipt(&id, peer),
            Wire::Ping { seq } => {
                self.send_data(peer, &Wire::Pong { seq });
            }
            Wire::Pong { seq } => self.on_pong(peer, seq, true),
        }
    }

    fn send_data(&self, peer: &str, msg: &Wire) -> bool {
        let Ok(text) = serde_json::to_string(msg) else {
            return false;
        };
        self.peers
            .borrow()
            .get(peer)
            .is_some_and(|pc| pc.send_data(&text))
    }

    fn add_line(&self, line: ChatLine) {
        self.ui
            .typing
            .update(|t| t.retain(|(p, _)| *p != line.from));
        self.ui.chat.update(|c| {
            if !c
                .iter()
                .any(|e| matches!(e, ChatEntry::Msg(m) if m.id == line.id))
            {
                c.push(ChatEntry::Msg(line));
            }
        });
    }

    fn on_relay_chat(&self, m: ChatMessage) {
        let me = self.self_id.borrow().clone();
        self.add_line(line_from_relay(&m, me.as_deref()));
        self.sig.send(
            events::CHAT_RECEIPT,
            ReceiptRequest {
                room: m.room,
                id: m.id,
            },
        );
    }

    fn on_receipt(&self, msg: &str, from: &str) {
        let done = {
            let mut pending = self.pending.borrow_mut();
            match pending.get_mut(msg) {
                Some(waiting) => {
                    waiting.remove(from);
                    waiting.is_empty()
                }
                None => false,
            }
        };
        if done {
            self.pending.borrow_mut().remove(msg);
            self.ui.update_msg(msg, |m| m.ticks = 2);
        }
    }

    fn on_typing(&self, t: TypingEvent) {
        let id = t.from.to_string();
        let name = self.ui.peer_name(&id);
        self.ui.typing.update(|list| {
            list.retain(|(p, _)| *p != id);
            if t.typing {
                list.push((id, name));
            }
        });
    }

    fn on_relay_ping(&self, p: PingEvent) {
        if p.pong {
            self.on_pong(p.from.as_str(), p.seq, false);
        } else {
            self.sig.send(
                events::PING,
                PingRequest {
                    room: p.room,
                    to: p.from,
                    seq: p.seq,
                    pong: true,
                },
            );
        }
    }

    fn on_pong(&self, peer: &str, seq: u32, p2p: bool) {
        if let Some(sent) = self.pings.borrow_mut().remove(&(peer.to_owned(), seq, p2p)) {
            let via = if p2p { Via::P2p } else { Via::Relay };
            self.ui.rtt_push(peer, via, now_ms() - sent);
        }
    }

    fn tick(self: &Rc<Self>) {
        if self.ui.phase.get_untracked() != Phase::Joined {
            return;
        }
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let now = now_ms();
        let peers: Vec<Rc<PeerConn>> = self.peers.borrow().values().cloned().collect();
        {
            let mut pings = self.pings.borrow_mut();
            // Forget pings that were never answered.
            pings.retain(|_, sent| now - *sent < 10_000.0);
            let ids: Vec<String> = self
                .ui
                .peers
                .with_untracked(|ps| ps.iter().map(|p| p.id.clone()).collect());
            for id in ids {
                pings.insert((id.clone(), seq, false), now);
                self.sig.send(
                    events::PING,
                    PingRequest {
                        room: self.room(),
                        to: PeerId::from(id),
                        seq,
                        pong: false,
                    },
                );
            }
            for pc in &peers {
                if pc.data_open() {
                    pings.insert((pc.id.clone(), seq, true), now_ms());
                    let _ = pc
                        .send_data(&serde_json::to_string(&Wire::Ping { seq }).unwrap_or_default());
                }
            }
        }
        if self.typing_active.get() && now - self.last_typing_sent.get() > 3000.0 {
            self.set_typing(false);
        }
        for pc in peers {
            let this = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let s = pc.stats().await;
                let (lost, received) = {
                    let mut last = this.last_stats.borrow_mut();
                    let prev = last.insert(pc.id.clone(), (s.packets_lost, s.packets_received));
                    let (pl, pr) = prev.unwrap_or((0, 0));
                    (s.packets_lost - pl, s.packets_received.saturating_sub(pr))
                };
                let total = received as f64 + lost.max(0) as f64;
                let loss = if total > 0.0 {
                    lost.max(0) as f64 / total
                } else {
                    0.0
                };
                let quality = Quality::from_stats(loss, s.rtt_ms, received > 0);
                if pc.id == protocol::SFU_PEER {
                    // One connection for everyone: attribute tracks by stream.
                    this.ui.peers.update(|ps| {
                        for p in ps {
                            let ids: Vec<String> = pc
                                .stream_of(&p.id)
                                .map(|st| media::tracks(&st).iter().map(|t| t.id()).collect())
                                .unwrap_or_default();
                            let mine: Vec<_> = s
                                .per_track
                                .iter()
                                .filter(|t| ids.contains(&t.track))
                                .collect();
                            p.frames = mine.iter().map(|t| t.frames_decoded).sum();
                            p.audio_packets = mine.iter().map(|t| t.audio_packets).sum();
                            p.video_codec = mine.iter().find_map(|t| t.codec.clone());
                            p.quality = quality;
                        }
                    });
                } else {
                    this.ui.update_peer(&pc.id, |p| {
                        p.frames = s.frames_decoded;
                        p.audio_packets = s.audio_packets;
                        p.video_codec = s.video_codec.clone();
                        p.quality = quality;
                    });
                }
            });
        }
    }

    fn on_disconnect(&self, reason: String) {
        if self.left.get() {
            return;
        }
        // The server forgot us: every peer connection is stale; rebuild on rejoin.
        for (_, pc) in self.peers.borrow_mut().drain() {
            pc.close();
        }
        self.ui.peers.set(Vec::new());
        self.ui.typing.set(Vec::new());
        self.ui.rtt.set(Vec::new());
        self.pending.borrow_mut().clear();
        self.ui.phase.set(Phase::Reconnecting);
        self.ui.set_status(
            "reconnecting",
            format!("Connection lost ({reason}) — reconnecting…"),
        );
    }

    fn on_connect_error(&self, e: String) {
        if self.left.get() {
            return;
        }
        if self.ever_connected.get() {
            self.ui
                .set_status("reconnecting", format!("Reconnecting… ({e})"));
        } else {
            self.ui.set_status(
                "unreachable",
                format!("Cannot reach the server ({e}) — retrying…"),
            );
        }
    }

    /// Sends a chat message over the selected path.
    pub fn send_chat(self: &Rc<Self>, text: String) -> Result<(), String> {
        let text = protocol::ChatText::parse(text).map_err(|e| e.to_string())?;
        let me = self.self_id.borrow().clone().ok_or("not in the room yet")?;
        self.set_typing(false);
        let peers: HashSet<String> = self.peers.borrow().keys().cloned().collect();
        match self.ui.via.get_untracked() {
            Via::P2p if self.sfu.get() => {
                return Err(
                    "peer-to-peer chat is not available in SFU rooms; switch to the relay".into(),
                );
            }
            Via::P2p => {
                let id = random_id();
                let ts = unix_ms();
                let wire = Wire::Chat {
                    id: id.clone(),
                    text: text.as_str().to_owned(),
                    ts,
                    name: self.params.name.clone(),
                };
                let sent: HashSet<String> = peers
                    .iter()
                    .filter(|p| self.send_data(p, &wire))
                    .cloned()
                    .collect();
                if sent.len() < peers.len() {
                    return Err(format!(
                        "the data channel is not open to {} of {} peers; use the relay",
                        peers.len() - sent.len(),
                        peers.len()
                    ));
                }
                self.pending.borrow_mut().insert(id.clone(), sent.clone());
                self.ui.chat.update(|c| {
                    c.push(ChatEntry::Msg(ChatLine {
                        id,
                        from: "self".into(),
                        author: self.params.name.clone(),
                        text: text.as_str().to_owned(),
                        ts,
                        via: Via::P2p,
                        ticks: if sent.is_empty() { 2 } else { 1 },
                    }))
                });
            }
            Via::Relay => {
                let local_id = format!("local-{}", random_id());
                self.ui.chat.update(|c| {
                    c.push(ChatEntry::Msg(ChatLine {
                        id: local_id.clone(),
                        from: "self".into(),
                        author: self.params.name.clone(),
                        text: text.as_str().to_owned(),
                        ts: unix_ms(),
                        via: Via::Relay,
                        ticks: 0,
                    }))
                });
                let this = self.clone();
                let req = ChatRequest {
                    room: self.room(),
                    text,
                };
                let _ = me;
                wasm_bindgen_futures::spawn_local(async move {
                    match this.sig.request::<_, ChatAck>(events::CHAT, &req).await {
                        Ok(ack) => {
                            // Receipts may only arrive after this ack is read: register first.
                            let everyone = peers.is_empty();
                            if !everyone {
                                this.pending.borrow_mut().insert(ack.id.clone(), peers);
                            }
                            this.ui.update_msg(&local_id, |m| {
                                m.id = ack.id.clone();
                                m.ts = ack.ts as f64;
                                m.ticks = if everyone { 2 } else { 1 };
                            });
                        }
                        Err(e) => {
                            this.ui.update_msg(&local_id, |m| m.ticks = 0);
                            this.ui
                                .set_status("error", format!("Message not sent: {e}"));
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Called on each keystroke in the chat box: `typing: true` at most every 2 s.
    pub fn typed(&self) {
        let now = now_ms();
        if now - self.last_typing_sent.get() > 2000.0 {
            self.last_typing_sent.set(now);
            self.typing_active.set(true);
            self.sig.send(
                events::TYPING,
                TypingRequest {
                    room: self.room(),
                    typing: true,
                },
            );
        }
    }

    fn set_typing(&self, on: bool) {
        if self.typing_active.get() == on {
            return;
        }
        self.typing_active.set(on);
        if !on {
            self.last_typing_sent.set(f64::NEG_INFINITY);
        }
        self.sig.send(
            events::TYPING,
            TypingRequest {
                room: self.room(),
                typing: on,
            },
        );
    }

    fn announce_media(&self) {
        if self.self_id.borrow().is_none() {
            return;
        }
        self.sig.send(
            events::MEDIA_STATE,
            MediaStateRequest {
                room: self.room(),
                audio: self.ui.mic_on.get_untracked(),
                video: self.ui.cam_on.get_untracked() || self.ui.screen_on.get_untracked(),
                screen: self.ui.screen_on.get_untracked(),
            },
        );
    }

    pub fn toggle_mic(&self) {
        let on = !self.ui.mic_on.get_untracked();
        let local = rtc::LOCAL.with(|l| l.borrow().clone());
        media::set_enabled(local.as_ref(), "audio", on);
        self.ui.mic_on.set(on);
        self.announce_media();
    }

    pub fn toggle_camera(&self) {
        let on = !self.ui.cam_on.get_untracked();
        let local = rtc::LOCAL.with(|l| l.borrow().clone());
        media::set_enabled(local.as_ref(), "video", on);
        self.ui.cam_on.set(on);
        self.announce_media();
    }

    /// Starts or stops screen sharing: the outgoing video track is replaced
    /// on every connection (no renegotiation when we already send video).
    pub fn toggle_screen(self: &Rc<Self>) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if this.ui.screen_on.get_untracked() {
                this.stop_screen().await;
                return;
            }
            match media::screen().await {
                Ok(stream) => {
                    let track = stream.get_video_tracks().get(0);
                    let track: Option<web_sys::MediaStreamTrack> =
                        wasm_bindgen::JsCast::dyn_into(track).ok();
                    let Some(track) = track else {
                        media::stop(&stream);
                        return;
                    };
                    // The browser's own "Stop sharing" button ends the track.
                    let ended = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(|| {
                        if let Some(c) = CALL.with(|c| c.borrow().clone()) {
                            wasm_bindgen_futures::spawn_local(async move { c.stop_screen().await });
                        }
                    });
                    track.set_onended(Some(wasm_bindgen::JsCast::unchecked_ref(ended.as_ref())));
                    ended.forget();
                    rtc::SCREEN.with(|s| *s.borrow_mut() = Some(track.clone()));
                    let peers: Vec<Rc<PeerConn>> = this.peers.borrow().values().cloned().collect();
                    for pc in peers {
                        pc.replace_track("video", Some(&track)).await;
                    }
                    *this.screen.borrow_mut() = Some(stream);
                    this.ui.screen_on.set(true);
                    this.ui.local_rev.update(|r| *r += 1);
                    this.announce_media();
                }
                Err(e) => this
                    .ui
                    .set_status("error", format!("Screen sharing was not started: {e}")),
            }
        });
    }

    async fn stop_screen(self: &Rc<Self>) {
        let Some(stream) = self.screen.borrow_mut().take() else {
            return;
        };
        rtc::SCREEN.with(|s| *s.borrow_mut() = None);
        media::stop(&stream);
        let camera = rtc::LOCAL.with(|l| l.borrow().clone()).and_then(|s| {
            wasm_bindgen::JsCast::dyn_into::<web_sys::MediaStreamTrack>(s.get_video_tracks().get(0))
                .ok()
        });
        let peers: Vec<Rc<PeerConn>> = self.peers.borrow().values().cloned().collect();
        for pc in peers {
            pc.replace_track("video", camera.as_ref()).await;
        }
        self.ui.screen_on.set(false);
        self.ui.local_rev.update(|r| *r += 1);
        self.announce_media();
    }

    /// The stream the local preview shows: the screen while sharing.
    pub fn preview_stream(&self) -> Option<MediaStream> {
        self.screen
            .borrow()
            .clone()
            .or_else(|| rtc::LOCAL.with(|l| l.borrow().clone()))
    }

    pub fn remote_stream(&self, peer: &str) -> Option<MediaStream> {
        let peers = self.peers.borrow();
        if self.sfu.get() {
            return peers
                .get(protocol::SFU_PEER)
                .and_then(|pc| pc.stream_of(peer));
        }
        peers.get(peer).and_then(|pc| pc.remote_stream())
    }

    /// Records the first decoded frame of `peer` (time since the join click).
    pub fn first_frame(&self, peer: &str) {
        let ms = now_ms() - self.joined_at.get();
        self.ui.update_peer(peer, |p| {
            if p.first_frame_ms.is_none() {
                p.first_frame_ms = Some(ms);
            }
        });
    }

    /// Leaves the room: tells the server and every peer, closes everything.
    pub fn leave(self: &Rc<Self>) {
        if self.left.replace(true) {
            return;
        }
        if self.self_id.borrow().is_some() {
            self.sig
                .send(events::LEAVE, LeaveRequest { room: self.room() });
        }
        self.shutdown();
        self.ui.phase.set(Phase::Left);
        self.ui.status.set(None);
    }

    /// Closes connections and the socket; stops the screen (not the camera:
    /// the lobby may reuse it).
    fn shutdown(&self) {
        self.left.set(true);
        for (_, pc) in self.peers.borrow_mut().drain() {
            pc.close();
        }
        if let Some(s) = self.screen.borrow_mut().take() {
            media::stop(&s);
        }
        rtc::SCREEN.with(|s| *s.borrow_mut() = None);
        self.ui.peers.set(Vec::new());
        self.ui.rtt.set(Vec::new());
        self.ui.typing.set(Vec::new());
        // Let the leave ack go out before closing the socket.
        let sig = self.sig.clone();
        set_timeout(move || sig.close(), Duration::from_millis(300));
    }
}

/// Server events that belong to one room.
trait RoomScoped {
    fn room(&self) -> &RoomName;
}

macro_rules! room_scoped {
    ($($t:ty),*) => {$(
        impl RoomScoped for $t {
            fn room(&self) -> &RoomName {
                &self.room
            }
        }
    )*};
}

room_scoped!(
    PeerJoined,
    PeerLeft,
    SignalEvent,
    ChatMessage,
    TypingEvent,
    MediaStateEvent,
    ReceiptEvent,
    PingEvent
);

/// Reads `event` as `T` and hands it to the call when it is for our room;
/// an unreadable payload is logged, never acted on.
fn on_room_event<T: serde::de::DeserializeOwned + RoomScoped + 'static>(
    sig: &Signaling,
    event: &'static str,
    handle: fn(&Rc<Call>, T),
) {
    sig.on(event, move |v| {
        with_call(|c| match from_js::<T>(&v) {
            Ok(t) if c.is_room(t.room()) => handle(c, t),
            Ok(_) => {}
            Err(e) => log(&format!("bad {event}: {e}")),
        });
    });
}

/// The SFU, as the one "peer" of an SFU room's connection.
fn sfu_peer() -> PeerInfo {
    PeerInfo {
        id: PeerId::from(protocol::SFU_PEER.to_owned()),
        name: "SFU".into(),
        media: None,
    }
}

fn line_from_relay(m: &ChatMessage, me: Option<&str>) -> ChatLine {
    let mine = me == Some(m.from.id.as_str());
    ChatLine {
        id: m.id.clone(),
        from: if mine {
            "self".into()
        } else {
            m.from.id.to_string()
        },
        author: m.from.name.clone(),
        text: m.text.clone(),
        ts: m.ts as f64,
        via: Via::Relay,
        ticks: if mine { 1 } else { 0 },
    }
}

fn log(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}
