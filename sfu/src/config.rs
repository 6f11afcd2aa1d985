//! Where the SFU's peer connections listen.

use std::net::IpAddr;
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
    /// Which media core runs the rooms.
    pub engine: SfuEngine,
}

/// The SFU's media core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SfuEngine {
    /// The `webrtc` crate: a connection (and a UDP port of the range, and
    /// with ICE-TCP a TCP port of the same number) per peer; one layer.
    Webrtc,
    /// The shard (docs/sfu-engine.md): every connection on ONE UDP port
    /// (`port_min`, and with ICE-TCP the TCP port of that number),
    /// forwarded synchronously on one thread; simulcast.
    #[default]
    Shard,
}
