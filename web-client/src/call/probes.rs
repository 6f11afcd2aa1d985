//! Measuring the call, once a second: a ping to every peer through the
//! relay and over the data channel (the round-trip panel), and `getStats`
//! of every connection (frames, packets, codec and quality on the tiles).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use protocol::{PeerId, PingEvent, PingRequest, ViewRequest, events};

use super::Call;
use super::topology::{Link, Wire};
use crate::js::now_ms;
use crate::media;
use crate::rtc::{PeerConn, Stats};
use crate::state::{Phase, Quality, Via};

/// A ping not answered within this is forgotten.
const PING_TIMEOUT_MS: f64 = 10_000.0;

#[derive(Default)]
pub(super) struct Probes {
    /// Pings in flight: `(peer, seq, path)` → sent at.
    pings: RefCell<HashMap<(String, u32, Via), f64>>,
    seq: Cell<u32>,
    /// Packets `(lost, received)` per connection at the last tick: loss is
    /// judged over the last second, not the whole call.
    last_stats: RefCell<HashMap<Link, (i64, u64)>>,
    timer: Cell<Option<IntervalHandle>>,
    /// In an SFU room with simulcast: the height each remote camera was
    /// last said to be shown at (`sfu-view`), and when (`now_ms`), by peer.
    views: RefCell<HashMap<String, (u16, f64)>>,
}

/// How often each view is told again though it did not change.
const VIEW_REFRESH_MS: f64 = 10_000.0;

impl Call {
    /// Ticks every second until the call ends.
    pub(super) fn start_probes(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let timer = set_interval_with_handle(
            move || {
                if let Some(call) = weak.upgrade() {
                    call.tick();
                }
            },
            Duration::from_secs(1),
        );
        match timer {
            Ok(t) => self.probes.timer.set(Some(t)),
            Err(e) => super::log(&format!("no stats or pings: {}", crate::js::error_text(&e))),
        }
    }

    pub(super) fn stop_probes(&self) {
        if let Some(t) = self.probes.timer.take() {
            t.clear();
        }
    }

