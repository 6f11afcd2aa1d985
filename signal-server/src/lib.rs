//! The signaling server: socket.io rooms that relay WebRTC signals, chat,
//! typing and presence (see `PROTOCOL.md`), plus the HTTP routes the web
//! client needs. The layers (docs/architecture.md):
//!
//! - [`session`]: the wire. Reads each event of a socket (rate, size,
//!   shape), and schedules the socket's events: inline on its read loop on
//!   one node, or queued for the socket's own task when the room state is
//!   remote.
//! - [`handlers`]: one file per event, written once against two seams:
//!   [`rooms`] (room state and its rules: in memory, or in Redis) and
//!   [`delivery`] (how an event reaches a socket: the local adapter, or
//!   socketioxide-redis across nodes).
//! - [`node`]: a node's store, delivery and SFU rooms, over an
//!   [`node::Engine`] ([`engines::Single`] or [`engines::Scaled`]);
//!   [`upkeep`] keeps a scaled-out node's membership in Redis honest.
//!
//! [`app`] builds the router without a socket so tests can drive it;
//! [`run`] serves it on a listener until a shutdown signal.

mod ack;
mod client_addr;
mod closed_sessions;
mod config;
pub mod conn_limit;
mod delivery;
mod engines;
mod handlers;
mod http;
mod immediate;
mod metrics;
mod node;
mod origin;
mod qr;
mod rate_limit;
pub mod redis_driver;
pub mod rooms;
mod serve;
mod session;
mod sfu_link;
mod sfu_rooms;
mod state;
mod static_files;
mod upkeep;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::SocketIo;
use tokio::net::TcpListener;

pub use config::{Cli, Config, IceConfig, Limits, RedisConfig};
pub use upkeep::UPKEEP_EVERY;

use delivery::{ClusterDelivery, LocalDelivery};
use engines::{RedisAdapter, Scaled, Single};
use handlers::EventKind;
use node::Node;
use rooms::{LocalStore, RedisStore, RoomLimits};
use session::Connect;
use state::AppState;

/// Events kept per held seat (PROTOCOL.md: at least the last 256).
const KEPT_EVENTS: usize = 256;

/// What [`app`] hands back to stop the server: awaiting it retires this node
/// (scale-out) and disconnects every socket.
pub type Closer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds the whole application: socket.io at `/socket.io/`, the HTTP
/// routes, and the static web client. With `config.redis`, socket.io runs on
/// the Redis adapter and rooms live in Redis; a Redis that is down is not an
/// error here (the node serves and reconnects), a malformed URL is.
pub async fn app(config: Config) -> anyhow::Result<(Router, Closer)> {
    build(config, Arc::default()).await
}

