//! What the rooms of one server share: the configuration and the pool of
//! ports their connections bind.

use std::sync::Arc;

use protocol::{PeerId, SignalData};
use tokio::sync::mpsc;

use crate::config::{SfuConfig, SfuEngine};
use crate::engine::ShardRooms;
use crate::ports::PortPool;
use crate::room::{RoomHandle, spawn_room};

/// One server's SFU: starts its rooms, which take their connections' ports
/// from one pool (so a new room does not scan the range again), or all
/// live on one shard (one UDP port).
#[derive(Clone, Debug)]
pub struct Sfu {
    cfg: SfuConfig,
    ports: Arc<PortPool>,
    shard: Option<Arc<ShardRooms>>,
}

impl Sfu {
    /// The SFU of `cfg`; with the shard engine, its socket is bound (and
    /// its thread started) here, so a port in use is an error at startup.
    pub fn new(cfg: SfuConfig) -> std::io::Result<Self> {
        let shard = match cfg.engine {
            SfuEngine::Shard => {
                let public = cfg
                    .nat_1to1_ip
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("the SFU's public IP: {e}"),
                        )
                    })?;
                let addr = std::net::SocketAddr::new(cfg.bind_ip, cfg.port_min);
                Some(Arc::new(ShardRooms::start(addr, public, cfg.ice_tcp)?))
            }
            SfuEngine::Webrtc => None,
        };
        let (min, max) = match shard {
            // No pool: the shard holds the one port.
            Some(_) => (1, 0),
            None => (cfg.port_min, cfg.port_max),
        };
        let ports = PortPool::new(cfg.bind_ip, min, max, cfg.ice_tcp);
        Ok(Self { cfg, ports, shard })
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
        match &self.shard {
            Some(shard) => shard.spawn_room(out),
            None => spawn_room(self.cfg.clone(), self.ports.clone(), out),
        }
    }
}
