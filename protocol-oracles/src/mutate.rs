//! A small deterministic mutator, for running the oracles on stable (CI):
//! structural edits of the parsed JSON and byte-level edits, driven by a
//! seeded PRNG so a failure reproduces from its seed.

use serde_json::{Value, json};

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
