//! socket.io handshakes from other sites' pages are refused.
//!
//! A WebSocket is not bound by CORS, and a polling handshake is a plain GET:
//! without this check any web page could open sessions from its visitors'
//! browsers (cross-site WebSocket hijacking), joining rooms as them and
//! spending their addresses' limits. A handshake (a request to
//! `/socket.io/` without `sid`, as in `conn_limit.rs`) is allowed when:
//!
//! - it has no `Origin` header (non-browser clients: browsers always send
//!   one on a WebSocket and on a cross-origin request);
//! - its `Origin` is the page's own origin: `scheme://host[:port]` whose
//!   `host[:port]` equals the request's `Host` (the scheme is not compared:
//!   behind a TLS-terminating proxy the page is `https` and the server sees
//!   `http`), or with `TRUST_PROXY` the proxy's last `X-Forwarded-Host`;
//! - its `Origin` is listed in `CORS_ORIGINS`, or that list holds `*`.
//!
//! Otherwise: `403 Forbidden`, before a session or an address slot exists.
//! Requests of an existing session (with `sid`) are not checked: their
//! session was opened by an allowed handshake, and its id is a secret.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::HttpCounters;

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

#[derive(Debug)]
pub struct OriginPolicy {
    /// `CORS_ORIGINS` holds `*`.
    any: bool,
    /// The other `CORS_ORIGINS`, as given (compared without case).
    listed: Vec<String>,
    trust_proxy: bool,
    counters: Arc<HttpCounters>,
}

impl OriginPolicy {
    pub fn new(cors_origins: &[String], trust_proxy: bool, counters: Arc<HttpCounters>) -> Self {
        Self {
            any: cors_origins.iter().any(|o| o == "*"),
            listed: cors_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            trust_proxy,
            counters,
        }
    }

    /// Whether a handshake with these headers may open a session.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if self.any || self.listed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return true;
        }
        // `null` (sandboxed frames, files) and other schemes are never ours.
        let Some(authority) = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
        else {
            return false;
        };
        if authority.is_empty() || authority.contains(['/', '@']) {
            return false;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let forwarded = if self.trust_proxy {
            headers
                .get_all(X_FORWARDED_HOST)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .next_back()
        } else {
            None
        };
        [host, forwarded]
            .into_iter()
            .flatten()
            .any(|h| h.eq_ignore_ascii_case(authority))
    }
}

/// A request that opens a new Engine.IO session (as `conn_limit.rs` counts them).
fn is_handshake(req: &Request) -> bool {
    req.uri().path().starts_with("/socket.io")
        && !req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("sid="))
}

/// Refuses cross-origin handshakes with `403`.
pub async fn middleware(
    State(policy): State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if !is_handshake(&req) || policy.allows(req.headers()) {
        return next.run(req).await;
    }
    tracing::debug!(origin = ?req.headers().get(header::ORIGIN), "socket.io handshake refused: cross-origin");
    policy.counters.origin_refused();
    (
        StatusCode::FORBIDDEN,
        "cross-origin socket.io connections are refused (see CORS_ORIGINS)",
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_or_no_origin() {
        let p = OriginPolicy::new(&[], false, Arc::default());
        assert!(p.allows(&headers(&[("host", "127.0.0.1:3000")])));
        for ok in ["http://127.0.0.1:3000", "https://127.0.0.1:3000"] {
            assert!(
                p.allows(&headers(&[("host", "127.0.0.1:3000"), ("origin", ok)])),
                "{ok}"
            );
        }
        assert!(p.allows(&headers(&[
            ("host", "Meet.Example"),
            ("origin", "https://meet.example")
        ])));
        for bad in [
            "http://evil.example",
            "http://127.0.0.1:3001",
            "http://127.0.0.1",
            "null",
            "file://127.0.0.1:3000",
            "http://127.0.0.1:3000/x",
            "http://",
        ] {
            assert!(
                !p.allows(&headers(&[("host", "127.0.0.1:3000"), ("origin", bad)])),
                "{bad}"
            );
        }
        // No Host at all: nothing to be the same as.
        assert!(!p.allows(&headers(&[("origin", "http://127.0.0.1:3000")])));
    }

    #[test]
    fn forwarded_host_only_behind_a_trusted_proxy() {
        let h = headers(&[
            ("host", "10.0.0.5:3000"),
            ("x-forwarded-host", "meet.example"),
            ("origin", "https://meet.example"),
        ]);
        assert!(OriginPolicy::new(&[], true, Arc::default()).allows(&h));
        assert!(!OriginPolicy::new(&[], false, Arc::default()).allows(&h));
    }

    #[test]
    fn cors_origins_are_allowed_and_star_allows_any() {
        let p = OriginPolicy::new(&["https://app.example/".to_owned()], false, Arc::default());
        let from = |o: &str| headers(&[("host", "api.example"), ("origin", o)]);
        assert!(p.allows(&from("https://app.example")));
        assert!(!p.allows(&from("https://evil.example")));
        let any = OriginPolicy::new(&["*".to_owned()], false, Arc::default());
        assert!(any.allows(&from("https://evil.example")));
    }

    #[test]
    fn only_handshakes_are_checked() {
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(is_handshake(&req("/socket.io/?EIO=4&transport=websocket")));
        assert!(!is_handshake(&req(
            "/socket.io/?EIO=4&transport=websocket&sid=x"
        )));
        assert!(!is_handshake(&req("/api/config")));
    }
}
