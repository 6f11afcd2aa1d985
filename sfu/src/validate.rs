//! What the SFU accepts from a peer, checked before it costs anything.
//!
//! An offer builds a peer connection and binds a UDP port; before this
//! check existed, text that was not even SDP did both and kept them until
//! the peer left. The signaling server runs these checks synchronously
//! before it queues a signal (so the sender's ack can say what is wrong),
//! and the room runs the offer check again before it builds anything.
//!
//! The rules are structural and cheap (one parse, linear in the text): what
//! webrtc-rs would refuse later in `set_remote_description`, refused first.
//! They do not prove that a connection will come up (the credentials may be
//! made up); the per-address cap and the ICE failure timeout bound that.

use rtc::sdp::SessionDescription;
use rtc::sdp::description::media::MediaDescription;

use protocol::IceCandidate;

/// Media sections one description may carry: far above a real room (100
/// peers × 4 forwarded tracks, plus the peer's own), far below what fits in
/// one event (each section becomes a transceiver).
pub const MAX_MEDIA_SECTIONS: usize = 1024;

/// Why a description or candidate from a peer is refused; the text is sent
/// back to that peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignal {
    #[error("the SDP does not parse: {0}")]
    Unparsable(String),
    #[error("the SDP has no media section (m=audio, m=video or m=application)")]
    NoMedia,
    #[error("the SDP has {0} media sections; at most {MAX_MEDIA_SECTIONS}")]
    TooManyMedia(usize),
    #[error("media section {index}: {kind:?} is not audio, video or application")]
    UnknownMedia { index: usize, kind: String },
    #[error("media section {0} has no a=mid")]
    NoMid(usize),
    #[error("media sections share the a=mid {0:?}")]
    DuplicateMid(String),
    #[error("the SDP has no ICE {0} (a=ice-{0})")]
    NoIce(&'static str),
    #[error("the media sections' ICE {0} differ")]
    ConflictingIce(&'static str),
    #[error("the ICE {what} has {len} characters; {min} to 256 are allowed")]
    IceLength {
        what: &'static str,
        len: usize,
        min: usize,
    },
    #[error("the SDP has no DTLS fingerprint (a=fingerprint)")]
    NoFingerprint,
    #[error("the DTLS fingerprints of the media sections differ")]
    ConflictingFingerprints,
    #[error("the DTLS fingerprint is not \"<sha-1|sha-256|...> <hex:hex:...>\"")]
    BadFingerprint,
    #[error("an ICE candidate does not parse: {0}")]
    BadCandidate(String),
}

/// Checks an offer from a peer; see [`check_description`].
pub fn validate_offer(sdp: &str) -> Result<(), BadSignal> {
    check_description(sdp).map(drop)
}

/// Checks an answer from a peer (to the SFU's offer); the same rules as an offer.
pub fn validate_answer(sdp: &str) -> Result<(), BadSignal> {
    check_description(sdp).map(drop)
}

/// A trickled candidate: empty (end of candidates) or one that parses.
pub fn validate_candidate(c: &IceCandidate) -> Result<(), BadSignal> {
    if c.candidate.trim().is_empty() {
        return Ok(());
    }
    check_candidate_line(&c.candidate)
}

/// The rules, in order:
/// 1. the text parses as SDP;
/// 2. it has 1 to [`MAX_MEDIA_SECTIONS`] media sections, each `audio`,
///    `video` or `application`, each with its own non-empty `a=mid`;
/// 3. ICE credentials: `a=ice-ufrag` (4–256 characters) and `a=ice-pwd`
///    (22–256, RFC 8839) at session level or in the media sections, the
///    same in every section that is not inactive;
/// 4. a DTLS `a=fingerprint` (session or media level, the same everywhere)
///    of the form `<hash> <hex>:<hex>:…` with a SHA hash;
/// 5. every `a=candidate` in it parses.
pub fn check_description(sdp: &str) -> Result<SessionDescription, BadSignal> {
    let parsed = SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes()))
        .map_err(|e| BadSignal::Unparsable(e.to_string()))?;
    let media = &parsed.media_descriptions;
    if media.is_empty() {
        return Err(BadSignal::NoMedia);
    }
    if media.len() > MAX_MEDIA_SECTIONS {
        return Err(BadSignal::TooManyMedia(media.len()));
    }
    let mut mids = std::collections::HashSet::with_capacity(media.len());
    for (index, m) in media.iter().enumerate() {
        let kind = m.media_name.media.as_str();
        if !matches!(kind, "audio" | "video" | "application") {
            return Err(BadSignal::UnknownMedia {
                index,
                kind: truncated(kind),
            });
        }
        let mid = media_attr(m, "mid").filter(|v| !v.is_empty());
        let mid = mid.ok_or(BadSignal::NoMid(index))?;
        if !mids.insert(mid) {
            return Err(BadSignal::DuplicateMid(truncated(mid)));
        }
    }
    ice_credential(&parsed, "ufrag", 4)?;
    ice_credential(&parsed, "pwd", 22)?;
    fingerprint(&parsed)?;
    for m in media {
        for a in m.attributes.iter().filter(|a| a.key == "candidate") {
            check_candidate_line(a.value.as_deref().unwrap_or_default())?;
        }
    }
    Ok(parsed)
}

