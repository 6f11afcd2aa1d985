//! Running a future that is ready when first polled, in place: no task, no
//! allocation. The single-node path is built of such futures (the local
//! store's and the local adapter's), so an event runs to its end on the
//! socket's read loop.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls `fut` once; `None` if it was not ready (it is dropped then).
pub fn now<F: Future>(fut: F) -> Option<F::Output> {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_futures_finish_and_others_do_not() {
        assert_eq!(super::now(async { 7 }), Some(7));
        assert_eq!(super::now(std::future::pending::<()>()), None);
    }
}
