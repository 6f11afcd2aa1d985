//! A call's life: connect, join, the errors a join can meet, losing and
//! regaining the server, peers arriving and leaving, and leaving.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use leptos::prelude::*;
use protocol::{
    ChatMessage, DisplayName, ErrorCode, JoinAck, JoinRequest, LeaveRequest, MediaState,
    MediaStateEvent, Password, PeerId, PeerInfo, PeerJoined, PeerLeft, PingEvent, ReceiptEvent,
    ResumeToken, RoomName, SfuMoved, SignalData, SignalEvent, SignalRequest, TypingEvent, events,
};
use wasm_bindgen::JsValue;
use web_sys::{MediaStream, RtcConfiguration};

use super::chat::ChatState;
use super::controls::LocalMedia;
use super::files::Files;
use super::probes::Probes;
use super::topology::Topology;
use super::{Call, JoinParams, log};
use crate::js::from_js;
use crate::rtc;
use crate::signaling::{RequestError, Signaling};
use crate::state::{PeerView, Phase, StatusKind, Ui};

/// Where the call is, as far as the server goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Never connected yet: a failure means the server is unreachable.
    Connecting,
    /// Connected at least once: a failure means reconnecting.
    Connected,
    /// Left, or refused for good: socket events are ignored from now on.
    Over,
}

pub(super) struct Lifecycle {
    stage: Cell<Stage>,
    /// Our peer id, from the join ack (each rejoin brings a new one).
    self_id: RefCell<Option<String>>,
    /// When the user asked to join: the origin of "first frame" times.
    joined_at: f64,
    /// What every new peer connection is made with (`/api/config`).
    ice: RefCell<RtcConfiguration>,
    /// The server's SFU takes simulcast (`/api/config`'s `simulcast`).
    simulcast: Cell<bool>,
    /// When the server was lost (`now_ms`), while it is being reached again.
    lost_at: Cell<Option<f64>>,
    /// What takes our seat back after a drop or a reload (PROTOCOL.md
    /// version 2, resume); kept in this tab's `sessionStorage` too.
    token: RefCell<Option<String>>,
    /// After a reload took our seat back: the far ends whose signals are
    /// still for the page before, until they acknowledge our `bye`.
    stale: RefCell<Vec<String>>,
    /// `peer-joined`s that came before our join's ack (scaled out, a peer
    /// joining through another node at the same instant can overtake it):
    /// they join the ack's list when it comes.
    early: RefCell<Vec<PeerJoined>>,
}

/// Where a room's resume token is kept in `sessionStorage`.
pub(super) fn token_key(room: &str) -> String {
    format!("rooms.resume.{room}")
}

/// Where what we send in a room (`mic` `camera`, as `0`/`1`) is kept in
/// `sessionStorage`, so that a reload comes back as it was.
pub(super) fn media_key(room: &str) -> String {
    format!("rooms.media.{room}")
}

/// After a reload in a call of `room` (a resume token kept for it): the
/// microphone and camera it had on, to join again at once as it was.
pub fn resume_state(room: &str) -> Option<(bool, bool)> {
    let js = crate::js::session_get;
    js(&token_key(room)).filter(|_| crate::js::reloaded())?;
    let media = js(&media_key(room)).unwrap_or_default();
    Some((media.starts_with('1'), media.ends_with('1')))
}

impl Lifecycle {
    pub(super) fn joined_at(&self) -> f64 {
        self.joined_at
    }

    pub(super) fn ice(&self) -> RtcConfiguration {
        self.ice.borrow().clone()
    }

    pub(super) fn simulcast(&self) -> bool {
        self.simulcast.get()
    }
}

