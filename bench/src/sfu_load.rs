//! `bench sfu`: one publisher bot sends synthetic VP8 + Opus RTP into an
//! SFU room, N subscriber bots count what they receive. Over a steady
//! window (after every subscriber receives) it measures packets sent and
//! received, loss from sequence gaps, and server CPU per forwarded packet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::cli::SfuArgs;
use crate::client::{Shared, Target};
use crate::procfs::{self, clock_ticks_per_second};
use crate::report::{mib, print_result};
use crate::run::{deadline, raise_fd_limit, server_for, sleep_bounded};
use crate::server::sample;
use crate::sfu_bot::{self, Bot, BotSpec, MediaSpec, TrackStat};

/// Most subscriber bots one run may start.
const MAX_SUBSCRIBERS: usize = 1000;
/// UDP ports of the SFU range beyond one per peer connection.
const PORT_SLACK: usize = 32;

/// The SFU's RTP counters, from `/metrics` (summed over rooms: /metrics names
/// no room; the bench's server hosts one SFU room).
#[derive(Debug, Clone, Copy, Default)]
struct RoomRtp {
    rtp_in: u64,
    rtp_out: u64,
    dropped: u64,
}

/// `GET /metrics` over a plain loopback TCP connection, bounded.
async fn room_rtp(target: &Target) -> Result<RoomRtp> {
    let body = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = TcpStream::connect(target.addr).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    })
    .await
    .context("GET /metrics timed out")?
    .context("GET /metrics")?;
    let mut r = RoomRtp::default();
    for line in body.lines() {
        let Some((name, value)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        match name {
            "signal_sfu_rtp_in_total" => r.rtp_in = v,
            "signal_sfu_rtp_out_total" => r.rtp_out = v,
            "signal_sfu_rtp_dropped_total" => r.dropped = v,
            _ => {}
        }
    }
    Ok(r)
}

/// Everything counted at one instant.
struct Snap {
    at: Instant,
    video_sent: u64,
    audio_sent: u64,
    subs: Vec<(TrackStat, TrackStat)>,
    server_ticks: Option<u64>,
    server_ns: Option<u64>,
    client_ticks: Option<u64>,
    rtp: Option<RoomRtp>,
}

async fn snap(publisher: &Bot, subs: &[Bot], pid: Option<u32>, target: &Target) -> Snap {
    let rtp = match room_rtp(target).await {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("bench: cannot read /metrics: {e:#}");
            None
        }
    };
    Snap {
        at: Instant::now(),
        video_sent: publisher.st.video_sent.load(Ordering::Relaxed),
        audio_sent: publisher.st.audio_sent.load(Ordering::Relaxed),
        subs: subs.iter().map(|b| b.st.snapshot()).collect(),
        server_ticks: pid.and_then(|p| procfs::cpu_ticks(p).ok()),
        server_ns: pid.and_then(|p| procfs::cpu_ns_threads(p).ok()),
        client_ticks: procfs::cpu_ticks(std::process::id()).ok(),
        rtp,
    }
}

