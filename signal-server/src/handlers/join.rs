//! `join`: take a seat in a room (creating it), get one's seat back, or
//! take back a held seat with its resume token (PROTOCOL.md version 2).

use protocol::{JoinAck, JoinRequest, PeerId, PeerJoined, PeerResumed, RoomInfo};

use super::{Ctx, parcel};
use crate::ack::{Ack, Answered, Reply};
use crate::delivery::Delivery;
use crate::metrics::Resume;
use crate::node::Engine;
use crate::rooms::{How, JoinSpec, RoomStore};

pub(super) async fn handle<E: Engine>(
    cx: &Ctx<'_, E>,
    req: JoinRequest,
    ack: Ack<E::A>,
) -> Answered {
    let node = cx.node;
    let room = req.room;
    let asked_resume = req.resume.is_some();
    let spec = JoinSpec {
        room: room.clone(),
        name: req.name,
        mode: req.mode.unwrap_or(node.state.config.default_mode),
        password: req.password,
        resume: req.resume,
        token: new_token(),
    };
    let id = PeerId::from(uuid::Uuid::new_v4().to_string());
    let mut ack = Some(ack);
    let admitted = node.store.join(cx.conn(), spec, id, |joined| {
        // In the room's critical section: the joiner is subscribed and
        // answered before any other event of the room can reach it, and
        // a resumed seat's kept events come right after its ack.
        let resumed = matches!(joined.how, How::Resumed { .. });
        let metrics = &node.state.metrics;
        if asked_resume {
            let outcome = if resumed { Resume::Resumed } else { Resume::Refused };
            metrics.resume(outcome, 1);
        }
        let me = joined.me.id.clone();
        let others = joined.peers.len();
        let others_at = joined.others_at;
        let (announce_joined, announce_resumed, kept) = match joined.how {
            How::Fresh => {
                node.out.subscribe(cx.socket, &room);
                let ev = PeerJoined {
                    room: room.clone(),
                    id: me.clone(),
                    name: joined.me.name.clone(),
                };
                tracing::debug!(room = %room, peer = %me, "joined");
                let announce = node.out.to_room_and(cx.socket, &room, others_at, ev, others);
                (Some(announce), None, Vec::new())
            }
            How::Again => (None, None, Vec::new()),
            How::Resumed { kept, replaced } => {
                node.out.subscribe(cx.socket, &room);
                if let Some(old) = replaced {
                    node.out.unsubscribe_addr(&old, &room);
                }
                let ev = PeerResumed {
                    room: room.clone(),
                    id: me.clone(),
                };
                tracing::debug!(room = %room, peer = %me, kept = kept.len(), "resumed");
                let announce = node.out.to_room_and(cx.socket, &room, others_at, ev, others);
                (None, Some(announce), kept)
            }
        };
        let reply = Reply::Join(Box::new(JoinAck {
            ok: protocol::True,
            self_: joined.me,
            room: RoomInfo {
                id: room.clone(),
                mode: joined.mode,
                locked: joined.locked,
                sfu_epoch: joined.sfu_epoch,
            },
            peers: joined.peers,
            history: joined.history,
            resume: Some(joined.token),
            resumed: asked_resume.then_some(resumed),
        }));
        let ack = ack.take().expect("admit runs once, and the ack is only taken here or on failure");
        let answered = cx.answer(ack, Ok(reply));
        for p in kept {
            parcel::emit(metrics, cx.socket, p);
        }
        (answered, announce_joined, announce_resumed)
    });
    match admitted.await {
        Ok((answered, joined, resumed)) => {
            if let Some(announce) = joined {
                announce.await;
            }
            if let Some(announce) = resumed {
                announce.await;
            }
            answered
        }
        Err(e) => {
            let ack = ack.take().expect("a failed join never ran admit");
            cx.answer(ack, Err(e.into()))
        }
    }
}

/// A resume token: a random (version 4) UUID, 122 random bits, as 32 hex
/// digits.
fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
