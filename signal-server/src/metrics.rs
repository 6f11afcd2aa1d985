//! Counters for `/metrics`, in the Prometheus text format. Plain atomics:
//! the hot path pays one relaxed increment.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use protocol::ErrorCode;

/// The events counted, by name; anything else is `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Join,
    Leave,
    Signal,
    Chat,
    Typing,
    MediaState,
    ChatReceipt,
    Ping,
    Other,
}

impl EventKind {
    const ALL: [EventKind; 9] = [
        EventKind::Join,
        EventKind::Leave,
        EventKind::Signal,
        EventKind::Chat,
        EventKind::Typing,
        EventKind::MediaState,
        EventKind::ChatReceipt,
        EventKind::Ping,
        EventKind::Other,
    ];

    pub fn from_name(name: &str) -> Self {
        match name {
            protocol::events::JOIN => EventKind::Join,
            protocol::events::LEAVE => EventKind::Leave,
            protocol::events::SIGNAL => EventKind::Signal,
            protocol::events::CHAT => EventKind::Chat,
            protocol::events::TYPING => EventKind::Typing,
            protocol::events::MEDIA_STATE => EventKind::MediaState,
            protocol::events::CHAT_RECEIPT => EventKind::ChatReceipt,
            protocol::events::PING => EventKind::Ping,
            _ => EventKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Signal => "signal",
            EventKind::Chat => "chat",
            EventKind::Typing => "typing",
            EventKind::MediaState => "media-state",
            EventKind::ChatReceipt => "chat-receipt",
            EventKind::Ping => "peer-ping",
            EventKind::Other => "other",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicI64,
    connections_total: AtomicU64,
    events: [AtomicU64; 9],
    errors: [AtomicU64; 8],
    /// Messages relayed to a peer (one per recipient).
    deliveries: AtomicU64,
    /// Packets not queued because a socket's send buffer was full or closed.
    send_dropped: AtomicU64,
}

impl Metrics {
    pub fn connected(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub fn disconnected(&self) {
        self.connections.fetch_sub(1, Relaxed);
    }

    pub fn event(&self, kind: EventKind) {
        self.events[kind as usize].fetch_add(1, Relaxed);
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

    /// Renders every metric; `rooms` and `peers` come from the registry.
    pub fn render(&self, rooms: usize, peers: usize) -> String {
        let mut out = String::with_capacity(2048);
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
        for kind in EventKind::ALL {
            let _ = writeln!(
                out,
                "signal_events_total{{event=\"{}\"}} {}",
                kind.as_str(),
                self.events[kind as usize].load(Relaxed)
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.connected();
        m.event(EventKind::from_name("chat"));
        m.event(EventKind::from_name("nope"));
        m.error(ErrorCode::RoomFull);
        let text = m.render(3, 4);
        assert!(text.contains("signal_connections 1\n"));
        assert!(text.contains("signal_rooms 3\n"));
        assert!(text.contains("signal_peers 4\n"));
        assert!(text.contains("signal_events_total{event=\"chat\"} 1\n"));
        assert!(text.contains("signal_events_total{event=\"other\"} 1\n"));
        assert!(text.contains("signal_errors_total{code=\"room_full\"} 1\n"));
        assert!(text.contains("signal_errors_total{code=\"internal\"} 0\n"));
    }
}
