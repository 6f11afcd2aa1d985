//! The signaling server: socket.io rooms that relay WebRTC signals, chat,
//! typing and presence (see `PROTOCOL.md`), plus the HTTP routes the web
//! client needs.
//!
//! Pipeline: socket.io packet → [`events`] (validate with the `protocol`
//! crate, rate and size limits) → [`registry`] (rooms, peers, history) →
//! relay to the addressed peer or the room → ack.
//!
//! [`app`] builds the router without a socket so tests can drive it;
//! [`run`] serves it on a listener until a shutdown signal.

mod config;
mod events;
mod http;
mod metrics;
pub mod redis_driver;
pub mod redis_store;
pub mod registry;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use tokio::net::TcpListener;

pub use config::{Cli, Config, IceConfig, Limits};
pub use metrics::Metrics;
use registry::{Registry, RoomLimits};

/// State shared by every socket and HTTP handler.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub metrics: Metrics,
    /// One lock for all rooms: every operation under it is a few map
    /// lookups and non-blocking queue pushes, never an await.
    registry: Mutex<Registry<Sid>>,
    /// The SFU room of each SFU-mode room (one webrtc-rs task per room).
    sfu_rooms: Mutex<HashMap<protocol::RoomName, sfu::RoomHandle>>,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let registry = Registry::new(RoomLimits {
            max_peers: config.limits.max_peers_per_room,
            history: config.limits.history,
        });
        Self {
            config,
            metrics: Metrics::default(),
            registry: Mutex::new(registry),
            sfu_rooms: Mutex::new(HashMap::new()),
        }
    }

    fn lock_sfu(&self) -> MutexGuard<'_, HashMap<protocol::RoomName, sfu::RoomHandle>> {
        self.sfu_rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// SFU counters for `/metrics`, per room and in total.
    pub fn sfu_metrics(&self) -> String {
        let rooms = self.lock_sfu();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP signal_sfu_rooms Rooms whose media goes through the SFU.\n\
             # TYPE signal_sfu_rooms gauge\nsignal_sfu_rooms {}",
            rooms.len()
        );
        let series = [
            ("rtp_in", "RTP packets received from publishers"),
            ("rtp_out", "RTP packets forwarded to subscribers"),
            ("rtp_dropped", "RTP packets a slow subscriber missed"),
            ("pli_to_publishers", "keyframe requests sent to publishers"),
            (
                "tracks_refused",
                "tracks not forwarded (publisher over the per-peer limit)",
            ),
        ];
        for (name, help) in series {
            let _ = writeln!(
                out,
                "# HELP signal_sfu_{name}_total SFU: {help}.\n# TYPE signal_sfu_{name}_total counter"
            );
            for (room, h) in rooms.iter() {
                let m = &h.metrics;
                let v = match name {
                    "rtp_in" => m.rtp_in.load(Ordering::Relaxed),
                    "rtp_out" => m.rtp_out.load(Ordering::Relaxed),
                    "rtp_dropped" => m.rtp_dropped_slow.load(Ordering::Relaxed),
                    "tracks_refused" => m.tracks_refused.load(Ordering::Relaxed),
                    _ => m.pli_to_publishers.load(Ordering::Relaxed),
                };
                let _ = writeln!(out, "signal_sfu_{name}_total{{room=\"{room}\"}} {v}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP signal_sfu_published_tracks SFU: tracks being forwarded.\n# TYPE signal_sfu_published_tracks gauge"
        );
        for (room, h) in rooms.iter() {
            let n = h.metrics.published_tracks.load(Ordering::Relaxed);
            let _ = writeln!(out, "signal_sfu_published_tracks{{room=\"{room}\"}} {n}");
        }
        let peers: Vec<_> = rooms
            .iter()
            .map(|(room, h)| (room, h.metrics.peer_snapshot()))
            .collect();
        type Field = fn(&sfu::PeerSnapshot) -> u64;
        let per_peer: [(&str, &str, Field); 7] = [
            ("rtp_in", "RTP packets received from this publisher", |s| {
                s.rtp_in
            }),
            (
                "bytes_in",
                "RTP payload bytes received from this publisher",
                |s| s.bytes_in,
            ),
            (
                "lost_in",
                "packets missing in this publisher's sequence numbers",
                |s| s.lost_in,
            ),
            ("rtp_out", "RTP packets forwarded to this subscriber", |s| {
                s.rtp_out
            }),
            (
                "bytes_out",
                "RTP payload bytes forwarded to this subscriber",
                |s| s.bytes_out,
            ),
            (
                "dropped_out",
                "packets this subscriber missed (its queue was full)",
                |s| s.dropped_out,
            ),
            (
                "lost_out",
                "packets this subscriber reports lost (RTCP receiver reports)",
                |s| s.lost_out,
            ),
        ];
        for (name, help, field) in per_peer {
            let _ = writeln!(
                out,
                "# HELP signal_sfu_peer_{name}_total SFU, per peer: {help}.\n# TYPE signal_sfu_peer_{name}_total counter"
            );
            for (room, snaps) in &peers {
                for (peer, snap) in snaps {
                    let _ = writeln!(
                        out,
                        "signal_sfu_peer_{name}_total{{room=\"{room}\",peer=\"{peer}\"}} {}",
                        field(snap)
                    );
                }
            }
        }
        out
    }

    /// The registry holds no invariant a panic could break halfway
    /// (each operation checks before it mutates), so a poisoned lock is usable.
    fn lock_registry(&self) -> MutexGuard<'_, Registry<Sid>> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds the whole application: socket.io at `/socket.io/`, the HTTP
/// routes, and the static web client.
pub fn app(config: Config) -> (Router, SocketIo) {
    let limits = config.limits;
    let transport_limit = limits.max_message_bytes.saturating_mul(4);
    let (layer, io) = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_buffer_size(limits.send_buffer)
        .max_payload(transport_limit as u64)
        .ws_max_message_size(transport_limit)
        .ws_max_frame_size(transport_limit)
        .ws_read_buffer_size(config.ws_read_buffer)
        .build_layer();
    let state = Arc::new(AppState::new(config));
    io.ns("/", events::Connect(state.clone()));
    (http::router(state, layer), io)
}

/// Serves on `listener` until `shutdown` completes, then disconnects every
/// socket and waits (at most a few seconds) for connections to close.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, io) = app(config);
    // Without TCP_NODELAY small relays wait on delayed ACKs (~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: disconnecting every socket");
        io.close().await;
        let _ = closed_tx.send(());
    };
    let serve = axum::serve(listener, router).with_graceful_shutdown(graceful);
    tokio::select! {
        res = serve => res,
        // Upgraded WebSockets are not tracked by the graceful drain: bound the wait.
        _ = async {
            let _ = closed_rx.await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } => Ok(()),
    }
}
