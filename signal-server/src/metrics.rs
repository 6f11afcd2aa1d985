//! `/metrics`, in the Prometheus text format: the server's own counters
//! ([`Metrics`], plain atomics: the hot path pays one relaxed increment),
//! the HTTP server's ([`HttpCounters`]), and the SFU's and Redis's, rendered
//! from snapshots the node hands over.
//!
//! `/metrics` is unauthenticated, so no series names a room or a peer: a
//! room's name is all it takes to join it (docs/security.md). Everything is
//! an aggregate, and the size of the page does not grow with rooms or peers.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

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
    /// The SFU's counters carried across scrapes (rooms end, totals stay).
    sfu: Mutex<SfuTotals>,
    /// Resume outcomes, by [`Resume`].
    resumes: [AtomicU64; 3],
    /// Scaled out: SFU rooms this node moved off a node that was gone.
    sfu_moves: AtomicU64,
}

/// What became of a held seat, or of a join with a resume token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Taken back with its token.
    Resumed = 0,
    /// Its grace period ended first.
    Expired = 1,
    /// A join's token matched no seat (unknown, used or expired).
    Refused = 2,
}

const RESUME_LABELS: [&str; 3] = ["resumed", "expired", "refused"];

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
            sfu: Mutex::new(SfuTotals::default()),
            resumes: Default::default(),
            sfu_moves: AtomicU64::new(0),
        }
    }

    /// This node moved an SFU room off a node that was gone.
    pub fn sfu_moved(&self) {
        self.sfu_moves.fetch_add(1, Relaxed);
    }

    pub fn resume(&self, outcome: Resume, n: u64) {
        self.resumes[outcome as usize].fetch_add(n, Relaxed);
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

    /// Renders the SFU's series from `rooms`, read now (aggregates only);
    /// the per-subscriber distributions only when `tallied` (the shard
    /// engine tallies them; the webrtc engine's would read 0).
    pub fn render_sfu(&self, out: &mut String, rooms: &[SfuRoomSnapshot], tallied: bool) {
        self.sfu
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .render(out, rooms, tallied);
    }

    /// Renders the server's counters; `rooms`, `peers` and `held` (seats
    /// held for a resume) come from the room store.
    pub fn render(&self, out: &mut String, rooms: usize, peers: usize, held: usize) {
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
        gauge(
            "signal_resume_held",
            "Seats held for a resume after their connection was lost.",
            held as i64,
        );
        let _ = writeln!(
            out,
            "# HELP signal_resume_total Held seats taken back, expired, and joins whose resume token matched no seat.\n\
             # TYPE signal_resume_total counter"
        );
        for (label, n) in RESUME_LABELS.iter().zip(self.resumes.iter()) {
            let _ = writeln!(
                out,
                "signal_resume_total{{outcome=\"{label}\"}} {}",
                n.load(Relaxed)
            );
        }
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
             signal_send_dropped_total {}\n\
             # HELP signal_sfu_moves_total Scaled out: SFU rooms this node moved to another SFU node because theirs was gone.\n\
             # TYPE signal_sfu_moves_total counter\n\
             signal_sfu_moves_total {}",
            self.deliveries.load(Relaxed),
            self.send_dropped.load(Relaxed),
            self.sfu_moves.load(Relaxed)
        );
    }
}

/// One SFU room's counters, read at one instant. Its room name and peer
/// ids never reach `/metrics` (they would let anyone find and join the
/// room); they only tell scrapes apart.
#[derive(Debug, Clone)]
pub struct SfuRoomSnapshot {
    pub room: RoomName,
    pub totals: sfu::RoomTotals,
    pub peers: Vec<(PeerId, sfu::PeerSnapshot)>,
}

/// The SFU's counters summed over rooms and peers. A room's (a peer's)
/// counts end with it, so each scrape adds what every room and peer counted
/// since the previous scrape: the totals never go down, and what a room
/// counted after the last scrape before it ended is not counted.
#[derive(Debug, Default)]
pub struct SfuTotals {
    rooms: Carry<RoomName, { ROOM_COUNTERS.len() }>,
    peers: Carry<(RoomName, PeerId), { PEER_COUNTERS.len() }>,
}

type RoomField = fn(&sfu::RoomTotals) -> u64;
type PeerField = fn(&sfu::PeerSnapshot) -> u64;

