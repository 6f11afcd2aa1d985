//! SFU rooms on the shard (docs/sfu-engine.md): one thread owns the
//! [`Shard`] (one UDP socket for every connection of every room) and every
//! room's signalling state. A room is the same [`RoomHandle`] the `webrtc`
//! engine's rooms have: its commands go into the room's queue and wake the
//! thread; what the room sends a peer comes out of the room's `out`.
//!
//! Per room, the negotiation is the one of `room/negotiation.rs`: the
//! browser is the polite side, the room the impolite one (a browser offer
//! that collides with ours is ignored); changes made while our offer is out
//! are offered after its answer. A peer's first offer is checked
//! ([`check_description`]) and counted by its [`PeerAllowance`] before a
//! connection exists. Each stream a peer publishes is sent to every other
//! peer on a track of its own, in the stream named by the publisher's peer
//! id (`<peer>~screen` for a video sent without a stream: our client's
//! screen), forwarded once the subscriber answered the offer that carries
//! it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use protocol::{IceCandidate, PeerId, SignalData};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;

use super::shard::{ConnId, Event, Opened, Shard, Source};
use crate::error::SfuError;
use crate::peer::candidate_from_wire;
use crate::room::{
    Cmd, MAX_TRACKS_PER_PEER, PeerAllowance, RoomHandle, RoomMetrics, forwarded_track, rand_u32,
};
use crate::validate::check_description;

/// Wakes the shard's thread out of its `poll(2)`: a byte on a socket pair.
#[derive(Debug)]
pub struct Waker {
    tx: UnixDatagram,
    rx: UnixDatagram,
}

impl Waker {
    fn new() -> io::Result<Self> {
        let (tx, rx) = UnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Self { tx, rx })
    }

    /// Wakes the thread (a full buffer means it is awake already).
    pub fn wake(&self) {
        let _ = self.tx.send(&[1]);
    }

    fn drain(&self) {
        let mut b = [0u8; 64];
        while self.rx.recv(&mut b).is_ok() {}
    }
}

/// A new room for the thread.
struct NewRoom {
    cmds: mpsc::UnboundedReceiver<Cmd>,
    queued: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<(PeerId, SignalData)>,
    metrics: Arc<RoomMetrics>,
}

/// The shard's thread, as the rooms' owner sees it: starts rooms on it.
#[derive(Debug)]
pub struct ShardRooms {
    new_rooms: std_mpsc::Sender<NewRoom>,
    waker: Arc<Waker>,
    addr: SocketAddr,
}

impl ShardRooms {
    /// Binds the shard on `addr` (advertised as `public` when given), and
    /// with `tcp` a TCP listener on the same port number for ICE-TCP, and
    /// starts its thread.
    pub fn start(
        addr: SocketAddr,
        public: Option<std::net::IpAddr>,
        tcp: bool,
    ) -> io::Result<Self> {
        let mut shard = Shard::bind_as(addr, public)?;
        if tcp {
            let port = shard.udp_port()?;
            shard.listen_tcp(SocketAddr::new(addr.ip(), port))?;
        }
        let addr = shard.local_addr();
        let waker = Arc::new(Waker::new()?);
        let (tx, rx) = std_mpsc::channel();
        let w = waker.clone();
        std::thread::Builder::new()
            .name("sfu-shard".to_owned())
            .spawn(move || run(shard, rx, &w))?;
        Ok(Self {
            new_rooms: tx,
            waker,
            addr,
        })
    }

    /// The one UDP address every connection uses.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new room on the shard; what it sends a peer comes out of `out`.
    pub fn spawn_room(&self, out: mpsc::UnboundedSender<(PeerId, SignalData)>) -> RoomHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(RoomMetrics::default());
        let _ = self.new_rooms.send(NewRoom {
            cmds: rx,
            queued: queued.clone(),
            out,
            metrics: metrics.clone(),
        });
        self.waker.wake();
        RoomHandle::on_shard(tx, queued, metrics, self.waker.clone())
    }
}

