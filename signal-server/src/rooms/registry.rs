//! The rules of rooms on one node: who is in which room, each room's mode,
//! password and chat history. Plain synchronous code with no socket types;
//! `C` is whatever identifies a connection. [`super::LocalStore`] puts it
//! behind a lock; [`super::RedisStore`] holds the same rules in Lua.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use protocol::RoomName;
use protocol::{ChatMessage, DisplayName, MediaState, Mode, Password, PeerId, PeerInfo};
use subtle::ConstantTimeEq;

use super::{
    JoinError, JoinSpec, Joined, Left, Member, NewMessage, NotInRoom, Receipt, ReceiptError,
    RoomLimits, RouteError,
};

#[derive(Debug)]
struct Seat<C> {
    id: PeerId,
    name: DisplayName,
    conn: C,
    media: Option<MediaState>,
}

impl<C> Seat<C> {
    /// As others see it: with the media state (join ack `peers`).
    fn info(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.as_str().to_owned(),
            media: self.media,
        }
    }

    /// Just id and name (`self`, chat `from`).
    fn ident(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.as_str().to_owned(),
            media: None,
        }
    }
}

/// A message in a room's history, with what it counts against.
#[derive(Debug)]
struct Kept {
    msg: ChatMessage,
    /// Registry-wide number, oldest first: how an author's record finds it.
    seq: u64,
    from_ip: Option<IpAddr>,
    bytes: usize,
}

#[derive(Debug)]
struct Room<C> {
    /// Its name, shared with the authors' records that point into it.
    name: Arc<RoomName>,
    mode: Mode,
    password: Option<Password>,
    /// In join order; rooms are small enough that a scan beats a map.
    seats: Vec<Seat<C>>,
    /// Dropped with the room: no message outlives it.
    history: VecDeque<Kept>,
    /// The bytes of `history`.
    history_bytes: usize,
}

/// The kept history written from one client address, over all rooms.
#[derive(Debug, Default)]
struct Author {
    bytes: usize,
    /// Messages of this address still kept somewhere.
    kept: usize,
    /// Where its messages went (room, message number), oldest first;
    /// entries of messages already gone (their room bounded or removed
    /// them) are skipped, and dropped when they outnumber the live ones.
    order: VecDeque<(Arc<RoomName>, u64)>,
}

/// Every address's [`Author`] record, while it has kept messages (a B-tree:
/// cheaper to look up than a SipHash map for the few addresses that chat).
type Authors = BTreeMap<IpAddr, Author>;

/// Takes a message that left its room's history off its author's count.
fn forget(authors: &mut Authors, kept: &Kept) {
    let Some(ip) = kept.from_ip else { return };
    if let Some(a) = authors.get_mut(&ip) {
        a.bytes = a.bytes.saturating_sub(kept.bytes);
        a.kept = a.kept.saturating_sub(1);
        if a.kept == 0 {
            authors.remove(&ip);
        }
    }
}

impl<C: PartialEq> Room<C> {
    fn by_conn(&self, conn: &C) -> Option<&Seat<C>> {
        self.seats.iter().find(|m| &m.conn == conn)
    }

    fn by_id(&self, id: &PeerId) -> Option<&Seat<C>> {
        self.seats.iter().find(|m| &m.id == id)
    }

    fn password_matches(&self, given: Option<&Password>) -> bool {
        match (&self.password, given) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(got)) => bool::from(want.as_bytes().ct_eq(got.as_bytes())),
        }
    }

    fn member(&self, seat: &Seat<C>) -> Member {
        Member {
            me: seat.ident(),
            mode: self.mode,
            count: self.seats.len(),
        }
    }
}

/// All rooms of one node.
#[derive(Debug)]
pub(super) struct Registry<C> {
    rooms: HashMap<RoomName, Room<C>>,
    /// Rooms each connection is in, so a disconnect leaves all of them.
    conns: HashMap<C, Vec<RoomName>>,
    peers: usize,
    limits: RoomLimits,
    authors: Authors,
    /// The number of the next kept message.
    next_seq: u64,
}

