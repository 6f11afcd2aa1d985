//! What went wrong inside a room.

/// What went wrong inside a room; logged by the room, which keeps running.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error("{what}: {message}")]
    WebRtc { what: &'static str, message: String },
    #[error("no free UDP port in the configured range")]
    NoPort,
    #[error("no such peer in this room")]
    NoPeer,
    #[error("no such published track")]
    NoTrack,
    #[error("the SFU room is busy or gone")]
    Busy,
}

impl SfuError {
    /// For `map_err`: a webrtc-rs error with what was being done.
    pub fn webrtc<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> SfuError {
        move |e| SfuError::WebRtc {
            what,
            message: e.to_string(),
        }
    }
}
