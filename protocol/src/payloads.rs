//! Event payloads, client → server and server → client, exactly as
//! `PROTOCOL.md` spells them; each with the event name it travels under.

use serde::{Deserialize, Serialize};

use crate::events;
use crate::names::{ChatText, DisplayName, Password, ResumeToken, RoomName, ValidationError};
use crate::values::{Mode, PeerId, object, opt_object};

/// A payload with the Socket.IO event name it travels under: a request
/// (client → server) or an event (server → client).
pub trait Event: Serialize + Send + Sync + 'static {
    const NAME: &'static str;
}

/// `join`: `{"room", "name", "mode"?, "password"?, "resume"?}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JoinRequest {
    pub room: RoomName,
    pub name: DisplayName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(
        default,
        deserialize_with = "de_password",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_password"
    )]
    pub password: Option<Password>,
    /// Version 2: the token of an earlier join ack, to take that seat back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeToken>,
}

impl Event for JoinRequest {
    const NAME: &'static str = events::JOIN;
}

fn de_password<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Password>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => Password::parse(s).map_err(serde::de::Error::custom),
    }
}

fn ser_password<S: serde::Serializer>(p: &Option<Password>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&String::from_utf8_lossy(p.as_bytes())),
        None => s.serialize_none(),
    }
}

/// `leave`: `{"room"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LeaveRequest {
    pub room: RoomName,
}

impl Event for LeaveRequest {
    const NAME: &'static str = events::LEAVE;
}

/// `signal`: `{"room", "to", "data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SignalRequest {
    pub room: RoomName,
    pub to: PeerId,
    #[serde(deserialize_with = "object")]
    pub data: SignalData,
}

impl Event for SignalRequest {
    const NAME: &'static str = events::SIGNAL;
}

/// `chat`: `{"room", "text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatRequest {
    pub room: RoomName,
    pub text: ChatText,
}

impl Event for ChatRequest {
    const NAME: &'static str = events::CHAT;
}

/// `typing`: `{"room", "typing"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TypingRequest {
    pub room: RoomName,
    pub typing: bool,
}

impl Event for TypingRequest {
    const NAME: &'static str = events::TYPING;
}

/// Extension `media-state`: `{"room", "audio", "video", "screen"?,
/// "recording"?}`, relayed to the room as [`MediaStateEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaStateRequest {
    pub room: RoomName,
    pub audio: bool,
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
    /// The sender is recording the call (everyone is told, latecomers too).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recording: bool,
}

impl Event for MediaStateRequest {
    const NAME: &'static str = events::MEDIA_STATE;
}

/// Extension `sfu-view`: `{"room", "peer", "height"}`, in an SFU room: the
/// sender shows `peer`'s camera `height` device pixels tall (0: not at
/// all); the SFU sends it the simulcast layer that fits. Acked, not relayed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ViewRequest {
    pub room: RoomName,
    pub peer: PeerId,
    pub height: u16,
}

impl Event for ViewRequest {
    const NAME: &'static str = events::SFU_VIEW;
}

/// Extension `chat-receipt`: `{"room", "id"}`: the sender has shown chat
/// message `id`; relayed to the message's author as [`ReceiptEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReceiptRequest {
    pub room: RoomName,
    pub id: String,
}

impl Event for ReceiptRequest {
    const NAME: &'static str = events::CHAT_RECEIPT;
}

/// Extension `peer-ping`: `{"room", "to", "seq", "pong"}`, relayed to the
/// addressed peer as [`PingEvent`]; measures the relay path's round trip.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PingRequest {
    pub room: RoomName,
    pub to: PeerId,
    pub seq: u32,
    #[serde(default)]
    pub pong: bool,
}

impl Event for PingRequest {
    const NAME: &'static str = events::PING;
}

/// `reaction` (PROTOCOL.md, version 2): `{"room", "emoji"}`, 1–16
/// characters; relayed to the room as [`ReactionEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReactionRequest {
    pub room: RoomName,
    #[serde(deserialize_with = "de_emoji")]
    pub emoji: String,
}

