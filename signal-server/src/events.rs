//! The socket.io side: one handler per socket that validates each event,
//! applies it to the registry, relays it, and always answers the ack.
//!
//! Why not `socket.on(...)` with async closures, as the socketioxide
//! examples do:
//! - socketioxide spawns one task per event for async handlers, so two
//!   events read from one socket may run out of order (an ICE candidate
//!   relayed before its offer). [`Dispatcher`] runs synchronously on the
//!   socket's read loop: events are handled in the order they arrived.
//! - handlers registered in the async connect handler may miss an event
//!   sent right after connecting (the connect packet goes out before the
//!   handler runs). [`Connect`] registers its handlers in the connect
//!   *middleware*, which runs before the connect packet is sent.
//! - a failed `Data<T>` extraction silently skips the handler; here every
//!   payload is parsed by hand and a failure is answered `bad_request`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::{
    ChatAck, ChatRequest, ErrorAck, ErrorCode, JoinAck, JoinRequest, LeaveRequest, MediaState,
    MediaStateEvent, MediaStateRequest, Mode, Object, OkAck, PeerId, PeerJoined, PeerLeft,
    PingEvent, PingRequest, ReceiptEvent, ReceiptRequest, RoomInfo, RoomName, SignalEvent,
    SignalRequest, TypingEvent, TypingRequest, events,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::BroadcastError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, TryData};
use socketioxide::handler::connect::FromConnectParts;
use socketioxide::handler::{
    ConnectHandler, DisconnectHandler, FromMessageParts, MessageHandler, Value,
};
use socketioxide::socket::{DisconnectReason, Sid, Socket};

use crate::AppState;
use crate::metrics::EventKind;
use crate::registry::{JoinError, JoinSpec, NotInRoom, ReceiptError, SignalError};

/// Marker for the handler traits' type parameter (socketioxide uses it to
/// tell closure impls apart).
#[doc(hidden)]
pub struct Direct;

/// The connect handler of the `/` namespace.
#[derive(Clone)]
pub struct Connect(pub Arc<AppState>);

impl<A: Adapter> ConnectHandler<A, Direct> for Connect {
    fn call(&self, _: Arc<Socket<A>>, _: Option<Value>) {}

    /// Runs before the connect packet is sent, so no event can arrive
    /// before the handlers exist.
    fn call_middleware<'a>(
        &'a self,
        s: Arc<Socket<A>>,
        _: &'a Option<Value>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Box<dyn std::fmt::Display + Send>>> + Send + 'a>>
    {
        if self.0.lock_registry().is_closed(s.id) {
            // A connect packet read after its own session closed (`4x`,
            // `40` in one polling POST): refused, or the socket would get
            // events and never a disconnect.
            let closed: Box<dyn std::fmt::Display + Send> = Box::new("the session is closed");
            return Box::pin(std::future::ready(Err(closed)));
        }
        if self.0.cluster.is_some() {
            crate::cluster::attach(&self.0, &s);
        } else {
            s.on_fallback(Dispatcher {
                state: self.0.clone(),
                bucket: Mutex::new(TokenBucket::new(&self.0.config.limits)),
            });
            s.on_disconnect(Counted::new(&self.0, &s, OnDisconnect(self.0.clone())));
        }
        self.0.metrics.connected();
        tracing::debug!(sid = %s.id, "connected");
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Wraps a socket's disconnect handler so `signal_connections`, counted in
/// the connect middleware, is uncounted exactly once. socketioxide can fail
/// a connect after its middleware ran (the session closed meanwhile: `40`
/// right before an unparsable packet, or a transport dropped right after
/// it) and then drops the socket without calling the disconnect handler; the
/// handler is dropped with it, uncalled, and uncounts the socket here — and
/// marks the session closed, as the disconnect handler would have.
/// (Found by tests/js/wirefuzz.test.mjs; docs/fuzzing.md.)
pub(crate) struct Counted<H> {
    inner: H,
    state: Arc<AppState>,
    sid: Sid,
    called: AtomicBool,
}

impl<H> Counted<H> {
    pub(crate) fn new<A: Adapter>(state: &Arc<AppState>, s: &Socket<A>, inner: H) -> Self {
        Self {
            inner,
            state: state.clone(),
            sid: s.id,
            called: AtomicBool::new(false),
        }
    }
}

/// A disconnect for which reason ends the Engine.IO session (everything but
/// leaving the namespace, after which the same session may connect again).
pub(crate) fn session_gone(reason: DisconnectReason) -> bool {
    !matches!(
        reason,
        DisconnectReason::ClientNSDisconnect | DisconnectReason::ServerNSDisconnect
    )
}

impl<A: Adapter, H: DisconnectHandler<A, Direct>> DisconnectHandler<A, Direct> for Counted<H> {
    fn call_with_defer(
        &self,
        s: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        // The inner handler uncounts the socket (at once, or after its queue).
        self.called.store(true, Ordering::Relaxed);
        self.inner.call_with_defer(s, reason, defer);
    }
}

impl<H> Drop for Counted<H> {
    fn drop(&mut self) {
        if !*self.called.get_mut() {
            self.state.lock_registry().close(self.sid, Instant::now());
            self.state.metrics.disconnected();
        }
    }
}

/// A failed event: the error ack's code and message.
#[derive(Debug)]
pub(crate) struct Failure {
    code: ErrorCode,
    message: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<NotInRoom> for Failure {
    fn from(_: NotInRoom) -> Self {
        Failure::new(ErrorCode::NotInRoom, "you have not joined this room")
    }
}

impl From<SignalError> for Failure {
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::NotInRoom => NotInRoom.into(),
            SignalError::UnknownPeer => {
                Failure::new(ErrorCode::UnknownPeer, "no such peer in this room")
            }
            SignalError::ToSelf => Failure::bad_request("cannot signal yourself"),
        }
    }
}

impl From<ReceiptError> for Failure {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::NotInRoom => NotInRoom.into(),
            ReceiptError::UnknownMessage => Failure::bad_request(e.to_string()),
            ReceiptError::AuthorGone => Failure::new(ErrorCode::UnknownPeer, e.to_string()),
        }
    }
}

