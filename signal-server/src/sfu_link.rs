//! Scaled out, the path from a member's node to the node that hosts its
//! SFU room (docs/sfu-scale-out.md): Redis pub/sub, through the same
//! reconnecting driver as the socket.io adapter. Each node listens on its
//! own channel (`{prefix}-sfu#{node}`: signals, views and `bye` for the
//! rooms it owns) and on one all nodes share (`{prefix}-sfu#*`: members
//! that left: the owner ends their connection, the member's node gives
//! back its count). What the SFU says back goes
//! to the peer through the cluster's delivery (`relay_from_sfu`), like any
//! event for a peer on another node.
//!
//! Redis keeps the order of what one node publishes, so a member's offer
//! reaches the owner before its candidates.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use protocol::{PeerId, RoomName, SignalData};
use serde::{Deserialize, Serialize};
use socketioxide_redis::drivers::Driver;

use crate::redis_driver::{DriverError, ReconnectingDriver};

/// What a node sends the owner of an SFU room (or, for a leave, every node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum SfuIn {
    /// `peer`'s offer, answer or candidate for the room's SFU, checked by
    /// its node (which also counted an offer for its address).
    Signal {
        room: RoomName,
        peer: PeerId,
        data: SignalData,
    },
    /// `sfu-view`.
    View {
        room: RoomName,
        viewer: PeerId,
        publisher: PeerId,
        height: u16,
    },
    /// `peer` said `bye` to the SFU: its connection ends.
    Bye { room: RoomName, peer: PeerId },
    /// `peer` is out of the room (`last`: the room is empty now). Sent to
    /// every node: the sender does not look up the owner of a room it may
    /// not know to be an SFU room.
    Leave {
        room: RoomName,
        peer: PeerId,
        last: bool,
        from: String,
    },
    /// The room moved away from this node (its liveness had lapsed): its
    /// SFU room here ends.
    Close { room: RoomName },
}

/// How many messages a node's inbox holds; the driver drops what does not
/// fit (the handler only queues each to a room: it is never slow).
const INBOX: usize = 4096;

#[derive(Clone)]
pub struct SfuLink {
    driver: ReconnectingDriver,
    prefix: Arc<str>,
    node: Arc<str>,
}

impl std::fmt::Debug for SfuLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuLink").field("node", &self.node).finish()
    }
}

impl SfuLink {
    pub fn new(driver: ReconnectingDriver, prefix: &str, node: Arc<str>) -> Self {
        Self {
            driver,
            prefix: prefix.into(),
            node,
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn chan(&self, node: &str) -> String {
        format!("{}-sfu#{node}", self.prefix)
    }

    /// Sends `msg` to node `to`.
    pub async fn send(&self, to: &str, msg: &SfuIn) -> Result<(), DriverError> {
        let body = serde_json::to_vec(msg).unwrap_or_default();
        self.driver.publish(self.chan(to), body).await
    }

    /// Sends `msg` to every node but this one.
    pub async fn broadcast(&self, msg: &SfuIn) -> Result<(), DriverError> {
        self.send("*", msg).await
    }

    /// What other nodes send this one, until the driver is dropped
    /// (messages that are not JSON of [`SfuIn`] are logged and skipped).
    pub async fn inbox(&self) -> Result<impl Stream<Item = SfuIn> + Send + use<>, DriverError> {
        let mine = self.driver.subscribe(self.chan(&self.node), INBOX).await?;
        let all = self.driver.subscribe(self.chan("*"), INBOX).await?;
        let me = self.node.clone();
        Ok(
            futures_util::stream::select(mine, all).filter_map(move |(_, body)| {
                let msg = serde_json::from_slice::<SfuIn>(&body);
                let msg = match msg {
                    Ok(SfuIn::Leave { from, .. }) if *from == *me => None,
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!("unreadable SFU message from another node: {e}");
                        None
                    }
                };
                std::future::ready(msg)
            }),
        )
    }
}
