//! One shard of the synchronous media core (docs/sfu-engine.md): many
//! sans-IO `rtc` peer connections on ONE UDP socket, driven by whoever owns
//! the shard (one thread). A datagram is routed to its connection by the
//! STUN USERNAME (each connection has a ufrag of its own), then by the
//! address a checked binding request came from; an RTP packet read from a
//! publisher is written to every subscription in that same pass and the
//! datagrams go out at once: no task, channel or timer per packet.
//!
//! Also: ICE-TCP on one port ([`Shard::listen_tcp`], `tcp.rs`), simulcast
//! (a layer per subscriber by the size it shows a camera at, capped by its
//! link's loss: `layers.rs`, `congestion.rs`) and per-subscriber gauges
//! tallied each second. Owned by the rooms' thread (`rooms.rs`); tested
//! with `rtc` peers over real UDP (`tests/shard.rs`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::congestion::{self, LossCap, Signal};
use super::layers::{Codec, LayerSwitch, Sent, newest};
use super::stun;
use super::tcp::Tcp;
use crate::room::{PeerMetrics, RoomMetrics, SINGLE_LAYER};

/// A connection of the shard.
pub type ConnId = usize;

/// The biggest datagram we read (above any MTU).
const MAX_DATAGRAM: usize = 2048;

/// What the shard has done, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub datagrams_in: u64,
    /// Datagrams from an unknown address that named no connection of ours.
    pub unrouted: u64,
    pub rtp_in: u64,
    /// RTP packets written to subscriptions.
    pub rtp_out: u64,
    pub datagrams_out: u64,
    /// Errors from a connection (logged at debug; the connection goes on).
    pub errors: u64,
    /// Keyframe requests (PLI, FIR) read from subscribers.
    pub keyframe_requests_in: u64,
    /// Keyframe requests (PLI) sent to publishers: a subscriber's, at most
    /// one per layer per [`PLI_THROTTLE`], and one per late subscription.
    pub plis: u64,
    /// Subscribers' reception reports read (their loss caps layers).
    pub loss_reports: u64,
    /// Times a subscriber's loss took a layer away or gave one back.
    pub loss_cap_changes: u64,
    /// ICE-TCP frames read and written.
    pub tcp_frames_in: u64,
    pub tcp_frames_out: u64,
}

/// At most one keyframe request per published layer this often (a late
/// subscription's own request excepted).
pub const PLI_THROTTLE: Duration = Duration::from_millis(500);

/// One subscription: where a publisher's stream goes.
#[derive(Debug)]
struct Down {
    conn: ConnId,
    /// The subscriber's sender it goes out on.
    sender: RTCRtpSenderId,
    ssrc: u32,
    pt: u8,
    /// The simulcast layer it should get (0: the lowest).
    target: usize,
    /// Its layer switch, once the stream has more than one layer.
    switch: Option<LayerSwitch>,
    /// Whether a packet went out to it yet.
    sent: bool,
    /// Video of one layer, forwarded as it comes: the newest packet it got
    /// (where a switch continues from if the stream turns simulcast).
    last: Option<Sent>,
}

/// Which of a publisher's streams a subscription takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Its first stream of that kind to open.
    Kind(RtpCodecKind),
    /// The stream of that track (the track id of the publisher's `msid`, a
    /// browser's `MediaStreamTrack.id`): a camera and a screen apart.
    Track(String),
}

impl From<RtpCodecKind> for Source {
    fn from(kind: RtpCodecKind) -> Self {
        Self::Kind(kind)
    }
}

impl Source {
    fn matches(&self, route: &Route) -> bool {
        match self {
            Self::Kind(kind) => route.kind == *kind,
            Self::Track(track) => route.track == *track,
        }
    }
}

/// A publisher's stream that opened (its first packet came), for the owner
/// to route ([`Shard::events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub conn: ConnId,
    pub kind: RtpCodecKind,
    /// The publisher's track id and stream ids (its `msid`; no stream: a
    /// browser's stream-less track, such as our client's screen).
    pub track: String,
    pub streams: Vec<String>,
    /// What it carries: a subscriber's track sends the same.
    pub codec: Option<RTCRtpCodec>,
}

/// What happened on the shard's connections, for its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Opened(Opened),
    /// A connection's state changed (failed: its owner removes it).
    State(ConnId, RTCPeerConnectionState),
}

/// A subscription waiting for the publisher's stream to open.
struct Want {
    from: ConnId,
    source: Source,
    down: Down,
    /// The subscriber's sender's track id: its keyframe requests name it.
    track: String,
}

/// A publisher's stream, open (its first packet came), and where it goes.
/// Keyed by its connection and the SSRC of its first layer to open.
struct Route {
    /// The publisher's receiver of it: keyframe requests go there.
    receiver: RTCRtpReceiverId,
    kind: RtpCodecKind,
    /// The publisher's track id.
    track: String,
    /// For simulcast's keyframes and picture ids (VP8, H.264; else none:
    /// only the lowest layer is forwarded).
    codec: Option<Codec>,
    /// Each layer, lowest first (one without simulcast).
    layers: Vec<Option<Layer>>,
    downs: Vec<Down>,
    /// When each layer (by SSRC) was last asked for a keyframe.
    last_pli: Vec<(u32, Instant)>,
}

/// One simulcast layer of a stream.
#[derive(Debug, Clone)]
struct Layer {
    ssrc: u32,
    rid: Option<String>,
    /// When its last packet came: a layer the publisher stopped sending
    /// (bandwidth, CPU) is not waited for.
    seen: Instant,
    /// Its frame height, as its last VP8 keyframe said.
    height: Option<u16>,
}

/// A layer the publisher sent nothing on for this long is paused: its
/// subscribers get the best layer below it that is live.
pub const LAYER_IDLE: Duration = Duration::from_millis(1_000);

impl Route {
    fn simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// The SSRC of `layer`, or of the nearest one below that is open.
    fn ssrc_of(&self, layer: usize) -> Option<u32> {
        ssrc_of(&self.layers, layer)
    }

    /// Where the layer with `rid` goes: its place by name (q/h/f,
    /// low/mid/high, 0/1/2, lowest first) unless another rid has it; an
    /// unknown name, or a taken place, gets the first free one. Never two
    /// rids on one index.
    fn slot_for(&self, rid: Option<&str>) -> usize {
        if let Some(i) = self
            .layers
            .iter()
            .position(|l| l.as_ref().is_some_and(|l| l.rid.as_deref() == rid))
        {
            return i;
        }
        let named = match rid {
            Some("q" | "low" | "0" | "l") | None => Some(0),
            Some("h" | "mid" | "1" | "m") => Some(1),
            Some("f" | "high" | "2" | "hi") => Some(2),
            _ => None,
        };
        let free = |i: usize| self.layers.get(i).is_none_or(Option::is_none);
        match named {
            Some(i) if free(i) => i,
            _ => (0..).find(|&i| free(i)).unwrap_or(0),
        }
    }
}