impl Event for ReactionRequest {
    const NAME: &'static str = events::REACTION;
}

fn de_emoji<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let n = s.chars().count();
    if (1..=16).contains(&n) && !s.trim().is_empty() {
        Ok(s)
    } else {
        Err(serde::de::Error::custom("emoji must be 1-16 characters"))
    }
}

/// The `data` of a `signal`: SDP, a trickled ICE candidate, or goodbye.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalData {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// `candidate: null` (or absent) marks the end of candidates.
    Candidate {
        #[serde(default, deserialize_with = "opt_object")]
        candidate: Option<IceCandidate>,
    },
    Bye,
}

impl SignalData {
    /// Checks what serde cannot: an SDP must not be empty.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            SignalData::Offer { sdp } | SignalData::Answer { sdp } if sdp.trim().is_empty() => {
                Err(ValidationError::Empty("sdp"))
            }
            _ => Ok(()),
        }
    }
}

/// `RTCIceCandidateInit`, as `RTCIceCandidate.toJSON()` produces it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_m_line_index: Option<u16>,
    /// Extension: browsers include it in `toJSON()`; relayed when present.
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

// ---------------------------------------------------------------------------
// Server → client

/// A peer as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    /// Extension: the peer's last announced microphone/camera/screen state,
    /// in the join ack's `peers` (absent when never announced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaState>,
    /// Version 2: the room's host (absent for the others).
    #[serde(default, skip_serializing_if = "is_false")]
    pub host: bool,
    /// Version 2: a raised hand, in the join ack's `peers` (absent when down).
    #[serde(default, skip_serializing_if = "is_false")]
    pub hand: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Extension: what a peer is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct MediaState {
    pub audio: bool,
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
    /// The peer is recording the call; absent when not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recording: bool,
}

/// A room as the join ack describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoomInfo {
    pub id: RoomName,
    pub mode: Mode,
    /// Extension to version 2: the host locked the room (absent when not):
    /// a member who joins later, or a host who inherits the room, knows it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub locked: bool,
    /// Extension: in an SFU room of a scaled-out deployment, which
    /// placement of the room's SFU this is (it grows each time the room
    /// moves to another server, `sfu-moved`, and never repeats). Absent
    /// otherwise.
    #[serde(default, rename = "sfuEpoch", skip_serializing_if = "Option::is_none")]
    pub sfu_epoch: Option<u64>,
}

/// `chat` event, and an entry of the join ack's `history`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatMessage {
    pub room: RoomName,
    pub id: String,
    pub from: PeerInfo,
    pub text: String,
    pub ts: u64,
}

impl Event for ChatMessage {
    const NAME: &'static str = events::CHAT;
}

/// `peer-joined`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerJoined {
    pub room: RoomName,
    pub id: PeerId,
    pub name: String,
}

impl Event for PeerJoined {
    const NAME: &'static str = events::PEER_JOINED;
}

/// `peer-left`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerLeft {
    pub room: RoomName,
    pub id: PeerId,
    /// Version 2: `"kicked"` when the host removed it (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event for PeerLeft {
    const NAME: &'static str = events::PEER_LEFT;
}

/// `peer-reconnecting` (version 2): a member's connection was lost; its
/// seat is held for the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerReconnecting {
    pub room: RoomName,
    pub id: PeerId,
}

impl Event for PeerReconnecting {
    const NAME: &'static str = events::PEER_RECONNECTING;
}

/// `peer-resumed` (version 2): a held seat was taken back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerResumed {
    pub room: RoomName,
    pub id: PeerId,
}

impl Event for PeerResumed {
    const NAME: &'static str = events::PEER_RESUMED;
}

/// Extension `sfu-moved`: `{"room", "epoch"}`. Scaled out, the server that
/// hosted the room's SFU is gone and another took the room: every member
/// closes its connection to the SFU and offers afresh to `"sfu"`. `epoch`
/// is the new placement's (the join ack's `room.sfuEpoch`): a member whose
/// connection is of this placement already ignores it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SfuMoved {
    pub room: RoomName,
    pub epoch: u64,
}