impl Call {
    /// Creates the call and starts connecting.
    pub(super) fn start(
        ui: Ui,
        params: JoinParams,
        local: Option<MediaStream>,
        codec: Option<String>,
        media_pending: bool,
        clicked_at: f64,
    ) -> Rc<Call> {
        if ui.room.get_untracked() != params.room {
            // Another room: its own chat.
            ui.chat.set(Vec::new());
        }
        ui.room.set(params.room.clone());
        ui.self_name.set(params.name.clone());
        ui.phase.set(Phase::Connecting);
        ui.set_status(StatusKind::Connecting, "Connecting to the server…");
        let want = (params.mic, params.camera);
        let token = crate::js::reloaded()
            .then(|| crate::js::session_get(&token_key(&params.room)))
            .flatten();
        let call = Rc::new(Call {
            ui,
            sig: Signaling::connect(),
            params,
            life: Lifecycle {
                stage: Cell::new(Stage::Connecting),
                self_id: RefCell::new(None),
                joined_at: clicked_at,
                ice: RefCell::new(RtcConfiguration::new()),
                simulcast: Cell::new(false),
                lost_at: Cell::new(Some(crate::js::now_ms())),
                // Only a reload takes the seat back: a duplicated tab
                // copies sessionStorage, and must not take this tab's seat.
                token: RefCell::new(token),
                stale: RefCell::new(Vec::new()),
                early: RefCell::new(Vec::new()),
            },
            topology: RefCell::new(Topology::default()),
            chat: ChatState::default(),
            files: Files::default(),
            probes: Probes::default(),
            speakers: Default::default(),
            recording: Default::default(),
            media: LocalMedia::new(local, codec, !media_pending, want),
        });
        call.show_local_media();
        call.wire();
        let weak = Rc::downgrade(&call);
        wasm_bindgen_futures::spawn_local(async move {
            let config = load_config().await;
            if let (Some(call), Some((ice, file_max, simulcast))) = (weak.upgrade(), config) {
                *call.life.ice.borrow_mut() = ice;
                call.life.simulcast.set(simulcast);
                if let Some(max) = file_max {
                    call.ui.file_max.set(max);
                }
            }
        });
        call.start_probes();
        call.start_speakers();
        call
    }

    pub(super) fn is_over(&self) -> bool {
        self.life.stage.get() == Stage::Over
    }

    /// Our peer id, once joined.
    pub(super) fn self_id(&self) -> Option<String> {
        self.life.self_id.borrow().clone()
    }

    /// Calls `f` on each payload of `event` while the call exists.
    pub(super) fn on(self: &Rc<Self>, event: &str, f: impl Fn(&Rc<Call>, JsValue) + 'static) {
        let weak = Rc::downgrade(self);
        self.sig.on(event, move |v| {
            if let Some(call) = weak.upgrade() {
                f(&call, v);
            }
        });
    }

