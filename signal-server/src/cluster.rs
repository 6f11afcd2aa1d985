//! Scale-out: the same protocol when the server runs as several nodes on one
//! Redis (`REDIS_URL`).
//!
//! - Room state (members, names, history, mode, password) lives in Redis
//!   ([`RedisStore`]); relays go through socketioxide-redis (the adapter
//!   publishes a broadcast to every node, each delivers to its own sockets).
//! - Each socket joins a socket.io room named after its connection
//!   ([`conn_room`]), so a signal for a peer on another node is a broadcast to
//!   that room. (Room names from clients are `[A-Za-z0-9_-]`, so they never
//!   collide with `conn:…`.)
//! - Events of one socket are handled in arrival order by one task per
//!   socket (`worker`): the store is async, and an ICE candidate must not
//!   overtake its offer. A socket never waits for another.
//! - A node refreshes its heartbeat every [`UPKEEP_EVERY`]; every node sweeps
//!   the members of nodes whose heartbeat lapsed ([`HEARTBEAT_TTL`]) and tells
//!   their rooms `peer-left`. A crashed node's peers are gone from every room
//!   within `HEARTBEAT_TTL + UPKEEP_EVERY` (12 s). A node stopped with SIGTERM
//!   retires its heartbeat first, so its peers leave at once.
//! - Redis down: events are answered `internal` ("room state unavailable"),
//!   nothing hangs; the adapter's driver reconnects and everything resumes.
//!   A leave that could not reach Redis is retried by the upkeep task.
//!
//! SFU rooms are not available in this mode: a room's media would have to go
//! through one node, and peers of that room sit on any node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::{
    ChatAck, ChatRequest, ErrorCode, JoinRequest, LeaveRequest, MediaState, MediaStateEvent,
    MediaStateRequest, Mode, OkAck, PeerId, PeerJoined, PeerLeft, PingEvent, PingRequest,
    ReceiptEvent, ReceiptRequest, RoomName, SignalEvent, SignalRequest, TypingEvent, TypingRequest,
    events,
};
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::AckSender;
use socketioxide::handler::connect::FromConnectParts;
use socketioxide::handler::{DisconnectHandler, MessageHandler, Value};
use socketioxide::socket::{DisconnectReason, Sid, Socket};
use socketioxide::{BroadcastError, SocketIo};
use tokio::sync::mpsc;

use crate::AppState;
use crate::events::{
    Direct, Failure, Reply, Request, TokenBucket, answer, join_reply, now_millis, receive,
    socketio_target,
};
use crate::redis_driver::{DriverError, RedisHealth};
use crate::redis_store::{Conn, HEARTBEAT_TTL, RedisStore, StoreError};
use crate::registry::JoinSpec;

/// How often a node refreshes its heartbeat and sweeps dead nodes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(2);
/// Events of one socket waiting for the store; more are answered `rate_limited`.
const QUEUE: usize = 256;

