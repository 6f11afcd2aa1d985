use std::process::ExitCode;
use std::time::Duration;

use bench::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (threads, timeout) = match &cli.cmd {
        Command::Connect(a) => (a.common.threads, a.common.timeout),
        Command::Chat(a) => (a.common.threads, a.common.timeout),
        Command::Signal(a) => (a.common.threads, a.common.timeout),
        Command::Sfu(a) => (a.common.threads, a.common.timeout),
        // Each of its runs is a child process with its own deadline.
        Command::Compare(_) => (1, 6 * 3600),
        // One thread, in memory, no server.
        Command::RtcPath(_) | Command::Shard(_) => (1, 600),
    };
    let threads = threads.clamp(1, 64);
    // Hard stop a little after the run's own deadline, whatever happens.
    let hard_limit = Duration::from_secs(timeout.max(1) + 30);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let run = async move {
            match cli.cmd {
                Command::Connect(a) => bench::connect::run(a).await,
                Command::Chat(a) => bench::chat::run(a).await,
                Command::Signal(a) => bench::signal::run(a).await,
                Command::Sfu(a) => bench::sfu_load::run(a).await,
                Command::RtcPath(a) => bench::rtc_path::run(&a).map(|()| true),
                // Its own threads, blocking: off the runtime's workers.
                Command::Shard(a) => {
                    tokio::task::spawn_blocking(move || bench::shard_load::run(&a))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|r| r)
                }
                Command::Compare(a) => match &a.render_only {
                    Some(results) => bench::compare::rerender(&a, results).map(|md| {
                        println!("{md}");
                        true
                    }),
                    None if a.soak_secs > 0 => bench::compare::soak(&a).await,
                    None => bench::compare::run(a).await,
                },
            }
        };
        tokio::time::timeout(hard_limit, run).await
    });
    // Do not wait for connection tasks still parked somewhere.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::from(1),
        Ok(Err(e)) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("bench: hard timeout after {hard_limit:?}");
            ExitCode::from(2)
        }
    }
}