    /// Every second: pings on both paths, typing expiry, stats for the tiles.
    fn tick(self: &Rc<Self>) {
        let joined = self.ui.phase.get_untracked() == Phase::Joined;
        if !joined {
            self.show_outage(false);
            // While the server is away the call goes on: its stats and
            // peer-to-peer pings too (not the relay's).
            if self.self_id().is_none() || self.is_over() {
                return;
            }
        }
        let seq = self.probes.seq.get().wrapping_add(1);
        self.probes.seq.set(seq);
        let now = now_ms();
        let conns = self.connections();
        {
            let mut pings = self.probes.pings.borrow_mut();
            pings.retain(|_, sent| now - *sent < PING_TIMEOUT_MS);
            let ids: Vec<String> = self
                .ui
                .peers
                .with_untracked(|ps| ps.iter().map(|p| p.id.clone()).collect());
            for id in ids.into_iter().filter(|_| joined) {
                pings.insert((id.clone(), seq, Via::Relay), now);
                self.sig.send(
                    events::PING,
                    PingRequest {
                        room: self.room(),
                        to: PeerId::from(id),
                        seq,
                        pong: false,
                    },
                );
            }
            for (link, pc) in &conns {
                if let Link::Peer(id) = link
                    && pc.data_open()
                {
                    pings.insert((id.clone(), seq, Via::P2p), now_ms());
                    let _ = pc
                        .send_data(&serde_json::to_string(&Wire::Ping { seq }).unwrap_or_default());
                }
            }
        }
        self.expire_typing(now);
        if joined {
            self.report_views();
        }
        for (link, pc) in conns {
            let this = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let stats = pc.stats().await;
                this.show_stats(link, &pc, &stats);
            });
        }
    }

    /// In an SFU room whose server takes simulcast: tells it how tall each
    /// remote camera is shown (device pixels; 0 when not shown), when that
    /// changed by a fifth or more, so that it sends the layer that fits
    /// (`sfu-view`, docs/protocol-extensions.md); and again every
    /// [`VIEW_REFRESH_MS`], for a server that lost it (our SFU connection,
    /// or the publisher's, made again).
    fn report_views(&self) {
        if !self.is_sfu() || !self.life.simulcast() {
            return;
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        let dpr = window.device_pixel_ratio().max(1.0);
        let Some(list) = window
            .document()
            .and_then(|d| d.query_selector_all("video[data-peer-id]").ok())
        else {
            return;
        };
        let now = crate::js::now_ms();
        let mut views = self.probes.views.borrow_mut();
        let mut shown = Vec::with_capacity(list.length() as usize);
        for i in 0..list.length() {
            let Some(el) = list
                .item(i)
                .and_then(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
            else {
                continue;
            };
            let Some(id) = el.get_attribute("data-peer-id") else {
                continue;
            };
            let height = (f64::from(el.client_height()) * dpr)
                .round()
                .min(f64::from(u16::MAX)) as u16;
            shown.push(id.clone());
            let changed = views.get(&id).is_none_or(|&(last, at)| {
                let (a, b) = (f64::from(last), f64::from(height));
                (a - b).abs() > a.max(b) / 5.0
                    || (last == 0) != (height == 0)
                    || now - at >= VIEW_REFRESH_MS
            });
            if changed {
                views.insert(id.clone(), (height, now));
                self.sig.send(
                    events::SFU_VIEW,
                    ViewRequest {
                        room: self.room(),
                        peer: PeerId::from(id),
                        height,
                    },
                );
            }
        }
        // A peer gone from the grid is told again if it comes back.
        views.retain(|id, _| shown.contains(id));
    }

    fn show_stats(&self, link: Link, pc: &PeerConn, s: &Stats) {
        let (lost, received) = {
            let mut last = self.probes.last_stats.borrow_mut();
            let prev = last.insert(link.clone(), (s.packets_lost, s.packets_received));
            let (pl, pr) = prev.unwrap_or((0, 0));
            (s.packets_lost - pl, s.packets_received.saturating_sub(pr))
        };
        let total = received as f64 + lost.max(0) as f64;
        let loss = if total > 0.0 {
            lost.max(0) as f64 / total
        } else {
            0.0
        };
        let quality = Quality::from_stats(loss, s.rtt_ms, received > 0);
        match link {
            // One connection for everyone: attribute tracks by stream.
            Link::Sfu => {
                self.ui.sfu_rtt.set(s.rtt_ms);
                self.ui.peers.update(|ps| {
                    for p in ps {
                        let ids: Vec<String> = pc
                            .stream_of(&p.id)
                            .map(|st| media::tracks(&st).iter().map(|t| t.id()).collect())
                            .unwrap_or_default();
                        let mine: Vec<_> = s
                            .per_track
                            .iter()
                            .filter(|t| ids.contains(&t.track))
                            .collect();
                        p.frames = mine.iter().map(|t| t.frames_decoded).sum();
                        p.audio_packets = mine.iter().map(|t| t.audio_packets).sum();
                        p.video_codec = mine.iter().find_map(|t| t.codec.clone());
                        p.quality = quality;
                    }
                })
            }
            Link::Data(_) => {}
            Link::Peer(id) => self.ui.update_peer(&id, |p| {
                p.frames = s.frames_decoded;
                p.audio_packets = s.audio_packets;
                p.video_codec = s.video_codec.clone();
                p.quality = quality;
            }),
        }
    }

    pub(super) fn on_relay_ping(&self, p: PingEvent) {
        if p.pong {
            self.on_pong(p.from.as_str(), p.seq, Via::Relay);
        } else {
            self.sig.send(
                events::PING,
                PingRequest {
                    room: p.room,
                    to: p.from,
                    seq: p.seq,
                    pong: true,
                },
            );
        }
    }

    pub(super) fn on_pong(&self, peer: &str, seq: u32, via: Via) {
        let sent = self
            .probes
            .pings
            .borrow_mut()
            .remove(&(peer.to_owned(), seq, via));
        if let Some(sent) = sent {
            self.ui.rtt_push(peer, via, now_ms() - sent);
        }
    }

    /// Records the first decoded frame of `peer` (time since the join click).
    pub(super) fn first_frame(&self, peer: &str) {
        let ms = now_ms() - self.life.joined_at();
        self.ui.update_peer(peer, |p| {
            if p.first_frame_ms.is_none() {
                p.first_frame_ms = Some(ms);
            }
        });
    }

    /// A peer left: nothing more to measure.
    pub(super) fn forget_probes(&self, peer: &str) {
        self.probes
            .last_stats
            .borrow_mut()
            .remove(&Link::Peer(peer.to_owned()));
    }
}
