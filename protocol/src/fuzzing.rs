//! Oracles for fuzzing the protocol's parsers of untrusted input.
//!
//! One copy of the invariants, used twice:
//! - by the `cargo fuzz` targets in `fuzz/` (through the `fuzz-oracles`
//!   feature of this crate), and
//! - by `protocol/tests/fuzz_corpus.rs`, which compiles this file into the
//!   test directly (`#[path]`, so the library's feature set — and everything
//!   built on it — stays the same under `cargo test --workspace`) and runs it
//!   over the committed seed corpus plus a deterministic mutator.
//!
//! Every `check_*` function panics when an invariant does not hold, and
//! returns normally for any input that is handled as documented, valid or not.
//!
//! The rules in [`rules`] are written from `PROTOCOL.md` and
//! `docs/server-contract.md`, independently of `names.rs`, and the payload
//! specs below read a generic JSON tree, independently of the serde derives:
//! a value the parser accepts must be valid by the rules (and equal to what
//! the rules say it means), and a value valid by the rules must be accepted.
//!
//! Paths are written `crate::X` for the library's public items only, so the
//! same file also compiles as a module of the test crate, whose root imports
//! them from `protocol`.

use std::fmt::Debug;

use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::{
    Ack, ChatAck, ChatMessage, ChatRequest, ChatText, DisplayName, ErrorAck, ErrorCode, JoinAck,
    JoinRequest, LeaveRequest, MediaStateEvent, MediaStateRequest, Mode, Object, OkAck, Password,
    PeerJoined, PeerLeft, PingEvent, PingRequest, ReceiptEvent, ReceiptRequest, RoomName,
    SignalData, SignalEvent, SignalRequest, TypingEvent, TypingRequest, ValidationError,
};

/// The documented rules, written without looking at the parsers.
pub mod rules {
    /// `R`: 1–64 characters, each one of `[A-Za-z0-9_-]`.
    pub fn room_name(s: &str) -> bool {
        let n = s.chars().count();
        (1..=64).contains(&n)
            && s.chars()
                .all(|c| matches!(c, 'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-'))
    }

    /// A C0/C1 control character (Unicode general category `Cc`).
    pub fn is_cc(c: char) -> bool {
        let u = u32::from(c);
        u < 0x20 || (0x7f..=0x9f).contains(&u)
    }

    /// Strips Unicode `White_Space` at both ends.
    pub fn trim_ws(s: &str) -> &str {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !c.is_whitespace() {
                break;
            }
            start = i + c.len_utf8();
        }
        let rest = &s[start..];
        let mut end = rest.len();
        for (i, c) in rest.char_indices().rev() {
            if !c.is_whitespace() {
                break;
            }
            end = i;
        }
        &rest[..end]
    }

    /// `N`: 1–32 characters after trimming, and (server-contract.md) no
    /// control characters. `Some(trimmed)` when valid: that is the name kept.
    pub fn display_name(s: &str) -> Option<&str> {
        let t = trim_ws(s);
        let n = t.chars().count();
        ((1..=32).contains(&n) && !t.chars().any(is_cc)).then_some(t)
    }

    /// `T`: 1–2000 characters, kept as sent (whitespace-only is text too).
    pub fn chat_text(s: &str) -> bool {
        (1..=2000).contains(&s.chars().count())
    }

    /// A password: empty = none; otherwise at most 128 characters.
    /// `Err(())` when too long.
    #[allow(clippy::result_unit_err)]
    pub fn password(s: &str) -> Result<Option<&str>, ()> {
        match s.chars().count() {
            0 => Ok(None),
            1..=128 => Ok(Some(s)),
            _ => Err(()),
        }
    }

    /// An offer/answer whose SDP is blank fails `SignalData::validate`.
    pub fn sdp_blank(sdp: &str) -> bool {
        sdp.chars().all(char::is_whitespace)
    }

    /// `mode`: exactly `mesh` or `sfu`.
    pub fn mode(s: &str) -> bool {
        s == "mesh" || s == "sfu"
    }
}

// ---------------------------------------------------------------------------
// A generic JSON tree that keeps duplicate keys and the integer/float split
// (serde_json::Value keeps neither), read with serde_json like the payloads.

/// A JSON value as read by serde_json's `deserialize_any`.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::U(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::I(n))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::F(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = map.next_entry::<String, J>()? {
                    v.push(kv);
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of a JSON object, looked up the way a serde derive reads them:
/// unknown keys are ignored, a known key given twice is an error.
pub struct Fields<'a>(&'a [(String, J)]);

