//! `chat-receipt` (docs/protocol-extensions.md): a message was shown; its
//! author gets the receipt.

use protocol::{ReceiptEvent, ReceiptRequest};

use super::{Ctx, parcel};
use crate::ack::{Failure, Reply};
use crate::node::Engine;
use crate::rooms::{Parcel, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: ReceiptRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let r = node.store.receipt(cx.conn(), &req.room, &req.id).await?;
    if r.author == r.from {
        // A receipt for one's own message goes nowhere.
        return Ok(Reply::ok());
    }
    let ev = ReceiptEvent {
        room: req.room.clone(),
        id: req.id,
        from: r.from,
    };
    parcel::send(node, &req.room, &r.author, r.to, Parcel::Receipt(ev)).await?;
    Ok(Reply::ok())
}