/// The lowest layer whose frames are at least `height` tall (the top one
/// if none is); by rank when the layers' heights are not known.
fn layer_for_height(layers: &[Option<Layer>], height: u16) -> usize {
    let known: Vec<(usize, u16)> = layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.as_ref()?.height?)))
        .collect();
    if known.len() < 2 {
        return match height {
            0..=180 => 0,
            181..=360 => 1,
            _ => usize::MAX,
        };
    }
    known
        .iter()
        .filter(|(_, h)| *h >= height)
        .min_by_key(|(_, h)| *h)
        .map_or(usize::MAX, |(i, _)| *i)
}

/// The SSRC of `layer`, or of the nearest open layer below it.
fn ssrc_of(layers: &[Option<Layer>], layer: usize) -> Option<u32> {
    layers[..=layer.min(layers.len().saturating_sub(1))]
        .iter()
        .rev()
        .find_map(|l| l.as_ref().map(|l| l.ssrc))
}

/// The layer a subscriber who wants `target` gets now: the highest layer up
/// to it that is live (a packet within [`LAYER_IDLE`]); the lowest open one
/// when none is.
fn live_layer(layers: &[Option<Layer>], target: usize, now: Instant) -> usize {
    let top = target.min(layers.len().saturating_sub(1));
    (0..=top)
        .rev()
        .find(|&i| {
            layers[i]
                .as_ref()
                .is_some_and(|l| now.saturating_duration_since(l.seen) < LAYER_IDLE)
        })
        .or_else(|| layers.iter().position(Option::is_some))
        .unwrap_or(0)
}

struct Conn {
    pc: RTCPeerConnection,
    ufrag: String,
    state: RTCPeerConnectionState,
    /// Its peer's counters and its room's, when it has an owner that shows them.
    metrics: Option<Counters>,
    /// Its latest connectivity checks (binding requests): transaction id
    /// and where each went, to route their responses from an address not
    /// yet known (a response carries no USERNAME).
    checks: std::collections::VecDeque<([u8; 12], Peer)>,
    /// Its next timer, as `poll_timeout` said when it was last asked; asked
    /// again only once the connection was touched (`stale`): asking every
    /// connection on every pass cost a fifth of the shard's CPU at 200
    /// subscribers (docs/benchmarks.md).
    next: Option<Instant>,
    stale: bool,
    /// As a subscriber: the loss it reports, and the layer that caps.
    loss: LossCap,
    /// Its peer's `bytes_out` at the last tally (its send rate since).
    tallied_bytes: u64,
    /// Video RTP packets written to it, and that count at the last tally.
    video_sent: u64,
    tallied_sent: u64,
    /// The packets (SSRC, sequence number) it asked again (NACK) since the
    /// last tally, each once however often asked; at most [`NACKS_KEPT`].
    nacked: HashSet<(u32, u16)>,
}

/// Distinct NACKed packets counted per subscriber and second, at most.
const NACKS_KEPT: usize = 4096;

impl Conn {
    /// Its next timer, asked again if it was touched since.
    fn next_timeout(&mut self) -> Option<Instant> {
        if self.stale {
            self.next = self.pc.poll_timeout();
            self.stale = false;
        }
        self.next
    }
}

/// Views remembered (subscriber, publisher pairs), at most.
const MAX_VIEWS: usize = 1 << 16;

/// How often the per-subscriber gauges are tallied.
const TALLY_EVERY: Duration = Duration::from_secs(1);

/// A peer's address and whether it is a TCP stream's (else UDP).
type Peer = (SocketAddr, bool);

fn peer_of(t: &TransportContext) -> Peer {
    (t.peer_addr, t.transport_protocol == TransportProtocol::TCP)
}

/// Connectivity checks remembered per connection.
const CHECKS_KEPT: usize = 32;

/// A connection's peer's and room's counters.
#[derive(Clone)]
struct Counters {
    peer: Arc<PeerMetrics>,
    room: Arc<RoomMetrics>,
}

pub struct Shard {
    sock: UdpSocket,
    /// The address every connection advertises (its one host candidate),
    /// and the `local_addr` each datagram is handed in with.
    local: SocketAddr,
    conns: Vec<Option<Conn>>,
    by_ufrag: HashMap<String, ConnId>,
    by_addr: HashMap<SocketAddr, ConnId>,
    /// ICE-TCP, when listening: its streams, and which connection each
    /// stream's peer address is (as `by_addr` for datagrams).
    tcp: Option<Tcp>,
    by_tcp: HashMap<SocketAddr, ConnId>,
    /// How tall each subscriber said it shows each publisher's camera:
    /// (subscriber, publisher) → device pixels ([`Shard::set_view`]).
    views: HashMap<(ConnId, ConnId), u16>,
    /// A publisher's stream (connection, SSRC) → its subscriptions.
    routes: HashMap<(ConnId, u32), Route>,
    /// Every layer's (connection, SSRC) → its route's key and layer index.
    layer_of: HashMap<(ConnId, u32), ((ConnId, u32), usize)>,
    /// (subscriber, its sender's track id) → the stream it forwards.
    upstream: HashMap<(ConnId, String), (ConnId, u32)>,
    wants: Vec<Want>,
    /// What happened since the owner last asked.
    events: Vec<Event>,
    /// Keyframes asked while reading one datagram: (stream, layer SSRC).
    /// Kept, not allocated per datagram.
    plis: Vec<((ConnId, u32), u32)>,
    buf: Vec<u8>,
    /// RTP packets of one datagram, between reading and forwarding (kept, so
    /// its room is not allocated per datagram).
    read: Vec<rtp::Packet>,
    /// How long a subscriber's link stays calm before a layer that loss
    /// took away is given back ([`congestion::CALM_BEFORE_UP`]).
    calm_before_up: Duration,
    /// When the per-subscriber gauges are next tallied, and the room it
    /// takes (kept).
    next_tally: Instant,
    tally_layers: Vec<[u64; 4]>,
    pub stats: ShardStats,
}

