//! What every socket and HTTP handler shares, whatever the room engine:
//! the configuration, the counters, the per-address connection limit and
//! the memory of closed sessions.

use std::sync::Arc;

use crate::closed_sessions::ClosedSessions;
use crate::config::Config;
use crate::conn_limit::ConnLimiter;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub metrics: Metrics,
    /// Sessions per client address.
    pub conn_limiter: Arc<ConnLimiter>,
    /// Sessions that ended, so late packets of theirs are refused.
    pub closed: ClosedSessions,
}

impl AppState {
    pub fn new(config: Config, event_labels: &'static [&'static str]) -> Self {
        let limits = &config.limits;
        let conn_limiter = ConnLimiter::new(
            limits.max_conns_per_ip,
            config.trust_proxy,
            (limits.send_buffer_bytes, limits.send_buffer_bytes_per_ip),
        );
        Self {
            conn_limiter,
            config,
            metrics: Metrics::new(event_labels),
            closed: ClosedSessions::default(),
        }
    }
}
