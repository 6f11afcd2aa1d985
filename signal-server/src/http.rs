//! HTTP routes: health, ICE configuration (with a budget per client
//! address), metrics, and the web client (`static_files.rs`); in front of
//! socket.io, the per-address connection limit and the handshake's `Origin`
//! check (`origin.rs`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use socketioxide::layer::SocketIoLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::client_addr;
use crate::config::IceConfig;
use crate::metrics::{HttpCounters, render_redis};
use crate::node::NodeStats;
use crate::origin::OriginPolicy;
use crate::rate_limit::PerMinute;
use crate::static_files;

/// What the HTTP routes read of the node.
type Node = Arc<dyn NodeStats>;

/// `counters`: what HTTP closes and refuses, shown by `/metrics`.
pub fn router<A: socketioxide::adapter::Adapter>(
    state: Node,
    socketio: SocketIoLayer<A>,
    counters: Arc<HttpCounters>,
) -> Router {
    let config = &state.state().config;
    let client = static_files::service(config.static_dir.clone());
    let cors = cors(&config.cors_origins);
    let origins = Arc::new(OriginPolicy::new(
        &config.cors_origins,
        config.trust_proxy,
        counters.clone(),
    ));
    let config_budget = Arc::new(ConfigBudget {
        per_addr: PerMinute::new(config.limits.config_requests_per_min),
        trust_proxy: config.trust_proxy,
        counters: counters.clone(),
    });
    let limiter = state.state().conn_limiter.clone();
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/api/config",
            get(api_config).route_layer(axum::middleware::from_fn_with_state(
                config_budget,
                within_budget,
            )),
        )
        .route("/api/qr", get(crate::qr::qr))
        .route("/metrics", get(metrics).layer(Extension(counters)))
        .fallback_service(client)
        .with_state(state)
        .layer(socketio)
        // Outside the socket.io layer: runs first.
        .layer(axum::middleware::map_request(detach_request))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            crate::conn_limit::middleware,
        ))
        // Before a slot is reserved: a refused handshake costs nothing.
        .layer(axum::middleware::from_fn_with_state(
            origins,
            crate::origin::middleware,
        ));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Copies the request line and headers out of hyper's read buffer.
///
/// hyper parses them zero-copy: header values and the URI are slices of the
/// connection's 8–16 KB read buffer. socket.io keeps the request parts of
/// every socket for its whole life (`req_parts()`), which kept that entire
/// buffer alive per connection — over half of the memory of an idle
/// WebSocket (measured with massif). Owned copies are a few hundred bytes.
async fn detach_request(req: Request) -> Request {
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    // axum stores a clone of the original URI too.
    if let Some(original) = parts.extensions.get_mut::<OriginalUri>() {
        *original = OriginalUri(parts.uri.clone());
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        headers.append(name, value);
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
}

/// Sent with every HTTP answer. The client is same-origin only: no framing,
/// no sniffing, no referrer to other sites.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self)",
    ),
];

/// CORS is closed unless origins are configured.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE]),
    )
}

/// `RTCIceServer`, as the browser's `RTCPeerConnection` takes it.
#[derive(Debug, Serialize, PartialEq)]
struct IceServer {
    urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientConfig {
    ice_servers: Vec<IceServer>,
    modes: Vec<protocol::Mode>,
    default_mode: protocol::Mode,
    /// The largest file browsers send each other, bytes.
    file_max_bytes: u64,
    /// SFU rooms take simulcast: publish layers, say the size shown
    /// (`sfu-view`). Absent or false: publish one layer.
    simulcast: bool,
}

/// `/api/config`'s budget per client address (`CONFIG_REQUESTS_PER_MIN`).
#[derive(Debug)]
struct ConfigBudget {
    per_addr: PerMinute,
    trust_proxy: bool,
    counters: Arc<HttpCounters>,
}

/// Answers `429` with `Retry-After` to an address past its budget.
async fn within_budget(
    State(budget): State<Arc<ConfigBudget>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(ip) = client_addr::of_request(&req, budget.trust_proxy) else {
        return next.run(req).await;
    };
    let Err(wait) = budget.per_addr.take(ip, tokio::time::Instant::now()) else {
        return next.run(req).await;
    };
    budget.counters.config_limited();
    tracing::debug!(%ip, "/api/config refused: over the per-address budget");
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, secs.max(1).to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        format!(
            "too many /api/config requests from this address (at most {} a minute)",
            budget.per_addr.per_min()
        ),
    )
        .into_response()
}

