//! Who is speaking: the mean level of every received audio track over the
//! last [`POLL_MS`], from the change of its `totalAudioEnergy` and
//! `totalSamplesDuration` (`getStats`: short sounds between two reads count
//! too, no Web Audio needed), and our own microphone's level. A speaker
//! stays "speaking" for [`HOLD_MS`] after its last loud moment, and the
//! room's active speaker changes at most once per [`HOLD_MS`]: no flicker
//! between two voices.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;

use super::Call;
use super::topology::Link;
use crate::js::now_ms;

/// Mean level (RMS, linear, 1 = full scale) above which a voice counts:
/// about -40 dBov, what speech reaches and background noise does not.
const LOUD: f64 = 0.01;
/// Our own microphone's meter (0..1 over -60..0 dBFS) counts above this.
const LOUD_MIC: f64 = 0.45;
/// How long speaking lasts after the last loud moment, and how long the
/// active speaker is kept before another may take over.
const HOLD_MS: f64 = 1000.0;
const POLL_MS: u64 = 250;

#[derive(Default)]
pub(super) struct Speakers {
    /// Peer id (ours included) → when it was last loud (`now_ms`).
    loud_at: RefCell<HashMap<String, f64>>,
    /// The active speaker since when.
    since: std::cell::Cell<f64>,
    /// Per received track: energy and duration at the last read.
    energy: RefCell<HashMap<String, (f64, f64)>>,
    busy: std::cell::Cell<bool>,
    timer: std::cell::Cell<Option<IntervalHandle>>,
}

impl Call {
    pub(super) fn start_speakers(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let timer = set_interval_with_handle(
            move || {
                if let Some(call) = weak.upgrade()
                    && !call.speakers.busy.replace(true)
                {
                    wasm_bindgen_futures::spawn_local(async move {
                        call.listen_for_speakers().await;
                        call.speakers.busy.set(false);
                    });
                }
            },
            Duration::from_millis(POLL_MS),
        );
        if let Ok(t) = timer {
            self.speakers.timer.set(Some(t));
        }
    }

    pub(super) fn stop_speakers(&self) {
        if let Some(t) = self.speakers.timer.take() {
            t.clear();
        }
    }

    async fn listen_for_speakers(&self) {
        let mut heard = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (link, pc) in self.connections() {
            for (track, stream, energy, secs) in pc.audio_energy().await {
                seen.insert(track.clone());
                let before = self
                    .speakers
                    .energy
                    .borrow_mut()
                    .insert(track, (energy, secs));
                let Some((e0, s0)) = before else { continue };
                let level = if secs > s0 {
                    ((energy - e0) / (secs - s0)).max(0.0).sqrt()
                } else {
                    0.0
                };
                let peer = match &link {
                    Link::Peer(id) => Some(id.clone()),
                    // Through the SFU each stream is named after its publisher.
                    Link::Sfu => stream,
                    Link::Data(_) => None,
                };
                if let Some(peer) = peer.filter(|_| level > LOUD) {
                    heard.push(peer);
                }
            }
        }
        self.speakers
            .energy
            .borrow_mut()
            .retain(|t, _| seen.contains(t));
        let now = now_ms();
        let mut loud = self.speakers.loud_at.borrow_mut();
        for peer in heard {
            loud.insert(peer, now);
        }
        let me = self.self_id().unwrap_or_default();
        if self.ui.mic_on.get_untracked() && self.ui.mic_level.get_untracked() > LOUD_MIC {
            loud.insert(me.clone(), now);
        }
        let speaking = |id: &str| loud.get(id).is_some_and(|t| now - t < HOLD_MS);
        // Tiles: only the changes.
        let changed = self.ui.peers.with_untracked(|ps| {
            ps.iter()
                .any(|p| p.speaking != (speaking(&p.id) && p.media.audio))
        });
        if changed {
            self.ui.peers.update(|ps| {
                for p in ps {
                    p.speaking = speaking(&p.id) && p.media.audio;
                }
            });
        }
        // The active speaker: kept for HOLD_MS, then the latest to speak.
        let current = self.ui.speaker.get_untracked();
        if !current.is_empty() && speaking(&current) && now - self.speakers.since.get() < HOLD_MS {
            return;
        }
        let latest = loud
            .iter()
            .filter(|(id, _)| speaking(id))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, _)| id.clone());
        if let Some(id) = latest.filter(|id| *id != current) {
            self.speakers.since.set(now);
            self.ui.speaker.set(id);
        }
        loud.retain(|_, t| now - *t < 10.0 * HOLD_MS);
    }
}