impl From<JoinError> for Failure {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::RoomFull(_) => Failure::new(ErrorCode::RoomFull, e.to_string()),
            JoinError::Unauthorized => Failure::new(ErrorCode::Unauthorized, e.to_string()),
        }
    }
}

/// A success ack body.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    Ok(OkAck),
    Join(Box<JoinAck>),
    Chat(ChatAck),
}

/// Per-socket rate limit: `burst` events at once, refilled at `per_sec`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f32,
    burst: f32,
    per_sec: f32,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limits: &crate::Limits) -> Self {
        Self {
            tokens: limits.rate_burst as f32,
            burst: limits.rate_burst as f32,
            per_sec: limits.rate_per_sec as f32,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Handles every event of one socket, in order, on its read loop.
struct Dispatcher {
    state: Arc<AppState>,
    bucket: Mutex<TokenBucket>,
}

impl<A: Adapter> MessageHandler<A, Direct> for Dispatcher {
    fn call(&self, s: Arc<Socket<A>>, v: Value, ack_id: Option<i64>) {
        let (name, ack, req) = receive(&self.state, &self.bucket, &s, v, ack_id);
        let respond = |result| answer(&self.state, &s, &name, ack, result);
        match req {
            Ok(req) => self.handle(&s, req, respond),
            Err(f) => respond(Err(f)),
        }
    }
}

/// Takes one incoming event apart: its name, its ack, and the request (or
/// why it is refused), counted in the metrics.
pub(crate) fn receive<A: Adapter>(
    state: &AppState,
    bucket: &Mutex<TokenBucket>,
    s: &Arc<Socket<A>>,
    mut v: Value,
    ack_id: Option<i64>,
) -> (String, AckSender<A>, Result<Request, Failure>) {
    let Ok(ack) = AckSender::from_message_parts(s, &mut v, &ack_id);
    let name = Event::from_message_parts(s, &mut v, &ack_id)
        .map(|e| e.0)
        .unwrap_or_default();
    let kind = EventKind::from_name(&name);
    state.metrics.event(kind);
    let req = read_request(state, bucket, kind, &name, s, v);
    (name, ack, req)
}

/// One event, validated and parsed.
pub(crate) enum Request {
    Join(JoinRequest),
    Leave(LeaveRequest),
    Signal(SignalRequest),
    Chat(ChatRequest),
    Typing(TypingRequest),
    MediaState(MediaStateRequest),
    Receipt(ReceiptRequest),
    Ping(PingRequest),
}

/// The checks every event passes before it touches any room: the socket's
/// rate limit, the payload's shape and size, and its fields.
pub(crate) fn read_request<A: Adapter>(
    state: &AppState,
    bucket: &Mutex<TokenBucket>,
    kind: EventKind,
    name: &str,
    s: &Arc<Socket<A>>,
    mut v: Value,
) -> Result<Request, Failure> {
    let limits = &state.config.limits;
    let allowed = bucket
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(Instant::now());
    if !allowed {
        return Err(Failure::new(
            ErrorCode::RateLimited,
            format!(
                "too many events: at most {} at once and {} per second",
                limits.rate_burst, limits.rate_per_sec
            ),
        ));
    }
    let Value::Str(raw, binaries) = &v else {
        return Err(Failure::bad_request("payload must be a JSON object"));
    };
    if binaries.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(Failure::bad_request("binary payloads are not supported"));
    }
    if raw.len() > limits.max_message_bytes {
        return Err(Failure::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "event is {} bytes; the limit is {}",
                raw.len(),
                limits.max_message_bytes
            ),
        ));
    }
    Ok(match kind {
        EventKind::Join => Request::Join(parse(s, &mut v)?),
        EventKind::Leave => Request::Leave(parse(s, &mut v)?),
        EventKind::Signal => {
            let req: SignalRequest = parse(s, &mut v)?;
            req.data
                .validate()
                .map_err(|e| Failure::bad_request(e.to_string()))?;
            Request::Signal(req)
        }
        EventKind::Chat => Request::Chat(parse(s, &mut v)?),
        EventKind::Typing => Request::Typing(parse(s, &mut v)?),
        EventKind::MediaState => Request::MediaState(parse(s, &mut v)?),
        EventKind::ChatReceipt => Request::Receipt(parse(s, &mut v)?),
        EventKind::Ping => Request::Ping(parse(s, &mut v)?),
        EventKind::Other => {
            return Err(Failure::bad_request(format!(
                "unknown event {name:?}; expected join, leave, signal, chat, typing, \
                 media-state, chat-receipt or peer-ping"
            )));
        }
    })
}

