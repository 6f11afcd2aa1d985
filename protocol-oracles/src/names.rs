//! Target `names`: one string through every name parser and `Mode`.

use protocol::{ChatText, DisplayName, Mode, Password, RoomName, ValidationError};

use crate::rules;

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
