//! Acknowledgements: `{"ok": true, ...}` or `{"ok": false, "error": {code, message}}`.

use serde::{Deserialize, Serialize};

use crate::payloads::{ChatMessage, PeerInfo, RoomInfo};

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
    /// Version 2: a host control from a member that is not the host, or a
    /// join of a locked room.
    Forbidden,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadRequest,
        ErrorCode::NotInRoom,
        ErrorCode::UnknownPeer,
        ErrorCode::RoomFull,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Forbidden,
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
            ErrorCode::Forbidden => "forbidden",
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
    /// Version 2: the token that takes this seat back after a drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Version 2: present when the join carried a `resume` token: whether
    /// the seat was taken back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
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
    use crate::roundtrip;
    use serde_json::json;

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
}
