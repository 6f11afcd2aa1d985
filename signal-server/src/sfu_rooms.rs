//! The SFU rooms this node hosts: one webrtc-rs room task per SFU-mode
//! room (the `sfu` crate), started with the room's first member and ended
//! with its last.
//!
//! What one client can make the SFU hold is bounded here, before a signal
//! is queued to a room:
//! - an offer, answer or candidate must pass the SFU's checks
//!   ([`sfu::validate_offer`] and its kin): nothing is built for text that
//!   is not a usable description ([`SfuRefusal::Bad`], `bad_request`);
//! - a peer has at most one connection per SFU room (the room keys them by
//!   peer id, and a socket has one peer id per room), and a socket is in at
//!   most `max_rooms_per_socket` rooms;
//! - the connections of one client address are counted in its
//!   [`AddrState::sfu_peers`]: at most `sfu_peers_per_ip` at once
//!   ([`SfuRefusal::TooMany`], `rate_limited`).
//!
//! The count's truth is split: the server knows the address, the room knows
//! when a connection exists. Each (room, peer) that offered gets a [`Seat`]
//! (its address's counter and whether it counts now), kept here until the
//! peer leaves and handed to the room with each offer as its
//! [`sfu::PeerAllowance`]. The handler takes the count before queueing an
//! offer (so the sender's ack can say `rate_limited`); the room takes it
//! again (a no-op when held) when it builds the connection, and gives it
//! back when the connection ends for any reason (leave, disconnect, `bye`,
//! failed connection, a first offer it cannot apply, the room's end). A
//! seat dropped while counting (the room gone) gives it back too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use protocol::{PeerId, RoomName, SignalData};
use tokio::sync::mpsc;

use crate::conn_limit::AddrState;
use crate::metrics::SfuRoomSnapshot;

/// What an SFU room sends its peers: `(peer, signal)`.
pub type SfuOutbox = mpsc::UnboundedReceiver<(PeerId, SignalData)>;

#[derive(Debug)]
pub struct SfuRooms {
    /// `None`: this node has no SFU.
    sfu: Option<sfu::Sfu>,
    rooms: Mutex<HashMap<RoomName, SfuRoom>>,
    /// Scaled out: the seats of this node's members in SFU rooms another
    /// node hosts, counted here where their address is known (taken with
    /// the first offer, given back at `bye` or when the peer is out of the
    /// room).
    remote: Mutex<HashMap<(RoomName, PeerId), Arc<Seat>>>,
    /// Scaled out: members of rooms this node may host who left through
    /// another node, for [`LEFT_FOR`]. A leave reaches the owner on another
    /// channel than the member's signals, so it can overtake the last of
    /// them; such a signal is stale (a peer id that left never comes back).
    left: Mutex<Recent>,
    /// Scaled out: what the deployment offers, as of the last SFU sweep
    /// (`None` on one node: this node's own SFU decides).
    deployment: Option<Mutex<Deployment>>,
}

/// Scaled out: whether some node runs the SFU, and whether all forward
/// simulcast.
#[derive(Debug, Clone, Copy)]
struct Deployment {
    live: bool,
    simulcast: bool,
}

/// One SFU room: its task's handle, and the seats of the peers that offered.
#[derive(Debug)]
struct SfuRoom {
    handle: sfu::RoomHandle,
    seats: HashMap<PeerId, Arc<Seat>>,
}

/// Why a signal for the SFU is not queued.
#[derive(Debug, thiserror::Error)]
pub enum SfuRefusal {
    /// Not a usable description or candidate (`bad_request`).
    #[error("SFU signal refused: {0}")]
    Bad(#[from] sfu::BadSignal),
    /// The sender's address has its SFU connections already (`rate_limited`).
    #[error(
        "too many SFU connections from this address (at most {0}); \
         leave an SFU room to start another"
    )]
    TooMany(usize),
    /// The room's queue is full, or the room is gone (`internal`).
    #[error("{0}")]
    Unavailable(&'static str),
}

/// Who sent a signal, for the per-address count.
#[derive(Debug, Clone)]
pub struct Sender {
    pub peer: PeerId,
    /// The sender's address's counters; `None`: not counted (a session
    /// without an address slot, which the server does not create).
    pub addr: Option<Arc<AddrState>>,
    /// `Limits::sfu_peers_per_ip`.
    pub limit: usize,
}

impl SfuRooms {
    /// `scaled`: one node of several on Redis.
    pub fn new(sfu: Option<sfu::Sfu>, scaled: bool) -> Self {
        let mut rooms = Self {
            sfu,
            rooms: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            left: Mutex::new(Recent::default()),
            deployment: None,
        };
        if scaled {
            rooms.deployment = Some(Mutex::new(Deployment {
                live: rooms.sfu.is_some(),
                simulcast: rooms.forwards_simulcast(),
            }));
        }
        rooms
    }