impl Event for SfuMoved {
    const NAME: &'static str = events::SFU_MOVED;
}

/// `signal`, as relayed to the addressed peer. `from` is set by the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SignalEvent {
    pub room: RoomName,
    pub from: PeerId,
    #[serde(deserialize_with = "object")]
    pub data: SignalData,
}

impl Event for SignalEvent {
    const NAME: &'static str = events::SIGNAL;
}

/// `typing`, as relayed to the room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TypingEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub typing: bool,
}

impl Event for TypingEvent {
    const NAME: &'static str = events::TYPING;
}

/// Extension `media-state`, as relayed to the room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaStateEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    /// The sender is recording the call; absent when not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recording: bool,
}

impl Event for MediaStateEvent {
    const NAME: &'static str = events::MEDIA_STATE;
}

/// Extension `chat-receipt`, as relayed to a message's author.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReceiptEvent {
    pub room: RoomName,
    pub id: String,
    pub from: PeerId,
}

impl Event for ReceiptEvent {
    const NAME: &'static str = events::CHAT_RECEIPT;
}

/// Extension `peer-ping`, as relayed to the addressed peer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PingEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub seq: u32,
    pub pong: bool,
}

impl Event for PingEvent {
    const NAME: &'static str = events::PING;
}

/// `reaction`, as relayed to the room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReactionEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub emoji: String,
}

impl Event for ReactionEvent {
    const NAME: &'static str = events::REACTION;
}

/// Version 2, host controls: the device a `mute-request` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

/// `kick` (host only): `{"room", "peer"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct KickRequest {
    pub room: RoomName,
    pub peer: PeerId,
}

impl Event for KickRequest {
    const NAME: &'static str = events::KICK;
}

/// `lock` (host only): `{"room", "locked"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LockRequest {
    pub room: RoomName,
    pub locked: bool,
}

impl Event for LockRequest {
    const NAME: &'static str = events::LOCK;
}

/// `mute-request` (host only): `{"room", "peer", "kind"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MuteRequestRequest {
    pub room: RoomName,
    pub peer: PeerId,
    pub kind: MediaKind,
}

impl Event for MuteRequestRequest {
    const NAME: &'static str = events::MUTE_REQUEST;
}

/// `hand` (any member): `{"room", "raised"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HandRequest {
    pub room: RoomName,
    pub raised: bool,
}

impl Event for HandRequest {
    const NAME: &'static str = events::HAND;
}

/// `kicked`, to the removed peer: `{"room", "by"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct KickedEvent {
    pub room: RoomName,
    pub by: PeerId,
}

impl Event for KickedEvent {
    const NAME: &'static str = events::KICKED;
}

/// `room-locked`, to the whole room: `{"room", "locked", "by"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoomLockedEvent {
    pub room: RoomName,
    pub locked: bool,
    pub by: PeerId,
}

impl Event for RoomLockedEvent {
    const NAME: &'static str = events::ROOM_LOCKED;
}

/// `mute-request`, to the asked peer: `{"room", "from", "kind"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MuteRequestEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub kind: MediaKind,
}

impl Event for MuteRequestEvent {
    const NAME: &'static str = events::MUTE_REQUEST;
}

/// `hand`, to the others: `{"room", "from", "raised"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HandEvent {
    pub room: RoomName,
    pub from: PeerId,
    pub raised: bool,
}

impl Event for HandEvent {
    const NAME: &'static str = events::HAND;
}

/// `host-changed`, to the whole room: `{"room", "id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HostChanged {
    pub room: RoomName,
    pub id: PeerId,
}

impl Event for HostChanged {
    const NAME: &'static str = events::HOST_CHANGED;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roundtrip;
    use crate::values::Object;
    use serde_json::json;

