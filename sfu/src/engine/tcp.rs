//! ICE-TCP for the shard (RFC 6544, passive side only): one listening
//! port; each stream a browser opens carries RFC 4571 frames (a 2-byte
//! length, then one STUN, DTLS or SRTP message), which the shard reads as
//! it reads datagrams. For networks that let no UDP through.
//!
//! Non-blocking throughout, polled with the UDP socket; only the streams
//! the poll said are ready are read. What the shard writes to a stream goes
//! out at once or waits in the stream's buffer until the socket takes it;
//! a stream whose buffer is full loses what does not fit, as a datagram
//! would be lost. Limits, since anyone can open a stream: a stream is
//! closed when its peer address was not confirmed by a connection (an
//! answered binding request) within [`UNCONFIRMED_TIMEOUT`], when nothing
//! came on it for [`IDLE_TIMEOUT`] (ICE consent checks come every few
//! seconds), and when its connection is removed; at most
//! [`MAX_STREAMS_PER_IP`] per client address and [`MAX_STREAMS`] in all
//! (the oldest unconfirmed one makes room for a new one).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Streams open at once (a cap on what unauthenticated peers can hold).
const MAX_STREAMS: usize = 1024;
/// Streams open at once from one client address.
const MAX_STREAMS_PER_IP: usize = 16;
/// How long a stream may stay before a connection confirmed its address.
const UNCONFIRMED_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stream may stay with nothing read on it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// What waits for a slow reader, per stream; beyond, frames are dropped
/// (a quarter of a second of a 8 Mbit/s subscriber: older is no use).
const MAX_PENDING: usize = 256 * 1024;
/// Read per stream and pass, at most (fairness between streams).
const READ_PER_PASS: usize = 64 * 1024;
/// After `accept` failed (out of file descriptors), how long the listener
/// is left alone (else a readable listener would spin the thread).
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

struct Stream {
    sock: TcpStream,
    /// Bytes read and not yet a whole frame.
    rbuf: Vec<u8>,
    /// Framed bytes the socket has not taken yet.
    wbuf: Vec<u8>,
    opened: Instant,
    last_read: Instant,
    /// A connection answered a binding request from it.
    confirmed: bool,
}

pub(super) struct Tcp {
    listener: TcpListener,
    /// The address every connection advertises for it.
    advertised: SocketAddr,
    streams: HashMap<SocketAddr, Stream>,
    /// Streams the last poll said can be read (`None`: not known, read all).
    ready: Option<Vec<SocketAddr>>,
    listener_ready: bool,
    accept_paused_until: Option<Instant>,
    /// Frames dropped: too large, or a full buffer.
    pub dropped: u64,
}

