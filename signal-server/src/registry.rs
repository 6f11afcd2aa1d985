//! The room registry: who is in which room, each room's mode, password and
//! chat history. Plain synchronous code with no socket types, so it can be
//! tested on its own; `C` is whatever identifies a connection (a socket id).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use protocol::{
    ChatMessage, ChatText, DisplayName, MediaState, Mode, Password, PeerId, PeerInfo, RoomName,
};
use subtle::ConstantTimeEq;

/// Limits the registry enforces.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Peers per room; a join beyond gets `room_full`.
    pub max_peers: usize,
    /// Chat messages kept per room for late joiners.
    pub history: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("room is full ({0} peers)")]
    RoomFull(usize),
    #[error("wrong or missing room password")]
    Unauthorized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not in room")]
pub struct NotInRoom;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("not in room")]
    NotInRoom,
    #[error("no such peer in this room")]
    UnknownPeer,
    #[error("cannot signal yourself")]
    ToSelf,
}

/// A validated join, as the registry needs it.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub room: RoomName,
    pub name: DisplayName,
    /// Mode for a room this join creates; ignored for an existing room.
    pub mode: Mode,
    pub password: Option<Password>,
}

/// What a successful join returns: everything the ack needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub me: PeerInfo,
    pub mode: Mode,
    /// Everyone else, in join order.
    pub peers: Vec<PeerInfo>,
    /// Oldest first.
    pub history: Vec<ChatMessage>,
    /// False when this connection was already in the room (the join is idempotent).
    pub fresh: bool,
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

#[derive(Debug)]
struct Member<C> {
    id: PeerId,
    name: DisplayName,
    conn: C,
    media: Option<MediaState>,
}

impl<C> Member<C> {
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

#[derive(Debug)]
struct Room<C> {
    mode: Mode,
    password: Option<Password>,
    /// In join order; rooms are small enough that a scan beats a map.
    members: Vec<Member<C>>,
    history: VecDeque<ChatMessage>,
}

impl<C: PartialEq> Room<C> {
    fn by_conn(&self, conn: &C) -> Option<&Member<C>> {
        self.members.iter().find(|m| &m.conn == conn)
    }

    fn password_matches(&self, given: Option<&Password>) -> bool {
        match (&self.password, given) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(got)) => bool::from(want.as_bytes().ct_eq(got.as_bytes())),
        }
    }
}

/// How long a closed connection stays marked ([`Registry::close`]): far
/// longer than a dead session's events still being read (the rest of a
/// polling POST, a WebSocket's buffered frames), short enough to keep the
/// set small.
const CLOSED_TTL: Duration = Duration::from_secs(60);

/// All rooms of this server.
#[derive(Debug)]
pub struct Registry<C> {
    rooms: HashMap<RoomName, Room<C>>,
    /// Rooms each connection is in, so a disconnect leaves all of them.
    conns: HashMap<C, Vec<RoomName>>,
    peers: usize,
    limits: RoomLimits,
    /// Connections whose session is gone, in two generations of
    /// [`CLOSED_TTL`]: newest first.
    closed: [HashSet<C>; 2],
    closed_since: Option<Instant>,
}

impl<C: Copy + Eq + Hash> Registry<C> {
    pub fn new(limits: RoomLimits) -> Self {
        Self {
            rooms: HashMap::new(),
            conns: HashMap::new(),
            peers: 0,
            limits,
            closed: [HashSet::new(), HashSet::new()],
            closed_since: None,
        }
    }

    /// Marks `conn`'s session as gone for good: [`Self::is_closed`] holds
    /// for it from now on, for at least [`CLOSED_TTL`]. Events of a closed
    /// session can still be dispatched after its disconnect handler ran
    /// (Engine.IO notifies the disconnect on another task while the rest of
    /// a polling POST is still being read); a join from one must not create
    /// a member that no disconnect will ever remove.
    pub fn close(&mut self, conn: C, now: Instant) {
        let since = *self.closed_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= CLOSED_TTL {
            let [newer, older] = &mut self.closed;
            std::mem::swap(newer, older);
            newer.clear();
            self.closed_since = Some(now);
        }
        self.closed[0].insert(conn);
    }

    /// True when `conn`'s session was [closed](Self::close).
    pub fn is_closed(&self, conn: C) -> bool {
        self.closed.iter().any(|set| set.contains(&conn))
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.peers
    }

