//! `signal-server`: parse the configuration, install logging, bind, serve.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use signal_server::Cli;
use tokio::net::{TcpListener, TcpSocket};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // webrtc-rs logs expected transient states (SRTP not keyed yet) as warnings.
            EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new(
                    "info,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,webrtc=error",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();

    let addr = cli.addr();
    let listener =
        bind(addr, cli.listen_backlog).with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    // The one line on stdout: scripts and tests read the chosen port from it.
    println!("signal-server listening on http://{local}");
    tracing::info!(%local, static_dir = %cli.static_dir.display(), "serving");

    signal_server::run(listener, cli.config(), shutdown_signal())
        .await
        .context("server failed")
}

/// A listener with a backlog sized for connection bursts (the default 128
/// drops SYNs when thousands of clients reconnect at once).
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Resolves on Ctrl-C or SIGTERM (what Heroku sends before stopping a dyno).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
