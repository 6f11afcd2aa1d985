//! The server under test: either a PID we were given, a binary we spawn
//! on a free port, or unknown (then no RSS/CPU numbers).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::procfs::{self, NofileLimit};

/// How long a spawned server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING: &str = "signal-server listening on ";

#[derive(Debug)]
pub struct Server {
    pub pid: Option<u32>,
    pub url: String,
    pub nofile: Option<NofileLimit>,
    child: Option<Child>,
    /// The other nodes of a scaled-out run (`--nodes`), spawned alike.
    pub more: Vec<Server>,
    /// Processes whose CPU and memory count as the server's too (`--also-sample`, e.g. redis-server).
    pub extra_pids: Vec<u32>,
}

impl Server {
    /// A server someone else runs.
    pub fn external(url: String, pid: Option<u32>) -> Result<Self> {
        if let Some(pid) = pid {
            procfs::rss_bytes(pid).with_context(|| format!("--server-pid {pid}"))?;
        }
        let nofile = pid.and_then(|p| procfs::nofile_of(p).ok());
        Ok(Self {
            pid,
            url,
            nofile,
            child: None,
            more: Vec::new(),
            extra_pids: Vec::new(),
        })
    }

    /// Spawns `path --host 127.0.0.1 --port 0 ARGS…`, waits for its
    /// listening line and raises its open-files limit to `want_fds`.
    pub async fn spawn(
        path: &Path,
        args: &[String],
        log: Option<&Path>,
        want_fds: u64,
    ) -> Result<Self> {
        let stderr = match log {
            Some(p) => Stdio::from(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ),
            None => Stdio::null(),
        };
        // Every connection of the load comes from a few loopback addresses,
        // standing for thousands of clients: the per-address bounds are
        // lifted (the per-socket ones stay). The Node.js reference ignores
        // the flags it does not know.
        let per_address: [(&str, &str); 3] = [
            ("--max-conns-per-ip", "0"),
            ("--send-buffer-bytes-per-ip", "1073741824"),
            ("--history-bytes-per-ip", "1073741824"),
        ];
        let unlimited: Vec<&str> = per_address
            .iter()
            .filter(|(flag, _)| !args.iter().any(|a| a.starts_with(flag)))
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        let mut child = Command::new(path)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(&unlimited)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", path.display()))?;
        let pid = child.id().context("spawned server has no pid")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(i) = line.find(LISTENING) {
                    return Ok(line[i + LISTENING.len()..].trim().to_owned());
                }
            }
            bail!("server exited without printing {LISTENING:?}")
        })
        .await
        .context("server did not print its listening line within 30 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let nofile = match procfs::raise_nofile_of(pid, want_fds) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("bench: could not raise the server's open-files limit: {e:#}");
                procfs::nofile_of(pid).ok()
            }
        };
        Ok(Self {
            pid: Some(pid),
            url,
            nofile,
            child: Some(child),
            more: Vec::new(),
            extra_pids: Vec::new(),
        })
    }

    /// Every process measured as "the server": all nodes, plus `extra_pids`.
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.pid.into_iter().collect();
        v.extend(self.more.iter().filter_map(|s| s.pid));
        v.extend(&self.extra_pids);
        v
    }

    /// Every node as a connection target; connection `i` goes to `[i % len]`.
    pub fn targets(&self) -> Result<Vec<std::sync::Arc<crate::client::Target>>> {
        std::iter::once(&self.url)
            .chain(self.more.iter().map(|s| &s.url))
            .map(|u| crate::client::Target::parse(u).map(std::sync::Arc::new))
            .collect()
    }

    /// Stops a spawned server and its other nodes (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop(mut self) {
        for node in std::mem::take(&mut self.more) {
            Box::pin(node.stop()).await;
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

/// CPU and memory of the server at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub rss: u64,
    /// User + system.
    pub cpu_ticks: u64,
    /// System (kernel) only.
    pub sys_ticks: u64,
}

/// The sum over `pids` (all of them, or `None`).
pub fn sample(pids: &[u32]) -> Option<Sample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = Sample {
        rss: 0,
        cpu_ticks: 0,
        sys_ticks: 0,
    };
    for &pid in pids {
        match (procfs::rss_bytes(pid), procfs::cpu_times(pid)) {
            (Ok(rss), Ok((user, sys))) => {
                total.rss += rss;
                total.cpu_ticks += user + sys;
                total.sys_ticks += sys;
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("bench: cannot sample server {pid}: {e:#}");
                return None;
            }
        }
    }
    Some(total)
}
