//! The browser client: a lobby, a mesh video room with chat over the relay
//! or RTCDataChannels, and a live relay-vs-peer-to-peer comparison.
//!
//! `components/` is the view; `signaling` (socket.io), `rtc` (peer
//! connections), `media` (camera, mic, screen) and `call/` (the controller
//! that ties them together, one module per concern) are the effects;
//! `state` holds the signals the view reads. `App` provides both by context:
//! the `Ui` signals and the `ActiveCall` whose methods the components call.
//! Selectors the tests rely on: docs/client-contract.md.

mod audio;
mod call;
mod components;
mod js;
mod media;
mod rtc;
mod signaling;
mod state;

use protocol::Mode;

/// Installs the panic hook and mounts the app on `<body>`.
pub fn start() {
    console_error_panic_hook::set_once();
    audio::install();
    leptos::mount::mount_to_body(components::App);
}

/// What the address bar asks for: `/r/<room>?name=<name>&mode=<mode>&codec=<codec>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub room: Option<String>,
    pub name: Option<String>,
    pub mode: Option<Mode>,
    /// Preferred video codec to send, as a MIME type (`?codec=h264` → `video/H264`).
    pub codec: Option<String>,
}

impl Route {
    /// Parses a path and query string.
    pub fn parse(path: &str, query: &str) -> Self {
        let room = path
            .strip_prefix("/r/")
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty())
            .map(decode);
        let mut name = None;
        let mut mode = None;
        let mut codec = None;
        for pair in query.trim_start_matches('?').split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "name" if !v.is_empty() => name = Some(decode(v)),
                "mode" => mode = v.parse().ok(),
                "codec" if !v.is_empty() => codec = video_mime(&decode(v)),
                _ => {}
            }
        }
        Self {
            room,
            name,
            mode,
            codec,
        }
    }

    pub fn current() -> Self {
        let loc = web_sys::window().map(|w| w.location());
        let path = loc
            .as_ref()
            .and_then(|l| l.pathname().ok())
            .unwrap_or_default();
        let query = loc
            .as_ref()
            .and_then(|l| l.search().ok())
            .unwrap_or_default();
        Self::parse(&path, &query)
    }
}

/// `h264`, `vp8`, `vp9`, `av1` (any case) → the MIME type browsers use.
fn video_mime(codec: &str) -> Option<String> {
    let name = match codec.to_ascii_lowercase().as_str() {
        "h264" => "H264",
        "vp8" => "VP8",
        "vp9" => "VP9",
        "av1" => "AV1",
        _ => return None,
    };
    Some(format!("video/{name}"))
}

/// Percent-decoding of a URL component (`+` is a space in queries).
fn decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A room name nobody has to type: two words and a number.
pub fn random_room() -> String {
    const A: [&str; 8] = [
        "calm", "bright", "swift", "quiet", "bold", "warm", "lucky", "brave",
    ];
    const B: [&str; 8] = [
        "otter", "falcon", "maple", "river", "comet", "harbor", "meadow", "lynx",
    ];
    let r = |n: usize| (js_sys::Math::random() * n as f64) as usize % n;
    format!("{}-{}-{}", A[r(8)], B[r(8)], 100 + r(900))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/", ""), Route::default());
        let r = Route::parse("/r/team-1", "?name=Ana%20Bo&mode=sfu");
        assert_eq!(r.room.as_deref(), Some("team-1"));
        assert_eq!(r.name.as_deref(), Some("Ana Bo"));
        assert_eq!(r.mode, Some(Mode::Sfu));
        let r = Route::parse("/r/x/", "?name=A+B&mode=nope");
        assert_eq!(r.room.as_deref(), Some("x"));
        assert_eq!(r.name.as_deref(), Some("A B"));
        assert_eq!(r.mode, None);
        assert_eq!(r.codec, None);
        assert_eq!(Route::parse("/r/", "").room, None);
        let r = Route::parse("/r/x", "?codec=H264&mode=sfu");
        assert_eq!(r.codec.as_deref(), Some("video/H264"));
        assert_eq!(Route::parse("/r/x", "?codec=theora").codec, None);
        assert_eq!(decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(decode("100%"), "100%");
    }
}
