//! `bench compare`: the same scenarios against several servers (ours and the
//! Node.js reference in `bench/node-server/`), one after the other on the
//! same machine; writes `results.json`, SVG charts and `summary.md`.
//!
//! Every run is this binary again as a child process (`bench chat|connect
//! --spawn SERVER …`), so each starts from a fresh server and a fresh load
//! generator, and its `RESULT {json}` line is the record.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::chart::{Chart, Series};
use crate::cli::{CompareArgs, Target};

/// Runs `bench ARGS…` and returns its `RESULT` JSON (also when it reports a failure).
async fn child(args: &[String]) -> Result<Value> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    eprintln!("compare: bench {}", args.join(" "));
    let mut c = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting bench")?;
    let out = c.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut result = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(j) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str(j).context("parsing RESULT")?);
        }
    }
    let status = c.wait().await?;
    result.with_context(|| format!("bench {} printed no RESULT ({status})", args.join(" ")))
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v.pointer(key).and_then(Value::as_f64)
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// The base arguments of a child run against `t`.
fn common(t: &Target, a: &CompareArgs, timeout: u64) -> Vec<String> {
    vec![
        s("--spawn"),
        t.path.display().to_string(),
        s("--threads"),
        s(a.threads),
        s("--timeout"),
        s(timeout),
    ]
}

/// A 200-peer room at one offered rate: the point of the saturation curve.
#[derive(Debug, Clone, serde::Serialize)]
struct SweepPoint {
    rate: f64,
    offered_deliveries_per_s: f64,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    lost: f64,
    error_acks: f64,
    healthy: bool,
}

