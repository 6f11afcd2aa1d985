//! Event payloads and acknowledgements, exactly as `PROTOCOL.md` spells them.

use serde::{Deserialize, Serialize};

use crate::events;
use crate::names::{ChatText, DisplayName, Password, RoomName, ValidationError};

/// A peer id: opaque to clients, assigned by the server (a UUID), unique per
/// connection to a room. `"sfu"` is the SFU in SFU rooms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(String);

impl PeerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for PeerId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Room topology: everyone connects to everyone, or everyone to the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Mesh,
    Sfu,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Mesh => "mesh",
            Mode::Sfu => "sfu",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mesh" => Ok(Mode::Mesh),
            "sfu" => Ok(Mode::Sfu),
            _ => Err(format!("unknown mode {s:?} (expected mesh or sfu)")),
        }
    }
}

/// Only the strings `"mesh"` and `"sfu"`: the derive would also read serde's
/// externally tagged form, `{"sfu": null}`.
impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"mesh\" or \"sfu\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mode, E> {
                s.parse()
                    .map_err(|_| E::unknown_variant(s, &["mesh", "sfu"]))
            }
        }
        d.deserialize_str(V)
    }
}

// ---------------------------------------------------------------------------
// Client → server

/// Reads `T` only from a JSON object: every payload is a single object, and
/// serde's derive would otherwise also accept an array of the fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(Object)
    }
}

/// `#[serde(deserialize_with)]` for a nested value that must be an object
/// too (`data` of a signal): the derives would also read it from an array.
fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Object::<T>::deserialize(d).map(|Object(t)| t)
}

/// [`object`] for an optional value (`null` or absent is `None`).
fn opt_object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|Object(t)| t))
}

/// A payload with the Socket.IO event name it travels under: a request
/// (client → server) or an event (server → client).
pub trait Event: Serialize + Send + Sync + 'static {
    const NAME: &'static str;
}

/// `join`: `{"room", "name", "mode"?, "password"?}`.
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

/// Extension `media-state`: `{"room", "audio", "video", "screen"?}`, relayed to
/// the room as [`MediaStateEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaStateRequest {
    pub room: RoomName,
    pub audio: bool,
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
}

impl Event for MediaStateRequest {
    const NAME: &'static str = events::MEDIA_STATE;
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
    const NAME: &'static str = "reaction";
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
}

/// Extension: what a peer is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct MediaState {
    pub audio: bool,
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
}

/// A room as the join ack describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoomInfo {
    pub id: RoomName,
    pub mode: Mode,
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
}

impl Event for PeerLeft {
    const NAME: &'static str = events::PEER_LEFT;
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
    const NAME: &'static str = "reaction";
}

// ---------------------------------------------------------------------------
// Acknowledgements

/// The closed set of error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotInRoom,
    UnknownPeer,
    RoomFull,
    Unauthorized,
    RateLimited,
    PayloadTooLarge,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::NotInRoom,
        ErrorCode::UnknownPeer,
        ErrorCode::RoomFull,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"ok": true` as a type, so success acks cannot be built with `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct True;

impl Serialize for True {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            true => Ok(True),
            false => Err(serde::de::Error::custom("expected ok: true")),
        }
    }
}

/// `"ok": false` as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct False;

impl Serialize for False {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(false)
    }
}

impl<'de> Deserialize<'de> for False {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            false => Ok(False),
            true => Err(serde::de::Error::custom("expected ok: false")),
        }
    }
}

/// `{"code", "message"}` of a failed ack.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// `{"ok": false, "error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ErrorAck {
    pub ok: False,
    pub error: ErrorBody,
}

impl ErrorAck {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            ok: False,
            error: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

/// `{"ok": true}`: the ack of `leave`, `signal` and `typing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct OkAck {
    pub ok: True,
}

/// The ack of a successful `join`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct JoinAck {
    pub ok: True,
    #[serde(rename = "self")]
    pub self_: PeerInfo,
    pub room: RoomInfo,
    pub peers: Vec<PeerInfo>,
    pub history: Vec<ChatMessage>,
}

/// The ack of a successful `chat`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatAck {
    pub ok: True,
    pub id: String,
    pub ts: u64,
}

/// What a client reads from an ack: the success body or the error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Ack<T> {
    Ok(T),
    Err(ErrorAck),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip<T>(v: serde_json::Value) -> T
    where
        T: serde::de::DeserializeOwned + Serialize + std::fmt::Debug + PartialEq,
    {
        let t: T = serde_json::from_value(v.clone()).expect("deserializes");
        assert_eq!(serde_json::to_value(&t).expect("serializes"), v);
        t
    }

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
    fn acks_have_the_protocol_shape() {
        let err = ErrorAck::new(ErrorCode::RoomFull, "room is full");
        assert_eq!(
            serde_json::to_value(&err).expect("serializes"),
            json!({"ok": false, "error": {"code": "room_full", "message": "room is full"}})
        );
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).expect("serializes"),
                json!(code.as_str())
            );
        }
        roundtrip::<OkAck>(json!({"ok": true}));
        roundtrip::<ChatAck>(json!({"ok": true, "id": "m", "ts": 1}));
        let join = roundtrip::<JoinAck>(json!({
            "ok": true,
            "self": {"id": "p1", "name": "Ana"},
            "room": {"id": "r", "mode": "mesh"},
            "peers": [{"id": "p0", "name": "Bo"}],
            "history": [{"room": "r", "id": "m", "from": {"id": "p0", "name": "Bo"}, "text": "hi", "ts": 5}]
        }));
        assert_eq!(join.self_.name, "Ana");
    }

    #[test]
    fn ack_reads_success_or_error() {
        let ok: Ack<ChatAck> =
            serde_json::from_value(json!({"ok": true, "id": "m", "ts": 1})).expect("ok ack");
        assert!(matches!(ok, Ack::Ok(_)));
        let err: Ack<ChatAck> = serde_json::from_value(
            json!({"ok": false, "error": {"code": "not_in_room", "message": "x"}}),
        )
        .expect("error ack");
        assert!(matches!(err, Ack::Err(e) if e.error.code == ErrorCode::NotInRoom));
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