impl<C: Copy + Eq + Hash> Registry<C> {
    pub(super) fn new(limits: RoomLimits) -> Self {
        Self {
            rooms: HashMap::new(),
            conns: HashMap::new(),
            peers: 0,
            limits,
            authors: BTreeMap::new(),
            next_seq: 0,
        }
    }

    pub(super) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub(super) fn peer_count(&self) -> usize {
        self.peers
    }

    /// Seats `conn` in a room, creating it if needed.
    pub(super) fn join(
        &mut self,
        conn: C,
        spec: JoinSpec,
        id: PeerId,
    ) -> Result<Joined, JoinError> {
        let limits = self.limits;
        if let Some(room) = self.rooms.get(&spec.room) {
            if let Some(me) = room.by_conn(&conn) {
                return Ok(Joined {
                    me: me.ident(),
                    mode: room.mode,
                    peers: room
                        .seats
                        .iter()
                        .filter(|m| m.conn != conn)
                        .map(Seat::info)
                        .collect(),
                    history: room.history.iter().map(|k| k.msg.clone()).collect(),
                    fresh: false,
                });
            }
            if !room.password_matches(spec.password.as_ref()) {
                return Err(JoinError::Unauthorized);
            }
            if room.seats.len() >= limits.max_peers {
                return Err(JoinError::RoomFull(limits.max_peers));
            }
        } else if spec.mode == Mode::Sfu {
            limits.sfu.map_err(JoinError::ModeUnavailable)?;
        }
        if self.conns.get(&conn).map_or(0, Vec::len) >= limits.rooms_per_conn {
            return Err(JoinError::TooManyRooms(limits.rooms_per_conn));
        }
        let room = self.rooms.entry(spec.room.clone()).or_insert_with(|| Room {
            name: Arc::new(spec.room.clone()),
            mode: spec.mode,
            password: spec.password,
            seats: Vec::new(),
            history: VecDeque::new(),
            history_bytes: 0,
        });
        let me = Seat {
            id,
            name: spec.name,
            conn,
            media: None,
        };
        let joined = Joined {
            me: me.ident(),
            mode: room.mode,
            peers: room.seats.iter().map(Seat::info).collect(),
            history: room.history.iter().map(|k| k.msg.clone()).collect(),
            fresh: true,
        };
        room.seats.push(me);
        self.conns.entry(conn).or_default().push(spec.room);
        self.peers += 1;
        Ok(joined)
    }

    /// Removes `conn` from `room`.
    pub(super) fn leave(&mut self, conn: C, room: &RoomName) -> Result<Left, NotInRoom> {
        let r = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let idx = r
            .seats
            .iter()
            .position(|m| m.conn == conn)
            .ok_or(NotInRoom)?;
        let seat = r.seats.remove(idx);
        let remaining = r.seats.len();
        if remaining == 0
            && let Some(gone) = self.rooms.remove(room)
        {
            for kept in &gone.history {
                forget(&mut self.authors, kept);
            }
        }
        if let Some(rooms) = self.conns.get_mut(&conn) {
            // From the end: a disconnect leaves the rooms last first, so
            // leaving all of them is linear.
            if let Some(i) = rooms.iter().rposition(|r| r == room) {
                rooms.swap_remove(i);
            }
            if rooms.is_empty() {
                self.conns.remove(&conn);
            }
        }
        self.peers -= 1;
        Ok(Left {
            id: seat.id,
            remaining,
        })
    }

    /// The rooms `conn` is in.
    pub(super) fn rooms_of(&self, conn: C) -> Vec<RoomName> {
        self.conns.get(&conn).cloned().unwrap_or_default()
    }

    pub(super) fn member(&self, conn: C, room: &RoomName) -> Result<Member, NotInRoom> {
        let r = self.rooms.get(room).ok_or(NotInRoom)?;
        r.by_conn(&conn).map(|m| r.member(m)).ok_or(NotInRoom)
    }

    pub(super) fn set_media(
        &mut self,
        conn: C,
        room: &RoomName,
        media: MediaState,
    ) -> Result<(PeerId, usize), NotInRoom> {
        let r = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let count = r.seats.len();
        let m = r
            .seats
            .iter_mut()
            .find(|m| m.conn == conn)
            .ok_or(NotInRoom)?;
        m.media = Some(media);
        Ok((m.id.clone(), count))
    }

