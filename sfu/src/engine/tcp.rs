//! ICE-TCP for the shard (RFC 6544, passive side only): one listening
//! port; each stream a browser opens carries RFC 4571 frames (a 2-byte
//! length, then one STUN, DTLS or SRTP message), which the shard reads as
//! it reads datagrams. For networks that let no UDP through.
//!
//! Non-blocking throughout, polled with the UDP socket: a stream's frames
//! are taken as they arrive, and what the shard writes to it goes out at
//! once or waits in the stream's buffer until the socket takes it. A
//! stream whose buffer is full loses what does not fit, as a datagram
//! would be lost; one that names no connection of ours within
//! [`UNROUTED_TIMEOUT`] is closed, and so is every stream beyond
//! [`MAX_STREAMS`].

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Streams open at once (a cap on what unauthenticated peers can hold).
const MAX_STREAMS: usize = 4096;
/// How long a stream may stay without a frame the shard routed.
const UNROUTED_TIMEOUT: Duration = Duration::from_secs(10);
/// What waits for a slow reader, per stream; beyond, frames are dropped.
const MAX_PENDING: usize = 1 << 20;

struct Stream {
    sock: TcpStream,
    /// Bytes read and not yet a whole frame.
    rbuf: Vec<u8>,
    /// Framed bytes the socket has not taken yet.
    wbuf: Vec<u8>,
    opened: Instant,
    /// A frame of it was routed to a connection.
    routed: bool,
}

pub(super) struct Tcp {
    listener: TcpListener,
    /// The address every connection advertises for it.
    advertised: SocketAddr,
    streams: HashMap<SocketAddr, Stream>,
    /// Frames dropped: too large, or a full buffer.
    pub dropped: u64,
}

impl Tcp {
    /// Listens on `addr`; advertised at `advertised`'s address with the
    /// bound port.
    pub fn bind(addr: SocketAddr, advertised: std::net::IpAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let advertised = SocketAddr::new(advertised, listener.local_addr()?.port());
        Ok(Self {
            listener,
            advertised,
            streams: HashMap::new(),
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

    /// Accepts new streams, reads what arrived and hands every whole frame
    /// to `frame` (with its stream's peer address); closes streams that
    /// ended, failed, or never named a connection.
    pub fn read(&mut self, now: Instant, mut frame: impl FnMut(SocketAddr, &[u8])) {
        loop {
            match self.listener.accept() {
                Ok((sock, peer)) => {
                    if self.streams.len() >= MAX_STREAMS || sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    self.streams.insert(
                        peer,
                        Stream {
                            sock,
                            rbuf: Vec::new(),
                            wbuf: Vec::new(),
                            opened: now,
                            routed: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("shard tcp: accept: {e}");
                    break;
                }
            }
        }
        let mut buf = [0u8; 8192];
        self.streams.retain(|peer, s| {
            if !s.routed && now.saturating_duration_since(s.opened) > UNROUTED_TIMEOUT {
                return false;
            }
            loop {
                match s.sock.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => s.rbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
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
            // Whatever waited to be written, now that we are here.
            flush_stream(s)
        });
    }

    /// The stream from `peer` carried a frame the shard routed.
    pub fn routed(&mut self, peer: SocketAddr) {
        if let Some(s) = self.streams.get_mut(&peer) {
            s.routed = true;
        }
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

    /// The listener and every stream, with whether each has bytes waiting
    /// to be written (to poll for `OUT` too).
    pub fn fds(&self) -> impl Iterator<Item = (BorrowedFd<'_>, bool)> {
        std::iter::once((self.listener.as_fd(), false)).chain(
            self.streams
                .values()
                .map(|s| (s.sock.as_fd(), !s.wbuf.is_empty())),
        )
    }
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
    fn a_stream_that_names_no_connection_is_closed_after_the_timeout() {
        let mut tcp = loopback();
        let _peer = TcpStream::connect(tcp.local_addr()).expect("connect");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tcp.streams.is_empty() {
            assert!(Instant::now() < deadline, "no stream accepted");
            tcp.read(Instant::now(), |_, _| {});
        }
        tcp.read(Instant::now() + UNROUTED_TIMEOUT * 2, |_, _| {});
        assert!(tcp.streams.is_empty());
    }
}
