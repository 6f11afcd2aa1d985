//! `join`: take a seat in a room (creating it), or get one's seat back.

use protocol::{JoinAck, JoinRequest, PeerId, PeerJoined, RoomInfo};

use super::Ctx;
use crate::ack::{Ack, Answered, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{JoinSpec, RoomStore};

pub(super) async fn handle<E: Engine>(
    cx: &Ctx<'_, E>,
    req: JoinRequest,
    ack: Ack<E::A>,
) -> Answered {
    let node = cx.node;
    let room = req.room;
    // No seat is held on a lost connection yet (docs/resume-design.md):
    // every token is unknown, and PROTOCOL.md answers that with an
    // ordinary join whose ack says so.
    let resumed = req.resume.as_ref().map(|_| false);
    let spec = JoinSpec {
        room: room.clone(),
        name: req.name,
        mode: req.mode.unwrap_or(node.state.config.default_mode),
        password: req.password,
    };
    let id = PeerId::from(uuid::Uuid::new_v4().to_string());
    let mut ack = Some(ack);
    let admitted = node.store.join(cx.conn(), spec, id, |joined| {
        // In the room's critical section: the joiner is subscribed and
        // answered before any other event of the room can reach it.
        let announce = joined.fresh.then(|| {
            node.out.subscribe(cx.socket, &room);
            let ev = PeerJoined {
                room: room.clone(),
                id: joined.me.id.clone(),
                name: joined.me.name.clone(),
            };
            tracing::debug!(room = %room, peer = %joined.me.id, "joined");
            node.out.to_room(cx.socket, &room, ev, joined.peers.len())
        });
        let reply = Reply::Join(Box::new(JoinAck {
            ok: protocol::True,
            self_: joined.me,
            room: RoomInfo {
                id: room.clone(),
                mode: joined.mode,
            },
            peers: joined.peers,
            history: joined.history,
            resume: None,
            resumed,
        }));
        let ack = ack.take().expect("admit runs once, and the ack is only taken here or on failure");
        (cx.answer(ack, Ok(reply)), announce)
    });
    match admitted.await {
        Ok((answered, announce)) => {
            if let Some(announce) = announce {
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
