//! `media-state` (docs/protocol-extensions.md): what the sender sends
//! (microphone, camera, screen) and whether it records the call, told to
//! the room and listed to later joiners.

use protocol::{MediaState, MediaStateEvent, MediaStateRequest};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::RoomStore;

pub(super) async fn handle<E: Engine>(
    cx: &Ctx<'_, E>,
    req: MediaStateRequest,
) -> Result<Reply, Failure> {
    let node = cx.node;
    let media = MediaState {
        audio: req.audio,
        video: req.video,
        screen: req.screen,
        recording: req.recording,
    };
    let (from, members) = node.store.set_media(cx.conn(), &req.room, media).await?;
    let ev = MediaStateEvent {
        room: req.room.clone(),
        from,
        audio: media.audio,
        video: media.video,
        screen: media.screen,
        recording: media.recording,
    };
    node.out
        .to_room(cx.socket, &req.room, ev, members.saturating_sub(1))
        .await;
    Ok(Reply::ok())
}
