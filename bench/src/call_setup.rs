//! One call set-up's `signal` payloads, as the `signal` scenario sends them
//! ([`burst`]) and reads them back when relayed ([`received`]).
//!
//! The payloads are what Chromium produced for a camera + microphone +
//! data-channel call (`bench/data/`: a 5.7 KB offer, a 5.4 KB answer and
//! eight host candidates a side), so the server parses, validates and
//! re-encodes what it does in real use. The send time rides inside them:
//! the SDP `o=` line's session id and version are the send time (µs) and
//! the call number, and a candidate's foundation is its send time.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::json;

/// Chromium's offer and answer SDPs.
pub const OFFER: &str = include_str!("../data/chrome-offer.sdp");
pub const ANSWER: &str = include_str!("../data/chrome-answer.sdp");
const CANDIDATES: &str = include_str!("../data/chrome-candidates.json");

/// Which side of the call set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Answerer,
}

#[derive(Deserialize)]
struct Candidate {
    candidate: String,
    #[serde(rename = "sdpMid")]
    sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex")]
    sdp_m_line_index: Option<u32>,
}

#[derive(Deserialize)]
struct CandidateFile {
    offerer: Vec<Candidate>,
    answerer: Vec<Candidate>,
}

/// One side's payloads, split where the send time goes and JSON-escaped
/// once.
struct Side {
    kind: &'static str,
    /// Escaped SDP after its `o=` line.
    sdp_rest: String,
    /// Per candidate: its JSON (`sdpMid`, `sdpMLineIndex`) and the escaped
    /// candidate line after the foundation.
    candidates: Vec<(String, String)>,
}

struct Templates {
    offerer: Side,
    answerer: Side,
}

/// `s` as the inside of a JSON string.
fn escaped(s: &str) -> String {
    let q = serde_json::Value::String(s.to_owned()).to_string();
    q[1..q.len() - 1].to_owned()
}

fn side(kind: &'static str, sdp: &str, candidates: &[Candidate]) -> Side {
    // `v=0\r\no=- ID VERSION IN IP4 ADDR\r\n…`: keep what follows the o= line.
    let after_o = sdp
        .find("\no=")
        .and_then(|i| sdp[i + 1..].find('\n').map(|j| i + 1 + j + 1))
        .unwrap_or(0);
    Side {
        kind,
        sdp_rest: escaped(&sdp[after_o..]),
        candidates: candidates
            .iter()
            .map(|c| {
                let fields = json!({"sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index});
                let fields = fields.to_string();
                let rest = c.candidate.split_once(' ').map_or("", |(_, r)| r);
                (fields[1..fields.len() - 1].to_owned(), escaped(rest))
            })
            .collect(),
    }
}

static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    // Checked by a unit test: the embedded file parses.
    let c: CandidateFile = serde_json::from_str(CANDIDATES).unwrap_or(CandidateFile {
        offerer: Vec::new(),
        answerer: Vec::new(),
    });
    Templates {
        offerer: side("offer", OFFER, &c.offerer),
        answerer: side("answer", ANSWER, &c.answerer),
    }
});

/// Signals of one call set-up, both sides (descriptions, candidates, ends).
pub fn signals_per_call() -> usize {
    let t = &*TEMPLATES;
    4 + t.offerer.candidates.len() + t.answerer.candidates.len()
}

/// One side's `signal` payloads of call `seq`, to peer `to`, stamped `t_us`.
pub fn burst(room: &str, to: &str, role: Role, seq: u64, t_us: u64) -> Vec<String> {
    let t = &*TEMPLATES;
    let side = match role {
        Role::Offerer => &t.offerer,
        Role::Answerer => &t.answerer,
    };
    let head = format!(r#"{{"room":"{room}","to":"{to}","data":"#);
    let mut out = Vec::with_capacity(side.candidates.len() + 2);
    out.push(format!(
        r#"{head}{{"type":"{}","sdp":"v=0\r\no=- {t_us} {seq} IN IP4 127.0.0.1\r\n{}"}}}}"#,
        side.kind, side.sdp_rest
    ));
    for (fields, rest) in &side.candidates {
        out.push(format!(
            r#"{head}{{"type":"candidate","candidate":{{"candidate":"candidate:{t_us} {rest}",{fields}}}}}}}"#
        ));
    }
    out.push(format!(
        r#"{head}{{"type":"candidate","candidate":null}}}}"#
    ));
    out
}

#[derive(Deserialize)]
struct SignalIn {
    room: String,
    from: String,
    data: DataIn,
}

#[derive(Deserialize)]
struct DataIn {
    #[serde(rename = "type")]
    kind: String,
    sdp: Option<String>,
    candidate: Option<CandidateIn>,
}

#[derive(Deserialize)]
struct CandidateIn {
    candidate: String,
}

/// A relayed `signal` as the bench reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub room: String,
    pub from: String,
    /// An offer or answer (else a candidate).
    pub is_sdp: bool,
    /// When it was sent (µs since the run's origin), if stamped.
    pub sent_at_us: Option<u64>,
    /// The call number, when this is an offer (to be answered).
    pub offer_seq: Option<u64>,
}

