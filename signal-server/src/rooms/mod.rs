//! Room state: the seam every handler is written against, and its two
//! implementations, [`LocalStore`] (one node, in memory) and [`RedisStore`]
//! (many nodes on one Redis). The rules are the same in both, checked by
//! one table-driven test (`tests/room_rules.rs`): capacity, password, mode,
//! idempotent join, join order, bounded history, receipts, rooms removed
//! when empty, and the members of a stopped node swept.
//!
//! Each operation is atomic on its own. The operations whose result must
//! be ordered with deliveries ([`RoomStore::join`], [`RoomStore::leave`],
//! [`RoomStore::chat`]) take a closure that runs inside the room's critical
//! section: on one node under the store's lock, so no other event of the
//! room can come between the state change and what the closure sends.
//! That is how the join ack goes out before any event of the room reaches
//! the joiner, and how a chat message is either in a joiner's history or
//! delivered to it, never both and never neither.
//!
//! The local store's futures are ready when created: awaiting them never
//! suspends, so a handler on one node runs to completion in one poll on the
//! socket's read loop (`session::inline`).

mod local;
mod redis;
mod registry;

use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;

use protocol::RoomName;
use protocol::{
    ChatMessage, ChatText, DisplayName, MediaState, Mode, MuteRequestEvent, Password, PeerId,
    PeerInfo, ReceiptEvent, ResumeToken, SignalEvent,
};
use serde::{Deserialize, Serialize};
use socketioxide::socket::Sid;

use crate::redis_driver::DriverError;

pub use local::LocalStore;
pub use redis::{Conn, HEARTBEAT_TTL, RedisStore, SFU_ALIVE_TTL};

/// Limits and capabilities the rules enforce.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Peers per room; a join beyond gets `room_full`.
    pub max_peers: usize,
    /// Chat messages kept per room for late joiners...
    pub history: usize,
    /// ...and their bytes ([`NewMessage::bytes`]); the oldest go first.
    pub history_bytes: usize,
    /// Bytes of kept history written from one client address, over all
    /// rooms; beyond, that address's oldest kept messages go first.
    pub history_bytes_per_ip: usize,
    /// Rooms one connection may be in at once.
    pub rooms_per_conn: usize,
    /// Whether a join may create an SFU room here: `Ok`, or why not.
    pub sfu: std::result::Result<(), &'static str>,
    /// How long a lost connection's seats are held for a resume
    /// (PROTOCOL.md version 2); zero: a lost connection leaves at once.
    pub resume_grace: std::time::Duration,
    /// Events kept for a held seat: at most this many...
    pub kept_events: usize,
    /// ...and this many bytes ([`Parcel::bytes`]); the oldest go first.
    pub kept_bytes: usize,
}

/// A validated join, as the store needs it.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub room: RoomName,
    pub name: DisplayName,
    /// Mode for a room this join creates; ignored for an existing room.
    pub mode: Mode,
    pub password: Option<Password>,
    /// A held seat of this room to take back, if its token matches.
    pub resume: Option<ResumeToken>,
    /// The seat's new resume token (each token resumes once).
    pub token: String,
}

/// An event kept for a held seat until it resumes (PROTOCOL.md version 2):
/// every event addressed to one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "e", content = "d")]
pub enum Parcel {
    #[serde(rename = "signal")]
    Signal(SignalEvent),
    #[serde(rename = "chat-receipt")]
    Receipt(ReceiptEvent),
    #[serde(rename = "mute-request")]
    MuteRequest(MuteRequestEvent),
}

impl Parcel {
    /// What it counts against [`RoomLimits::kept_bytes`]: its JSON.
    pub fn bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }
}

/// Where an event for one member goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest<A> {
    /// Its connection.
    Live(A),
    /// Its seat is held: keep the event ([`RoomStore::keep`]).
    Held,
}

/// What [`RoomStore::keep`] did with a parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep<A> {
    /// Kept for the held seat.
    Kept,
    /// The seat is live (taken back meanwhile): deliver it there.
    Live(A, Parcel),
}

/// How a join took its seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How<A> {
    /// A new seat: the others get `peer-joined`.
    Fresh,
    /// This connection was already in the room (a join is idempotent).
    Again,
    /// A held (or still live) seat taken back with its token: the same id;
    /// the others get `peer-resumed`, the joiner its kept events.
    Resumed {
        kept: Vec<Parcel>,
        /// The connection the seat was taken from, when it was still live
        /// (it no longer gets the room's events).
        replaced: Option<A>,
    },
}

/// What a sweep of stopped nodes took out.
#[derive(Debug)]
pub struct Swept<A> {
    /// Held for a resume (`peer-reconnecting`).
    pub held: Vec<HeldSeat>,
    /// Removed (`peer-left`).
    pub gone: Vec<(RoomName, Left<A>)>,
}

