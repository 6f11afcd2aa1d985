//! Opening many connections with bounded concurrency and collecting how
//! their joins went.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{Cmd, ConnConfig, ConnFinal, Ctx, Outcome, Shared, Target, run_conn};
use crate::procfs::clock_ticks_per_second;
use crate::server::{Sample, sample};

/// A live connection task.
#[derive(Debug)]
pub struct Handle {
    pub cmds: mpsc::Sender<Cmd>,
    pub task: JoinHandle<ConnFinal>,
}

/// Failures of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct FailureTally {
    pub count: u64,
    pub first_detail: String,
}

/// The fleet of connections.
#[derive(Debug)]
pub struct Fleet {
    pub handles: Vec<Handle>,
    pub shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

/// How the fill went.
#[derive(Debug, Clone, Serialize)]
pub struct FillReport {
    pub attempted: usize,
    pub joined: u64,
    pub failed: u64,
    /// Joins sent that never got an ack (timeout or connection closed).
    pub lost_acks: u64,
    /// Connections whose join had not settled when the deadline hit.
    pub unsettled: u64,
    pub failures: BTreeMap<String, FailureTally>,
    pub elapsed_s: f64,
    pub joins_per_s: f64,
}

/// Parameters of a fill.
#[derive(Debug, Clone)]
pub struct FillSpec {
    pub conns: usize,
    pub concurrency: usize,
    /// Connections per source address before moving to the next 127.0.0.x.
    pub conns_per_source_ip: usize,
    pub wait_connect: bool,
    pub join_timeout: Duration,
    pub deadline: Instant,
}

/// Opens `spec.conns` connections; connection `i` joins `room_of(i)`.
/// Returns once every join settled or the deadline passed.
pub async fn fill(
    targets: &[Arc<Target>],
    spec: &FillSpec,
    room_of: impl Fn(usize) -> String,
) -> anyhow::Result<(Fleet, FillReport)> {
    let shared = Arc::new(Shared::new()?);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(1024);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(spec.conns);
    for i in 0..spec.conns {
        let group = i / spec.conns_per_source_ip.max(1);
        let local_ip = (group > 0).then(|| {
            // 127.0.0.2 … 127.0.0.255, then around again.
            let n = u8::try_from(1 + group % 255).unwrap_or(u8::MAX);
            Ipv4Addr::new(127, 0, 0, n)
        });
        let cfg = ConnConfig {
            room: room_of(i),
            name: format!("b{i}"),
            wait_connect: spec.wait_connect,
            local_ip,
            join_timeout: spec.join_timeout,
            mode: None,
        };
        let ctx = Ctx {
            target: targets[i % targets.len()].clone(),
            shared: shared.clone(),
            permits: permits.clone(),
            outcomes: out_tx.clone(),
            shutdown: shutdown_rx.clone(),
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let task = tokio::spawn(run_conn(cfg, ctx, cmd_rx));
        handles.push(Handle { cmds: cmd_tx, task });
    }
    drop(out_tx);

    let mut report = FillReport {
        attempted: spec.conns,
        joined: 0,
        failed: 0,
        lost_acks: 0,
        unsettled: 0,
        failures: BTreeMap::new(),
        elapsed_s: 0.0,
        joins_per_s: 0.0,
    };
    let mut settled = 0usize;
    let mut last_progress = Instant::now();
    let deadline = tokio::time::Instant::from_std(spec.deadline);
    while settled < spec.conns {
        let next = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(2)),
            out_rx.recv(),
        )
        .await;
        match next {
            Ok(Some(Ok(()))) => {
                settled += 1;
                report.joined += 1;
            }
            Ok(Some(Err(f))) => {
                settled += 1;
                report.failed += 1;
                if f.lost_ack {
                    report.lost_acks += 1;
                }
                let t = report.failures.entry(f.kind).or_insert(FailureTally {
                    count: 0,
                    first_detail: f.detail,
                });
                t.count += 1;
            }
            Ok(None) => break,
            Err(_) if tokio::time::Instant::now() >= deadline => {
                eprintln!("bench: global timeout while connecting");
                break;
            }
            Err(_) => {}
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "bench: {settled}/{} settled ({} joined, {} failed) after {:.1}s",
                spec.conns,
                report.joined,
                report.failed,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    report.unsettled = (spec.conns - settled) as u64;
    report.elapsed_s = elapsed;
    // Count-to-float for a rate: exact below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let rate = report.joined as f64 / elapsed.max(1e-9);
    report.joins_per_s = rate;
    Ok((
        Fleet {
            handles,
            shared,
            shutdown,
        },
        report,
    ))
}

impl Fleet {
    /// Connections currently joined and open.
    pub fn live(&self) -> u64 {
        let s = &self.shared;
        s.joined
            .load(Ordering::Relaxed)
            .saturating_sub(s.closed_after_join.load(Ordering::Relaxed))
    }

    /// Closes every connection; returns each one's final counts in order
    /// (default counts for a task that had to be aborted).
    pub async fn close(self, grace: Duration) -> Vec<ConnFinal> {
        let _ = self.shutdown.send(true);
        let until = tokio::time::Instant::now() + grace;
        let mut out = Vec::with_capacity(self.handles.len());
        for h in self.handles {
            drop(h.cmds);
            let mut task = h.task;
            match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(fin)) => out.push(fin),
                Ok(Err(_)) => out.push(ConnFinal::default()),
                Err(_) => {
                    task.abort();
                    out.push(ConnFinal::default());
                }
            }
        }
        drop(self.shutdown);
        out
    }
}

