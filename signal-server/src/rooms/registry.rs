//! The rules of rooms on one node: who is in which room, each room's mode,
//! password and chat history. Plain synchronous code with no socket types;
//! `C` is whatever identifies a connection. [`super::LocalStore`] puts it
//! behind a lock; [`super::RedisStore`] holds the same rules in Lua.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use protocol::RoomName;
use protocol::{ChatMessage, DisplayName, MediaState, Mode, Password, PeerId, PeerInfo};
use subtle::ConstantTimeEq;

use super::{
    Act, ActError, Acted, Dest, HeldSeat, How, JoinError, JoinSpec, Joined, Keep, Left, Member,
    NewMessage, NotInRoom, Parcel, Receipt, ReceiptError, RoomLimits, RouteError,
};

#[derive(Debug)]
struct Seat<C> {
    id: PeerId,
    name: DisplayName,
    /// Its connection; while held, the lost one (which sends nothing more).
    conn: C,
    media: Option<MediaState>,
    /// What takes this seat back after a drop.
    token: String,
    /// Set while the connection is lost and the seat waits for a resume.
    held: Option<Held>,
    /// A raised hand (version 2).
    hand: bool,
}

/// A held seat's deadline and the events kept for it.
#[derive(Debug)]
struct Held {
    until: Instant,
    kept: VecDeque<Parcel>,
    bytes: usize,
}

impl<C: Copy> Seat<C> {
    fn dest(&self) -> Dest<C> {
        match self.held {
            Some(_) => Dest::Held,
            None => Dest::Live(self.conn),
        }
    }
}

fn token_matches(have: &str, given: &str) -> bool {
    bool::from(have.as_bytes().ct_eq(given.as_bytes()))
}

impl<C> Seat<C> {
    /// As others see it (join ack `peers`): with the media state, the hand,
    /// and whether it is the host (the room's first seat).
    fn info(&self, host: bool) -> PeerInfo {
        PeerInfo {
            media: self.media,
            host,
            hand: self.hand,
            ..self.ident()
        }
    }

    /// Just id and name (chat `from`, `self` with [`Self::me`]).
    fn ident(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            name: self.name.as_str().to_owned(),
            media: None,
            host: false,
            hand: false,
        }
    }

    /// The join ack's `self`: id, name, and whether it is the host.
    fn me(&self, host: bool) -> PeerInfo {
        PeerInfo {
            host,
            ..self.ident()
        }
    }
}

