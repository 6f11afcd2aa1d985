//! A room's counters: totals for the room ([`RoomMetrics`]) and, while a
//! peer is in the room, its own ([`PeerMetrics`]). Written by the room task
//! and the forwarding tasks without waiting (relaxed atomics); read by
//! whoever renders them, through [`RoomMetrics::totals`] and
//! [`RoomMetrics::peer_snapshot`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rtc::rtcp::reception_report::ReceptionReport;

use protocol::PeerId;

/// One room's counters. The fields stay public for callers that read one
/// counter; [`RoomMetrics::totals`] reads them all at once.
#[derive(Default, Debug)]
pub struct RoomMetrics {
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
    /// Packets a subscriber missed because its connection's queue was full.
    pub rtp_dropped_slow: AtomicU64,
    pub rtp_write_err: AtomicU64,
    pub pli_from_subscribers: AtomicU64,
    pub pli_to_publishers: AtomicU64,
    pub pli_throttled: AtomicU64,
    pub offers_sent: AtomicU64,
    pub offers_ignored_glare: AtomicU64,
    /// Tracks being forwarded now (a gauge).
    pub published_tracks: AtomicU64,
    /// Tracks not forwarded: their publisher had
    /// [`MAX_TRACKS_PER_PEER`](crate::room::MAX_TRACKS_PER_PEER) already.
    pub tracks_refused: AtomicU64,
    /// Per-peer counters, while the peer is in the room.
    peers: Mutex<HashMap<PeerId, Arc<PeerMetrics>>>,
}

/// [`RoomMetrics`] read at one instant, as plain numbers: what a renderer
/// needs without knowing which atomics exist.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomTotals {
    /// Peers in the room now (a gauge).
    pub peers: u64,
    pub rtp_in: u64,
    pub rtp_out: u64,
    /// Packets a subscriber missed because its connection's queue was full.
    pub rtp_dropped_slow: u64,
    pub rtp_write_err: u64,
    pub pli_from_subscribers: u64,
    pub pli_to_publishers: u64,
    pub pli_throttled: u64,
    pub offers_sent: u64,
    pub offers_ignored_glare: u64,
    /// Tracks being forwarded now (a gauge).
    pub published_tracks: u64,
    pub tracks_refused: u64,
}

impl RoomMetrics {
    /// Every room counter, read now.
    pub fn totals(&self) -> RoomTotals {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RoomTotals {
            peers: self.lock_peers().len() as u64,
            rtp_in: load(&self.rtp_in),
            rtp_out: load(&self.rtp_out),
            rtp_dropped_slow: load(&self.rtp_dropped_slow),
            rtp_write_err: load(&self.rtp_write_err),
            pli_from_subscribers: load(&self.pli_from_subscribers),
            pli_to_publishers: load(&self.pli_to_publishers),
            pli_throttled: load(&self.pli_throttled),
            offers_sent: load(&self.offers_sent),
            offers_ignored_glare: load(&self.offers_ignored_glare),
            published_tracks: load(&self.published_tracks),
            tracks_refused: load(&self.tracks_refused),
        }
    }

    /// A snapshot of the per-peer counters, sorted by peer id.
    pub fn peer_snapshot(&self) -> Vec<(PeerId, PeerSnapshot)> {
        let mut v: Vec<_> = self
            .lock_peers()
            .iter()
            .map(|(id, m)| (id.clone(), m.snapshot()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// A new peer's counters, listed until [`RoomMetrics::remove_peer`].
    pub(crate) fn add_peer(&self, peer: PeerId) -> Arc<PeerMetrics> {
        let m = Arc::new(PeerMetrics::default());
        self.lock_peers().insert(peer, m.clone());
        m
    }

    pub(crate) fn remove_peer(&self, peer: &PeerId) {
        self.lock_peers().remove(peer);
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Arc<PeerMetrics>>> {
        // Counters stay readable after a panic elsewhere: nothing here can be left half-written.
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One peer's media counters: what it published (in) and what it was sent (out).
#[derive(Default, Debug)]
pub struct PeerMetrics {
    pub rtp_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Publisher → SFU packets missing from the sequence numbers (before NACK repair).
    pub lost_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Packets this subscriber missed because its connection's queue was full.
    pub dropped_out: AtomicU64,
    /// SFU → subscriber packets lost as the subscriber reports them (RTCP receiver
    /// reports, cumulative, summed over the streams it receives), by SSRC.
    lost_out: Mutex<HashMap<u32, u32>>,
    /// Its video subscriptions now by the simulcast layer each gets (0–2;
    /// [`SINGLE_LAYER`]: a stream of one layer). Tallied each second by the
    /// shard engine; the webrtc engine leaves them at 0.
    pub video_layers: [AtomicU64; 4],
    /// Media payload it was sent over the last second, bits per second
    /// (tallied as [`PeerMetrics::video_layers`]).
    pub send_bps: AtomicU64,
}

/// The index in [`PeerMetrics::video_layers`] of subscriptions to a stream
/// of one layer.
pub const SINGLE_LAYER: usize = 3;

/// [`PeerMetrics`] read at one instant.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub rtp_in: u64,
    pub bytes_in: u64,
    pub lost_in: u64,
    pub rtp_out: u64,
    pub bytes_out: u64,
    pub dropped_out: u64,
    pub lost_out: u64,
    pub video_layers: [u64; 4],
    pub send_bps: u64,
}

impl PeerMetrics {
    pub fn snapshot(&self) -> PeerSnapshot {
        let lost_out = self
            .lost_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|&v| u64::from(v))
            .sum();
        PeerSnapshot {
            rtp_in: self.rtp_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            lost_in: self.lost_in.load(Ordering::Relaxed),
            rtp_out: self.rtp_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            dropped_out: self.dropped_out.load(Ordering::Relaxed),
            lost_out,
            video_layers: self
                .video_layers
                .each_ref()
                .map(|l| l.load(Ordering::Relaxed)),
            send_bps: self.send_bps.load(Ordering::Relaxed),
        }
    }

    /// The cumulative loss a subscriber reports, per stream it receives.
    pub(crate) fn on_reception_reports(&self, reports: &[ReceptionReport]) {
        let mut m = self.lost_out.lock().unwrap_or_else(PoisonError::into_inner);
        for r in reports {
            m.insert(r.ssrc, r.total_lost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_snapshots_read_every_counter() {
        let m = RoomMetrics::default();
        m.rtp_in.fetch_add(3, Ordering::Relaxed);
        m.offers_sent.fetch_add(1, Ordering::Relaxed);
        let b = m.add_peer(PeerId::from("b".to_owned()));
        let a = m.add_peer(PeerId::from("a".to_owned()));
        a.bytes_out.fetch_add(40, Ordering::Relaxed);
        b.on_reception_reports(&[
            ReceptionReport {
                ssrc: 1,
                total_lost: 2,
                ..Default::default()
            },
            ReceptionReport {
                ssrc: 2,
                total_lost: 5,
                ..Default::default()
            },
        ]);
        let t = m.totals();
        assert_eq!((t.peers, t.rtp_in, t.offers_sent, t.rtp_out), (2, 3, 1, 0));
        let snap = m.peer_snapshot();
        let ids: Vec<&str> = snap.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "sorted by peer id");
        assert_eq!(snap[0].1.bytes_out, 40);
        assert_eq!(snap[1].1.lost_out, 7);
        m.remove_peer(&PeerId::from("a".to_owned()));
        assert_eq!(m.totals().peers, 1);
    }
}