/// Reads a `["signal",{…}]` event array.
pub fn received(event: &str) -> Option<Received> {
    let (_, s): (&str, SignalIn) = serde_json::from_str(event).ok()?;
    let mut r = Received {
        room: s.room,
        from: s.from,
        is_sdp: false,
        sent_at_us: None,
        offer_seq: None,
    };
    match (s.data.kind.as_str(), s.data.sdp, s.data.candidate) {
        (kind @ ("offer" | "answer"), Some(sdp), _) => {
            r.is_sdp = true;
            // `o=- T_US SEQ IN IP4 …`
            let mut o = sdp
                .split("\r\n")
                .find_map(|l| l.strip_prefix("o=- "))?
                .split(' ');
            r.sent_at_us = o.next().and_then(|t| t.parse().ok());
            let seq = o.next().and_then(|t| t.parse().ok());
            if kind == "offer" {
                r.offer_seq = seq;
            }
        }
        ("candidate", _, Some(c)) => {
            r.sent_at_us = c
                .candidate
                .strip_prefix("candidate:")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|t| t.parse().ok());
        }
        ("candidate", _, None) => {}
        _ => return None,
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_real_size_and_round_trip() {
        assert!(OFFER.len() > 4000 && ANSWER.len() > 4000);
        let c: CandidateFile = serde_json::from_str(CANDIDATES).expect("candidates parse");
        assert!(!c.offerer.is_empty() && !c.answerer.is_empty());
        let b = burst("r1", "peer-b", Role::Offerer, 42, 123_456);
        assert_eq!(b.len(), 2 + c.offerer.len());
        for p in &b {
            let v: serde_json::Value = serde_json::from_str(p).expect("payload is JSON");
            assert_eq!(v["to"], "peer-b");
        }
        // What the server relays: `from` instead of `to`.
        let relay = |p: &str| {
            let mut v: serde_json::Value = serde_json::from_str(p).expect("json");
            let o = v.as_object_mut().expect("object");
            o.remove("to");
            o.insert("from".into(), "peer-a".into());
            serde_json::json!(["signal", v]).to_string()
        };
        let offer = received(&relay(&b[0])).expect("offer");
        assert!(offer.is_sdp);
        assert_eq!(
            (offer.sent_at_us, offer.offer_seq, offer.from.as_str()),
            (Some(123_456), Some(42), "peer-a")
        );
        let v: serde_json::Value = serde_json::from_str(&b[0]).expect("json");
        let sdp = v["data"]["sdp"].as_str().expect("sdp");
        assert_eq!(
            sdp.len(),
            OFFER.len() - OFFER.lines().nth(1).map_or(0, str::len)
                + "o=- 123456 42 IN IP4 127.0.0.1".len()
        );
        let cand = received(&relay(&b[1])).expect("candidate");
        assert_eq!(
            (cand.is_sdp, cand.sent_at_us, cand.offer_seq),
            (false, Some(123_456), None)
        );
        let end = received(&relay(&b[b.len() - 1])).expect("end of candidates");
        assert_eq!(end.sent_at_us, None);
        let answer = burst("r1", "peer-a", Role::Answerer, 42, 9);
        let a = received(&relay(&answer[0])).expect("answer");
        assert_eq!((a.is_sdp, a.offer_seq, a.sent_at_us), (true, None, Some(9)));
    }
}