/// The ack of a successful join.
pub(crate) fn join_reply(room: RoomName, joined: crate::registry::Joined) -> Reply {
    Reply::Join(Box::new(JoinAck {
        ok: protocol::True,
        self_: joined.me,
        room: RoomInfo {
            id: room,
            mode: joined.mode,
        },
        peers: joined.peers,
        history: joined.history,
    }))
}

/// Answers an event's ack (if it asked for one), counting errors and drops.
pub(crate) fn answer<A: Adapter>(
    state: &AppState,
    s: &Socket<A>,
    name: &str,
    ack: AckSender<A>,
    result: Result<Reply, Failure>,
) {
    let metrics = &state.metrics;
    let sent = match result {
        Ok(reply) => ack.send(&reply),
        Err(f) => {
            metrics.error(f.code);
            tracing::debug!(sid = %s.id, event = %name, code = %f.code, "{}", f.message);
            ack.send(&ErrorAck::new(f.code, f.message))
        }
    };
    if sent.is_err() {
        metrics.dropped(1);
    }
}

impl Dispatcher {
    /// Runs one request; `respond` answers its ack.
    fn handle<A: Adapter>(
        &self,
        s: &Arc<Socket<A>>,
        req: Request,
        respond: impl FnOnce(Result<Reply, Failure>),
    ) {
        match req {
            Request::Join(r) => self.join(s, r, respond),
            Request::Leave(r) => respond(self.leave(s, r)),
            Request::Signal(r) => respond(self.signal(s, r)),
            Request::Chat(r) => respond(self.chat(s, r)),
            Request::Typing(r) => respond(self.typing(s, r)),
            Request::MediaState(r) => respond(self.media_state(s, r)),
            Request::Receipt(r) => respond(self.receipt(s, r)),
            Request::Ping(r) => respond(self.ping(s, r)),
        }
    }

    /// A successful join is answered under the registry lock: the socket is
    /// in the room's broadcast group from inside that lock, so a later
    /// joiner's `peer-joined` (sent under the same lock) could otherwise
    /// reach it before its own join ack, and a client that builds its peer
    /// list from the ack would miss that peer.
    fn join<A: Adapter>(
        &self,
        s: &Arc<Socket<A>>,
        req: JoinRequest,
        respond: impl FnOnce(Result<Reply, Failure>),
    ) {
        let mut reg = self.state.lock_registry();
        match self.join_locked(&mut reg, s, req) {
            Ok(reply) => respond(Ok(reply)),
            Err(f) => {
                drop(reg);
                respond(Err(f));
            }
        }
    }

