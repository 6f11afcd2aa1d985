//! The macro that turns the list of events in `handlers/mod.rs` into
//! everything that enumerates events, so they cannot disagree.

/// `Variant => module::handle(PayloadType),` for each event, where
/// `PayloadType` implements `protocol::Event` (its wire name) and
/// `module::handle(&Ctx, PayloadType) -> Result<Reply, Failure>` is its
/// answer. A handler that must answer at a moment of its choosing is
/// listed as `module::handle(PayloadType, ack)` and is
/// `handle(&Ctx, PayloadType, Ack) -> Answered`.
///
/// Declares each handler's module and generates [`EventKind`] (metrics
/// labels, by name), [`Request`] (one parsed event) and [`dispatch`].
macro_rules! events {
    ($($variant:ident => $module:ident :: handle ($ty:ty $(, $ack:ident)?)),+ $(,)?) => {
        $(mod $module;)+

        /// An event by name; `Other` for names not in the list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventKind {
            $($variant,)+
            Other,
        }

        impl EventKind {
            /// The metrics label of every kind, in order (`other` last).
            pub const LABELS: &'static [&'static str] =
                &[$(<$ty as protocol::Event>::NAME,)+ "other"];

            pub fn from_name(name: &str) -> Self {
                $(if name == <$ty as protocol::Event>::NAME {
                    return EventKind::$variant;
                })+
                EventKind::Other
            }

            pub fn as_str(self) -> &'static str {
                Self::LABELS[self as usize]
            }

            /// Its index among [`Self::LABELS`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// "join, leave, … or peer-ping"
            pub fn expected() -> String {
                let names = &Self::LABELS[..Self::LABELS.len() - 1];
                match names.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }

        /// One event, parsed.
        pub enum Request {
            $($variant($ty),)+
        }

        impl Request {
            /// Parses the payload of an event of kind `kind`.
            pub fn parse<A: socketioxide::adapter::Adapter>(
                kind: EventKind,
                name: &str,
                s: &std::sync::Arc<socketioxide::socket::Socket<A>>,
                v: &mut socketioxide::handler::Value,
            ) -> Result<Self, Failure> {
                match kind {
                    $(EventKind::$variant => Ok(Request::$variant(self::list::payload(s, v)?)),)+
                    EventKind::Other => Err(Failure::bad_request(format!(
                        "unknown event {}; expected {}",
                        self::list::quote_short(name),
                        EventKind::expected()
                    ))),
                }
            }
        }

        /// Runs one event's handler.
        pub async fn dispatch<E: Engine>(cx: &Ctx<'_, E>, req: Request, ack: Ack<E::A>) -> Answered {
            match req {
                $(Request::$variant(r) => answer!(cx, $module, r, ack $(, $ack)?),)+
            }
        }
    };
}

/// One arm of `dispatch`: the handler answers, or its result is the answer.
macro_rules! answer {
    ($cx:ident, $module:ident, $r:ident, $ack:ident) => {
        $cx.answer($ack, $module::handle($cx, $r).await)
    };
    ($cx:ident, $module:ident, $r:ident, $ack:ident, ack) => {
        $module::handle($cx, $r, $ack).await
    };
}

use std::sync::Arc;

use protocol::Object;
use serde::de::DeserializeOwned;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;

use crate::ack::Failure;

/// An event name as an error message quotes it: at most 64 characters, so
/// an answer never echoes a long name back.
pub(super) fn quote_short(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &name[..cut])),
        None => format!("{name:?}"),
    }
}

/// Reads an event's payload as one JSON object of type `T`.
pub(super) fn payload<T: DeserializeOwned, A: Adapter>(
    s: &Arc<Socket<A>>,
    v: &mut Value,
) -> Result<T, Failure> {
    let Ok(TryData(res)) = TryData::<Object<T>>::from_message_parts(s, v, &None);
    res.map(|Object(t)| t)
        .map_err(|e| Failure::bad_request(format!("invalid payload: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_names_are_cut() {
        assert_eq!(super::quote_short("nope"), "\"nope\"");
        let long = "é".repeat(100);
        let q = super::quote_short(&long);
        assert_eq!(
            q.chars().count(),
            64 + 3,
            "64 characters, an ellipsis, two quotes"
        );
    }
}
