//! The gate every event of a socket passes, in both schedulers: is the
//! socket still open, is it within its rate, is the payload well formed.
//!
//! The gate is locked while an event is admitted (and, inline, while it
//! runs) and while the disconnect closes it, so no event of a closed socket
//! is ever handled: a closed session never becomes a member.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use protocol::ErrorCode;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;

use crate::ack::{Ack, Failure};
use crate::config::Limits;
use crate::handlers::{EventKind, Request};
use crate::metrics::Metrics;

/// Per-socket rate limit: `burst` events at once, refilled at `per_sec`.
#[derive(Debug)]
struct TokenBucket {
    tokens: f32,
    burst: f32,
    per_sec: f32,
    last: Instant,
}

impl TokenBucket {
    fn new(limits: &Limits) -> Self {
        Self {
            tokens: limits.rate_burst as f32,
            burst: limits.rate_burst as f32,
            per_sec: limits.rate_per_sec as f32,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub(super) struct Gate(Mutex<Inner>);

#[derive(Debug)]
pub(super) struct Inner {
    bucket: TokenBucket,
    open: bool,
}

/// One event as read off the wire: its name, its ack, its payload.
pub(super) struct Incoming<A: Adapter> {
    kind: EventKind,
    name: String,
    pub ack: Ack<A>,
    value: Value,
}

impl<A: Adapter> Incoming<A> {
    /// Takes an event apart, counting it.
    pub fn read(metrics: &Metrics, s: &Arc<Socket<A>>, mut v: Value, ack_id: Option<i64>) -> Self {
        let Ok(sender) = AckSender::from_message_parts(s, &mut v, &ack_id);
        let name = Event::from_message_parts(s, &mut v, &ack_id)
            .map(|e| e.0)
            .unwrap_or_default();
        let kind = EventKind::from_name(&name);
        metrics.event(kind.index());
        Self {
            kind,
            name,
            ack: Ack::new(sender, kind.as_str()),
            value: v,
        }
    }
}

impl Gate {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self(Mutex::new(Inner {
            bucket: TokenBucket::new(limits),
            open: true,
        })))
    }

    /// A bucket and a flag: nothing a panic could leave half-done.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// No event passes from now on.
    pub fn close(&mut self) {
        self.open = false;
    }

    /// Checks an event before it touches any room: the socket is open,
    /// within its rate, and the payload has the right shape, size and
    /// fields.
    pub fn admit<A: Adapter>(
        &mut self,
        limits: &Limits,
        s: &Arc<Socket<A>>,
        ev: &mut Incoming<A>,
    ) -> Result<Request, Failure> {
        if !self.open {
            return Err(Failure::bad_request("the connection is closed"));
        }
        if !self.bucket.take(Instant::now()) {
            return Err(Failure::new(
                ErrorCode::RateLimited,
                format!(
                    "too many events: at most {} at once and {} per second",
                    limits.rate_burst, limits.rate_per_sec
                ),
            ));
        }
        let Value::Str(raw, binaries) = &ev.value else {
            return Err(Failure::bad_request("payload must be a JSON object"));
        };
        if binaries.as_ref().is_some_and(|b| !b.is_empty()) {
            return Err(Failure::bad_request("binary payloads are not supported"));
        }
        if raw.len() > limits.max_message_bytes {
            return Err(Failure::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "event is {} bytes; the limit is {}",
                    raw.len(),
                    limits.max_message_bytes
                ),
            ));
        }
        Request::parse(ev.kind, &ev.name, s, &mut ev.value)
    }
}
