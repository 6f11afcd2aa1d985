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
/// The top layer (of q/h/f): a cap this high is no cap.
const TOP: usize = 2;

/// One subscriber's loss and the layer it may get at most.
#[derive(Debug, Clone)]
pub struct LossCap {
    /// Smoothed `fraction lost` (0–255), halved towards each report.
    loss: u16,
    /// The highest layer it may get (`None`: whatever it asks for).
    cap: Option<usize>,
    /// Since when its loss has been calm.
    calm_since: Option<Instant>,
    calm_before_up: Duration,
}

impl Default for LossCap {
    fn default() -> Self {
        Self {
            loss: 0,
            cap: None,
            calm_since: None,
            calm_before_up: CALM_BEFORE_UP,
        }
    }
}

impl LossCap {
    /// How long a calm spell lasts before a layer is given back.
    pub fn set_calm_before_up(&mut self, d: Duration) {
        self.calm_before_up = d;
    }

    /// The highest layer the subscriber may get (`usize::MAX`: no cap).
    pub fn cap(&self) -> usize {
        self.cap.unwrap_or(usize::MAX)
    }

    /// The smoothed loss, in 1/256.
    pub fn loss(&self) -> u16 {
        self.loss
    }

    /// A receiver report's worst `fraction lost` (of 256) at `now`;
    /// `getting`: the highest layer the subscriber gets now of a simulcast
    /// stream (`None` if it gets none: nothing to cap). Whether the cap
    /// changed.
    pub fn on_report(&mut self, fraction_lost: u8, now: Instant, getting: Option<usize>) -> bool {
        self.loss = (self.loss + u16::from(fraction_lost)).div_ceil(2);
        let Some(getting) = getting else {
            self.calm_since = None;
            return false;
        };
        if self.loss >= LOSSY {
            self.calm_since = None;
            // One below what it gets now, not below the lowest layer.
            let cap = getting.min(self.cap()).saturating_sub(1);
            if getting == 0 || self.cap == Some(cap) {
                return false;
            }
            self.cap = Some(cap);
            // The loss that made this decision is spent: the next one is
            // judged on what the lower layer brings.
            self.loss = 0;
            return true;
        }
        if self.loss > CALM {
            self.calm_since = None;
            return false;
        }
        let since = *self.calm_since.get_or_insert(now);
        let Some(cap) = self.cap else {
            return false;
        };
        if now.saturating_duration_since(since) < self.calm_before_up {
            return false;
        }
        self.cap = (cap + 1 < TOP).then_some(cap + 1);
        self.calm_since = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_caps_one_layer_at_a_time_and_calm_gives_them_back() {
        let t0 = Instant::now();
        let mut c = LossCap::default();
        // A few lost packets: no change.
        assert!(!c.on_report(10, t0, Some(2)));
        assert_eq!(c.cap(), usize::MAX);
        // 30 % lost: one layer less than the top one it gets.
        assert!(c.on_report(80, t0, Some(2)));
        assert_eq!(c.cap(), 1);
        // Still lossy on the middle layer: the lowest.
        assert!(
            !c.on_report(40, t0, Some(1)),
            "smoothed: 20/256 is not yet lossy"
        );
        assert!(c.on_report(80, t0, Some(1)));
        assert_eq!(c.cap(), 0);
        // Nothing below the lowest layer.
        c.on_report(200, t0, Some(0));
        assert_eq!(c.cap(), 0);
        // Calm: a layer back after CALM_BEFORE_UP, then the next one.
        let mut t = t0;
        for _ in 0..6 {
            c.on_report(0, t, Some(0));
        }
        assert!(c.loss() <= CALM);
        assert_eq!(c.cap(), 0, "not calm long enough");
        t += CALM_BEFORE_UP;
        assert!(c.on_report(0, t, Some(0)));
        assert_eq!(c.cap(), 1);
        t += CALM_BEFORE_UP;
        assert!(c.on_report(0, t, Some(1)));
        assert_eq!(c.cap(), usize::MAX, "no cap above the top layer");
    }

    #[test]
    fn loss_without_a_simulcast_stream_caps_nothing() {
        let mut c = LossCap::default();
        assert!(!c.on_report(255, Instant::now(), None));
        assert_eq!(c.cap(), usize::MAX);
    }

    #[test]
    fn a_spike_of_loss_between_calm_reports_restarts_the_calm_spell() {
        let t0 = Instant::now();
        let mut c = LossCap::default();
        c.on_report(200, t0, Some(1));
        assert_eq!(c.cap(), 0);
        c.on_report(0, t0, Some(0));
        c.on_report(20, t0 + CALM_BEFORE_UP / 2, Some(0));
        c.on_report(0, t0 + CALM_BEFORE_UP, Some(0));
        assert_eq!(c.cap(), 0, "the spike restarted the spell");
    }
}
