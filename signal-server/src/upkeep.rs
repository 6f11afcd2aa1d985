//! A scaled-out node's background duty, every [`UPKEEP_EVERY`]: refresh its
//! heartbeat (putting its members back if Redis lost them), sweep the
//! members of nodes whose heartbeat lapsed ([`HEARTBEAT_TTL`]) and tell
//! their rooms `peer-left`, and retry the leaves that could not be stored
//! while Redis was down. A crashed node's peers are gone from every room
//! within `HEARTBEAT_TTL + UPKEEP_EVERY` (12 s); one stopped with SIGTERM
//! [retires](retire) first, so its peers leave at once.
//!
//! [`HEARTBEAT_TTL`]: crate::rooms::HEARTBEAT_TTL

use std::sync::Arc;
use std::time::Duration;

use protocol::PeerLeft;

use crate::delivery::Delivery;
use crate::handlers::leave_all;
use crate::node::{Engine, Node};
use crate::rooms::RoomStore;

/// How often a node refreshes its heartbeat and sweeps dead nodes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(2);

/// Runs until aborted.
pub async fn run<E: Engine>(node: Arc<Node<E>>) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match node.store.heartbeat().await {
            Ok(true) => {}
            Ok(false) => {
                let restored = node.store.restore().await;
                if restored > 0 {
                    tracing::warn!(
                        restored,
                        "redis had lost this node's members; restored them"
                    );
                }
            }
            Err(e) => {
                tracing::debug!("heartbeat failed: {e}");
                continue;
            }
        }
        sweep(&node).await;
        for conn in node.take_deferred() {
            if !leave_all(&node, conn, None).await {
                node.defer_leave(conn);
            }
        }
    }
}

/// Removes the members of nodes whose heartbeat lapsed, and tells their rooms.
async fn sweep<E: Engine>(node: &Node<E>) {
    match node.store.sweep().await {
        Ok(gone) => {
            for (room, left) in gone {
                tracing::info!(room = %room, peer = %left.id, "removed: its node stopped");
                let ev = PeerLeft {
                    room: room.clone(),
                    id: left.id,
                };
                node.out.announce(&room, ev, left.remaining).await;
            }
        }
        Err(e) => tracing::debug!("sweep failed: {e}"),
    }
}

/// Graceful stop: ends this node's heartbeat and removes its members now,
/// so the other nodes' peers see them leave at once rather than after the
/// TTL.
pub async fn retire<E: Engine>(node: &Node<E>) {
    match node.store.retire().await {
        Ok(()) => sweep(node).await,
        Err(e) => tracing::warn!("could not retire this node from Redis: {e}"),
    }
}
