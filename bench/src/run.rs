//! What every load scenario starts from: the run's deadline, an open-files
//! limit raised for its sockets, the server (spawned or found) and where to
//! connect ([`start_run`]), and the limits that bound a run.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cli::Common;
use crate::server::Server;
use crate::{client, load, procfs};

/// Most connections one run may open (10 source addresses × 20 000).
pub const MAX_CONNS: usize = 200_000;

/// File descriptors kept free for the runtime, stdout and `/proc` reads.
const FD_RESERVE: u64 = 64;

/// Raises our open-files limit for `conns` sockets; fails with an
/// explanation when the limit cannot cover them.
pub fn raise_fd_limit(conns: usize) -> Result<procfs::NofileLimit> {
    let want = conns as u64 + 1024;
    let got = procfs::raise_nofile(want);
    if got.soft < want {
        eprintln!(
            "bench: WARNING: could not raise the open-files limit to {want}: it is {} (hard {}); \
             raising the hard limit needs root with CAP_SYS_RESOURCE (or `ulimit -Hn` beforehand)",
            got.soft, got.hard
        );
    }
    if got.soft < conns as u64 + FD_RESERVE {
        bail!(
            "{conns} connections need about {} open files but the limit is {}: \
             lower --conns to at most {}",
            conns as u64 + FD_RESERVE,
            got.soft,
            got.soft.saturating_sub(FD_RESERVE)
        );
    }
    Ok(got)
}

/// Finds or starts the server per the common flags: `--nodes N` spawns N
/// alike (give them one `--redis-url` after `--` to scale out).
pub async fn server_for(common: &Common, conns: usize) -> Result<Server> {
    let mut server = match &common.spawn {
        Some(path) => {
            let want = conns as u64 + 4096;
            let mut nodes = Vec::new();
            for _ in 0..common.nodes.max(1) {
                let s = Server::spawn(
                    path,
                    &common.server_args,
                    common.server_log.as_deref(),
                    want,
                )
                .await?;
                if let Some(l) = s.nofile
                    && l.soft < want
                {
                    eprintln!(
                        "bench: WARNING: the server's open-files limit is {} (< {want})",
                        l.soft
                    );
                }
                eprintln!(
                    "bench: spawned server pid {} at {}",
                    s.pid.unwrap_or(0),
                    s.url
                );
                nodes.push(s);
            }
            let mut first = nodes.remove(0);
            first.more = nodes;
            first
        }
        None => {
            if !common.server_args.is_empty() {
                bail!("server arguments after `--` need --spawn");
            }
            if common.nodes > 1 {
                bail!("--nodes needs --spawn");
            }
            Server::external(common.url.clone(), common.server_pid)?
        }
    };
    server.extra_pids.clone_from(&common.also_sample);
    Ok(server)
}

/// What every load scenario starts from: its deadline, raised file limit,
/// the server (spawned or found) and where to connect.
pub struct Run {
    pub deadline: Instant,
    pub fds: procfs::NofileLimit,
    pub server: Server,
    pub targets: Vec<std::sync::Arc<client::Target>>,
    pub target: std::sync::Arc<client::Target>,
    pub pids: Vec<u32>,
    /// Tags room names so runs against one server never share a room.
    pub run_id: u32,
    /// How to open the connections, from the common flags.
    pub spec: load::FillSpec,
}

/// Sets a scenario up for `conns` connections; a freshly spawned server
/// gets half a second to settle before anything is measured.
pub async fn start_run(common: &Common, conns: usize) -> Result<Run> {
    let deadline = deadline(common);
    let fds = raise_fd_limit(conns)?;
    let server = server_for(common, conns).await?;
    let targets = server.targets()?;
    let target = targets[0].clone();
    let pids = server.pids();
    if common.spawn.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let spec = load::FillSpec {
        conns,
        concurrency: common.concurrency,
        conns_per_source_ip: common.conns_per_source_ip,
        wait_connect: !common.no_wait_connect,
        join_timeout: Duration::from_secs(common.join_timeout.max(1)),
        deadline,
    };
    Ok(Run {
        deadline,
        fds,
        server,
        targets,
        target,
        pids,
        run_id: std::process::id(),
        spec,
    })
}

/// The run's global deadline.
pub fn deadline(common: &Common) -> Instant {
    Instant::now() + Duration::from_secs(common.timeout.max(1))
}

/// Sleeps `d`, but not past `deadline`; `false` if the deadline cut it.
pub async fn sleep_bounded(d: Duration, deadline: Instant) -> bool {
    let until = Instant::now() + d;
    if until <= deadline {
        tokio::time::sleep(d).await;
        true
    } else {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
        false
    }
}
