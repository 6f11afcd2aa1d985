//! `bench signal`: call set-ups relayed through the server with real-size
//! payloads ([`crate::call_setup`]). Rooms of two peers; one sends an offer,
//! its ICE candidates and end-of-candidates, the other answers the same way
//! the moment the offer arrives: 2 × (1 + C + 1) `signal` events per call,
//! every one acked.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use crate::call_setup::{ANSWER, OFFER, signals_per_call};
use crate::cli::SignalArgs;
use crate::client::Cmd;
use crate::load::fill;
use crate::report::{mib, print_result};
use crate::run::{MAX_CONNS, Run, sleep_bounded, start_run};

/// Runs the scenario; `Ok(true)` when nothing was lost or failed.
pub async fn run(args: SignalArgs) -> Result<bool> {
    let c = &args.common;
    let pairs = args.pairs;
    if pairs == 0 {
        bail!("need --pairs >= 1");
    }
    let conns = pairs
        .checked_mul(2)
        .filter(|n| *n <= MAX_CONNS)
        .ok_or_else(|| anyhow::anyhow!("pairs × 2 must be <= {MAX_CONNS}"))?;
    if !(args.rate > 0.0 && args.rate <= 100_000.0) {
        bail!("--rate must be in (0, 100000]");
    }
    let per_call = signals_per_call();
    #[allow(clippy::cast_precision_loss)]
    let per_socket = args.rate * per_call as f64 / 2.0 / pairs as f64;
    if per_socket > 40.0 {
        eprintln!(
            "bench: WARNING: {per_socket:.1} signals/s per socket; the server's default rate \
             limit is 50/s (burst 200): expect rate_limited acks"
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
    let (fleet, fill) = fill(&targets, &spec, |i| format!("bs{run_id}-{}", i / 2)).await?;
    let sh = fleet.shared.clone();
    sleep_bounded(Duration::from_secs(args.settle_secs), deadline).await;

    // Call set-ups, round robin over the pairs; the two peers of a pair
    // take turns at offering.
    let window = crate::load::Window::start(&pids);
    let t0 = Instant::now();
    let paced = crate::load::pace(&fleet, args.calls, args.rate, deadline, |g| {
        let (pair, k) = (g % pairs, g / pairs);
        (pair * 2 + k % 2, Cmd::Call { seq: g as u64 })
    })
    .await;
    // Every signal of every call relayed and acked.
    let expected_estimate = paced.scheduled * per_call as u64;
    let drain_timed_out =
        crate::load::drain(Duration::from_secs(args.drain_secs), deadline, || {
            let received = sh.signals_received.load(Ordering::Relaxed);
            let acked = sh.signal_acks.settled();
            received >= expected_estimate && acked >= expected_estimate
        })
        .await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cost = window.end(&pids);
    let sdp_lat = sh.sdp_lat.summary();
    let candidate_lat = sh.candidate_lat.summary();
    let closed_after_join = sh.closed_after_join.load(Ordering::Relaxed);
    let finals = fleet.close(Duration::from_secs(10)).await;
    server.stop().await;

    // Exact expectations: each peer receives what the other sent.
    let (mut expected, mut lost, mut dup, mut lost_acks) = (0u64, 0u64, 0u64, 0u64);
    for pair in finals.chunks(2) {
        if let [a, b] = pair {
            for (me, other) in [(a, b), (b, a)] {
                if me.joined {
                    expected += other.signals_sent;
                    lost += other.signals_sent.saturating_sub(me.signals_received);
                    dup += me.signals_received.saturating_sub(other.signals_sent);
                }
                lost_acks += me.pending_acks;
            }
        }
    }
    let sent = sh.signals_sent.load(Ordering::Relaxed);
    let received = sh.signals_received.load(Ordering::Relaxed);
    let send_failed = sh.signal_send_failed.load(Ordering::Relaxed);
    let bytes = sh.signal_bytes_sent.load(Ordering::Relaxed);
    let (acks_ok, acks_err, ack_errors) = sh.signal_acks.snapshot();
    let misrouted = sh.misrouted.load(Ordering::Relaxed);
    let cpu_per_signal_us = cost.per_unit_us(received);
    #[allow(clippy::cast_precision_loss)]
    let (signal_rate, mb_per_s) = (
        received as f64 / elapsed.max(1e-9),
        bytes as f64 / elapsed.max(1e-9) / 1e6,
    );
    let ok = fill.failed == 0
        && fill.unsettled == 0
        && lost == 0
        && dup == 0
        && lost_acks == 0
        && acks_err == 0
        && send_failed == 0
        && paced.not_scheduled == 0
        && misrouted == 0
        && closed_after_join == 0
        && !paced.timed_out
        && !drain_timed_out;

    println!("== bench signal ==");
    println!(
        "target {}  {pairs} pairs  {} calls at {}/s  {per_call} signals per call (offer/answer {} / {} bytes)",
        target.base_url,
        args.calls,
        args.rate,
        OFFER.len(),
        ANSWER.len()
    );
    println!(
        "fill: joined {}/{conns}  failed {}  {:.2} s ({:.0} joins/s)",
        fill.joined, fill.failed, fill.elapsed_s, fill.joins_per_s
    );
    println!(
        "signals sent {sent} ({:.1} MB/s)  received {received}/{expected}  LOST {lost}  duplicates {dup}  misrouted {misrouted}  send failures {}",
        mb_per_s,
        send_failed + paced.not_scheduled
    );
    println!("acks ok {acks_ok}  error acks {acks_err} {ack_errors:?}  LOST ACKS {lost_acks}");
    println!("  offer/answer relay latency {}", sdp_lat.line());
    println!("  candidate relay latency    {}", candidate_lat.line());
    if let Some(d) = cpu_per_signal_us {
        println!(
            "server CPU: {:.2} s  →  {d:.1} µs per relayed signal ({signal_rate:.0} signals/s)",
            cost.cpu_s.unwrap_or(0.0)
        );
    }
    if let (Some(b), Some(a)) = (cost.before, cost.after) {
        println!("server RSS: {} → {}", mib(b.rss), mib(a.rss));
    }
    println!("verdict: {}", if ok { "OK" } else { "FAIL" });

    print_result(&json!({
        "mode": "signal",
        "ok": ok,
        "target": target.base_url,
        "pairs": pairs,
        "conns": conns,
        "calls": args.calls,
        "rate_target": args.rate,
        "signals_per_call": per_call,
        "offer_bytes": OFFER.len(),
        "answer_bytes": ANSWER.len(),
        "fill": fill,
        "calls_scheduled": paced.scheduled,
        "signals_sent": sent,
        "signals_received": received,
        "signals_expected": expected,
        "lost_signals": lost,
        "duplicate_signals": dup,
        "misrouted": misrouted,
        "send_failed": send_failed + paced.not_scheduled,
        "acks_ok": acks_ok,
        "acks_err": acks_err,
        "ack_errors": ack_errors,
        "lost_acks": lost_acks,
        "elapsed_s": elapsed,
        "send_elapsed_s": paced.send_elapsed,
        "signal_rate": signal_rate,
        "mb_per_s": mb_per_s,
        "sdp_latency_us": sdp_lat,
        "candidate_latency_us": candidate_lat,
        "server_cpu_s": cost.cpu_s,
        "server_cpu_per_signal_us": cpu_per_signal_us,
        "server_cpu_sys_share": cost.sys_share,
        "rss_before_bytes": cost.before.map(|s| s.rss),
        "rss_after_bytes": cost.after.map(|s| s.rss),
        "client_nofile": fds.soft,
        "timed_out": paced.timed_out || drain_timed_out,
    }));
    Ok(ok)
}