    /// Joins `conn` to a room, creating it if needed. `new_id` makes the peer id.
    pub fn join(
        &mut self,
        conn: C,
        spec: JoinSpec,
        new_id: impl FnOnce() -> PeerId,
    ) -> Result<Joined, JoinError> {
        let limits = self.limits;
        let room = self.rooms.entry(spec.room.clone()).or_insert_with(|| Room {
            mode: spec.mode,
            password: spec.password.clone(),
            members: Vec::new(),
            history: VecDeque::new(),
        });
        if let Some(me) = room.by_conn(&conn) {
            return Ok(Joined {
                me: me.ident(),
                mode: room.mode,
                peers: room
                    .members
                    .iter()
                    .filter(|m| m.conn != conn)
                    .map(Member::info)
                    .collect(),
                history: room.history.iter().cloned().collect(),
                fresh: false,
            });
        }
        // A room created by this very call has no members and its own password.
        if !room.password_matches(spec.password.as_ref()) {
            return Err(JoinError::Unauthorized);
        }
        if room.members.len() >= limits.max_peers {
            return Err(JoinError::RoomFull(limits.max_peers));
        }
        let me = Member {
            id: new_id(),
            name: spec.name,
            conn,
            media: None,
        };
        let joined = Joined {
            me: me.ident(),
            mode: room.mode,
            peers: room.members.iter().map(Member::info).collect(),
            history: room.history.iter().cloned().collect(),
            fresh: true,
        };
        room.members.push(me);
        self.conns.entry(conn).or_default().push(spec.room);
        self.peers += 1;
        Ok(joined)
    }

    /// Removes `conn` from `room`; returns the peer id it had there.
    pub fn leave(&mut self, conn: C, room: &RoomName) -> Result<PeerId, NotInRoom> {
        let r = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let idx = r
            .members
            .iter()
            .position(|m| m.conn == conn)
            .ok_or(NotInRoom)?;
        let member = r.members.remove(idx);
        if r.members.is_empty() {
            self.rooms.remove(room);
        }
        if let Some(rooms) = self.conns.get_mut(&conn) {
            rooms.retain(|r| r != room);
            if rooms.is_empty() {
                self.conns.remove(&conn);
            }
        }
        self.peers -= 1;
        Ok(member.id)
    }

    /// Removes `conn` from every room; returns `(room, peer id)` for each.
    pub fn disconnect(&mut self, conn: C) -> Vec<(RoomName, PeerId)> {
        self.rooms_of(conn)
            .into_iter()
            .filter_map(|room| self.leave(conn, &room).ok().map(|id| (room, id)))
            .collect()
    }

    /// Peers in `room` (0 if it does not exist).
    pub fn peer_count_in(&self, room: &RoomName) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// The rooms `conn` is in.
    pub fn rooms_of(&self, conn: C) -> Vec<RoomName> {
        self.conns.get(&conn).cloned().unwrap_or_default()
    }

    /// The sender's identity in `room`.
    pub fn member(&self, conn: C, room: &RoomName) -> Result<PeerInfo, NotInRoom> {
        self.rooms
            .get(room)
            .and_then(|r| r.by_conn(&conn))
            .map(Member::ident)
            .ok_or(NotInRoom)
    }