/// The join ack's `peers`: every seat but `skip`'s, in join order.
fn listed<C: PartialEq>(seats: &[Seat<C>], skip: &C) -> Vec<PeerInfo> {
    seats
        .iter()
        .enumerate()
        .filter(|(_, m)| &m.conn != skip)
        .map(|(i, m)| m.info(i == 0))
        .collect()
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
    /// In join order; rooms are small enough that a scan beats a map. The
    /// first is the host (the creator, then whoever is there longest).
    seats: Vec<Seat<C>>,
    /// Set by the host: only resumes get in.
    locked: bool,
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
    /// The live seat of `conn` (a held seat's connection is gone).
    fn by_conn(&self, conn: &C) -> Option<&Seat<C>> {
        self.seats
            .iter()
            .find(|m| &m.conn == conn && m.held.is_none())
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

    /// What a join of `conn`, seated here, answers: its seat and token,
    /// the others in join order, the history.
    fn view_for(&self, conn: &C, how: How<C>) -> Option<Joined<C>> {
        let me = self.by_conn(conn)?;
        let host = self.seats.first().is_some_and(|h| &h.conn == conn);
        Some(Joined {
            me: me.me(host),
            mode: self.mode,
            peers: listed(&self.seats, conn),
            history: self.history.iter().map(|k| k.msg.clone()).collect(),
            token: me.token.clone(),
            how,
            locked: self.locked,
            sfu_epoch: None,
            others_at: Vec::new(),
        })
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
    /// Seats held now.
    holds: usize,
    /// When each hold ends, in order (the grace period is the same for
    /// all); entries of seats resumed since are skipped.
    deadlines: VecDeque<(Instant, RoomName, PeerId)>,
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
            holds: 0,
            deadlines: VecDeque::new(),
        }
    }

    pub(super) fn held_count(&self) -> usize {
        self.holds
    }

    pub(super) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub(super) fn peer_count(&self) -> usize {
        self.peers
    }

    /// Seats `conn` in a room, creating it if needed, or takes back the
    /// seat whose token `spec.resume` names.
    pub(super) fn join(
        &mut self,
        conn: C,
        spec: JoinSpec,
        id: PeerId,
    ) -> Result<Joined<C>, JoinError> {
        let limits = self.limits;
        let in_rooms = self.conns.get(&conn).map_or(0, Vec::len);
        if let Some(room) = self.rooms.get_mut(&spec.room) {
            if let Some(again) = room.view_for(&conn, How::Again) {
                return Ok(again);
            }
            let resumed = spec.resume.as_ref().and_then(|t| {
                room.seats
                    .iter()
                    .position(|m| token_matches(&m.token, t.as_str()))
            });
            if let Some(idx) = resumed {
                if in_rooms >= limits.rooms_per_conn {
                    return Err(JoinError::TooManyRooms(limits.rooms_per_conn));
                }
                let seat = &mut room.seats[idx];
                let old = std::mem::replace(&mut seat.conn, conn);
                seat.token = spec.token;
                let (kept, replaced) = match seat.held.take() {
                    Some(held) => {
                        self.holds -= 1;
                        (held.kept.into(), None)
                    }
                    None => (Vec::new(), Some(old)),
                };
                let Some(joined) = room.view_for(&conn, How::Resumed { kept, replaced }) else {
                    unreachable!("the seat was just given to this connection");
                };
                if let Some(old) = replaced {
                    self.drop_conn_room(old, &spec.room);
                }
                self.conns.entry(conn).or_default().push(spec.room);
                return Ok(joined);
            }
            if room.locked {
                return Err(JoinError::Locked);
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
        if in_rooms >= limits.rooms_per_conn {
            return Err(JoinError::TooManyRooms(limits.rooms_per_conn));
        }
        let room = self.rooms.entry(spec.room.clone()).or_insert_with(|| Room {
            name: Arc::new(spec.room.clone()),
            mode: spec.mode,
            password: spec.password,
            seats: Vec::new(),
            locked: false,
            history: VecDeque::new(),
            history_bytes: 0,
        });
        let me = Seat {
            id,
            name: spec.name,
            conn,
            media: None,
            token: spec.token,
            held: None,
            hand: false,
        };
        let joined = Joined {
            me: me.me(room.seats.is_empty()),
            mode: room.mode,
            peers: listed(&room.seats, &conn),
            history: room.history.iter().map(|k| k.msg.clone()).collect(),
            token: me.token.clone(),
            how: How::Fresh,
            locked: room.locked,
            sfu_epoch: None,
            others_at: Vec::new(),
        };
        room.seats.push(me);
        self.conns.entry(conn).or_default().push(spec.room);
        self.peers += 1;
        Ok(joined)
    }

    /// Takes `room` off the rooms of `conn`.
    fn drop_conn_room(&mut self, conn: C, room: &RoomName) {
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
    }

    /// `conn` was lost: holds its seats until `until`.
    pub(super) fn hold(&mut self, conn: C, until: Instant) -> Vec<HeldSeat> {
        let rooms = self.conns.remove(&conn).unwrap_or_default();
        let mut held = Vec::with_capacity(rooms.len());
        for room in rooms {
            let Some(r) = self.rooms.get_mut(&room) else {
                continue;
            };
            let Some(seat) = r.seats.iter_mut().find(|m| m.conn == conn) else {
                continue;
            };
            if seat.held.is_none() {
                self.holds += 1;
            }
            seat.held = Some(Held {
                until,
                kept: VecDeque::new(),
                bytes: 0,
            });
            self.deadlines
                .push_back((until, room.clone(), seat.id.clone()));
            held.push(HeldSeat {
                room,
                id: seat.id.clone(),
            });
        }
        held
    }

    /// Keeps `parcel` for `peer` if its seat is held; else where it is.
    pub(super) fn keep(
        &mut self,
        room: &RoomName,
        peer: &PeerId,
        parcel: Parcel,
    ) -> Result<Keep<C>, RouteError> {
        let limits = self.limits;
        let seat = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.seats.iter_mut().find(|m| &m.id == peer))
            .ok_or(RouteError::UnknownPeer)?;
        let Some(held) = &mut seat.held else {
            return Ok(Keep::Live(seat.conn, parcel));
        };
        held.bytes += parcel.bytes();
        held.kept.push_back(parcel);
        while held.kept.len() > limits.kept_events || held.bytes > limits.kept_bytes {
            let Some(old) = held.kept.pop_front() else {
                break;
            };
            held.bytes -= old.bytes();
        }
        Ok(Keep::Kept)
    }

    /// Ends the holds that are over at `now`.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(RoomName, Left<C>)> {
        let mut gone = Vec::new();
        while let Some((until, ..)) = self.deadlines.front() {
            if *until > now {
                break;
            }
            let Some((until, room, id)) = self.deadlines.pop_front() else {
                break;
            };
            let idx = self.rooms.get(&room).and_then(|r| {
                r.seats
                    .iter()
                    .position(|m| m.id == id && m.held.as_ref().is_some_and(|h| h.until == until))
            });
            if let Some(idx) = idx {
                gone.push((room.clone(), self.remove_seat(&room, idx)));
            }
        }
        gone
    }

    /// Removes seat `idx` of `room` (and the room with its last seat).
    fn remove_seat(&mut self, room: &RoomName, idx: usize) -> Left<C> {
        let Some(r) = self.rooms.get_mut(room) else {
            unreachable!("remove_seat is called with a seat of an existing room");
        };
        let seat = r.seats.remove(idx);
        if seat.held.is_some() {
            self.holds -= 1;
        }
        let remaining = r.seats.len();
        let host = (idx == 0)
            .then(|| r.seats.first().map(|h| h.id.clone()))
            .flatten();
        if remaining == 0
            && let Some(gone) = self.rooms.remove(room)
        {
            for kept in &gone.history {
                forget(&mut self.authors, kept);
            }
        }
        self.peers -= 1;
        Left {
            id: seat.id,
            remaining,
            host,
            others_at: Vec::new(),
        }
    }

    /// Applies a host control or a hand from `conn` (see [`Act`]).
    pub(super) fn act(&mut self, conn: C, room: &RoomName, act: Act) -> Result<Acted<C>, ActError> {
        let r = self.rooms.get_mut(room).ok_or(ActError::NotInRoom)?;
        let me = r
            .seats
            .iter()
            .position(|m| m.conn == conn && m.held.is_none())
            .ok_or(ActError::NotInRoom)?;
        let by = r.seats[me].id.clone();
        let mut done = Acted {
            by,
            count: r.seats.len(),
            target: None,
            left: None,
        };
        match act {
            Act::Hand(raised) => r.seats[me].hand = raised,
            _ if me != 0 => return Err(ActError::Forbidden),
            Act::Lock(locked) => r.locked = locked,
            Act::Kick(peer) | Act::Mute(peer) if peer == done.by => return Err(ActError::ToSelf),
            Act::Mute(peer) => {
                done.target = Some(r.by_id(&peer).ok_or(ActError::UnknownPeer)?.dest());
            }
            Act::Kick(peer) => {
                let idx = r
                    .seats
                    .iter()
                    .position(|m| m.id == peer)
                    .ok_or(ActError::UnknownPeer)?;
                let target = r.seats[idx].dest();
                let left = self.remove_seat(room, idx);
                if let Dest::Live(old) = target {
                    self.drop_conn_room(old, room);
                }
                done.count = left.remaining;
                done.target = Some(target);
                done.left = Some(left);
            }
        }
        Ok(done)
    }

    /// Removes `conn` from `room`.
    pub(super) fn leave(&mut self, conn: C, room: &RoomName) -> Result<Left<C>, NotInRoom> {
        let idx = self
            .rooms
            .get(room)
            .and_then(|r| {
                r.seats
                    .iter()
                    .position(|m| m.conn == conn && m.held.is_none())
            })
            .ok_or(NotInRoom)?;
        let left = self.remove_seat(room, idx);
        self.drop_conn_room(conn, room);
        Ok(left)
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
            .find(|m| m.conn == conn && m.held.is_none())
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
            to: author.dest(),
        })
    }

    pub(super) fn dest_of(&self, room: &RoomName, peer: &PeerId) -> Option<Dest<C>> {
        self.rooms.get(room)?.by_id(peer).map(Seat::dest)
    }

    pub(super) fn route(
        &self,
        conn: C,
        room: &RoomName,
        to: &PeerId,
    ) -> Result<(PeerId, Dest<C>), RouteError> {
        let r = self.rooms.get(room).ok_or(RouteError::NotInRoom)?;
        let from = r.by_conn(&conn).ok_or(RouteError::NotInRoom)?;
        if &from.id == to {
            return Err(RouteError::ToSelf);
        }
        let target = r.by_id(to).ok_or(RouteError::UnknownPeer)?;
        Ok((from.id.clone(), target.dest()))
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