    /// Whether this node runs an SFU.
    pub fn here(&self) -> bool {
        self.sfu.is_some()
    }

    /// Whether SFU rooms can be made now: on one node, whether it runs the
    /// SFU; scaled out, whether some node does.
    pub fn enabled(&self) -> bool {
        match self.deployment() {
            Some(d) => d.live,
            None => self.here(),
        }
    }

    /// Whether SFU rooms take simulcast (a layer per subscriber): the shard
    /// engine does, the webrtc engine forwards one layer. Scaled out: every
    /// live SFU node must.
    pub fn simulcast(&self) -> bool {
        match self.deployment() {
            Some(d) => d.live && d.simulcast,
            None => self.forwards_simulcast(),
        }
    }

    /// Whether this node's SFU tallies per-subscriber layers and rates (the
    /// shard engine).
    pub fn tallies(&self) -> bool {
        self.forwards_simulcast()
    }

    fn forwards_simulcast(&self) -> bool {
        self.sfu
            .as_ref()
            .is_some_and(|s| s.config().engine == sfu::SfuEngine::Shard)
    }

    fn deployment(&self) -> Option<Deployment> {
        self.deployment
            .as_ref()
            .map(|d| *d.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Scaled out: what the last SFU sweep found.
    pub fn set_deployment(&self, live: bool, simulcast: bool) {
        if let Some(d) = &self.deployment {
            *d.lock().unwrap_or_else(PoisonError::into_inner) = Deployment { live, simulcast };
        }
    }

    /// Peers with a connection to this node's SFU (its load).
    pub fn peers(&self) -> usize {
        self.lock().values().map(|r| r.seats.len()).sum()
    }

    /// Whether this node hosts `room` with no connection in it.
    pub fn idle(&self, room: &RoomName) -> bool {
        self.lock()
            .get(room)
            .is_some_and(|r| r.handle.metrics.peer_snapshot().is_empty())
    }

    /// The SFU rooms this node hosts now.
    pub fn hosted(&self) -> Vec<RoomName> {
        self.lock().keys().cloned().collect()
    }

    /// Ends this node's SFU room `room` (it moved away): every connection
    /// closes, giving back its count.
    pub fn end(&self, room: &RoomName) {
        if self.lock().remove(room).is_some() {
            tracing::info!(room = %room, "SFU room ended here: it moved to another node");
        }
    }

    /// Scaled out: counts an offer from `from`, a member of this node, for
    /// an SFU room another node hosts (nothing to do if it counts already).
    pub fn count_remote(&self, room: &RoomName, from: &Sender) -> Result<(), SfuRefusal> {
        let seat = self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((room.clone(), from.peer.clone()))
            .or_insert_with(|| Seat::of(from))
            .clone();
        match seat.take() {
            Taken::Refused => Err(SfuRefusal::TooMany(from.limit)),
            Taken::Now | Taken::Already => Ok(()),
        }
    }

    /// Scaled out: `peer` left `room` through another node (see `left`).
    /// Only a node with the SFU keeps it.
    pub fn left_elsewhere(&self, room: &RoomName, peer: &PeerId) {
        if self.here() {
            let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
            left.insert((room.clone(), peer.clone()));
        }
    }

    /// Whether `peer` left `room` through another node a moment ago.
    pub fn has_left(&self, room: &RoomName, peer: &PeerId) -> bool {
        let left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        left.contains(&(room.clone(), peer.clone()))
    }

    /// Gives back the count of `peer`'s connection to another node's SFU.
    pub fn forget_remote(&self, room: &RoomName, peer: &PeerId) {
        // Dropping the seat gives its count back.
        self.remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(room.clone(), peer.clone()));
    }

    /// Handles and seats only: a panic cannot leave the map half-changed.
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, SfuRoom>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks a signal from `from` for the SFU of `room` and queues it, in
    /// order. An offer also needs a connection counted for the sender's
    /// address, unless the peer has one. The room's SFU starts with the
    /// first offer accepted (a room whose members never offer costs no
    /// task); then what it will say to its peers is returned, to relay.
    pub fn signal(
        &self,
        room: &RoomName,
        from: Sender,
        data: SignalData,
    ) -> Result<Option<SfuOutbox>, SfuRefusal> {
        // Checked before any lock is taken or anything is built.
        check(&data)?;
        let mut rooms = self.lock();
        let is_offer = matches!(data, SignalData::Offer { .. });
        let mut started = None;
        if !rooms.contains_key(room) {
            let sfu = self
                .sfu
                .as_ref()
                .ok_or(SfuRefusal::Unavailable("this server has no SFU"))?;
            if !is_offer {
                return Err(SfuRefusal::Unavailable(
                    "the SFU of this room has not started: send an offer first",
                ));
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let entry = SfuRoom {
                handle: sfu.spawn_room(tx),
                seats: HashMap::new(),
            };
            rooms.insert(room.clone(), entry);
            started = Some(rx);
        }
        let Some(entry) = rooms.get_mut(room) else {
            unreachable!("the room was found or inserted above, under the same lock");
        };
        let mut newly_counted = None;
        let allowance = if matches!(data, SignalData::Offer { .. }) {
            let seat = entry
                .seats
                .entry(from.peer.clone())
                .or_insert_with(|| Seat::of(&from))
                .clone();
            match seat.take() {
                Taken::Refused => {
                    if started.is_some() {
                        // Nobody else is in an SFU room started for this offer.
                        rooms.remove(room);
                    }
                    return Err(SfuRefusal::TooMany(from.limit));
                }
                Taken::Now => newly_counted = Some(seat.clone()),
                Taken::Already => {}
            }
            Some(seat as Arc<dyn sfu::PeerAllowance>)
        } else {
            None
        };
        entry
            .handle
            .try_signal(from.peer, data, allowance)
            .map_err(|_| {
                // Counted for an offer that is not queued: uncount it.
                if let Some(seat) = newly_counted {
                    seat.give_back();
                }
                SfuRefusal::Unavailable("the SFU room is busy; try again")
            })?;
        Ok(started)
    }

    /// `peer` left `room`; with the last one the room's task ends (dropping
    /// the last handle closes every connection, giving back their counts).
    pub fn leave(&self, room: &RoomName, peer: PeerId, last: bool) {
        self.forget_remote(room, &peer);
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return;
        };
        // The room gives the count back when it closes the connection; a
        // seat whose offer was never taken up gives it back when dropped.
        entry.seats.remove(&peer);
        if let Err(e) = entry.handle.try_leave(peer.clone()) {
            // Only when the room task is gone, which closed every connection.
            tracing::debug!(room = %room, peer = %peer, "SFU leave not queued: {e}");
        }
        // Scaled out, a last leave may come late (another node's, through
        // Redis): a room that someone offered to since is a new one.
        if last && entry.seats.is_empty() {
            rooms.remove(room);
        }
    }

    /// `viewer` shows `publisher`'s camera `height` device pixels tall; for
    /// the room's SFU, if it started (else there is nothing to choose).
    pub fn view(&self, room: &RoomName, viewer: PeerId, publisher: PeerId, height: u16) {
        if let Some(entry) = self.lock().get(room)
            && let Err(e) = entry.handle.try_view(viewer, publisher, height)
        {
            tracing::debug!(room = %room, "SFU view not queued: {e}");
        }
    }

    /// Every room's counters, by room name.
    pub fn snapshot(&self) -> Vec<SfuRoomSnapshot> {
        let mut all: Vec<SfuRoomSnapshot> = self
            .lock()
            .iter()
            .map(|(room, r)| SfuRoomSnapshot {
                room: room.clone(),
                totals: r.handle.metrics.totals(),
                peers: r.handle.metrics.peer_snapshot(),
            })
            .collect();
        all.sort_by(|a, b| a.room.as_str().cmp(b.room.as_str()));
        all
    }
}

/// How long a leave heard from another node is remembered (at least; at
/// most twice): far longer than a signal published before it can take to
/// arrive after it.
const LEFT_FOR: Duration = Duration::from_secs(60);

/// A set that forgets: what was inserted in the last one or two
/// [`LEFT_FOR`] (two generations, swapped as they age: O(1) per insert).
#[derive(Debug)]
struct Recent {
    now: HashSet<(RoomName, PeerId)>,
    before: HashSet<(RoomName, PeerId)>,
    since: Instant,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            now: HashSet::new(),
            before: HashSet::new(),
            since: Instant::now(),
        }
    }
}

