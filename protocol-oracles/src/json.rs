//! A generic JSON tree that keeps duplicate keys and the integer/float split
//! (`serde_json::Value` keeps neither), read with serde_json like the
//! payloads, and the field lookups the payload specs use.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::rules;

/// A JSON value as read by serde_json's `deserialize_any`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
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
pub(crate) struct Fields<'a>(pub(crate) &'a [(String, J)]);

/// What the rules make of a value, or why they refuse it.
pub(crate) type Spec<T> = Result<T, String>;

impl<'a> Fields<'a> {
    pub(crate) fn get(&self, key: &str) -> Spec<Option<&'a J>> {
        let mut it = self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
        let first = it.next();
        if it.next().is_some() {
            return Err(format!("duplicate field {key}"));
        }
        Ok(first)
    }

    pub(crate) fn required(&self, key: &str) -> Spec<&'a J> {
        self.get(key)?.ok_or_else(|| format!("missing field {key}"))
    }

    pub(crate) fn string(&self, key: &str) -> Spec<&'a str> {
        match self.required(key)? {
            J::Str(s) => Ok(s),
            other => Err(format!("{key} is not a string: {other:?}")),
        }
    }

    pub(crate) fn opt_string(&self, key: &str) -> Spec<Option<&'a str>> {
        match self.get(key)? {
            None | Some(J::Null) => Ok(None),
            Some(J::Str(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{key} is not a string or null: {other:?}")),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> Spec<bool> {
        match self.required(key)? {
            J::Bool(b) => Ok(*b),
            other => Err(format!("{key} is not a bool: {other:?}")),
        }
    }

    /// A `#[serde(default)] bool`: absent is false, `null` is an error.
    pub(crate) fn default_bool(&self, key: &str) -> Spec<bool> {
        match self.get(key)? {
            None => Ok(false),
            Some(J::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{key} is not a bool: {other:?}")),
        }
    }

    pub(crate) fn room(&self) -> Spec<&'a str> {
        let r = self.string("room")?;
        if rules::room_name(r) {
            Ok(r)
        } else {
            Err(format!("bad room {r:?}"))
        }
    }
}

/// An object, as the protocol requires of every payload and nested value.
pub(crate) fn object(j: &J) -> Spec<Fields<'_>> {
    match j {
        J::Obj(f) => Ok(Fields(f)),
        other => Err(format!("not an object: {other:?}")),
    }
}
