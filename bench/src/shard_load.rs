//! `bench shard`: the new media core's shard (`sfu::engine::Shard`, issue
//! 19) under the same load as `bench sfu`, without the signaling server:
//! one publisher and N subscribers (`rtc` peers, each on a UDP socket of its
//! own, on this thread) connect to the shard's ONE port; the shard runs on a
//! thread of its own, and its CPU time (that thread's clock: user + system,
//! the sends included) is divided by the packets it forwarded.
//!
//! The packet mix is `bench sfu`'s: per second 100 packets of 1 000 bytes
//! and 50 of 100 bytes (its video and audio), here on one track.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::engine::{Shard, ShardStats, UdpPeer, VP8, payload_type, video_track};

use crate::cli::ShardArgs;

/// This thread's CPU time (user + system).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Subscribers set up at a time.
const SETUP_GROUP: usize = 20;

/// Polls the shard and the peers (from this thread) until every peer is connected.
fn connect_all(shard: &mut Shard, peers: &mut [UdpPeer], setup: Instant) -> Result<()> {
    while !peers.iter().all(UdpPeer::connected) {
        if setup.elapsed() > Duration::from_secs(120) || peers.iter().any(UdpPeer::failed) {
            let up = peers.iter().filter(|p| p.connected()).count();
            bail!(
                "{up} of {} connections up after {:?}",
                peers.len(),
                setup.elapsed()
            );
        }
        shard.wait(Duration::from_millis(1))?;
        let now = Instant::now();
        shard.poll(now)?;
        for p in peers.iter_mut() {
            p.poll(now);
        }
    }
    Ok(())
}

pub fn run(args: &ShardArgs) -> Result<bool> {
    let n = args.subscribers.max(1);
    let mut shard = Shard::bind("127.0.0.1:0".parse()?)?;
    let pub_ssrc = 0x00c0_ffee;
    let (mut publisher, sender) =
        UdpPeer::publisher(pub_ssrc, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let offer = publisher.offer().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (pub_id, answer, _) = shard
        .accept(offer, Vec::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    publisher
        .pc
        .set_remote_description(Instant::now(), answer)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut peers = vec![publisher];
    let setup = Instant::now();
    for i in 0..n {
        // In groups (as browsers arrive), each group connected before the
        // next: hundreds of DTLS handshakes at once overflow the socket.
        if i % SETUP_GROUP == 0 {
            connect_all(&mut shard, &mut peers, setup)?;
        }
        let mut sub = UdpPeer::receiver(false).map_err(|e| anyhow::anyhow!("{e}"))?;
        let offer = sub.offer().map_err(|e| anyhow::anyhow!("{e}"))?;
        let ssrc = 0x1000 + u32::try_from(i)?;
        let (id, answer, senders) = shard
            .accept(offer, vec![video_track(&format!("fwd{i}"), ssrc)])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        sub.pc
            .set_remote_description(Instant::now(), answer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        shard
            .forward(
                pub_id,
                RtpCodecKind::Video,
                id,
                *senders.first().context("no sender")?,
            )
            .context("route")?;
        peers.push(sub);
    }

    connect_all(&mut shard, &mut peers, setup)?;
    println!(
        "bench shard: 1 publisher + {n} subscribers connected to one UDP port ({}) in {:.2} s",
        shard.local_addr(),
        setup.elapsed().as_secs_f64()
    );

    // The shard on its own thread from here.
    let stop = Arc::new(AtomicBool::new(false));
    let shard_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<(Duration, ShardStats)> {
            let start = thread_cpu();
            let before = shard.stats;
            while !stop.load(Ordering::Relaxed) {
                shard.wait(Duration::from_millis(5))?;
                shard.poll(Instant::now())?;
            }
            let mut stats = shard.stats;
            stats.rtp_in -= before.rtp_in;
            stats.rtp_out -= before.rtp_out;
            stats.datagrams_in -= before.datagrams_in;
            stats.datagrams_out -= before.datagrams_out;
            Ok((thread_cpu() - start, stats))
        })
    };

    // The publisher sends at the rate, everyone is polled.
    let pt = payload_type(&mut peers[0].pc, sender, VP8).context("publisher's payload type")?;
    let big = Bytes::from(vec![0x42_u8; 1000]);
    let small = Bytes::from(vec![0x24_u8; 100]);
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.pps.max(1)));
    let window = Duration::from_secs(args.seconds.max(1));
    let start = Instant::now();
    let mut next = start;
    let mut sent: u32 = 0;
    let drain_until = start + window + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= drain_until {
            break;
        }
        while now >= next && now < start + window {
            let payload = if sent % 3 == 2 { &small } else { &big };
            let seq = u16::try_from(sent % 65_536)?;
            peers[0]
                .send(sender, (pt, pub_ssrc, seq, sent * 900), payload)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            sent += 1;
            next += interval;
        }
        for p in &mut peers {
            p.poll(now);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    stop.store(true, Ordering::Relaxed);
    let (cpu, stats) = shard_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the shard thread panicked"))??;

    let subs = &peers[1..];
    let received: u64 = subs.iter().map(|p| p.received).sum();
    let gaps: u64 = subs.iter().map(|p| p.gaps).sum();
    let expected = u64::from(sent) * n as u64;
    let min = subs.iter().map(|p| p.received).min().unwrap_or(0);
    let per = cpu.as_secs_f64() * 1e6 / stats.rtp_out.max(1) as f64;
    println!(
        "window {:.0} s: publisher sent {sent} ({:.0} pps); subscribers received {received} of {expected} (min {min} each), {gaps} lost in sequence",
        window.as_secs_f64(),
        f64::from(sent) / window.as_secs_f64()
    );
    println!(
        "shard: rtp_in {}  rtp_out {}  datagrams in {} out {}  errors {}",
        stats.rtp_in, stats.rtp_out, stats.datagrams_in, stats.datagrams_out, stats.errors
    );
    println!(
        "shard thread CPU {:.3} s  →  {per:.2} µs per forwarded packet (all its work: ICE, DTLS, RTCP, timers, sends)",
        cpu.as_secs_f64()
    );
    let ok = received == expected && gaps == 0;
    println!("verdict: {}", if ok { "OK" } else { "FAIL (loss)" });
    Ok(ok)
}
