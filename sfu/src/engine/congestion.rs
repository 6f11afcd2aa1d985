//! A subscriber's congestion, as its receiver reports say, and the
//! simulcast layer it caps (docs/sfu-engine.md): a subscriber whose link
//! loses packets gets one layer less at a time, and one more back after a
//! calm spell. Pure logic: the shard feeds it the reports and applies the
//! cap to what the subscriber asked for (`sfu-view`).
//!
//! Loss, not a bandwidth estimate: what a browser reports about the
//! streams it receives from us is RTCP receiver reports (`fraction lost`);
//! a bandwidth estimate would need transport-wide sequence numbers on
//! everything we send and the feedback processed, which is not built.

use std::time::{Duration, Instant};

/// Smoothed loss at or above which a subscriber is sent one layer less:
/// 10 % (of 256).
const LOSSY: u16 = 26;
/// Smoothed loss at or below which the link counts as calm: 2 %.
const CALM: u16 = 5;
/// How long a link stays calm before the subscriber gets one layer more.
pub const CALM_BEFORE_UP: Duration = Duration::from_secs(8);
/// A layer taken away again this soon after it was given back: the link
/// cannot carry it, and the next try waits twice as long ...
const PROBATION: Duration = Duration::from_secs(10);
/// ... up to this; a link calm this long at full quality starts afresh.
const LONGEST_CALM: Duration = Duration::from_secs(64);
/// The top layer (of q/h/f): a cap this high is no cap.
const TOP: usize = 2;

/// Where a loss figure comes from. Each is smoothed on its own (halved
/// towards each new figure) and the worse of the two decides: averaged
/// together, a receiver report that shows nothing (Chrome counts a packet
/// repaired by retransmission as received) would halve what the NACKs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A receiver report's `fraction lost`.
    Reports,
    /// The packets it asked again (NACK), of the video it was sent, over a second.
    Nacks,
}

/// One subscriber's loss and the layer it may get at most.
#[derive(Debug, Clone)]
pub struct LossCap {
    /// Smoothed loss (of 256) by signal: receiver reports, NACKs.
    reports: u16,
    nacks: u16,
    /// The highest layer it may get (`None`: whatever it asks for).
    cap: Option<usize>,
    /// Since when its loss has been calm.
    calm_since: Option<Instant>,
    /// The calm spell asked before a layer is given back: `calm_before_up`,
    /// doubled after each layer that had to be taken away again.
    calm_before_up: Duration,
    up_wait: Duration,
    /// When a layer was last given back.
    raised_at: Option<Instant>,
}

impl Default for LossCap {
    fn default() -> Self {
        Self {
            reports: 0,
            nacks: 0,
            cap: None,
            calm_since: None,
            calm_before_up: CALM_BEFORE_UP,
            up_wait: CALM_BEFORE_UP,
            raised_at: None,
        }
    }
}

impl LossCap {
    /// How long a calm spell lasts before a layer is given back.
    pub fn set_calm_before_up(&mut self, d: Duration) {
        self.calm_before_up = d;
        self.up_wait = d;
    }

    /// The highest layer the subscriber may get (`usize::MAX`: no cap).
    pub fn cap(&self) -> usize {
        self.cap.unwrap_or(usize::MAX)
    }

    /// The smoothed loss that decides, in 1/256.
    pub fn loss(&self) -> u16 {
        self.reports.max(self.nacks)
    }

