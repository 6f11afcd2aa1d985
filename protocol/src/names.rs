//! Validated newtypes for the strings of the protocol.

use serde::{Deserialize, Serialize};

/// Why a payload was refused. The server answers it as `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("room must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    RoomName,
    #[error("name must be 1-32 characters after trimming")]
    DisplayName,
    #[error("text must be 1-2000 characters")]
    ChatText,
    #[error("password must be at most 128 characters")]
    Password,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} must be at most {max} bytes")]
    TooLong { field: &'static str, max: usize },
}

/// A resume token (PROTOCOL.md version 2, "Resume"): opaque, 1–256 bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ResumeToken(String);

impl ResumeToken {
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: String) -> Result<Self, ValidationError> {
        match s.len() {
            0 => Err(ValidationError::Empty("resume")),
            n if n <= Self::MAX_LEN => Ok(Self(s)),
            _ => Err(ValidationError::TooLong {
                field: "resume",
                max: Self::MAX_LEN,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Tokens are credentials: never in logs.
impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(…)")
    }
}

impl<'de> Deserialize<'de> for ResumeToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A room name: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::RoomName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A display name: 1–32 characters (Unicode scalar values) after trimming.
/// It is plain text and never interpreted as markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let t = s.trim();
        let n = t.chars().count();
        if (1..=Self::MAX_CHARS).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(ValidationError::DisplayName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Chat text: 1–2000 characters (Unicode scalar values), kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ChatText(String);

impl ChatText {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(s: String) -> Result<Self, ValidationError> {
        // Byte length bounds the char count from above: skip counting when it cannot exceed.
        let n = if s.len() <= Self::MAX_CHARS {
            s.len().min(s.chars().count())
        } else {
            s.chars().count()
        };
        if (1..=Self::MAX_CHARS).contains(&n) {
            Ok(Self(s))
        } else {
            Err(ValidationError::ChatText)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ChatText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A room password. Never logged: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MAX_CHARS: usize = 128;

    /// An empty password means "no password" (what an empty form field sends).
    pub fn parse(s: String) -> Result<Option<Self>, ValidationError> {
        match s.chars().count() {
            0 => Ok(None),
            n if n <= Self::MAX_CHARS => Ok(Some(Self(s))),
            _ => Err(ValidationError::Password),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(RoomName::parse("a").is_ok());
        assert!(RoomName::parse("Room_1-x").is_ok());
        assert!(RoomName::parse(&"a".repeat(64)).is_ok());
        assert_eq!(RoomName::parse(""), Err(ValidationError::RoomName));
        assert_eq!(
            RoomName::parse(&"a".repeat(65)),
            Err(ValidationError::RoomName)
        );
        for bad in ["a b", "a/b", "é", "a.b", "<script>", "a\n"] {
            assert_eq!(
                RoomName::parse(bad),
                Err(ValidationError::RoomName),
                "{bad}"
            );
        }
    }

    #[test]
    fn display_names_trim_and_count_chars() {
        assert_eq!(
            DisplayName::parse("  Ana  ").expect("valid").as_str(),
            "Ana"
        );
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(33)).is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        // Markup is just text: allowed, and kept as is.
        assert_eq!(
            DisplayName::parse("<b>x</b>").expect("valid").as_str(),
            "<b>x</b>"
        );
    }

    #[test]
    fn chat_text_bounds() {
        assert!(ChatText::parse("x".into()).is_ok());
        assert!(ChatText::parse(" ".into()).is_ok());
        assert!(ChatText::parse("x".repeat(2000)).is_ok());
        assert!(ChatText::parse("é".repeat(2000)).is_ok());
        assert!(ChatText::parse("x".repeat(2001)).is_err());
        assert!(ChatText::parse(String::new()).is_err());
    }

    #[test]
    fn password_empty_is_none_and_debug_hides_it() {
        assert_eq!(Password::parse(String::new()), Ok(None));
        let p = Password::parse("hunter2".into())
            .expect("valid")
            .expect("not empty");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn resume_tokens() {
        assert!(ResumeToken::parse(String::new()).is_err());
        assert!(ResumeToken::parse("x".repeat(257)).is_err());
        let t = ResumeToken::parse("abc".into()).expect("valid");
        assert_eq!(t.as_str(), "abc");
        assert!(!format!("{t:?}").contains("abc"));
    }
}