impl Tcp {
    /// Listens on `addr`; advertised at `advertised`'s address with the
    /// bound port.
    pub fn bind(addr: SocketAddr, advertised: IpAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let advertised = SocketAddr::new(advertised, listener.local_addr()?.port());
        Ok(Self {
            listener,
            advertised,
            streams: HashMap::new(),
            ready: None,
            listener_ready: false,
            accept_paused_until: None,
            dropped: 0,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.advertised
    }

    /// The passive host candidate every connection adds (below the UDP one
    /// in priority: a browser tries TCP when UDP does not get through).
    pub fn candidate(&self) -> String {
        // RFC 8445 §5.1.2.1 with type preference 126 (host), local
        // preference 0 (after UDP's 65535), component 1.
        let priority: u32 = (126 << 24) + 255;
        format!(
            "candidate:2 1 tcp {priority} {} {} typ host tcptype passive",
            self.advertised.ip(),
            self.advertised.port()
        )
    }

    /// Accepts new streams, reads what arrived on the streams that are
    /// ready and hands every whole frame to `frame` (with its stream's peer
    /// address); closes streams that ended, failed, or outstayed a limit.
    pub fn read(&mut self, now: Instant, mut frame: impl FnMut(SocketAddr, &[u8])) {
        // Without a poll's word (`ready` unknown), everything is tried.
        let ready = self.ready.take();
        if (ready.is_none() || self.listener_ready)
            && self.accept_paused_until.is_none_or(|t| now >= t)
        {
            self.accept(now);
        }
        self.listener_ready = false;
        let mut closed = Vec::new();
        let mut read_one = |peer: &SocketAddr, s: &mut Stream| {
            if !read_stream(s, now) {
                closed.push(*peer);
            }
            let mut at = 0;
            while let Some(len) = s.rbuf.get(at..at + 2) {
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let Some(f) = s.rbuf.get(at + 2..at + 2 + len) else {
                    break;
                };
                frame(*peer, f);
                at += 2 + len;
            }
            s.rbuf.drain(..at);
            // Whatever waited to be written, now that it may go.
            if !flush_stream(s) {
                closed.push(*peer);
            }
        };
        match &ready {
            Some(peers) => {
                for peer in peers {
                    if let Some(s) = self.streams.get_mut(peer) {
                        read_one(peer, s);
                    }
                }
            }
            None => {
                for (peer, s) in &mut self.streams {
                    read_one(peer, s);
                }
            }
        }
        for peer in closed {
            self.streams.remove(&peer);
        }
        self.streams.retain(|_, s| {
            let limit = if s.confirmed {
                s.last_read + IDLE_TIMEOUT
            } else {
                s.opened + UNCONFIRMED_TIMEOUT
            };
            now < limit
        });
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (sock, peer) = match self.listener.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: leave the listener
                    // alone for a while rather than spin on it.
                    tracing::debug!("shard tcp: accept: {e}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            };
            let from_ip = self.streams.keys().filter(|p| p.ip() == peer.ip()).count();
            if from_ip >= MAX_STREAMS_PER_IP || sock.set_nonblocking(true).is_err() {
                continue;
            }
            if self.streams.len() >= MAX_STREAMS {
                // The oldest unconfirmed stream makes room, if any.
                let oldest = self
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.confirmed)
                    .min_by_key(|(_, s)| s.opened)
                    .map(|(p, _)| *p);
                match oldest {
                    Some(p) => {
                        self.streams.remove(&p);
                    }
                    None => continue,
                }
            }
            let _ = sock.set_nodelay(true);
            self.streams.insert(
                peer,
                Stream {
                    sock,
                    rbuf: Vec::new(),
                    wbuf: Vec::new(),
                    opened: now,
                    last_read: now,
                    confirmed: false,
                },
            );
        }
    }

    /// A connection answered a binding request that came on the stream
    /// from `peer`: the stream is that connection's.
    pub fn confirm(&mut self, peer: SocketAddr) {
        if let Some(s) = self.streams.get_mut(&peer) {
            s.confirmed = true;
        }
    }

    /// Closes the stream from `peer` (its connection is gone).
    pub fn close(&mut self, peer: SocketAddr) {
        self.streams.remove(&peer);
    }

    /// Writes `msg` to the stream from `to` as one frame.
    pub fn send(&mut self, to: SocketAddr, msg: &[u8]) -> io::Result<()> {
        let s = self
            .streams
            .get_mut(&to)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no TCP stream"))?;
        let Ok(len) = u16::try_from(msg.len()) else {
            self.dropped += 1;
            return Ok(());
        };
        if s.wbuf.len() + 2 + msg.len() > MAX_PENDING {
            self.dropped += 1;
            return Ok(());
        }
        s.wbuf.extend_from_slice(&len.to_be_bytes());
        s.wbuf.extend_from_slice(msg);
        if !flush_stream(s) {
            self.streams.remove(&to);
        }
        Ok(())
    }

    /// The descriptors to poll: the listener (unless paused), then each
    /// stream with its peer address and whether bytes wait to be written.
    pub fn fds(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (BorrowedFd<'_>, bool, Option<SocketAddr>)> {
        let listening = self.accept_paused_until.is_none_or(|t| now >= t);
        listening
            .then(|| (self.listener.as_fd(), false, None))
            .into_iter()
            .chain(
                self.streams
                    .iter()
                    .map(|(p, s)| (s.sock.as_fd(), !s.wbuf.is_empty(), Some(*p))),
            )
    }

    /// What the poll found: the listener readable or not, and the streams
    /// that can be read or written (or failed).
    pub fn set_ready(&mut self, listener: bool, streams: Vec<SocketAddr>) {
        self.listener_ready = listener;
        self.ready = Some(streams);
    }

    /// When the next stream limit falls due (to wake up for it).
    pub fn next_deadline(&self) -> Option<Instant> {
        let streams = self.streams.values().map(|s| {
            if s.confirmed {
                s.last_read + IDLE_TIMEOUT
            } else {
                s.opened + UNCONFIRMED_TIMEOUT
            }
        });
        streams.chain(self.accept_paused_until).min()
    }
}

/// Reads what the stream has, up to [`READ_PER_PASS`]; false when it
/// ended or failed (frames read before that still count).
fn read_stream(s: &mut Stream, now: Instant) -> bool {
    let mut buf = [0u8; 8192];
    let mut taken = 0;
    while taken < READ_PER_PASS {
        match s.sock.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                s.rbuf.extend_from_slice(&buf[..n]);
                s.last_read = now;
                taken += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Writes what the stream's socket takes; false when the stream failed.
fn flush_stream(s: &mut Stream) -> bool {
    while !s.wbuf.is_empty() {
        match s.sock.write(&s.wbuf) {
            Ok(0) => return false,
            Ok(n) => {
                s.wbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Tcp {
        Tcp::bind(
            "127.0.0.1:0".parse().expect("addr"),
            "127.0.0.1".parse().expect("ip"),
        )
        .expect("bind")
    }

    #[test]
    fn frames_are_read_whole_across_reads_and_written_with_their_length() {
        let mut tcp = loopback();
        let mut peer = TcpStream::connect(tcp.local_addr()).expect("connect");
        // One frame split over two writes, then two frames in one.
        peer.write_all(&[0, 3, b'a']).expect("write");
        let mut got: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tcp.streams.is_empty() {
            assert!(Instant::now() < deadline, "no stream accepted");
            tcp.read(Instant::now(), |p, f| got.push((p, f.to_vec())));
        }
        peer.write_all(&[b'b', b'c', 0, 1, b'd', 0, 0])
            .expect("write");
        while got.len() < 3 {
            assert!(Instant::now() < deadline, "frames: {got:?}");
            tcp.read(Instant::now(), |p, f| got.push((p, f.to_vec())));
        }
        let frames: Vec<&[u8]> = got.iter().map(|(_, f)| f.as_slice()).collect();
        assert_eq!(frames, [&b"abc"[..], b"d", b""]);
        let from = got[0].0;
        assert_eq!(from, peer.local_addr().expect("addr"));
        // Written back framed.
        tcp.send(from, b"xyz").expect("send");
        let mut back = [0u8; 5];
        peer.read_exact(&mut back).expect("read");
        assert_eq!(&back, &[0, 3, b'x', b'y', b'z']);
    }

    #[test]
    fn one_address_holds_at_most_its_share_of_streams() {
        let mut tcp = loopback();
        let peers: Vec<TcpStream> = (0..MAX_STREAMS_PER_IP + 4)
            .map(|_| TcpStream::connect(tcp.local_addr()).expect("connect"))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until the listener has taken every connection (the refused ones
        // are closed at once).
        while peers.iter().any(|p| {
            p.set_nonblocking(true).expect("nonblocking");
            let open =
                matches!(p.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            open && !tcp.streams.contains_key(&p.local_addr().expect("addr"))
        }) {
            assert!(Instant::now() < deadline, "{} streams", tcp.streams.len());
            tcp.read(Instant::now(), |_, _| {});
        }
        assert_eq!(tcp.streams.len(), MAX_STREAMS_PER_IP);
    }

    #[test]
    fn a_stream_no_connection_confirmed_is_closed_after_the_timeout() {
        let mut tcp = loopback();
        let _peer = TcpStream::connect(tcp.local_addr()).expect("connect");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tcp.streams.is_empty() {
            assert!(Instant::now() < deadline, "no stream accepted");
            tcp.read(Instant::now(), |_, _| {});
        }
        tcp.read(Instant::now() + UNCONFIRMED_TIMEOUT * 2, |_, _| {});
        assert!(tcp.streams.is_empty());
    }
}