    /// Records what `conn` sends in `room`; returns its peer id.
    pub fn set_media(
        &mut self,
        conn: C,
        room: &RoomName,
        media: MediaState,
    ) -> Result<PeerId, NotInRoom> {
        let m = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.iter_mut().find(|m| m.conn == conn))
            .ok_or(NotInRoom)?;
        m.media = Some(media);
        Ok(m.id.clone())
    }

    /// Finds the author of chat message `msg` for a receipt from `conn`;
    /// returns the receipt's sender id and the author's connection.
    pub fn route_receipt(
        &self,
        conn: C,
        room: &RoomName,
        msg: &str,
    ) -> Result<(PeerId, C), ReceiptError> {
        let r = self.rooms.get(room).ok_or(ReceiptError::NotInRoom)?;
        let me = r.by_conn(&conn).ok_or(ReceiptError::NotInRoom)?;
        let author = r
            .history
            .iter()
            .rev()
            .find(|m| m.id == msg)
            .map(|m| &m.from.id)
            .ok_or(ReceiptError::UnknownMessage)?;
        let author = r
            .members
            .iter()
            .find(|m| &m.id == author)
            .ok_or(ReceiptError::AuthorGone)?;
        Ok((me.id.clone(), author.conn))
    }

    /// The connection of peer `peer` in `room`.
    pub fn conn_of(&self, room: &RoomName, peer: &str) -> Option<C> {
        self.rooms
            .get(room)?
            .members
            .iter()
            .find(|m| m.id.as_str() == peer)
            .map(|m| m.conn)
    }

    /// The mode of a room, if it exists.
    pub fn mode(&self, room: &RoomName) -> Option<Mode> {
        self.rooms.get(room).map(|r| r.mode)
    }

    /// Checks a signal from `conn` to peer `to` of `room`; returns the
    /// sender's peer id and the addressed connection.
    pub fn route_signal(
        &self,
        conn: C,
        room: &RoomName,
        to: &PeerId,
    ) -> Result<(PeerId, C), SignalError> {
        let r = self.rooms.get(room).ok_or(SignalError::NotInRoom)?;
        let from = r.by_conn(&conn).ok_or(SignalError::NotInRoom)?;
        if &from.id == to {
            return Err(SignalError::ToSelf);
        }
        let target = r
            .members
            .iter()
            .find(|m| &m.id == to)
            .ok_or(SignalError::UnknownPeer)?;
        Ok((from.id.clone(), target.conn))
    }

    /// Records a chat message from `conn` in the room's bounded history.
    pub fn chat(
        &mut self,
        conn: C,
        room: &RoomName,
        text: ChatText,
        id: String,
        ts: u64,
    ) -> Result<ChatMessage, NotInRoom> {
        let limit = self.limits.history;
        let r = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let from = r.by_conn(&conn).ok_or(NotInRoom)?.ident();
        let msg = ChatMessage {
            room: room.clone(),
            id,
            from,
            text: text.as_str().to_owned(),
            ts,
        };
        if limit > 0 {
            if r.history.len() >= limit {
                r.history.pop_front();
            }
            r.history.push_back(msg.clone());
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RoomLimits = RoomLimits {
        max_peers: 3,
        history: 2,
    };

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).expect("valid room")
    }

    fn spec(r: &str, name: &str) -> JoinSpec {
        JoinSpec {
            room: room(r),
            name: DisplayName::parse(name).expect("valid name"),
            mode: Mode::Mesh,
            password: None,
        }
    }

    fn ids() -> impl FnMut() -> PeerId {
        let mut n = 0;
        move || {
            n += 1;
            PeerId::from(format!("p{n}"))
        }
    }

    #[test]
    fn join_lists_others_in_order_and_is_idempotent() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        let a = reg.join(1, spec("r", "A"), &mut id).expect("joins");
        assert!(a.fresh && a.peers.is_empty());
        reg.join(2, spec("r", "B"), &mut id).expect("joins");
        let c = reg.join(3, spec("r", "C"), &mut id).expect("joins");
        let names: Vec<_> = c.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        let again = reg.join(1, spec("r", "A2"), &mut id).expect("rejoin");
        assert!(!again.fresh);
        assert_eq!(again.me, a.me);
        assert_eq!(again.peers.len(), 2);
        assert_eq!(reg.peer_count(), 3);
    }

    #[test]
    fn room_full_and_mode_of_the_creator() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        let mut s = spec("r", "A");
        s.mode = Mode::Sfu;
        reg.join(1, s, &mut id).expect("joins");
        let b = reg.join(2, spec("r", "B"), &mut id).expect("joins");
        assert_eq!(b.mode, Mode::Sfu, "later joiners get the room's mode");
        reg.join(3, spec("r", "C"), &mut id).expect("joins");
        assert_eq!(
            reg.join(4, spec("r", "D"), &mut id),
            Err(JoinError::RoomFull(3))
        );
        assert_eq!(reg.peer_count(), 3);
    }

    #[test]
    fn password_set_by_creator() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        let pw = |s: &str| Password::parse(s.into()).expect("valid");
        let mut s = spec("r", "A");
        s.password = pw("secret");
        reg.join(1, s, &mut id).expect("creator joins");
        assert_eq!(
            reg.join(2, spec("r", "B"), &mut id),
            Err(JoinError::Unauthorized)
        );
        let mut wrong = spec("r", "B");
        wrong.password = pw("Secret");
        assert_eq!(reg.join(2, wrong, &mut id), Err(JoinError::Unauthorized));
        let mut right = spec("r", "B");
        right.password = pw("secret");
        assert!(reg.join(2, right, &mut id).is_ok());
        // A password on a room without one is ignored.
        let mut extra = spec("open", "C");
        reg.join(3, extra.clone(), &mut id).expect("joins");
        extra.password = pw("x");
        assert!(reg.join(4, extra, &mut id).is_ok());
    }

    #[test]
    fn closed_connections_are_remembered_for_a_while() {
        let mut reg: Registry<u32> = Registry::new(LIMITS);
        let t0 = Instant::now();
        assert!(!reg.is_closed(1));
        reg.close(1, t0);
        assert!(reg.is_closed(1));
        assert!(!reg.is_closed(2));
        // One generation later it is still there; two later it is forgotten.
        reg.close(2, t0 + CLOSED_TTL);
        assert!(reg.is_closed(1) && reg.is_closed(2));
        reg.close(3, t0 + 2 * CLOSED_TTL);
        assert!(!reg.is_closed(1));
        assert!(reg.is_closed(2) && reg.is_closed(3));
    }

    #[test]
    fn leave_and_disconnect_remove_empty_rooms() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        reg.join(1, spec("a", "A"), &mut id).expect("joins");
        reg.join(1, spec("b", "A"), &mut id).expect("joins");
        reg.join(2, spec("b", "B"), &mut id).expect("joins");
        assert_eq!(reg.leave(2, &room("a")), Err(NotInRoom));
        assert_eq!(reg.leave(1, &room("zzz")), Err(NotInRoom));
        let left = reg.disconnect(1);
        assert_eq!(left.len(), 2);
        assert_eq!(reg.room_count(), 1, "room a is gone, b remains");
        assert_eq!(reg.peer_count(), 1);
        assert!(reg.disconnect(1).is_empty());
        reg.leave(2, &room("b")).expect("in b");
        assert_eq!(reg.room_count(), 0);
        // A new room of the same name starts afresh.
        let mut s = spec("b", "C");
        s.mode = Mode::Sfu;
        assert_eq!(reg.join(3, s, &mut id).expect("joins").mode, Mode::Sfu);
    }

    #[test]
    fn signals_are_routed_within_the_room_only() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        let a = reg.join(1, spec("r", "A"), &mut id).expect("joins").me.id;
        let b = reg.join(2, spec("r", "B"), &mut id).expect("joins").me.id;
        let c = reg
            .join(3, spec("other", "C"), &mut id)
            .expect("joins")
            .me
            .id;
        assert_eq!(reg.route_signal(1, &room("r"), &b), Ok((a.clone(), 2)));
        assert_eq!(
            reg.route_signal(1, &room("r"), &c),
            Err(SignalError::UnknownPeer)
        );
        assert_eq!(
            reg.route_signal(1, &room("r"), &a),
            Err(SignalError::ToSelf)
        );
        assert_eq!(
            reg.route_signal(3, &room("r"), &a),
            Err(SignalError::NotInRoom)
        );
        assert_eq!(
            reg.route_signal(1, &room("nope"), &b),
            Err(SignalError::NotInRoom)
        );
    }

    #[test]
    fn media_state_is_listed_to_later_joiners_and_receipts_find_the_author() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        let a = reg.join(1, spec("r", "A"), &mut id).expect("joins").me.id;
        let media = MediaState {
            audio: false,
            video: true,
            screen: false,
        };
        assert_eq!(reg.set_media(1, &room("r"), media), Ok(a.clone()));
        assert_eq!(reg.set_media(2, &room("r"), media), Err(NotInRoom));
        let b = reg.join(2, spec("r", "B"), &mut id).expect("joins");
        assert_eq!(b.peers[0].media, Some(media));
        assert_eq!(b.me.media, None);
        let text = ChatText::parse("hi".into()).expect("valid");
        let msg = reg
            .chat(1, &room("r"), text, "m1".into(), 1)
            .expect("in room");
        assert_eq!(msg.from.media, None, "chat from carries id and name only");
        assert_eq!(
            reg.route_receipt(2, &room("r"), "m1"),
            Ok((b.me.id.clone(), 1))
        );
        assert_eq!(
            reg.route_receipt(2, &room("r"), "nope"),
            Err(ReceiptError::UnknownMessage)
        );
        reg.leave(1, &room("r")).expect("in room");
        assert_eq!(
            reg.route_receipt(2, &room("r"), "m1"),
            Err(ReceiptError::AuthorGone)
        );
    }

    #[test]
    fn history_is_bounded_and_oldest_first() {
        let mut reg = Registry::new(LIMITS);
        let mut id = ids();
        reg.join(1, spec("r", "A"), &mut id).expect("joins");
        for i in 0..3 {
            let text = ChatText::parse(format!("m{i}")).expect("valid");
            reg.chat(1, &room("r"), text, format!("id{i}"), i)
                .expect("in room");
        }
        let text = ChatText::parse("x".into()).expect("valid");
        assert_eq!(
            reg.chat(2, &room("r"), text, "id".into(), 0),
            Err(NotInRoom)
        );
        let late = reg.join(2, spec("r", "B"), &mut id).expect("joins");
        let texts: Vec<_> = late.history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["m1", "m2"]);
        assert_eq!(late.history[0].from.name, "A");
    }
}