impl<A> Default for Swept<A> {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            gone: Vec::new(),
        }
    }
}

/// A seat held after its connection was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSeat {
    pub room: RoomName,
    pub id: PeerId,
}

/// A chat message to record: what the sender wrote, and the client address
/// it came from (whose history budget it counts against).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub text: ChatText,
    pub id: String,
    pub ts: u64,
    pub from_ip: Option<IpAddr>,
}

impl NewMessage {
    /// What a kept message counts against the history budgets: its text,
    /// its author's name and room, and a fixed allowance for the rest.
    pub fn bytes(&self, room: &RoomName, author: &str) -> usize {
        self.text.as_str().len() + author.len() + room.as_str().len() + 128
    }
}

/// What a successful join returns: everything the ack needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined<A> {
    pub me: PeerInfo,
    pub mode: Mode,
    /// Everyone else, in join order, with their media state.
    pub peers: Vec<PeerInfo>,
    /// Oldest first.
    pub history: Vec<ChatMessage>,
    /// The seat's resume token.
    pub token: String,
    pub how: How<A>,
    /// The host locked the room (only resumes get in).
    pub locked: bool,
    /// Scaled out, in an SFU room: the placement of its SFU
    /// ([`SfuRoute::epoch`]). `None` on one node and in mesh rooms.
    pub sfu_epoch: Option<u64>,
    /// Scaled out: the others' connections. One of them that joined at the
    /// same instant may not be in the room's broadcast group yet (its node
    /// subscribes it when its own join's reply arrives), so the joiner's
    /// `peer-joined` also goes to each of them straight. Empty on one node,
    /// where the registry's lock orders joins.
    pub others_at: Vec<A>,
}

impl<A> Joined<A> {
    /// A new seat (not a repeated join, not a resume).
    pub fn fresh(&self) -> bool {
        matches!(self.how, How::Fresh)
    }
}

/// A member that left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left<A> {
    pub id: PeerId,
    /// Members still in the room (0: the room is gone).
    pub remaining: usize,
    /// The room's new host, when the one that left was the host.
    pub host: Option<PeerId>,
    /// Scaled out: the connections of those still in the room. One that
    /// joined at the same instant may not be in the room's broadcast group
    /// yet, so `peer-left` also goes to each straight ([`Joined::others_at`]).
    /// Empty on one node.
    pub others_at: Vec<A>,
}

/// A host control, or a raised hand (PROTOCOL.md version 2, "Host
/// controls"), as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Host only: the peer is out of the room (its seat, held or not, and
    /// its resume token).
    Kick(PeerId),
    /// Host only: while locked, a join that is not a resume is refused.
    Lock(bool),
    /// Host only: nothing changes; where the peer is, for the request.
    Mute(PeerId),
    /// Any member: listed in later join acks while raised.
    Hand(bool),
}

/// What an [`Act`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted<A> {
    /// Who acted.
    pub by: PeerId,
    /// Members of the room now, the actor included.
    pub count: usize,
    /// Kick and mute: where the addressed peer was.
    pub target: Option<Dest<A>>,
    /// Kick: the member removed.
    pub left: Option<Left<A>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    #[error("not in room")]
    NotInRoom,
    #[error("only the room's host may do this")]
    Forbidden,
    #[error("a host control cannot name yourself")]
    ToSelf,
    #[error("no such peer in this room")]
    UnknownPeer,
}

/// The sender of an event, as its room knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Id and name (no media state).
    pub me: PeerInfo,
    pub mode: Mode,
    /// Members of the room, the sender included.
    pub count: usize,
}

/// Where a receipt goes: the message's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt<A> {
    /// Who sends the receipt.
    pub from: PeerId,
    pub author: PeerId,
    /// The author's connection.
    pub to: Dest<A>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("room is full ({0} peers)")]
    RoomFull(usize),
    #[error("wrong or missing room password")]
    Unauthorized,
    /// The reason comes with the deployment ([`RoomLimits::sfu`]).
    #[error("{0}")]
    ModeUnavailable(&'static str),
    #[error("a connection may be in at most {0} rooms at once; leave one first")]
    TooManyRooms(usize),
    #[error("this room is locked by its host")]
    Locked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not in room")]
pub struct NotInRoom;

/// Why an event addressed to one peer cannot be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("not in room")]
    NotInRoom,
    #[error("no such peer in this room")]
    UnknownPeer,
    #[error("cannot signal yourself")]
    ToSelf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not in room")]
    NotInRoom,
    #[error("no such message in the room's recent history")]
    UnknownMessage,
    #[error("the message's author has left")]
    AuthorGone,
}

/// A failed store operation: the rule that refused it, or the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<E> {
    #[error(transparent)]
    Rule(E),
    #[error(transparent)]
    Unavailable(#[from] DriverError),
}