    pub(super) fn receipt(
        &self,
        conn: C,
        room: &RoomName,
        msg: &str,
    ) -> Result<Receipt<C>, ReceiptError> {
        let r = self.rooms.get(room).ok_or(ReceiptError::NotInRoom)?;
        let me = r.by_conn(&conn).ok_or(ReceiptError::NotInRoom)?;
        let author = r
            .history
            .iter()
            .rev()
            .find(|k| k.msg.id == msg)
            .map(|k| &k.msg.from.id)
            .ok_or(ReceiptError::UnknownMessage)?;
        let author = r.by_id(author).ok_or(ReceiptError::AuthorGone)?;
        Ok(Receipt {
            from: me.id.clone(),
            author: author.id.clone(),
            to: author.conn,
        })
    }

    pub(super) fn conn_of(&self, room: &RoomName, peer: &PeerId) -> Option<C> {
        self.rooms.get(room)?.by_id(peer).map(|m| m.conn)
    }

    pub(super) fn route(
        &self,
        conn: C,
        room: &RoomName,
        to: &PeerId,
    ) -> Result<(PeerId, C), RouteError> {
        let r = self.rooms.get(room).ok_or(RouteError::NotInRoom)?;
        let from = r.by_conn(&conn).ok_or(RouteError::NotInRoom)?;
        if &from.id == to {
            return Err(RouteError::ToSelf);
        }
        let target = r.by_id(to).ok_or(RouteError::UnknownPeer)?;
        Ok((from.id.clone(), target.conn))
    }

    /// Records a chat message in the room's bounded history (in messages
    /// and bytes, and within its address's budget over all rooms); returns
    /// it and the room's size.
    pub(super) fn chat(
        &mut self,
        conn: C,
        room: &RoomName,
        new: NewMessage,
    ) -> Result<(ChatMessage, usize), NotInRoom> {
        let limits = self.limits;
        let r = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let from = r.by_conn(&conn).ok_or(NotInRoom)?.ident();
        let bytes = new.bytes(room, &from.name);
        let msg = ChatMessage {
            room: room.clone(),
            id: new.id,
            from,
            text: new.text.as_str().to_owned(),
            ts: new.ts,
        };
        let members = r.seats.len();
        if limits.history == 0 || bytes > limits.history_bytes {
            return Ok((msg, members));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(ip) = new.from_ip {
            let a = self.authors.entry(ip).or_default();
            a.bytes += bytes;
            a.kept += 1;
            a.order.push_back((r.name.clone(), seq));
        }
        r.history.push_back(Kept {
            msg: msg.clone(),
            seq,
            from_ip: new.from_ip,
            bytes,
        });
        r.history_bytes += bytes;
        while r.history.len() > limits.history || r.history_bytes > limits.history_bytes {
            let Some(old) = r.history.pop_front() else {
                break;
            };
            r.history_bytes -= old.bytes;
            forget(&mut self.authors, &old);
        }
        if let Some(ip) = new.from_ip {
            self.bound_author(ip);
        }
        Ok((msg, members))
    }

    /// Removes `ip`'s oldest kept messages while it is over its budget.
    fn bound_author(&mut self, ip: IpAddr) {
        let budget = self.limits.history_bytes_per_ip;
        loop {
            let Some(a) = self.authors.get_mut(&ip) else {
                return;
            };
            if a.bytes <= budget {
                // Entries of messages that went otherwise pile up: drop them
                // once they outnumber the live ones.
                if a.order.len() > 2 * a.kept + 32 {
                    let rooms = &self.rooms;
                    a.order.retain(|(room, seq)| {
                        rooms
                            .get(&**room)
                            .is_some_and(|r| r.history.iter().any(|k| k.seq == *seq))
                    });
                }
                return;
            }
            let Some((room, seq)) = a.order.pop_front() else {
                return;
            };
            let Some(r) = self.rooms.get_mut(&*room) else {
                continue;
            };
            let Some(i) = r.history.iter().position(|k| k.seq == seq) else {
                continue;
            };
            if let Some(old) = r.history.remove(i) {
                r.history_bytes -= old.bytes;
                forget(&mut self.authors, &old);
            }
        }
    }
}