async fn api_config(State(node): State<Node>) -> impl IntoResponse {
    let config = &node.state().config;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // What a join may create: SFU rooms when this node, or scaled out some
    // node, runs the SFU (docs/sfu-scale-out.md).
    let mut modes = vec![protocol::Mode::Mesh];
    if node.sfu_enabled() {
        modes.push(protocol::Mode::Sfu);
    }
    let body = ClientConfig {
        ice_servers: ice_servers(&config.ice, now, &uuid::Uuid::new_v4().simple().to_string()),
        modes,
        default_mode: config.default_mode,
        file_max_bytes: config.file_max_bytes,
        simulcast: node.sfu_simulcast(),
    };
    // Minted credentials must not be cached or shared.
    ([(header::CACHE_CONTROL, "no-store")], Json(body))
}

/// STUN entries as configured; TURN with static credentials, or with
/// credentials minted from the shared secret as coturn's `use-auth-secret`
/// expects: `username = "<expiry>:<user>"`, `credential = base64(HMAC-SHA1(secret, username))`.
fn ice_servers(ice: &IceConfig, now_secs: u64, user: &str) -> Vec<IceServer> {
    let mut out = Vec::new();
    if !ice.stun_urls.is_empty() {
        out.push(IceServer {
            urls: ice.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if !ice.turn_urls.is_empty() {
        let (username, credential) = match &ice.turn_secret {
            Some(secret) => {
                let username = format!("{}:{user}", now_secs + ice.turn_ttl.as_secs());
                (
                    Some(username.clone()),
                    Some(turn_credential(secret, &username)),
                )
            }
            None => (ice.turn_username.clone(), ice.turn_credential.clone()),
        };
        out.push(IceServer {
            urls: ice.turn_urls.clone(),
            username,
            credential,
        });
    }
    out
}

fn turn_credential(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// 200 `ok`; 503 while a scaled-out node cannot reach Redis (a load
/// balancer should send new clients to a node that can).
async fn healthz(State(node): State<Node>) -> (StatusCode, &'static str) {
    match node.redis() {
        Some(r) if !r.up => (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded: redis unreachable (reconnecting)",
        ),
        _ => (StatusCode::OK, "ok"),
    }
}

/// Aggregates only: no series names a room or a peer (`metrics.rs`).
async fn metrics(
    State(node): State<Node>,
    Extension(counters): Extension<Arc<HttpCounters>>,
) -> impl IntoResponse {
    let state = node.state();
    let (rooms, peers) = node.room_counts();
    let mut text = String::with_capacity(8192);
    state
        .metrics
        .render(&mut text, rooms, peers, node.held_seats());
    state
        .metrics
        .render_sfu(&mut text, &node.sfu(), node.sfu_tallied());
    counters.render(&mut text);
    if let Some(redis) = node.redis() {
        render_redis(&mut text, redis);
    }
    let limiter = &state.conn_limiter;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    text.push_str(&format!(
        "# HELP signal_connections_refused_total New connections refused: too many from one address.\n\
         # TYPE signal_connections_refused_total counter\nsignal_connections_refused_total {}\n\
         # HELP signal_send_overflow_total Sockets disconnected because what waited for them crossed SEND_BUFFER_BYTES or SEND_BUFFER_BYTES_PER_IP.\n\
         # TYPE signal_send_overflow_total counter\nsignal_send_overflow_total {}\n",
        load(&limiter.refused),
        load(&limiter.queue_overflows),
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn turn_credentials_follow_coturn_rest_api() {
        // Known answer, computed independently:
        // printf '%s' '1700086400:alice' | openssl dgst -sha1 -hmac s3cret -binary | base64
        assert_eq!(
            turn_credential("s3cret", "1700086400:alice"),
            "HJX0XIkrCiQCuU88Z0oeXj+QW60="
        );
        let ice = IceConfig {
            stun_urls: vec!["stun:s:3478".into()],
            turn_urls: vec!["turn:t:3478".into()],
            turn_secret: Some("s3cret".into()),
            turn_ttl: Duration::from_secs(86_400),
            ..IceConfig::default()
        };
        let servers = ice_servers(&ice, 1_700_000_000, "alice");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("1700086400:alice"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("HJX0XIkrCiQCuU88Z0oeXj+QW60=")
        );
    }

    #[test]
    fn no_ice_servers_unless_configured() {
        assert!(ice_servers(&IceConfig::default(), 0, "u").is_empty());
    }
}