    fn join_locked<A: Adapter>(
        &self,
        reg: &mut crate::registry::Registry<Sid>,
        s: &Arc<Socket<A>>,
        req: JoinRequest,
    ) -> Result<Reply, Failure> {
        let config = &self.state.config;
        let mode = req.mode.unwrap_or(config.default_mode);
        let room = req.room.clone();
        if reg.is_closed(s.id) {
            // Read after this socket's disconnect handler left its rooms:
            // a member now would never be removed (docs/fuzzing.md).
            return Err(Failure::bad_request("the connection is closed"));
        }
        if mode == Mode::Sfu && config.sfu.is_none() && reg.mode(&room).is_none() {
            return Err(Failure::bad_request(
                "SFU mode is not enabled on this server; join with mode \"mesh\"",
            ));
        }
        let spec = JoinSpec {
            room: req.room,
            name: req.name,
            mode,
            password: req.password,
        };
        let joined = reg.join(s.id, spec, || {
            PeerId::from(uuid::Uuid::new_v4().to_string())
        })?;
        if joined.fresh {
            if joined.mode == Mode::Sfu {
                self.ensure_sfu_room(s, &room);
            }
            // Under the registry lock, so no chat of this room can slip between
            // the history snapshot and the socket joining the broadcast room.
            s.join(room.as_str().to_owned());
            let ev = PeerJoined {
                room: room.clone(),
                id: joined.me.id.clone(),
                name: joined.me.name.clone(),
            };
            self.broadcast(s, &room, events::PEER_JOINED, ev, joined.peers.len());
            tracing::debug!(room = %room, peer = %joined.me.id, "joined");
        }
        Ok(join_reply(room, joined))
    }

    fn leave<A: Adapter>(&self, s: &Arc<Socket<A>>, req: LeaveRequest) -> Result<Reply, Failure> {
        leave_room(&self.state, s, &req.room)?;
        Ok(Reply::Ok(OkAck::default()))
    }

    fn signal<A: Adapter>(&self, s: &Arc<Socket<A>>, req: SignalRequest) -> Result<Reply, Failure> {
        if req.to.as_str() == protocol::SFU_PEER {
            return self.signal_sfu(s, req);
        }
        let (from, target) = self
            .state
            .lock_registry()
            .route_signal(s.id, &req.room, &req.to)?;
        let ev = SignalEvent {
            room: req.room,
            from,
            data: req.data,
        };
        self.send_to(s, target, events::SIGNAL, &ev)
    }

    /// A signal for the SFU of an SFU room: queued, in order, to its room task.
    fn signal_sfu<A: Adapter>(
        &self,
        s: &Arc<Socket<A>>,
        req: SignalRequest,
    ) -> Result<Reply, Failure> {
        let reg = self.state.lock_registry();
        let me = reg.member(s.id, &req.room)?;
        if reg.mode(&req.room) != Some(Mode::Sfu) {
            return Err(Failure::new(
                ErrorCode::UnknownPeer,
                "this is a mesh room: there is no \"sfu\" peer",
            ));
        }
        drop(reg);
        let handle = self.state.lock_sfu().get(&req.room).cloned();
        match handle.map(|h| h.try_signal(me.id.to_string(), req.data)) {
            Some(Ok(())) => Ok(Reply::Ok(OkAck::default())),
            Some(Err(e)) => Err(Failure::new(ErrorCode::Internal, e.to_string())),
            None => Err(Failure::new(ErrorCode::Internal, "the SFU room is gone")),
        }
    }

    /// Starts the SFU room task for `room` (once), and relays what it says to
    /// each peer as `signal` from `"sfu"`.
    fn ensure_sfu_room<A: Adapter>(&self, s: &Arc<Socket<A>>, room: &RoomName) {
        let Some(cfg) = self.state.config.sfu.clone() else {
            return;
        };
        let mut rooms = self.state.lock_sfu();
        if rooms.contains_key(room) {
            return;
        }
        let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
        rooms.insert(room.clone(), sfu::spawn_room(cfg, out_tx));
        drop(rooms);
        let Ok(io) = socketioxide::SocketIo::<A>::from_connect_parts(s, &None);
        let state = self.state.clone();
        let room = room.clone();
        tokio::spawn(async move {
            while let Some((peer, data)) = out_rx.recv().await {
                let target = state.lock_registry().conn_of(&room, &peer);
                let Some(sock) = target.and_then(|sid| io.get_socket(sid)) else {
                    continue;
                };
                let ev = SignalEvent {
                    room: room.clone(),
                    from: PeerId::from(protocol::SFU_PEER.to_owned()),
                    data,
                };
                match sock.emit(events::SIGNAL, &ev) {
                    Ok(()) => state.metrics.delivered(1),
                    Err(_) => state.metrics.dropped(1),
                }
            }
        });
    }

