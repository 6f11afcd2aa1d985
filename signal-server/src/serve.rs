//! Serving HTTP/1 connections: what `axum::serve` does (the peer address as
//! `ConnectInfo`, upgrades, graceful shutdown), plus the two deadlines it
//! lacks, so that a connection costs a descriptor only while it is used:
//!
//! - **request head** (`HTTP_HEADER_TIMEOUT_SECS`): from the moment a
//!   connection is accepted, or the first byte of a next request arrives on
//!   an idle one, the whole request head must arrive in time, or the
//!   connection is dropped (slowloris: connections that never finish their
//!   request, one descriptor each);
//! - **idle** (`HTTP_IDLE_TIMEOUT_SECS`): a keep-alive connection with no
//!   request in flight and no byte arriving is closed (gracefully: hyper
//!   closes it only between requests).
//!
//! A request is in flight from the moment hyper hands it to the router until
//! its response body is sent (or dropped), so a long-polling GET that the
//! server holds for up to the ping interval is never idle. An upgraded
//! WebSocket leaves this module: hyper hands its connection over, the watch
//! below ends, and the Engine.IO heartbeat bounds it from then on.
//!
//! hyper's own `header_read_timeout` is not used: it starts whenever hyper
//! waits for a head, idle keep-alive included, so it would close idle
//! connections at the header deadline and leave no idle timeout of its own.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::Listener;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::metrics::HttpCounters;

/// The two deadlines of an HTTP connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To receive a whole request head, from its first byte (or the accept).
    pub header: Duration,
    /// With no request in flight and nothing arriving.
    pub idle: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, asks every HTTP connection to finish its request and close,
/// and waits for them at most `drain`.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    timeouts: Timeouts,
    counters: Arc<HttpCounters>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    L: Listener<Addr = SocketAddr>,
{
    let (stop_tx, _) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` is their join.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let conn = Connection {
            addr,
            router: router.clone(),
            timeouts,
            counters: counters.clone(),
        };
        tokio::spawn(conn.run(io, stop_tx.subscribe(), done_rx.clone()));
    }
    drop(listener);
    stop_tx.send_replace(true);
    drop(done_rx);
    if tokio::time::timeout(drain, done_tx.closed()).await.is_err() {
        tracing::debug!(
            left = done_tx.receiver_count(),
            "HTTP connections still open after the drain"
        );
    }
}

/// One accepted connection, until it closes or is upgraded.
struct Connection {
    addr: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    counters: Arc<HttpCounters>,
}

impl Connection {
    async fn run<I>(self, io: I, mut stop: watch::Receiver<bool>, _done: watch::Receiver<()>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            addr,
            router,
            timeouts,
            counters,
        } = self;
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            io,
            activity: activity.clone(),
        });
        let service = ConnService {
            router,
            addr,
            activity: activity.clone(),
        };
        let mut builder = http1::Builder::new();
        // Ours covers it (see the module's comment), and it needs no timer.
        builder.header_read_timeout(None);
        let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
        let _open = counters.connection_opened();
        // With a request in flight there is no deadline: look again this often.
        let recheck = timeouts.header.min(timeouts.idle);
        let mut timer = pin!(tokio::time::sleep(timeouts.header));
        let mut closing = false;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::trace!(%addr, "HTTP connection ended: {e}");
                    }
                    break;
                }
                _ = stop.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = timer.as_mut() => {
                    let now = Instant::now();
                    match activity.due(timeouts) {
                        None => timer.as_mut().reset(now + recheck),
                        Some((at, _)) if at > now => timer.as_mut().reset(at),
                        Some((_, Wait::Head)) => {
                            counters.header_timeout();
                            tracing::debug!(%addr, "HTTP connection dropped: no request head within {:?}", timeouts.header);
                            break;
                        }
                        Some((_, Wait::Idle)) => {
                            if !closing {
                                closing = true;
                                counters.idle_closed();
                                conn.as_mut().graceful_shutdown();
                            }
                            // A request that raced the close still has its head deadline.
                            timer.as_mut().reset(now + recheck);
                        }
                    }
                }
            }
        }
    }
}

/// What a connection with no request in flight waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The rest of a request head (or its first byte, on a new connection).
    Head,
    /// Nothing: an idle keep-alive connection.
    Idle,
}

/// Where one connection is between requests. Written by the connection's
/// own task (hyper polls the I/O, the service future and the response body
/// there), read by its deadline timer; atomics only because the types must
/// be `Send`.
#[derive(Debug)]
struct Activity {
    born: Instant,
    /// Requests handed to the router whose response body is not done.
    in_flight: AtomicUsize,
    /// With none in flight: [`Wait::Head`] (true) or [`Wait::Idle`].
    head: AtomicBool,
    /// When the current wait began, in milliseconds after `born`.
    since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head: AtomicBool::new(true),
            since_ms: AtomicU64::new(0),
        }
    }

    fn wait(&self, what: Wait) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Relaxed);
        self.head.store(what == Wait::Head, Relaxed);
    }

    /// Bytes arrived: on an idle connection, a request head has begun. (On
    /// an upgraded WebSocket this flips once and then costs one load per read.)
    fn read(&self) {
        if !self.head.load(Relaxed) && self.in_flight.load(Relaxed) == 0 {
            self.wait(Wait::Head);
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    /// The deadline of the current wait; `None` while a request is in flight.
    fn due(&self, t: Timeouts) -> Option<(Instant, Wait)> {
        if self.in_flight.load(Relaxed) > 0 {
            return None;
        }
        let since = self.born + Duration::from_millis(self.since_ms.load(Relaxed));
        Some(if self.head.load(Relaxed) {
            (since + t.header, Wait::Head)
        } else {
            (since + t.idle, Wait::Idle)
        })
    }
}

/// A request in flight; the last one dropped starts the idle wait.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.wait(Wait::Idle);
        }
    }
}

/// The connection's I/O, noting when bytes arrive.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The router as hyper calls it on one connection: with the peer address
/// (`ConnectInfo<SocketAddr>`, for the per-address limits) and each request
/// counted in flight until its response body is done.
#[derive(Clone)]
struct ConnService {
    router: Router,
    addr: SocketAddr,
    activity: Arc<Activity>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let mut req: Request = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let res = self.router.clone().oneshot(req);
        Box::pin(async move {
            let res = res.await?;
            Ok(res.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is done.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(120),
    };

    #[test]
    fn a_new_connection_waits_for_a_head() {
        let a = Arc::new(Activity::new());
        let (at, wait) = a.due(T).expect("nothing in flight");
        assert_eq!(wait, Wait::Head);
        assert_eq!(at, a.born + T.header);
    }

    #[test]
    fn in_flight_until_the_last_response_then_idle_until_bytes_arrive() {
        let a = Arc::new(Activity::new());
        let first = a.begin();
        let second = a.begin();
        assert_eq!(a.due(T), None);
        a.read(); // a request body arriving changes nothing
        drop(first);
        assert_eq!(a.due(T), None, "one request is still in flight");
        drop(second);
        let (at, wait) = a.due(T).expect("idle");
        assert_eq!(wait, Wait::Idle);
        assert!(at >= a.born + T.idle);
        a.read();
        assert_eq!(a.due(T).map(|d| d.1), Some(Wait::Head));
        let _third = a.begin();
        assert_eq!(a.due(T), None);
    }
}