/// The thread: waits for a datagram, a timer or a command; takes them all.
fn run(mut shard: Shard, new_rooms: std_mpsc::Receiver<NewRoom>, waker: &Waker) {
    let mut host = Host::default();
    // The owner ([`ShardRooms`]) dropped: no more rooms come, and the
    // thread ends with its last room.
    let mut owner_gone = false;
    loop {
        if let Err(e) = shard.wait_with(Duration::from_millis(100), Some(waker.rx.as_fd())) {
            tracing::warn!("sfu shard: wait: {e}");
        }
        waker.drain();
        if let Err(e) = shard.poll(Instant::now()) {
            tracing::warn!("sfu shard: {e}");
        }
        while !owner_gone {
            match new_rooms.try_recv() {
                Ok(r) => host.add_room(r),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => owner_gone = true,
            }
        }
        host.take_commands(&mut shard);
        host.take_events(&mut shard);
        if owner_gone && host.rooms.is_empty() {
            return;
        }
    }
}

/// Every room of the thread, and which room and peer each connection is.
#[derive(Default)]
struct Host {
    rooms: HashMap<u64, Room>,
    next_room: u64,
    owners: HashMap<ConnId, (u64, PeerId)>,
}

impl Host {
    fn add_room(&mut self, r: NewRoom) {
        let key = self.next_room;
        self.next_room += 1;
        self.rooms.insert(
            key,
            Room {
                cmds: r.cmds,
                queued: r.queued,
                out: r.out,
                metrics: r.metrics,
                peers: HashMap::new(),
                published: HashMap::new(),
            },
        );
    }

    fn close_room(&mut self, shard: &mut Shard, key: u64) {
        let Some(mut room) = self.rooms.remove(&key) else {
            return;
        };
        for id in room.peers.keys().cloned().collect::<Vec<_>>() {
            room.remove_peer(shard, &id);
        }
        self.owners.retain(|_, (r, _)| *r != key);
    }