/// The scale-out state of a node.
pub(crate) struct Cluster {
    pub store: RedisStore,
    pub health: Arc<RedisHealth>,
    /// Connections whose leave could not reach Redis; retried by the upkeep task.
    orphans: Mutex<Vec<String>>,
    /// This node's memberships (connection, room) → how it joined, to put
    /// them back if Redis loses its data.
    local: Mutex<HashMap<(String, RoomName), (JoinSpec, PeerId)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.store.node())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(store: RedisStore, health: Arc<RedisHealth>) -> Self {
        Self {
            store,
            health,
            orphans: Mutex::new(Vec::new()),
            local: Mutex::new(HashMap::new()),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<(String, RoomName), (JoinSpec, PeerId)>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rooms with a member on this node, and this node's memberships.
    pub fn local_counts(&self) -> (usize, usize) {
        let local = self.local();
        let rooms: std::collections::HashSet<&RoomName> = local.keys().map(|(_, r)| r).collect();
        (rooms.len(), local.len())
    }

    /// Puts this node's members back after Redis lost them (a restart
    /// without persistence): same peer ids, so calls and relays go on.
    /// Chat history is not restored. Peers are not told: for them nothing
    /// changed.
    async fn restore(&self) {
        let all: Vec<_> = self
            .local()
            .iter()
            .map(|((sid, _), (spec, id))| (sid.clone(), spec.clone(), id.clone()))
            .collect();
        let mut restored = 0;
        for (sid, spec, id) in all {
            let key = (sid.clone(), spec.room.clone());
            match self.store.join(&sid, spec, id).await {
                Ok(j) if j.fresh => {
                    restored += 1;
                    // It left while we were restoring: take it out again.
                    if !self.local().contains_key(&key) {
                        let _ = self.store.leave(&sid, &key.1).await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(sid, "membership not restored: {e}"),
            }
        }
        if restored > 0 {
            tracing::warn!(
                restored,
                "redis had lost this node's members; restored them"
            );
        }
    }
}

/// The socket.io room of one connection (on whichever node it is).
fn conn_room(sid: &str) -> String {
    format!("conn:{sid}")
}

impl<E> From<StoreError<E>> for Failure
where
    Failure: From<E>,
{
    fn from(e: StoreError<E>) -> Self {
        match e {
            StoreError::Rule(e) => e.into(),
            StoreError::Redis(e) => e.into(),
        }
    }
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        Failure::new(
            ErrorCode::Internal,
            format!("room state is unavailable ({e}); try again shortly"),
        )
    }
}

enum Job<A: Adapter> {
    Event {
        s: Arc<Socket<A>>,
        name: String,
        req: Request,
        ack: AckSender<A>,
    },
    Disconnect(Arc<Socket<A>>),
}

/// Installs the handlers of a new socket (called from the connect middleware).
pub(crate) fn attach<A: Adapter>(state: &Arc<AppState>, s: &Arc<Socket<A>>) {
    s.join(conn_room(&s.id.to_string()));
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(worker(state.clone(), rx));
    s.on_fallback(Dispatcher {
        state: state.clone(),
        bucket: Mutex::new(TokenBucket::new(&state.config.limits)),
        tx: tx.clone(),
    });
    s.on_disconnect(crate::events::Counted::new(
        state,
        s,
        OnDisconnect(tx, state.clone()),
    ));
}

/// Validates on the socket's read loop, then queues for the socket's worker.
struct Dispatcher<A: Adapter> {
    state: Arc<AppState>,
    bucket: Mutex<TokenBucket>,
    tx: mpsc::Sender<Job<A>>,
}

impl<A: Adapter> MessageHandler<A, Direct> for Dispatcher<A> {
    fn call(&self, s: Arc<Socket<A>>, v: Value, ack_id: Option<i64>) {
        let (name, ack, req) = receive(&self.state, &self.bucket, &s, v, ack_id);
        let req = match req {
            // Read after this socket's disconnect queued its leave (the rest
            // of a polling POST): the worker ends at the disconnect, and an
            // event overtaking it could store a member with no connection.
            Ok(_) if self.state.lock_registry().is_closed(s.id) => {
                Err(Failure::bad_request("the connection is closed"))
            }
            req => req,
        };
        let req = match req {
            Ok(req) => req,
            Err(f) => return answer(&self.state, &s, &name, ack, Err(f)),
        };
        let job = Job::Event {
            s: s.clone(),
            name,
            req,
            ack,
        };
        if let Err(e) = self.tx.try_send(job) {
            let (full, job) = match e {
                mpsc::error::TrySendError::Full(j) => (true, j),
                mpsc::error::TrySendError::Closed(j) => (false, j),
            };
            if let Job::Event { s, name, ack, .. } = job {
                let f = if full {
                    Failure::new(
                        ErrorCode::RateLimited,
                        format!("{QUEUE} events already wait for the room state; slow down"),
                    )
                } else {
                    Failure::new(ErrorCode::Internal, "this connection is closing")
                };
                answer(&self.state, &s, &name, ack, Err(f));
            }
        }
    }
}

/// Queues the leave after the socket's pending events.
struct OnDisconnect<A: Adapter>(mpsc::Sender<Job<A>>, Arc<AppState>);

impl<A: Adapter> DisconnectHandler<A, Direct> for OnDisconnect<A> {
    fn call_with_defer(
        &self,
        s: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        tracing::debug!(sid = %s.id, ?reason, "disconnected");
        if crate::events::session_gone(reason) {
            // A connect read after this (same session, later in a polling
            // POST) is refused; see `Registry::close`.
            self.1
                .lock_registry()
                .close(s.id, std::time::Instant::now());
        }
        let tx = self.0.clone();
        let job = Job::Disconnect(s.clone());
        if let Err(mpsc::error::TrySendError::Full(job)) = tx.try_send(job) {
            tokio::spawn(async move {
                let _ = tx.send(job).await;
            });
        }
        defer(s);
    }
}

/// Handles one socket's events in order; ends after its disconnect.
async fn worker<A: Adapter>(state: Arc<AppState>, mut rx: mpsc::Receiver<Job<A>>) {
    let Some(c) = state.cluster.as_ref() else {
        return;
    };
    while let Some(job) = rx.recv().await {
        match job {
            Job::Event { s, name, req, ack } => {
                let result = handle(&state, c, &s, req).await;
                answer(&state, &s, &name, ack, result);
            }
            Job::Disconnect(s) => {
                let sid = s.id.to_string();
                c.local().retain(|(conn, _), _| *conn != sid);
                let io = io_of(&s);
                if !leave_all(&state, c, &io, &sid).await {
                    c.orphans
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(sid);
                }
                state.metrics.disconnected();
                return;
            }
        }
    }
}

fn io_of<A: Adapter>(s: &Arc<Socket<A>>) -> SocketIo<A> {
    let Ok(io) = SocketIo::<A>::from_connect_parts(s, &None);
    io
}

async fn handle<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    req: Request,
) -> Result<Reply, Failure> {
    let sid = s.id.to_string();
    match req {
        Request::Join(r) => join(state, c, s, &sid, r).await,
        Request::Leave(r) => leave(state, c, s, &sid, r).await,
        Request::Signal(r) => signal(state, c, s, &sid, r).await,
        Request::Chat(r) => chat(state, c, s, &sid, r).await,
        Request::Typing(r) => typing(state, c, s, &sid, r).await,
        Request::MediaState(r) => media_state(state, c, s, &sid, r).await,
        Request::Receipt(r) => receipt(state, c, s, &sid, r).await,
        Request::Ping(r) => ping(state, c, s, &sid, r).await,
    }
}

async fn join<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: JoinRequest,
) -> Result<Reply, Failure> {
    let room = req.room.clone();
    let mode = req.mode.unwrap_or(state.config.default_mode);
    // An existing room keeps its mode (always mesh here); a new one cannot be SFU.
    if mode == Mode::Sfu && c.store.mode(&room).await?.is_none() {
        return Err(Failure::bad_request(
            "SFU rooms are not available when the server is scaled out on Redis; \
             join with mode \"mesh\"",
        ));
    }
    let spec = JoinSpec {
        room: req.room,
        name: req.name,
        mode: Mode::Mesh,
        password: req.password,
    };
    let new_id = PeerId::from(uuid::Uuid::new_v4().to_string());
    let joined = c.store.join(sid, spec.clone(), new_id).await?;
    c.local()
        .insert((sid.to_owned(), room.clone()), (spec, joined.me.id.clone()));
    if joined.fresh {
        // After the join is stored: a failed join must never receive the
        // room's broadcasts.
        s.join(room.as_str().to_owned());
        let ev = PeerJoined {
            room: room.clone(),
            id: joined.me.id.clone(),
            name: joined.me.name.clone(),
        };
        broadcast(
            state,
            s,
            &room,
            events::PEER_JOINED,
            &ev,
            joined.peers.len(),
        )
        .await;
        tracing::debug!(room = %room, peer = %joined.me.id, "joined");
    }
    Ok(join_reply(room, joined))
}

