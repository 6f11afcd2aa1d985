//! The documented rules (`PROTOCOL.md`, `docs/server-contract.md`),
//! written without looking at the parsers in `protocol`.

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

/// A reaction (PROTOCOL.md version 2): 1–16 characters, not all white space.
pub fn emoji(s: &str) -> bool {
    (1..=16).contains(&s.chars().count()) && !trim_ws(s).is_empty()
}

/// An offer/answer whose SDP is blank fails `SignalData::validate`.
pub fn sdp_blank(sdp: &str) -> bool {
    sdp.chars().all(char::is_whitespace)
}

/// `mode`: exactly `mesh` or `sfu`.
pub fn mode(s: &str) -> bool {
    s == "mesh" || s == "sfu"
}
