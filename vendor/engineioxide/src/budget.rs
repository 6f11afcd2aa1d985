//! Bounds in bytes on what waits in sockets' outgoing queues (patched; not
//! upstream). The packet-count bound (`max_buffer_size`) does not bound
//! memory: 1 024 packets of 60 KB are 60 MB for one socket that stopped
//! reading. A [`QueueBudget`] put into the handshake request's extensions
//! bounds the bytes queued for that socket, and for a group of sockets
//! sharing one counter (the server uses one per client address). A send that
//! would cross either bound is not queued, and the socket is closed
//! (`DisconnectReason::TransportError`) from its heartbeat task: never from
//! the sender's call, which may hold the application's locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use engineioxide_core::Packet;
use tokio::sync::Notify;

/// The byte bounds of one socket's outgoing queue.
#[derive(Debug, Clone)]
pub struct QueueBudget {
    /// Bytes one socket may have queued.
    pub per_socket: usize,
    /// Bytes queued for every socket of the group (shared counter)...
    pub shared: Arc<AtomicUsize>,
    /// ...and its bound.
    pub shared_limit: usize,
    /// Sockets closed for crossing a bound (shared counter, for metrics).
    pub overflows: Arc<AtomicU64>,
}

/// What a packet counts against a budget: the payload of messages; control
/// packets (ping, close, noop) are not charged, so they are not refunded.
pub(crate) fn cost(p: &Packet) -> usize {
    match p {
        Packet::Message(s) => s.len(),
        Packet::Binary(b) | Packet::BinaryV3(b) => b.len(),
        _ => 0,
    }
}

/// A socket's account against its [`QueueBudget`].
#[derive(Debug, Default)]
pub(crate) struct QueueAccount {
    budget: Option<QueueBudget>,
    queued: AtomicUsize,
    overflowed: AtomicBool,
    /// Woken once when a bound is crossed; the heartbeat task closes the socket.
    pub(crate) overflow: Notify,
}

impl QueueAccount {
    pub(crate) fn new(budget: Option<QueueBudget>) -> Self {
        Self {
            budget,
            queued: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
        }
    }

    /// Takes room for `n` bytes; `false` when a bound would be crossed (the
    /// socket is then marked, and every later send refused until it closes).
    pub(crate) fn charge(&self, n: usize) -> bool {
        let Some(b) = &self.budget else {
            return true;
        };
        if n == 0 {
            // Control packets (the close packet among them) always pass.
            return true;
        }
        if self.overflowed.load(Relaxed) {
            return false;
        }
        let mine = self.queued.fetch_add(n, Relaxed) + n;
        let all = b.shared.fetch_add(n, Relaxed) + n;
        if mine <= b.per_socket && all <= b.shared_limit {
            return true;
        }
        self.queued.fetch_sub(n, Relaxed);
        b.shared.fetch_sub(n, Relaxed);
        if !self.overflowed.swap(true, Relaxed) {
            b.overflows.fetch_add(1, Relaxed);
            self.overflow.notify_one();
        }
        false
    }

    /// Gives back what queued packets took, once they left the queue.
    pub(crate) fn release<'a>(&self, packets: impl IntoIterator<Item = &'a Packet>) {
        self.release_bytes(packets.into_iter().map(cost).sum());
    }

    /// Gives back `n` bytes (the sum of [`cost`] of what was written).
    pub(crate) fn release_bytes(&self, n: usize) {
        let Some(b) = &self.budget else {
            return;
        };
        if n > 0 {
            self.queued.fetch_sub(n, Relaxed);
            b.shared.fetch_sub(n, Relaxed);
        }
    }
}

impl Drop for QueueAccount {
    /// What was still queued when the socket went is given back to the group.
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.shared.fetch_sub(*self.queued.get_mut(), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_socket: usize, shared_limit: usize) -> QueueBudget {
        QueueBudget {
            per_socket,
            shared: Arc::new(AtomicUsize::new(0)),
            shared_limit,
            overflows: Arc::new(AtomicU64::new(0)),
        }
    }

    #[test]
    fn bounds_per_socket_and_per_group_and_refunds() {
        let b = budget(100, 150);
        let a = QueueAccount::new(Some(b.clone()));
        let c = QueueAccount::new(Some(b.clone()));
        assert!(a.charge(60) && a.charge(40));
        assert!(!a.charge(1), "a is at its own bound");
        assert_eq!(b.overflows.load(Relaxed), 1);
        assert!(!a.charge(1), "an overflowed socket takes nothing more");
        assert!(a.charge(0), "control packets still pass");
        assert!(c.charge(50));
        assert!(!c.charge(1), "the group is at its bound (100 + 50)");
        assert_eq!(b.shared.load(Relaxed), 150);
        c.release(&[Packet::Message("x".repeat(50).into()), Packet::Ping]);
        assert_eq!(b.shared.load(Relaxed), 100);
        drop(a);
        assert_eq!(b.shared.load(Relaxed), 0, "a's queue given back on drop");
        assert_eq!(b.overflows.load(Relaxed), 2);
    }

    #[test]
    fn no_budget_means_no_bound() {
        let a = QueueAccount::new(None);
        assert!(a.charge(usize::MAX / 2) && a.charge(usize::MAX / 2));
    }
}