type Spec<T> = Result<T, String>;

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Spec<Option<&'a J>> {
        let mut it = self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
        let first = it.next();
        if it.next().is_some() {
            return Err(format!("duplicate field {key}"));
        }
        Ok(first)
    }

    fn required(&self, key: &str) -> Spec<&'a J> {
        self.get(key)?.ok_or_else(|| format!("missing field {key}"))
    }

    fn string(&self, key: &str) -> Spec<&'a str> {
        match self.required(key)? {
            J::Str(s) => Ok(s),
            other => Err(format!("{key} is not a string: {other:?}")),
        }
    }

    fn opt_string(&self, key: &str) -> Spec<Option<&'a str>> {
        match self.get(key)? {
            None | Some(J::Null) => Ok(None),
            Some(J::Str(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{key} is not a string or null: {other:?}")),
        }
    }

    fn boolean(&self, key: &str) -> Spec<bool> {
        match self.required(key)? {
            J::Bool(b) => Ok(*b),
            other => Err(format!("{key} is not a bool: {other:?}")),
        }
    }

    /// A `#[serde(default)] bool`: absent is false, `null` is an error.
    fn default_bool(&self, key: &str) -> Spec<bool> {
        match self.get(key)? {
            None => Ok(false),
            Some(J::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{key} is not a bool: {other:?}")),
        }
    }

    fn room(&self) -> Spec<&'a str> {
        let r = self.string("room")?;
        if rules::room_name(r) {
            Ok(r)
        } else {
            Err(format!("bad room {r:?}"))
        }
    }
}

