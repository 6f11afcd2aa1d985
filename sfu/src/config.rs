//! Where the SFU's peer connections listen.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Networking and keyframe settings of the SFU.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// A concrete address: a wildcard makes webrtc-rs skip loopback.
    pub bind_ip: IpAddr,
    /// Ports for peer connections (webrtc 0.21 has no UDP mux: one socket each;
    /// with `ice_tcp`, the same number is also a TCP listener).
    pub port_min: u16,
    pub port_max: u16,
    /// Public address announced instead of `bind_ip` (1:1 NAT, e.g. a cloud VM).
    pub nat_1to1_ip: Option<String>,
    /// At most one keyframe request per publisher track in this interval.
    pub pli_throttle: Duration,
    /// Also accept ICE-TCP on the same port numbers (for networks without UDP).
    pub ice_tcp: bool,
}

/// Round-robin port allocator over [port_min, port_max] (0.21 has no UDP mux: 1 socket/PC).
pub struct Ports {
    next: AtomicU16,
    min: u16,
    max: u16,
}

impl Ports {
    pub fn new(min: u16, max: u16) -> Self {
        Self {
            next: AtomicU16::new(min),
            min,
            max,
        }
    }
    pub fn span(&self) -> usize {
        usize::from(self.max.saturating_sub(self.min)) + 1
    }

    pub fn next(&self) -> u16 {
        let span = u32::from(self.max.saturating_sub(self.min)) + 1;
        let n = u32::from(self.next.fetch_add(1, Ordering::Relaxed));
        let offset = (n + span - u32::from(self.min) % span) % span;
        self.min + offset as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_cycle_within_the_range() {
        let p = Ports::new(50000, 50002);
        let got: Vec<u16> = (0..7).map(|_| p.next()).collect();
        assert_eq!(got, [50000, 50001, 50002, 50000, 50001, 50002, 50000]);
        assert_eq!(p.span(), 3);
        let one = Ports::new(7, 7);
        assert_eq!((one.next(), one.next()), (7, 7));
    }
}