    /// Relays to one peer's socket.
    fn send_to<A: Adapter, T: Serialize>(
        &self,
        s: &Arc<Socket<A>>,
        target: Sid,
        event: &'static str,
        payload: &T,
    ) -> Result<Reply, Failure> {
        let metrics = &self.state.metrics;
        match socketio_target(s, target) {
            Some(peer) => match peer.emit(event, payload) {
                Ok(()) => metrics.delivered(1),
                Err(e) => {
                    metrics.dropped(1);
                    tracing::warn!(event, "not delivered: {e}");
                }
            },
            // The peer disconnected between routing and sending; its peer-left is on its way.
            None => return Err(Failure::new(ErrorCode::UnknownPeer, "peer has just left")),
        }
        Ok(Reply::Ok(OkAck::default()))
    }

    fn media_state<A: Adapter>(
        &self,
        s: &Arc<Socket<A>>,
        req: MediaStateRequest,
    ) -> Result<Reply, Failure> {
        let media = MediaState {
            audio: req.audio,
            video: req.video,
            screen: req.screen,
        };
        let mut reg = self.state.lock_registry();
        let from = reg.set_media(s.id, &req.room, media)?;
        let others = reg.peer_count_in(&req.room).saturating_sub(1);
        let ev = MediaStateEvent {
            room: req.room.clone(),
            from,
            audio: media.audio,
            video: media.video,
            screen: media.screen,
        };
        self.broadcast(s, &req.room, events::MEDIA_STATE, ev, others);
        drop(reg);
        Ok(Reply::Ok(OkAck::default()))
    }

    fn receipt<A: Adapter>(
        &self,
        s: &Arc<Socket<A>>,
        req: ReceiptRequest,
    ) -> Result<Reply, Failure> {
        let (from, author) = self
            .state
            .lock_registry()
            .route_receipt(s.id, &req.room, &req.id)?;
        if author == s.id {
            return Ok(Reply::Ok(OkAck::default()));
        }
        let ev = ReceiptEvent {
            room: req.room,
            id: req.id,
            from,
        };
        self.send_to(s, author, events::CHAT_RECEIPT, &ev)
    }

    fn ping<A: Adapter>(&self, s: &Arc<Socket<A>>, req: PingRequest) -> Result<Reply, Failure> {
        let (from, target) = self
            .state
            .lock_registry()
            .route_signal(s.id, &req.room, &req.to)?;
        let ev = PingEvent {
            room: req.room,
            from,
            seq: req.seq,
            pong: req.pong,
        };
        self.send_to(s, target, events::PING, &ev)
    }

    fn chat<A: Adapter>(&self, s: &Arc<Socket<A>>, req: ChatRequest) -> Result<Reply, Failure> {
        let id = uuid::Uuid::new_v4().to_string();
        let ts = now_millis();
        let mut reg = self.state.lock_registry();
        let msg = reg.chat(s.id, &req.room, req.text, id.clone(), ts)?;
        let others = reg.peer_count_in(&req.room).saturating_sub(1);
        self.broadcast(s, &req.room, events::CHAT, msg, others);
        drop(reg);
        Ok(Reply::Chat(ChatAck {
            ok: protocol::True,
            id,
            ts,
        }))
    }

    fn typing<A: Adapter>(&self, s: &Arc<Socket<A>>, req: TypingRequest) -> Result<Reply, Failure> {
        let reg = self.state.lock_registry();
        let me = reg.member(s.id, &req.room)?;
        let others = reg.peer_count_in(&req.room).saturating_sub(1);
        let ev = TypingEvent {
            room: req.room.clone(),
            from: me.id,
            typing: req.typing,
        };
        self.broadcast(s, &req.room, events::TYPING, ev, others);
        drop(reg);
        Ok(Reply::Ok(OkAck::default()))
    }