impl Recent {
    fn insert(&mut self, key: (RoomName, PeerId)) {
        if self.since.elapsed() >= LEFT_FOR {
            self.before = std::mem::take(&mut self.now);
            self.since = Instant::now();
        }
        self.now.insert(key);
    }

    fn contains(&self, key: &(RoomName, PeerId)) -> bool {
        self.now.contains(key) || self.before.contains(key)
    }
}

/// Whether an SFU could use `data`: a description that is not usable SDP,
/// or a candidate that is not one, is [`SfuRefusal::Bad`].
pub fn check(data: &SignalData) -> Result<(), SfuRefusal> {
    match data {
        SignalData::Offer { sdp } => sfu::validate_offer(sdp)?,
        SignalData::Answer { sdp } => sfu::validate_answer(sdp)?,
        SignalData::Candidate { candidate: Some(c) } => sfu::validate_candidate(c)?,
        SignalData::Candidate { candidate: None } | SignalData::Bye => {}
    }
    Ok(())
}

/// One peer's claim on an SFU connection of one room, counted in its
/// address's `sfu_peers` while `counted`.
#[derive(Debug)]
struct Seat {
    addr: Option<Arc<AddrState>>,
    limit: usize,
    /// Whether this seat counts in `addr` now. A lock, not an atomic: the
    /// handler takes and the room gives back concurrently, and the flag and
    /// the counter must change together.
    counted: Mutex<bool>,
}

