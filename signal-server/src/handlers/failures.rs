//! How the rules' refusals and delivery failures are answered: the
//! protocol's error codes, and a message a person can act on.

use protocol::ErrorCode;

use crate::ack::Failure;
use crate::delivery::Undelivered;
use crate::rooms::{ActError, JoinError, NotInRoom, ReceiptError, RouteError, StoreError};

impl From<NotInRoom> for Failure {
    fn from(_: NotInRoom) -> Self {
        Failure::new(ErrorCode::NotInRoom, "you have not joined this room")
    }
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotInRoom => NotInRoom.into(),
            RouteError::UnknownPeer => {
                Failure::new(ErrorCode::UnknownPeer, "no such peer in this room")
            }
            RouteError::ToSelf => Failure::bad_request("cannot signal yourself"),
        }
    }
}

impl From<ReceiptError> for Failure {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::NotInRoom => NotInRoom.into(),
            ReceiptError::UnknownMessage => Failure::bad_request(e.to_string()),
            ReceiptError::AuthorGone => Failure::new(ErrorCode::UnknownPeer, e.to_string()),
        }
    }
}

impl From<JoinError> for Failure {
    fn from(e: JoinError) -> Self {
        let code = match e {
            JoinError::RoomFull(_) => ErrorCode::RoomFull,
            JoinError::Unauthorized => ErrorCode::Unauthorized,
            JoinError::ModeUnavailable(_) | JoinError::TooManyRooms(_) => ErrorCode::BadRequest,
            JoinError::Locked => ErrorCode::Forbidden,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ActError> for Failure {
    fn from(e: ActError) -> Self {
        match e {
            ActError::NotInRoom => NotInRoom.into(),
            ActError::Forbidden => Failure::new(ErrorCode::Forbidden, e.to_string()),
            ActError::ToSelf => Failure::bad_request(e.to_string()),
            ActError::UnknownPeer => Failure::new(ErrorCode::UnknownPeer, e.to_string()),
        }
    }
}

impl<E> From<StoreError<E>> for Failure
where
    Failure: From<E>,
{
    fn from(e: StoreError<E>) -> Self {
        match e {
            StoreError::Rule(e) => e.into(),
            StoreError::Unavailable(e) => {
                // What Redis said stays in the log: it names scripts, keys
                // and memory, nothing a client should read.
                tracing::debug!("room state unavailable: {e}");
                Failure::new(
                    ErrorCode::Internal,
                    "room state is unavailable; try again shortly",
                )
            }
        }
    }
}

impl From<std::convert::Infallible> for Failure {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

impl From<Undelivered> for Failure {
    fn from(e: Undelivered) -> Self {
        match e {
            Undelivered::Gone => Failure::new(ErrorCode::UnknownPeer, e.to_string()),
            Undelivered::Unreachable(why) => {
                tracing::debug!("relay to another node failed: {why}");
                Failure::new(
                    ErrorCode::Internal,
                    "cannot reach the peer's server; try again shortly",
                )
            }
        }
    }
}