    #[test]
    fn join_request() {
        let j: JoinRequest = roundtrip(json!({"room": "r1", "name": "Ana"}));
        assert_eq!(j.mode, None);
        let j: JoinRequest =
            roundtrip(json!({"room": "r1", "name": "Ana", "mode": "sfu", "password": "pw"}));
        assert_eq!(j.mode, Some(Mode::Sfu));
        assert!(j.password.is_some());
        let j: JoinRequest =
            serde_json::from_value(json!({"room": "r", "name": " Ana ", "password": ""}))
                .expect("valid");
        assert_eq!(j.name.as_str(), "Ana");
        assert_eq!(j.password, None);
    }

    #[test]
    fn join_request_rejects_bad_input() {
        for bad in [
            json!({"room": "", "name": "Ana"}),
            json!({"room": "a b", "name": "Ana"}),
            json!({"room": "r", "name": "  "}),
            json!({"room": "r", "name": 5}),
            json!({"room": "r"}),
            json!({"name": "Ana"}),
            json!({"room": "r", "name": "Ana", "mode": "p2p"}),
            json!({"room": "r", "name": "Ana", "password": 12}),
            json!("r"),
            json!(["r", "Ana"]),
            json!(null),
        ] {
            assert!(
                serde_json::from_value::<Object<JoinRequest>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn object_reads_objects_only() {
        let Object(j) =
            serde_json::from_str::<Object<JoinRequest>>(r#"{"room":"r","name":"A","extra":1}"#)
                .expect("unknown fields are ignored");
        assert_eq!(j.room.as_str(), "r");
        assert!(serde_json::from_str::<Object<LeaveRequest>>(r#"["r"]"#).is_err());
        assert!(serde_json::from_str::<Object<LeaveRequest>>(r#""r""#).is_err());
    }

    #[test]
    fn signal_data_variants() {
        roundtrip::<SignalData>(json!({"type": "offer", "sdp": "v=0"}));
        roundtrip::<SignalData>(json!({"type": "answer", "sdp": "v=0"}));
        roundtrip::<SignalData>(json!({"type": "bye"}));
        roundtrip::<SignalData>(json!({"type": "candidate", "candidate": null}));
        roundtrip::<SignalData>(json!({"type": "candidate", "candidate":
            {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}));
        roundtrip::<SignalData>(json!({"type": "candidate", "candidate":
            {"candidate": "c", "sdpMid": null, "sdpMLineIndex": null, "usernameFragment": "uf"}}));
        // A missing sdpMid is read as null.
        let s: SignalData =
            serde_json::from_value(json!({"type": "candidate", "candidate": {"candidate": "c"}}))
                .expect("valid");
        assert_eq!(
            serde_json::to_value(&s).expect("serializes"),
            json!({"type": "candidate", "candidate": {"candidate": "c", "sdpMid": null, "sdpMLineIndex": null}})
        );
    }

    #[test]
    fn signal_data_rejects_bad_input() {
        for bad in [
            json!({"type": "offer"}),
            json!({"type": "offer", "sdp": 1}),
            json!({"type": "pranswer", "sdp": "x"}),
            json!({"sdp": "x"}),
            json!({"type": "candidate", "candidate": {"sdpMid": "0"}}),
            json!({"type": "candidate", "candidate": {"candidate": "c", "sdpMLineIndex": -1}}),
        ] {
            assert!(
                serde_json::from_value::<SignalData>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let empty: SignalData =
            serde_json::from_value(json!({"type": "offer", "sdp": " "})).expect("parses");
        assert_eq!(empty.validate(), Err(ValidationError::Empty("sdp")));
    }

    /// Found by fuzzing (docs/fuzzing.md): nested values in serde's other
    /// shapes were accepted — `data`/`candidate` as arrays of their fields,
    /// `mode` as `{"sfu": null}`.
    #[test]
    fn nested_values_must_have_the_protocol_shape() {
        for bad in [
            json!({"room": "r", "to": "p", "data": ["offer", "v=0"]}),
            json!({"room": "r", "to": "p", "data": ["bye"]}),
            json!({"room": "r", "to": "p", "data": {"type": "candidate", "candidate": ["c", "0", 0]}}),
            json!({"room": "r", "to": "p", "data": ["candidate", {"candidate": "c"}]}),
        ] {
            assert!(
                serde_json::from_value::<Object<SignalRequest>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(
            serde_json::from_value::<SignalEvent>(
                json!({"room": "r", "from": "p", "data": ["bye"]})
            )
            .is_err()
        );
        for bad in [
            json!({"sfu": null}),
            json!({"mesh": []}),
            json!("Mesh"),
            json!(0),
        ] {
            assert!(
                serde_json::from_value::<Mode>(bad.clone()).is_err(),
                "{bad}"
            );
            let join = json!({"room": "r", "name": "A", "mode": bad});
            assert!(serde_json::from_value::<Object<JoinRequest>>(join).is_err());
        }
        assert_eq!(
            serde_json::from_value::<Mode>(json!("sfu")).ok(),
            Some(Mode::Sfu)
        );
        let e = serde_json::from_value::<Mode>(json!("p2p")).expect_err("unknown mode");
        assert!(e.to_string().contains("unknown variant `p2p`"), "{e}");
    }

    #[test]
    fn requests_roundtrip() {
        roundtrip::<LeaveRequest>(json!({"room": "r"}));
        roundtrip::<ChatRequest>(json!({"room": "r", "text": "hi <b>"}));
        roundtrip::<TypingRequest>(json!({"room": "r", "typing": true}));
        roundtrip::<SignalRequest>(json!({"room": "r", "to": "sfu", "data": {"type": "bye"}}));
        assert!(
            serde_json::from_value::<TypingRequest>(json!({"room": "r", "typing": "yes"})).is_err()
        );
        assert!(serde_json::from_value::<ChatRequest>(json!({"room": "r", "text": ""})).is_err());
    }

    #[test]
    fn extensions_roundtrip() {
        roundtrip::<MediaStateRequest>(
            json!({"room": "r", "audio": true, "video": false, "screen": false}),
        );
        roundtrip::<MediaStateEvent>(
            json!({"room": "r", "from": "p", "audio": true, "video": false, "screen": true}),
        );
        roundtrip::<ReceiptRequest>(json!({"room": "r", "id": "m"}));
        roundtrip::<ReceiptEvent>(json!({"room": "r", "id": "m", "from": "p"}));
        roundtrip::<PingRequest>(json!({"room": "r", "to": "p", "seq": 3, "pong": false}));
        roundtrip::<PingEvent>(json!({"room": "r", "from": "p", "seq": 3, "pong": true}));
        let p: PeerInfo = roundtrip(
            json!({"id": "p", "name": "A", "media": {"audio": true, "video": true, "screen": false}}),
        );
        assert!(p.media.is_some_and(|m| m.audio));
    }

    #[test]
    fn reactions_are_1_to_16_characters() {
        roundtrip::<ReactionRequest>(json!({"room": "r", "emoji": "👍🏽"}));
        roundtrip::<ReactionEvent>(json!({"room": "r", "from": "p", "emoji": "🎉"}));
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        roundtrip::<ReactionRequest>(json!({"room": "r", "emoji": family}));
        for bad in [
            json!(""),
            json!("  "),
            json!("x".repeat(17)),
            json!(5),
            json!(null),
        ] {
            let req = json!({"room": "r", "emoji": bad});
            assert!(
                serde_json::from_value::<ReactionRequest>(req).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_events_roundtrip() {
        roundtrip::<PeerJoined>(json!({"room": "r", "id": "p", "name": "Ana"}));
        roundtrip::<PeerLeft>(json!({"room": "r", "id": "p"}));
        roundtrip::<TypingEvent>(json!({"room": "r", "from": "p", "typing": false}));
        roundtrip::<SignalEvent>(
            json!({"room": "r", "from": "sfu", "data": {"type": "answer", "sdp": "v=0"}}),
        );
    }
}