    /// A loss figure (of 256) from `signal` at `now`; `getting`: the
    /// highest layer the subscriber gets now of a simulcast stream (`None`
    /// if it gets none: nothing to cap). Whether the cap changed.
    pub fn on_loss(
        &mut self,
        signal: Signal,
        lost: u8,
        now: Instant,
        getting: Option<usize>,
    ) -> bool {
        let smoothed = match signal {
            Signal::Reports => &mut self.reports,
            Signal::Nacks => &mut self.nacks,
        };
        *smoothed = (*smoothed + u16::from(lost)).div_ceil(2);
        let Some(getting) = getting else {
            self.calm_since = None;
            return false;
        };
        if self.loss() >= LOSSY {
            self.calm_since = None;
            // Nothing below the lowest layer; and while it still gets a
            // layer above the cap (the lower one's keyframe is on its way),
            // the loss is that layer's: no second step down for it.
            if getting == 0 || self.cap.is_some_and(|c| getting > c) {
                return false;
            }
            if self
                .raised_at
                .is_some_and(|t| now.saturating_duration_since(t) < PROBATION)
            {
                self.up_wait = (self.up_wait * 2).min(LONGEST_CALM);
            }
            self.cap = Some(getting - 1);
            // The loss that made this decision is spent: the next one is
            // judged on what the lower layer brings.
            self.reports = 0;
            self.nacks = 0;
            return true;
        }
        if self.loss() > CALM {
            self.calm_since = None;
            return false;
        }
        let calm = now.saturating_duration_since(*self.calm_since.get_or_insert(now));
        let Some(cap) = self.cap else {
            if calm >= LONGEST_CALM {
                self.up_wait = self.calm_before_up;
            }
            return false;
        };
        if calm < self.up_wait {
            return false;
        }
        self.cap = (cap + 1 < TOP).then_some(cap + 1);
        self.raised_at = Some(now);
        self.calm_since = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Signal::{Nacks, Reports};

    #[test]
    fn loss_caps_one_layer_at_a_time_and_calm_gives_them_back() {
        let t0 = Instant::now();
        let mut c = LossCap::default();
        // A few lost packets: no change.
        assert!(!c.on_loss(Reports, 10, t0, Some(2)));
        assert_eq!(c.cap(), usize::MAX);
        // 30 % lost: one layer less than the top one it gets.
        assert!(c.on_loss(Reports, 80, t0, Some(2)));
        assert_eq!(c.cap(), 1);
        // Still on the top layer (the middle one's keyframe not here yet):
        // its loss takes nothing more away.
        assert!(!c.on_loss(Nacks, 200, t0, Some(2)));
        assert_eq!(c.cap(), 1);
        // Lossy on the middle layer too: the lowest.
        assert!(c.on_loss(Nacks, 200, t0, Some(1)));
        assert_eq!(c.cap(), 0);
        // Nothing below the lowest layer.
        c.on_loss(Reports, 200, t0, Some(0));
        assert_eq!(c.cap(), 0);
        // Calm: a layer back after CALM_BEFORE_UP, then the next one.
        let mut t = t0;
        for _ in 0..8 {
            c.on_loss(Reports, 0, t, Some(0));
            c.on_loss(Nacks, 0, t, Some(0));
        }
        assert!(c.loss() <= CALM);
        assert_eq!(c.cap(), 0, "not calm long enough");
        t += CALM_BEFORE_UP;
        assert!(c.on_loss(Nacks, 0, t, Some(0)));
        assert_eq!(c.cap(), 1);
        t += CALM_BEFORE_UP * 2;
        assert!(c.on_loss(Nacks, 0, t, Some(1)));
        assert_eq!(c.cap(), usize::MAX, "no cap above the top layer");
    }

    #[test]
    fn a_report_that_shows_nothing_does_not_dilute_what_the_nacks_say() {
        let mut c = LossCap::default();
        let t = Instant::now();
        // Every packet repaired: the reports say 0, the NACKs 12 %.
        c.on_loss(Reports, 0, t, Some(1));
        assert!(c.on_loss(Nacks, 62, t, Some(1)), "31/256 smoothed is lossy");
        assert_eq!(c.cap(), 0);
    }

    #[test]
    fn loss_without_a_simulcast_stream_caps_nothing() {
        let mut c = LossCap::default();
        assert!(!c.on_loss(Reports, 255, Instant::now(), None));
        assert_eq!(c.cap(), usize::MAX);
    }

    #[test]
    fn a_spike_of_loss_between_calm_reports_restarts_the_calm_spell() {
        let t0 = Instant::now();
        let mut c = LossCap::default();
        c.on_loss(Reports, 200, t0, Some(1));
        assert_eq!(c.cap(), 0);
        c.on_loss(Reports, 0, t0, Some(0));
        c.on_loss(Reports, 20, t0 + CALM_BEFORE_UP / 2, Some(0));
        c.on_loss(Reports, 0, t0 + CALM_BEFORE_UP, Some(0));
        assert_eq!(c.cap(), 0, "the spike restarted the spell");
    }

    #[test]
    fn a_layer_taken_away_again_soon_after_waits_twice_as_long_next_time() {
        let mut t = Instant::now();
        let mut c = LossCap::default();
        c.on_loss(Reports, 200, t, Some(1));
        assert_eq!(c.cap(), 0);
        c.on_loss(Reports, 0, t, Some(0));
        t += CALM_BEFORE_UP;
        assert!(c.on_loss(Reports, 0, t, Some(0)), "given back");
        // Lossy again within the probation: taken away, and the next
        // spell is twice as long.
        t += Duration::from_secs(2);
        assert!(c.on_loss(Reports, 200, t, Some(1)));
        c.on_loss(Reports, 0, t, Some(0));
        assert!(!c.on_loss(Reports, 0, t + CALM_BEFORE_UP, Some(0)));
        assert!(c.on_loss(Reports, 0, t + CALM_BEFORE_UP * 2, Some(0)));
    }
}
