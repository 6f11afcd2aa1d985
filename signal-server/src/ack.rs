//! The answer to an event: every client → server event is answered exactly
//! once (`PROTOCOL.md`). An [`Ack`] is consumed by [`Ack::send`], which
//! hands back the [`Answered`] proof every handler must return; an `Ack`
//! dropped unanswered (a bug, or a future cancelled mid-way) answers
//! `internal` itself.

use std::borrow::Cow;

use protocol::{ChatAck, ErrorAck, ErrorCode, JoinAck, OkAck};
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::AckSender;

use crate::metrics::Metrics;

/// A failed event: the error ack's code and message.
#[derive(Debug)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

/// A success ack body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Ok(OkAck),
    Join(Box<JoinAck>),
    Chat(ChatAck),
}

impl Reply {
    /// `{"ok": true}`
    pub fn ok() -> Self {
        Reply::Ok(OkAck::default())
    }
}

/// Proof that an event was answered: only [`Ack::send`] makes one.
#[derive(Debug)]
#[must_use = "a handler returns the proof that it answered"]
pub struct Answered(());

/// The answer still owed for one event.
pub struct Ack<A: Adapter> {
    sender: Option<AckSender<A>>,
    /// The event's name, for logs.
    event: &'static str,
}

impl<A: Adapter> Ack<A> {
    pub fn new(sender: AckSender<A>, event: &'static str) -> Self {
        Self {
            sender: Some(sender),
            event,
        }
    }

    /// Answers the event (if the client asked for an ack), counting errors
    /// and answers that could not be queued.
    pub fn send(mut self, metrics: &Metrics, result: Result<Reply, Failure>) -> Answered {
        let Some(sender) = self.sender.take() else {
            return Answered(());
        };
        let sent = match result {
            Ok(reply) => sender.send(&reply),
            Err(f) => {
                metrics.error(f.code);
                tracing::debug!(event = self.event, code = %f.code, "{}", f.message);
                sender.send(&ErrorAck::new(f.code, f.message))
            }
        };
        if sent.is_err() {
            metrics.dropped(1);
        }
        Answered(())
    }
}

impl<A: Adapter> Drop for Ack<A> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            tracing::error!(event = self.event, "event dropped before it was answered");
            let _ = sender.send(&ErrorAck::new(
                ErrorCode::Internal,
                "the server could not finish this event",
            ));
        }
    }
}
