//! Target `client_payloads`: what the rules say each client → server
//! payload means (read from the generic tree, independently of the serde
//! derives), the field invariants of parsed values, and the check that ties
//! them together.

use std::fmt::Debug;

use protocol::{
    ChatRequest, JoinRequest, LeaveRequest, MediaStateRequest, Object, PingRequest,
    ReactionRequest, ReceiptRequest, RoomName, SignalData, SignalRequest, TypingRequest,
    ValidationError, events,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::json::{Fields, J, Spec, object};
use crate::rules;

/// What the rules say a client → server payload means, as the canonical JSON
/// its type serialises to; `Err(why)` when the rules refuse it.
type PayloadSpec = fn(&Fields<'_>) -> Spec<Value>;

fn spec_join(f: &Fields<'_>) -> Spec<Value> {
    let room = f.room()?;
    let raw_name = f.string("name")?;
    let name = rules::display_name(raw_name).ok_or_else(|| format!("bad name {raw_name:?}"))?;
    let mut out = json!({"room": room, "name": name});
    match f.opt_string("mode")? {
        None => {}
        Some(m) if rules::mode(m) => out["mode"] = json!(m),
        Some(m) => return Err(format!("bad mode {m:?}")),
    }
    if let Some(p) = f.opt_string("password")? {
        match rules::password(p) {
            Ok(None) => {}
            Ok(Some(p)) => out["password"] = json!(p),
            Err(()) => return Err("password too long".into()),
        }
    }
    if let Some(t) = f.opt_string("resume")? {
        match t.len() {
            1..=256 => out["resume"] = json!(t),
            _ => return Err(format!("bad resume token of {} bytes", t.len())),
        }
    }
    Ok(out)
}

fn spec_leave(f: &Fields<'_>) -> Spec<Value> {
    Ok(json!({"room": f.room()?}))
}

fn spec_ice(j: &J) -> Spec<Value> {
    let f = object(j)?;
    let candidate = f.string("candidate")?;
    let mid = f.opt_string("sdpMid")?;
    let index = match f.get("sdpMLineIndex")? {
        None | Some(J::Null) => None,
        Some(J::U(n)) if *n <= u64::from(u16::MAX) => Some(*n),
        Some(other) => return Err(format!("bad sdpMLineIndex {other:?}")),
    };
    let mut out = json!({"candidate": candidate, "sdpMid": mid, "sdpMLineIndex": index});
    if let Some(u) = f.opt_string("usernameFragment")? {
        out["usernameFragment"] = json!(u);
    }
    Ok(out)
}

/// `SIGNAL`; the blank-SDP rule is `validate`'s, checked separately.
pub(crate) fn spec_signal_data(j: &J) -> Spec<Value> {
    let f = object(j)?;
    match f.string("type")? {
        t @ ("offer" | "answer") => Ok(json!({"type": t, "sdp": f.string("sdp")?})),
        "candidate" => match f.get("candidate")? {
            None | Some(J::Null) => Ok(json!({"type": "candidate", "candidate": null})),
            Some(c) => Ok(json!({"type": "candidate", "candidate": spec_ice(c)?})),
        },
        "bye" => Ok(json!({"type": "bye"})),
        t => Err(format!("bad signal type {t:?}")),
    }
}

fn spec_signal(f: &Fields<'_>) -> Spec<Value> {
    Ok(json!({
        "room": f.room()?,
        "to": f.string("to")?,
        "data": spec_signal_data(f.required("data")?)?,
    }))
}

fn spec_chat(f: &Fields<'_>) -> Spec<Value> {
    let room = f.room()?;
    let text = f.string("text")?;
    if !rules::chat_text(text) {
        return Err("bad text length".into());
    }
    Ok(json!({"room": room, "text": text}))
}

fn spec_typing(f: &Fields<'_>) -> Spec<Value> {
    Ok(json!({"room": f.room()?, "typing": f.boolean("typing")?}))
}

fn spec_media_state(f: &Fields<'_>) -> Spec<Value> {
    Ok(json!({
        "room": f.room()?,
        "audio": f.boolean("audio")?,
        "video": f.boolean("video")?,
        "screen": f.default_bool("screen")?,
    }))
}

fn spec_receipt(f: &Fields<'_>) -> Spec<Value> {
    Ok(json!({"room": f.room()?, "id": f.string("id")?}))
}

fn spec_reaction(f: &Fields<'_>) -> Spec<Value> {
    let room = f.room()?;
    let emoji = f.string("emoji")?;
    if !rules::emoji(emoji) {
        return Err(format!("bad emoji {emoji:?}"));
    }
    Ok(json!({"room": room, "emoji": emoji}))
}

fn spec_ping(f: &Fields<'_>) -> Spec<Value> {
    let seq = match f.required("seq")? {
        J::U(n) if *n <= u64::from(u32::MAX) => *n,
        other => return Err(format!("bad seq {other:?}")),
    };
    Ok(json!({
        "room": f.room()?,
        "to": f.string("to")?,
        "seq": seq,
        "pong": f.default_bool("pong")?,
    }))
}

// ---------------------------------------------------------------------------
// Field-level invariants of values the parsers produced.

pub(crate) fn assert_room(r: &RoomName) {
    assert!(rules::room_name(r.as_str()), "accepted room {r:?}");
}

pub(crate) fn assert_signal_data(d: &SignalData) {
    let blank = match d {
        SignalData::Offer { sdp } | SignalData::Answer { sdp } => rules::sdp_blank(sdp),
        SignalData::Candidate { .. } | SignalData::Bye => false,
    };
    assert_eq!(
        d.validate().is_err(),
        blank,
        "SignalData::validate disagrees with the blank-SDP rule: {d:?}"
    );
    if blank {
        assert_eq!(d.validate(), Err(ValidationError::Empty("sdp")));
    }
}

/// The client → server payload types the server reads, with their invariants.
trait Request: DeserializeOwned + Serialize + Debug + PartialEq {
    const EVENT: &'static str;
    const SPEC: PayloadSpec;
    fn invariants(&self);
}

impl Request for JoinRequest {
    const EVENT: &'static str = events::JOIN;
    const SPEC: PayloadSpec = spec_join;
    fn invariants(&self) {
        assert_room(&self.room);
        let n = self.name.as_str();
        assert_eq!(rules::display_name(n), Some(n), "accepted name {n:?}");
        if let Some(p) = &self.password {
            let p = std::str::from_utf8(p.as_bytes()).expect("a password is UTF-8");
            assert_eq!(rules::password(p), Ok(Some(p)), "accepted password");
        }
        if let Some(t) = &self.resume {
            assert!((1..=256).contains(&t.as_str().len()), "accepted token");
        }
    }
}

impl Request for LeaveRequest {
    const EVENT: &'static str = events::LEAVE;
    const SPEC: PayloadSpec = spec_leave;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for SignalRequest {
    const EVENT: &'static str = events::SIGNAL;
    const SPEC: PayloadSpec = spec_signal;
    fn invariants(&self) {
        assert_room(&self.room);
        assert_signal_data(&self.data);
    }
}

impl Request for ChatRequest {
    const EVENT: &'static str = events::CHAT;
    const SPEC: PayloadSpec = spec_chat;
    fn invariants(&self) {
        assert_room(&self.room);
        assert!(rules::chat_text(self.text.as_str()), "accepted text");
    }
}

impl Request for TypingRequest {
    const EVENT: &'static str = events::TYPING;
    const SPEC: PayloadSpec = spec_typing;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for MediaStateRequest {
    const EVENT: &'static str = events::MEDIA_STATE;
    const SPEC: PayloadSpec = spec_media_state;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for ReceiptRequest {
    const EVENT: &'static str = events::CHAT_RECEIPT;
    const SPEC: PayloadSpec = spec_receipt;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for PingRequest {
    const EVENT: &'static str = events::PING;
    const SPEC: PayloadSpec = spec_ping;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for ReactionRequest {
    const EVENT: &'static str = "reaction";
    const SPEC: PayloadSpec = spec_reaction;
    fn invariants(&self) {
        assert_room(&self.room);
        assert!(rules::emoji(&self.emoji), "accepted emoji {:?}", self.emoji);
    }
}

/// JSON's insignificant whitespace.
fn skip_ws(data: &[u8]) -> &[u8] {
    let n = data
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &data[n..]
}

fn check_request<T: Request>(data: &[u8], tree: Option<&J>) {
    let ev = T::EVENT;
    // What the server does: `Object<T>` (signal-server handlers/list.rs `payload`).
    let wrapped = serde_json::from_slice::<Object<T>>(data).map(|Object(t)| t);
    // `Object` only adds "must be an object" to the derive.
    let plain = serde_json::from_slice::<T>(data);
    let is_object = skip_ws(data).first() == Some(&b'{');
    match (&wrapped, &plain) {
        (Ok(w), Ok(p)) => assert_eq!(w, p, "{ev}: Object<T> and T read different values"),
        (Ok(w), Err(e)) => panic!("{ev}: Object<T> accepted {w:?} but T refused: {e}"),
        (Err(_), Ok(p)) => assert!(
            !is_object,
            "{ev}: T accepted an object Object<T> refused: {p:?}"
        ),
        (Err(_), Err(_)) => {}
    }

    if let Ok(t) = &wrapped {
        t.invariants();
        // Round trip: what the server relays/stores reads back the same.
        let bytes = serde_json::to_vec(t).expect("a request serialises");
        let again = serde_json::from_slice::<Object<T>>(&bytes)
            .unwrap_or_else(|e| panic!("{ev}: re-serialised {t:?} does not parse: {e}"))
            .0;
        assert_eq!(&again, t, "{ev}: round trip changed the value");
    }

    // Accepted exactly when the rules say so, with the meaning they give.
    // (No tree: serde_json could not build a generic value — nesting deeper
    // than its recursion limit, or a number beyond f64 in an ignored field.)
    let Some(tree) = tree else { return };
    let expected = object(tree).and_then(|f| T::SPEC(&f));
    match (expected, wrapped) {
        (Ok(want), Ok(t)) => {
            let got = serde_json::to_value(&t).expect("a request serialises");
            assert_eq!(
                got, want,
                "{ev}: parsed value differs from the rules' reading"
            );
        }
        (Err(why), Ok(t)) => panic!("{ev}: accepted a payload the rules refuse ({why}): {t:?}"),
        (Ok(want), Err(e)) => panic!("{ev}: refused a payload the rules accept ({e}): {want}"),
        (Err(_), Err(_)) => {}
    }
}

/// Target `client_payloads`: arbitrary bytes as the payload of every
/// client → server event.
pub fn check_client_payload(data: &[u8]) {
    let tree = serde_json::from_slice::<J>(data).ok();
    let tree = tree.as_ref();
    check_request::<JoinRequest>(data, tree);
    check_request::<LeaveRequest>(data, tree);
    check_request::<SignalRequest>(data, tree);
    check_request::<ChatRequest>(data, tree);
    check_request::<TypingRequest>(data, tree);
    check_request::<MediaStateRequest>(data, tree);
    check_request::<ReceiptRequest>(data, tree);
    check_request::<PingRequest>(data, tree);
    check_request::<ReactionRequest>(data, tree);
}
