//! At most N Engine.IO sessions per client address, and the counters the
//! other per-address limits share ([`AddrState`]).
//!
//! A new session is a request to `/socket.io/` without `sid` (a polling
//! handshake or a direct WebSocket). The middleware reserves a slot for its
//! address before socket.io sees it, or answers `429 Too Many Requests`.
//! The slot is an `Arc` put into the request's extensions; Engine.IO keeps
//! the handshake's request parts for the life of the session, so the slot is
//! released when the session is gone (or at once if the handshake fails).
//! Reserving before the handshake means a burst cannot overshoot the limit.
//!
//! The address is the TCP peer's, or with `TRUST_PROXY` the last entry of
//! `X-Forwarded-For` (the one the proxy in front of us appended: Heroku's
//! router, nginx with `proxy_add_x_forwarded_for`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ConnLimiter {
    /// Sessions per address; 0 = unlimited.
    limit: usize,
    /// Bytes queued for one socket, and for all sockets of one address.
    queue_per_socket: usize,
    queue_per_address: usize,
    /// Sockets closed because their queue crossed a byte bound.
    pub queue_overflows: Arc<AtomicU64>,
    trust_proxy: bool,
    open: Mutex<HashMap<IpAddr, (usize, Arc<AddrState>)>>,
    pub refused: AtomicU64,
}

/// What the sessions of one client address share, while it has any: the
/// counters of the per-address limits.
#[derive(Debug, Default)]
pub struct AddrState {
    /// SFU peer connections of this address now.
    pub sfu_peers: AtomicUsize,
    /// Bytes queued for this address's sockets (engineioxide counts them).
    pub queued: Arc<AtomicUsize>,
}

/// One reserved session of one address; dropping the last clone frees it.
/// Every Engine.IO session holds one (in its handshake request's
/// extensions), so a socket knows its client address and that address's
/// counters.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
    state: Arc<AddrState>,
}

impl Slot {
    /// The client's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The counters shared by every session of this address.
    pub fn addr(&self) -> &Arc<AddrState> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some((n, _)) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnLimiter {
    /// `limit` sessions per address (0: unlimited); `queue` bytes queued per
    /// socket and per address.
    pub fn new(limit: usize, trust_proxy: bool, queue: (usize, usize)) -> Arc<Self> {
        Arc::new(Self {
            limit,
            queue_per_socket: queue.0,
            queue_per_address: queue.1,
            queue_overflows: Arc::new(AtomicU64::new(0)),
            trust_proxy,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    /// A counter map holds no invariant a panic could break.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (usize, Arc<AddrState>)>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for `ip`, or `None` when it already has `limit` sessions.
    pub fn reserve(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.lock();
        let (n, state) = open.entry(ip).or_default();
        if self.limit != 0 && *n >= self.limit {
            drop(open);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        let state = state.clone();
        Some(Slot {
            limiter: self.clone(),
            ip,
            state,
        })
    }

    /// Addresses with at least one session (for tests and metrics).
    pub fn addresses(&self) -> usize {
        self.lock().len()
    }

    /// The client's address: the TCP peer, or the proxy's last `X-Forwarded-For` entry.
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if self.trust_proxy {
            let forwarded = headers
                .get_all(header::HeaderName::from_static("x-forwarded-for"))
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        peer
    }
}

/// A request that opens a new Engine.IO session.
fn is_handshake(req: &Request) -> bool {
    req.uri().path().starts_with("/socket.io")
        && !req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("sid="))
}

pub async fn middleware(
    State(limiter): State<Arc<ConnLimiter>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !is_handshake(&req) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(ip) = limiter.client_ip(req.headers(), peer) else {
        return next.run(req).await;
    };
    match limiter.reserve(ip) {
        Some(slot) => {
            // The session's outgoing queue is bounded in bytes, alone and
            // with the other sessions of its address (engineioxide reads this).
            let budget = engineioxide::QueueBudget {
                per_socket: limiter.queue_per_socket,
                shared: slot.addr().queued.clone(),
                shared_limit: limiter.queue_per_address,
                overflows: limiter.queue_overflows.clone(),
            };
            req.extensions_mut().insert(budget);
            req.extensions_mut().insert(Arc::new(slot));
            next.run(req).await
        }
        None => {
            tracing::debug!(%ip, limit = limiter.limit, "connection refused: too many from this address");
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "10")],
                format!(
                    "too many connections from this address (at most {})",
                    limiter.limit
                ),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_freed_on_drop() {
        let l = ConnLimiter::new(2, false, (1, 1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = l.reserve(a).unwrap();
        let s2 = l.reserve(a).unwrap();
        assert!(l.reserve(a).is_none());
        assert_eq!(l.refused.load(Ordering::Relaxed), 1);
        let _other = l.reserve(b).unwrap();
        drop(s1);
        let s3 = l.reserve(a).unwrap();
        drop((s2, s3));
        assert_eq!(l.addresses(), 1, "only b is left");
        // The sessions of one address share its counters.
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let (x, y) = (l.reserve(c).unwrap(), l.reserve(c).unwrap());
        assert!(Arc::ptr_eq(x.addr(), y.addr()));
        assert_eq!(x.ip(), c);
    }

    #[test]
    fn forwarded_for_is_read_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        h.append("x-forwarded-for", "3.3.3.3".parse().unwrap());
        let peer = Some("127.0.0.1".parse().unwrap());
        let trusted = ConnLimiter::new(1, true, (1, 1));
        assert_eq!(trusted.client_ip(&h, peer), "3.3.3.3".parse().ok());
        let direct = ConnLimiter::new(1, false, (1, 1));
        assert_eq!(direct.client_ip(&h, peer), peer);
        assert_eq!(trusted.client_ip(&HeaderMap::new(), peer), peer);
    }

    #[test]
    fn only_new_sessions_are_handshakes() {
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(is_handshake(&req("/socket.io/?EIO=4&transport=polling")));
        assert!(is_handshake(&req("/socket.io/?EIO=4&transport=websocket")));
        assert!(!is_handshake(&req(
            "/socket.io/?EIO=4&transport=polling&sid=abc"
        )));
        assert!(!is_handshake(&req(
            "/socket.io/?EIO=4&sid=abc&transport=websocket"
        )));
        assert!(!is_handshake(&req("/api/config")));
    }
}