impl Shard {
    /// Binds the shard's socket. `addr` must be a concrete address (not
    /// 0.0.0.0): it is what every connection advertises.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_as(addr, None)
    }

    /// Binds the shard's socket on `addr`; every connection advertises
    /// `public` (a 1:1 NAT's address, e.g. a cloud VM's) with the bound
    /// port, or else `addr` itself, which must then be concrete.
    pub fn bind_as(addr: SocketAddr, public: Option<std::net::IpAddr>) -> io::Result<Self> {
        if public.unwrap_or(addr.ip()).is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the shard's address is advertised to browsers: it cannot be unspecified",
            ));
        }
        let sock = UdpSocket::bind(addr)?;
        sock.set_nonblocking(true)?;
        let mut local = sock.local_addr()?;
        if let Some(ip) = public {
            local.set_ip(ip);
        }
        Ok(Self {
            sock,
            local,
            conns: Vec::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            tcp: None,
            by_tcp: HashMap::new(),
            views: HashMap::new(),
            routes: HashMap::new(),
            layer_of: HashMap::new(),
            upstream: HashMap::new(),
            wants: Vec::new(),
            events: Vec::new(),
            plis: Vec::new(),
            buf: vec![0; MAX_DATAGRAM],
            read: Vec::new(),
            calm_before_up: congestion::CALM_BEFORE_UP,
            next_tally: Instant::now() + TALLY_EVERY,
            tally_layers: Vec::new(),
            stats: ShardStats::default(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The ICE-TCP candidate every connection offers, when listening.
    pub fn tcp_candidate(&self) -> Option<String> {
        Some(self.tcp.as_ref()?.candidate())
    }

    /// The UDP port the socket is bound to.
    pub fn udp_port(&self) -> io::Result<u16> {
        Ok(self.sock.local_addr()?.port())
    }

    /// Also takes ICE over TCP (RFC 6544, passive) on `addr` (its port 0:
    /// any), advertised at the shard's address: every connection accepted
    /// from now on offers that candidate too. Returns the advertised
    /// address.
    pub fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let tcp = Tcp::bind(addr, self.local.ip())?;
        let at = tcp.local_addr();
        self.tcp = Some(tcp);
        Ok(at)
    }

    /// A new connection answering `offer`, sending `tracks` (each with the
    /// SSRC and codec it will carry). Returns its id, the answer (with the
    /// shard's one candidate in it) and a sender per track.
    pub fn accept(
        &mut self,
        offer: RTCSessionDescription,
        tracks: Vec<MediaStreamTrack>,
    ) -> Result<(ConnId, RTCSessionDescription, Vec<RTCRtpSenderId>), rtc::shared::error::Error>
    {
        // A ufrag of our own per connection: the key of the demultiplexing.
        let ufrag = loop {
            let u = rtc::shared::util::math_rand_alpha(16);
            if !self.by_ufrag.contains_key(&u) {
                break u;
            }
        };
        let pwd = rtc::shared::util::math_rand_alpha(32);
        let mut pc = super::connection_at(self.local, Some((ufrag.clone(), pwd)))?;
        if let Some(tcp) = &self.tcp {
            pc.add_local_candidate(RTCIceCandidateInit {
                candidate: tcp.candidate(),
                ..Default::default()
            })?;
        }
        let mut senders = Vec::with_capacity(tracks.len());
        for t in tracks {
            senders.push(pc.add_track(t)?);
        }
        pc.set_remote_description(Instant::now(), offer)?;
        let answer = pc.create_answer(None)?;
        pc.set_local_description(Instant::now(), answer)?;
        let answer = pc
            .local_description()
            .ok_or_else(|| rtc::shared::error::Error::Other("no local answer".to_owned()))?;
        let id = match self.conns.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        self.by_ufrag.insert(ufrag.clone(), id);
        self.conns[id] = Some(Conn {
            pc,
            ufrag,
            state: RTCPeerConnectionState::New,
            metrics: None,
            checks: std::collections::VecDeque::new(),
            next: None,
            stale: true,
            loss: LossCap::default(),
            tallied_bytes: 0,
            video_sent: 0,
            tallied_sent: 0,
            nacked: HashSet::new(),
        });
        if let Some(c) = self.conns[id].as_mut() {
            c.loss.set_calm_before_up(self.calm_before_up);
        }
        Ok((id, answer, senders))
    }

    /// A connection about to be touched (its timer is asked again).
    fn conn_mut(&mut self, conn: ConnId) -> Result<&mut Conn, rtc::shared::error::Error> {
        let c = self
            .conns
            .get_mut(conn)
            .and_then(Option::as_mut)
            .ok_or_else(|| rtc::shared::error::Error::Other("no such connection".to_owned()))?;
        c.stale = true;
        Ok(c)
    }

    /// Adds a track to a connection that exists already (a publisher who
    /// came later) and returns its sender and the offer that carries it,
    /// for the peer to answer ([`Shard::apply_answer`]). Media keeps
    /// flowing on the connection meanwhile.
    pub fn add_track(
        &mut self,
        conn: ConnId,
        track: MediaStreamTrack,
    ) -> Result<(RTCRtpSenderId, RTCSessionDescription), rtc::shared::error::Error> {
        let sender = self.add_sender(conn, track)?;
        Ok((sender, self.offer(conn)?))
    }

    /// Adds a track to send on a connection; offered with the next
    /// [`Shard::offer`].
    pub fn add_sender(
        &mut self,
        conn: ConnId,
        track: MediaStreamTrack,
    ) -> Result<RTCRtpSenderId, rtc::shared::error::Error> {
        self.conn_mut(conn)?.pc.add_track(track)
    }

    /// Stops sending a track (and forwarding to it); offered with the next
    /// [`Shard::offer`].
    pub fn remove_sender(
        &mut self,
        conn: ConnId,
        sender: RTCRtpSenderId,
    ) -> Result<(), rtc::shared::error::Error> {
        for route in self.routes.values_mut() {
            route
                .downs
                .retain(|d| !(d.conn == conn && d.sender == sender));
        }
        self.wants
            .retain(|w| !(w.down.conn == conn && w.down.sender == sender));
        self.conn_mut(conn)?.pc.remove_track(sender)
    }

    /// An offer of every change made to the connection, set as ours.
    pub fn offer(
        &mut self,
        conn: ConnId,
    ) -> Result<RTCSessionDescription, rtc::shared::error::Error> {
        let c = self.conn_mut(conn)?;
        let offer = c.pc.create_offer(None)?;
        c.pc.set_local_description(Instant::now(), offer)?;
        c.pc.local_description()
            .ok_or_else(|| rtc::shared::error::Error::Other("no local offer".to_owned()))
    }

    /// Whether our offer on the connection awaits its answer.
    pub fn offer_pending(&self, conn: ConnId) -> bool {
        self.conns
            .get(conn)
            .and_then(Option::as_ref)
            .is_some_and(|c| {
                c.pc.pending_local_description().is_some()
                    && c.pc.pending_remote_description().is_none()
            })
    }

    /// The peer's new offer on a live connection (a screen share it added):
    /// applied and answered.
    pub fn apply_offer(
        &mut self,
        conn: ConnId,
        offer: RTCSessionDescription,
    ) -> Result<RTCSessionDescription, rtc::shared::error::Error> {
        let c = self.conn_mut(conn)?;
        c.pc.set_remote_description(Instant::now(), offer)?;
        let answer = c.pc.create_answer(None)?;
        c.pc.set_local_description(Instant::now(), answer)?;
        c.pc.local_description()
            .ok_or_else(|| rtc::shared::error::Error::Other("no local answer".to_owned()))
    }

    /// Asks the publishers of everything `conn` receives for a keyframe (it
    /// just connected: what was sent before is lost to it).
    pub fn keyframes_for(&mut self, conn: ConnId) {
        let asks: Vec<((ConnId, u32), u32)> = self
            .routes
            .iter()
            .filter(|(_, r)| r.downs.iter().any(|d| d.conn == conn))
            .filter_map(|(k, r)| Some((*k, r.ssrc_of(0)?)))
            .collect();
        let now = Instant::now();
        for (key, ssrc) in asks {
            self.request_keyframe(key, ssrc, now, true);
        }
    }

    /// The peer's answer to an offer of [`Shard::add_track`].
    pub fn apply_answer(
        &mut self,
        conn: ConnId,
        answer: RTCSessionDescription,
    ) -> Result<(), rtc::shared::error::Error> {
        match self.conn_mut(conn) {
            Ok(c) => c.pc.set_remote_description(Instant::now(), answer),
            Err(_) => Ok(()),
        }
    }

    pub fn add_remote_candidate(
        &mut self,
        conn: ConnId,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), rtc::shared::error::Error> {
        match self.conn_mut(conn) {
            Ok(c) => c.pc.add_remote_candidate(candidate),
            Err(_) => Ok(()),
        }
    }

    /// What happened since the last call: streams opened, states changed.
    pub fn events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// `from`'s stream `source` goes to `to` on its `sender` (a track given
    /// to [`Shard::accept`]): at once, with a keyframe asked of the
    /// publisher, when the stream is open already; else from its first packet.
    pub fn forward(
        &mut self,
        from: ConnId,
        source: impl Into<Source>,
        to: ConnId,
        sender: RTCRtpSenderId,
    ) -> Option<()> {
        let source = source.into();
        let c = self.conn_mut(to).ok()?;
        let (ssrc, mime, track) = {
            let mut s = c.pc.rtp_sender(sender)?;
            let track = s.track().track_id().clone();
            let enc = s.get_parameters().encodings.first()?;
            (
                enc.rtp_coding_parameters.ssrc?,
                enc.codec.mime_type.clone(),
                track,
            )
        };
        let pt = super::payload_type(&mut c.pc, sender, &mime)?;
        let down = Down {
            conn: to,
            sender,
            ssrc,
            pt,
            target: 0,
            switch: None,
            sent: false,
            last: None,
        };
        let open = self
            .routes
            .iter_mut()
            .find(|((publisher, _), r)| *publisher == from && source.matches(r));
        match open {
            Some((key, route)) => {
                let key = *key;
                let ssrc = route.ssrc_of(0).unwrap_or(key.1);
                route.downs.push(down);
                self.upstream.insert((to, track), key);
                self.request_keyframe(key, ssrc, Instant::now(), true);
            }
            None => self.wants.push(Want {
                from,
                source,
                down,
                track,
            }),
        }
        Some(())
    }

    /// How long a subscriber's link must stay calm before it gets back a
    /// layer its loss took away (default [`congestion::CALM_BEFORE_UP`]).
    pub fn set_calm_before_up(&mut self, d: Duration) {
        self.calm_before_up = d;
        for c in self.conns.iter_mut().flatten() {
            c.loss.set_calm_before_up(d);
        }
    }

    /// The simulcast layer (0: the lowest) `to` should get of `from`'s
    /// video: taken at that layer's next keyframe, which is asked for. A
    /// layer above what the publisher sends now stands as the wish: the
    /// subscriber gets the best live layer up to it, and that layer once it
    /// is sent again.
    pub fn set_layer(&mut self, to: ConnId, from: ConnId, layer: usize) {
        let now = Instant::now();
        let mut ask = Vec::new();
        for (key, route) in &mut self.routes {
            if key.0 != from || route.kind != RtpCodecKind::Video {
                continue;
            }
            let cap = self
                .conns
                .get(to)
                .and_then(Option::as_ref)
                .map_or(usize::MAX, |c| c.loss.cap());
            let live = live_layer(&route.layers, layer.min(cap), now);
            let mut moved = false;
            for d in route.downs.iter_mut().filter(|d| d.conn == to) {
                d.target = layer;
                if let Some(sw) = d.switch.as_mut() {
                    sw.set_target(live);
                    moved |= sw.wants_keyframe();
                }
            }
            if let (true, Some(ssrc)) = (moved, ssrc_of(&route.layers, live)) {
                ask.push((*key, ssrc));
            }
        }
        for (key, ssrc) in ask {
            self.request_keyframe(key, ssrc, Instant::now(), true);
        }
    }

    /// Counts what the connection publishes and receives in its peer's and
    /// its room's counters (`/metrics`).
    pub fn set_metrics(&mut self, conn: ConnId, peer: Arc<PeerMetrics>, room: Arc<RoomMetrics>) {
        if let Some(c) = self.conns.get_mut(conn).and_then(Option::as_mut) {
            c.metrics = Some(Counters { peer, room });
        }
    }

    /// `to` shows `from`'s camera `height` device pixels tall: it gets the
    /// lowest layer at least that tall (by the heights the layers' VP8
    /// keyframes declared; without them, ≤ 180 the lowest, ≤ 360 the
    /// middle, else the top), at the next keyframe ([`Shard::set_layer`]).
    pub fn set_view(&mut self, to: ConnId, from: ConnId, height: u16) {
        if self.views.len() < MAX_VIEWS || self.views.contains_key(&(to, from)) {
            self.views.insert((to, from), height);
        }
        let layer = self
            .routes
            .iter()
            .find(|((p, _), r)| *p == from && r.kind == RtpCodecKind::Video && r.simulcast())
            .map_or(usize::MAX, |(_, r)| layer_for_height(&r.layers, height));
        tracing::debug!(sub = to, publisher = from, height, layer, "shard: view");
        self.set_layer(to, from, layer);
    }

    /// A new subscription of `to` to `from`: the layer for the size it said
    /// it shows `from`'s camera at, if it said (a view sent before the
    /// subscription existed is not lost), else the best one.
    pub fn apply_view(&mut self, to: ConnId, from: ConnId) {
        match self.views.get(&(to, from)) {
            Some(&height) => self.set_view(to, from, height),
            None => self.set_layer(to, from, usize::MAX),
        }
    }

    /// The connection's state as its last event said.
    pub fn state(&self, conn: ConnId) -> Option<RTCPeerConnectionState> {
        Some(self.conns.get(conn)?.as_ref()?.state)
    }

    /// Blocks until a datagram waits on the socket or a connection's next
    /// timer is due, at most `max`; then [`Shard::poll`].
    pub fn wait(&mut self, max: Duration) -> io::Result<()> {
        self.wait_with(max, None)
    }

    /// [`Shard::wait`], also woken when `also` can be read (the owner's
    /// command queue's waker).
    pub fn wait_with(&mut self, max: Duration, also: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let now = Instant::now();
        let next = self
            .conns
            .iter_mut()
            .flatten()
            .filter_map(Conn::next_timeout)
            .chain(Some(self.next_tally))
            .chain(self.tcp.as_ref().and_then(Tcp::next_deadline))
            .min();
        let wait = next.map_or(max, |t| t.saturating_duration_since(now).min(max));
        if wait.is_zero() {
            // Timers are due: no poll, so no stream is known to be ready
            // (the next wait polls them; nothing is lost, only waits).
            if let Some(tcp) = self.tcp.as_mut() {
                tcp.set_ready(false, Vec::new());
            }
            return Ok(());
        }
        let timeout = rustix::event::Timespec::try_from(wait)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut fds = vec![rustix::event::PollFd::new(
            &self.sock,
            rustix::event::PollFlags::IN,
        )];
        if let Some(fd) = also.as_ref() {
            fds.push(rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN));
        }
        // The TCP side: the listener, then its streams, by peer address.
        let tcp_from = fds.len();
        let mut tcp_peers = Vec::new();
        if let Some(tcp) = &self.tcp {
            for (fd, pending, peer) in tcp.fds(now) {
                let mut flags = rustix::event::PollFlags::IN;
                if pending {
                    flags |= rustix::event::PollFlags::OUT;
                }
                fds.push(rustix::event::PollFd::from_borrowed_fd(fd, flags));
                tcp_peers.push(peer);
            }
        }
        let polled = match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        };
        // Which streams to read (only those), and whether to accept.
        let mut listener = false;
        let mut ready = Vec::new();
        for (fd, peer) in fds[tcp_from..].iter().zip(&tcp_peers) {
            if fd.revents().is_empty() {
                continue;
            }
            match peer {
                Some(p) => ready.push(*p),
                None => listener = true,
            }
        }
        drop(fds);
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.set_ready(listener, ready);
        }
        polled
    }

    /// Takes every datagram waiting on the socket (each routed, read and
    /// forwarded in the same pass), then runs the timers that are due.
    pub fn poll(&mut self, now: Instant) -> io::Result<()> {
        loop {
            let (n, from) = match self.sock.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A previous send's ICMP error (port unreachable) surfaces here.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Err(e) => return Err(e),
            };
            self.stats.datagrams_in += 1;
            self.ingest(n, from, TransportProtocol::UDP, now);
        }
        if let Some(tcp) = self.tcp.as_mut() {
            let mut frames = Vec::new();
            tcp.read(now, |from, f| frames.push((from, f.to_vec())));
            for (from, f) in frames {
                self.stats.tcp_frames_in += 1;
                let Some(to) = self.buf.get_mut(..f.len()) else {
                    self.stats.unrouted += 1;
                    continue;
                };
                to.copy_from_slice(&f);
                self.ingest(f.len(), from, TransportProtocol::TCP, now);
            }
        }
        for id in 0..self.conns.len() {
            let due = self.conns[id]
                .as_mut()
                .and_then(Conn::next_timeout)
                .is_some_and(|t| t <= now);
            if due {
                if let Some(c) = self.conns[id].as_mut()
                    && let Err(e) = c.pc.handle_timeout(now)
                {
                    self.stats.errors += 1;
                    tracing::debug!(conn = id, "shard: timeout: {e}");
                }
                self.drain(id, now, None);
            }
        }
        if now >= self.next_tally {
            self.tally(now);
        }
        Ok(())
    }

    /// One datagram or TCP frame (in `buf`), from `from`: routed, read
    /// and drained; an address (or stream) becomes the connection's once
    /// the connection answered a binding request from it.
    fn ingest(&mut self, n: usize, from: SocketAddr, proto: TransportProtocol, now: Instant) {
        let tcp = proto == TransportProtocol::TCP;
        let Some((id, unverified)) = self.route(n, from, tcp) else {
            self.stats.unrouted += 1;
            tracing::trace!(%from, bytes = n, first = self.buf[0], tcp, "shard: unrouted datagram");
            return;
        };
        let local_addr = match &self.tcp {
            Some(t) if tcp => t.local_addr(),
            _ => self.local,
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: proto,
            },
            message: BytesMut::from(&self.buf[..n]),
        };
        if let Some(c) = self.conns[id].as_mut()
            && let Err(e) = c.pc.handle_read(msg)
        {
            self.stats.errors += 1;
            tracing::debug!(conn = id, "shard: read: {e}");
        }
        // A binding request from a new address: the address is the
        // connection's once the connection answered it with a success
        // (its MESSAGE-INTEGRITY checked out), never on the name alone.
        let answered = self.drain(id, now, unverified.then_some((from, tcp)));
        if answered {
            if tcp {
                self.by_tcp.insert(from, id);
                if let Some(t) = self.tcp.as_mut() {
                    t.confirm(from);
                }
            } else {
                self.by_addr.insert(from, id);
            }
        }
    }

    /// Once a second: each subscriber's video subscriptions by the layer
    /// they get, and what it was sent over the second, into its counters
    /// (`/metrics`).
    fn tally(&mut self, now: Instant) {
        let secs = now
            .saturating_duration_since(self.next_tally - TALLY_EVERY)
            .as_secs_f64()
            .max(0.001);
        self.next_tally = now + TALLY_EVERY;
        let mut layers = std::mem::take(&mut self.tally_layers);
        layers.clear();
        layers.resize(self.conns.len(), [0; 4]);
        for route in self.routes.values() {
            if route.kind != RtpCodecKind::Video {
                continue;
            }
            let simulcast = route.simulcast();
            for d in &route.downs {
                let layer = match (simulcast, d.switch.as_ref().and_then(LayerSwitch::current)) {
                    (false, _) => SINGLE_LAYER,
                    (true, Some(l)) => l.min(SINGLE_LAYER - 1),
                    // Waiting for its first keyframe: no layer yet.
                    (true, None) => continue,
                };
                if let Some(counts) = layers.get_mut(d.conn) {
                    counts[layer] += 1;
                }
            }
        }
        for (id, (c, counts)) in self.conns.iter_mut().zip(&layers).enumerate() {
            let Some(c) = c.as_mut() else { continue };
            // What it asked again, of what it was sent this second: loss
            // as its NACKs tell it, sooner than its receiver reports (which
            // count a packet repaired by a retransmission as received).
            let sent = c.video_sent - c.tallied_sent;
            let nacked = c.nacked.len() as u64;
            if let Some(lost) = (nacked * 256).checked_div(sent) {
                let lost = lost.min(255) as u8;
                let getting = (0..SINGLE_LAYER).rev().find(|&l| counts[l] > 0);
                if c.loss.on_loss(Signal::Nacks, lost, now, getting) {
                    self.stats.loss_cap_changes += 1;
                    tracing::debug!(
                        sub = id,
                        nacked,
                        sent,
                        cap = c.loss.cap(),
                        "shard: NACKs cap the layer"
                    );
                }
            }
            c.tallied_sent = c.video_sent;
            c.nacked.clear();
            let Some(m) = &c.metrics else { continue };
            for (gauge, n) in m.peer.video_layers.iter().zip(counts) {
                gauge.store(*n, Ordering::Relaxed);
            }
            let bytes = m.peer.bytes_out.load(Ordering::Relaxed);
            let bps = (bytes.saturating_sub(c.tallied_bytes) * 8) as f64 / secs;
            m.peer.send_bps.store(bps as u64, Ordering::Relaxed);
            c.tallied_bytes = bytes;
        }
        self.tally_layers = layers;
    }

    /// Which connection a datagram is for, and whether it is a binding
    /// request from an address not (or not yet) that connection's: STUN
    /// names the connection by our ufrag, the rest is known by its address.
    ///
    /// A response from an unknown address is routed by its transaction id
    /// to the connection whose check it answers, and only if the check went
    /// to that address: the address is the connection's from then on (only
    /// the peer the check reached can know its 96-bit id). Needed because an
    /// agent that nominates aggressively (Chrome) gets no success response
    /// from `rtc`'s controlled side until that side's own check succeeded.
    fn route(&mut self, n: usize, from: SocketAddr, tcp: bool) -> Option<(ConnId, bool)> {
        let d = &self.buf[..n];
        let by_addr = if tcp {
            &mut self.by_tcp
        } else {
            &mut self.by_addr
        };
        if let Some(ufrag) = stun::local_ufrag(d) {
            let id = *self.by_ufrag.get(ufrag)?;
            return Some((id, by_addr.get(&from) != Some(&id)));
        }
        if let Some(id) = by_addr.get(&from) {
            return Some((*id, false));
        }
        let tid = stun::binding_response_id(d)?;
        let id = self.conns.iter().position(|c| {
            c.as_ref().is_some_and(|c| {
                c.checks
                    .iter()
                    .any(|(t, to)| *t == tid && *to == (from, tcp))
            })
        })?;
        by_addr.insert(from, id);
        // A TCP stream known this way is as confirmed as one whose binding
        // request was answered.
        if let (true, Some(t)) = (tcp, self.tcp.as_mut()) {
            t.confirm(from);
        }
        Some((id, false))
    }

    /// Events, reads (each RTP packet forwarded at once) and writes of one
    /// connection. True when it sent a binding success to `confirm`.
    fn drain(&mut self, id: ConnId, now: Instant, confirm: Option<Peer>) -> bool {
        let Self {
            sock,
            tcp,
            conns,
            routes,
            layer_of,
            upstream,
            wants,
            events,
            plis,
            views,
            stats,
            read,
            ..
        } = self;
        let Some(c) = conns[id].as_mut() else {
            return false;
        };
        c.stale = true;
        while let Some(ev) = c.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    c.state = s;
                    events.push(Event::State(id, s));
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let Some((kind, codec_of)) = c.pc.rtp_receiver(init.receiver_id).map(|r| {
                        let t = r.track();
                        (t.kind(), t.codec(init.ssrc).cloned())
                    }) else {
                        continue;
                    };
                    let mime = codec_of.as_ref().map(|c| c.mime_type.clone());
                    // Another layer of a stream already open, or a new stream.
                    let existing = routes
                        .iter()
                        .find(|((c, _), r)| *c == id && r.receiver == init.receiver_id)
                        .map(|(k, _)| *k);
                    let key = existing.unwrap_or((id, init.ssrc));
                    if existing.is_none() {
                        events.push(Event::Opened(Opened {
                            conn: id,
                            kind,
                            track: init.track_id.clone(),
                            streams: init.stream_ids.clone(),
                            codec: codec_of.clone(),
                        }));
                    }
                    let route = routes.entry(key).or_insert(Route {
                        receiver: init.receiver_id,
                        kind,
                        track: init.track_id.clone(),
                        codec: match mime.as_deref() {
                            Some(m) if m.eq_ignore_ascii_case("video/VP8") => Some(Codec::Vp8),
                            Some(m) if m.eq_ignore_ascii_case("video/H264") => Some(Codec::H264),
                            _ => None,
                        },
                        layers: Vec::new(),
                        downs: Vec::new(),
                        last_pli: Vec::new(),
                    });
                    let layer = route.slot_for(init.rid.as_deref());
                    tracing::debug!(conn = id, ssrc = init.ssrc, rid = ?init.rid, layer, ?mime, "shard: stream opened");
                    // A renegotiation opens the same streams again: nothing new.
                    let new_layer = route
                        .layers
                        .get(layer)
                        .and_then(Option::as_ref)
                        .is_none_or(|l| l.ssrc != init.ssrc);
                    // The same layer again under another SSRC: its numbering
                    // starts over, so who gets it takes it again at a keyframe.
                    let replaced = route
                        .layers
                        .get(layer)
                        .and_then(Option::as_ref)
                        .is_some_and(|l| l.ssrc != init.ssrc);
                    if replaced {
                        for sw in route.downs.iter_mut().filter_map(|d| d.switch.as_mut()) {
                            sw.restart(layer);
                        }
                    }
                    // The layer that was forwarded as it came, before this one.
                    let before = route.layers.iter().position(Option::is_some);
                    if route.layers.len() <= layer {
                        route.layers.resize(layer + 1, None);
                    }
                    route.layers[layer] = Some(Layer {
                        ssrc: init.ssrc,
                        rid: init.rid.clone(),
                        seen: now,
                        height: None,
                    });
                    layer_of.insert((id, init.ssrc), (key, layer));
                    // Turned simulcast: who said how big it shows this camera
                    // gets the layer for that size.
                    if new_layer && route.simulcast() {
                        for d in &mut route.downs {
                            if let Some(&h) = views.get(&(d.conn, id)) {
                                d.target = layer_for_height(&route.layers, h);
                            }
                        }
                    }
                    // Turned simulcast: who has been getting the first layer
                    // as it came goes on with it, unchanged. (Who got nothing
                    // yet starts at a keyframe, like any subscriber.)
                    if let (true, true, Some(codec), Some(before)) =
                        (new_layer, route.simulcast(), route.codec, before)
                    {
                        for d in route
                            .downs
                            .iter_mut()
                            .filter(|d| d.switch.is_none() && d.sent)
                        {
                            d.switch =
                                Some(LayerSwitch::continuing(codec, d.target, before, d.last));
                        }
                    }
                    // Subscriptions that waited for this stream.
                    let mut i = 0;
                    while i < wants.len() {
                        if wants[i].from == id && wants[i].source.matches(route) {
                            let w = wants.swap_remove(i);
                            upstream.insert((w.down.conn, w.track), key);
                            route.downs.push(w.down);
                        } else {
                            i += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        read.clear();
        plis.clear();
        while let Some(TaggedRTCMessage { message, .. }) = c.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(_, p) => read.push(p),
                // A subscriber asks for a keyframe of what a sender of ours
                // forwards: the publisher's stream is asked.
                RTCMessage::RtcpPacket(track, pkts) => {
                    // Reception reports: the subscriber's loss, for its
                    // counters and the layer its link can take.
                    let mut worst = None;
                    for pkt in &pkts {
                        let any = pkt.as_any();
                        if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                            for pair in &nack.nacks {
                                let seqs = std::iter::once(pair.packet_id).chain(
                                    (0..16u16)
                                        .filter(|i| pair.lost_packets & (1 << i) != 0)
                                        .map(|i| pair.packet_id.wrapping_add(i + 1)),
                                );
                                for seq in seqs {
                                    if c.nacked.len() < NACKS_KEPT {
                                        c.nacked.insert((nack.media_ssrc, seq));
                                    }
                                }
                            }
                            continue;
                        }
                        let reports = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                            &rr.reports
                        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                            &sr.reports
                        } else {
                            continue;
                        };
                        if let Some(m) = &c.metrics {
                            m.peer.on_reception_reports(reports);
                        }
                        worst = reports.iter().map(|r| r.fraction_lost).chain(worst).max();
                    }
                    if let Some(lost) = worst {
                        stats.loss_reports += 1;
                        let getting = routes
                            .values()
                            .filter(|r| r.simulcast())
                            .flat_map(|r| r.downs.iter().filter(|d| d.conn == id))
                            .filter_map(|d| d.switch.as_ref()?.current())
                            .max();
                        tracing::trace!(
                            sub = id,
                            lost,
                            smoothed = c.loss.loss(),
                            ?getting,
                            "shard: loss report"
                        );
                        if c.loss.on_loss(Signal::Reports, lost, now, getting) {
                            stats.loss_cap_changes += 1;
                            tracing::debug!(
                                sub = id,
                                loss = c.loss.loss(),
                                cap = c.loss.cap(),
                                "shard: loss caps the layer"
                            );
                        }
                    }
                    if !pkts.iter().any(|p| crate::is_keyframe_request(p.as_ref())) {
                        continue;
                    }
                    stats.keyframe_requests_in += 1;
                    if let Some(m) = &c.metrics {
                        m.room.pli_from_subscribers.fetch_add(1, Ordering::Relaxed);
                    }
                    // The layer this subscriber is on (or waits for).
                    if let Some(key) = upstream.get(&(id, track))
                        && let Some(route) = routes.get(key)
                    {
                        let layer = route.downs.iter().find(|d| d.conn == id).map_or(0, |d| {
                            d.switch
                                .as_ref()
                                .and_then(|s| s.current())
                                .unwrap_or(d.target)
                        });
                        if let Some(ssrc) = route.ssrc_of(layer) {
                            plis.push((*key, ssrc));
                        }
                    }
                }
                _ => {}
            }
        }
        let counters = c.metrics.clone();
        let answered = flush(sock, tcp, c, stats, confirm);
        for p in read.drain(..) {
            stats.rtp_in += 1;
            if let Some(m) = &counters {
                m.peer.rtp_in.fetch_add(1, Ordering::Relaxed);
                m.peer
                    .bytes_in
                    .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                m.room.rtp_in.fetch_add(1, Ordering::Relaxed);
            }
            let Some(&(key, layer)) = layer_of.get(&(id, p.header.ssrc)) else {
                continue;
            };
            let Some(route) = routes.get_mut(&key) else {
                continue;
            };
            let simulcast = route.simulcast();
            let codec = route.codec;
            if let Some(Some(l)) = route.layers.get_mut(layer) {
                l.seen = now;
                if simulcast
                    && codec == Some(Codec::Vp8)
                    && let Some(h) = super::layers::vp8_keyframe_height(&p.payload)
                {
                    l.height = Some(h);
                }
            }
            // One layer of video: its numbering, for a switch that may follow.
            let ids = (!simulcast && route.kind == RtpCodecKind::Video).then(|| match codec {
                Some(Codec::Vp8) => super::layers::vp8_ids(&p.payload),
                _ => (0, 0),
            });
            let video = route.kind == RtpCodecKind::Video;
            let Route { layers, downs, .. } = route;
            for d in downs {
                let Some(sub) = conns.get_mut(d.conn).and_then(Option::as_mut) else {
                    continue;
                };
                // Nothing can go out before its DTLS is up (rtc would refuse
                // each packet, and log it); it asks for a keyframe once it is.
                if sub.state != RTCPeerConnectionState::Connected {
                    continue;
                }
                sub.stale = true;
                // One layer: as it comes. Simulcast: what the subscriber's
                // switch lets through, renumbered.
                let (seq, ts, payload) = match (simulcast, codec) {
                    (false, _) => {
                        if let Some((pic, tl0)) = ids {
                            let sent = (p.header.sequence_number, p.header.timestamp, pic, tl0);
                            d.last = Some(newest(d.last, sent));
                        }
                        (
                            p.header.sequence_number,
                            p.header.timestamp,
                            p.payload.clone(),
                        )
                    }
                    (true, None) if layer == 0 => (
                        p.header.sequence_number,
                        p.header.timestamp,
                        p.payload.clone(),
                    ),
                    (true, None) => continue,
                    (true, Some(codec)) => {
                        // The wanted layer (as far as its link's loss allows)
                        // if it is live, else the best below.
                        let live = live_layer(layers, d.target.min(sub.loss.cap()), now);
                        let sw = d
                            .switch
                            .get_or_insert_with(|| LayerSwitch::new(codec, live));
                        sw.set_target(live);
                        let was = sw.current();
                        let out = sw.on_packet(
                            layer,
                            p.header.sequence_number,
                            p.header.timestamp,
                            &p.payload,
                        );
                        if sw.current() != was {
                            tracing::debug!(sub = d.conn, publisher = key.0, from = ?was, to = ?sw.current(), "shard: layer switched");
                        }
                        if sw.wants_keyframe()
                            && let Some(ssrc) = ssrc_of(layers, live)
                        {
                            plis.push((key, ssrc));
                        }
                        match out {
                            Some(o) => (o.seq, o.timestamp, o.payload),
                            None => continue,
                        }
                    }
                };
                // The header is the subscriber's: its SSRC and payload type,
                // and none of the publisher's header extensions (negotiated
                // with it); the payload is shared unless rewritten.
                let fwd = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        marker: p.header.marker,
                        payload_type: d.pt,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc: d.ssrc,
                        ..Default::default()
                    },
                    payload,
                };
                let msg = TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtpPacket(String::new(), fwd),
                };
                let len = msg_len(&msg);
                d.sent = true;
                match sub.pc.handle_write(msg) {
                    Ok(()) => {
                        stats.rtp_out += 1;
                        if video {
                            sub.video_sent += 1;
                        }
                        if let Some(m) = &sub.metrics {
                            m.peer.rtp_out.fetch_add(1, Ordering::Relaxed);
                            m.peer.bytes_out.fetch_add(len, Ordering::Relaxed);
                            m.room.rtp_out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        stats.errors += 1;
                        tracing::debug!(conn = d.conn, "shard: write: {e}");
                    }
                }
                flush(sock, tcp, sub, stats, None);
            }
        }
        let mut asked = std::mem::take(plis);
        asked.dedup();
        for (key, ssrc) in asked.drain(..) {
            self.request_keyframe(key, ssrc, now, false);
        }
        self.plis = asked;
        answered
    }

    /// Asks the publisher of stream `key` for a keyframe of its layer
    /// `ssrc` (video only): at most once per [`PLI_THROTTLE`] per layer
    /// unless `force`d (a new subscription, a layer change).
    fn request_keyframe(&mut self, key: (ConnId, u32), ssrc: u32, now: Instant, force: bool) {
        let Some(route) = self.routes.get_mut(&key) else {
            return;
        };
        let last = route.last_pli.iter_mut().find(|(s, _)| *s == ssrc);
        if route.kind != RtpCodecKind::Video
            || (!force
                && last
                    .as_ref()
                    .is_some_and(|(_, t)| now.duration_since(*t) < PLI_THROTTLE))
        {
            return;
        }
        match last {
            Some(l) => l.1 = now,
            None => route.last_pli.push((ssrc, now)),
        }
        let receiver = route.receiver;
        let Some(c) = self.conns.get_mut(key.0).and_then(Option::as_mut) else {
            return;
        };
        c.stale = true;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        let sent =
            c.pc.rtp_receiver(receiver)
                .map(|mut r| r.write_rtcp(now, vec![Box::new(pli)]));
        match sent {
            Some(Ok(())) => {
                tracing::trace!(conn = key.0, ssrc, force, "shard: keyframe asked");
                self.stats.plis += 1;
                if let Some(m) = &c.metrics {
                    m.room.pli_to_publishers.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Err(e)) => {
                self.stats.errors += 1;
                tracing::debug!(conn = key.0, "shard: keyframe request: {e}");
            }
            None => {}
        }
        flush(&self.sock, &mut self.tcp, c, &mut self.stats, None);
    }

    /// Closes a connection and forgets its routes.
    pub fn remove(&mut self, id: ConnId) {
        let Some(mut c) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        let _ = c.pc.close();
        self.by_ufrag.remove(&c.ufrag);
        self.by_addr.retain(|_, v| *v != id);
        self.views.retain(|(to, from), _| *to != id && *from != id);
        let tcp = &mut self.tcp;
        self.by_tcp.retain(|peer, v| {
            let keep = *v != id;
            if let (false, Some(t)) = (keep, tcp.as_mut()) {
                t.close(*peer);
            }
            keep
        });
        self.routes.retain(|(from, _), _| *from != id);
        self.layer_of.retain(|(from, _), _| *from != id);
        for route in self.routes.values_mut() {
            route.downs.retain(|d| d.conn != id);
        }
        self.upstream
            .retain(|(sub, _), (publisher, _)| *sub != id && *publisher != id);
        self.wants.retain(|w| w.from != id && w.down.conn != id);
    }
}

