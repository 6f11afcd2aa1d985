//! `bench signal`: call set-ups relayed through the server with real-size
//! payloads. Rooms of two peers; one sends an offer, its ICE candidates and
//! end-of-candidates, the other answers the same way the moment the offer
//! arrives: 2 × (1 + C + 1) `signal` events per call, every one acked.
//!
//! The payloads are what Chromium produced for a camera + microphone +
//! data-channel call (`bench/data/`: a 5.7 KB offer, a 5.4 KB answer and
//! eight host candidates a side), so the server parses, validates and
//! re-encodes what it does in real use. The send time rides inside them:
//! the SDP `o=` line's session id and version are the send time (µs) and
//! the call number, and a candidate's foundation is its send time.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::json;

use crate::cli::SignalArgs;
use crate::client::Cmd;
use crate::load::fill;
use crate::{MAX_CONNS, Run, mib, print_result, sleep_bounded, start_run};

const OFFER: &str = include_str!("../data/chrome-offer.sdp");
const ANSWER: &str = include_str!("../data/chrome-answer.sdp");
const CANDIDATES: &str = include_str!("../data/chrome-candidates.json");

/// Which side of the call set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Answerer,
}

#[derive(Deserialize)]
struct Candidate {
    candidate: String,
    #[serde(rename = "sdpMid")]
    sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex")]
    sdp_m_line_index: Option<u32>,
}

#[derive(Deserialize)]
struct CandidateFile {
    offerer: Vec<Candidate>,
    answerer: Vec<Candidate>,
}

/// One side's payloads, split where the send time goes and JSON-escaped
/// once.
struct Side {
    kind: &'static str,
    /// Escaped SDP after its `o=` line.
    sdp_rest: String,
    /// Per candidate: its JSON (`sdpMid`, `sdpMLineIndex`) and the escaped
    /// candidate line after the foundation.
    candidates: Vec<(String, String)>,
}

struct Templates {
    offerer: Side,
    answerer: Side,
}

/// `s` as the inside of a JSON string.
fn escaped(s: &str) -> String {
    let q = serde_json::Value::String(s.to_owned()).to_string();
    q[1..q.len() - 1].to_owned()
}

fn side(kind: &'static str, sdp: &str, candidates: &[Candidate]) -> Side {
    // `v=0\r\no=- ID VERSION IN IP4 ADDR\r\n…`: keep what follows the o= line.
    let after_o = sdp
        .find("\no=")
        .and_then(|i| sdp[i + 1..].find('\n').map(|j| i + 1 + j + 1))
        .unwrap_or(0);
    Side {
        kind,
        sdp_rest: escaped(&sdp[after_o..]),
        candidates: candidates
            .iter()
            .map(|c| {
                let fields = json!({"sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index});
                let fields = fields.to_string();
                let rest = c.candidate.split_once(' ').map_or("", |(_, r)| r);
                (fields[1..fields.len() - 1].to_owned(), escaped(rest))
            })
            .collect(),
    }
}

static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    // Checked by a unit test: the embedded file parses.
    let c: CandidateFile = serde_json::from_str(CANDIDATES).unwrap_or(CandidateFile {
        offerer: Vec::new(),
        answerer: Vec::new(),
    });
    Templates {
        offerer: side("offer", OFFER, &c.offerer),
        answerer: side("answer", ANSWER, &c.answerer),
    }
});

/// Signals of one call set-up, both sides (descriptions, candidates, ends).
pub fn signals_per_call() -> usize {
    let t = &*TEMPLATES;
    4 + t.offerer.candidates.len() + t.answerer.candidates.len()
}

