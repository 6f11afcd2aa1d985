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

/// What the banner is about; `data-kind` on `#status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Connecting to the server, or joining the room.
    Connecting,
    /// The server was reached before and is being reached again.
    Reconnecting,
    /// The server has never answered.
    Unreachable,
    RoomFull,
    Unauthorized,
    /// The room name in the address is not a valid one.
    InvalidRoom,
    /// The room's mode (SFU) is not offered by this server.
    ModeUnavailable,
    /// A peer connection failed; ICE is being restarted.
    IceFailed,
    /// Version 2: a join of a room its host locked.
    Locked,
    /// Version 2: the host removed us from the room.
    Kicked,
    /// Anything else, including one refused action (dismissable in the room).
    Error,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Connecting => "connecting",
            StatusKind::Reconnecting => "reconnecting",
            StatusKind::Unreachable => "unreachable",
            StatusKind::RoomFull => "room_full",
            StatusKind::Unauthorized => "unauthorized",
            StatusKind::InvalidRoom => "invalid_room",
            StatusKind::ModeUnavailable => "mode_unavailable",
            StatusKind::IceFailed => "ice-failed",
            StatusKind::Locked => "locked",
            StatusKind::Kicked => "kicked",
            StatusKind::Error => "error",
        }
    }
}

/// The banner: a machine-readable kind and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub text: String,
}

/// An `RTCPeerConnection`'s `connectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnState {
    /// The browser's name for the state; `None` for a name the standard lacks.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "new" => ConnState::New,
            "connecting" => ConnState::Connecting,
            "connected" => ConnState::Connected,
            "disconnected" => ConnState::Disconnected,
            "failed" => ConnState::Failed,
            "closed" => ConnState::Closed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::New => "new",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Disconnected => "disconnected",
            ConnState::Failed => "failed",
            ConnState::Closed => "closed",
        }
    }

    /// What a tile says over the video while not connected.
    pub fn overlay_text(self) -> &'static str {
        match self {
            ConnState::New | ConnState::Connecting => "Connecting…",
            ConnState::Disconnected => "Reconnecting…",
            ConnState::Failed => "Connection failed — retrying",
            ConnState::Connected => "connected",
            ConnState::Closed => "closed",
        }
    }
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
    pub connection: ConnState,
    pub frames: u64,
    pub audio_packets: u64,
    pub first_frame_ms: Option<f64>,
    pub quality: Quality,
    /// The video codec received from this peer (MIME type), once known.
    pub video_codec: Option<String>,
    /// Bumped when the peer's stream gains a track: the tile re-attaches it.
    pub stream_rev: u32,
    /// Its connection to the server was lost; its seat is held for it
    /// (`peer-reconnecting` until `peer-resumed` or `peer-left`).
    pub away: bool,
    /// A raised hand (version 2).
    pub hand: bool,
    /// Its voice was heard within the last second.
    pub speaking: bool,
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
                recording: false,
            }),
            connection: ConnState::New,
            frames: 0,
            audio_packets: 0,
            first_frame_ms: None,
            quality: Quality::Unknown,
            video_codec: None,
            stream_rev: 0,
            away: false,
            hand: false,
            speaking: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Who wrote a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Me,
    /// A remote peer, by id.
    Peer(String),
}

impl Author {
    /// `data-from`: the author's peer id, or `self`.
    pub fn data_from(&self) -> &str {
        match self {
            Author::Me => "self",
            Author::Peer(id) => id,
        }
    }
}

/// How far one of our messages got; the ticks beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ticks {
    /// Not yet acknowledged by the server (or not sent at all).
    Sending,
    /// Acknowledged by the server, or sent on every data channel.
    Sent,
    /// Every peer present has it.
    Delivered,
}

