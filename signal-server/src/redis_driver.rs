//! A Redis pub/sub driver for `socketioxide-redis` that survives Redis
//! restarts.
//!
//! The crate's own driver holds one connection for its whole life: once
//! Redis goes away, every publish fails and subscriptions are silently dead
//! even after Redis is back. This one keeps a supervisor task that
//! (re)connects with back-off, re-subscribes every channel after a
//! reconnect, and notices a dead connection both from redis-rs's
//! `Disconnection` push and from a failing periodic `PING`. While Redis is
//! down, `publish` and `num_serv` fail at once (never wait), and
//! `subscribe` still hands out its stream: messages start flowing once the
//! connection is back. The per-channel senders outlive reconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Notify, mpsc};

/// How often a live connection is checked with `PING`.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Bound on connecting, and on every command.
const TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("redis is unreachable (reconnecting)")]
    Down,
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Counters and state for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RedisHealth {
    up: AtomicBool,
    /// Connections made (1 after the first, +1 per reconnect).
    pub connects: AtomicU64,
    /// Calls that failed (publish, subscribe, count) and lost connections.
    pub errors: AtomicU64,
    /// When a command last failed on a live connection (Redis out of memory,
    /// a script error), as milliseconds of [`RedisHealth::clock`].
    last_failure_ms: AtomicU64,
    clock: std::sync::OnceLock<std::time::Instant>,
}

/// A node is degraded this long after a command failed.
const DEGRADED_FOR: Duration = Duration::from_secs(5);

impl RedisHealth {
    /// Connected to Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Connected, and no command failed lately: what `/healthz` reports.
    pub fn is_healthy(&self) -> bool {
        let last = self.last_failure_ms.load(Ordering::Relaxed);
        self.is_up()
            && (last == 0 || self.now_ms().saturating_sub(last) > DEGRADED_FOR.as_millis() as u64)
    }

    fn now_ms(&self) -> u64 {
        let t0 = *self.clock.get_or_init(std::time::Instant::now);
        // Never 0, which means "never failed".
        t0.elapsed().as_millis() as u64 + 1
    }

    fn failed_now(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.last_failure_ms.store(self.now_ms(), Ordering::Relaxed);
    }
}

type Handlers = RwLock<HashMap<String, mpsc::Sender<ChanItem>>>;

struct Inner {
    client: redis::Client,
    handlers: Handlers,
    conn: RwLock<Option<MultiplexedConnection>>,
    /// Wakes the supervisor when a call finds the connection broken.
    broken: Notify,
    health: Arc<RedisHealth>,
}

/// The driver; clones share one connection and one set of subscriptions.
/// When the last clone is dropped, the supervisor task closes the connection
/// and ends.
#[derive(Clone)]
pub struct ReconnectingDriver(Arc<Handle>);

struct Handle {
    inner: Arc<Inner>,
    /// Dropped with the last clone: the supervisor sees its channel close.
    _alive: tokio::sync::watch::Sender<()>,
}

impl std::ops::Deref for Handle {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl ReconnectingDriver {
    /// Starts the supervisor. Returns at once, connected or not: the first
    /// connection attempt is awaited for at most `TIMEOUT`, so that a server
    /// started next to a healthy Redis is connected before it serves.
    pub async fn start(client: redis::Client) -> Self {
        let inner = Arc::new(Inner {
            client,
            handlers: RwLock::new(HashMap::new()),
            conn: RwLock::new(None),
            broken: Notify::new(),
            health: Arc::new(RedisHealth::default()),
        });
        let first = Arc::new(Notify::new());
        let (alive, alive_rx) = tokio::sync::watch::channel(());
        tokio::spawn(supervise(inner.clone(), alive_rx, first.clone()));
        let _ = tokio::time::timeout(TIMEOUT, first.notified()).await;
        Self(Arc::new(Handle {
            inner,
            _alive: alive,
        }))
    }

    pub fn health(&self) -> Arc<RedisHealth> {
        self.0.health.clone()
    }

    /// The current connection, for commands (it reconnects underneath:
    /// callers take a fresh one per operation).
    pub fn connection(&self) -> Result<MultiplexedConnection, DriverError> {
        self.conn()
    }

    /// Counts a failed command and asks the supervisor to check the connection.
    pub fn command_failed(&self, e: redis::RedisError) -> DriverError {
        match self.failed::<()>(e) {
            Err(e) => e,
            Ok(()) => DriverError::Down,
        }
    }

    fn conn(&self) -> Result<MultiplexedConnection, DriverError> {
        self.0
            .conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(DriverError::Down)
    }