/// How a paced sending phase went.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub scheduled: u64,
    /// Commands a connection could not take (its task ended).
    pub not_scheduled: u64,
    pub timed_out: bool,
    pub send_elapsed: f64,
}

/// Hands out `total` commands at `rate` per second: command `g` goes to
/// connection `pick(g).0`. Stops at the deadline.
pub async fn pace(
    fleet: &Fleet,
    total: usize,
    rate: f64,
    deadline: Instant,
    mut pick: impl FnMut(usize) -> (usize, Cmd),
) -> Paced {
    let t0 = Instant::now();
    let dl = tokio::time::Instant::from_std(deadline);
    let mut p = Paced {
        scheduled: 0,
        not_scheduled: 0,
        timed_out: false,
        send_elapsed: 0.0,
    };
    for g in 0..total {
        #[allow(clippy::cast_precision_loss)]
        let due = t0 + Duration::from_secs_f64(g as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(due).min(dl)).await;
        }
        if Instant::now() >= deadline {
            p.timed_out = true;
            break;
        }
        let (conn, cmd) = pick(g);
        match tokio::time::timeout_at(dl, fleet.handles[conn].cmds.send(cmd)).await {
            Ok(Ok(())) => p.scheduled += 1,
            Ok(Err(_)) => p.not_scheduled += 1,
            Err(_) => {
                p.timed_out = true;
                break;
            }
        }
    }
    p.send_elapsed = t0.elapsed().as_secs_f64();
    p
}

/// Waits until `done()` or for `grace` (bounded by the deadline); `true`
/// when the global deadline cut it short.
pub async fn drain(grace: Duration, deadline: Instant, done: impl Fn() -> bool) -> bool {
    let until = (Instant::now() + grace).min(deadline);
    loop {
        if done() {
            return false;
        }
        if Instant::now() >= until {
            return until >= deadline;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Server CPU and memory over a measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    before: Option<Sample>,
}

/// What a [`Window`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub before: Option<Sample>,
    pub after: Option<Sample>,
    pub cpu_ticks: Option<u64>,
    /// Server CPU (user + system) seconds in the window.
    pub cpu_s: Option<f64>,
    /// The part of it spent in the kernel (system time: syscalls, and on
    /// loopback the TCP receive path of what the server sends).
    pub sys_share: Option<f64>,
}

impl Window {
    pub fn start(pids: &[u32]) -> Self {
        Self {
            before: sample(pids),
        }
    }

    pub fn end(self, pids: &[u32]) -> Cost {
        let after = sample(pids);
        let cpu_ticks = match (self.before, after) {
            (Some(b), Some(a)) => Some(a.cpu_ticks.saturating_sub(b.cpu_ticks)),
            _ => None,
        };
        #[allow(clippy::cast_precision_loss)]
        let cpu_s = cpu_ticks.map(|t| t as f64 / clock_ticks_per_second() as f64);
        #[allow(clippy::cast_precision_loss)]
        let sys_share = match (self.before, after, cpu_ticks) {
            (Some(b), Some(a), Some(t)) if t > 0 => {
                Some(a.sys_ticks.saturating_sub(b.sys_ticks) as f64 / t as f64)
            }
            _ => None,
        };
        Cost {
            before: self.before,
            after,
            cpu_ticks,
            cpu_s,
            sys_share,
        }
    }
}

impl Cost {
    /// Server CPU microseconds per unit of work (`None` for zero units).
    pub fn per_unit_us(&self, n: u64) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        self.cpu_s.filter(|_| n > 0).map(|s| s * 1e6 / n as f64)
    }
}
