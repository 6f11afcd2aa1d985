//! One shard of the synchronous media core (docs/sfu-engine.md): many
//! sans-IO `rtc` peer connections on ONE UDP socket, driven by whoever owns
//! the shard (one thread). A datagram is routed to its connection by the
//! STUN USERNAME (each connection has a ufrag of its own), then by the
//! address a checked binding request came from; an RTP packet read from a
//! publisher is written to every subscription in that same pass and the
//! datagrams go out at once: no task, channel or timer per packet.
//!
//! Not wired into rooms yet: the room task (signalling, limits, metrics)
//! still runs the `webrtc` engine. Tested with `rtc` peers over real UDP
//! (`tests/shard.rs`).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
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
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::layers::{Codec, LayerSwitch};
use super::stun;

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
    /// one per stream per [`PLI_THROTTLE`], and one per late subscription.
    pub plis: u64,
}

/// At most one keyframe request per published stream this often (a late
/// subscription's own request excepted).
pub const PLI_THROTTLE: Duration = Duration::from_millis(500);

/// One subscription: where a publisher's stream goes.
#[derive(Debug)]
struct Down {
    conn: ConnId,
    ssrc: u32,
    pt: u8,
    /// The simulcast layer it should get (0: the lowest).
    target: usize,
    /// Its layer switch, once the stream has more than one layer.
    switch: Option<LayerSwitch>,
}

/// A subscription waiting for the publisher's stream of that kind to open.
struct Want {
    from: ConnId,
    kind: RtpCodecKind,
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
    /// For simulcast's keyframes and picture ids (VP8, H.264; else none:
    /// only the lowest layer is forwarded).
    codec: Option<Codec>,
    /// Each layer's SSRC, lowest first (one without simulcast).
    layers: Vec<Option<u32>>,
    downs: Vec<Down>,
    last_pli: Option<Instant>,
}

impl Route {
    fn simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// The SSRC of `layer`, or of the nearest one below that is open.
    fn ssrc_of(&self, layer: usize) -> Option<u32> {
        self.layers[..=layer.min(self.layers.len().saturating_sub(1))]
            .iter()
            .rev()
            .find_map(|s| *s)
    }
}

/// A simulcast layer's index from its rid: the names browsers and apps use
/// (q/h/f, low/mid/high, 0/1/2), lowest first.
fn layer_index(rid: Option<&str>) -> usize {
    match rid {
        Some("h" | "mid" | "1" | "m") => 1,
        Some("f" | "high" | "2" | "hi") => 2,
        _ => 0,
    }
}

struct Conn {
    pc: RTCPeerConnection,
    ufrag: String,
    state: RTCPeerConnectionState,
}

pub struct Shard {
    sock: UdpSocket,
    /// The address every connection advertises (its one host candidate),
    /// and the `local_addr` each datagram is handed in with.
    local: SocketAddr,
    conns: Vec<Option<Conn>>,
    by_ufrag: HashMap<String, ConnId>,
    by_addr: HashMap<SocketAddr, ConnId>,
    /// A publisher's stream (connection, SSRC) → its subscriptions.
    routes: HashMap<(ConnId, u32), Route>,
    /// Every layer's (connection, SSRC) → its route's key and layer index.
    layer_of: HashMap<(ConnId, u32), ((ConnId, u32), usize)>,
    /// (subscriber, its sender's track id) → the stream it forwards.
    upstream: HashMap<(ConnId, String), (ConnId, u32)>,
    wants: Vec<Want>,
    /// Keyframes asked while reading one datagram: (stream, layer SSRC; 0:
    /// the layer a switch waits for). Kept, not allocated per datagram.
    plis: Vec<((ConnId, u32), u32)>,
    buf: Vec<u8>,
    /// RTP packets of one datagram, between reading and forwarding (kept, so
    /// its room is not allocated per datagram).
    read: Vec<rtp::Packet>,
    pub stats: ShardStats,
}