async fn leave<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: LeaveRequest,
) -> Result<Reply, Failure> {
    let (id, left) = c.store.leave(sid, &req.room).await?;
    c.local().remove(&(sid.to_owned(), req.room.clone()));
    s.leave(req.room.as_str().to_owned());
    let ev = PeerLeft {
        room: req.room.clone(),
        id,
    };
    broadcast(state, s, &req.room, events::PEER_LEFT, &ev, left).await;
    Ok(Reply::Ok(OkAck::default()))
}

async fn signal<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: SignalRequest,
) -> Result<Reply, Failure> {
    if req.to.as_str() == protocol::SFU_PEER {
        c.store.member(sid, &req.room).await?;
        return Err(Failure::new(
            ErrorCode::UnknownPeer,
            "this is a mesh room: there is no \"sfu\" peer",
        ));
    }
    let (from, target) = c
        .store
        .route_signal(sid, &req.room, req.to.as_str())
        .await?;
    let ev = SignalEvent {
        room: req.room,
        from,
        data: req.data,
    };
    send_to(state, c, s, &target.conn, events::SIGNAL, &ev).await
}

async fn ping<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: PingRequest,
) -> Result<Reply, Failure> {
    let (from, target) = c
        .store
        .route_signal(sid, &req.room, req.to.as_str())
        .await?;
    let ev = PingEvent {
        room: req.room,
        from,
        seq: req.seq,
        pong: req.pong,
    };
    send_to(state, c, s, &target.conn, events::PING, &ev).await
}