    fn take_commands(&mut self, shard: &mut Shard) {
        let mut gone = Vec::new();
        for (&key, room) in &mut self.rooms {
            loop {
                match room.cmds.try_recv() {
                    Ok(cmd) => {
                        if let Err(e) = room.on_cmd(shard, cmd, key, &mut self.owners) {
                            log(&e);
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        gone.push(key);
                        break;
                    }
                }
            }
        }
        for key in gone {
            self.close_room(shard, key);
        }
    }

    fn take_events(&mut self, shard: &mut Shard) {
        let events: Vec<Event> = shard.events().collect();
        for ev in events {
            let conn = match &ev {
                Event::Opened(o) => o.conn,
                Event::State(c, _) => *c,
            };
            let Some((key, peer)) = self.owners.get(&conn).cloned() else {
                continue;
            };
            let Some(room) = self.rooms.get_mut(&key) else {
                continue;
            };
            let r = match ev {
                Event::Opened(o) => room.publish(shard, &peer, o),
                Event::State(_, s) => {
                    tracing::debug!(peer = %peer, "sfu shard: connection {s}");
                    match s {
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            room.remove_peer(shard, &peer);
                            self.owners.remove(&conn);
                        }
                        // What was sent before its DTLS was up is lost: keyframes again.
                        RTCPeerConnectionState::Connected => shard.keyframes_for(conn),
                        _ => {}
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                log(&e);
            }
        }
    }
}

fn log(e: &SfuError) {
    if e.caused_by_peer() {
        tracing::debug!("sfu room: {e}");
    } else {
        tracing::warn!("sfu room: {e}");
    }
}

/// One published stream: whose, and what its subscribers' tracks carry.
struct Published {
    conn: ConnId,
    kind: RtpCodecKind,
    codec: rtc::rtp_transceiver::rtp_sender::RTCRtpCodec,
    /// The stream id subscribers get it in.
    stream: String,
}

/// A published stream's key: its publisher and the publisher's track id.
type TrackKey = (PeerId, String);

/// One subscription: the sender it goes out on, and whether it is
/// forwarded yet (after the subscriber's answer).
struct Sub {
    sender: RTCRtpSenderId,
    forwarded: bool,
}

struct Peer {
    conn: ConnId,
    allowance: Option<Arc<dyn PeerAllowance>>,
    /// Our offer is out; `again`: more changes wait for the next one.
    offer_out: bool,
    again: bool,
    subs: HashMap<TrackKey, Sub>,
}

struct Room {
    cmds: mpsc::UnboundedReceiver<Cmd>,
    queued: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<(PeerId, SignalData)>,
    metrics: Arc<RoomMetrics>,
    peers: HashMap<PeerId, Peer>,
    published: HashMap<TrackKey, Published>,
}

impl Room {
    fn on_cmd(
        &mut self,
        shard: &mut Shard,
        cmd: Cmd,
        key: u64,
        owners: &mut HashMap<ConnId, (u64, PeerId)>,
    ) -> Result<(), SfuError> {
        match cmd {
            Cmd::Signal(peer, s, allowance) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match s {
                    SignalData::Offer { sdp } => {
                        let fresh = !self.peers.contains_key(&peer);
                        self.on_offer(shard, &peer, sdp, allowance)?;
                        if fresh && let Some(p) = self.peers.get(&peer) {
                            owners.insert(p.conn, (key, peer));
                        }
                        Ok(())
                    }
                    SignalData::Answer { sdp } => self.on_answer(shard, &peer, sdp),
                    SignalData::Candidate { candidate: Some(c) } => {
                        self.on_candidate(shard, &peer, c)
                    }
                    SignalData::Candidate { candidate: None } => Ok(()),
                    SignalData::Bye => {
                        self.remove_peer_owned(shard, &peer, owners);
                        Ok(())
                    }
                }
            }
            Cmd::Leave(peer) => {
                self.remove_peer_owned(shard, &peer, owners);
                Ok(())
            }
            Cmd::View(viewer, publisher, height) => {
                if let (Some(v), Some(p)) = (self.peers.get(&viewer), self.peers.get(&publisher)) {
                    shard.set_view(v.conn, p.conn, height);
                }
                Ok(())
            }
            Cmd::OfferInFlight(peer, reply) => {
                let _ = reply.send(self.peers.get(&peer).is_some_and(|p| p.offer_out));
                Ok(())
            }
            Cmd::Stats(reply) => {
                let mut s = String::new();
                for (id, p) in &self.peers {
                    s.push_str(&format!(
                        "peer {id}: subs={} state={:?}\n",
                        p.subs.len(),
                        shard.state(p.conn)
                    ));
                }
                let _ = reply.send(s);
                Ok(())
            }
        }
    }

    fn remove_peer_owned(
        &mut self,
        shard: &mut Shard,
        peer: &PeerId,
        owners: &mut HashMap<ConnId, (u64, PeerId)>,
    ) {
        if let Some(p) = self.peers.get(peer) {
            owners.remove(&p.conn);
        }
        self.remove_peer(shard, peer);
    }

    /// The browser's offer: its first one brings it into the room; a later
    /// one is answered unless our own offer is out (then the browser, the
    /// polite side, rolls back and answers ours).
    fn on_offer(
        &mut self,
        shard: &mut Shard,
        peer: &PeerId,
        sdp: String,
        allowance: Option<Arc<dyn PeerAllowance>>,
    ) -> Result<(), SfuError> {
        check_description(&sdp)?;
        let offer = RTCSessionDescription::offer(sdp).map_err(SfuError::peer("offer"))?;
        if let Some(p) = self.peers.get(peer) {
            let conn = p.conn;
            if p.offer_out || shard.offer_pending(conn) {
                self.metrics
                    .offers_ignored_glare
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let answer = shard
                .apply_offer(conn, offer)
                .map_err(SfuError::peer("apply offer"))?;
            let _ = self
                .out
                .send((peer.clone(), SignalData::Answer { sdp: answer.sdp }));
            if self.peers.get(peer).is_some_and(|p| p.again) {
                self.negotiate(shard, peer)?;
            }
            return Ok(());
        }
        if let Some(a) = &allowance
            && !a.acquire()
        {
            return Err(SfuError::Refused);
        }
        let (conn, answer, _) = match shard.accept(offer, Vec::new()) {
            Ok(r) => r,
            Err(e) => {
                if let Some(a) = &allowance {
                    a.release();
                }
                return Err(SfuError::Peer {
                    what: "apply offer",
                    message: e.to_string(),
                });
            }
        };
        let metrics = self.metrics.add_peer(peer.clone());
        shard.set_metrics(conn, metrics, self.metrics.clone());
        self.peers.insert(
            peer.clone(),
            Peer {
                conn,
                allowance,
                offer_out: false,
                again: false,
                subs: HashMap::new(),
            },
        );
        let _ = self
            .out
            .send((peer.clone(), SignalData::Answer { sdp: answer.sdp }));
        // The TCP candidate (in the answer too) trickled as well: some
        // agents (webrtc-rs) dial a passive TCP candidate only when it is
        // trickled, not when it comes in the SDP.
        if let Some(candidate) = shard.tcp_candidate() {
            let candidate = protocol::IceCandidate {
                candidate,
                sdp_mid: None,
                sdp_m_line_index: Some(0),
                username_fragment: None,
            };
            let _ = self.out.send((
                peer.clone(),
                SignalData::Candidate {
                    candidate: Some(candidate),
                },
            ));
        }
        // Everything already published, on tracks of its own, in one offer.
        let keys: Vec<TrackKey> = self
            .published
            .keys()
            .filter(|(publisher, _)| publisher != peer)
            .cloned()
            .collect();
        if !keys.is_empty() {
            for k in keys {
                self.subscribe(shard, peer, k)?;
            }
            self.negotiate(shard, peer)?;
        }
        Ok(())
    }

    /// The answer to our offer: its new subscriptions are forwarded now
    /// (their payload types are known), and changes made meanwhile offered.
    fn on_answer(&mut self, shard: &mut Shard, peer: &PeerId, sdp: String) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Ok(());
        };
        let answer = RTCSessionDescription::answer(sdp).map_err(SfuError::peer("answer"))?;
        shard
            .apply_answer(p.conn, answer)
            .map_err(SfuError::peer("apply answer"))?;
        p.offer_out = false;
        let conn = p.conn;
        for ((publisher, track), sub) in &mut p.subs {
            if sub.forwarded {
                continue;
            }
            let Some(from) = self
                .published
                .get(&(publisher.clone(), track.clone()))
                .map(|pb| pb.conn)
            else {
                continue;
            };
            sub.forwarded = shard
                .forward(from, Source::Track(track.clone()), conn, sub.sender)
                .is_some();
            tracing::debug!(sub = %peer, publisher = %publisher, forwarded = sub.forwarded, "sfu shard: subscription after the answer");
            // The layer for the size the subscriber said it shows the video
            // at, or until it says, the best one the publisher sends.
            shard.apply_view(conn, from);
        }
        if std::mem::take(&mut p.again) {
            self.negotiate(shard, peer)?;
        }
        Ok(())
    }