impl Ticks {
    /// `data-ticks`: `0`, `1` or `2`.
    pub fn as_data(self) -> &'static str {
        match self {
            Ticks::Sending => "0",
            Ticks::Sent => "1",
            Ticks::Delivered => "2",
        }
    }

    pub fn glyph(self) -> &'static str {
        match self {
            Ticks::Sending => "…",
            Ticks::Sent => "✓",
            Ticks::Delivered => "✓✓",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Ticks::Sending => "sending",
            Ticks::Sent => "sent",
            Ticks::Delivered => "delivered to everyone",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub id: String,
    pub from: Author,
    /// The author's display name.
    pub name: String,
    pub text: String,
    pub ts: f64,
    pub via: Via,
    /// Shown on our own messages only.
    pub ticks: Ticks,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatEntry {
    Msg(ChatLine),
    Notice { key: u64, text: String },
    File(FileItem),
}

impl ChatEntry {
    pub fn key(&self) -> String {
        match self {
            ChatEntry::Msg(m) => m.id.clone(),
            ChatEntry::Notice { key, .. } => format!("notice-{key}"),
            ChatEntry::File(f) => f.key.clone(),
        }
    }
}

/// One file going to or coming from one peer, as the chat log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileItem {
    /// Unique on this page (the transfer's id and direction).
    pub key: String,
    pub name: String,
    /// Bytes.
    pub size: f64,
    pub incoming: bool,
    /// The peer it goes to or comes from, and its name then.
    pub peer: String,
    pub peer_name: String,
    pub progress: RwSignal<FileProgress>,
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileProgress {
    pub state: FileState,
    /// Bytes that reached the other side (sending) or arrived (receiving).
    pub bytes: f64,
    /// Bytes per second so far.
    pub rate: f64,
    /// Why it ended, when it did not complete.
    pub note: String,
    /// The received file, once checked (an object URL).
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileState {
    /// The channel is opening.
    #[default]
    Starting,
    Moving,
    /// Arrived whole, with the sender's SHA-256.
    Done,
    Cancelled,
    Failed,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Starting => "starting",
            FileState::Moving => "moving",
            FileState::Done => "done",
            FileState::Cancelled => "cancelled",
            FileState::Failed => "failed",
        }
    }

    pub fn ended(self) -> bool {
        matches!(
            self,
            FileState::Done | FileState::Cancelled | FileState::Failed
        )
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

/// The file size limit until `/api/config` says otherwise: 1 GiB.
pub const DEFAULT_FILE_MAX: f64 = 1_073_741_824.0;

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
    /// The joined room's mode (from the join ack).
    pub mode: RwSignal<Option<protocol::Mode>>,
    /// Seconds since the server was lost, while reconnecting.
    pub outage_secs: RwSignal<u32>,
    /// Our microphone's level, 0..1, while someone measures it.
    pub mic_level: RwSignal<f64>,
    /// In an SFU room: the media path's round trip to the server (ICE), ms.
    pub sfu_rtt: RwSignal<Option<f64>>,
    /// Version 2: the room's host (a peer id, ours included).
    pub host_id: RwSignal<String>,
    /// Version 2: the host locked the room (as last announced to us).
    pub locked: RwSignal<bool>,
    /// Our own raised hand.
    pub hand_up: RwSignal<bool>,
    /// Reactions showing now: (key, peer id, emoji), ours included.
    pub reactions: RwSignal<Vec<(u32, String, String)>>,
    /// The largest file a transfer may carry, bytes (`/api/config`).
    pub file_max: RwSignal<f64>,
    /// The latest to speak (a peer id, ours included; empty before anyone).
    pub speaker: RwSignal<String>,
    /// The tile pinned large (a peer id, ours included), or empty.
    pub pinned: RwSignal<String>,
    /// Speaker view: the latest speaker large, the others in a strip.
    pub speaker_view: RwSignal<bool>,
    /// We are recording the call.
    pub recording: RwSignal<bool>,
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
            mode: RwSignal::new(None),
            outage_secs: RwSignal::new(0),
            mic_level: RwSignal::new(0.0),
            sfu_rtt: RwSignal::new(None),
            host_id: RwSignal::new(String::new()),
            locked: RwSignal::new(false),
            hand_up: RwSignal::new(false),
            reactions: RwSignal::new(Vec::new()),
            file_max: RwSignal::new(DEFAULT_FILE_MAX),
            speaker: RwSignal::new(String::new()),
            pinned: RwSignal::new(String::new()),
            speaker_view: RwSignal::new(false),
            recording: RwSignal::new(false),
        }
    }

    pub fn set_status(&self, kind: StatusKind, text: impl Into<String>) {
        self.status.set(Some(Status {
            kind,
            text: text.into(),
        }));
    }

    /// Clears the banner if it is of one of `kinds`.
    pub fn clear_status(&self, kinds: &[StatusKind]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings the DOM contract (docs/client-contract.md) documents.
    #[test]
    fn dom_strings() {
        let kinds = [
            (StatusKind::Connecting, "connecting"),
            (StatusKind::Reconnecting, "reconnecting"),
            (StatusKind::Unreachable, "unreachable"),
            (StatusKind::RoomFull, "room_full"),
            (StatusKind::Unauthorized, "unauthorized"),
            (StatusKind::InvalidRoom, "invalid_room"),
            (StatusKind::ModeUnavailable, "mode_unavailable"),
            (StatusKind::IceFailed, "ice-failed"),
            (StatusKind::Error, "error"),
        ];
        for (kind, s) in kinds {
            assert_eq!(kind.as_str(), s);
        }
        for s in [
            "new",
            "connecting",
            "connected",
            "disconnected",
            "failed",
            "closed",
        ] {
            assert_eq!(ConnState::parse(s).map(ConnState::as_str), Some(s));
        }
        assert_eq!(ConnState::parse("checking"), None);
        assert_eq!(ConnState::New.overlay_text(), "Connecting…");
        assert_eq!(ConnState::Disconnected.overlay_text(), "Reconnecting…");
        assert_eq!(
            [Ticks::Sending, Ticks::Sent, Ticks::Delivered].map(Ticks::as_data),
            ["0", "1", "2"]
        );
        assert_eq!(Author::Me.data_from(), "self");
        assert_eq!(Author::Peer("p1".into()).data_from(), "p1");
        for (phase, s) in [
            (Phase::Connecting, "connecting"),
            (Phase::Joined, "joined"),
            (Phase::Reconnecting, "reconnecting"),
            (Phase::Error, "error"),
            (Phase::Left, "left"),
        ] {
            assert_eq!(phase.as_str(), s);
        }
    }

    #[test]
    fn quality() {
        assert_eq!(Quality::from_stats(0.5, None, false), Quality::Unknown);
        assert_eq!(Quality::from_stats(0.0, Some(20.0), true), Quality::Good);
        assert_eq!(Quality::from_stats(0.05, None, true), Quality::Fair);
        assert_eq!(Quality::from_stats(0.0, Some(500.0), true), Quality::Poor);
    }
}