/// A store result.
pub type Result<T, E = std::convert::Infallible> = std::result::Result<T, StoreError<E>>;

/// Room state, on one node or shared by many. Connections are named by
/// their socket id; the store knows which node each is on.
/// Where the SFU of an SFU room runs ([`RoomStore::sfu_route`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuHost {
    /// On this node (always, on one node).
    Here,
    /// On another node of the deployment, by its name.
    Elsewhere(std::sync::Arc<str>),
    /// Nowhere: no node with the SFU is alive.
    Nowhere,
}

/// The SFU of an SFU room, as a signal for it is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuRoute {
    pub host: SfuHost,
    /// Which placement this is: it grows each time the room moves and never
    /// repeats (Redis's clock in ms at the move; 0 on one node).
    pub epoch: u64,
    /// The room moved just now, found by this lookup: its members must be
    /// told (`sfu-moved`).
    pub moved: Option<SfuMove>,
}

/// An SFU room given to another node: its old owner was gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuMove {
    pub room: RoomName,
    /// The node it moved to.
    pub to: String,
    /// The node it moved from; `None`: it had no owner (no SFU node was
    /// alive when its last one went).
    pub from: Option<String>,
    pub epoch: u64,
    /// Members of the room, to tell.
    pub members: usize,
}

/// What an SFU node hosts that is no longer its own
/// ([`RoomStore::sfu_announce`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuSquared {
    /// Rooms that moved to another node (`from`: this one): to end here,
    /// and their members told again (some may have missed it).
    pub gone: Vec<SfuMove>,
    /// Rooms Redis does not know: lost with its data (kept while they have
    /// connections), or ended without this node hearing the last leave.
    pub orphans: Vec<RoomName>,
}

/// Which SFU nodes the deployment has now ([`RoomStore::sfu_sweep`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuNodes {
    /// Rooms moved off nodes that are gone.
    pub moved: Vec<SfuMove>,
    /// Some node with the SFU is alive.
    pub live: bool,
    /// Every live SFU node forwards simulcast.
    pub simulcast: bool,
}

