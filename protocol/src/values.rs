//! The values payloads are made of: peer ids, room modes, and the JSON
//! object every payload must be.

use serde::{Deserialize, Serialize};

/// A peer id: opaque to clients, assigned by the server (a UUID), unique per
/// connection to a room. `"sfu"` is the SFU in SFU rooms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(String);

impl PeerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for PeerId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Room topology: everyone connects to everyone, or everyone to the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Mesh,
    Sfu,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Mesh => "mesh",
            Mode::Sfu => "sfu",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mesh" => Ok(Mode::Mesh),
            "sfu" => Ok(Mode::Sfu),
            _ => Err(format!("unknown mode {s:?} (expected mesh or sfu)")),
        }
    }
}

/// Only the strings `"mesh"` and `"sfu"`: the derive would also read serde's
/// externally tagged form, `{"sfu": null}`.
impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"mesh\" or \"sfu\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mode, E> {
                s.parse()
                    .map_err(|_| E::unknown_variant(s, &["mesh", "sfu"]))
            }
        }
        d.deserialize_str(V)
    }
}

// ---------------------------------------------------------------------------
// Client → server

/// Reads `T` only from a JSON object: every payload is a single object, and
/// serde's derive would otherwise also accept an array of the fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(Object)
    }
}

/// `#[serde(deserialize_with)]` for a nested value that must be an object
/// too (`data` of a signal): the derives would also read it from an array.
pub(crate) fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Object::<T>::deserialize(d).map(|Object(t)| t)
}

/// [`object`] for an optional value (`null` or absent is `None`).
pub(crate) fn opt_object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|Object(t)| t))
}
