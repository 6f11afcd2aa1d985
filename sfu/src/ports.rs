//! The ports of the SFU's peer connections: one pool for every room of a
//! server (webrtc 0.21 has no UDP mux, so each connection binds its own
//! socket, and with ICE-TCP a listener on the same number).
//!
//! A free list in FIFO order: a lease takes the port at the front, a port
//! given back (its connection ended, or it could not be bound) goes to the
//! back. Taking a port is O(1); a port that another process holds is tried
//! once and then waits behind every other free port, so it is not retried
//! on every allocation (each room used to scan the range from its bottom).
//! Released ports are reused last, which also gives a closed connection's
//! socket time to go.
//!
//! A port is probed (bound and dropped) before webrtc-rs binds it, because
//! webrtc-rs logs a failed bind at ERROR; a taken port is skipped at DEBUG,
//! and a WARN is logged once when no port of the range is left.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The free ports of `[min, max]` on one address.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    /// Also probe TCP (ICE-TCP listens on the same number).
    tcp: bool,
    span: usize,
    free: Mutex<VecDeque<u16>>,
    /// A WARN was logged for the range running out; cleared when a port comes back.
    exhausted: AtomicBool,
    /// Ports skipped because they could not be bound (in use elsewhere).
    pub skipped: AtomicU64,
}

/// One port taken from the pool; it goes back (to the end of the free list)
/// when dropped.
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<PortPool>,
    port: u16,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.give_back(self.port);
    }
}

impl PortPool {
    /// Every port of `[min, max]` on `ip` (an empty range when `min > max`);
    /// `tcp`: a port must also be free for a TCP listener.
    pub fn new(ip: IpAddr, min: u16, max: u16, tcp: bool) -> Arc<Self> {
        let free: VecDeque<u16> = (min..=max).collect();
        Arc::new(Self {
            ip,
            tcp,
            span: free.len(),
            free: Mutex::new(free),
            exhausted: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
        })
    }

    /// Ports in the range.
    pub fn span(&self) -> usize {
        self.span
    }

    /// Ports leased now (including one being probed).
    pub fn in_use(&self) -> usize {
        self.span - self.lock().len()
    }

    /// A port that can be bound now, or `None` when every free port of the
    /// range is taken (by this pool or by other processes).
    pub fn lease(self: &Arc<Self>) -> Option<PortLease> {
        self.lease_where(|port| self.bindable(port))
    }

    /// [`PortPool::lease`] with the probe given: each free port is tried at
    /// most once per call, in FIFO order; the ones `usable` refuses go to
    /// the back.
    fn lease_where(self: &Arc<Self>, mut usable: impl FnMut(u16) -> bool) -> Option<PortLease> {
        let tries = self.lock().len();
        for _ in 0..tries {
            let Some(port) = self.lock().pop_front() else {
                break;
            };
            if usable(port) {
                return Some(PortLease {
                    pool: self.clone(),
                    port,
                });
            }
            self.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(port, "sfu: port in use elsewhere, skipped");
            self.lock().push_back(port);
        }
        if !self.exhausted.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                ports = self.span,
                "sfu: no free port left in the range; new SFU connections are refused until one ends"
            );
        }
        None
    }

    fn give_back(&self, port: u16) {
        self.lock().push_back(port);
        self.exhausted.store(false, Ordering::Relaxed);
    }

    /// Whether webrtc-rs will be able to bind `port`: bound and let go.
    fn bindable(&self, port: u16) -> bool {
        let addr = SocketAddr::new(self.ip, port);
        UdpSocket::bind(addr).is_ok() && (!self.tcp || TcpListener::bind(addr).is_ok())
    }

    /// Only port numbers: nothing a panic could leave half-written.
    fn lock(&self) -> MutexGuard<'_, VecDeque<u16>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn leases_take_the_front_and_come_back_at_the_end() {
        let pool = PortPool::new(LO, 50000, 50002, false);
        let a = pool.lease_where(|_| true).expect("free");
        let b = pool.lease_where(|_| true).expect("free");
        assert_eq!((a.port(), b.port(), pool.in_use()), (50000, 50001, 2));
        drop(a);
        let c = pool.lease_where(|_| true).expect("free");
        let d = pool.lease_where(|_| true).expect("free");
        assert_eq!(
            (c.port(), d.port()),
            (50002, 50000),
            "the released port is reused last"
        );
        assert!(pool.lease_where(|_| true).is_none(), "all three leased");
        drop((b, c, d));
        assert_eq!(pool.in_use(), 0);
        assert!(
            PortPool::new(LO, 9, 3, false)
                .lease_where(|_| true)
                .is_none()
        );
    }

    #[test]
    fn taken_ports_are_probed_once_not_rescanned_by_every_lease() {
        // 100 ports, the first 10 held by "another process".
        let pool = PortPool::new(LO, 50000, 50099, false);
        let mut probes = 0;
        let mut leases = Vec::new();
        for _ in 0..90 {
            let l = pool.lease_where(|p| {
                probes += 1;
                p >= 50010
            });
            leases.push(l.expect("a free port"));
        }
        // A scan from the bottom would have probed 10 × 90 taken ports.
        assert_eq!(
            probes, 100,
            "each taken port probed once, each free one once"
        );
        assert_eq!(pool.skipped.load(Ordering::Relaxed), 10);
        // Full: one more lease tries the 10 taken ports once each, then gives up.
        assert!(
            pool.lease_where(|p| {
                probes += 1;
                p >= 50010
            })
            .is_none()
        );
        assert_eq!(probes, 110);
        // A port given back waits behind the taken ones (they went back
        // first): found after one more probe of each.
        drop(leases.pop());
        let mut probes_now = 0;
        let l = pool.lease_where(|p| {
            probes_now += 1;
            p >= 50010
        });
        assert_eq!(l.map(|l| l.port()), Some(50099));
        assert_eq!(probes_now, 11);
    }

    #[test]
    fn a_port_bound_by_someone_else_is_skipped() {
        let held = UdpSocket::bind((LO, 0)).expect("bind");
        let port = held.local_addr().expect("addr").port();
        let pool = PortPool::new(LO, port, port, false);
        assert!(pool.lease().is_none(), "the only port is taken");
        assert_eq!(pool.skipped.load(Ordering::Relaxed), 1);
        drop(held);
        assert_eq!(pool.lease().map(|l| l.port()), Some(port));
    }
}
