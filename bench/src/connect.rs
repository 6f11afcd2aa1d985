//! `bench connect`: join throughput, join latency, lost acks, and server
//! memory per idle joined connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ConnectArgs;
use crate::load::fill;
use crate::report::{mib, print_result};
use crate::run::{MAX_CONNS, Run, sleep_bounded, start_run};
use crate::server::sample;

/// Runs the scenario; `Ok(true)` when nothing was lost or failed.
pub async fn run(args: ConnectArgs) -> Result<bool> {
    let c = &args.common;
    if args.conns == 0 || args.conns > MAX_CONNS {
        bail!("--conns must be 1..={MAX_CONNS}");
    }
    if args.rooms == 0 || args.rooms > args.conns {
        bail!("--rooms must be 1..=conns");
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
    } = start_run(c, args.conns).await?;
    let baseline = sample(&pids);
    let rooms = args.rooms;
    let (fleet, fill) = fill(&targets, &spec, |i| format!("bj{run_id}-{}", i % rooms)).await?;
    let joined_sample = sample(&pids);
    // Idle, sampling as we go when asked: (seconds since all joined, RSS, live connections).
    let idle_start = std::time::Instant::now();
    let idle_end = idle_start + Duration::from_secs(args.idle_secs);
    let mut series: Vec<(f64, u64, u64)> = Vec::new();
    let mut idle_full = true;
    if args.sample_every > 0 {
        let every = Duration::from_secs(args.sample_every);
        loop {
            if let Some(s) = sample(&pids) {
                series.push((idle_start.elapsed().as_secs_f64(), s.rss, fleet.live()));
            }
            let next = (std::time::Instant::now() + every).min(idle_end);
            if next <= std::time::Instant::now() {
                break;
            }
            if !sleep_bounded(next - std::time::Instant::now(), deadline).await {
                idle_full = false;
                break;
            }
        }
    } else {
        idle_full = sleep_bounded(Duration::from_secs(args.idle_secs), deadline).await;
    }
    let after = sample(&pids);
    let live = fleet.live();
    // Soak: the growth from the first to the last sample, per connection.
    let rss_drift_per_conn = match (series.first(), series.last()) {
        (Some(f), Some(l)) if series.len() > 1 && fill.joined > 0 => {
            Some(per_conn(l.1, f.1, fill.joined))
        }
        _ => None,
    };
    let client_rss = crate::procfs::rss_bytes(std::process::id()).ok();
    let sh = fleet.shared.clone();
    let (connect_lat, join_lat, total_lat) = (
        sh.connect_lat.summary(),
        sh.join_lat.summary(),
        sh.total_lat.summary(),
    );
    let closed_after_join = sh.closed_after_join.load(Ordering::Relaxed);
    fleet.close(Duration::from_secs(10)).await;
    let (server_pid, server_nofile) = (server.pid, server.nofile.map(|l| l.soft));
    server.stop().await;

    let rss_per_conn = match (baseline, after) {
        (Some(b), Some(a)) if fill.joined > 0 => Some(per_conn(a.rss, b.rss, fill.joined)),
        _ => None,
    };
    let timed_out = fill.unsettled > 0 || !idle_full;
    let ok = fill.failed == 0
        && fill.lost_acks == 0
        && fill.unsettled == 0
        && closed_after_join == 0
        && live == fill.joined
        && !timed_out;

    println!("== bench connect ==");
    println!(
        "target {}  conns {}  rooms {}  concurrency {}  wait-for-40 {}",
        target.base_url, args.conns, args.rooms, c.concurrency, spec.wait_connect
    );
    println!(
        "joined {}/{}  failed {}  LOST ACKS {}  unsettled {}  closed after join {}",
        fill.joined, args.conns, fill.failed, fill.lost_acks, fill.unsettled, closed_after_join
    );
    for (kind, t) in &fill.failures {
        println!("  failure {kind}: {} (first: {})", t.count, t.first_detail);
    }
    println!(
        "connect+join: {:.2} s  →  {:.0} joins/s",
        fill.elapsed_s, fill.joins_per_s
    );
    println!("  connect (tcp+ws+open) {}", connect_lat.line());
    println!("  join ack              {}", join_lat.line());
    println!("  total per connection  {}", total_lat.line());
    match (baseline, joined_sample, after) {
        (Some(b), Some(j), Some(a)) => {
            println!(
                "server RSS: baseline {}  all joined {}  after {} s idle {}",
                mib(b.rss),
                mib(j.rss),
                args.idle_secs,
                mib(a.rss)
            );
            if let Some(per) = rss_per_conn {
                println!("  RSS per idle joined connection: {per} bytes");
            }
        }
        _ => println!("server RSS: unknown (give --server-pid or --spawn)"),
    }
    if let Some(r) = client_rss {
        println!(
            "load generator RSS: {} ({} bytes per connection)",
            mib(r),
            r / args.conns as u64
        );
    }
    if !spec.wait_connect
        && fill
            .failures
            .keys()
            .any(|k| k.starts_with("join_ack_closed"))
    {
        println!(
            "note: socketioxide closes a transport that sends an event before its namespace \
             connect completed (engine.io `1`); conforming clients wait for `40{{sid}}`"
        );
    }
    if let (Some(f), Some(l), Some(d)) = (series.first(), series.last(), rss_drift_per_conn) {
        println!(
            "soak: {} samples over {:.0} s: RSS {} → {} ({d:+} bytes per connection), live {} → {}",
            series.len(),
            l.0 - f.0,
            mib(f.1),
            mib(l.1),
            f.2,
            l.2
        );
    }
    println!(
        "live after idle: {live}   verdict: {}",
        if ok { "OK" } else { "FAIL" }
    );

    print_result(&json!({
        "mode": "connect",
        "ok": ok,
        "target": target.base_url,
        "conns": args.conns,
        "rooms": args.rooms,
        "concurrency": c.concurrency,
        "wait_connect": spec.wait_connect,
        "threads": c.threads,
        "joined": fill.joined,
        "failed": fill.failed,
        "lost_acks": fill.lost_acks,
        "unsettled": fill.unsettled,
        "closed_after_join": closed_after_join,
        "failures": fill.failures,
        "elapsed_s": fill.elapsed_s,
        "joins_per_s": fill.joins_per_s,
        "connect_latency_us": connect_lat,
        "join_latency_us": join_lat,
        "total_latency_us": total_lat,
        "server_pid": server_pid,
        "server_pids": pids,
        "rss_baseline_bytes": baseline.map(|s| s.rss),
        "rss_joined_bytes": joined_sample.map(|s| s.rss),
        "rss_after_idle_bytes": after.map(|s| s.rss),
        "idle_secs": args.idle_secs,
        "rss_per_conn_bytes": rss_per_conn,
        "live_after_idle": live,
        "rss_series": series,
        "rss_drift_per_conn_bytes": rss_drift_per_conn,
        "client_nofile": fds.soft,
        "client_rss_bytes": client_rss,
        "server_nofile": server_nofile,
        "timed_out": timed_out,
    }));
    Ok(ok)
}

/// `(after - before) / n`, signed: memory can also shrink.
fn per_conn(after: u64, before: u64, n: u64) -> i64 {
    let diff = i128::from(after) - i128::from(before);
    i64::try_from(diff / i128::from(n.max(1))).unwrap_or(0)
}
