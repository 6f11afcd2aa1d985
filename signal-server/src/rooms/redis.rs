//! Room state in Redis, shared by every node: the rules of
//! [`super::LocalStore`] for connections that live on different servers.
//!
//! A connection is named `node/sid`. Keys, under a prefix `P`:
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:r:{room}` | hash | `mode`, `pw` (SHA-256 of the password, or empty), `seq` (join counter), `hb` (history bytes) |
//! | `P:r:{room}:m` | hash | connection → `seq` `\n` member JSON |
//! | `P:r:{room}:p` | hash | peer id → connection (`!conn` while the seat is held) |
//! | `P:r:{room}:k:{peer}`, `…:b` | list, string (TTL) | events kept for a held seat, and their bytes |
//! | `P:held` | sorted set | held seats (`room \n conn`) by deadline, in ms of Redis's clock |
//! | `P:r:{room}:h` | list | chat history, oldest first: `bytes \t ip \t json` |
//! | `P:ip:{ip}:b`, `:k`, `:o` | string, string, list | history an address wrote and that is still kept: bytes, messages, and where (`room \n id`, oldest first) |
//! | `P:c:{conn}` | set | rooms of a connection |
//! | `P:n:{node}` | string with TTL | the node's heartbeat |
//! | `P:n:{node}:mark` | string with TTL | set only by the heartbeat: its absence means Redis lost this node's state |
//! | `P:n:{node}:c` | set | connections of a node with at least one room |
//! | `P:nodes` | set | nodes that have connections in some room |
//! | `P:sfu` | hash | SFU node → `peers simulcast` (its load, and whether it forwards simulcast), as it last announced |
//! | `P:sfu:{node}` | string with TTL | an SFU node's liveness ([`SFU_ALIVE_TTL`]) |
//! | `P:sfu:{node}:rooms` | set | the SFU rooms a node owns |
//!
//! An SFU room's hash also has `sfu` (its owner node; empty while no SFU
//! node lives) and `se` (its placement's epoch: Redis's clock in ms at the
//! move, above the last one, so it never repeats).
//!
//! A member's JSON carries its resume token (`tok`).
//!
//! Join (and resume), leave, chat, media state, hold, keep, expiry and the
//! dead-node sweep are Lua scripts
//! (`lua/`), so that two nodes can never both admit the last seat of a
//! room, a room never keeps a half-removed member, and a message or a media
//! state is only stored for a member. (They touch keys derived inside the
//! script: fine on one Redis server, not on a Redis Cluster.)
//!
//! The password is stored as SHA-256 of (room, password), never in clear;
//! the comparison is of hashes, so its timing says nothing useful about the
//! password.
//!
//! There is no lock across nodes: the closures of `join`, `leave` and
//! `chat` run right after the script, so their deliveries follow the state
//! change on this node, and may interleave with another node's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protocol::{ChatMessage, MediaState, Mode, PeerId, PeerInfo, RoomName};
use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use socketioxide::socket::Sid;

use super::{
    Act, ActError, Acted, Dest, HeldSeat, How, JoinError, JoinSpec, Joined, Keep, Left, Member,
    NewMessage, NotInRoom, Parcel, Receipt, ReceiptError, Result, RoomLimits, RoomStore,
    RouteError, SfuHost, SfuMove, SfuNodes, SfuRoute, SfuSquared, StoreError, Swept,
};
use crate::redis_driver::{DriverError, ReconnectingDriver};

/// How long a node's heartbeat lives; nodes refresh it well within that.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// The functions the scripts that remove members or history share.
const HISTORY_FN: &str = include_str!("lua/history.lua");
const REMOVE_FN: &str = include_str!("lua/remove.lua");
const HOLD_FN: &str = include_str!("lua/hold_fn.lua");
const SFU_FN: &str = include_str!("lua/sfu_fn.lua");

/// How long an SFU node's liveness lives (`P:sfu:{node}`), refreshed every
/// [`crate::upkeep::SFU_EVERY`]: shorter than the node's heartbeat, so that
/// the rooms of an SFU node that died move within seconds.
pub const SFU_ALIVE_TTL: Duration = Duration::from_secs(3);

/// Held seats one expiry pass ends at most (the rest on the next).
const EXPIRE_BATCH: usize = 64;

/// One member as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: PeerId,
    name: String,
    conn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media: Option<MediaState>,
    /// The seat's resume token.
    #[serde(default)]
    tok: String,
    /// A raised hand.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    hand: bool,
}

impl Stored {
    fn info(&self, host: bool) -> PeerInfo {
        PeerInfo {
            media: self.media,
            host,
            hand: self.hand,
            ..self.ident()
        }
    }
    fn ident(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            media: None,
            host: false,
            hand: false,
        }
    }
}

/// A member's connection: which node, which socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub node: Arc<str>,
    pub sid: Sid,
}

impl Conn {
    fn parse(s: &str) -> Option<Self> {
        let (node, sid) = s.split_once('/')?;
        Some(Self {
            node: node.into(),
            sid: sid.parse().ok()?,
        })
    }
}

/// This node's memberships: how each joined, to put them back if Redis
/// loses its data.
type Memberships = HashMap<(Sid, RoomName), (JoinSpec, PeerId)>;

/// The shared room state of all nodes.
#[derive(Clone)]
pub struct RedisStore {
    redis: ReconnectingDriver,
    prefix: Arc<str>,
    node: Arc<str>,
    limits: RoomLimits,
    scripts: Arc<Scripts>,
    mine: Arc<Mutex<Memberships>>,
    /// Seats held, as of the last expiry pass.
    held: Arc<std::sync::atomic::AtomicUsize>,
    /// Since when this node is connected to Redis without a break (the
    /// driver's connection count then, and the instant).
    connected: Arc<Mutex<(u64, std::time::Instant)>>,
    /// How long it must have been before it moves SFU rooms.
    sfu_settle: Duration,
}

struct Scripts {
    join: Script,
    leave: Script,
    sweep: Script,
    chat: Script,
    media: Script,
    hold: Script,
    keep: Script,
    expire: Script,
    act: Script,
    sfu_owner: Script,
    sfu_sweep: Script,
    sfu_announce: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A reply field of a script, or its default.
fn field<T: redis::FromRedisValue + Default>(reply: &[redis::Value], i: usize) -> T {
    reply
        .get(i)
        .and_then(|v| T::from_redis_value(v.clone()).ok())
        .unwrap_or_default()
}

impl RedisStore {
    pub fn new(redis: ReconnectingDriver, prefix: &str, node: &str, limits: RoomLimits) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
            node: node.into(),
            limits,
            scripts: Arc::new(Scripts {
                join: Script::new(&format!("{SFU_FN}{}", include_str!("lua/join.lua"))),
                leave: Script::new(&format!(
                    "{HISTORY_FN}{REMOVE_FN}{}",
                    include_str!("lua/leave.lua")
                )),
                sweep: Script::new(&format!(
                    "{HISTORY_FN}{REMOVE_FN}{HOLD_FN}{}",
                    include_str!("lua/sweep.lua")
                )),
                chat: Script::new(&format!("{HISTORY_FN}{}", include_str!("lua/chat.lua"))),
                media: Script::new(include_str!("lua/media.lua")),
                hold: Script::new(&format!("{HOLD_FN}{}", include_str!("lua/hold.lua"))),
                keep: Script::new(include_str!("lua/keep.lua")),
                expire: Script::new(&format!(
                    "{HISTORY_FN}{REMOVE_FN}{HOLD_FN}{}",
                    include_str!("lua/expire.lua")
                )),
                act: Script::new(&format!(
                    "{HISTORY_FN}{REMOVE_FN}{}",
                    include_str!("lua/act.lua")
                )),
                sfu_owner: Script::new(&format!("{SFU_FN}{}", include_str!("lua/sfu_owner.lua"))),
                sfu_sweep: Script::new(&format!("{SFU_FN}{}", include_str!("lua/sfu_sweep.lua"))),
                sfu_announce: Script::new(include_str!("lua/sfu_announce.lua")),
            }),
            mine: Arc::new(Mutex::new(HashMap::new())),
            held: Arc::default(),
            connected: Arc::new(Mutex::new((0, std::time::Instant::now()))),
            sfu_settle: SFU_ALIVE_TTL + crate::upkeep::SFU_EVERY,
        }
    }

    /// How long this node waits after (re)connecting to Redis before it
    /// moves SFU rooms (default: the SFU liveness TTL and one sweep). Tests
    /// that stage liveness themselves set zero.
    pub fn with_sfu_settle(mut self, settle: Duration) -> Self {
        self.sfu_settle = settle;
        self
    }

    /// Whether this node may move SFU rooms off SFU nodes whose liveness
    /// lapsed: only once it has been connected to Redis, with no command
    /// failing (Redis loading its data, a stall past the command timeout),
    /// long enough for every live SFU node to have announced itself since.
    /// Right after an outage every liveness has lapsed, live nodes' too.
    fn may_move_sfu(&self) -> bool {
        let health = self.redis.health();
        let connects = health.connects.load(std::sync::atomic::Ordering::Relaxed);
        let mut since = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !health.is_healthy() {
            *since = (connects, std::time::Instant::now());
            return false;
        }
        if since.0 != connects {
            *since = (connects, std::time::Instant::now());
        }
        since.1.elapsed() >= self.sfu_settle
    }

    fn grace_ms(&self) -> u64 {
        self.limits.resume_grace.as_millis() as u64
    }

    /// This node's name in Redis.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    fn mine(&self) -> MutexGuard<'_, Memberships> {
        self.mine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn conn_key(&self, sid: Sid) -> String {
        format!("{}/{sid}", self.node)
    }

    fn room_key(&self, room: &RoomName) -> String {
        format!("{}:r:{}", self.prefix, room.as_str())
    }

    fn heartbeat_key(&self) -> String {
        format!("{}:n:{}", self.prefix, self.node)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> std::result::Result<T, DriverError> {
        let mut conn = self.redis.connection()?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> std::result::Result<T, DriverError> {
        let mut conn = self.redis.connection()?;
        inv.invoke_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))
    }

    /// The member stored for `conn` in `room`.
    async fn stored(
        &self,
        room: &RoomName,
        conn: Sid,
    ) -> std::result::Result<Option<Stored>, DriverError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(format!("{}:m", self.room_key(room)))
            .arg(self.conn_key(conn));
        let v: Option<String> = self.run(cmd).await?;
        Ok(v.and_then(|v| decode_member(&v)).map(|(_, m)| m))
    }

    /// Where peer `peer` of `room` is.
    async fn dest_of(
        &self,
        room: &RoomName,
        peer: &PeerId,
    ) -> std::result::Result<Option<Dest<Conn>>, DriverError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(format!("{}:p", self.room_key(room)))
            .arg(peer.as_str());
        let conn: Option<String> = self.run(cmd).await?;
        Ok(conn.as_deref().and_then(dest))
    }

    /// `restoring`: putting back a membership Redis lost (an SFU room it
    /// recreates is not refused for want of a live SFU node: it waits for
    /// the node that hosts it to claim it).
    async fn take_seat(
        &self,
        conn: Sid,
        spec: &JoinSpec,
        id: PeerId,
        restoring: bool,
    ) -> Result<Joined<Conn>, JoinError> {
        let key = self.conn_key(conn);
        let r = self.room_key(&spec.room);
        let me = Stored {
            id,
            name: spec.name.as_str().to_owned(),
            conn: key.clone(),
            media: None,
            tok: spec.token.clone(),
            hand: false,
        };
        let pw = spec
            .password
            .as_ref()
            .map(|p| password_hash(&spec.room, p.as_bytes()))
            .unwrap_or_default();
        let keys = [
            r.clone(),
            format!("{r}:m"),
            format!("{r}:p"),
            format!("{r}:h"),
            format!("{}:c:{key}", self.prefix),
            format!("{}:n:{}:c", self.prefix, self.node),
            format!("{}:nodes", self.prefix),
            self.heartbeat_key(),
        ];
        let mut inv = self.scripts.join.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(&key)
            .arg(spec.room.as_str())
            .arg(serde_json::to_string(&me).unwrap_or_default())
            .arg(spec.mode.to_string())
            .arg(&pw)
            .arg(self.limits.max_peers)
            .arg(&*self.node)
            .arg(HEARTBEAT_TTL.as_millis() as u64)
            .arg(if self.limits.sfu.is_ok() { "1" } else { "0" })
            .arg(self.limits.rooms_per_conn)
            .arg(spec.resume.as_ref().map_or("", |t| t.as_str()))
            .arg(&spec.token)
            .arg(&*self.prefix)
            .arg(if restoring { "1" } else { "0" });
        let reply: Vec<redis::Value> = self.invoke(inv).await?;
        let outcome: String = field(&reply, 0);
        match outcome.as_str() {
            "unauthorized" => return Err(StoreError::Rule(JoinError::Unauthorized)),
            "full" => return Err(StoreError::Rule(JoinError::RoomFull(self.limits.max_peers))),
            "mode" => {
                let why = self.limits.sfu.err().unwrap_or_default();
                return Err(StoreError::Rule(JoinError::ModeUnavailable(why)));
            }
            "nosfu" => {
                return Err(StoreError::Rule(JoinError::ModeUnavailable(
                    "no server of this deployment runs the SFU now; join with mode \"mesh\"",
                )));
            }
            "rooms" => {
                let max = self.limits.rooms_per_conn;
                return Err(StoreError::Rule(JoinError::TooManyRooms(max)));
            }
            "locked" => return Err(StoreError::Rule(JoinError::Locked)),
            _ => {}
        }
        let mode: Mode = field::<String>(&reply, 1).parse().unwrap_or(spec.mode);
        let me = decode_member(&field::<String>(&reply, 2));
        let mut others: Vec<(u64, Stored)> = field::<Vec<String>>(&reply, 3)
            .iter()
            .filter_map(|v| decode_member(v))
            .collect();
        others.retain(|(_, m)| m.conn != key);
        others.sort_by_key(|(n, _)| *n);
        // The host: the lowest join number (me, or the first of the others).
        let my_seq = me.as_ref().map_or(u64::MAX, |(n, _)| *n);
        let host_seq = others.first().map_or(my_seq, |(n, _)| (*n).min(my_seq));
        let history = field::<Vec<String>>(&reply, 4)
            .iter()
            .filter_map(|h| decode_history(h))
            .collect();
        let (_, me) = me.ok_or(StoreError::Unavailable(DriverError::Down))?;
        let how = match outcome.as_str() {
            "ok" => How::Fresh,
            "resumed" => How::Resumed {
                kept: field::<Vec<String>>(&reply, 5)
                    .iter()
                    .filter_map(|p| serde_json::from_str(p).ok())
                    .collect(),
                replaced: Conn::parse(&field::<String>(&reply, 6)),
            },
            _ => How::Again,
        };
        let others_at = others
            .iter()
            .filter_map(|(_, m)| Conn::parse(&m.conn))
            .collect();
        Ok(Joined {
            me: PeerInfo {
                host: my_seq == host_seq,
                ..me.ident()
            },
            mode,
            others_at,
            peers: others
                .into_iter()
                .map(|(n, m)| m.info(n == host_seq))
                .collect(),
            history,
            token: me.tok,
            how,
            locked: field::<String>(&reply, 7) == "1",
            sfu_epoch: (mode == Mode::Sfu)
                .then(|| field::<String>(&reply, 8).parse().unwrap_or_default()),
        })
    }

    async fn remove(&self, conn: &str, room: &RoomName) -> Result<Left<Conn>, NotInRoom> {
        let mut inv = self.scripts.leave.prepare_invoke();
        inv.arg(&*self.prefix).arg(room.as_str()).arg(conn);
        let r: Option<Vec<String>> = self.invoke(inv).await?;
        r.as_deref()
            .and_then(left_of)
            .ok_or(StoreError::Rule(NotInRoom))
    }
}

impl RoomStore for RedisStore {
    type Addr = Conn;

    async fn join<R: Send>(
        &self,
        conn: Sid,
        spec: JoinSpec,
        id: PeerId,
        admit: impl FnOnce(Joined<Conn>) -> R + Send,
    ) -> Result<R, JoinError> {
        let mut spec = spec;
        let joined = self.take_seat(conn, &spec, id, false).await?;
        // Remembered as it is now, to be put back as it is if Redis loses
        // it: the seat's name (a resumed one keeps its own) and token.
        spec.resume = None;
        spec.token = joined.token.clone();
        // The room's mode, not the one asked for: whichever member puts the
        // room back first makes it as it was.
        spec.mode = joined.mode;
        if let Ok(name) = protocol::DisplayName::parse(&joined.me.name) {
            spec.name = name;
        }
        let key = (conn, spec.room.clone());
        self.mine().insert(key, (spec, joined.me.id.clone()));
        Ok(admit(joined))
    }

    async fn hold(&self, conn: Sid) -> Result<Vec<HeldSeat>> {
        let mut inv = self.scripts.hold.prepare_invoke();
        inv.arg(&*self.prefix)
            .arg(self.conn_key(conn))
            .arg(self.grace_ms());
        let flat: Vec<String> = self.invoke(inv).await?;
        Ok(held_seats(&flat))
    }

    async fn keep(
        &self,
        room: &RoomName,
        peer: &PeerId,
        parcel: Parcel,
    ) -> Result<Keep<Conn>, RouteError> {
        let mut inv = self.scripts.keep.prepare_invoke();
        inv.arg(&*self.prefix)
            .arg(room.as_str())
            .arg(peer.as_str())
            .arg(serde_json::to_string(&parcel).unwrap_or_default())
            .arg(self.limits.kept_events)
            .arg(self.limits.kept_bytes)
            .arg(self.grace_ms() + 5_000);
        let reply: Vec<String> = self.invoke(inv).await?;
        match reply.first().map(String::as_str) {
            Some("kept") => Ok(Keep::Kept),
            Some("live") => reply
                .get(1)
                .and_then(|c| Conn::parse(c))
                .map(|c| Keep::Live(c, parcel))
                .ok_or(StoreError::Rule(RouteError::UnknownPeer)),
            _ => Err(StoreError::Rule(RouteError::UnknownPeer)),
        }
    }

    async fn act(&self, conn: Sid, room: &RoomName, act: Act) -> Result<Acted<Conn>, ActError> {
        let (kind, arg) = match &act {
            Act::Hand(up) => ("hand", if *up { "1" } else { "0" }),
            Act::Lock(on) => ("lock", if *on { "1" } else { "0" }),
            Act::Mute(p) => ("mute", p.as_str()),
            Act::Kick(p) => ("kick", p.as_str()),
        };
        let mut inv = self.scripts.act.prepare_invoke();
        inv.arg(&*self.prefix)
            .arg(room.as_str())
            .arg(self.conn_key(conn))
            .arg(kind)
            .arg(arg);
        let reply: Vec<String> = self.invoke(inv).await?;
        let rule = |e| Err(StoreError::Rule(e));
        match (
            reply.first().map(String::as_str),
            reply.get(1).map(String::as_str),
        ) {
            (Some("ok"), Some(by)) => Ok(Acted {
                by: PeerId::from(by.to_owned()),
                count: reply.get(2).and_then(|n| n.parse().ok()).unwrap_or(0),
                target: reply.get(3).and_then(|t| dest(t)),
                left: reply.get(4..).and_then(left_of),
            }),
            (_, Some("forbidden")) => rule(ActError::Forbidden),
            (_, Some("to_self")) => rule(ActError::ToSelf),
            (_, Some("unknown_peer")) => rule(ActError::UnknownPeer),
            _ => rule(ActError::NotInRoom),
        }
    }

    async fn expire(&self) -> Result<Vec<(RoomName, Left<Conn>)>> {
        let mut inv = self.scripts.expire.prepare_invoke();
        inv.arg(&*self.prefix).arg(EXPIRE_BATCH);
        let flat: Vec<String> = self.invoke(inv).await?;
        let held = flat.first().and_then(|n| n.parse().ok()).unwrap_or(0);
        self.held.store(held, std::sync::atomic::Ordering::Relaxed);
        Ok(left_list(flat.get(1..).unwrap_or_default()))
    }

    fn held_count(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn leave<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        then: impl FnOnce(Left<Conn>) -> R + Send,
    ) -> Result<R, NotInRoom> {
        // Forgotten first: a leave that cannot reach Redis is retried,
        // never undone by a restore.
        self.mine().remove(&(conn, room.clone()));
        let left = self.remove(&self.conn_key(conn), room).await?;
        Ok(then(left))
    }

    async fn rooms_of(&self, conn: Sid) -> Result<Vec<RoomName>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(format!("{}:c:{}", self.prefix, self.conn_key(conn)));
        let names: Vec<String> = self.run(cmd).await?;
        Ok(names
            .iter()
            .filter_map(|n| RoomName::parse(n).ok())
            .collect())
    }

    async fn member(&self, conn: Sid, room: &RoomName) -> Result<Member, NotInRoom> {
        let r = self.room_key(room);
        let mut c = self.redis.connection()?;
        let (v, count, mode): (Option<String>, usize, Option<String>) = redis::pipe()
            .cmd("HGET")
            .arg(format!("{r}:m"))
            .arg(self.conn_key(conn))
            .cmd("HLEN")
            .arg(format!("{r}:m"))
            .cmd("HGET")
            .arg(&r)
            .arg("mode")
            .query_async(&mut c)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        let (_, me) = v
            .and_then(|v| decode_member(&v))
            .ok_or(StoreError::Rule(NotInRoom))?;
        Ok(Member {
            me: me.ident(),
            mode: mode.and_then(|m| m.parse().ok()).unwrap_or(Mode::Mesh),
            count,
        })
    }

    async fn route(
        &self,
        conn: Sid,
        room: &RoomName,
        to: &PeerId,
    ) -> Result<(PeerId, Dest<Conn>), RouteError> {
        let me = self
            .stored(room, conn)
            .await?
            .ok_or(StoreError::Rule(RouteError::NotInRoom))?;
        if &me.id == to {
            return Err(StoreError::Rule(RouteError::ToSelf));
        }
        let target = self
            .dest_of(room, to)
            .await?
            .ok_or(StoreError::Rule(RouteError::UnknownPeer))?;
        Ok((me.id, target))
    }

    async fn addr_of(&self, room: &RoomName, peer: &PeerId) -> Result<Option<Dest<Conn>>> {
        Ok(self.dest_of(room, peer).await?)
    }

    async fn chat<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        new: NewMessage,
        publish: impl FnOnce(ChatMessage, usize) -> R + Send,
    ) -> Result<R, NotInRoom> {
        let me = self
            .stored(room, conn)
            .await?
            .ok_or(StoreError::Rule(NotInRoom))?;
        let bytes = new.bytes(room, &me.name);
        let ip = new
            .from_ip
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        let msg = ChatMessage {
            room: room.clone(),
            id: new.id,
            from: me.ident(),
            text: new.text.as_str().to_owned(),
            ts: new.ts,
        };
        // Membership checked again with the push: a message must not
        // outlive its room (it would show up in a new room of that name).
        let r = self.room_key(room);
        let entry = format!(
            "{bytes}\t{ip}\t{}",
            serde_json::to_string(&msg).unwrap_or_default()
        );
        let mut inv = self.scripts.chat.prepare_invoke();
        inv.key(&r)
            .key(format!("{r}:m"))
            .key(format!("{r}:h"))
            .arg(self.conn_key(conn))
            .arg(entry)
            .arg(self.limits.history)
            .arg(bytes)
            .arg(self.limits.history_bytes)
            .arg(self.limits.history_bytes_per_ip)
            .arg(&*self.prefix)
            .arg(ip)
            .arg(room.as_str())
            .arg(&msg.id);
        let count: usize = self.invoke(inv).await?;
        if count == 0 {
            return Err(StoreError::Rule(NotInRoom));
        }
        Ok(publish(msg, count))
    }

    async fn set_media(
        &self,
        conn: Sid,
        room: &RoomName,
        media: MediaState,
    ) -> Result<(PeerId, usize), NotInRoom> {
        let key = format!("{}:m", self.room_key(room));
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&key).arg(self.conn_key(conn));
        let raw: Option<String> = self.run(cmd).await?;
        let Some((n, mut m)) = raw.as_deref().and_then(decode_member) else {
            return Err(StoreError::Rule(NotInRoom));
        };
        m.media = Some(media);
        let v = format!("{n}\n{}", serde_json::to_string(&m).unwrap_or_default());
        let mut inv = self.scripts.media.prepare_invoke();
        inv.key(&key).arg(self.conn_key(conn)).arg(v);
        let count: usize = self.invoke(inv).await?;
        if count == 0 {
            return Err(StoreError::Rule(NotInRoom));
        }
        Ok((m.id, count))
    }

    async fn receipt(
        &self,
        conn: Sid,
        room: &RoomName,
        msg: &str,
    ) -> Result<Receipt<Conn>, ReceiptError> {
        let me = self
            .stored(room, conn)
            .await?
            .ok_or(StoreError::Rule(ReceiptError::NotInRoom))?;
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(format!("{}:h", self.room_key(room))).arg(0).arg(-1);
        let history: Vec<String> = self.run(cmd).await?;
        let author = history
            .iter()
            .filter_map(|h| decode_history(h))
            .find(|m| m.id == msg)
            .map(|m| m.from.id)
            .ok_or(StoreError::Rule(ReceiptError::UnknownMessage))?;
        let to = self
            .dest_of(room, &author)
            .await?
            .ok_or(StoreError::Rule(ReceiptError::AuthorGone))?;
        Ok(Receipt {
            from: me.id,
            author,
            to,
        })
    }

    fn counts(&self) -> (usize, usize) {
        let mine = self.mine();
        let rooms: HashSet<&RoomName> = mine.keys().map(|(_, r)| r).collect();
        (rooms.len(), mine.len())
    }

    /// Refreshes this node's heartbeat; members of nodes whose heartbeat
    /// expired are removed by [`Self::sweep`] on any node. `false` after
    /// Redis lost its data (a restart without persistence) or after this
    /// node stalled past the TTL. Told by a marker only this call writes
    /// (`P:n:{node}:mark`): the heartbeat itself is also set by a join,
    /// which would hide the loss.
    async fn heartbeat(&self) -> Result<bool> {
        let key = self.heartbeat_key();
        let ms = HEARTBEAT_TTL.as_millis() as u64;
        let mut conn = self.redis.connection()?;
        let ((), old): ((), Option<String>) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ms)
            .cmd("SET")
            .arg(format!("{key}:mark"))
            .arg(1)
            .arg("PX")
            .arg(ms)
            .arg("GET")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        Ok(old.is_some())
    }

    async fn sweep(&self) -> Result<Swept<Conn>> {
        let mut inv = self.scripts.sweep.prepare_invoke();
        inv.arg(&*self.prefix).arg(self.grace_ms());
        let (held, gone): (Vec<String>, Vec<String>) = self.invoke(inv).await?;
        Ok(Swept {
            held: held_seats(&held),
            gone: left_list(&gone),
        })
    }

    /// The next [`Self::sweep`] on any node removes this node's members
    /// without waiting for the TTL.
    async fn retire(&self) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.heartbeat_key());
        Ok(self.run(cmd).await?)
    }

    /// Peers are not told: for them nothing changed. Chat history is not
    /// restored.
    async fn restore(&self) -> usize {
        let all: Vec<_> = self
            .mine()
            .iter()
            .map(|((sid, _), (spec, id))| (*sid, spec.clone(), id.clone()))
            .collect();
        let mut restored = 0;
        for (sid, spec, id) in all {
            let key = (sid, spec.room.clone());
            match self.take_seat(sid, &spec, id, true).await {
                Ok(j) if j.fresh() => {
                    restored += 1;
                    // It left while we were restoring: take it out again.
                    if !self.mine().contains_key(&key) {
                        let _ = self.remove(&self.conn_key(sid), &key.1).await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%sid, "membership not restored: {e}"),
            }
        }
        restored
    }

    fn forget(&self, conn: Sid) {
        self.mine().retain(|(c, _), _| *c != conn);
    }

    async fn sfu_addr_of(&self, room: &RoomName, peer: &PeerId) -> Result<Option<Dest<Conn>>> {
        let r = self.room_key(room);
        let mut conn = self.redis.connection()?;
        let (owner, dest): (Option<String>, Option<String>) = redis::pipe()
            .cmd("HGET")
            .arg(&r)
            .arg("sfu")
            .cmd("HGET")
            .arg(format!("{r}:p"))
            .arg(peer.as_str())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        if owner.as_deref() != Some(&*self.node) {
            return Ok(None);
        }
        Ok(dest.as_deref().and_then(self::dest))
    }

    async fn sfu_route(&self, room: &RoomName) -> Result<SfuRoute> {
        let mut inv = self.scripts.sfu_owner.prepare_invoke();
        inv.arg(&*self.prefix)
            .arg(room.as_str())
            .arg(&*self.node)
            .arg(if self.may_move_sfu() { "1" } else { "0" });
        let reply: Vec<String> = self.invoke(inv).await?;
        let epoch = reply
            .get(1)
            .and_then(|e| e.parse().ok())
            .unwrap_or_default();
        let host = match reply.first().map(String::as_str) {
            None | Some("") => SfuHost::Nowhere,
            Some(owner) if owner == &*self.node => SfuHost::Here,
            Some(owner) => SfuHost::Elsewhere(owner.into()),
        };
        let moved = match reply.get(2).map(String::as_str) {
            None | Some("") => None,
            Some(from) => Some(SfuMove {
                room: room.clone(),
                to: reply[0].clone(),
                from: (from != "-").then(|| from.to_owned()),
                epoch,
                members: reply
                    .get(3)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_default(),
            }),
        };
        Ok(SfuRoute { host, epoch, moved })
    }

    async fn sfu_announce(
        &self,
        peers: usize,
        simulcast: bool,
        hosted: &[RoomName],
    ) -> Result<SfuSquared> {
        let mut inv = self.scripts.sfu_announce.prepare_invoke();
        inv.arg(&*self.prefix)
            .arg(&*self.node)
            .arg(SFU_ALIVE_TTL.as_millis() as u64)
            .arg(format!("{peers} {}", u8::from(simulcast)));
        for room in hosted {
            inv.arg(room.as_str());
        }
        let (gone, orphans): (Vec<String>, Vec<String>) = self.invoke(inv).await?;
        Ok(SfuSquared {
            gone: gone
                .chunks_exact(4)
                .filter_map(|g| {
                    Some(SfuMove {
                        room: RoomName::parse(&g[0]).ok()?,
                        to: g[1].clone(),
                        from: Some(self.node.to_string()),
                        epoch: g[2].parse().ok()?,
                        members: g[3].parse().unwrap_or_default(),
                    })
                })
                .collect(),
            orphans: orphans
                .iter()
                .filter_map(|r| RoomName::parse(r).ok())
                .collect(),
        })
    }

    async fn sfu_sweep(&self, retiring: bool) -> Result<SfuNodes> {
        let moves = if self.may_move_sfu() {
            "all"
        } else if retiring {
            "self"
        } else {
            "none"
        };
        let mut inv = self.scripts.sfu_sweep.prepare_invoke();
        inv.arg(&*self.prefix).arg(&*self.node).arg(moves);
        let (flat, live, simulcast): (Vec<String>, String, String) = self.invoke(inv).await?;
        let moved = flat
            .chunks_exact(5)
            .filter_map(|m| {
                Some(SfuMove {
                    room: RoomName::parse(&m[0]).ok()?,
                    to: m[1].clone(),
                    from: Some(m[3].clone()),
                    epoch: m[2].parse().ok()?,
                    members: m[4].parse().unwrap_or_default(),
                })
            })
            .collect();
        Ok(SfuNodes {
            moved,
            live: live == "1",
            simulcast: simulcast == "1",
        })
    }

    async fn sfu_retire(&self) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(format!("{}:sfu:{}", self.prefix, self.node));
        Ok(self.run(cmd).await?)
    }
}

/// room, peer, room, peer, ... → the held seats.
fn held_seats(flat: &[String]) -> Vec<HeldSeat> {
    flat.chunks_exact(2)
        .filter_map(|p| {
            Some(HeldSeat {
                room: RoomName::parse(&p[0]).ok()?,
                id: PeerId::from(p[1].clone()),
            })
        })
        .collect()
}

/// room, peer, members left, new host or '', ... → the leaves.
fn left_list(flat: &[String]) -> Vec<(RoomName, Left<Conn>)> {
    flat.chunks_exact(5)
        .filter_map(|p| Some((RoomName::parse(&p[0]).ok()?, left_of(&p[1..])?)))
        .collect()
}

/// peer, members left, new host or '', the members' connections
/// (comma-separated) → the leave.
fn left_of(p: &[String]) -> Option<Left<Conn>> {
    Some(Left {
        id: PeerId::from(p.first()?.clone()),
        remaining: p.get(1)?.parse().ok()?,
        host: p
            .get(2)
            .filter(|h| !h.is_empty())
            .map(|h| PeerId::from(h.clone())),
        others_at: p
            .get(3)
            .map(|c| c.split(',').filter_map(Conn::parse).collect())
            .unwrap_or_default(),
    })
}

/// A peer entry (`conn`, or `!conn` while the seat is held) → where it is.
fn dest(entry: &str) -> Option<Dest<Conn>> {
    match entry.strip_prefix('!') {
        Some(_) => Some(Dest::Held),
        None => Conn::parse(entry).map(Dest::Live),
    }
}

/// A kept history entry (`bytes \t ip \t json`) → the message.
fn decode_history(entry: &str) -> Option<ChatMessage> {
    serde_json::from_str(entry.splitn(3, '\t').nth(2)?).ok()
}

/// `seq \n json` → (seq, member).
fn decode_member(v: &str) -> Option<(u64, Stored)> {
    let (n, json) = v.split_once('\n')?;
    Some((n.parse().ok()?, serde_json::from_str(json).ok()?))
}

fn password_hash(room: &RoomName, password: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"signal-server room password\0");
    h.update(room.as_str().as_bytes());
    h.update(b"\0");
    h.update(password);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
