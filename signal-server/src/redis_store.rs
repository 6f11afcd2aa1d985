//! Room state in Redis, shared by every node: the same rules as
//! [`crate::registry::Registry`] (capacity, password, idempotent join, join
//! order, bounded history, rooms removed when empty), for connections that
//! live on different servers.
//!
//! A connection is named `node/sid`. Keys, under a prefix `P`:
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:r:{room}` | hash | `mode`, `pw` (SHA-256 of the password, or empty), `seq` (join counter) |
//! | `P:r:{room}:m` | hash | connection → `seq` `\n` member JSON |
//! | `P:r:{room}:p` | hash | peer id → connection |
//! | `P:r:{room}:h` | list | chat history, JSON, oldest first |
//! | `P:c:{conn}` | set | rooms of a connection |
//! | `P:n:{node}` | string with TTL | the node's heartbeat |
//! | `P:n:{node}:mark` | string with TTL | set only by the heartbeat: its absence means Redis lost this node's state |
//! | `P:n:{node}:c` | set | connections of a node with at least one room |
//! | `P:nodes` | set | nodes that have connections in some room |
//!
//! Join, leave and the dead-node sweep are Lua scripts, so that two nodes
//! can never both admit the last seat of a room, and a room never keeps a
//! half-removed member. (They touch keys derived inside the script: fine on
//! one Redis server, not on a Redis Cluster.)
//!
//! The password is stored as SHA-256 of (room, password), never in clear;
//! the comparison is of hashes, so its timing says nothing useful about the
//! password.

use protocol::{ChatMessage, ChatText, MediaState, Mode, PeerId, PeerInfo, RoomName};
use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::redis_driver::{DriverError, ReconnectingDriver};
use crate::registry::{
    JoinError, JoinSpec, Joined, NotInRoom, ReceiptError, RoomLimits, SignalError,
};

/// A failed store operation: the rule that refused it, or Redis itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<E> {
    #[error(transparent)]
    Rule(E),
    #[error(transparent)]
    Redis(#[from] DriverError),
}

/// One member as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: PeerId,
    name: String,
    conn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media: Option<MediaState>,
}

impl Stored {
    fn info(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            media: self.media,
        }
    }
    fn ident(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            media: None,
        }
    }
}

/// A member's connection: which node, which socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub node: String,
    pub sid: String,
}

impl Conn {
    fn key(&self) -> String {
        format!("{}/{}", self.node, self.sid)
    }
    fn parse(s: &str) -> Option<Self> {
        let (node, sid) = s.split_once('/')?;
        Some(Self {
            node: node.to_owned(),
            sid: sid.to_owned(),
        })
    }
}

const JOIN: &str = r#"
-- KEYS: room, members, peers, history, connrooms, nodeconns, nodes, node heartbeat
-- ARGV: conn, room name, member json, mode, pw hash, max peers, node, heartbeat ttl ms
-- This node is alive (it runs this): a lapsed heartbeat must not get the
-- new member swept before the next refresh.
redis.call('SET', KEYS[8], 1, 'PX', ARGV[8], 'NX')
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if mine then
  return {'again', redis.call('HGET', KEYS[1], 'mode'), mine,
          redis.call('HVALS', KEYS[2]), redis.call('LRANGE', KEYS[4], 0, -1)}
end
local mode = ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local pw = redis.call('HGET', KEYS[1], 'pw') or ''
  if pw ~= '' and pw ~= ARGV[5] then return {'unauthorized'} end
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then return {'full'} end
  mode = redis.call('HGET', KEYS[1], 'mode')
else
  redis.call('HSET', KEYS[1], 'mode', mode, 'pw', ARGV[5], 'seq', 0)
end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local me = n .. '\n' .. ARGV[3]
local others = redis.call('HVALS', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[1], me)
redis.call('HSET', KEYS[3], cjson.decode(ARGV[3])['id'], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('SADD', KEYS[7], ARGV[7])
return {'ok', mode, me, others, redis.call('LRANGE', KEYS[4], 0, -1)}
"#;

/// Removes one member; shared by LEAVE and SWEEP. Returns {peer id, members left}.
const REMOVE_FN: &str = r#"
local function remove(prefix, room, conn)
  local r = prefix .. ':r:' .. room
  local v = redis.call('HGET', r .. ':m', conn)
  if not v then return nil end
  local json = string.sub(v, string.find(v, '\n') + 1)
  local id = cjson.decode(json)['id']
  redis.call('HDEL', r .. ':m', conn)
  redis.call('HDEL', r .. ':p', id)
  local c = prefix .. ':c:' .. conn
  redis.call('SREM', c, room)
  if redis.call('SCARD', c) == 0 then
    local node = string.sub(conn, 1, string.find(conn, '/') - 1)
    redis.call('SREM', prefix .. ':n:' .. node .. ':c', conn)
  end
  local left = redis.call('HLEN', r .. ':m')
  if left == 0 then redis.call('DEL', r, r .. ':m', r .. ':p', r .. ':h') end
  return {id, left}
end
"#;

const LEAVE: &str = r#"
-- ARGV: prefix, room, conn
return remove(ARGV[1], ARGV[2], ARGV[3])
"#;

const SWEEP: &str = r#"
-- ARGV: prefix. Removes every member whose node has no heartbeat; returns room, peer, ... pairs.
local prefix = ARGV[1]
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':nodes')) do
  if redis.call('EXISTS', prefix .. ':n:' .. node) == 0 then
    local nc = prefix .. ':n:' .. node .. ':c'
    for _, conn in ipairs(redis.call('SMEMBERS', nc)) do
      for _, room in ipairs(redis.call('SMEMBERS', prefix .. ':c:' .. conn)) do
        local r = remove(prefix, room, conn)
        if r then table.insert(out, room); table.insert(out, r[1]) end
      end
      redis.call('DEL', prefix .. ':c:' .. conn)
    end
    redis.call('DEL', nc)
    redis.call('SREM', prefix .. ':nodes', node)
  end
end
return out
"#;

/// How long a node's heartbeat lives; nodes refresh it well within that.
pub const HEARTBEAT_TTL: std::time::Duration = std::time::Duration::from_secs(10);

const CHAT: &str = r#"
-- KEYS: members, history; ARGV: conn, message json, history size
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local keep = tonumber(ARGV[3])
if keep > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -keep, -1)
end
return redis.call('HLEN', KEYS[1])
"#;

/// The shared room state of all nodes.
#[derive(Clone)]
pub struct RedisStore {
    redis: ReconnectingDriver,
    prefix: String,
    node: String,
    limits: RoomLimits,
    join: std::sync::Arc<Script>,
    leave: std::sync::Arc<Script>,
    sweep: std::sync::Arc<Script>,
    chat: std::sync::Arc<Script>,
}

/// What a member lookup found about the addressed peer.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: PeerId,
    pub conn: Conn,
}

impl RedisStore {
    pub fn new(redis: ReconnectingDriver, prefix: &str, node: &str, limits: RoomLimits) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
            limits,
            join: std::sync::Arc::new(Script::new(JOIN)),
            leave: std::sync::Arc::new(Script::new(&format!("{REMOVE_FN}{LEAVE}"))),
            sweep: std::sync::Arc::new(Script::new(&format!("{REMOVE_FN}{SWEEP}"))),
            chat: std::sync::Arc::new(Script::new(CHAT)),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn conn_key(&self, sid: &str) -> String {
        Conn {
            node: self.node.clone(),
            sid: sid.to_owned(),
        }
        .key()
    }

    fn room_key(&self, room: &RoomName) -> String {
        format!("{}:r:{}", self.prefix, room.as_str())
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, DriverError> {
        let mut conn = self.redis.connection()?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))
    }

    /// Refreshes this node's heartbeat; members of nodes whose heartbeat
    /// expired are removed by [`Self::sweep`] on any node. Returns whether
    /// this node's state was still there: `false` after Redis lost its data
    /// (a restart without persistence) or after this node stalled past the
    /// TTL. Told by a marker only this call writes (`P:n:{node}:mark`): the
    /// heartbeat itself is also set by a join, which would hide the loss.
    pub async fn heartbeat(&self, ttl: std::time::Duration) -> Result<bool, DriverError> {
        let key = format!("{}:n:{}", self.prefix, self.node);
        let ms = ttl.as_millis() as u64;
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

    /// Ends this node's heartbeat at once (graceful shutdown): the next
    /// [`Self::sweep`] removes its members without waiting for the TTL.
    pub async fn retire(&self) -> Result<(), DriverError> {
        let key = format!("{}:n:{}", self.prefix, self.node);
        self.run({
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            cmd
        })
        .await
    }

    /// Removes the members of dead nodes; returns them, for `peer-left`.
    pub async fn sweep(&self) -> Result<Vec<(RoomName, PeerId)>, DriverError> {
        let mut conn = self.redis.connection()?;
        let flat: Vec<String> = self
            .sweep
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        Ok(flat
            .chunks_exact(2)
            .filter_map(|p| {
                let room = RoomName::parse(&p[0]).ok()?;
                Some((room, PeerId::from(p[1].clone())))
            })
            .collect())
    }

    pub async fn join(
        &self,
        sid: &str,
        spec: JoinSpec,
        new_id: PeerId,
    ) -> Result<Joined, StoreError<JoinError>> {
        let conn = self.conn_key(sid);
        let r = self.room_key(&spec.room);
        let me = Stored {
            id: new_id,
            name: spec.name.as_str().to_owned(),
            conn: conn.clone(),
            media: None,
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
            format!("{}:c:{conn}", self.prefix),
            format!("{}:n:{}:c", self.prefix, self.node),
            format!("{}:nodes", self.prefix),
            format!("{}:n:{}", self.prefix, self.node),
        ];
        let mut inv = self.join.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(&conn)
            .arg(spec.room.as_str())
            .arg(serde_json::to_string(&me).unwrap_or_default())
            .arg(spec.mode.to_string())
            .arg(&pw)
            .arg(self.limits.max_peers)
            .arg(&self.node)
            .arg(HEARTBEAT_TTL.as_millis() as u64);
        let mut c = self.redis.connection()?;
        let reply: Vec<redis::Value> = inv
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        let text = |i: usize| -> String {
            reply
                .get(i)
                .and_then(|v| redis::FromRedisValue::from_redis_value(v.clone()).ok())
                .unwrap_or_default()
        };
        let list = |i: usize| -> Vec<String> {
            reply
                .get(i)
                .and_then(|v| redis::FromRedisValue::from_redis_value(v.clone()).ok())
                .unwrap_or_default()
        };
        match text(0).as_str() {
            "unauthorized" => return Err(StoreError::Rule(JoinError::Unauthorized)),
            "full" => return Err(StoreError::Rule(JoinError::RoomFull(self.limits.max_peers))),
            _ => {}
        }
        let fresh = text(0) == "ok";
        let mode: Mode = text(1).parse().unwrap_or(spec.mode);
        let me = decode_member(&text(2)).map(|(_, m)| m);
        let mut others: Vec<(u64, Stored)> =
            list(3).iter().filter_map(|v| decode_member(v)).collect();
        others.retain(|(_, m)| m.conn != conn);
        others.sort_by_key(|(n, _)| *n);
        let history = list(4)
            .iter()
            .filter_map(|h| serde_json::from_str::<ChatMessage>(h).ok())
            .collect();
        let me = me.ok_or(StoreError::Redis(DriverError::Down))?;
        Ok(Joined {
            me: me.ident(),
            mode,
            peers: others.into_iter().map(|(_, m)| m.info()).collect(),
            history,
            fresh,
        })
    }

    /// Leaves one room; returns the peer id it had and how many remain.
    pub async fn leave(
        &self,
        sid: &str,
        room: &RoomName,
    ) -> Result<(PeerId, usize), StoreError<NotInRoom>> {
        self.remove(&self.conn_key(sid), room).await
    }

    async fn remove(
        &self,
        conn: &str,
        room: &RoomName,
    ) -> Result<(PeerId, usize), StoreError<NotInRoom>> {
        let mut c = self.redis.connection()?;
        let r: Option<(String, usize)> = self
            .leave
            .arg(&self.prefix)
            .arg(room.as_str())
            .arg(conn)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        r.map(|(id, left)| (PeerId::from(id), left))
            .ok_or(StoreError::Rule(NotInRoom))
    }

    /// The rooms a connection of this node is in.
    pub async fn rooms_of(&self, sid: &str) -> Result<Vec<RoomName>, DriverError> {
        let key = format!("{}:c:{}", self.prefix, self.conn_key(sid));
        let names: Vec<String> = self
            .run({
                let mut cmd = redis::cmd("SMEMBERS");
                cmd.arg(key);
                cmd
            })
            .await?;
        Ok(names
            .iter()
            .filter_map(|n| RoomName::parse(n).ok())
            .collect())
    }

    async fn stored(&self, room: &RoomName, conn: &str) -> Result<Option<Stored>, DriverError> {
        let key = format!("{}:m", self.room_key(room));
        let conn = conn.to_owned();
        let v: Option<String> = self
            .run({
                let mut cmd = redis::cmd("HGET");
                cmd.arg(key).arg(conn);
                cmd
            })
            .await?;
        Ok(v.and_then(|v| decode_member(&v)).map(|(_, m)| m))
    }

    /// Who this connection is in `room`.
    pub async fn member(
        &self,
        sid: &str,
        room: &RoomName,
    ) -> Result<PeerInfo, StoreError<NotInRoom>> {
        self.stored(room, &self.conn_key(sid))
            .await?
            .map(|m| m.ident())
            .ok_or(StoreError::Rule(NotInRoom))
    }

    /// Who this connection is in `room`, and how many members the room has
    /// (one round trip).
    pub async fn member_and_count(
        &self,
        sid: &str,
        room: &RoomName,
    ) -> Result<(PeerInfo, usize), StoreError<NotInRoom>> {
        let key = format!("{}:m", self.room_key(room));
        let mut c = self.redis.connection()?;
        let (v, n): (Option<String>, usize) = redis::pipe()
            .cmd("HGET")
            .arg(&key)
            .arg(self.conn_key(sid))
            .cmd("HLEN")
            .arg(&key)
            .query_async(&mut c)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        let me = v
            .and_then(|v| decode_member(&v))
            .ok_or(StoreError::Rule(NotInRoom))?;
        Ok((me.1.ident(), n))
    }

    pub async fn peer_count_in(&self, room: &RoomName) -> Result<usize, DriverError> {
        let key = format!("{}:m", self.room_key(room));
        self.run({
            let mut cmd = redis::cmd("HLEN");
            cmd.arg(key);
            cmd
        })
        .await
    }

    pub async fn mode(&self, room: &RoomName) -> Result<Option<Mode>, DriverError> {
        let key = self.room_key(room);
        let m: Option<String> = self
            .run({
                let mut cmd = redis::cmd("HGET");
                cmd.arg(key).arg("mode");
                cmd
            })
            .await?;
        Ok(m.and_then(|m| m.parse().ok()))
    }

    /// The sender's peer id and where the addressed peer is connected.
    pub async fn route_signal(
        &self,
        sid: &str,
        room: &RoomName,
        to: &str,
    ) -> Result<(PeerId, Target), StoreError<SignalError>> {
        let me = self
            .stored(room, &self.conn_key(sid))
            .await?
            .ok_or(StoreError::Rule(SignalError::NotInRoom))?;
        if me.id.as_str() == to {
            return Err(StoreError::Rule(SignalError::ToSelf));
        }
        let key = format!("{}:p", self.room_key(room));
        let to_owned = to.to_owned();
        let conn: Option<String> = self
            .run({
                let mut cmd = redis::cmd("HGET");
                cmd.arg(key).arg(to_owned);
                cmd
            })
            .await?;
        let conn = conn
            .and_then(|c| Conn::parse(&c))
            .ok_or(StoreError::Rule(SignalError::UnknownPeer))?;
        Ok((
            me.id,
            Target {
                id: PeerId::from(to.to_owned()),
                conn,
            },
        ))
    }

    /// Records a chat message in the room's bounded history; returns it and
    /// how many members the room has.
    pub async fn chat(
        &self,
        sid: &str,
        room: &RoomName,
        text: ChatText,
        id: String,
        ts: u64,
    ) -> Result<(ChatMessage, usize), StoreError<NotInRoom>> {
        let me = self
            .stored(room, &self.conn_key(sid))
            .await?
            .ok_or(StoreError::Rule(NotInRoom))?;
        let msg = ChatMessage {
            room: room.clone(),
            id,
            from: me.ident(),
            text: text.as_str().to_owned(),
            ts,
        };
        // Membership checked again with the push: a message must not outlive
        // its room (it would show up in a new room of the same name).
        let r = self.room_key(room);
        let json = serde_json::to_string(&msg).unwrap_or_default();
        let mut c = self.redis.connection()?;
        let members: usize = self
            .chat
            .key(format!("{r}:m"))
            .key(format!("{r}:h"))
            .arg(self.conn_key(sid))
            .arg(json)
            .arg(self.limits.history)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.redis.command_failed(e))?;
        if members == 0 {
            return Err(StoreError::Rule(NotInRoom));
        }
        Ok((msg, members))
    }

    /// Records the sender's media state (returned to later joiners).
    pub async fn set_media(
        &self,
        sid: &str,
        room: &RoomName,
        media: MediaState,
    ) -> Result<PeerId, StoreError<NotInRoom>> {
        let conn = self.conn_key(sid);
        let key = format!("{}:m", self.room_key(room));
        let raw: Option<String> = {
            let (k, c2) = (key.clone(), conn.clone());
            self.run({
                let mut cmd = redis::cmd("HGET");
                cmd.arg(k).arg(c2);
                cmd
            })
            .await?
        };
        let Some((n, mut m)) = raw.as_deref().and_then(decode_member) else {
            return Err(StoreError::Rule(NotInRoom));
        };
        m.media = Some(media);
        let v = format!("{n}\n{}", serde_json::to_string(&m).unwrap_or_default());
        // Only if still a member: a leave in between wins (no ghost member).
        let mut c = self.redis.connection()?;
        let updated: i64 = Script::new(
            "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then \
               redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0",
        )
        .key(&key)
        .arg(&conn)
        .arg(v)
        .invoke_async(&mut c)
        .await
        .map_err(|e| self.redis.command_failed(e))?;
        if updated == 0 {
            return Err(StoreError::Rule(NotInRoom));
        }
        Ok(m.id)
    }

    /// The sender's id and the author (and connection) of message `msg_id`.
    pub async fn route_receipt(
        &self,
        sid: &str,
        room: &RoomName,
        msg_id: &str,
    ) -> Result<(PeerId, Option<Target>), StoreError<ReceiptError>> {
        let me = self
            .stored(room, &self.conn_key(sid))
            .await?
            .ok_or(StoreError::Rule(ReceiptError::NotInRoom))?;
        let key = format!("{}:h", self.room_key(room));
        let history: Vec<String> = self
            .run({
                let mut cmd = redis::cmd("LRANGE");
                cmd.arg(key).arg(0).arg(-1);
                cmd
            })
            .await?;
        let author = history
            .iter()
            .filter_map(|h| serde_json::from_str::<ChatMessage>(h).ok())
            .find(|m| m.id == msg_id)
            .map(|m| m.from.id)
            .ok_or(StoreError::Rule(ReceiptError::UnknownMessage))?;
        if author == me.id {
            return Ok((me.id, None));
        }
        let pkey = format!("{}:p", self.room_key(room));
        let a = author.to_string();
        let conn: Option<String> = self
            .run({
                let mut cmd = redis::cmd("HGET");
                cmd.arg(pkey).arg(a);
                cmd
            })
            .await?;
        let conn = conn
            .and_then(|c| Conn::parse(&c))
            .ok_or(StoreError::Rule(ReceiptError::AuthorGone))?;
        Ok((me.id, Some(Target { id: author, conn })))
    }
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
