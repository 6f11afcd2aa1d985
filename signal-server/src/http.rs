//! HTTP routes: health, ICE configuration, metrics, and the web client.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use socketioxide::layer::SocketIoLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::IceConfig;
use crate::metrics::{render_redis, render_sfu};
use crate::node::NodeStats;

/// What the HTTP routes read of the node.
type Node = Arc<dyn NodeStats>;

pub fn router<A: socketioxide::adapter::Adapter>(
    state: Node,
    socketio: SocketIoLayer<A>,
) -> Router {
    let static_dir = state.state().config.static_dir.clone();
    let client =
        ServeDir::new(&static_dir).fallback(get(client_route).with_state(static_dir.clone()));
    let cors = cors(&state.state().config.cors_origins);
    let limiter = state.state().conn_limiter.clone();
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/config", get(api_config))
        .route("/metrics", get(metrics))
        .fallback_service(
            Router::new()
                .fallback_service(client)
                .layer(axum::middleware::from_fn(with_content_security_policy)),
        )
        .with_state(state)
        .layer(socketio)
        // Outside the socket.io layer: runs first.
        .layer(axum::middleware::map_request(detach_request))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            crate::conn_limit::middleware,
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

/// Largest HTML page whose inline scripts are hashed for the CSP.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// Every HTML page of the client gets a Content-Security-Policy that allows
/// only same-origin scripts plus its own inline scripts, by hash: Trunk's
/// `index.html` starts the WASM with one inline module script whose text
/// changes with every build, so the hash is taken from the page as served.
async fn with_content_security_policy(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be read",
        )
            .into_response();
    };
    let policy = content_security_policy(&String::from_utf8_lossy(&bytes));
    if let Ok(v) = HeaderValue::from_str(&policy) {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The policy for `html`: scripts from this origin and the page's inline
/// scripts by SHA-256, WebAssembly compilation (`wasm-unsafe-eval`, not
/// `unsafe-eval`), media from the camera, connections (fetch, WebSocket) to
/// this origin only, no plugins, no framing, no `<base>` rewriting.
pub fn content_security_policy(html: &str) -> String {
    let mut scripts = String::from("'self' 'wasm-unsafe-eval'");
    for text in inline_scripts(html) {
        let digest = Sha256::digest(text.as_bytes());
        let _ = write!(
            scripts,
            " 'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
    }
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; \
         img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    )
}

/// The text of every `<script>` element without a `src` attribute, exactly
/// as it appears between its tags (what a CSP hash covers).
fn inline_scripts(html: &str) -> Vec<&str> {
    // ASCII lowercasing keeps byte offsets, so indices carry over to `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        let Some(tag_end) = lower[open..].find('>').map(|i| open + i) else {
            break;
        };
        let text_start = tag_end + 1;
        let Some(close) = lower[text_start..].find("</script").map(|i| text_start + i) else {
            break;
        };
        let tag = &lower[open + "<script".len()..tag_end];
        let has_src = tag
            .split(|c: char| c.is_ascii_whitespace())
            .any(|attr| attr == "src" || attr.starts_with("src="));
        if !has_src {
            out.push(&html[text_start..close]);
        }
        at = close;
    }
    out
}

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

/// A path with no file extension is a client route (`/r/<room>`): serve
/// `index.html`. A missing asset is a plain 404.
async fn client_route(State(dir): State<PathBuf>, uri: Uri) -> Response {
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    match tokio::fs::read_to_string(dir.join("index.html")).await {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The web client is not built: {}/index.html is missing. \
                 Build it with `trunk build --release` (see README.md) or set STATIC_DIR.",
                dir.display()
            ),
        )
            .into_response(),
    }
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
}

async fn api_config(State(node): State<Node>) -> impl IntoResponse {
    let config = &node.state().config;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // What a join may create here: scaled out on Redis, SFU rooms are
    // refused (docs/scale-out.md).
    let mut modes = vec![protocol::Mode::Mesh];
    if node.sfu_enabled() {
        modes.push(protocol::Mode::Sfu);
    }
    let body = ClientConfig {
        ice_servers: ice_servers(&config.ice, now, &uuid::Uuid::new_v4().simple().to_string()),
        modes,
        default_mode: config.default_mode,
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

async fn metrics(State(node): State<Node>) -> impl IntoResponse {
    let state = node.state();
    let (rooms, peers) = node.room_counts();
    let mut text = String::with_capacity(4096);
    state.metrics.render(&mut text, rooms, peers);
    render_sfu(&mut text, &node.sfu());
    if let Some(redis) = node.redis() {
        render_redis(&mut text, redis);
    }
    text.push_str(&format!(
        "# HELP signal_connections_refused_total New connections refused: too many from one address.\n\
         # TYPE signal_connections_refused_total counter\nsignal_connections_refused_total {}\n",
        state
            .conn_limiter
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn csp_hashes_exactly_the_inline_scripts() {
        let html = "<head><SCRIPT type=\"module\">alert(1)</script>\
                    <script src=\"/socket.io.min.js\"></script>\
                    <script data-src=x>b()</SCRIPT></head>";
        assert_eq!(inline_scripts(html), vec!["alert(1)", "b()"]);
        let csp = content_security_policy(html);
        // `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`
        assert!(csp.contains(
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=' 'sha256-"
        ));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"));
        assert_eq!(inline_scripts("<script>unterminated"), Vec::<&str>::new());
        assert_eq!(inline_scripts("no scripts"), Vec::<&str>::new());
    }

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