/// A media-level attribute's value (`None` also for a flag without value).
fn media_attr<'a>(m: &'a MediaDescription, key: &str) -> Option<&'a str> {
    m.attribute(key).flatten()
}

/// `a=ice-<what>` as webrtc-rs reads it: the session's, else the first
/// active section's; every active section that names one must agree.
fn ice_credential(
    sd: &SessionDescription,
    what: &'static str,
    min: usize,
) -> Result<(), BadSignal> {
    let key = if what == "ufrag" {
        "ice-ufrag"
    } else {
        "ice-pwd"
    };
    let mut value = sd.attribute(key).map(String::as_str);
    let mut backup = None;
    for m in &sd.media_descriptions {
        let v = media_attr(m, key);
        if m.has_attribute("inactive") {
            backup = backup.or(v);
            continue;
        }
        value = value.or(v);
        if v.is_some() && v != value {
            return Err(BadSignal::ConflictingIce(what));
        }
    }
    let value = value.or(backup).ok_or(BadSignal::NoIce(what))?;
    let len = value.chars().count();
    if !(min..=256).contains(&len) {
        return Err(BadSignal::IceLength { what, len, min });
    }
    Ok(())
}

/// One DTLS fingerprint for the whole description, of a known SHA hash.
fn fingerprint(sd: &SessionDescription) -> Result<(), BadSignal> {
    let mut all = sd
        .attribute("fingerprint")
        .map(String::as_str)
        .into_iter()
        .chain(
            sd.media_descriptions
                .iter()
                .filter_map(|m| media_attr(m, "fingerprint")),
        );
    let first = all.next().ok_or(BadSignal::NoFingerprint)?;
    if all.any(|f| f != first) {
        return Err(BadSignal::ConflictingFingerprints);
    }
    let (hash, hex) = first.split_once(' ').ok_or(BadSignal::BadFingerprint)?;
    let hash_ok = ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(hash));
    let hex_ok = hex
        .split(':')
        .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
        && hex.len() >= 2;
    if hash_ok && hex_ok {
        Ok(())
    } else {
        Err(BadSignal::BadFingerprint)
    }
}

/// A candidate line, with or without its `candidate:` prefix.
fn check_candidate_line(line: &str) -> Result<(), BadSignal> {
    let line = line.strip_prefix("candidate:").unwrap_or(line);
    rtc::ice::candidate::unmarshal_candidate(line)
        .map(drop)
        .map_err(|e| BadSignal::BadCandidate(e.to_string()))
}