/// [`app`], counting into `counters` what HTTP closes and refuses (the
/// server loop of [`run`] counts its connections there too).
async fn build(
    config: Config,
    counters: Arc<metrics::HttpCounters>,
) -> anyhow::Result<(Router, Closer)> {
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
    // Scaled out, each SFU room is hosted by one node that runs the SFU
    // (docs/sfu-scale-out.md).
    let sfu = config
        .sfu
        .clone()
        .map(sfu::Sfu::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("cannot start the SFU: {e}"))?;
    let room_limits = RoomLimits {
        max_peers: limits.max_peers_per_room,
        history: limits.history,
        history_bytes: limits.history_bytes,
        history_bytes_per_ip: limits.history_bytes_per_ip,
        rooms_per_conn: limits.max_rooms_per_socket,
        resume_grace: config.resume_grace,
        // A held seat keeps what a live socket may have queued.
        kept_events: KEPT_EVENTS,
        kept_bytes: limits.send_buffer_bytes,
        // Scaled out, the join script checks that some SFU node lives.
        sfu: match (&config.sfu, &config.redis) {
            (Some(_), None) | (_, Some(_)) => Ok(()),
            (None, None) => Err("SFU mode is not enabled on this server; join with mode \"mesh\""),
        },
    };
    let Some(redis) = config.redis.clone() else {
        let (layer, io) = builder.build_layer();
        let state = Arc::new(AppState::new(config, EventKind::LABELS));
        let out = LocalDelivery::new(io.clone(), state.clone());
        let node = Arc::new(Node::<Single>::new(
            state,
            LocalStore::new(room_limits),
            out,
            sfu,
            None,
            None,
        ));
        io.ns("/", Connect(node.clone()));
        let expiry = tokio::spawn(upkeep::expire_holds(node.clone()));
        let closer: Closer = Box::pin(async move {
            expiry.abort();
            io.close().await
        });
        return Ok((http::router(node, layer, counters), closer));
    };
    let client = redis_client(&redis.url)?;
    let driver = redis_driver::ReconnectingDriver::start(client).await;
    if !driver.health().is_up() {
        tracing::error!("redis is unreachable; serving anyway and reconnecting in the background");
    }
    let name = uuid::Uuid::new_v4().to_string();
    let sfu_link = sfu_link::SfuLink::new(driver.clone(), &redis.prefix, name.as_str().into());
    let store = RedisStore::new(driver.clone(), &redis.prefix, &name, room_limits);
    let health = driver.health();
    let adapter_config =
        socketioxide_redis::RedisAdapterConfig::new().with_prefix(format!("{}-sio", redis.prefix));
    let ctr = socketioxide_redis::RedisAdapterCtr::new_with_driver(driver, adapter_config);
    let (layer, io) = builder.with_adapter::<RedisAdapter>(ctr).build_layer();
    let state = Arc::new(AppState::new(config, EventKind::LABELS));
    let out = ClusterDelivery::new(io.clone(), store.node().clone(), state.clone());
    let node = Arc::new(Node::<Scaled>::new(
        state,
        store,
        out,
        sfu,
        Some(sfu_link.clone()),
        Some(health),
    ));
    io.ns("/", Connect(node.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("socket.io namespace on redis: {e}"))?;
    tracing::info!(node = name, prefix = %redis.prefix, "scaled out on redis");
    // Its SFU is known to the other nodes before it says it listens.
    upkeep::announce_sfu(&node).await;
    let upkeep = tokio::spawn(upkeep::run(node.clone()));
    let expiry = tokio::spawn(upkeep::expire_holds(node.clone()));
    let sfu_upkeep = tokio::spawn(upkeep::sfu(node.clone()));
    let inbox = sfu_link
        .inbox()
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to the SFU channels on redis: {e}"))?;
    let sfu_inbox = tokio::spawn(handlers::serve_sfu_inbox(node.clone(), inbox));
    let retiring = node.clone();
    let closer: Closer = Box::pin(async move {
        upkeep.abort();
        expiry.abort();
        sfu_upkeep.abort();
        sfu_inbox.abort();
        upkeep::retire(&retiring).await;
        io.close().await;
    });
    Ok((http::router(node, layer, counters), closer))
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
///
/// HTTP connections have a deadline for each request head and one for
/// idling between requests (`Config::http_header_timeout`,
/// `Config::http_idle_timeout`; `serve.rs`); upgraded WebSockets are bound
/// by the Engine.IO heartbeat instead.
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
    let timeouts = serve::Timeouts {
        header: config.http_header_timeout,
        idle: config.http_idle_timeout,
    };
    let counters = Arc::new(metrics::HttpCounters::default());
    let (router, close) = build(config, counters.clone()).await?;
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
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: disconnecting every socket");
        close.await;
    };
    // Upgraded WebSockets are not HTTP connections any more (the close above
    // ends them): the drain waits only for HTTP requests, and not forever.
    serve::serve(
        listener,
        router,
        timeouts,
        counters,
        graceful,
        Duration::from_secs(5),
    )
    .await;
    Ok(())
}
