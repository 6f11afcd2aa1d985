//! `/metrics`, in the Prometheus text format: the server's own counters
//! ([`Metrics`], plain atomics: the hot path pays one relaxed increment),
//! and the SFU's and Redis's, rendered from snapshots the node hands over.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use protocol::{ErrorCode, PeerId, RoomName};

/// The server's counters. Events are counted by their index in the event
/// list (`handlers`), whose labels are given at construction.
#[derive(Debug)]
pub struct Metrics {
    connections: AtomicI64,
    connections_total: AtomicU64,
    /// Label of each counted event, the last one for unknown events.
    event_labels: &'static [&'static str],
    events: Box<[AtomicU64]>,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    /// Messages relayed to a peer (one per recipient).
    deliveries: AtomicU64,
    /// Packets not queued because a socket's send buffer was full or closed.
    send_dropped: AtomicU64,
}

impl Metrics {
    /// Counters for events labelled `event_labels`.
    pub fn new(event_labels: &'static [&'static str]) -> Self {
        Self {
            connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            event_labels,
            events: event_labels.iter().map(|_| AtomicU64::new(0)).collect(),
            errors: Default::default(),
            deliveries: AtomicU64::new(0),
            send_dropped: AtomicU64::new(0),
        }
    }

    pub fn connected(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub fn disconnected(&self) {
        self.connections.fetch_sub(1, Relaxed);
    }

    /// Counts one event, by its index among the labels.
    pub fn event(&self, index: usize) {
        if let Some(c) = self.events.get(index) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn error(&self, code: ErrorCode) {
        let idx = ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .unwrap_or(ErrorCode::ALL.len() - 1);
        self.errors[idx].fetch_add(1, Relaxed);
    }

    pub fn delivered(&self, n: u64) {
        self.deliveries.fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, n: u64) {
        self.send_dropped.fetch_add(n, Relaxed);
    }

    pub fn connections(&self) -> i64 {
        self.connections.load(Relaxed)
    }

    /// Renders the server's counters; `rooms` and `peers` come from the
    /// room store.
    pub fn render(&self, out: &mut String, rooms: usize, peers: usize) {
        let mut gauge = |name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "signal_connections",
            "Connected socket.io sockets.",
            self.connections(),
        );
        gauge(
            "signal_rooms",
            "Rooms with at least one peer.",
            rooms as i64,
        );
        gauge(
            "signal_peers",
            "Peers over all rooms (a socket in two rooms counts twice).",
            peers as i64,
        );
        let _ = writeln!(
            out,
            "# HELP signal_connections_total Sockets connected since start.\n\
             # TYPE signal_connections_total counter\n\
             signal_connections_total {}",
            self.connections_total.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP signal_events_total Client events received, by event.\n\
             # TYPE signal_events_total counter"
        );
        for (label, n) in self.event_labels.iter().zip(self.events.iter()) {
            let _ = writeln!(
                out,
                "signal_events_total{{event=\"{label}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP signal_errors_total Error acks sent, by code.\n\
             # TYPE signal_errors_total counter"
        );
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "signal_errors_total{{code=\"{code}\"}} {}",
                self.errors[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP signal_deliveries_total Events relayed to peers (one per recipient).\n\
             # TYPE signal_deliveries_total counter\n\
             signal_deliveries_total {}\n\
             # HELP signal_send_dropped_total Packets dropped because a socket's send buffer was full or closed.\n\
             # TYPE signal_send_dropped_total counter\n\
             signal_send_dropped_total {}",
            self.deliveries.load(Relaxed),
            self.send_dropped.load(Relaxed)
        );
    }
}

/// One SFU room's counters, read at one instant.
#[derive(Debug, Clone)]
pub struct SfuRoomSnapshot {
    pub room: RoomName,
    pub totals: sfu::RoomTotals,
    pub peers: Vec<(PeerId, sfu::PeerSnapshot)>,
}

/// Renders the SFU's counters, per room and per peer.
pub fn render_sfu(out: &mut String, rooms: &[SfuRoomSnapshot]) {
    let _ = writeln!(
        out,
        "# HELP signal_sfu_rooms Rooms whose media goes through the SFU.\n\
         # TYPE signal_sfu_rooms gauge\nsignal_sfu_rooms {}",
        rooms.len()
    );
    type Total = fn(&sfu::RoomTotals) -> u64;
    let per_room: [(&str, &str, Total); 5] = [
        ("rtp_in", "RTP packets received from publishers", |t| {
            t.rtp_in
        }),
        ("rtp_out", "RTP packets forwarded to subscribers", |t| {
            t.rtp_out
        }),
        ("rtp_dropped", "RTP packets a slow subscriber missed", |t| {
            t.rtp_dropped_slow
        }),
        (
            "pli_to_publishers",
            "keyframe requests sent to publishers",
            |t| t.pli_to_publishers,
        ),
        (
            "tracks_refused",
            "tracks not forwarded (publisher over the per-peer limit)",
            |t| t.tracks_refused,
        ),
    ];
    for (name, help, field) in per_room {
        let _ = writeln!(
            out,
            "# HELP signal_sfu_{name}_total SFU: {help}.\n# TYPE signal_sfu_{name}_total counter"
        );
        for r in rooms {
            let _ = writeln!(
                out,
                "signal_sfu_{name}_total{{room=\"{}\"}} {}",
                r.room,
                field(&r.totals)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP signal_sfu_published_tracks SFU: tracks being forwarded.\n# TYPE signal_sfu_published_tracks gauge"
    );
    for r in rooms {
        let _ = writeln!(
            out,
            "signal_sfu_published_tracks{{room=\"{}\"}} {}",
            r.room, r.totals.published_tracks
        );
    }
    type Field = fn(&sfu::PeerSnapshot) -> u64;
    let per_peer: [(&str, &str, Field); 7] = [
        ("rtp_in", "RTP packets received from this publisher", |s| {
            s.rtp_in
        }),
        (
            "bytes_in",
            "RTP payload bytes received from this publisher",
            |s| s.bytes_in,
        ),
        (
            "lost_in",
            "packets missing in this publisher's sequence numbers",
            |s| s.lost_in,
        ),
        ("rtp_out", "RTP packets forwarded to this subscriber", |s| {
            s.rtp_out
        }),
        (
            "bytes_out",
            "RTP payload bytes forwarded to this subscriber",
            |s| s.bytes_out,
        ),
        (
            "dropped_out",
            "packets this subscriber missed (its queue was full)",
            |s| s.dropped_out,
        ),
        (
            "lost_out",
            "packets this subscriber reports lost (RTCP receiver reports)",
            |s| s.lost_out,
        ),
    ];
    for (name, help, field) in per_peer {
        let _ = writeln!(
            out,
            "# HELP signal_sfu_peer_{name}_total SFU, per peer: {help}.\n# TYPE signal_sfu_peer_{name}_total counter"
        );
        for r in rooms {
            for (peer, snap) in &r.peers {
                let _ = writeln!(
                    out,
                    "signal_sfu_peer_{name}_total{{room=\"{}\",peer=\"{peer}\"}} {}",
                    r.room,
                    field(snap)
                );
            }
        }
    }
}

/// Redis, as one node sees it.
#[derive(Debug, Clone, Copy)]
pub struct RedisSnapshot {
    pub up: bool,
    pub connects: u64,
    pub errors: u64,
}

/// Renders the Redis series of a scaled-out node.
pub fn render_redis(out: &mut String, r: RedisSnapshot) {
    let _ = write!(
        out,
        "# HELP signal_redis_up 1 while this node is connected to Redis.\n\
         # TYPE signal_redis_up gauge\nsignal_redis_up {}\n\
         # HELP signal_redis_connects_total Connections made to Redis (reconnects included).\n\
         # TYPE signal_redis_connects_total counter\nsignal_redis_connects_total {}\n\
         # HELP signal_redis_errors_total Redis calls that failed, and connections lost.\n\
         # TYPE signal_redis_errors_total counter\nsignal_redis_errors_total {}\n",
        u8::from(r.up),
        r.connects,
        r.errors,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new(&["join", "chat", "other"]);
        m.connected();
        m.event(1);
        m.event(2);
        m.error(ErrorCode::RoomFull);
        let mut text = String::new();
        m.render(&mut text, 3, 4);
        assert!(text.contains("signal_connections 1\n"));
        assert!(text.contains("signal_rooms 3\n"));
        assert!(text.contains("signal_peers 4\n"));
        assert!(text.contains("signal_events_total{event=\"chat\"} 1\n"));
        assert!(text.contains("signal_events_total{event=\"other\"} 1\n"));
        assert!(text.contains("signal_events_total{event=\"join\"} 0\n"));
        assert!(text.contains("signal_errors_total{code=\"room_full\"} 1\n"));
        assert!(text.contains("signal_errors_total{code=\"internal\"} 0\n"));
    }

    #[test]
    fn renders_redis_and_an_empty_sfu() {
        let mut text = String::new();
        render_sfu(&mut text, &[]);
        render_redis(
            &mut text,
            RedisSnapshot {
                up: true,
                connects: 2,
                errors: 1,
            },
        );
        assert!(text.contains("signal_sfu_rooms 0\n"));
        assert!(text.contains("signal_redis_up 1\n"));
        assert!(text.contains("signal_redis_errors_total 1\n"));
    }
}