async fn receipt<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: ReceiptRequest,
) -> Result<Reply, Failure> {
    let (from, author) = c.store.route_receipt(sid, &req.room, &req.id).await?;
    let Some(author) = author else {
        // A receipt for one's own message goes nowhere.
        return Ok(Reply::Ok(OkAck::default()));
    };
    let ev = ReceiptEvent {
        room: req.room,
        id: req.id,
        from,
    };
    send_to(state, c, s, &author.conn, events::CHAT_RECEIPT, &ev).await
}

async fn chat<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: ChatRequest,
) -> Result<Reply, Failure> {
    let id = uuid::Uuid::new_v4().to_string();
    let ts = now_millis();
    let (msg, members) = c
        .store
        .chat(sid, &req.room, req.text, id.clone(), ts)
        .await?;
    broadcast(
        state,
        s,
        &req.room,
        events::CHAT,
        &msg,
        members.saturating_sub(1),
    )
    .await;
    Ok(Reply::Chat(ChatAck {
        ok: protocol::True,
        id,
        ts,
    }))
}

async fn typing<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: TypingRequest,
) -> Result<Reply, Failure> {
    let (me, members) = c.store.member_and_count(sid, &req.room).await?;
    let ev = TypingEvent {
        room: req.room.clone(),
        from: me.id,
        typing: req.typing,
    };
    let others = members.saturating_sub(1);
    broadcast(state, s, &req.room, events::TYPING, &ev, others).await;
    Ok(Reply::Ok(OkAck::default()))
}

async fn media_state<A: Adapter>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    sid: &str,
    req: MediaStateRequest,
) -> Result<Reply, Failure> {
    let media = MediaState {
        audio: req.audio,
        video: req.video,
        screen: req.screen,
    };
    let from = c.store.set_media(sid, &req.room, media).await?;
    let others = c.store.peer_count_in(&req.room).await?.saturating_sub(1);
    let ev = MediaStateEvent {
        room: req.room.clone(),
        from,
        audio: media.audio,
        video: media.video,
        screen: media.screen,
    };
    broadcast(state, s, &req.room, events::MEDIA_STATE, &ev, others).await;
    Ok(Reply::Ok(OkAck::default()))
}

/// Relays to one connection: directly when it is on this node, else through
/// the adapter to its connection room.
async fn send_to<A: Adapter, T: Serialize>(
    state: &AppState,
    c: &Cluster,
    s: &Arc<Socket<A>>,
    conn: &Conn,
    event: &'static str,
    payload: &T,
) -> Result<Reply, Failure> {
    let metrics = &state.metrics;
    if conn.node == c.store.node() {
        let peer = conn
            .sid
            .parse::<Sid>()
            .ok()
            .and_then(|sid| socketio_target(s, sid));
        let Some(peer) = peer else {
            // Disconnected a moment ago; its peer-left is on its way.
            return Err(Failure::new(ErrorCode::UnknownPeer, "peer has just left"));
        };
        match peer.emit(event, payload) {
            Ok(()) => metrics.delivered(1),
            Err(e) => {
                metrics.dropped(1);
                tracing::warn!(event, "not delivered: {e}");
            }
        }
        return Ok(Reply::Ok(OkAck::default()));
    }
    match io_of(s).to(conn_room(&conn.sid)).emit(event, payload).await {
        Ok(()) => metrics.delivered(1),
        Err(BroadcastError::Adapter(e)) => {
            return Err(Failure::new(
                ErrorCode::Internal,
                format!("cannot reach the peer's server ({e}); try again shortly"),
            ));
        }
        Err(e) => {
            metrics.dropped(1);
            tracing::warn!(event, "not delivered: {e}");
        }
    }
    Ok(Reply::Ok(OkAck::default()))
}

