//! `bench rtc-path`: what the sans-IO `rtc` crate (the first choice for the
//! SFU's synchronous media core, issue 19) costs per forwarded packet, before
//! any engine is written on it.
//!
//! Everything runs on one thread with no socket: a publisher, the SFU's
//! connection from it, the SFU's connections to `subscribers` subscribers and
//! those subscribers are `rtc` peer connections joined by an in-memory
//! network (ICE, DTLS and SRTP all real). Then, timed apart:
//!
//! - **read**: the SFU's publisher connection takes one SRTP datagram
//!   (`handle_read`) and gives back the RTP packet (`poll_read`): paid once
//!   per packet, whatever the fan-out;
//! - **write**: for each subscriber, the packet with that subscriber's SSRC,
//!   payload type and sequence number goes in (`handle_write`) and comes out
//!   SRTP-protected (`poll_write`): paid once per subscriber;
//! - **send**: one `send_to` of such a datagram on a loopback UDP socket (the
//!   kernel's part, which a real engine pays per datagram unless it batches).
//!
//! Times are this thread's CPU time (not wall time), so a busy machine
//! disturbs them less.
//!
//! Every datagram written for a subscriber is then fed to that subscriber,
//! which must read back every packet: the numbers are for packets that work.
//! Server CPU per forwarded packet at fan-out N ≈ read / N + write + send.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::engine::{VP8, connection_at, payload_type, video_track};

use crate::cli::RtcPathArgs;

/// Bytes of RTP payload per packet: a full video packet, as browsers send.
const PAYLOAD: usize = 1_100;

/// One `rtc` connection and the address it speaks from.
struct Node {
    pc: RTCPeerConnection,
    addr: SocketAddr,
    connected: bool,
    /// RTP packets read back (subscribers: the check that writes worked).
    rtp_read: u64,
}

/// Datagrams in flight: (to, from, bytes).
type Wire = VecDeque<(SocketAddr, SocketAddr, BytesMut)>;

impl Node {
    fn new(port: u16) -> Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let pc = connection_at(addr, None)?;
        Ok(Self {
            pc,
            addr,
            connected: false,
            rtp_read: 0,
        })
    }

    /// Timers, events, reads; what it writes goes on the wire.
    fn pump(&mut self, wire: &mut Wire) -> Result<()> {
        let now = Instant::now();
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            self.pc.handle_timeout(now)?;
        }
        while let Some(ev) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                if s == RTCPeerConnectionState::Failed {
                    bail!("connection {} failed", self.addr);
                }
                self.connected = s == RTCPeerConnectionState::Connected;
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if matches!(message, RTCMessage::RtpPacket(..)) {
                self.rtp_read += 1;
            }
        }
        while let Some(out) = self.pc.poll_write() {
            wire.push_back((out.transport.peer_addr, self.addr, out.message));
        }
        Ok(())
    }

    fn receive(&mut self, from: SocketAddr, bytes: BytesMut) -> Result<()> {
        self.pc.handle_read(TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: bytes,
        })?;
        Ok(())
    }
}

/// Offer from `a` (which sends a track), answer from `b`; candidates ride in the SDP.
fn negotiate(a: &mut Node, b: &mut Node) -> Result<()> {
    let offer = a.pc.create_offer(None)?;
    a.pc.set_local_description(Instant::now(), offer)?;
    let offer = a.pc.local_description().context("no local offer")?;
    b.pc.set_remote_description(Instant::now(), offer)?;
    let answer = b.pc.create_answer(None)?;
    b.pc.set_local_description(Instant::now(), answer)?;
    let answer = b.pc.local_description().context("no local answer")?;
    a.pc.set_remote_description(Instant::now(), answer)?;
    Ok(())
}

