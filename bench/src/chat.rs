//! `bench chat`: fill rooms, chat at a bounded rate with acks, count
//! deliveries and losses, measure latency and server CPU per delivery.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ChatArgs;
use crate::client::Cmd;
use crate::load::fill;
use crate::procfs::clock_ticks_per_second;
use crate::report::{mib, print_result};
use crate::run::{MAX_CONNS, Run, sleep_bounded, start_run};
use crate::server::sample;

/// Most messages one run may schedule.
const MAX_MESSAGES: usize = 10_000_000;

/// Runs the scenario; `Ok(true)` when nothing was lost or failed.
pub async fn run(args: ChatArgs) -> Result<bool> {
    let c = &args.common;
    let (rooms, peers) = (args.rooms, args.peers_per_room);
    if rooms == 0 || peers < 2 {
        bail!("need --rooms >= 1 and --peers-per-room >= 2");
    }
    let conns = rooms
        .checked_mul(peers)
        .filter(|n| *n <= MAX_CONNS)
        .ok_or_else(|| anyhow::anyhow!("rooms × peers must be <= {MAX_CONNS}"))?;
    let total = rooms
        .checked_mul(args.messages)
        .filter(|n| *n <= MAX_MESSAGES)
        .ok_or_else(|| anyhow::anyhow!("rooms × messages must be <= {MAX_MESSAGES}"))?;
    if !(args.rate > 0.0 && args.rate <= 1_000_000.0) {
        bail!("--rate must be in (0, 1000000]");
    }
    #[allow(clippy::cast_precision_loss)]
    let per_socket_rate = args.rate / conns as f64;
    if per_socket_rate > 40.0 {
        eprintln!(
            "bench: WARNING: {per_socket_rate:.1} messages/s per socket; the server's default \
             rate limit is 50/s (burst 200): expect rate_limited acks"
        );
    }
    let Run {
        deadline,
        fds,
        server,
        targets,
        target,
        pids,
        run_id,
        spec,
    } = start_run(c, conns).await?;
    let baseline = sample(&pids);

    // Connection i is peer i % P of room i / P.
    let (fleet, fill) = fill(&targets, &spec, |i| format!("bc{run_id}-{}", i / peers)).await?;
    let sh = fleet.shared.clone();
    sleep_bounded(Duration::from_secs(args.settle_secs), deadline).await;

    // Chat phase: message g is number g / rooms of room g % rooms, sent
    // round robin by the room's peers.
    let window = crate::load::Window::start(&pids);
    let me = std::process::id();
    let client_before = crate::procfs::cpu_ticks(me).ok();
    let deliveries_before = sh.deliveries.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let paced = crate::load::pace(&fleet, total, args.rate, deadline, |g| {
        let (room, k) = (g % rooms, g / rooms);
        (room * peers + k % peers, Cmd::Chat { seq: k as u64 })
    })
    .await;
    let (scheduled, not_scheduled, send_elapsed) =
        (paced.scheduled, paced.not_scheduled, paced.send_elapsed);

    // Drain: wait for every delivery and ack, bounded.
    let expected_estimate = scheduled * (peers as u64 - 1);
    let drain_timed_out =
        crate::load::drain(Duration::from_secs(args.drain_secs), deadline, || {
            let delivered = sh.deliveries.load(Ordering::Relaxed) - deliveries_before;
            let acked = sh.chat_acks.settled();
            let sent =
                sh.chat_sent.load(Ordering::Relaxed) + sh.chat_send_failed.load(Ordering::Relaxed);
            delivered >= expected_estimate && acked >= scheduled && sent >= scheduled
        })
        .await;
    let timed_out = paced.timed_out || drain_timed_out;
    let chat_elapsed = t0.elapsed().as_secs_f64();
    let cost = window.end(&pids);
    let after = cost.after;
    let client_after = crate::procfs::cpu_ticks(me).ok();
    let deliveries = sh.deliveries.load(Ordering::Relaxed) - deliveries_before;
    let delivery_lat = sh.delivery_lat.summary();
    let delivery_curve = sh.delivery_lat.curve();
    let ack_lat = sh.chat_ack_lat.summary();
    let closed_after_join = sh.closed_after_join.load(Ordering::Relaxed);
    let finals = fleet.close(Duration::from_secs(10)).await;
    let (server_pid, server_nofile) = (server.pid, server.nofile.map(|l| l.soft));
    server.stop().await;

    // Exact expectations from what each connection really sent.
    let mut expected: u64 = 0;
    let mut lost: u64 = 0;
    let mut dup: u64 = 0;
    let mut lost_acks: u64 = 0;
    for room in finals.chunks(peers) {
        let room_sent: u64 = room.iter().map(|f| f.sent).sum();
        for f in room.iter().filter(|f| f.joined) {
            let want = room_sent - f.sent;
            expected += want;
            lost += want.saturating_sub(f.received);
            dup += f.received.saturating_sub(want);
            lost_acks += f.pending_acks;
        }
    }
    let sent = sh.chat_sent.load(Ordering::Relaxed);
    let send_failed = sh.chat_send_failed.load(Ordering::Relaxed);
    let (acks_ok, acks_err, ack_errors) = sh.chat_acks.snapshot();
    let misrouted = sh.misrouted.load(Ordering::Relaxed);

    let tck = clock_ticks_per_second();
    let (cpu_ticks, cpu_s) = (cost.cpu_ticks, cost.cpu_s);
    let per = |n: u64| cost.per_unit_us(n);
    let cpu_per_delivery_us = per(deliveries);
    #[allow(clippy::cast_precision_loss)]
    let client_cpu_s = client_before
        .zip(client_after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / tck as f64);
    let cpu_per_message_us = per(sent);
    #[allow(clippy::cast_precision_loss)]
    let delivery_rate = deliveries as f64 / chat_elapsed.max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let send_rate = sent as f64 / send_elapsed.max(1e-9);

    let ok = fill.failed == 0
        && fill.unsettled == 0
        && lost == 0
        && dup == 0
        && lost_acks == 0
        && acks_err == 0
        && send_failed == 0
        && not_scheduled == 0
        && misrouted == 0
        && closed_after_join == 0
        && !timed_out;

    println!("== bench chat ==");
    println!(
        "target {}  rooms {rooms} × peers {peers} = {conns} conns  messages/room {}  rate {}/s",
        target.base_url, args.messages, args.rate
    );
    println!(
        "fill: joined {}/{conns}  failed {}  lost join acks {}  {:.2} s ({:.0} joins/s)",
        fill.joined, fill.failed, fill.lost_acks, fill.elapsed_s, fill.joins_per_s
    );
    for (kind, t) in &fill.failures {
        println!("  failure {kind}: {} (first: {})", t.count, t.first_detail);
    }
    println!(
        "sent {sent}/{total} in {send_elapsed:.2} s ({send_rate:.0}/s)  send failures {}  acks ok {acks_ok}  error acks {acks_err} {ack_errors:?}  LOST ACKS {lost_acks}",
        send_failed + not_scheduled
    );
    println!(
        "deliveries {deliveries}/{expected}  LOST {lost}  duplicates {dup}  misrouted {misrouted}  ({delivery_rate:.0}/s)"
    );
    println!("  delivery latency {}", delivery_lat.line());
    println!("  chat ack latency {}", ack_lat.line());
    match (cpu_s, cpu_per_delivery_us) {
        (Some(s), Some(d)) => println!(
            "server CPU during chat: {s:.2} s  →  {d:.1} µs per delivery, {:.1} µs per message",
            cpu_per_message_us.unwrap_or(0.0)
        ),
        _ => println!("server CPU: unknown (give --server-pid or --spawn)"),
    }
    if let Some(s) = client_cpu_s {
        println!(
            "load generator CPU during chat: {s:.2} s over {chat_elapsed:.2} s ({} threads)",
            c.threads
        );
    }
    if let (Some(b), Some(a)) = (baseline, after) {
        println!(
            "server RSS: baseline {}  after chat {}",
            mib(b.rss),
            mib(a.rss)
        );
    }
    if cpu_ticks.is_some_and(|t| t < 100) {
        eprintln!(
            "bench: note: under 100 CPU ticks measured; send more messages for a precise figure"
        );
    }
    println!("verdict: {}", if ok { "OK" } else { "FAIL" });

    print_result(&json!({
        "mode": "chat",
        "ok": ok,
        "target": target.base_url,
        "rooms": rooms,
        "peers_per_room": peers,
        "conns": conns,
        "messages_per_room": args.messages,
        "rate_target": args.rate,
        "threads": c.threads,
        "wait_connect": spec.wait_connect,
        "fill": fill,
        "messages_total": total,
        "messages_scheduled": scheduled,
        "messages_sent": sent,
        "send_failed": send_failed + not_scheduled,
        "send_elapsed_s": send_elapsed,
        "send_rate": send_rate,
        "acks_ok": acks_ok,
        "acks_err": acks_err,
        "ack_errors": ack_errors,
        "lost_acks": lost_acks,
        "deliveries_expected": expected,
        "deliveries": deliveries,
        "lost_deliveries": lost,
        "duplicate_deliveries": dup,
        "misrouted": misrouted,
        "closed_after_join": closed_after_join,
        "chat_elapsed_s": chat_elapsed,
        "delivery_rate": delivery_rate,
        "delivery_latency_us": delivery_lat,
        "delivery_latency_curve_us": delivery_curve,
        "ack_latency_us": ack_lat,
        "server_pid": server_pid,
        "server_pids": pids,
        "clk_tck": tck,
        "server_cpu_ticks": cpu_ticks,
        "server_cpu_s": cpu_s,
        "server_cpu_per_delivery_us": cpu_per_delivery_us,
        "server_cpu_per_message_us": cpu_per_message_us,
        "server_cpu_sys_share": cost.sys_share,
        "client_cpu_s": client_cpu_s,
        "rss_baseline_bytes": baseline.map(|s| s.rss),
        "rss_after_bytes": after.map(|s| s.rss),
        "client_nofile": fds.soft,
        "server_nofile": server_nofile,
        "timed_out": timed_out,
    }));
    Ok(ok)
}