/// Room counters, as `signal_sfu_<name>_total`.
const ROOM_COUNTERS: [(&str, &str, RoomField); 5] = [
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

/// Peer counters summed over peers, as `signal_sfu_<name>_total`.
const PEER_COUNTERS: [(&str, &str, PeerField); 4] = [
    (
        "bytes_in",
        "RTP payload bytes received from publishers",
        |s| s.bytes_in,
    ),
    (
        "bytes_out",
        "RTP payload bytes forwarded to subscribers",
        |s| s.bytes_out,
    ),
    (
        "lost_in",
        "packets missing in publishers' sequence numbers",
        |s| s.lost_in,
    ),
    (
        "lost_out",
        "packets subscribers report lost (RTCP receiver reports)",
        |s| s.lost_out,
    ),
];

/// Upper bounds (bits/s) of the SFU subscribers' send-rate histogram.
const SEND_BPS_BUCKETS: [u64; 8] = [
    64_000, 256_000, 512_000, 1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000,
];

/// Upper bounds of the peers-per-SFU-room histogram's buckets.
const ROOM_PEERS_BUCKETS: [u64; 10] = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64];

impl SfuTotals {
    /// Renders the SFU's series: counts of rooms, peers and tracks, a
    /// histogram of peers per room, and counters summed over rooms and
    /// peers. No series names a room or a peer.
    pub fn render(&mut self, out: &mut String, rooms: &[SfuRoomSnapshot], tallied: bool) {
        let peers: u64 = rooms.iter().map(|r| r.totals.peers).sum();
        let tracks: u64 = rooms.iter().map(|r| r.totals.published_tracks).sum();
        let _ = writeln!(
            out,
            "# HELP signal_sfu_rooms Rooms whose media goes through the SFU.\n\
             # TYPE signal_sfu_rooms gauge\nsignal_sfu_rooms {}\n\
             # HELP signal_sfu_peers Peers connected to the SFU, over all rooms.\n\
             # TYPE signal_sfu_peers gauge\nsignal_sfu_peers {peers}\n\
             # HELP signal_sfu_published_tracks SFU: tracks being forwarded, over all rooms.\n\
             # TYPE signal_sfu_published_tracks gauge\nsignal_sfu_published_tracks {tracks}",
            rooms.len()
        );
        // A gauge histogram (OpenMetrics), written as a histogram: the rooms
        // open now, by their number of peers.
        let _ = writeln!(
            out,
            "# HELP signal_sfu_room_peers SFU rooms open now, by their number of peers.\n\
             # TYPE signal_sfu_room_peers histogram"
        );
        for le in ROOM_PEERS_BUCKETS {
            let n = rooms.iter().filter(|r| r.totals.peers <= le).count();
            let _ = writeln!(out, "signal_sfu_room_peers_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "signal_sfu_room_peers_bucket{{le=\"+Inf\"}} {n}\n\
             signal_sfu_room_peers_sum {peers}\nsignal_sfu_room_peers_count {n}",
            n = rooms.len()
        );
        // Per subscriber, as distributions (no series names a peer): the
        // layer each video subscription gets, and what each subscriber is
        // sent (tallied each second by the shard engine).
        if tallied {
            render_subscribers(out, rooms);
        }
        let room_totals = self.rooms.add(
            rooms
                .iter()
                .map(|r| (r.room.clone(), ROOM_COUNTERS.map(|(_, _, f)| f(&r.totals)))),
        );
        let peer_totals = self.peers.add(rooms.iter().flat_map(|r| {
            r.peers.iter().map(|(peer, snap)| {
                (
                    (r.room.clone(), peer.clone()),
                    PEER_COUNTERS.map(|(_, _, f)| f(snap)),
                )
            })
        }));
        let names = ROOM_COUNTERS
            .iter()
            .map(|(name, help, _)| (name, help))
            .zip(room_totals)
            .chain(
                PEER_COUNTERS
                    .iter()
                    .map(|(name, help, _)| (name, help))
                    .zip(peer_totals),
            );
        for ((name, help), total) in names {
            let _ = writeln!(
                out,
                "# HELP signal_sfu_{name}_total SFU: {help}.\n\
                 # TYPE signal_sfu_{name}_total counter\nsignal_sfu_{name}_total {total}"
            );
        }
    }
}

/// The per-subscriber distributions of the SFU: video subscriptions by
/// layer, and a histogram of what each peer was sent over the last second.
fn render_subscribers(out: &mut String, rooms: &[SfuRoomSnapshot]) {
    let subscribers = || rooms.iter().flat_map(|r| r.peers.iter().map(|(_, s)| s));
    let _ = writeln!(
        out,
        "# HELP signal_sfu_video_subscriptions SFU video subscriptions now, by the simulcast layer each subscriber gets (0 the lowest; single: a stream of one layer).\n\
             # TYPE signal_sfu_video_subscriptions gauge"
    );
    for (i, label) in ["0", "1", "2", "single"].iter().enumerate() {
        let n: u64 = subscribers().map(|s| s.video_layers[i]).sum();
        let _ = writeln!(
            out,
            "signal_sfu_video_subscriptions{{layer=\"{label}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP signal_sfu_subscriber_send_bps SFU peers now, by the media they were sent over the last second (bits/s).\n\
             # TYPE signal_sfu_subscriber_send_bps histogram"
    );
    for le in SEND_BPS_BUCKETS {
        let n = subscribers().filter(|s| s.send_bps <= le).count();
        let _ = writeln!(
            out,
            "signal_sfu_subscriber_send_bps_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "signal_sfu_subscriber_send_bps_bucket{{le=\"+Inf\"}} {n}\n\
             signal_sfu_subscriber_send_bps_sum {}\nsignal_sfu_subscriber_send_bps_count {n}",
        subscribers().map(|s| s.send_bps).sum::<u64>(),
        n = subscribers().count()
    );
}

/// Running totals of `N` counters read from things that come and go.
#[derive(Debug)]
struct Carry<K, const N: usize> {
    totals: [u64; N],
    /// What each thing had counted at the previous reading.
    last: HashMap<K, [u64; N]>,
}

impl<K, const N: usize> Default for Carry<K, N> {
    fn default() -> Self {
        Self {
            totals: [0; N],
            last: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, const N: usize> Carry<K, N> {
    /// Adds what each thing counted since the previous reading (all of it,
    /// for a thing new since then or whose count went down: a new thing
    /// under an old key) and forgets the things gone.
    fn add(&mut self, now: impl Iterator<Item = (K, [u64; N])>) -> [u64; N] {
        let mut next = HashMap::with_capacity(self.last.len());
        for (key, counts) in now {
            let before = self.last.remove(&key).unwrap_or([0; N]);
            for ((total, now), before) in self.totals.iter_mut().zip(counts).zip(before) {
                *total = total.saturating_add(if now >= before { now - before } else { now });
            }
            next.insert(key, counts);
        }
        self.last = next;
        self.totals
    }
}

/// What the HTTP server counts of its connections and refusals.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Connections speaking HTTP now (upgraded WebSockets have left).
    open: AtomicI64,
    header_timeouts: AtomicU64,
    idle_closed: AtomicU64,
    origin_refused: AtomicU64,
    config_limited: AtomicU64,
}

/// An open HTTP connection, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a HttpCounters);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

impl HttpCounters {
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.open.fetch_add(1, Relaxed);
        OpenConnection(self)
    }

    /// A connection dropped: its request head did not arrive in time.
    pub fn header_timeout(&self) {
        self.header_timeouts.fetch_add(1, Relaxed);
    }

    /// An idle keep-alive connection closed.
    pub fn idle_closed(&self) {
        self.idle_closed.fetch_add(1, Relaxed);
    }

    /// A socket.io handshake refused for its `Origin`.
    pub fn origin_refused(&self) {
        self.origin_refused.fetch_add(1, Relaxed);
    }

    /// An `/api/config` request over its address's budget.
    pub fn config_limited(&self) {
        self.config_limited.fetch_add(1, Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP signal_http_connections HTTP connections open (upgraded WebSockets not included).\n\
             # TYPE signal_http_connections gauge\nsignal_http_connections {}\n\
             # HELP signal_http_closed_total HTTP connections the server closed, by reason.\n\
             # TYPE signal_http_closed_total counter\n\
             signal_http_closed_total{{reason=\"header_timeout\"}} {}\n\
             signal_http_closed_total{{reason=\"idle\"}} {}\n\
             # HELP signal_http_refused_total HTTP requests refused, by reason.\n\
             # TYPE signal_http_refused_total counter\n\
             signal_http_refused_total{{reason=\"origin\"}} {}\n\
             signal_http_refused_total{{reason=\"config_rate\"}} {}",
            self.open.load(Relaxed),
            self.header_timeouts.load(Relaxed),
            self.idle_closed.load(Relaxed),
            self.origin_refused.load(Relaxed),
            self.config_limited.load(Relaxed),
        );
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
        m.render(&mut text, 3, 4, 0);
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
        Metrics::new(&["other"]).render_sfu(&mut text, &[], true);
        render_redis(
            &mut text,
            RedisSnapshot {
                up: true,
                connects: 2,
                errors: 1,
            },
        );
        assert!(text.contains("signal_sfu_rooms 0\n"));
        assert!(text.contains("signal_sfu_room_peers_count 0\n"));
        assert!(text.contains("signal_sfu_rtp_in_total 0\n"));
        assert!(text.contains("signal_redis_up 1\n"));
        assert!(text.contains("signal_redis_errors_total 1\n"));
    }

    fn room(name: &str, rtp_in: u64, peers: &[(&str, u64)]) -> SfuRoomSnapshot {
        SfuRoomSnapshot {
            room: RoomName::parse(name).expect("a valid room name"),
            totals: sfu::RoomTotals {
                peers: peers.len() as u64,
                rtp_in,
                ..Default::default()
            },
            peers: peers
                .iter()
                .map(|&(id, bytes_in)| {
                    let snap = sfu::PeerSnapshot {
                        bytes_in,
                        // Stand-ins for the shard's tallies: a subscriber
                        // sent 8 × its bytes per second, on layer 1.
                        send_bps: bytes_in * 8,
                        video_layers: [0, 1, 0, 0],
                        ..Default::default()
                    };
                    (PeerId::from(id.to_owned()), snap)
                })
                .collect(),
        }
    }

    #[test]
    fn sfu_series_are_aggregates_that_never_name_a_room_or_peer() {
        let m = Metrics::new(&["other"]);
        let scrape = |rooms: &[SfuRoomSnapshot]| {
            let mut text = String::new();
            m.render_sfu(&mut text, rooms, true);
            text
        };
        let text = scrape(&[
            room("secret-room-a", 10, &[("peer-1", 100), ("peer-2", 5)]),
            room("secret-room-b", 3, &[("peer-3", 7)]),
        ]);
        assert!(!text.contains("secret-room") && !text.contains("peer-"));
        assert!(text.contains("signal_sfu_rooms 2\n"));
        assert!(text.contains("signal_sfu_peers 3\n"));
        assert!(text.contains("signal_sfu_rtp_in_total 13\n"));
        assert!(text.contains("signal_sfu_bytes_in_total 112\n"));
        assert!(text.contains("signal_sfu_room_peers_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("signal_sfu_room_peers_bucket{le=\"2\"} 2\n"));
        assert!(text.contains("signal_sfu_room_peers_sum 3\n"));
        assert!(text.contains("signal_sfu_video_subscriptions{layer=\"1\"} 3\n"));
        assert!(text.contains("signal_sfu_video_subscriptions{layer=\"single\"} 0\n"));
        // 800, 40 and 56 bits/s.
        assert!(text.contains("signal_sfu_subscriber_send_bps_bucket{le=\"64000\"} 3\n"));
        assert!(text.contains("signal_sfu_subscriber_send_bps_sum 896\n"));
        assert!(text.contains("signal_sfu_subscriber_send_bps_count 3\n"));
        // An engine that does not tally them (webrtc) shows no such series
        // rather than zeros.
        let mut untallied = String::new();
        Metrics::new(&["other"]).render_sfu(&mut untallied, &[room("r", 1, &[("p", 1)])], false);
        assert!(!untallied.contains("signal_sfu_video_subscriptions"));
        assert!(!untallied.contains("signal_sfu_subscriber_send_bps"));
        // Room b ends, room a counts on, peer-2 leaves: totals keep what
        // was counted and add the growth.
        let text = scrape(&[room("secret-room-a", 15, &[("peer-1", 150)])]);
        assert!(text.contains("signal_sfu_rooms 1\n"));
        assert!(text.contains("signal_sfu_rtp_in_total 18\n"), "{text}");
        assert!(text.contains("signal_sfu_bytes_in_total 162\n"), "{text}");
        // A new room under an old name starts from zero.
        let text = scrape(&[room("secret-room-a", 2, &[("peer-1", 1)])]);
        assert!(text.contains("signal_sfu_rtp_in_total 20\n"), "{text}");
        assert!(text.contains("signal_sfu_bytes_in_total 163\n"), "{text}");
    }

    #[test]
    fn http_counters_render() {
        let c = HttpCounters::default();
        let open = c.connection_opened();
        c.header_timeout();
        c.origin_refused();
        let mut text = String::new();
        c.render(&mut text);
        assert!(text.contains("signal_http_connections 1\n"));
        assert!(text.contains("signal_http_closed_total{reason=\"header_timeout\"} 1\n"));
        assert!(text.contains("signal_http_refused_total{reason=\"origin\"} 1\n"));
        drop(open);
        let mut text = String::new();
        c.render(&mut text);
        assert!(text.contains("signal_http_connections 0\n"));
    }
}