/// An object, as the protocol requires of every payload and nested value.
fn object(j: &J) -> Spec<Fields<'_>> {
    match j {
        J::Obj(f) => Ok(Fields(f)),
        other => Err(format!("not an object: {other:?}")),
    }
}

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
fn spec_signal_data(j: &J) -> Spec<Value> {
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

fn assert_room(r: &RoomName) {
    assert!(rules::room_name(r.as_str()), "accepted room {r:?}");
}

fn assert_signal_data(d: &SignalData) {
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
pub trait Request: DeserializeOwned + Serialize + Debug + PartialEq {
    const EVENT: &'static str;
    const SPEC: PayloadSpec;
    fn invariants(&self);
}

impl Request for JoinRequest {
    const EVENT: &'static str = crate::events::JOIN;
    const SPEC: PayloadSpec = spec_join;
    fn invariants(&self) {
        assert_room(&self.room);
        let n = self.name.as_str();
        assert_eq!(rules::display_name(n), Some(n), "accepted name {n:?}");
        if let Some(p) = &self.password {
            let p = std::str::from_utf8(p.as_bytes()).expect("a password is UTF-8");
            assert_eq!(rules::password(p), Ok(Some(p)), "accepted password");
        }
    }
}

impl Request for LeaveRequest {
    const EVENT: &'static str = crate::events::LEAVE;
    const SPEC: PayloadSpec = spec_leave;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for SignalRequest {
    const EVENT: &'static str = crate::events::SIGNAL;
    const SPEC: PayloadSpec = spec_signal;
    fn invariants(&self) {
        assert_room(&self.room);
        assert_signal_data(&self.data);
    }
}

impl Request for ChatRequest {
    const EVENT: &'static str = crate::events::CHAT;
    const SPEC: PayloadSpec = spec_chat;
    fn invariants(&self) {
        assert_room(&self.room);
        assert!(rules::chat_text(self.text.as_str()), "accepted text");
    }
}

impl Request for TypingRequest {
    const EVENT: &'static str = crate::events::TYPING;
    const SPEC: PayloadSpec = spec_typing;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for MediaStateRequest {
    const EVENT: &'static str = crate::events::MEDIA_STATE;
    const SPEC: PayloadSpec = spec_media_state;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for ReceiptRequest {
    const EVENT: &'static str = crate::events::CHAT_RECEIPT;
    const SPEC: PayloadSpec = spec_receipt;
    fn invariants(&self) {
        assert_room(&self.room);
    }
}

impl Request for PingRequest {
    const EVENT: &'static str = crate::events::PING;
    const SPEC: PayloadSpec = spec_ping;
    fn invariants(&self) {
        assert_room(&self.room);
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
    // What the server does: `Object<T>` (events.rs `parse`).
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
}

// ---------------------------------------------------------------------------
// Names and modes.

/// Target `names`: one string through every name parser and `Mode`.
pub fn check_names(s: &str) {
    let as_json = serde_json::to_string(s).expect("a string serialises");

    match RoomName::parse(s) {
        Ok(r) => {
            assert!(rules::room_name(s), "RoomName accepted {s:?}");
            assert_eq!(r.as_str(), s, "RoomName changed the name");
            assert_eq!(r.to_string(), s);
        }
        Err(e) => {
            assert!(!rules::room_name(s), "RoomName refused {s:?}");
            assert_eq!(e, ValidationError::RoomName);
        }
    }
    assert_eq!(
        serde_json::from_str::<RoomName>(&as_json).ok(),
        RoomName::parse(s).ok(),
        "RoomName: serde and parse disagree on {s:?}"
    );

    match DisplayName::parse(s) {
        Ok(n) => {
            let want = rules::display_name(s);
            assert_eq!(want, Some(n.as_str()), "DisplayName accepted {s:?}");
        }
        Err(e) => {
            assert_eq!(rules::display_name(s), None, "DisplayName refused {s:?}");
            assert_eq!(e, ValidationError::DisplayName);
        }
    }
    assert_eq!(
        serde_json::from_str::<DisplayName>(&as_json).ok(),
        DisplayName::parse(s).ok(),
        "DisplayName: serde and parse disagree on {s:?}"
    );

    match ChatText::parse(s.to_owned()) {
        Ok(t) => {
            assert!(
                rules::chat_text(s),
                "ChatText accepted {} chars",
                s.chars().count()
            );
            assert_eq!(t.as_str(), s, "ChatText changed the text");
        }
        Err(e) => {
            assert!(
                !rules::chat_text(s),
                "ChatText refused {} chars",
                s.chars().count()
            );
            assert_eq!(e, ValidationError::ChatText);
        }
    }
    assert_eq!(
        serde_json::from_str::<ChatText>(&as_json).ok(),
        ChatText::parse(s.to_owned()).ok(),
        "ChatText: serde and parse disagree"
    );

    match (Password::parse(s.to_owned()), rules::password(s)) {
        (Ok(None), Ok(None)) => {}
        (Ok(Some(p)), Ok(Some(want))) => {
            assert_eq!(
                p.as_bytes(),
                want.as_bytes(),
                "Password changed the password"
            );
            assert_eq!(
                format!("{p:?}"),
                "Password(***)",
                "Password's Debug shows it"
            );
        }
        (Err(e), Err(())) => assert_eq!(e, ValidationError::Password),
        (got, want) => panic!("Password::parse gave {got:?}, the rule {want:?}"),
    }

    let mode = s.parse::<Mode>();
    assert_eq!(mode.is_ok(), rules::mode(s), "Mode::from_str on {s:?}");
    if let Ok(m) = mode {
        assert_eq!(m.to_string(), s, "Mode Display round trip");
        assert_eq!(serde_json::to_string(&m).expect("serialises"), as_json);
    }
    assert_eq!(
        serde_json::from_str::<Mode>(&as_json).ok(),
        mode.ok(),
        "Mode: serde and FromStr disagree on {s:?}"
    );
}

// ---------------------------------------------------------------------------
// What a client reads: server → client events and acks (the WASM client
// parses them with serde_json too).

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

// ---------------------------------------------------------------------------
// A small deterministic mutator, for running the oracles on stable (CI).

/// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Characters around the rules' edges.
const CHARS: &[char] = &[
    'a', 'Z', '0', '_', '-', ' ', '.', '/', 'é', '\u{0}', '\n', '\t', '\u{7f}', '\u{85}', '\u{a0}',
    '\u{200b}', '\u{2028}', '\u{3000}', '\u{feff}', '\u{202e}', '😀', '"', '\\', '<',
];

/// A string with a length near one of the rules' bounds.
pub fn edge_string(rng: &mut XorShift) -> String {
    let len = match rng.below(10) {
        0 => 0,
        1 => 1,
        2 => 31 + rng.below(4),
        3 => 63 + rng.below(4),
        4 => 127 + rng.below(4),
        5 => 1999 + rng.below(3),
        _ => rng.below(8),
    };
    let uniform = rng.below(2) == 0;
    let c0 = *rng.pick(CHARS);
    (0..len)
        .map(|_| if uniform { c0 } else { *rng.pick(CHARS) })
        .collect()
}

fn random_value(rng: &mut XorShift, depth: u32) -> Value {
    match rng.below(if depth > 2 { 9 } else { 12 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(*rng.pick(&[
            0i64,
            1,
            -1,
            65535,
            65536,
            4_294_967_295,
            4_294_967_296,
            i64::MIN
        ])),
        3 => json!(*rng.pick(&[0.5f64, -0.0, 1e300, f64::MIN_POSITIVE])),
        4 => json!(u64::MAX),
        5 => json!(*rng.pick(&[
            "mesh",
            "sfu",
            "offer",
            "answer",
            "candidate",
            "bye",
            "r1",
            "Ana",
            "v=0",
            ""
        ])),
        6..=8 => json!(edge_string(rng)),
        9 => Value::Array(
            (0..rng.below(3))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                let k = rng.pick(KEYS).to_string();
                m.insert(k, random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// Every key the payloads know.
const KEYS: &[&str] = &[
    "room",
    "name",
    "mode",
    "password",
    "to",
    "data",
    "type",
    "sdp",
    "candidate",
    "sdpMid",
    "sdpMLineIndex",
    "usernameFragment",
    "text",
    "typing",
    "audio",
    "video",
    "screen",
    "id",
    "seq",
    "pong",
    "ok",
    "error",
    "code",
    "message",
    "self",
    "peers",
    "history",
    "from",
    "ts",
    "media",
];

/// Replace, remove or add one value somewhere in a JSON document.
fn mutate_value(rng: &mut XorShift, v: &mut Value, depth: u32) {
    let descend = depth < 4 && rng.below(3) != 0;
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let k = m.keys().nth(rng.below(m.len())).cloned().expect("in range");
            match rng.below(5) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    m.insert(rng.pick(KEYS).to_string(), random_value(rng, depth));
                }
                _ => mutate_value(rng, m.get_mut(&k).expect("present"), depth + 1),
            }
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.below(a.len());
            mutate_value(rng, &mut a[i], depth + 1);
        }
        _ => {
            *v = match v {
                // An object → its values as an array (serde's derives read
                // a struct from a sequence too), a tag first.
                Value::Object(m) if rng.below(2) == 0 => {
                    let tag = m.remove("type");
                    tag.into_iter().chain(m.values().cloned()).collect()
                }
                // A string → `{string: null}` (serde's externally tagged
                // form of a unit variant).
                Value::String(s) if rng.below(2) == 0 => {
                    let mut m = serde_json::Map::new();
                    m.insert(std::mem::take(s), Value::Null);
                    Value::Object(m)
                }
                _ => random_value(rng, depth),
            }
        }
    }
}

/// One to four stacked mutations of `input`: structural (parsed JSON) or raw
/// bytes (flip, insert a dictionary token, delete, duplicate, truncate,
/// splice with another seed).
pub fn mutate(rng: &mut XorShift, input: &[u8], dict: &[Vec<u8>], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(8) {
            0 | 1 => {
                if let Ok(mut v) = serde_json::from_slice::<Value>(&out) {
                    mutate_value(rng, &mut v, 0);
                    out = serde_json::to_vec(&v).expect("a Value serialises");
                }
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = match rng.below(3) {
                    0 => out[i] ^ (1 << rng.below(8)),
                    1 => *rng.pick(b"{}[]\":,\\ 0-9eE.nulltrue"),
                    _ => rng.next_u64() as u8,
                };
            }
            3 if !dict.is_empty() => {
                let tok = rng.pick(dict).clone();
                let i = rng.below(out.len() + 1);
                out.splice(i..i, tok);
            }
            4 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(16));
                out.drain(i..i + n);
            }
            5 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(64));
                let chunk = out[i..i + n].to_vec();
                let j = rng.below(out.len() + 1);
                out.splice(j..j, chunk);
            }
            6 if !out.is_empty() => out.truncate(rng.below(out.len())),
            _ if !seeds.is_empty() => {
                let other = rng.pick(seeds);
                let i = rng.below(out.len() + 1);
                let j = rng.below(other.len() + 1);
                out.truncate(i);
                out.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
    out
}

/// Reads a libFuzzer dictionary (`name="token"` lines, `\\`, `\"` and `\xNN`
/// escapes).
pub fn parse_dict(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let (Some(a), Some(b)) = (line.find('"'), line.rfind('"')) else {
            continue;
        };
        if b <= a {
            continue;
        }
        let body = &line.as_bytes()[a + 1..b];
        let mut tok = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match (body[i], body.get(i + 1)) {
                (b'\\', Some(b'x')) if i + 3 < body.len() => {
                    let hex = std::str::from_utf8(&body[i + 2..i + 4]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => tok.push(b),
                        Err(_) => tok.extend_from_slice(&body[i..i + 4]),
                    }
                    i += 4;
                }
                (b'\\', Some(&c)) => {
                    tok.push(c);
                    i += 2;
                }
                (c, _) => {
                    tok.push(c);
                    i += 1;
                }
            }
        }
        out.push(tok);
    }
    out
}
