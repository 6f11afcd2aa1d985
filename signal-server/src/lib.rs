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

mod cluster;
mod config;
pub mod conn_limit;
mod events;
mod http;
mod metrics;
pub mod redis_driver;
pub mod redis_store;
pub mod registry;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use tokio::net::TcpListener;

pub use cluster::UPKEEP_EVERY;
pub use config::{Cli, Config, IceConfig, Limits, RedisConfig};
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
    /// Set when scaled out on Redis: room state lives there, not in `registry`.
    cluster: Option<cluster::Cluster>,
    /// Sessions per client address.
    pub conn_limiter: Arc<conn_limit::ConnLimiter>,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        Self::with_cluster(config, None)
    }

    fn with_cluster(config: Config, cluster: Option<cluster::Cluster>) -> Self {
        let registry = Registry::new(RoomLimits {
            max_peers: config.limits.max_peers_per_room,
            history: config.limits.history,
        });
        let conn_limiter =
            conn_limit::ConnLimiter::new(config.limits.max_conns_per_ip, config.trust_proxy);
        Self {
            conn_limiter,
            config,
            metrics: Metrics::default(),
            registry: Mutex::new(registry),
            sfu_rooms: Mutex::new(HashMap::new()),
            cluster,
        }
    }

    /// Rooms and memberships for `/metrics`: all of them on a single node;
    /// when scaled out, those of this node's sockets.
    pub fn room_counts(&self) -> (usize, usize) {
        match &self.cluster {
            Some(c) => c.local_counts(),
            None => {
                let reg = self.lock_registry();
                (reg.room_count(), reg.peer_count())
            }
        }
    }

    /// Redis health, when scaled out: `None` on a single node.
    pub fn redis_up(&self) -> Option<bool> {
        self.cluster.as_ref().map(|c| c.health.is_up())
    }

    /// Redis series for `/metrics` (empty on a single node).
    pub fn redis_metrics(&self) -> String {
        let Some(c) = &self.cluster else {
            return String::new();
        };
        let h = &c.health;
        format!(
            "# HELP signal_redis_up 1 while this node is connected to Redis.\n\
             # TYPE signal_redis_up gauge\nsignal_redis_up {}\n\
             # HELP signal_redis_connects_total Connections made to Redis (reconnects included).\n\
             # TYPE signal_redis_connects_total counter\nsignal_redis_connects_total {}\n\
             # HELP signal_redis_errors_total Redis calls that failed, and connections lost.\n\
             # TYPE signal_redis_errors_total counter\nsignal_redis_errors_total {}\n",
            u8::from(h.is_up()),
            h.connects.load(Ordering::Relaxed),
            h.errors.load(Ordering::Relaxed),
        )
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

/// What [`app`] hands back to stop the server: awaiting it retires this node
/// (scale-out) and disconnects every socket.
pub type Closer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds the whole application: socket.io at `/socket.io/`, the HTTP
/// routes, and the static web client. With `config.redis`, socket.io runs on
/// the Redis adapter and rooms live in Redis (see [`cluster`]); a Redis that
/// is down is not an error here (the node serves and reconnects), a
/// malformed URL is.
pub async fn app(config: Config) -> anyhow::Result<(Router, Closer)> {
    let limits = config.limits;
    let transport_limit = limits.max_message_bytes.saturating_mul(4);
    let builder = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        // A session that never connects to the namespace holds its
        // per-address slot until this fires (default 45 s); real clients
        // connect within milliseconds of the handshake.
        .connect_timeout(Duration::from_secs(10))
        .max_buffer_size(limits.send_buffer)
        .max_payload(transport_limit as u64)
        .ws_max_message_size(transport_limit)
        .ws_max_frame_size(transport_limit)
        .ws_read_buffer_size(config.ws_read_buffer);
    let Some(redis) = config.redis.clone() else {
        let (layer, io) = builder.build_layer();
        let state = Arc::new(AppState::new(config));
        io.ns("/", events::Connect(state.clone()));
        let closer: Closer = Box::pin(async move { io.close().await });
        return Ok((http::router(state, layer), closer));
    };
    let client = redis_client(&redis.url)?;
    let driver = redis_driver::ReconnectingDriver::start(client).await;
    if !driver.health().is_up() {
        tracing::error!("redis is unreachable; serving anyway and reconnecting in the background");
    }
    if config.sfu.is_some() {
        tracing::warn!("SFU rooms are not available when scaled out on Redis; only mesh rooms");
    }
    let node = uuid::Uuid::new_v4().to_string();
    let store = redis_store::RedisStore::new(
        driver.clone(),
        &redis.prefix,
        &node,
        RoomLimits {
            max_peers: limits.max_peers_per_room,
            history: limits.history,
        },
    );
    let cluster = cluster::Cluster::new(store, driver.health());
    let adapter_config =
        socketioxide_redis::RedisAdapterConfig::new().with_prefix(format!("{}-sio", redis.prefix));
    let ctr = socketioxide_redis::RedisAdapterCtr::new_with_driver(driver, adapter_config);
    let (layer, io) = builder
        .with_adapter::<socketioxide_redis::CustomRedisAdapter<_, redis_driver::ReconnectingDriver>>(ctr)
        .build_layer();
    let state = Arc::new(AppState::with_cluster(config, Some(cluster)));
    io.ns("/", events::Connect(state.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("socket.io namespace on redis: {e}"))?;
    tracing::info!(node, prefix = %redis.prefix, "scaled out on redis");
    let upkeep = tokio::spawn(cluster::upkeep(state.clone(), io.clone()));
    let closer_state = state.clone();
    let closer: Closer = Box::pin(async move {
        upkeep.abort();
        cluster::retire(&closer_state, &io).await;
        io.close().await;
    });
    Ok((http::router(state, layer), closer))
}

/// A Redis client for `url`, always on RESP3 (the adapter's subscriptions
/// arrive as pushes on the command connection).
fn redis_client(url: &str) -> anyhow::Result<redis::Client> {
    use redis::IntoConnectionInfo;
    // rustls needs a process-wide crypto provider for `rediss://` (ring is
    // the only one built in); an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let info = url
        .into_connection_info()
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(settings);
    redis::Client::open(info).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))
}

/// Serves on `listener` until `shutdown` completes, then disconnects every
/// socket and waits (at most a few seconds) for connections to close.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // A client that stops reading (zero TCP window) would otherwise hold its
    // connection, and its room membership, forever: Engine.IO's ping timeout
    // closes the session, but its writer stays blocked on the full socket and
    // the disconnect never runs. The kernel aborts a connection whose data
    // goes unacknowledged this long; the bound is the ping's own.
    let user_timeout = config.ping_interval + config.ping_timeout;
    let (router, close) = app(config).await?;
    let listener = listener.tap_io(move |tcp| {
        // Without TCP_NODELAY small relays wait on delayed ACKs (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
        #[cfg(target_os = "linux")]
        if let Err(e) = socket2::SockRef::from(&*tcp).set_tcp_user_timeout(Some(user_timeout)) {
            tracing::warn!("cannot set TCP_USER_TIMEOUT: {e}");
        }
    });
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: disconnecting every socket");
        close.await;
        let _ = closed_tx.send(());
    };
    // The peer address feeds the per-address connection limit.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serve = axum::serve(listener, service).with_graceful_shutdown(graceful);
    tokio::select! {
        res = serve => Ok(res?),
        // Upgraded WebSockets are not tracked by the graceful drain: bound the wait.
        _ = async {
            let _ = closed_rx.await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        } => Ok(()),
    }
}