    /// Reads `event` as `T` and hands it to `handle` when it is for our room;
    /// an unreadable payload is logged, never acted on.
    fn on_room_event<T: serde::de::DeserializeOwned + RoomScoped + 'static>(
        self: &Rc<Self>,
        event: &'static str,
        handle: fn(&Rc<Call>, T),
    ) {
        self.on(event, move |call, v| match from_js::<T>(&v) {
            Ok(t) if call.is_room(t.room()) => handle(call, t),
            Ok(_) => {}
            Err(e) => log(&format!("bad {event}: {e}")),
        });
    }

    fn wire(self: &Rc<Self>) {
        self.on("connect", |c, _| c.on_connect());
        self.on("disconnect", |c, reason| {
            c.on_disconnect(reason.as_string().unwrap_or_default())
        });
        self.on("connect_error", |c, e| {
            c.on_connect_error(crate::js::error_text(&e))
        });
        let weak: Weak<Call> = Rc::downgrade(self);
        self.sig.on_manager("reconnect_attempt", move |n| {
            if let Some(c) = weak.upgrade() {
                c.on_reconnect_attempt(n.as_f64().unwrap_or(1.0));
            }
        });
        self.on_room_event(events::PEER_JOINED, |c, p: PeerJoined| c.on_peer_joined(p));
        self.on_room_event(events::PEER_LEFT, |c, p: PeerLeft| {
            let kicked = p.reason.as_deref() == Some("kicked");
            let name = c.ui.peer_name(p.id.as_str());
            c.life.early.borrow_mut().retain(|e| e.id != p.id);
            c.remove_peer(p.id.as_str(), !kicked);
            if kicked {
                c.ui.notice(format!("The host removed {name} from the call."));
            }
        });
        // `{room, id}` both, read as `peer-left`'s type: one decoder less.
        self.on_room_event(events::PEER_RECONNECTING, |c, p: PeerLeft| {
            c.ui.update_peer(p.id.as_str(), |v| v.away = true)
        });
        self.on_room_event(events::PEER_RESUMED, |c, p: PeerLeft| {
            c.ui.update_peer(p.id.as_str(), |v| v.away = false)
        });
        self.on_room_event(events::SIGNAL, |c, s: SignalEvent| c.on_signal(s));
        self.on_room_event(events::CHAT, |c, m: ChatMessage| c.on_relay_chat(m));
        self.on_room_event(events::TYPING, |c, t: TypingEvent| c.on_typing(t));
        self.on_room_event(events::MEDIA_STATE, |c, m: MediaStateEvent| {
            c.ui.update_peer(m.from.as_str(), |p| {
                p.media = MediaState {
                    audio: m.audio,
                    video: m.video,
                    screen: m.screen,
                    recording: m.recording,
                }
            })
        });
        self.on_room_event(events::CHAT_RECEIPT, |c, r: ReceiptEvent| {
            c.on_receipt(&r.id, r.from.as_str())
        });
        self.on_room_event(events::PING, |c, p: PingEvent| c.on_relay_ping(p));
        self.on_room_event(events::SFU_MOVED, |c, m: SfuMoved| {
            c.sfu_placed(Some(m.epoch), false)
        });
        self.wire_host_events();
    }

    fn on_connect(self: &Rc<Self>) {
        let rejoin = match self.life.stage.get() {
            Stage::Over => return,
            Stage::Connecting => false,
            Stage::Connected => true,
        };
        self.life.stage.set(Stage::Connected);
        self.life.lost_at.set(None);
        if rejoin {
            self.ui.set_status(
                StatusKind::Reconnecting,
                "Reconnected — rejoining the room…",
            );
        } else {
            self.ui
                .set_status(StatusKind::Connecting, "Joining the room…");
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move { this.join().await });
    }

    async fn join(self: Rc<Self>) {
        let Ok(room) = RoomName::parse(&self.params.room) else {
            self.fail(
                StatusKind::InvalidRoom,
                "This link's room name is not valid: room names are 1–64 letters, digits, '_' or '-'.",
            );
            return;
        };
        let Ok(name) = DisplayName::parse(&self.params.name) else {
            self.fail(StatusKind::Error, "Your name must be 1–32 characters.");
            return;
        };
        let password = match self.params.password.clone().map(Password::parse) {
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                self.fail(
                    StatusKind::Unauthorized,
                    "That password is too long (at most 128 characters).",
                );
                return;
            }
            None => None,
        };
        let resume = self.life.token.borrow().clone();
        let req = JoinRequest {
            room,
            name,
            mode: Some(self.params.mode),
            password,
            resume: resume.and_then(|t| ResumeToken::parse(t).ok()),
        };
        let answer = self.sig.request_now::<_, JoinAck>(events::JOIN, &req).await;
        if self.is_over() {
            // Left (or replaced) while the join was on its way.
            if answer.is_ok() {
                self.sig
                    .send(events::LEAVE, LeaveRequest { room: self.room() });
            }
            return;
        }
        match answer {
            Ok(ack) => self.on_joined(ack),
            Err(RequestError::Server { code, message }) => {
                log(&format!("join refused: {code}: {message}"));
                let (kind, text) = refusal(code, &message, &self.params);
                self.fail(kind, &text);
            }
            Err(RequestError::Transport(e)) => {
                log(&format!("join not answered: {e}"));
                self.ui.set_status(
                    StatusKind::Unreachable,
                    "The server did not answer — trying again…",
                );
                // Still connected: ask again (a join the server did take
                // is answered again with the same seat). Disconnected: the
                // reconnect joins.
                let weak = Rc::downgrade(&self);
                set_timeout(
                    move || {
                        if let Some(call) = weak.upgrade()
                            && call.life.stage.get() == Stage::Connected
                            && call.ui.phase.get_untracked() != Phase::Joined
                        {
                            wasm_bindgen_futures::spawn_local(async move { call.join().await });
                        }
                    },
                    Duration::from_secs(2),
                );
            }
        }
    }

    /// The join was refused for good: the error screen, the camera and
    /// microphone released.
    pub(super) fn fail(&self, kind: StatusKind, text: &str) {
        self.life.stage.set(Stage::Over);
        self.stop_probes();
        self.stop_speakers();
        self.stop_recording(true);
        self.end_all_files();
        self.close_connections();
        self.stop_local_media();
        self.ui.phase.set(Phase::Error);
        self.ui.set_status(kind, text);
        self.sig.close();
    }

    fn on_joined(self: &Rc<Self>, ack: JoinAck) {
        let me = ack.self_.id.to_string();
        let was_in = self.self_id().is_some();
        let resumed = ack.resumed == Some(true);
        // Those the ack lists already came in through it.
        let early: Vec<PeerJoined> = std::mem::take(&mut *self.life.early.borrow_mut())
            .into_iter()
            .filter(|e| e.id.as_str() != me && !ack.peers.iter().any(|p| p.id == e.id))
            .collect();
        *self.life.token.borrow_mut() = ack.resume.clone();
        crate::js::session_set(&token_key(&self.params.room), ack.resume.as_deref());
        *self.life.self_id.borrow_mut() = Some(me.clone());
        self.ui.self_id.set(me.clone());
        self.ui.mode.set(Some(ack.room.mode));
        self.life.lost_at.set(None);
        self.ui.outage_secs.set(0);
        self.ui.phase.set(Phase::Joined);
        self.ui.clear_status(&[
            StatusKind::Connecting,
            StatusKind::Reconnecting,
            StatusKind::Unreachable,
        ]);
        self.show_history(&ack.history, &me);
        let host = if ack.self_.host {
            Some(me.clone())
        } else {
            ack.peers.iter().find(|p| p.host).map(|p| p.id.to_string())
        };
        self.ui.host_id.set(host.unwrap_or_default());
        self.ui.locked.set(ack.room.locked);
        if resumed && was_in {
            // Our seat, back: every connection carried on meanwhile. Catch
            // up on who came and went; what waited goes out now.
            self.catch_up(&ack.peers);
            // The room's SFU may have moved while we were away.
            self.sfu_placed(ack.room.sfu_epoch, true);
            self.sig.release(false);
            self.announce_media();
            for p in early {
                self.on_peer_joined(p);
            }
            return;
        }
        if was_in {
            // The seat was gone (away past the grace period, or the server
            // restarted): a new participant, with new connections.
            self.close_connections();
            self.forget_pending_chat();
            self.ui.notice(
                "You were away too long to keep your place: you rejoined the call as a new participant.",
            );
        } else if resumed {
            self.replace_old_page(ack.room.mode, &ack.peers);
        }
        self.ui.peers.set(
            ack.peers
                .iter()
                .map(|p| PeerView {
                    hand: p.hand,
                    ..PeerView::new(p.id.to_string(), p.name.clone(), p.media)
                })
                .collect(),
        );
        self.ui.hand_up.set(false);
        self.set_topology(ack.room.mode, ack.peers, ack.room.sfu_epoch);
        self.sig.release(was_in);
        self.announce_media();
        for p in early {
            self.on_peer_joined(p);
        }
    }

    /// After a resume: peers that left meanwhile go, those that came are
    /// listed (their offers were kept for us and follow the ack).
    fn catch_up(self: &Rc<Self>, peers: &[PeerInfo]) {
        let gone: Vec<String> = self.ui.peers.with_untracked(|ps| {
            ps.iter()
                .filter(|v| !peers.iter().any(|p| p.id.as_str() == v.id))
                .map(|v| v.id.clone())
                .collect()
        });
        for id in gone {
            self.remove_peer(&id, true);
        }
        for p in peers {
            self.add_peer(p.id.as_str(), &p.name, p.media);
            self.ui.update_peer(p.id.as_str(), |v| v.hand = p.hand);
        }
    }

    /// A tile for a peer that has none yet. Through the SFU, it rides our
    /// existing connection (its state is that connection's).
    fn add_peer(&self, id: &str, name: &str, media: Option<MediaState>) {
        let shared = self.shared_state();
        self.ui.peers.update(|ps| {
            if !ps.iter().any(|v| v.id == id) {
                let mut view = PeerView::new(id.to_owned(), name.to_owned(), media);
                if let Some(state) = shared {
                    view.connection = state;
                }
                ps.push(view);
            }
        });
    }

    /// A reload took our seat back: the others (or the SFU) still hold
    /// connections to the page before. Each gets a `bye` (it drops that
    /// connection) before our new offers; until it has, signals from it are
    /// for the old page and ignored.
    fn replace_old_page(self: &Rc<Self>, mode: protocol::Mode, peers: &[PeerInfo]) {
        // In an SFU room the others may hold a data-only connection (files)
        // to the page before: they drop it too.
        let mut ends: Vec<String> = peers.iter().map(|p| p.id.to_string()).collect();
        if mode == protocol::Mode::Sfu {
            ends.push(protocol::SFU_PEER.to_owned());
        }
        for end in ends {
            self.bye_to(end);
        }
    }

    /// Sends `bye` to `end` (a peer, or the SFU): it drops its connection
    /// to us. Until that is acknowledged, what `end` still signals is for
    /// the connection before, and ignored.
    pub(super) fn bye_to(self: &Rc<Self>, end: String) {
        self.life.stale.borrow_mut().push(end.clone());
        let this = self.clone();
        let bye = SignalRequest {
            room: self.room(),
            to: PeerId::from(end.clone()),
            data: SignalData::Bye,
        };
        wasm_bindgen_futures::spawn_local(async move {
            let _ = this
                .sig
                .request::<_, protocol::OkAck>(events::SIGNAL, &bye)
                .await;
            // One entry: another bye to the same end may still be waiting.
            let mut stale = this.life.stale.borrow_mut();
            if let Some(i) = stale.iter().position(|e| *e == end) {
                stale.remove(i);
            }
        });
    }

    /// Whether signals from `from` are for the page before a reload.
    pub(super) fn is_stale(&self, from: &str) -> bool {
        self.life.stale.borrow().iter().any(|e| e == from)
    }

    fn on_peer_joined(self: &Rc<Self>, p: PeerJoined) {
        if self.ui.phase.get_untracked() != Phase::Joined {
            self.life.early.borrow_mut().push(p);
            return;
        }
        self.add_peer(p.id.as_str(), &p.name, None);
        self.ui.notice(format!("{} joined", p.name));
        self.welcome(&p.id);
        // Tell the newcomer what we send.
        self.announce_media();
    }

    fn remove_peer(&self, id: &str, notice: bool) {
        self.drop_connection(id);
        let name = self.ui.peer_name(id);
        self.ui.peers.update(|ps| ps.retain(|p| p.id != id));
        self.ui.typing.update(|t| t.retain(|(p, _)| p != id));
        self.ui.rtt.update(|r| r.retain(|row| row.peer != id));
        self.forget_probes(id);
        self.forget_receipts_from(id);
        if notice {
            self.ui.notice(format!("{name} left"));
        }
    }

    fn on_disconnect(&self, reason: String) {
        if self.is_over() {
            return;
        }
        log(&format!("signaling lost: {reason}"));
        // The server holds our seat for a while (PROTOCOL.md version 2,
        // resume): media and data channels do not need it, so every
        // connection stays; what we send waits for the seat to be back.
        self.sig.hold();
        self.ui.typing.set(Vec::new());
        self.life.lost_at.set(Some(crate::js::now_ms()));
        self.ui.outage_secs.set(0);
        self.ui.phase.set(Phase::Reconnecting);
        self.ui
            .set_status(StatusKind::Reconnecting, outage_text(true, 0));
    }

    fn on_connect_error(&self, e: String) {
        log(&format!("cannot connect: {e}"));
        self.show_outage(true);
    }

    fn on_reconnect_attempt(&self, attempt: f64) {
        log(&format!("reconnect attempt {attempt}"));
        self.show_outage(true);
    }

    /// Every second while the server is away: the banner says how long,
    /// and after a while what to check and that one may give up.
    /// `failed`: a connection attempt just failed (else: a second passed).
    pub(super) fn show_outage(&self, failed: bool) {
        let Some(lost_at) = self.life.lost_at.get() else {
            return;
        };
        let kind = match self.life.stage.get() {
            Stage::Over => return,
            Stage::Connected => StatusKind::Reconnecting,
            Stage::Connecting => StatusKind::Unreachable,
        };
        // A first connection still on its way is not an outage until it fails.
        if kind == StatusKind::Unreachable
            && !failed
            && self
                .ui
                .status
                .with_untracked(|s| s.as_ref().is_none_or(|s| s.kind != kind))
        {
            return;
        }
        let secs = ((crate::js::now_ms() - lost_at) / 1000.0).max(0.0) as u32;
        self.ui.outage_secs.set(secs);
        self.ui
            .set_status(kind, outage_text(kind == StatusKind::Reconnecting, secs));
    }

    /// Leaves the room: tells the server and every peer, closes everything.
    pub(super) fn leave(self: &Rc<Self>) {
        if self.life.stage.replace(Stage::Over) == Stage::Over {
            return;
        }
        if self.self_id().is_some() {
            self.sig
                .send(events::LEAVE, LeaveRequest { room: self.room() });
        }
        // Left: the seat is given up, nothing to take back.
        crate::js::session_set(&token_key(&self.params.room), None);
        crate::js::session_set(&media_key(&self.params.room), None);
        self.shutdown();
        self.stop_local_media();
        self.ui.phase.set(Phase::Left);
        self.ui.status.set(None);
    }

    /// Closes connections and the socket; stops the screen (not the camera:
    /// the lobby may reuse it).
    pub(super) fn shutdown(&self) {
        self.life.stage.set(Stage::Over);
        self.stop_probes();
        self.stop_speakers();
        self.stop_recording(true);
        self.end_all_files();
        self.close_connections();
        self.end_screen();
        self.ui.peers.set(Vec::new());
        self.ui.rtt.set(Vec::new());
        self.ui.typing.set(Vec::new());
        // Let the leave ack go out before closing the socket.
        let sig = self.sig.clone();
        set_timeout(move || sig.close(), Duration::from_millis(300));
    }
}

