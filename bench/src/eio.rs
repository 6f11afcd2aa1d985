//! Minimal Engine.IO v4 / Socket.IO v5 text framing over a WebSocket,
//! default namespace only. Enough for a load client: no binary packets,
//! no polling transport.

use std::fmt::Write as _;

/// One decoded WebSocket text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Engine.IO `0{...}` open packet (handshake JSON).
    Open(&'a str),
    /// Engine.IO `1` close.
    Close,
    /// Engine.IO `2` ping from the server: answer [`PONG`].
    Ping,
    /// Engine.IO `3` pong.
    Pong,
    /// Socket.IO `40{...}` namespace connect reply.
    Connect(&'a str),
    /// Socket.IO `41` namespace disconnect.
    Disconnect,
    /// Socket.IO `42[...]` event: the JSON array `["name", payload]`.
    Event(&'a str),
    /// Socket.IO `43<id>[...]` ack: id and the JSON array of arguments.
    Ack(u64, &'a str),
    /// Socket.IO `44{...}` connect error.
    ConnectError(&'a str),
    /// Anything else (engine.io upgrade/noop, binary variants, garbage).
    Other,
}

/// Engine.IO pong, the answer to a server ping.
pub const PONG: &str = "3";
/// Socket.IO connect to the default namespace.
pub const CONNECT: &str = "40";

/// The WebSocket URL path of an Engine.IO v4 endpoint.
pub const WS_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Decodes one text frame.
pub fn parse(text: &str) -> Packet<'_> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'0') => Packet::Open(&text[1..]),
        Some(b'1') => Packet::Close,
        Some(b'2') => Packet::Ping,
        Some(b'3') => Packet::Pong,
        Some(b'4') => parse_socketio(&text[1..]),
        _ => Packet::Other,
    }
}

fn parse_socketio(text: &str) -> Packet<'_> {
    let Some(&kind) = text.as_bytes().first() else {
        return Packet::Other;
    };
    let mut rest = &text[1..];
    // Optional namespace "/nsp," (never sent for "/", tolerated anyway).
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => rest = &rest[i + 1..],
            None => rest = "",
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, body) = rest.split_at(digits);
    match kind {
        b'0' => Packet::Connect(body),
        b'1' => Packet::Disconnect,
        b'2' => Packet::Event(body),
        b'3' => match id.parse() {
            Ok(id) => Packet::Ack(id, body),
            Err(_) => Packet::Other,
        },
        b'4' => Packet::ConnectError(body),
        _ => Packet::Other,
    }
}

/// Encodes `42<ack>["name",payload]`; `payload_json` must be valid JSON.
pub fn event(ack: Option<u64>, name: &str, payload_json: &str) -> String {
    let mut s = String::with_capacity(8 + name.len() + payload_json.len());
    s.push_str("42");
    if let Some(id) = ack {
        let _ = write!(s, "{id}");
    }
    // Event names used here are plain ASCII words: no escaping needed.
    let _ = write!(s, "[\"{name}\",{payload_json}]");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_and_socket_packets() {
        assert_eq!(parse("0{\"sid\":\"x\"}"), Packet::Open("{\"sid\":\"x\"}"));
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(
            parse("40{\"sid\":\"a\"}"),
            Packet::Connect("{\"sid\":\"a\"}")
        );
        assert_eq!(parse("42[\"chat\",{}]"), Packet::Event("[\"chat\",{}]"));
        assert_eq!(
            parse("4317[{\"ok\":true}]"),
            Packet::Ack(17, "[{\"ok\":true}]")
        );
        assert_eq!(
            parse("44{\"message\":\"no\"}"),
            Packet::ConnectError("{\"message\":\"no\"}")
        );
        assert_eq!(parse("43[{}]"), Packet::Other);
        assert_eq!(parse(""), Packet::Other);
        assert_eq!(parse("4"), Packet::Other);
        assert_eq!(parse("x"), Packet::Other);
    }

    #[test]
    fn encodes_events() {
        assert_eq!(
            event(Some(0), "join", "{\"room\":\"r\"}"),
            "420[\"join\",{\"room\":\"r\"}]"
        );
        assert_eq!(event(None, "chat", "{}"), "42[\"chat\",{}]");
    }
}
