//! The SFU rooms this node hosts: one webrtc-rs room task per SFU-mode
//! room (the `sfu` crate), started with the room's first member and ended
//! with its last.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use protocol::{PeerId, RoomName, SignalData};
use tokio::sync::mpsc;

use crate::metrics::SfuRoomSnapshot;

/// What an SFU room sends its peers: `(peer, signal)`.
pub type SfuOutbox = mpsc::UnboundedReceiver<(PeerId, SignalData)>;

#[derive(Debug)]
pub struct SfuRooms {
    /// `None`: this node has no SFU.
    cfg: Option<sfu::SfuConfig>,
    rooms: Mutex<HashMap<RoomName, sfu::RoomHandle>>,
}

impl SfuRooms {
    pub fn new(cfg: Option<sfu::SfuConfig>) -> Self {
        Self {
            cfg,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this node hosts SFU rooms.
    pub fn enabled(&self) -> bool {
        self.cfg.is_some()
    }

    /// Handles only: a panic cannot leave the map half-changed.
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, sfu::RoomHandle>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the SFU of `room` unless it runs already (or this node has no
    /// SFU); returns what the new room will say to its peers.
    pub fn open(&self, room: &RoomName) -> Option<SfuOutbox> {
        let cfg = self.cfg.clone()?;
        let mut rooms = self.lock();
        if rooms.contains_key(room) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        rooms.insert(room.clone(), sfu::spawn_room(cfg, tx));
        Some(rx)
    }

    /// Queues a signal from `from` for the SFU of `room`, in order.
    pub fn signal(&self, room: &RoomName, from: PeerId, data: SignalData) -> Result<(), String> {
        let handle = self.lock().get(room).cloned();
        match handle {
            Some(h) => h.try_signal(from, data).map_err(|e| e.to_string()),
            None => Err("the SFU room is gone".to_owned()),
        }
    }

    /// `peer` left `room`; with the last one the room's task ends (dropping
    /// the last handle closes every connection).
    pub fn leave(&self, room: &RoomName, peer: PeerId, last: bool) {
        let mut rooms = self.lock();
        let Some(h) = rooms.get(room) else {
            return;
        };
        if let Err(e) = h.try_leave(peer.clone()) {
            // The SFU drops the peer anyway once its connection fails.
            tracing::warn!(room = %room, peer = %peer, "SFU leave not queued: {e}");
        }
        if last {
            rooms.remove(room);
        }
    }

    /// Every room's counters, by room name.
    pub fn snapshot(&self) -> Vec<SfuRoomSnapshot> {
        let mut all: Vec<SfuRoomSnapshot> = self
            .lock()
            .iter()
            .map(|(room, h)| SfuRoomSnapshot {
                room: room.clone(),
                totals: h.metrics.totals(),
                peers: h.metrics.peer_snapshot(),
            })
            .collect();
        all.sort_by(|a, b| a.room.as_str().cmp(b.room.as_str()));
        all
    }
}