    /// Counts a failure; a failing connection is handed back to the supervisor.
    fn failed<T>(&self, e: redis::RedisError) -> Result<T, DriverError> {
        self.0.health.failed_now();
        if e.is_unrecoverable_error() || e.is_io_error() || e.is_timeout() {
            self.0.broken.notify_one();
        }
        Err(DriverError::Redis(e))
    }
}

impl Driver for ReconnectingDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        let mut conn = self.conn().inspect_err(|_| {
            self.0.health.errors.fetch_add(1, Ordering::Relaxed);
        })?;
        match redis::cmd("PUBLISH")
            .arg(chan)
            .arg(val)
            .query_async::<redis::Value>(&mut conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => self.failed(e),
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, DriverError> {
        let (tx, rx) = mpsc::channel(size);
        self.0
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(chan.clone(), tx);
        // Down now: the supervisor subscribes it when it connects.
        if let Ok(mut conn) = self.conn()
            && let Err(e) = conn.subscribe(&chan).await
        {
            tracing::warn!(chan, "redis subscribe failed, retried on reconnect: {e}");
            let _: Result<(), _> = self.failed(e);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        self.0
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&chan);
        match self.conn()?.unsubscribe(&chan).await {
            Ok(()) => Ok(()),
            Err(e) => self.failed(e),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        let mut conn = self.conn()?;
        match redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async::<(String, u16)>(&mut conn)
            .await
        {
            Ok((_, n)) => Ok(n),
            Err(e) => self.failed(e),
        }
    }
}

/// Connects, re-subscribes, watches, and starts over when the connection
/// dies; ends when every driver clone is dropped (`alive` closes).
async fn supervise(
    inner: Arc<Inner>,
    mut alive: tokio::sync::watch::Receiver<()>,
    first: Arc<Notify>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if alive.has_changed().is_err() {
            return;
        }
        let (push_tx, mut push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_push_sender(push_tx);
        let mut chans: Vec<String> = Vec::new();
        let connected = match inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(mut conn) => {
                chans = inner
                    .handlers
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .keys()
                    .cloned()
                    .collect();
                let mut ok = true;
                for chan in &chans {
                    if let Err(e) = conn.subscribe(chan).await {
                        tracing::warn!(chan, "redis re-subscribe failed: {e}");
                        ok = false;
                        break;
                    }
                }
                ok.then_some(conn)
            }
            Err(e) => {
                tracing::debug!("redis connect failed: {e}");
                None
            }
        };
        let Some(mut conn) = connected else {
            inner.health.errors.fetch_add(1, Ordering::Relaxed);
            first.notify_one();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = alive.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        };
        backoff = BACKOFF_MIN;
        let n = inner.health.connects.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            tracing::info!("redis: reconnected");
        }
        *inner.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        // A `subscribe` that ran while we were connecting saw no connection:
        // its channel is in the map now, subscribe it (twice is harmless).
        let late: Vec<String> = inner
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|c| !chans.contains(c))
            .cloned()
            .collect();
        for chan in &late {
            if let Err(e) = conn.subscribe(chan).await {
                tracing::warn!(chan, "redis subscribe failed: {e}");
            }
        }
        inner.health.up.store(true, Ordering::Relaxed);
        first.notify_one();
        let ended = tokio::select! {
            _ = watch(&inner, conn, &mut push_rx) => false,
            _ = alive.changed() => true,
        };
        *inner.conn.write().unwrap_or_else(PoisonError::into_inner) = None;
        if ended {
            return;
        }
        // Lost: calls fail fast from here until the next connection.
        inner.health.up.store(false, Ordering::Relaxed);
        inner.health.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("redis: connection lost; reconnecting");
    }
}

/// Delivers pushed messages until the connection is gone.
async fn watch(
    inner: &Inner,
    mut conn: MultiplexedConnection,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                None => return,
                Some(p) if p.kind == PushKind::Disconnection => return,
                Some(p) => deliver(&inner.handlers, p),
            },
            _ = ping.tick() => {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_err() {
                    return;
                }
            }
            _ = inner.broken.notified() => {
                // A call failed: check before giving up a healthy connection.
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_err() {
                    return;
                }
            }
        }
    }
}

fn deliver(handlers: &Handlers, p: PushInfo) {
    if !matches!(p.kind, PushKind::Message) || p.data.len() < 2 {
        return;
    }
    let mut data = p.data.into_iter();
    let (Some(chan), Some(msg)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(msg)) = (
        String::from_redis_value(chan),
        Vec::<u8>::from_redis_value(msg),
    ) else {
        return;
    };
    let tx = handlers
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&chan)
        .cloned();
    if let Some(tx) = tx
        && let Err(e) = tx.try_send((chan, msg))
    {
        tracing::warn!("redis: message dropped, handler queue full or closed: {e}");
    }
}