/// A forwarded packet's payload size, for the byte counters.
fn msg_len(m: &TaggedRTCMessage) -> u64 {
    match &m.message {
        RTCMessage::RtpPacket(_, p) => p.payload.len() as u64,
        _ => 0,
    }
}

/// Sends what a connection has to send; true when that included a binding
/// success response to `confirm`.
fn flush(
    sock: &UdpSocket,
    tcp: &mut Option<Tcp>,
    c: &mut Conn,
    stats: &mut ShardStats,
    confirm: Option<Peer>,
) -> bool {
    let mut answered = false;
    while let Some(out) = c.pc.poll_write() {
        if let Some(tid) = stun::binding_request_id(&out.message) {
            if c.checks.len() == CHECKS_KEPT {
                c.checks.pop_front();
            }
            c.checks.push_back((tid, peer_of(&out.transport)));
        }
        if confirm == Some(peer_of(&out.transport)) && stun::is_binding_success(&out.message) {
            answered = true;
        }
        if out.transport.transport_protocol == TransportProtocol::TCP {
            match tcp
                .as_mut()
                .map(|t| t.send(out.transport.peer_addr, &out.message))
            {
                Some(Ok(())) => stats.tcp_frames_out += 1,
                Some(Err(e)) => tracing::trace!("shard: tcp send: {e}"),
                None => stats.errors += 1,
            }
            continue;
        }
        match sock.send_to(&out.message, out.transport.peer_addr) {
            Ok(_) => stats.datagrams_out += 1,
            // A full socket buffer drops the datagram, as the network would.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                stats.errors += 1;
                tracing::debug!("shard: send: {e}");
            }
        }
    }
    answered
}