/// Sends to everyone in `room` but the sender, on every node. If the adapter
/// cannot publish (Redis down), this node's own sockets still get it.
async fn broadcast<A: Adapter, T: Serialize>(
    state: &AppState,
    s: &Arc<Socket<A>>,
    room: &RoomName,
    event: &'static str,
    payload: &T,
    recipients: usize,
) {
    if recipients == 0 {
        return;
    }
    let room = room.as_str().to_owned();
    let res = match s.to(room.clone()).emit(event, payload).await {
        Err(BroadcastError::Adapter(e)) => {
            tracing::warn!(event, "broadcast reached this node only: {e}");
            state.metrics.dropped(1);
            s.to(room).local().emit(event, payload).await
        }
        res => res,
    };
    state.metrics.delivered(recipients as u64);
    if let Err(e) = res {
        tracing::warn!(event, "broadcast partly failed: {e}");
        let n = match &e {
            BroadcastError::Socket(errs) => errs.len().max(1),
            _ => 1,
        };
        state.metrics.dropped(n as u64);
    }
}

/// Tells a room, on every node, that `id` left (`except` a closing socket).
async fn announce_left<A: Adapter>(io: &SocketIo<A>, room: RoomName, id: PeerId, except: &str) {
    let r = room.as_str().to_owned();
    let ev = PeerLeft { room, id };
    let op = io.to(r.clone()).except(conn_room(except));
    if let Err(e) = op.emit(events::PEER_LEFT, &ev).await {
        tracing::warn!("peer-left reached this node only: {e}");
        let _ = io
            .to(r)
            .except(conn_room(except))
            .local()
            .emit(events::PEER_LEFT, &ev)
            .await;
    }
}

/// Removes a connection from all its rooms; false if Redis could not be reached.
async fn leave_all<A: Adapter>(state: &AppState, c: &Cluster, io: &SocketIo<A>, sid: &str) -> bool {
    let rooms = match c.store.rooms_of(sid).await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(sid, "leave deferred: {e}");
            return false;
        }
    };
    let mut complete = true;
    for room in rooms {
        match c.store.leave(sid, &room).await {
            Ok((id, left)) => {
                if left > 0 {
                    state.metrics.delivered(left as u64);
                    announce_left(io, room, id, sid).await;
                }
            }
            // Already gone (a leave raced with the disconnect).
            Err(StoreError::Rule(_)) => {}
            Err(StoreError::Redis(e)) => {
                tracing::warn!(sid, "leave deferred: {e}");
                complete = false;
            }
        }
    }
    complete
}

/// The node's background duty: heartbeat, sweep of dead nodes, and leaves
/// that failed while Redis was down. Runs until aborted.
pub(crate) async fn upkeep<A: Adapter>(state: Arc<AppState>, io: SocketIo<A>) {
    let Some(c) = state.cluster.as_ref() else {
        return;
    };
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match c.store.heartbeat(HEARTBEAT_TTL).await {
            Ok(true) => {}
            Ok(false) => c.restore().await,
            Err(e) => {
                tracing::debug!("heartbeat failed: {e}");
                continue;
            }
        }
        sweep(c, &io).await;
        let orphans =
            std::mem::take(&mut *c.orphans.lock().unwrap_or_else(PoisonError::into_inner));
        for sid in orphans {
            if !leave_all(&state, c, &io, &sid).await {
                c.orphans
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sid);
            }
        }
    }
}

/// Removes the members of nodes whose heartbeat lapsed, and tells their rooms.
async fn sweep<A: Adapter>(c: &Cluster, io: &SocketIo<A>) {
    match c.store.sweep().await {
        Ok(gone) => {
            for (room, id) in gone {
                tracing::info!(room = %room, peer = %id, "removed: its node stopped");
                announce_left(io, room, id, "").await;
            }
        }
        Err(e) => tracing::debug!("sweep failed: {e}"),
    }
}

/// Graceful stop: end this node's heartbeat and remove its members now, so
/// the other nodes' peers see them leave at once rather than after the TTL.
pub(crate) async fn retire<A: Adapter>(state: &AppState, io: &SocketIo<A>) {
    let Some(c) = state.cluster.as_ref() else {
        return;
    };
    match c.store.retire().await {
        Ok(()) => sweep(c, io).await,
        Err(e) => tracing::warn!("could not retire this node from Redis: {e}"),
    }
}