/// Runs the in-memory network until every node is connected.
fn connect(nodes: &mut [Node], wire: &mut Wire, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    while !nodes.iter().all(|n| n.connected) {
        if Instant::now() > end {
            bail!("connections not up within {timeout:?}");
        }
        deliver(nodes, wire)?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Pumps every node and delivers what is on the wire, until it is empty.
fn deliver(nodes: &mut [Node], wire: &mut Wire) -> Result<()> {
    loop {
        for n in nodes.iter_mut() {
            n.pump(wire)?;
        }
        if wire.is_empty() {
            return Ok(());
        }
        while let Some((to, from, bytes)) = wire.pop_front() {
            if let Some(n) = nodes.iter_mut().find(|n| n.addr == to) {
                n.receive(from, bytes)?;
            }
        }
    }
}

/// This thread's CPU time (user + system), so other processes on the
/// machine do not count.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn packet(ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &Bytes) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            marker: seq % 8 == 7,
            ..Default::default()
        },
        payload: payload.clone(),
    }
}

pub fn run(args: &RtcPathArgs) -> Result<()> {
    let subs = args.subscribers.max(1);
    let mut wire = Wire::new();
    // Node 0: the publisher (a browser); 1: the SFU's connection from it;
    // then pairs (SFU's connection to subscriber i, subscriber i).
    let mut publisher = Node::new(10_000)?;
    let mut sfu_in = Node::new(10_001)?;
    let pub_ssrc = 0x1111_0000;
    let pub_sender = publisher.pc.add_track(video_track("camera", pub_ssrc))?;
    negotiate(&mut publisher, &mut sfu_in)?;
    let mut nodes = vec![publisher, sfu_in];
    let mut out_senders = Vec::new();
    for i in 0..subs {
        let port = 20_000 + 2 * u16::try_from(i)?;
        let mut out = Node::new(port)?;
        let mut sub = Node::new(port + 1)?;
        let ssrc = 0x2222_0000 + u32::try_from(i)?;
        let sender = out.pc.add_track(video_track(&format!("sub{i}"), ssrc))?;
        negotiate(&mut out, &mut sub)?;
        out_senders.push((sender, ssrc));
        nodes.push(out);
        nodes.push(sub);
    }
    let t0 = Instant::now();
    connect(&mut nodes, &mut wire, Duration::from_secs(20))?;
    println!(
        "rtc-path: {} connections up in memory in {:?} (ICE + DTLS)",
        nodes.len(),
        t0.elapsed()
    );
    let pub_pt = payload_type(&mut nodes[0].pc, pub_sender, VP8).context("no VP8")?;
    let mut sub_pts = Vec::new();
    for (i, (sender, _)) in out_senders.iter().enumerate() {
        sub_pts.push(payload_type(&mut nodes[2 + 2 * i].pc, *sender, VP8).context("no VP8")?);
    }

    // The publisher's datagrams, made up front (a browser's work, not timed).
    let payload = Bytes::from(vec![0x5a_u8; PAYLOAD]);
    let count = args.packets;
    let mut incoming = Vec::with_capacity(count);
    for k in 0..count {
        let seq = u16::try_from(k % 65_536)?;
        let ts = u32::try_from(k / 8)? * 3_000;
        let mut s = nodes[0]
            .pc
            .rtp_sender(pub_sender)
            .context("publisher sender")?;
        s.write_rtp(Instant::now(), packet(pub_ssrc, pub_pt, seq, ts, &payload))?;
        while let Some(out) = nodes[0].pc.poll_write() {
            incoming.push(out.message);
        }
    }
    if incoming.len() < count {
        bail!(
            "the publisher wrote {} datagrams for {count} packets",
            incoming.len()
        );
    }

    // Read: the SFU's connection from the publisher decrypts and parses.
    let from = nodes[0].addr;
    let mut packets = Vec::with_capacity(count);
    let read_start = cpu_now();
    for d in incoming.drain(..) {
        nodes[1].receive(from, d)?;
        while let Some(TaggedRTCMessage { message, .. }) = nodes[1].pc.poll_read() {
            if let RTCMessage::RtpPacket(_, p) = message {
                packets.push(p);
            }
        }
    }
    let read = cpu_now() - read_start;
    if packets.len() != count {
        bail!("the SFU read {} of {count} packets", packets.len());
    }

    let checked = !args.no_check;
    // Write: each packet, rewritten, into every subscriber's connection.
    let mut out: Vec<Vec<BytesMut>> = vec![Vec::with_capacity(count); subs];
    let write_start = cpu_now();
    for (k, p) in packets.iter().enumerate() {
        for (i, (_, ssrc)) in out_senders.iter().enumerate() {
            let mut fwd = p.clone();
            fwd.header.ssrc = *ssrc;
            fwd.header.payload_type = sub_pts[i];
            fwd.header.sequence_number = u16::try_from(k % 65_536)?;
            let node = &mut nodes[2 + 2 * i];
            node.pc.handle_write(TaggedRTCMessage {
                now: Instant::now(),
                message: RTCMessage::RtpPacket(String::new(), fwd),
            })?;
            while let Some(d) = node.pc.poll_write() {
                // Unchecked, one datagram is kept (for the send): holding
                // them all would add page faults no engine has.
                if checked || out[i].is_empty() {
                    out[i].push(d.message);
                }
            }
        }
    }
    let write = cpu_now() - write_start;

    // Send: the kernel's part, one datagram per send_to on loopback, to a
    // socket another thread reads (as a subscriber's would be: on loopback
    // the delivery and the reader's wake-up are paid in the sender's call).
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let dest = rx.local_addr()?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        while rx.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    let sample = out[0].first().context("nothing written")?.clone();
    let sends = count.min(20_000);
    let send_start = cpu_now();
    for _ in 0..sends {
        tx.send_to(&sample, dest)?;
    }
    let send = cpu_now() - send_start;
    // The same datagrams in batches of one per subscriber, by sendmmsg(2):
    // what batching a fan-out would save in the kernel crossing.
    let batch = subs.clamp(1, 1024);
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(batch, None);
    let to = match dest {
        SocketAddr::V4(v4) => SockaddrIn::from(v4),
        SocketAddr::V6(_) => bail!("loopback is IPv4 here"),
    };
    let slices: Vec<[IoSlice<'_>; 1]> = (0..batch).map(|_| [IoSlice::new(&sample)]).collect();
    let addrs: Vec<Option<SockaddrIn>> = vec![Some(to); batch];
    let batches = (sends / batch).max(1);
    let mmsg_start = cpu_now();
    for _ in 0..batches {
        sendmmsg(
            tx.as_raw_fd(),
            &mut headers,
            slices.iter(),
            &addrs,
            [] as [ControlMessage<'_>; 0],
            MsgFlags::empty(),
        )?;
    }
    let mmsg = cpu_now() - mmsg_start;
    let mmsg_sent = batches * batch;
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;

    // Check: every subscriber reads every packet back.
    for (i, datagrams) in out.into_iter().enumerate().filter(|_| checked) {
        let sfu_addr = nodes[2 + 2 * i].addr;
        for d in datagrams {
            nodes[3 + 2 * i].receive(sfu_addr, d)?;
        }
        nodes[3 + 2 * i].pump(&mut wire)?;
        let got = nodes[3 + 2 * i].rtp_read;
        if got != count as u64 {
            bail!("subscriber {i} read {got} of {count} packets");
        }
    }

    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    let (r, w, s) = (per(read, count), per(write, count * subs), per(send, sends));
    let check = if checked {
        "all read back by every subscriber"
    } else {
        "not read back (--no-check)"
    };
    println!("rtc-path: {count} packets of {PAYLOAD} B payload, {subs} subscribers, {check}");
    println!("  read  (handle_read + poll_read, once per packet):      {r:.2} µs");
    println!("  write (handle_write + poll_write, per subscriber):     {w:.2} µs");
    println!(
        "  send  (one send_to on loopback, per datagram):         {s:.2} µs ({received} of {} sent read by the other thread)",
        sends + mmsg_sent
    );
    println!(
        "  send  (sendmmsg, {batch} datagrams a call, per datagram): {:.2} µs",
        per(mmsg, mmsg_sent)
    );
    for n in [1usize, 50, 200] {
        println!(
            "  per forwarded packet at {n:>3} subscribers: read/N + write + send = {:.2} µs",
            r / n as f64 + w + s
        );
    }
    Ok(())
}
