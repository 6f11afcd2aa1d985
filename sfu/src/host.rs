//! What the rooms of one server share: the configuration and the pool of
//! ports their connections bind.

use std::sync::Arc;

use protocol::{PeerId, SignalData};
use tokio::sync::mpsc;

use crate::config::SfuConfig;
use crate::ports::PortPool;
use crate::room::{RoomHandle, spawn_room};

/// One server's SFU: starts its rooms, which take their connections' ports
/// from one pool (so a new room does not scan the range again).
#[derive(Clone, Debug)]
pub struct Sfu {
    cfg: SfuConfig,
    ports: Arc<PortPool>,
}

impl Sfu {
    pub fn new(cfg: SfuConfig) -> Self {
        let ports = PortPool::new(cfg.bind_ip, cfg.port_min, cfg.port_max, cfg.ice_tcp);
        Self { cfg, ports }
    }

    pub fn config(&self) -> &SfuConfig {
        &self.cfg
    }

    /// The ports of every room's connections.
    pub fn ports(&self) -> &Arc<PortPool> {
        &self.ports
    }

    /// Starts a room's task. What the room sends a peer (answers, offers,
    /// its candidates) comes out of `out`, addressed to that peer.
    pub fn spawn_room(&self, out: mpsc::UnboundedSender<(PeerId, SignalData)>) -> RoomHandle {
        spawn_room(self.cfg.clone(), self.ports.clone(), out)
    }
}