pub trait RoomStore: Send + Sync + 'static {
    /// Where a member is connected: what delivery needs to reach it.
    type Addr: Clone + Debug + PartialEq + Send + Sync + 'static;

    /// Takes a seat in `spec.room` (creating the room) for `conn` with the
    /// new peer id `id`; a connection already in the room gets its seat
    /// back ([`How::Again`]); a `spec.resume` token that matches a seat of
    /// the room takes that seat, whatever the password, the capacity or
    /// (version 2) a lock ([`How::Resumed`]). `admit` runs inside the
    /// room's critical section, before any other event of the room, with
    /// the result.
    fn join<R: Send>(
        &self,
        conn: Sid,
        spec: JoinSpec,
        id: PeerId,
        admit: impl FnOnce(Joined<Self::Addr>) -> R + Send,
    ) -> impl Future<Output = Result<R, JoinError>> + Send;

    /// `conn` was lost: its seats are held for [`RoomLimits::resume_grace`]
    /// (still counted and listed; events for them kept). Returns them, for
    /// `peer-reconnecting`.
    fn hold(&self, conn: Sid) -> impl Future<Output = Result<Vec<HeldSeat>>> + Send;

    /// Keeps `parcel` for held peer `peer` of `room`; when the seat was
    /// taken back meanwhile, hands it back with where to deliver it.
    /// `UnknownPeer` when the seat is gone.
    fn keep(
        &self,
        room: &RoomName,
        peer: &PeerId,
        parcel: Parcel,
    ) -> impl Future<Output = Result<Keep<Self::Addr>, RouteError>> + Send;

    /// Applies `act` from `conn` in `room`: the host checks, then the change.
    fn act(
        &self,
        conn: Sid,
        room: &RoomName,
        act: Act,
    ) -> impl Future<Output = Result<Acted<Self::Addr>, ActError>> + Send;

    /// Ends the held seats whose grace period is over, as leaves.
    fn expire(&self) -> impl Future<Output = Result<Vec<(RoomName, Left<Self::Addr>)>>> + Send;

    /// Seats held now (scaled out: as of this node's last [`Self::expire`]).
    fn held_count(&self) -> usize;

    /// Gives up `conn`'s seat in `room`; `then` runs inside the room's
    /// critical section. The room goes with its last member.
    fn leave<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        then: impl FnOnce(Left<Self::Addr>) -> R + Send,
    ) -> impl Future<Output = Result<R, NotInRoom>> + Send;

    /// The rooms `conn` is in.
    fn rooms_of(&self, conn: Sid) -> impl Future<Output = Result<Vec<RoomName>>> + Send;

    /// Who `conn` is in `room`, the room's mode and size.
    fn member(
        &self,
        conn: Sid,
        room: &RoomName,
    ) -> impl Future<Output = Result<Member, NotInRoom>> + Send;

    /// Routes an event from `conn` to peer `to` of `room`: the sender's id
    /// and the addressed peer's connection.
    fn route(
        &self,
        conn: Sid,
        room: &RoomName,
        to: &PeerId,
    ) -> impl Future<Output = Result<(PeerId, Dest<Self::Addr>), RouteError>> + Send;

    /// Where peer `peer` of `room` is, if it is there.
    fn addr_of(
        &self,
        room: &RoomName,
        peer: &PeerId,
    ) -> impl Future<Output = Result<Option<Dest<Self::Addr>>>> + Send;

    /// Records a chat message from `conn` in the room's bounded history;
    /// `publish` runs inside the room's critical section with the message
    /// and the room's size.
    fn chat<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        msg: NewMessage,
        publish: impl FnOnce(ChatMessage, usize) -> R + Send,
    ) -> impl Future<Output = Result<R, NotInRoom>> + Send;

    /// Records what `conn` sends in `room` (listed to later joiners);
    /// returns its peer id and the room's size.
    fn set_media(
        &self,
        conn: Sid,
        room: &RoomName,
        media: MediaState,
    ) -> impl Future<Output = Result<(PeerId, usize), NotInRoom>> + Send;

    /// Finds the author of chat message `msg` (in the room's recent
    /// history) for a receipt from `conn`.
    fn receipt(
        &self,
        conn: Sid,
        room: &RoomName,
        msg: &str,
    ) -> impl Future<Output = Result<Receipt<Self::Addr>, ReceiptError>> + Send;

    /// Rooms with a member on this node, and this node's memberships.
    fn counts(&self) -> (usize, usize);

    /// `conn` is gone for good: its seats are never [restored](Self::restore),
    /// even if its leaves could not be stored yet.
    fn forget(&self, conn: Sid);

    /// Node upkeep: tells the other nodes this one is alive. `false` when
    /// the store had lost this node's state (put it back with
    /// [`Self::restore`]). One node has nobody to tell.
    fn heartbeat(&self) -> impl Future<Output = Result<bool>> + Send;

    /// Takes out the members of nodes that stopped: held for a resume when
    /// [`RoomLimits::resume_grace`] allows (the first list, for
    /// `peer-reconnecting`), else removed (the second, for `peer-left`).
    /// One node has no other nodes.
    fn sweep(&self) -> impl Future<Output = Result<Swept<Self::Addr>>> + Send;

    /// Ends this node's heartbeat at once (graceful stop).
    fn retire(&self) -> impl Future<Output = Result<()>> + Send;

    /// Puts this node's members back after the store lost them, with the
    /// same peer ids; returns how many.
    fn restore(&self) -> impl Future<Output = usize> + Send;

    /// Where the SFU of `room` runs (on one node: here). Scaled out, a room
    /// whose owner node is gone moves now (see [`SfuRoute::moved`]).
    fn sfu_route(&self, room: &RoomName) -> impl Future<Output = Result<SfuRoute>> + Send {
        let _ = room;
        std::future::ready(Ok(SfuRoute {
            host: SfuHost::Here,
            epoch: 0,
            moved: None,
        }))
    }

    /// Where peer `peer` of SFU room `room` is, for what this node's SFU
    /// says to it; `None` also when the room is no longer this node's
    /// (scaled out: it moved away, and what its SFU here still says is for
    /// connections that are gone).
    fn sfu_addr_of(
        &self,
        room: &RoomName,
        peer: &PeerId,
    ) -> impl Future<Output = Result<Option<Dest<Self::Addr>>>> + Send {
        self.addr_of(room, peer)
    }

    /// Scaled out, on a node with the SFU: says it is alive, with its load
    /// (`peers` connected) and whether it forwards simulcast, and squares
    /// the rooms it owns with those it `hosted` a moment ago.
    fn sfu_announce(
        &self,
        peers: usize,
        simulcast: bool,
        hosted: &[RoomName],
    ) -> impl Future<Output = Result<SfuSquared>> + Send {
        let _ = (peers, simulcast, hosted);
        std::future::ready(Ok(SfuSquared::default()))
    }

    /// Scaled out: moves the SFU rooms of SFU nodes that are gone, and says
    /// which live. Rooms move only once this node has been connected to
    /// Redis for a while (after an outage every liveness has lapsed);
    /// `retiring` (this node stopping its own SFU): its own rooms move
    /// whatever the wait.
    fn sfu_sweep(&self, retiring: bool) -> impl Future<Output = Result<SfuNodes>> + Send {
        let _ = retiring;
        std::future::ready(Ok(SfuNodes::default()))
    }

    /// Scaled out: this node's SFU stops; the next sweep (on any node)
    /// moves its rooms at once.
    fn sfu_retire(&self) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}