impl Shard {
    /// Binds the shard's socket. `addr` must be a concrete address (not
    /// 0.0.0.0): it is what every connection advertises.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        if addr.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the shard's address is advertised to browsers: it cannot be unspecified",
            ));
        }
        let sock = UdpSocket::bind(addr)?;
        sock.set_nonblocking(true)?;
        let local = sock.local_addr()?;
        Ok(Self {
            sock,
            local,
            conns: Vec::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            routes: HashMap::new(),
            layer_of: HashMap::new(),
            upstream: HashMap::new(),
            wants: Vec::new(),
            plis: Vec::new(),
            buf: vec![0; MAX_DATAGRAM],
            read: Vec::new(),
            stats: ShardStats::default(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
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
        });
        Ok((id, answer, senders))
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
        let c = self
            .conns
            .get_mut(conn)
            .and_then(Option::as_mut)
            .ok_or_else(|| rtc::shared::error::Error::Other("no such connection".to_owned()))?;
        let sender = c.pc.add_track(track)?;
        let offer = c.pc.create_offer(None)?;
        c.pc.set_local_description(Instant::now(), offer)?;
        let offer =
            c.pc.local_description()
                .ok_or_else(|| rtc::shared::error::Error::Other("no local offer".to_owned()))?;
        Ok((sender, offer))
    }

    /// The peer's answer to an offer of [`Shard::add_track`].
    pub fn apply_answer(
        &mut self,
        conn: ConnId,
        answer: RTCSessionDescription,
    ) -> Result<(), rtc::shared::error::Error> {
        match self.conns.get_mut(conn).and_then(Option::as_mut) {
            Some(c) => c.pc.set_remote_description(Instant::now(), answer),
            None => Ok(()),
        }
    }

    pub fn add_remote_candidate(
        &mut self,
        conn: ConnId,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), rtc::shared::error::Error> {
        match self.conns.get_mut(conn).and_then(Option::as_mut) {
            Some(c) => c.pc.add_remote_candidate(candidate),
            None => Ok(()),
        }
    }

    /// `from`'s stream of `kind` goes to `to` on its `sender` (a track given
    /// to [`Shard::accept`]): at once, with a keyframe asked of the
    /// publisher, when the stream is open already; else from its first packet.
    pub fn forward(
        &mut self,
        from: ConnId,
        kind: RtpCodecKind,
        to: ConnId,
        sender: RTCRtpSenderId,
    ) -> Option<()> {
        let c = self.conns.get_mut(to)?.as_mut()?;
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
            ssrc,
            pt,
            target: 0,
            switch: None,
        };
        let open = self
            .routes
            .iter_mut()
            .find(|((publisher, _), r)| *publisher == from && r.kind == kind);
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
                kind,
                down,
                track,
            }),
        }
        Some(())
    }

    /// The simulcast layer (0: the lowest) `to` should get of `from`'s
    /// video: taken at that layer's next keyframe, which is asked for.
    pub fn set_layer(&mut self, to: ConnId, from: ConnId, layer: usize) {
        let mut ask = Vec::new();
        for (key, route) in &mut self.routes {
            if key.0 != from || route.kind != RtpCodecKind::Video {
                continue;
            }
            for d in route.downs.iter_mut().filter(|d| d.conn == to) {
                d.target = layer;
                if let Some(sw) = d.switch.as_mut() {
                    sw.set_target(layer);
                }
            }
            if let Some(ssrc) = route.ssrc_of(layer) {
                ask.push((*key, ssrc));
            }
        }
        for (key, ssrc) in ask {
            self.request_keyframe(key, ssrc, Instant::now(), true);
        }
    }

    /// The connection's state as its last event said.
    pub fn state(&self, conn: ConnId) -> Option<RTCPeerConnectionState> {
        Some(self.conns.get(conn)?.as_ref()?.state)
    }

    /// Blocks until a datagram waits on the socket or a connection's next
    /// timer is due, at most `max`; then [`Shard::poll`].
    pub fn wait(&mut self, max: Duration) -> io::Result<()> {
        let now = Instant::now();
        let next = self
            .conns
            .iter_mut()
            .flatten()
            .filter_map(|c| c.pc.poll_timeout())
            .min();
        let wait = next.map_or(max, |t| t.saturating_duration_since(now).min(max));
        if wait.is_zero() {
            return Ok(());
        }
        let timeout = rustix::event::Timespec::try_from(wait)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut fds = [rustix::event::PollFd::new(
            &self.sock,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
            let Some((id, unverified)) = self.route(n, from) else {
                self.stats.unrouted += 1;
                continue;
            };
            let msg = TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
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
            let answered = self.drain(id, now, unverified.then_some(from));
            if answered {
                self.by_addr.insert(from, id);
            }
        }
        for id in 0..self.conns.len() {
            let due = self.conns[id]
                .as_mut()
                .and_then(|c| c.pc.poll_timeout())
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
        Ok(())
    }

    /// Which connection a datagram is for, and whether it is a binding
    /// request from an address not (or not yet) that connection's: STUN
    /// names the connection by our ufrag, the rest is known by its address.
    fn route(&self, n: usize, from: SocketAddr) -> Option<(ConnId, bool)> {
        if let Some(ufrag) = stun::local_ufrag(&self.buf[..n]) {
            let id = *self.by_ufrag.get(ufrag)?;
            return Some((id, self.by_addr.get(&from) != Some(&id)));
        }
        self.by_addr.get(&from).map(|id| (*id, false))
    }

    /// Events, reads (each RTP packet forwarded at once) and writes of one
    /// connection. True when it sent a binding success to `confirm`.
    fn drain(&mut self, id: ConnId, now: Instant, confirm: Option<SocketAddr>) -> bool {
        let Self {
            sock,
            conns,
            routes,
            layer_of,
            upstream,
            wants,
            plis,
            stats,
            read,
            ..
        } = self;
        let Some(c) = conns[id].as_mut() else {
            return false;
        };
        while let Some(ev) = c.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => c.state = s,
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let Some((kind, mime)) = c.pc.rtp_receiver(init.receiver_id).map(|r| {
                        let t = r.track();
                        (t.kind(), t.codec(init.ssrc).map(|c| c.mime_type.clone()))
                    }) else {
                        continue;
                    };
                    let layer = layer_index(init.rid.as_deref());
                    // Another layer of a stream already open, or a new stream.
                    let existing = routes
                        .iter()
                        .find(|((c, _), r)| *c == id && r.receiver == init.receiver_id)
                        .map(|(k, _)| *k);
                    let key = existing.unwrap_or((id, init.ssrc));
                    let route = routes.entry(key).or_insert(Route {
                        receiver: init.receiver_id,
                        kind,
                        codec: match mime.as_deref() {
                            Some(m) if m.eq_ignore_ascii_case("video/VP8") => Some(Codec::Vp8),
                            Some(m) if m.eq_ignore_ascii_case("video/H264") => Some(Codec::H264),
                            _ => None,
                        },
                        layers: Vec::new(),
                        downs: Vec::new(),
                        last_pli: None,
                    });
                    if route.layers.len() <= layer {
                        route.layers.resize(layer + 1, None);
                    }
                    route.layers[layer] = Some(init.ssrc);
                    layer_of.insert((id, init.ssrc), (key, layer));
                    // Turned simulcast: who has been getting the first layer
                    // as it came goes on with it, unchanged.
                    if let (true, Some(codec)) = (route.simulcast(), route.codec) {
                        for d in route.downs.iter_mut().filter(|d| d.switch.is_none()) {
                            d.switch = Some(LayerSwitch::continuing(codec, d.target, 0));
                        }
                    }
                    // Subscriptions that waited for this stream.
                    let mut i = 0;
                    while i < wants.len() {
                        if wants[i].from == id && wants[i].kind == kind {
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
                RTCMessage::RtcpPacket(track, pkts)
                    if pkts.iter().any(|p| crate::is_keyframe_request(p.as_ref())) =>
                {
                    stats.keyframe_requests_in += 1;
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
        let answered = flush(sock, c, stats, confirm);
        for p in read.drain(..) {
            stats.rtp_in += 1;
            let Some(&(key, layer)) = layer_of.get(&(id, p.header.ssrc)) else {
                continue;
            };
            let Some(route) = routes.get_mut(&key) else {
                continue;
            };
            let simulcast = route.simulcast();
            let codec = route.codec;
            for d in &mut route.downs {
                let Some(sub) = conns.get_mut(d.conn).and_then(Option::as_mut) else {
                    continue;
                };
                // One layer: as it comes. Simulcast: what the subscriber's
                // switch lets through, renumbered.
                let (seq, ts, payload) = match (simulcast, codec) {
                    (false, _) => (
                        p.header.sequence_number,
                        p.header.timestamp,
                        p.payload.clone(),
                    ),
                    (true, None) if layer == 0 => (
                        p.header.sequence_number,
                        p.header.timestamp,
                        p.payload.clone(),
                    ),
                    (true, None) => continue,
                    (true, Some(codec)) => {
                        let target = d.target;
                        let sw = d
                            .switch
                            .get_or_insert_with(|| LayerSwitch::new(codec, target));
                        let out = sw.on_packet(
                            layer,
                            p.header.sequence_number,
                            p.header.timestamp,
                            &p.payload,
                        );
                        if sw.wants_keyframe() {
                            plis.push((key, 0));
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
                match sub.pc.handle_write(msg) {
                    Ok(()) => stats.rtp_out += 1,
                    Err(e) => {
                        stats.errors += 1;
                        tracing::debug!(conn = d.conn, "shard: write: {e}");
                    }
                }
                flush(sock, sub, stats, None);
            }
        }
        let mut asked = std::mem::take(plis);
        for (key, ssrc) in asked.drain(..) {
            // 0: a switch waits for its target layer's keyframe.
            let ssrc = match ssrc {
                0 => self.awaited_layer(key).unwrap_or(key.1),
                s => s,
            };
            self.request_keyframe(key, ssrc, now, false);
        }
        self.plis = asked;
        answered
    }

    /// The SSRC of a layer some subscription of stream `key` waits to switch to.
    fn awaited_layer(&self, key: (ConnId, u32)) -> Option<u32> {
        let route = self.routes.get(&key)?;
        route
            .downs
            .iter()
            .find(|d| d.switch.as_ref().is_some_and(LayerSwitch::wants_keyframe))
            .and_then(|d| route.ssrc_of(d.target))
    }

    /// Asks the publisher of stream `key` for a keyframe of its layer
    /// `ssrc` (video only): at most once per [`PLI_THROTTLE`] per stream
    /// unless `force`d (a new subscription, a layer change).
    fn request_keyframe(&mut self, key: (ConnId, u32), ssrc: u32, now: Instant, force: bool) {
        let Some(route) = self.routes.get_mut(&key) else {
            return;
        };
        if route.kind != RtpCodecKind::Video
            || (!force
                && route
                    .last_pli
                    .is_some_and(|t| now.duration_since(t) < PLI_THROTTLE))
        {
            return;
        }
        route.last_pli = Some(now);
        let receiver = route.receiver;
        let Some(c) = self.conns.get_mut(key.0).and_then(Option::as_mut) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        let sent =
            c.pc.rtp_receiver(receiver)
                .map(|mut r| r.write_rtcp(now, vec![Box::new(pli)]));
        match sent {
            Some(Ok(())) => self.stats.plis += 1,
            Some(Err(e)) => {
                self.stats.errors += 1;
                tracing::debug!(conn = key.0, "shard: keyframe request: {e}");
            }
            None => {}
        }
        flush(&self.sock, c, &mut self.stats, None);
    }

    /// Closes a connection and forgets its routes.
    pub fn remove(&mut self, id: ConnId) {
        let Some(mut c) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        let _ = c.pc.close();
        self.by_ufrag.remove(&c.ufrag);
        self.by_addr.retain(|_, v| *v != id);
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

/// Sends what a connection has to send; true when that included a binding
/// success response to `confirm`.
fn flush(
    sock: &UdpSocket,
    c: &mut Conn,
    stats: &mut ShardStats,
    confirm: Option<SocketAddr>,
) -> bool {
    let mut answered = false;
    while let Some(out) = c.pc.poll_write() {
        if confirm == Some(out.transport.peer_addr) && stun::is_binding_success(&out.message) {
            answered = true;
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
