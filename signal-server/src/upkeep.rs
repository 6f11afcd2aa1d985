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

use protocol::PeerReconnecting;

use crate::delivery::Delivery;
use crate::handlers::{leave_all, left_behind, left_for_good, sfu_moved};
use crate::metrics::Resume;
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

/// Takes out the members of nodes whose heartbeat lapsed (held for a
/// resume, or removed), and tells their rooms.
async fn sweep<E: Engine>(node: &Node<E>) {
    match node.store.sweep().await {
        Ok(swept) => {
            for seat in swept.held {
                tracing::info!(room = %seat.room, peer = %seat.id, "held: its node stopped");
                let ev = PeerReconnecting {
                    room: seat.room.clone(),
                    id: seat.id,
                };
                // The count is for the metrics only: a room has one member
                // fewer than it counts.
                node.out.announce(&seat.room, ev, 1).await;
            }
            for (room, left) in swept.gone {
                tracing::info!(room = %room, peer = %left.id, "removed: its node stopped");
                left_for_good(node, &room, left).await;
            }
        }
        Err(e) => tracing::debug!("sweep failed: {e}"),
    }
}

/// How often held seats are checked for the end of their grace period.
const EXPIRE_EVERY: Duration = Duration::from_millis(250);

/// Ends held seats whose grace period is over (`peer-left`, as on a
/// disconnect), until aborted. Scaled out, every node runs it and each
/// seat is claimed by exactly one.
pub async fn expire_holds<E: Engine>(node: Arc<Node<E>>) {
    if node.state.config.resume_grace.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match node.store.expire().await {
            Ok(gone) => {
                node.state
                    .metrics
                    .resume(Resume::Expired, gone.len() as u64);
                for (room, left) in gone {
                    tracing::debug!(room = %room, peer = %left.id, "held seat expired");
                    left_for_good(&node, &room, left).await;
                }
            }
            Err(e) => tracing::debug!("expiring held seats failed: {e}"),
        }
    }
}

/// Graceful stop: ends this node's heartbeat and removes its members now,
/// so the other nodes' peers see them leave at once rather than after the
/// TTL; its SFU rooms move to another SFU node now.
pub async fn retire<E: Engine>(node: &Node<E>) {
    if node.sfu.here() {
        match node.store.sfu_retire().await {
            Ok(()) => sfu_sweep(node, true).await,
            Err(e) => tracing::warn!("could not retire this node's SFU from Redis: {e}"),
        }
        // Whatever it hosts now is elsewhere or nowhere: nothing more
        // from here reaches the members.
        for room in node.sfu.hosted() {
            node.sfu.end(&room);
        }
    }
    match node.store.retire().await {
        Ok(()) => sweep(node).await,
        Err(e) => tracing::warn!("could not retire this node from Redis: {e}"),
    }
}

/// How often a scaled-out node says its SFU lives and moves the rooms of
/// SFU nodes that do not ([`SFU_ALIVE_TTL`]): a dead owner's rooms move
/// within `SFU_ALIVE_TTL + SFU_EVERY` (4 s).
///
/// [`SFU_ALIVE_TTL`]: crate::rooms::SFU_ALIVE_TTL
pub const SFU_EVERY: Duration = Duration::from_secs(1);

/// Scaled out, every [`SFU_EVERY`], until aborted: a node with the SFU
/// announces it (alive, its load) and ends the SFU rooms that moved away
/// from it; every node moves the rooms of SFU nodes that are gone and
/// learns whether SFU rooms can be made (for `/api/config`).
pub async fn sfu<E: Engine>(node: Arc<Node<E>>) {
    let mut tick = tokio::time::interval(SFU_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        announce_sfu(&node).await;
        sfu_sweep(&node, false).await;
    }
}

/// On a node with the SFU: says it lives, with its load, and squares the
/// rooms it owns with those it hosts (ending those that moved away, and
/// idle ones Redis does not know). Also run once before the node serves,
/// so that a node that says it listens can be given SFU rooms.
pub async fn announce_sfu<E: Engine>(node: &Node<E>) {
    if !node.sfu.here() {
        return;
    }
    // Read before Redis is asked: a room hosted now was given to this node
    // before, so Redis names another owner only if it moved since.
    let hosted = node.sfu.hosted();
    match node
        .store
        .sfu_announce(node.sfu.peers(), node.sfu.tallies(), &hosted)
        .await
    {
        Ok(squared) => {
            for mv in squared.gone {
                left_behind(node, mv).await;
            }
            for room in squared.orphans.iter().filter(|r| node.sfu.idle(r)) {
                tracing::info!(room = %room, "SFU room unknown to Redis and idle: ended");
                node.sfu.end(room);
            }
        }
        Err(e) => tracing::debug!("SFU announce failed: {e}"),
    }
}

/// Moves the rooms of SFU nodes that are gone, telling their members.
async fn sfu_sweep<E: Engine>(node: &Node<E>, retiring: bool) {
    match node.store.sfu_sweep(retiring).await {
        Ok(nodes) => {
            node.sfu.set_deployment(nodes.live, nodes.simulcast);
            for mv in nodes.moved {
                sfu_moved(node, mv).await;
            }
        }
        Err(e) => tracing::debug!("SFU sweep failed: {e}"),
    }
}