/// What [`Seat::take`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// It counted already.
    Already,
    /// It counts from now on.
    Now,
    /// Its address has `limit` connections counted.
    Refused,
}

impl Seat {
    /// A seat for `from`'s address, not counted yet.
    fn of(from: &Sender) -> Arc<Self> {
        Arc::new(Self {
            addr: from.addr.clone(),
            limit: from.limit,
            counted: Mutex::new(false),
        })
    }

    /// Counts this seat (nothing to do if it counts already), within its
    /// address's limit.
    fn take(&self) -> Taken {
        let mut counted = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
        if *counted {
            return Taken::Already;
        }
        if let Some(addr) = &self.addr {
            let limit = self.limit;
            let taken = addr
                .sfu_peers
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limit).then_some(n + 1)
                });
            if taken.is_err() {
                return Taken::Refused;
            }
        }
        *counted = true;
        Taken::Now
    }

    fn give_back(&self) {
        let mut counted = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut *counted)
            && let Some(addr) = &self.addr
        {
            addr.sfu_peers.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl sfu::PeerAllowance for Seat {
    fn acquire(&self) -> bool {
        self.take() != Taken::Refused
    }

    fn release(&self) {
        self.give_back();
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chrome offer (audio + video) that passes the SFU's checks (the
    /// same as tests/js/sdp.mjs).
    const OFFER: &str = "v=0\r\no=- 950418995774734248 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS s\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:Ax8A\r\na=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=msid:s a\r\na=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\na=ssrc:1001 cname:c\r\na=ssrc:1001 msid:s a\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:Ax8A\r\na=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85\r\n\
        a=setup:actpass\r\na=mid:1\r\na=sendrecv\r\na=msid:s v\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
        a=ssrc:1002 cname:c\r\na=ssrc:1002 msid:s v\r\n";

    #[tokio::test]
    async fn a_late_last_leave_spares_a_room_someone_offered_to_since() {
        let sfu = sfu::Sfu::new(sfu::SfuConfig {
            bind_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port_min: 0,
            port_max: 0,
            nat_1to1_ip: None,
            pli_throttle: std::time::Duration::from_millis(500),
            ice_tcp: false,
            engine: sfu::SfuEngine::Shard,
        })
        .expect("the SFU starts");
        let rooms = SfuRooms::new(Some(sfu), true);
        let room = RoomName::parse("late").expect("a room name");
        let from = |peer: &str| Sender {
            peer: PeerId::from(peer.to_owned()),
            addr: None,
            limit: 8,
        };
        let offer = SignalData::Offer {
            sdp: OFFER.to_owned(),
        };
        assert!(matches!(
            rooms.signal(&room, from("new"), offer),
            Ok(Some(_))
        ));
        // Another node's last leave of the room before, heard late.
        rooms.left_elsewhere(&room, &PeerId::from("old".to_owned()));
        rooms.leave(&room, PeerId::from("old".to_owned()), true);
        assert!(rooms.has_left(&room, &PeerId::from("old".to_owned())));
        assert!(!rooms.has_left(&room, &PeerId::from("new".to_owned())));
        assert_eq!(rooms.hosted(), vec![room.clone()], "the new room stays");
        rooms.leave(&room, PeerId::from("new".to_owned()), true);
        assert!(rooms.hosted().is_empty(), "its own last leave ends it");
    }

    fn seat(addr: &Arc<AddrState>, limit: usize) -> Arc<Seat> {
        Arc::new(Seat {
            addr: Some(addr.clone()),
            limit,
            counted: Mutex::new(false),
        })
    }

    #[test]
    fn seats_count_once_up_to_the_limit_and_give_back_once() {
        let addr = Arc::new(AddrState::default());
        let n = || addr.sfu_peers.load(Ordering::Relaxed);
        let (a, b, c) = (seat(&addr, 2), seat(&addr, 2), seat(&addr, 2));
        assert_eq!((a.take(), a.take()), (Taken::Now, Taken::Already));
        assert_eq!(b.take(), Taken::Now);
        assert_eq!(n(), 2);
        assert_eq!(c.take(), Taken::Refused, "the third is over the limit");
        a.give_back();
        a.give_back();
        assert_eq!(n(), 1, "giving back twice uncounts once");
        assert_eq!(c.take(), Taken::Now);
        drop(b);
        assert_eq!(n(), 1, "a seat dropped while counting gives it back");
        drop((a, c));
        assert_eq!(n(), 0);
    }
}
