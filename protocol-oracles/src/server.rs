//! Target `server_payloads`: what a client reads, server → client events and
//! acks (the WASM client parses them with serde_json too).

use std::fmt::Debug;

use protocol::{
    Ack, ChatAck, ChatMessage, ErrorAck, ErrorCode, HandEvent, HostChanged, JoinAck, KickedEvent,
    MediaStateEvent, MuteRequestEvent, OkAck, PeerJoined, PeerLeft, PeerReconnecting, PeerResumed,
    PingEvent, ReceiptEvent, RoomLockedEvent, SignalEvent, TypingEvent,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::client::{assert_room, assert_signal_data, spec_signal_data};
use crate::json::{Fields, J};

fn round_trip<T>(what: &str, data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + Debug + PartialEq,
{
    let t = serde_json::from_slice::<T>(data).ok()?;
    let bytes = serde_json::to_vec(&t).expect("serialises");
    let again = serde_json::from_slice::<T>(&bytes)
        .unwrap_or_else(|e| panic!("{what}: re-serialised {t:?} does not parse: {e}"));
    assert_eq!(again, t, "{what}: round trip changed the value");
    Some(t)
}

/// `Ack<T>` is "T, else ErrorAck": consistent with reading each directly.
fn check_ack<T>(what: &str, data: &[u8], tree: Option<&J>)
where
    T: DeserializeOwned + Serialize + Debug + PartialEq,
{
    let ack = round_trip::<Ack<T>>(what, data);
    let ok = serde_json::from_slice::<T>(data).ok();
    let err = serde_json::from_slice::<ErrorAck>(data).ok();
    match &ack {
        Some(Ack::Ok(t)) => {
            assert_eq!(ok.as_ref(), Some(t), "{what}: Ack::Ok differs from T");
            let v = serde_json::to_value(t).expect("serialises");
            assert_eq!(
                v["ok"],
                json!(true),
                "{what}: a success ack without ok: true"
            );
        }
        Some(Ack::Err(e)) => {
            assert!(ok.is_none(), "{what}: Ack::Err but T parses");
            assert_eq!(
                err.as_ref(),
                Some(e),
                "{what}: Ack::Err differs from ErrorAck"
            );
            assert!(ErrorCode::ALL.contains(&e.error.code));
        }
        // Only where `Ack` buffers what the direct read skips over: the
        // generic tree fails the same way then.
        None if tree.is_some() => {
            assert!(ok.is_none(), "{what}: T parses but Ack<T> does not");
            assert!(err.is_none(), "{what}: ErrorAck parses but Ack<T> does not");
        }
        None => {}
    }
}

/// Target `server_payloads`: arbitrary bytes as every server → client event
/// and every ack a client reads.
pub fn check_server_payload(data: &[u8]) {
    let tree = serde_json::from_slice::<J>(data).ok();
    let tree = tree.as_ref();
    check_ack::<OkAck>("Ack<OkAck>", data, tree);
    check_ack::<ChatAck>("Ack<ChatAck>", data, tree);
    check_ack::<JoinAck>("Ack<JoinAck>", data, tree);
    if let Some(j) = round_trip::<JoinAck>("JoinAck", data) {
        assert_room(&j.room.id);
        j.history.iter().for_each(|m| assert_room(&m.room));
    }
    if let Some(e) = round_trip::<PeerJoined>("PeerJoined", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<PeerLeft>("PeerLeft", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<PeerReconnecting>("PeerReconnecting", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<PeerResumed>("PeerResumed", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<KickedEvent>("KickedEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<RoomLockedEvent>("RoomLockedEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<MuteRequestEvent>("MuteRequestEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<HandEvent>("HandEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<HostChanged>("HostChanged", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<SignalEvent>("SignalEvent", data) {
        assert_room(&e.room);
        assert_signal_data(&e.data);
        // The relayed `data` is read exactly like the request's.
        if let Some(J::Obj(f)) = tree {
            let got = serde_json::to_value(&e.data).expect("serialises");
            let want = Fields(f).required("data").and_then(spec_signal_data);
            assert_eq!(
                want.ok(),
                Some(got),
                "SignalEvent: data differs from the rules"
            );
        }
    }
    if let Some(e) = round_trip::<ChatMessage>("ChatMessage", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<TypingEvent>("TypingEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<MediaStateEvent>("MediaStateEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<ReceiptEvent>("ReceiptEvent", data) {
        assert_room(&e.room);
    }
    if let Some(e) = round_trip::<PingEvent>("PingEvent", data) {
        assert_room(&e.room);
    }
}