pub async fn run(a: CompareArgs) -> Result<bool> {
    if a.servers.len() < 2 {
        bail!("give at least two --server NAME=PATH");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut all = serde_json::Map::new();
    let mut ok = true;
    for t in &a.servers {
        let mut r = serde_json::Map::new();
        // Memory and connect rate at growing sizes.
        let mut connects = Vec::new();
        for &n in &a.conns {
            let mut args = vec![s("connect")];
            args.extend(common(t, &a, 600));
            args.extend([
                s("--conns"),
                s(n),
                s("--rooms"),
                s((n / 10).max(1)),
                s("--idle-secs"),
                s(a.idle_secs),
            ]);
            let v = child(&args).await?;
            ok &= v["ok"].as_bool().unwrap_or(false);
            connects.push(v);
        }
        r.insert("connect".into(), Value::Array(connects));
        // Fan-out chat in many rooms: CPU per delivery and latency.
        let mut args = vec![s("chat")];
        args.extend(common(t, &a, 600));
        args.extend([
            s("--rooms"),
            s(a.fanout_rooms),
            s("--peers-per-room"),
            s(a.fanout_peers),
            s("--messages"),
            s(a.fanout_messages),
            s("--rate"),
            s(a.fanout_rate),
        ]);
        let v = child(&args).await?;
        ok &= v["ok"].as_bool().unwrap_or(false);
        r.insert("fanout".into(), v);
        // Call set-ups: real-size SDPs and trickled candidates.
        let mut args = vec![s("signal")];
        args.extend(common(t, &a, 600));
        args.extend([
            s("--pairs"),
            s(a.signal_pairs),
            s("--calls"),
            s(a.signal_calls),
            s("--rate"),
            s(a.signal_rate),
        ]);
        let v = child(&args).await?;
        ok &= v["ok"].as_bool().unwrap_or(false);
        r.insert("signal".into(), v);
        // One big room, offered load rising until it saturates.
        let mut sweep = Vec::new();
        let mut raw = Vec::new();
        let mut unhealthy = 0;
        for &rate in &a.sweep_rates {
            let mut args = vec![s("chat")];
            args.extend(common(t, &a, 600));
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let messages = ((rate * a.sweep_secs).round() as usize).max(1);
            args.extend([
                s("--rooms"),
                s(1),
                s("--peers-per-room"),
                s(a.room_peers),
                s("--messages"),
                s(messages),
                s("--rate"),
                s(rate),
                s("--drain-secs"),
                s(10),
                // Both servers refuse the 101st peer of a room by default.
                s("--"),
                s("--max-peers-per-room"),
                s(a.room_peers),
            ]);
            let v = child(&args).await?;
            #[allow(clippy::cast_precision_loss)]
            let fanout = (a.room_peers - 1) as f64;
            let p99_ms = f(&v, "/delivery_latency_us/p99").unwrap_or(f64::NAN) / 1000.0;
            let lost = f(&v, "/lost_deliveries").unwrap_or(f64::NAN);
            let error_acks = f(&v, "/acks_err").unwrap_or(f64::NAN);
            let delivered = f(&v, "/deliveries").unwrap_or(0.0);
            // Throughput over the sending window: the drain is not load.
            let secs = f(&v, "/send_elapsed_s").unwrap_or(f64::NAN).max(1e-9);
            let offered = rate * fanout;
            let delivered_per_s = (delivered / secs).min(offered * 1.05);
            let healthy = v["ok"].as_bool().unwrap_or(false) && p99_ms < a.p99_limit_ms;
            sweep.push(SweepPoint {
                rate,
                offered_deliveries_per_s: offered,
                delivered_per_s,
                p50_ms: f(&v, "/delivery_latency_us/p50").unwrap_or(f64::NAN) / 1000.0,
                p99_ms,
                lost,
                error_acks,
                healthy,
            });
            raw.push(v);
            if healthy {
                unhealthy = 0;
            } else {
                unhealthy += 1;
                if unhealthy >= 2 {
                    break;
                }
            }
        }
        r.insert("sweep".into(), serde_json::to_value(&sweep)?);
        r.insert("sweep_raw".into(), Value::Array(raw));
        all.insert(t.name.clone(), Value::Object(r));
    }
    let all = Value::Object(all);
    std::fs::write(
        a.out.join("results.json"),
        serde_json::to_string_pretty(&all)?,
    )?;
    let summary = render(&a, &all)?;
    std::fs::write(a.out.join("summary.md"), &summary)?;
    println!("{summary}");
    Ok(ok)
}

/// The best healthy throughput of a sweep (deliveries per second).
fn saturation(v: &Value) -> f64 {
    v["sweep"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["healthy"].as_bool() == Some(true))
        .filter_map(|p| p["delivered_per_s"].as_f64())
        .fold(0.0, f64::max)
}

fn last_connect(v: &Value) -> &Value {
    v["connect"]
        .as_array()
        .and_then(|c| c.last())
        .unwrap_or(&Value::Null)
}

/// Charts and the markdown summary from `results.json`'s value.
pub fn render(a: &CompareArgs, all: &Value) -> Result<String> {
    let names: Vec<&String> = a.servers.iter().map(|t| &t.name).collect();
    let get = |n: &str| &all[n];
    let out = |file: &str| a.out.join(file);

    // Latency distribution of the fan-out chat.
    let series = names
        .iter()
        .map(|n| {
            let pts = get(n)["fanout"]["delivery_latency_curve_us"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? / 1000.0)))
                .collect();
            Series::new(n.as_str(), pts)
        })
        .collect();
    Chart::percentiles(
        format!(
            "Chat delivery latency: {} rooms × {} peers, {} msg/s",
            a.fanout_rooms, a.fanout_peers, a.fanout_rate
        ),
        "latency (ms)",
        series,
    )
    .log_y()
    .write(out("latency-fanout.svg"))?;

    // Throughput and p99 against offered load in one big room.
    let sweep_series = |y: &str| -> Vec<Series> {
        names
            .iter()
            .map(|n| {
                let pts = get(n)["sweep"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p["offered_deliveries_per_s"].as_f64()?, p[y].as_f64()?)))
                    .collect();
                Series::new(n.as_str(), pts)
            })
            .collect()
    };
    Chart::line(
        format!("One {}-peer room: throughput vs offered load", a.room_peers),
        "offered deliveries/s",
        "delivered/s",
        sweep_series("delivered_per_s"),
    )
    .log_x()
    .log_y()
    .write(out("saturation-room.svg"))?;
    Chart::line(
        format!(
            "One {}-peer room: p99 delivery latency vs offered load",
            a.room_peers
        ),
        "offered deliveries/s",
        "p99 latency (ms)",
        sweep_series("p99_ms"),
    )
    .log_x()
    .log_y()
    .write(out("p99-room.svg"))?;

    // Memory against connections.
    let rss = names
        .iter()
        .map(|n| {
            let pts = get(n)["connect"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some((
                        c["joined"].as_f64()?,
                        c["rss_after_idle_bytes"].as_f64()? / (1024.0 * 1024.0),
                    ))
                })
                .collect();
            Series::new(n.as_str(), pts)
        })
        .collect();
    Chart::line(
        "Server RSS vs idle joined connections",
        "connections",
        "RSS (MiB)",
        rss,
    )
    .write(out("rss-vs-conns.svg"))?;

    // The four targets: ours (first server) against the reference (second).
    let (ours, theirs) = (names[0].as_str(), names[1].as_str());
    let metric = |n: &str| -> [f64; 4] {
        let v = get(n);
        [
            f(v, "/fanout/server_cpu_per_delivery_us").unwrap_or(f64::NAN),
            saturation(v),
            f(last_connect(v), "/rss_per_conn_bytes").unwrap_or(f64::NAN) / 1024.0,
            f(last_connect(v), "/joins_per_s").unwrap_or(f64::NAN),
        ]
    };
    let (mo, mt) = (metric(ours), metric(theirs));
    let targets: [(&str, &str, f64, bool); 4] = [
        ("CPU per chat delivery (µs)", "≤ 0.4×", 0.4, false),
        (
            "saturation throughput, one big room (deliveries/s, p99 < limit)",
            "≥ 2×",
            2.0,
            true,
        ),
        ("RSS per idle joined connection (KiB)", "≤ 0.5×", 0.5, false),
        ("connect + join rate (joins/s)", "≥ 2×", 2.0, true),
    ];
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| metric | {ours} | {theirs} | {ours} / {theirs} | target | met |\n|---|---|---|---|---|---|"
    );
    for (i, (label, target, bound, higher)) in targets.iter().enumerate() {
        let ratio = mo[i] / mt[i];
        let met = if *higher {
            ratio >= *bound
        } else {
            ratio <= *bound
        };
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {ratio:.2} | {target} | {} |",
            fmt(mo[i]),
            fmt(mt[i]),
            if ratio.is_finite() {
                if met { "yes" } else { "**no**" }
            } else {
                "n/a"
            }
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Server CPU split into user space and kernel (system time: syscalls, and on loopback the TCP receive path of every frame the server sends):\n"
    );
    let _ = writeln!(
        md,
        "| server | chat: µs / delivery | of which kernel | signal: µs / relayed signal | of which kernel |\n|---|---|---|---|---|"
    );
    for n in &names {
        let v = get(n);
        let split = |scenario: &str, per: &str| {
            let total = f(&v[scenario], per).unwrap_or(f64::NAN);
            let share = f(&v[scenario], "/server_cpu_sys_share").unwrap_or(f64::NAN);
            (fmt(total), fmt(total * share))
        };
        let (ct, ck) = split("fanout", "/server_cpu_per_delivery_us");
        let (st, sk) = split("signal", "/server_cpu_per_signal_us");
        let _ = writeln!(md, "| {n} | {ct} | {ck} | {st} | {sk} |");
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Signal relay: {} pairs, {} call set-ups at {}/s (Chromium SDPs, trickled candidates):\n",
        a.signal_pairs, a.signal_calls, a.signal_rate
    );
    let _ = writeln!(
        md,
        "| server | signals relayed | lost | error acks | CPU µs / signal | SDP p50 / p99 ms | candidate p50 / p99 ms |\n|---|---|---|---|---|---|---|"
    );
    for n in &names {
        let v = &get(n)["signal"];
        let g = |k: &str| f(v, k).unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} |",
            fmt(g("/signals_received")),
            fmt(g("/lost_signals")),
            fmt(g("/acks_err")),
            fmt(g("/server_cpu_per_signal_us")),
            g("/sdp_latency_us/p50") / 1000.0,
            g("/sdp_latency_us/p99") / 1000.0,
            g("/candidate_latency_us/p50") / 1000.0,
            g("/candidate_latency_us/p99") / 1000.0,
        );
    }
    let _ = writeln!(md);
    for n in &names {
        let _ = writeln!(md, "{n}, one {}-peer room:\n", a.room_peers);
        let _ = writeln!(
            md,
            "| msg/s | offered deliveries/s | delivered/s | p50 ms | p99 ms | lost | error acks | healthy |\n|---|---|---|---|---|---|---|---|"
        );
        for p in get(n)["sweep"].as_array().into_iter().flatten() {
            let g = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {} |",
                fmt(g("rate")),
                fmt(g("offered_deliveries_per_s")),
                fmt(g("delivered_per_s")),
                g("p50_ms"),
                g("p99_ms"),
                fmt(g("lost")),
                fmt(g("error_acks")),
                p["healthy"]
            );
        }
        let _ = writeln!(md);
    }
    Chart::bars(
        format!("{ours} vs {theirs}: costs (lower is better)"),
        "per unit",
        vec![
            s("CPU µs / chat delivery"),
            s("CPU µs / relayed signal"),
            s("RSS KiB / idle conn"),
        ],
        names
            .iter()
            .map(|n| {
                let m = metric(n);
                let sig = f(&get(n)["signal"], "/server_cpu_per_signal_us").unwrap_or(f64::NAN);
                (n.to_string(), vec![m[0], sig, m[2]])
            })
            .collect(),
    )
    .write(out("costs.svg"))?;
    Chart::bars(
        format!("{ours} vs {theirs}: rates (higher is better)"),
        "thousands per second",
        vec![s("saturation deliveries/s"), s("joins/s")],
        names
            .iter()
            .map(|n| {
                let m = metric(n);
                (n.to_string(), vec![m[1] / 1000.0, m[3] / 1000.0])
            })
            .collect(),
    )
    .write(out("rates.svg"))?;
    Ok(md)
}