/// Waits until `f` holds, polling every 50 ms; `false` past `until`.
async fn wait_for(until: Instant, f: impl Fn() -> bool) -> bool {
    while !f() {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Runs the scenario; `Ok(true)` when every subscriber received with zero loss.
#[allow(clippy::too_many_lines)]
pub async fn run(args: SfuArgs) -> Result<bool> {
    let n = args.subscribers;
    if n == 0 || n > MAX_SUBSCRIBERS {
        bail!("--subscribers must be in 1..={MAX_SUBSCRIBERS}");
    }
    if !(1..=2000).contains(&args.video_pps) || !(1..=2000).contains(&args.audio_pps) {
        bail!("--video-pps and --audio-pps must be in 1..=2000");
    }
    if !(3..=1200).contains(&args.video_bytes) || !(1..=1200).contains(&args.audio_bytes) {
        bail!("--video-bytes must be in 3..=1200 and --audio-bytes in 1..=1200");
    }
    if args.seconds == 0 {
        bail!("--seconds must be >= 1");
    }
    let mut common = args.common.clone();
    let deadline = deadline(&common);
    // Per bot: a TCP socket, a UDP socket and webrtc-rs internals.
    let fds = raise_fd_limit(n * 8 + 256)?;
    if common.spawn.is_some() {
        if !common.server_args.iter().any(|a| a == "--sfu") {
            common.server_args.push("--sfu".to_owned());
        }
        if !common
            .server_args
            .iter()
            .any(|a| a.starts_with("--sfu-ports"))
        {
            let last = usize::from(args.sfu_port_base) + n + 1 + PORT_SLACK;
            let last = u16::try_from(last).context("--sfu-port-base too high")?;
            common.server_args.push("--sfu-ports".to_owned());
            common
                .server_args
                .push(format!("{}-{last}", args.sfu_port_base));
        }
        // Every bot comes from 127.0.0.1: the server's per-address limit on
        // SFU connections (32 by default) would refuse the rest.
        if !common
            .server_args
            .iter()
            .any(|a| a.starts_with("--sfu-peers-per-ip"))
        {
            common.server_args.push("--sfu-peers-per-ip".to_owned());
            common.server_args.push((n + 1 + PORT_SLACK).to_string());
        }
    }
    let server = server_for(&common, n * 8 + 256).await?;
    let target = Arc::new(Target::parse(&server.url)?);
    let pid = server.pid;
    let room = format!("sfu-bench-{}", std::process::id());
    let shared = Shared::new()?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let join_timeout = Duration::from_secs(common.join_timeout.max(1));
    let setup_until =
        (Instant::now() + Duration::from_secs(args.setup_timeout.max(1))).min(deadline);
    let media = MediaSpec {
        video_pps: args.video_pps,
        video_bytes: args.video_bytes,
        audio_pps: args.audio_pps,
        audio_bytes: args.audio_bytes,
        keyframe_every: Duration::from_secs(args.keyframe_secs.max(1)),
    };
    let t_setup = Instant::now();

    let publisher = sfu_bot::start(BotSpec {
        target: &target,
        shared: &shared,
        room: &room,
        name: "publisher".to_owned(),
        media: Some(media),
        join_timeout,
        shutdown: shutdown.clone(),
    })
    .await
    .context("starting the publisher")?;
    let pst = publisher.st.clone();
    if !wait_for(setup_until, || pst.connected.load(Ordering::Relaxed)).await {
        let _ = shutdown_tx.send(true);
        publisher.close().await;
        server.stop().await;
        bail!("the publisher did not connect to the SFU before the setup timeout");
    }
    eprintln!(
        "bench: publisher connected after {:.2} s",
        t_setup.elapsed().as_secs_f64()
    );

    // Subscribers, a few at a time (each one costs a DTLS handshake on both sides).
    let results: Vec<Result<Bot>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let spec = BotSpec {
                target: &target,
                shared: &shared,
                room: &room,
                name: format!("sub{i}"),
                media: None,
                join_timeout,
                shutdown: shutdown.clone(),
            };
            async move {
                let bot = sfu_bot::start(spec).await?;
                let st = bot.st.clone();
                // Hold the permit until this one connected, bounded.
                wait_for(setup_until, || {
                    st.connected.load(Ordering::Relaxed) || st.failed.load(Ordering::Relaxed)
                })
                .await;
                Ok(bot)
            }
        })
        .buffer_unordered(args.setup_concurrency.max(1))
        .collect()
        .await;
    let mut subs = Vec::with_capacity(n);
    let mut start_errors = Vec::new();
    for r in results {
        match r {
            Ok(b) => subs.push(b),
            Err(e) => start_errors.push(format!("{e:#}")),
        }
    }
    subs.sort_by_key(|b| {
        b.name
            .trim_start_matches("sub")
            .parse::<usize>()
            .unwrap_or(0)
    });
    let receiving = |b: &Bot| {
        let (v, a) = b.st.snapshot();
        v.received > 0 && a.received > 0
    };
    wait_for(setup_until, || subs.iter().all(receiving)).await;
    let ready = subs.iter().filter(|b| receiving(b)).count();
    let setup_s = t_setup.elapsed().as_secs_f64();
    eprintln!(
        "bench: {ready}/{n} subscribers receive video and audio after {setup_s:.2} s{}",
        if start_errors.is_empty() {
            String::new()
        } else {
            format!(
                " ({} failed to start: {})",
                start_errors.len(),
                start_errors[0]
            )
        }
    );

    let mut timed_out = false;
    let mut window_s = 0.0;
    let mut result = None;
    if ready > 0 {
        timed_out |= !sleep_bounded(Duration::from_secs(args.warmup_secs), deadline).await;
        let a = snap(&publisher, &subs, pid, &target).await;
        eprintln!("bench: measuring for {} s", args.seconds);
        timed_out |= !sleep_bounded(Duration::from_secs(args.seconds), deadline).await;
        let b = snap(&publisher, &subs, pid, &target).await;
        window_s = (b.at - a.at).as_secs_f64();
        result = Some((a, b));
    }
    let connected_subs = subs
        .iter()
        .filter(|b| b.st.connected.load(Ordering::Relaxed))
        .count();
    let signal_errors: u64 = std::iter::once(&publisher)
        .chain(subs.iter())
        .map(|b| b.st.signal_errors.load(Ordering::Relaxed))
        .sum();
    let first_signal_error = std::iter::once(&publisher)
        .chain(subs.iter())
        .find_map(|b| b.st.first_signal_error.lock().ok().and_then(|e| e.clone()));
    let socket_closed = std::iter::once(&publisher)
        .chain(subs.iter())
        .filter(|b| b.st.socket_closed.load(Ordering::Relaxed))
        .count();
    let rollbacks: u64 = subs
        .iter()
        .map(|b| b.st.rollbacks.load(Ordering::Relaxed))
        .sum();
    let keyframes_rx_min = subs
        .iter()
        .map(|b| b.st.keyframes_rx.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    let pli_rx = pst.pli_rx.load(Ordering::Relaxed);
    let keyframes_sent = pst.keyframes_sent.load(Ordering::Relaxed);
    let write_errors = pst.write_errors.load(Ordering::Relaxed);
    let rss = sample(&pid.into_iter().collect::<Vec<_>>()).map(|s| s.rss);

    // Tear down: stop the writers and sockets, close every peer connection.
    let _ = shutdown_tx.send(true);
    futures_util::future::join_all(
        std::iter::once(&publisher)
            .chain(subs.iter())
            .map(Bot::close),
    )
    .await;
    let server_nofile = server.nofile.map(|l| l.soft);
    server.stop().await;

    let Some((a, b)) = result else {
        println!("== bench sfu ==");
        println!("no subscriber received media within {setup_s:.1} s: nothing measured");
        println!("verdict: FAIL");
        print_result(&json!({
            "mode": "sfu", "ok": false, "subscribers": n, "ready": ready,
            "start_errors": start_errors, "signal_errors": signal_errors,
            "first_signal_error": first_signal_error, "timed_out": timed_out,
        }));
        return Ok(false);
    };

    // Window deltas.
    let video_sent = b.video_sent - a.video_sent;
    let audio_sent = b.audio_sent - a.audio_sent;
    let pub_sent = video_sent + audio_sent;
    let mut received: u64 = 0;
    let mut expected: u64 = 0;
    let mut lost: u64 = 0;
    let mut per_sub_rx = Vec::with_capacity(subs.len());
    let mut silent_subs = 0usize;
    let mut lossy_subs = 0usize;
    for ((va, aa), (vb, ab)) in a.subs.iter().zip(b.subs.iter()) {
        let rx = (vb.received - va.received) + (ab.received - aa.received);
        let exp = (vb.expected() - va.expected()) + (ab.expected() - aa.expected());
        let l = (vb.expected() - va.expected()).saturating_sub(vb.received - va.received)
            + (ab.expected() - aa.expected()).saturating_sub(ab.received - aa.received);
        received += rx;
        expected += exp;
        lost += l;
        silent_subs += usize::from(rx == 0);
        lossy_subs += usize::from(l > 0);
        per_sub_rx.push(rx);
    }
    let min_rx = per_sub_rx.iter().copied().min().unwrap_or(0);
    let max_rx = per_sub_rx.iter().copied().max().unwrap_or(0);
    let loss_pct = ratio(lost, expected) * 100.0;
    let pub_pps = pub_sent as f64 / window_s.max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let pps_per_sub = received as f64 / subs.len().max(1) as f64 / window_s.max(1e-9);
    let delivered_vs_sent = ratio(received, pub_sent * subs.len() as u64);
    let rtp = a.rtp.zip(b.rtp).map(|(x, y)| RoomRtp {
        rtp_in: y.rtp_in - x.rtp_in,
        rtp_out: y.rtp_out - x.rtp_out,
        dropped: y.dropped - x.dropped,
    });

    let tck = clock_ticks_per_second();
    let server_ticks = a.server_ticks.zip(b.server_ticks).map(|(x, y)| y - x);
    #[allow(clippy::cast_precision_loss)]
    let server_cpu_s = server_ticks.map(|t| t as f64 / tck as f64);
    #[allow(clippy::cast_precision_loss)]
    let server_cpu_s_sched = a
        .server_ns
        .zip(b.server_ns)
        .map(|(x, y)| y.saturating_sub(x) as f64 / 1e9);
    #[allow(clippy::cast_precision_loss)]
    let client_cpu_s = a
        .client_ticks
        .zip(b.client_ticks)
        .map(|(x, y)| (y - x) as f64 / tck as f64);
    #[allow(clippy::cast_precision_loss)]
    let per = |cpu: Option<f64>, pkts: u64| cpu.filter(|_| pkts > 0).map(|s| s * 1e6 / pkts as f64);
    let us_per_rx = per(server_cpu_s, received);
    let us_per_out = per(server_cpu_s, rtp.map_or(0, |r| r.rtp_out));
    let us_per_rx_sched = per(server_cpu_s_sched, received);
    let server_cores = server_cpu_s.map(|s| s / window_s.max(1e-9));
    // (1 core-second / CPU per forwarded packet) / packets per second per subscriber.
    let max_subs_per_core = us_per_rx
        .filter(|u| *u > 0.0 && pps_per_sub > 0.0)
        .map(|u| 1e6 / u / pps_per_sub);
    let max_subs_per_core_sched = us_per_rx_sched
        .filter(|u| *u > 0.0 && pps_per_sub > 0.0)
        .map(|u| 1e6 / u / pps_per_sub);

    let ok = ready == n
        && start_errors.is_empty()
        && silent_subs == 0
        && lost == 0
        && write_errors == 0
        && signal_errors == 0
        && socket_closed == 0
        && !timed_out;

    println!("== bench sfu ==");
    println!(
        "target {}  room {room}  1 publisher → {n} subscribers  video {} pps × {} B, audio {} pps × {} B, keyframe every {} s",
        target.base_url,
        args.video_pps,
        args.video_bytes,
        args.audio_pps,
        args.audio_bytes,
        media.keyframe_every.as_secs()
    );
    println!(
        "setup: {ready}/{n} subscribers receiving ({connected_subs} connected) after {setup_s:.2} s  start failures {}  signal errors {signal_errors}  closed sockets {socket_closed}  rollbacks {rollbacks}",
        start_errors.len()
    );
    if let Some(e) = start_errors.first() {
        println!("  first start failure: {e}");
    }
    if let Some(e) = &first_signal_error {
        println!("  first signal error: {e}");
    }
    println!(
        "window {window_s:.2} s: publisher sent {pub_sent} ({video_sent} video + {audio_sent} audio) = {pub_pps:.1} pps  write errors {write_errors}"
    );
    println!(
        "received {received} over {} subscribers ({pps_per_sub:.1} pps each, min {min_rx} max {max_rx})  = {:.2} % of sent × subscribers",
        subs.len(),
        delivered_vs_sent * 100.0
    );
    println!(
        "LOSS {lost}/{expected} = {loss_pct:.3} %  (subscribers with loss {lossy_subs}, silent {silent_subs})  keyframes: sent {keyframes_sent}, PLIs at publisher {pli_rx}, min received per subscriber {keyframes_rx_min}"
    );
    if let Some(r) = rtp {
        println!(
            "server /metrics: rtp_in +{}  rtp_out +{}  rtp_dropped +{}",
            r.rtp_in, r.rtp_out, r.dropped
        );
    }
    match (server_cpu_s, us_per_rx) {
        (Some(s), Some(u)) => {
            println!(
                "server CPU {s:.2} s ({:.1} % of a core)  →  {u:.2} µs per forwarded packet (received), {} µs per rtp_out",
                server_cores.unwrap_or(0.0) * 100.0,
                us_per_out.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}"))
            );
            if let (Some(ss), Some(us)) = (server_cpu_s_sched, us_per_rx_sched) {
                println!("  from schedstat (ns): {ss:.3} s → {us:.2} µs per forwarded packet");
            }
            if let Some(m) = max_subs_per_core {
                println!(
                    "max subscribers per core ≈ {m:.0}  (1 s / {u:.2} µs / {pps_per_sub:.1} pps per subscriber)"
                );
            }
        }
        _ => println!("server CPU: unknown (give --server-pid or --spawn)"),
    }
    if let Some(s) = client_cpu_s {
        println!(
            "load generator CPU in the window: {s:.2} s ({:.1} % of a core, {} threads)",
            s / window_s.max(1e-9) * 100.0,
            common.threads
        );
    }
    if let Some(r) = rss {
        println!("server RSS at the end of the window: {}", mib(r));
    }
    if server_ticks.is_some_and(|t| t < 100) {
        eprintln!(
            "bench: note: under 100 CPU ticks measured; use --seconds or more subscribers for a precise figure (the schedstat figure is finer)"
        );
    }
    println!("verdict: {}", if ok { "OK" } else { "FAIL" });

    print_result(&json!({
        "mode": "sfu",
        "ok": ok,
        "target": target.base_url,
        "room": room,
        "subscribers": n,
        "ready": ready,
        "connected": connected_subs,
        "setup_s": setup_s,
        "start_errors": start_errors,
        "signal_errors": signal_errors,
        "first_signal_error": first_signal_error,
        "sockets_closed": socket_closed,
        "rollbacks": rollbacks,
        "video_pps_target": args.video_pps,
        "video_bytes": args.video_bytes,
        "audio_pps_target": args.audio_pps,
        "audio_bytes": args.audio_bytes,
        "window_s": window_s,
        "publisher_sent": pub_sent,
        "publisher_video_sent": video_sent,
        "publisher_audio_sent": audio_sent,
        "publisher_pps": pub_pps,
        "write_errors": write_errors,
        "keyframes_sent": keyframes_sent,
        "pli_at_publisher": pli_rx,
        "keyframes_received_min": keyframes_rx_min,
        "received": received,
        "received_per_subscriber_min": min_rx,
        "received_per_subscriber_max": max_rx,
        "pps_per_subscriber": pps_per_sub,
        "delivered_vs_sent": delivered_vs_sent,
        "expected": expected,
        "lost": lost,
        "loss_pct": loss_pct,
        "subscribers_with_loss": lossy_subs,
        "silent_subscribers": silent_subs,
        "metrics_rtp_in": rtp.map(|r| r.rtp_in),
        "metrics_rtp_out": rtp.map(|r| r.rtp_out),
        "metrics_rtp_dropped": rtp.map(|r| r.dropped),
        "server_pid": pid,
        "clk_tck": tck,
        "server_cpu_ticks": server_ticks,
        "server_cpu_s": server_cpu_s,
        "server_cpu_s_schedstat": server_cpu_s_sched,
        "server_cores": server_cores,
        "server_cpu_per_forwarded_us": us_per_rx,
        "server_cpu_per_rtp_out_us": us_per_out,
        "server_cpu_per_forwarded_us_schedstat": us_per_rx_sched,
        "max_subscribers_per_core": max_subs_per_core,
        "max_subscribers_per_core_schedstat": max_subs_per_core_sched,
        "client_cpu_s": client_cpu_s,
        "threads": common.threads,
        "server_rss_bytes": rss,
        "client_nofile": fds.soft,
        "server_nofile": server_nofile,
        "timed_out": timed_out,
    }));
    Ok(ok)
}