    fn broadcast<A: Adapter, T: Serialize + Send + 'static>(
        &self,
        s: &Arc<Socket<A>>,
        room: &RoomName,
        event: &'static str,
        payload: T,
        recipients: usize,
    ) {
        broadcast(&self.state, s, room, event, payload, recipients);
    }
}

/// Leaves one room: registry, broadcast room, and `peer-left` to the others.
fn leave_room<A: Adapter>(
    state: &AppState,
    s: &Arc<Socket<A>>,
    room: &RoomName,
) -> Result<(), NotInRoom> {
    let mut reg = state.lock_registry();
    let id = reg.leave(s.id, room)?;
    s.leave(room.as_str().to_owned());
    let others = reg.peer_count_in(room);
    {
        let mut sfu_rooms = state.lock_sfu();
        if let Some(h) = sfu_rooms.get(room) {
            if let Err(e) = h.try_leave(id.to_string()) {
                // The SFU drops the peer anyway once its connection fails.
                tracing::warn!(room = %room, peer = %id, "SFU leave not queued: {e}");
            }
            if others == 0 {
                // Dropping the last handle ends the room task, which closes everything.
                sfu_rooms.remove(room);
            }
        }
    }
    tracing::debug!(room = %room, peer = %id, "left");
    let ev = PeerLeft {
        room: room.clone(),
        id,
    };
    broadcast(state, s, room, events::PEER_LEFT, ev, others);
    Ok(())
}

/// Sends to everyone in `room` but the sender, counting deliveries and drops.
fn broadcast<A: Adapter, T: Serialize + Send + 'static>(
    state: &AppState,
    s: &Arc<Socket<A>>,
    room: &RoomName,
    event: &'static str,
    payload: T,
    recipients: usize,
) {
    if recipients == 0 {
        return;
    }
    state.metrics.delivered(recipients as u64);
    let op = s.to(room.as_str().to_owned());
    let fut = async move { op.emit(event, &payload).await };
    let dropped = drive(fut, move |res| match res {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(event, "broadcast partly failed: {e}");
            match &e {
                BroadcastError::Socket(errs) => errs.len().max(1),
                _ => 1,
            }
        }
    });
    if let Some(n) = dropped.filter(|n| *n > 0) {
        state.metrics.dropped(n as u64);
    }
}

/// Polls a broadcast future once; the local adapter completes it right away,
/// so relays keep the order their events arrived in. A future that is not
/// ready (a remote adapter) finishes on its own task.
fn drive<F, R>(fut: F, done: impl FnOnce(F::Output) -> R + Send + 'static) -> Option<R>
where
    F: Future + Send + 'static,
    R: Send + 'static,
{
    let mut fut = Box::pin(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(done(out)),
        Poll::Pending => {
            tokio::spawn(async move {
                done(fut.await);
            });
            None
        }
    }
}

/// The socket of a peer addressed by a signal, if it is still connected.
pub(crate) fn socketio_target<A: Adapter>(
    from: &Arc<Socket<A>>,
    target: Sid,
) -> Option<socketioxide::extract::SocketRef<A>> {
    let Ok(io) = socketioxide::SocketIo::<A>::from_connect_parts(from, &None);
    io.get_socket(target)
}

/// Reads the event's payload as one JSON object of type `T`.
fn parse<T: DeserializeOwned, A: Adapter>(s: &Arc<Socket<A>>, v: &mut Value) -> Result<T, Failure> {
    let Ok(TryData(res)) = TryData::<Object<T>>::from_message_parts(s, v, &None);
    res.map(|Object(t)| t)
        .map_err(|e| Failure::bad_request(format!("invalid payload: {e}")))
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A disconnect leaves every room the socket was in.
struct OnDisconnect(Arc<AppState>);

impl<A: Adapter> DisconnectHandler<A, Direct> for OnDisconnect {
    fn call_with_defer(
        &self,
        s: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        let rooms = {
            let mut reg = self.0.lock_registry();
            if session_gone(reason) {
                // Under the lock that joins take: no join of this socket
                // can land after `rooms_of` below.
                reg.close(s.id, Instant::now());
            }
            reg.rooms_of(s.id)
        };
        for room in rooms {
            // Already gone if it raced with an explicit leave; nothing to do then.
            let _ = leave_room(&self.0, &s, &room);
        }
        self.0.metrics.disconnected();
        tracing::debug!(sid = %s.id, ?reason, "disconnected");
        defer(s);
    }
}