/// Compact numbers for tables: 12 345 → "12345", 0.123 → "0.12".
fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "n/a".to_owned()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// `bench compare --render-only`: charts and summary again from a results
/// file, and the soak chart from a `soak.json` beside it, if there is one.
pub fn rerender(a: &CompareArgs, results: &Path) -> Result<String> {
    let read = |p: &Path| -> Result<Value> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let all = read(results)?;
    let md = render(a, &all)?;
    std::fs::write(a.out.join("summary.md"), &md)?;
    let soak = results.with_file_name("soak.json");
    if soak.exists() {
        let names: Vec<&str> = a.servers.iter().map(|t| t.name.as_str()).collect();
        soak_chart(&names, &read(&soak)?).write(a.out.join("rss-soak.svg"))?;
    }
    Ok(md)
}

/// RSS over the soak, one line per server, from `soak.json`'s value.
fn soak_chart(names: &[&str], soak: &Value) -> Chart {
    let series = names
        .iter()
        .map(|n| {
            let pts = soak[n]["rss_series"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? / (1024.0 * 1024.0))))
                .collect();
            Series::new(*n, pts)
        })
        .collect();
    let first = names.first().map_or(&Value::Null, |n| &soak[n]);
    Chart::line(
        format!(
            "Soak: {} idle joined connections, RSS over {} s",
            first["conns"], first["idle_secs"]
        ),
        "seconds since all joined",
        "RSS (MiB)",
        series,
    )
}

/// The soak: N idle joined connections held for a while, RSS sampled.
pub async fn soak(a: &CompareArgs) -> Result<bool> {
    let mut ok = true;
    let mut raw = serde_json::Map::new();
    for t in &a.servers {
        let mut args = vec![s("connect")];
        args.extend(common(t, a, a.soak_secs + 900));
        args.extend([
            s("--conns"),
            s(a.soak_conns),
            s("--rooms"),
            s((a.soak_conns / 10).max(1)),
            s("--idle-secs"),
            s(a.soak_secs),
            s("--sample-every"),
            s((a.soak_secs / 60).max(1)),
        ]);
        let v = child(&args).await?;
        ok &= v["ok"].as_bool().unwrap_or(false);
        raw.insert(t.name.clone(), v);
    }
    let raw = Value::Object(raw);
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("soak.json"), serde_json::to_string_pretty(&raw)?)?;
    let names: Vec<&str> = a.servers.iter().map(|t| t.name.as_str()).collect();
    soak_chart(&names, &raw).write(a.out.join("rss-soak.svg"))?;
    Ok(ok)
}