/// One side's `signal` payloads of call `seq`, to peer `to`, stamped `t_us`.
pub fn burst(room: &str, to: &str, role: Role, seq: u64, t_us: u64) -> Vec<String> {
    let t = &*TEMPLATES;
    let side = match role {
        Role::Offerer => &t.offerer,
        Role::Answerer => &t.answerer,
    };
    let head = format!(r#"{{"room":"{room}","to":"{to}","data":"#);
    let mut out = Vec::with_capacity(side.candidates.len() + 2);
    out.push(format!(
        r#"{head}{{"type":"{}","sdp":"v=0\r\no=- {t_us} {seq} IN IP4 127.0.0.1\r\n{}"}}}}"#,
        side.kind, side.sdp_rest
    ));
    for (fields, rest) in &side.candidates {
        out.push(format!(
            r#"{head}{{"type":"candidate","candidate":{{"candidate":"candidate:{t_us} {rest}",{fields}}}}}}}"#
        ));
    }
    out.push(format!(
        r#"{head}{{"type":"candidate","candidate":null}}}}"#
    ));
    out
}

#[derive(Deserialize)]
struct SignalIn {
    room: String,
    from: String,
    data: DataIn,
}

#[derive(Deserialize)]
struct DataIn {
    #[serde(rename = "type")]
    kind: String,
    sdp: Option<String>,
    candidate: Option<CandidateIn>,
}

#[derive(Deserialize)]
struct CandidateIn {
    candidate: String,
}

/// A relayed `signal` as the bench reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub room: String,
    pub from: String,
    /// An offer or answer (else a candidate).
    pub is_sdp: bool,
    /// When it was sent (µs since the run's origin), if stamped.
    pub sent_at_us: Option<u64>,
    /// The call number, when this is an offer (to be answered).
    pub offer_seq: Option<u64>,
}

/// Reads a `["signal",{…}]` event array.
pub fn received(event: &str) -> Option<Received> {
    let (_, s): (&str, SignalIn) = serde_json::from_str(event).ok()?;
    let mut r = Received {
        room: s.room,
        from: s.from,
        is_sdp: false,
        sent_at_us: None,
        offer_seq: None,
    };
    match (s.data.kind.as_str(), s.data.sdp, s.data.candidate) {
        (kind @ ("offer" | "answer"), Some(sdp), _) => {
            r.is_sdp = true;
            // `o=- T_US SEQ IN IP4 …`
            let mut o = sdp
                .split("\r\n")
                .find_map(|l| l.strip_prefix("o=- "))?
                .split(' ');
            r.sent_at_us = o.next().and_then(|t| t.parse().ok());
            let seq = o.next().and_then(|t| t.parse().ok());
            if kind == "offer" {
                r.offer_seq = seq;
            }
        }
        ("candidate", _, Some(c)) => {
            r.sent_at_us = c
                .candidate
                .strip_prefix("candidate:")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|t| t.parse().ok());
        }
        ("candidate", _, None) => {}
        _ => return None,
    }
    Some(r)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_real_size_and_round_trip() {
        assert!(OFFER.len() > 4000 && ANSWER.len() > 4000);
        let c: CandidateFile = serde_json::from_str(CANDIDATES).expect("candidates parse");
        assert!(!c.offerer.is_empty() && !c.answerer.is_empty());
        let b = burst("r1", "peer-b", Role::Offerer, 42, 123_456);
        assert_eq!(b.len(), 2 + c.offerer.len());
        for p in &b {
            let v: serde_json::Value = serde_json::from_str(p).expect("payload is JSON");
            assert_eq!(v["to"], "peer-b");
        }
        // What the server relays: `from` instead of `to`.
        let relay = |p: &str| {
            let mut v: serde_json::Value = serde_json::from_str(p).expect("json");
            let o = v.as_object_mut().expect("object");
            o.remove("to");
            o.insert("from".into(), "peer-a".into());
            serde_json::json!(["signal", v]).to_string()
        };
        let offer = received(&relay(&b[0])).expect("offer");
        assert!(offer.is_sdp);
        assert_eq!(
            (offer.sent_at_us, offer.offer_seq, offer.from.as_str()),
            (Some(123_456), Some(42), "peer-a")
        );
        let v: serde_json::Value = serde_json::from_str(&b[0]).expect("json");
        let sdp = v["data"]["sdp"].as_str().expect("sdp");
        assert_eq!(
            sdp.len(),
            OFFER.len() - OFFER.lines().nth(1).map_or(0, str::len)
                + "o=- 123456 42 IN IP4 127.0.0.1".len()
        );
        let cand = received(&relay(&b[1])).expect("candidate");
        assert_eq!(
            (cand.is_sdp, cand.sent_at_us, cand.offer_seq),
            (false, Some(123_456), None)
        );
        let end = received(&relay(&b[b.len() - 1])).expect("end of candidates");
        assert_eq!(end.sent_at_us, None);
        let answer = burst("r1", "peer-a", Role::Answerer, 42, 9);
        let a = received(&relay(&answer[0])).expect("answer");
        assert_eq!((a.is_sdp, a.offer_seq, a.sent_at_us), (true, None, Some(9)));
    }
}