/// A peer's text quoted back to it, cut short.
fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85";

    /// A minimal offer: one data channel section, credentials in it.
    fn offer(extra_session: &str, media: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{extra_session}\
             a=group:BUNDLE 0\r\n{media}"
        )
    }

    fn datachannel(attrs: &str) -> String {
        format!("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n{attrs}")
    }

    fn good_attrs() -> String {
        format!(
            "a=ice-ufrag:Ax8A\r\na=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\n\
             a=fingerprint:{FP}\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"
        )
    }

    #[test]
    fn a_minimal_data_channel_offer_passes() {
        assert_eq!(
            validate_offer(&offer("", &datachannel(&good_attrs()))),
            Ok(())
        );
    }

    #[test]
    fn credentials_and_fingerprint_may_be_at_session_level() {
        let session = format!(
            "a=ice-ufrag:Ax8A\r\na=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\na=fingerprint:{FP}\r\n"
        );
        let sdp = offer(&session, &datachannel("a=mid:0\r\n"));
        assert_eq!(validate_offer(&sdp), Ok(()));
    }

    #[test]
    fn garbage_and_empty_descriptions_are_refused() {
        for text in [
            "",
            "hello",
            "v=0\r\n",
            "\u{0}\u{1}garbage\r\nm=\r\n",
            "v=0\r\no=x\r\n",
        ] {
            let e = validate_offer(text).expect_err(text);
            assert!(
                matches!(e, BadSignal::Unparsable(_) | BadSignal::NoMedia),
                "{text:?}: {e}"
            );
        }
        let no_media = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(validate_offer(no_media), Err(BadSignal::NoMedia));
    }

    #[test]
    fn each_rule_has_its_error() {
        let g = good_attrs();
        let cases: Vec<(String, BadSignal)> = vec![
            (g.replace("a=mid:0\r\n", ""), BadSignal::NoMid(0)),
            (
                g.replace("a=ice-ufrag:Ax8A\r\n", ""),
                BadSignal::NoIce("ufrag"),
            ),
            (
                g.replace("a=ice-pwd:A3hZdInJDtIaVtXY97dm0psc\r\n", ""),
                BadSignal::NoIce("pwd"),
            ),
            (
                g.replace("a=ice-pwd:A3hZdInJDtIaVtXY97dm0psc", "a=ice-pwd:short"),
                BadSignal::IceLength {
                    what: "pwd",
                    len: 5,
                    min: 22,
                },
            ),
            (
                g.replace(&format!("a=fingerprint:{FP}\r\n"), ""),
                BadSignal::NoFingerprint,
            ),
            (
                g.replace("sha-256 FC:6C", "md5 FC:6C"),
                BadSignal::BadFingerprint,
            ),
            (g.replace("FC:6C", "ZZ:6C"), BadSignal::BadFingerprint),
            (
                format!("{g}a=candidate:not a candidate\r\n"),
                BadSignal::BadCandidate(String::new()),
            ),
        ];
        for (attrs, want) in cases {
            let got = validate_offer(&offer("", &datachannel(&attrs))).expect_err(&attrs);
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{attrs}: {got}"
            );
        }
    }

    #[test]
    fn sections_must_agree_and_be_known_media() {
        let g = good_attrs();
        let second = g
            .replace("a=mid:0", "a=mid:1")
            .replace("a=ice-ufrag:Ax8A", "a=ice-ufrag:Bx8B");
        let two = format!("{}{}", datachannel(&g), datachannel(&second));
        assert_eq!(
            validate_offer(&offer("", &two)),
            Err(BadSignal::ConflictingIce("ufrag"))
        );
        let same_mid = format!("{}{}", datachannel(&g), datachannel(&g));
        assert_eq!(
            validate_offer(&offer("", &same_mid)),
            Err(BadSignal::DuplicateMid("0".into()))
        );
        let text = datachannel(&g).replace("m=application", "m=text");
        assert!(matches!(
            validate_offer(&offer("", &text)),
            Err(BadSignal::UnknownMedia { index: 0, .. })
        ));
    }

    #[test]
    fn too_many_sections_are_refused() {
        let mut media = String::new();
        for i in 0..=MAX_MEDIA_SECTIONS {
            media.push_str(&datachannel(
                &good_attrs().replace("a=mid:0", &format!("a=mid:{i}")),
            ));
        }
        assert_eq!(
            validate_offer(&offer("", &media)),
            Err(BadSignal::TooManyMedia(MAX_MEDIA_SECTIONS + 1))
        );
    }

    #[test]
    fn browser_candidates_pass_and_garbage_does_not() {
        let c = |s: &str| IceCandidate {
            candidate: s.to_owned(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        for ok in [
            "",
            "candidate:842163049 1 udp 1677729535 127.0.0.1 46154 typ host generation 0 ufrag Ax8A network-cost 999",
            "candidate:1 1 udp 2113937151 0f2a8f7e-3b1c-4f0c-9c55-0c0d2e3f4a5b.local 54321 typ host generation 0",
            "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
        ] {
            assert_eq!(validate_candidate(&c(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "x",
            "candidate:1 1 udp",
            "candidate:1 1 udp 1 1.2.3.4 notaport typ host",
        ] {
            assert!(validate_candidate(&c(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn chromium_offer_passes() {
        let sdp = include_str!("../tests/data/chrome-offer.sdp");
        assert_eq!(validate_offer(sdp), Ok(()));
    }
}