/// What the user reads when the server refuses the join, and what kind of
/// screen offers the way forward.
fn refusal(code: ErrorCode, message: &str, params: &JoinParams) -> (StatusKind, String) {
    match code {
        ErrorCode::RoomFull => (
            StatusKind::RoomFull,
            "This room is full. Try again in a moment, or start another room.".to_owned(),
        ),
        ErrorCode::Unauthorized if params.password.is_some() => (
            StatusKind::Unauthorized,
            "That password is not right. Check it and try again.".to_owned(),
        ),
        ErrorCode::Unauthorized => (
            StatusKind::Unauthorized,
            "This room has a password. Enter it to join.".to_owned(),
        ),
        ErrorCode::BadRequest if params.mode == protocol::Mode::Sfu && message.contains("SFU") => (
            StatusKind::ModeUnavailable,
            "This server does not forward video itself (SFU), so this room cannot use that mode. \
             You can join as a peer-to-peer call instead."
                .to_owned(),
        ),
        ErrorCode::Forbidden => (
            StatusKind::Locked,
            "This room is locked by its host: nobody new can join for now. Try again later."
                .to_owned(),
        ),
        ErrorCode::RateLimited => (
            StatusKind::Error,
            "Too many attempts in a short time. Wait a few seconds and try again.".to_owned(),
        ),
        ErrorCode::Internal => (
            StatusKind::Error,
            "The server could not let you in just now. Try again shortly.".to_owned(),
        ),
        _ => (
            StatusKind::Error,
            format!("The server refused the join: {message}"),
        ),
    }
}

/// The banner while the server is away, by how long it has been.
fn outage_text(was_connected: bool, secs: u32) -> String {
    match (was_connected, secs) {
        (true, 0..10) => {
            "Connection to the server lost — the call goes on; reconnecting…".to_owned()
        }
        (true, 10..30) => {
            format!("Still reconnecting ({secs} s)… check your internet connection.")
        }
        (true, _) => {
            format!("No connection for {secs} s. We keep trying; you can also leave the call.")
        }
        (false, 0..10) => "Cannot reach the server — retrying…".to_owned(),
        (false, _) => format!(
            "Still cannot reach the server after {secs} s. Check your connection, or go back to the lobby."
        ),
    }
}

/// `/api/config` → the RTCConfiguration every new peer connection uses,
/// the largest file a transfer may carry, and whether the SFU takes
/// simulcast.
async fn load_config() -> Option<(RtcConfiguration, Option<f64>, bool)> {
    let json = crate::js::fetch_json("/api/config").await?;
    Some((
        rtc::rtc_config(&crate::js::get(&json, "iceServers")),
        crate::js::get_f64(&json, "fileMaxBytes"),
        crate::js::get(&json, "simulcast").as_bool() == Some(true),
    ))
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
    PingEvent,
    SfuMoved
);
