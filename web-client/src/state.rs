//! What the view shows, as signals of plain data. The call controller
//! writes them; components only read them (and call the controller).

use std::collections::VecDeque;

use leptos::prelude::*;
use protocol::MediaState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Joined,
    Reconnecting,
    Error,
    Left,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Joined => "joined",
            Phase::Reconnecting => "reconnecting",
            Phase::Error => "error",
            Phase::Left => "left",
        }
    }
}

/// The banner: a machine-readable kind and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Unknown,
    Good,
    Fair,
    Poor,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Unknown => "unknown",
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
        }
    }

    /// From loss over the last interval and the ICE round trip.
    pub fn from_stats(loss_ratio: f64, rtt_ms: Option<f64>, receiving: bool) -> Self {
        if !receiving {
            return Quality::Unknown;
        }
        let rtt = rtt_ms.unwrap_or(0.0);
        if loss_ratio > 0.08 || rtt > 400.0 {
            Quality::Poor
        } else if loss_ratio > 0.02 || rtt > 150.0 {
            Quality::Fair
        } else {
            Quality::Good
        }
    }
}

/// A remote peer's tile.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub id: String,
    pub name: String,
    pub media: MediaState,
    pub connection: String,
    pub frames: u64,
    pub audio_packets: u64,
    pub first_frame_ms: Option<f64>,
    pub quality: Quality,
    /// The video codec received from this peer (MIME type), once known.
    pub video_codec: Option<String>,
    /// Bumped when the peer's stream gains a track: the tile re-attaches it.
    pub stream_rev: u32,
}

impl PeerView {
    pub fn new(id: String, name: String, media: Option<MediaState>) -> Self {
        Self {
            id,
            name,
            media: media.unwrap_or(MediaState {
                audio: true,
                video: true,
                screen: false,
            }),
            connection: "new".into(),
            frames: 0,
            audio_packets: 0,
            first_frame_ms: None,
            quality: Quality::Unknown,
            video_codec: None,
            stream_rev: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Relay,
    P2p,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Relay => "relay",
            Via::P2p => "p2p",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub id: String,
    /// Author peer id, or `self`.
    pub from: String,
    pub author: String,
    pub text: String,
    pub ts: f64,
    pub via: Via,
    /// 0 sending, 1 acknowledged by the server / sent on every channel, 2 reached every peer.
    pub ticks: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatEntry {
    Msg(ChatLine),
    Notice { key: u64, text: String },
}

impl ChatEntry {
    pub fn key(&self) -> String {
        match self {
            ChatEntry::Msg(m) => m.id.clone(),
            ChatEntry::Notice { key, .. } => format!("notice-{key}"),
        }
    }
}

/// Round trips to one peer, both paths, newest last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RttRow {
    pub peer: String,
    pub relay: VecDeque<f64>,
    pub p2p: VecDeque<f64>,
}

impl RttRow {
    pub const KEEP: usize = 60;

    pub fn push(series: &mut VecDeque<f64>, ms: f64) {
        if series.len() >= Self::KEEP {
            series.pop_front();
        }
        series.push_back(ms);
    }
}

/// Every signal of the room view. `Copy`: pass it anywhere.
#[derive(Clone, Copy)]
pub struct Ui {
    pub phase: RwSignal<Phase>,
    pub status: RwSignal<Option<Status>>,
    pub room: RwSignal<String>,
    pub self_id: RwSignal<String>,
    pub self_name: RwSignal<String>,
    pub peers: RwSignal<Vec<PeerView>>,
    pub chat: RwSignal<Vec<ChatEntry>>,
    /// `(peer id, name)` of who is typing.
    pub typing: RwSignal<Vec<(String, String)>>,
    pub rtt: RwSignal<Vec<RttRow>>,
    pub via: RwSignal<Via>,
    pub mic_on: RwSignal<bool>,
    pub cam_on: RwSignal<bool>,
    pub screen_on: RwSignal<bool>,
    pub has_mic: RwSignal<bool>,
    pub has_cam: RwSignal<bool>,
    /// Bumped when the local stream changes.
    pub local_rev: RwSignal<u32>,
    pub media_notice: RwSignal<Option<String>>,
    /// The browser refused to play remote sound without a click.
    pub sound_blocked: RwSignal<bool>,
}

impl Ui {
    pub fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Connecting),
            status: RwSignal::new(None),
            room: RwSignal::new(String::new()),
            self_id: RwSignal::new(String::new()),
            self_name: RwSignal::new(String::new()),
            peers: RwSignal::new(Vec::new()),
            chat: RwSignal::new(Vec::new()),
            typing: RwSignal::new(Vec::new()),
            rtt: RwSignal::new(Vec::new()),
            via: RwSignal::new(Via::Relay),
            mic_on: RwSignal::new(true),
            cam_on: RwSignal::new(true),
            screen_on: RwSignal::new(false),
            has_mic: RwSignal::new(false),
            has_cam: RwSignal::new(false),
            local_rev: RwSignal::new(0),
            media_notice: RwSignal::new(None),
            sound_blocked: RwSignal::new(false),
        }
    }

    pub fn set_status(&self, kind: &'static str, text: impl Into<String>) {
        self.status.set(Some(Status {
            kind,
            text: text.into(),
        }));
    }

    /// Clears the banner if it is of one of `kinds`.
    pub fn clear_status(&self, kinds: &[&str]) {
        if self
            .status
            .with_untracked(|s| s.as_ref().is_some_and(|s| kinds.contains(&s.kind)))
        {
            self.status.set(None);
        }
    }

    pub fn update_peer(&self, id: &str, f: impl FnOnce(&mut PeerView)) {
        self.peers.update(|ps| {
            if let Some(p) = ps.iter_mut().find(|p| p.id == id) {
                f(p);
            }
        });
    }

    pub fn peer_name(&self, id: &str) -> String {
        self.peers.with_untracked(|ps| {
            ps.iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "someone".into())
        })
    }

    pub fn notice(&self, text: impl Into<String>) {
        let text = text.into();
        self.chat.update(|c| {
            let key = c.len() as u64;
            c.push(ChatEntry::Notice { key, text });
        });
    }

    pub fn update_msg(&self, id: &str, f: impl FnOnce(&mut ChatLine)) {
        self.chat.update(|c| {
            if let Some(ChatEntry::Msg(m)) = c
                .iter_mut()
                .rev()
                .find(|e| matches!(e, ChatEntry::Msg(m) if m.id == id))
            {
                f(m);
            }
        });
    }

    pub fn rtt_push(&self, peer: &str, via: Via, ms: f64) {
        self.rtt.update(|rows| {
            let row = match rows.iter().position(|r| r.peer == peer) {
                Some(i) => &mut rows[i],
                None => {
                    rows.push(RttRow {
                        peer: peer.to_owned(),
                        ..RttRow::default()
                    });
                    let last = rows.len() - 1;
                    &mut rows[last]
                }
            };
            match via {
                Via::Relay => RttRow::push(&mut row.relay, ms),
                Via::P2p => RttRow::push(&mut row.p2p, ms),
            }
        });
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}