    fn on_candidate(
        &mut self,
        shard: &mut Shard,
        peer: &PeerId,
        c: IceCandidate,
    ) -> Result<(), SfuError> {
        let Some(p) = self.peers.get(peer) else {
            return Ok(());
        };
        shard
            .add_remote_candidate(p.conn, candidate_from_wire(c))
            .map_err(SfuError::peer("candidate"))
    }

    /// Offers the peer every change made to its connection, or queues the
    /// changes behind the offer that is out.
    fn negotiate(&mut self, shard: &mut Shard, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Ok(());
        };
        if p.offer_out || shard.offer_pending(p.conn) {
            p.again = true;
            return Ok(());
        }
        let offer = shard
            .offer(p.conn)
            .map_err(SfuError::webrtc("create offer"))?;
        p.offer_out = true;
        p.again = false;
        self.metrics.offers_sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .out
            .send((peer.clone(), SignalData::Offer { sdp: offer.sdp }));
        Ok(())
    }

    /// A peer's stream opened: every other peer is sent it, unless the peer
    /// publishes [`MAX_TRACKS_PER_PEER`] already.
    fn publish(&mut self, shard: &mut Shard, peer: &PeerId, o: Opened) -> Result<(), SfuError> {
        let Some(codec) = o.codec else {
            return Ok(());
        };
        let key = (peer.clone(), o.track.clone());
        let already = self.published.keys().filter(|(p, _)| p == peer).count();
        if already >= MAX_TRACKS_PER_PEER || self.published.contains_key(&key) {
            self.metrics.tracks_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %peer, track = %o.track, "sfu: track refused, {already} already published");
            return Ok(());
        }
        let screen =
            o.kind == RtpCodecKind::Video && o.streams.iter().all(|s| s.is_empty() || s == "-");
        let stream = if screen {
            format!("{peer}~screen")
        } else {
            peer.as_str().to_owned()
        };
        tracing::debug!(peer = %peer, track = %o.track, codec = %codec.mime_type, "sfu: publishing");
        self.metrics
            .published_tracks
            .fetch_add(1, Ordering::Relaxed);
        self.published.insert(
            key.clone(),
            Published {
                conn: o.conn,
                kind: o.kind,
                codec,
                stream,
            },
        );
        let others: Vec<PeerId> = self.peers.keys().filter(|p| *p != peer).cloned().collect();
        for other in others {
            self.subscribe(shard, &other, key.clone())?;
            self.negotiate(shard, &other)?;
        }
        Ok(())
    }

    /// A track for `key` on `sub`'s connection; forwarded after the answer
    /// to the offer that carries it.
    fn subscribe(
        &mut self,
        shard: &mut Shard,
        sub: &PeerId,
        key: TrackKey,
    ) -> Result<(), SfuError> {
        let pb = self.published.get(&key).ok_or(SfuError::NoTrack)?;
        let p = self.peers.get_mut(sub).ok_or(SfuError::NoPeer)?;
        if p.subs.contains_key(&key) {
            return Ok(());
        }
        let track = forwarded_track(&pb.stream, &key.0, &key.1, pb.kind, &pb.codec, rand_u32());
        let sender = shard
            .add_sender(p.conn, track)
            .map_err(SfuError::webrtc("add track"))?;
        p.subs.insert(
            key,
            Sub {
                sender,
                forwarded: false,
            },
        );
        Ok(())
    }

    /// A peer leaves: its connection closes, its allowance is given back,
    /// and its streams are taken off every other peer's connection.
    fn remove_peer(&mut self, shard: &mut Shard, peer: &PeerId) {
        let Some(p) = self.peers.remove(peer) else {
            return;
        };
        shard.remove(p.conn);
        self.metrics.remove_peer(peer);
        if let Some(a) = &p.allowance {
            a.release();
        }
        let before = self.published.len();
        self.published.retain(|(publisher, _), _| publisher != peer);
        let unpublished = (before - self.published.len()) as u64;
        self.metrics
            .published_tracks
            .fetch_sub(unpublished, Ordering::Relaxed);
        let others: Vec<PeerId> = self.peers.keys().cloned().collect();
        for other in others {
            let Some(o) = self.peers.get_mut(&other) else {
                continue;
            };
            let gone: Vec<TrackKey> = o
                .subs
                .keys()
                .filter(|(publisher, _)| publisher == peer)
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            for k in gone {
                if let Some(sub) = o.subs.remove(&k)
                    && let Err(e) = shard.remove_sender(o.conn, sub.sender)
                {
                    tracing::debug!("sfu shard: remove track: {e}");
                }
            }
            if let Err(e) = self.negotiate(shard, &other) {
                log(&e);
            }
        }
    }
}
