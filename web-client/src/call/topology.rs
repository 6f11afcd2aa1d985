//! Which connections carry the room's media: one per peer (mesh), or one
//! to the server's SFU, which forwards everyone's tracks on it. The wire
//! still names the SFU with the peer id `"sfu"` ([`protocol::SFU_PEER`]);
//! inside the client it is [`Link::Sfu`], never a peer.

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use protocol::{Mode, PeerId, PeerInfo, SignalData, SignalEvent, SignalRequest, events};
use serde::{Deserialize, Serialize};
use web_sys::MediaStream;

use super::{Call, log};
use crate::rtc::{Carries, PeerConn, PeerEvent, Sink};
use crate::state::{ConnState, Phase, StatusKind, Via};

/// How media flows in the room; the join ack says which.
pub(super) enum Topology {
    /// One connection per remote peer, each with a data channel for chat
    /// and pings.
    Mesh {
        conns: HashMap<String, Rc<PeerConn>>,
        /// Peers listed by the join ack, to call once our media is ready.
        waiting: Vec<PeerInfo>,
    },
    /// One connection, to the server, carries everyone's media; no data
    /// channel. Made once our media is ready.
    Sfu {
        conn: Option<Rc<PeerConn>>,
        /// That connection's state: every peer's tile shows it.
        state: ConnState,
        /// Data-only connections to other browsers, made on demand (a file
        /// to send, or the other side's offer): files stay peer to peer.
        links: HashMap<String, Rc<PeerConn>>,
        /// Scaled out: the placement of the room's SFU our connection is
        /// (or will be) to (the join ack's `sfuEpoch`, then `sfu-moved`).
        epoch: Option<u64>,
    },
}

impl Default for Topology {
    /// Before the join ack: no connection yet.
    fn default() -> Self {
        Topology::Mesh {
            conns: HashMap::new(),
            waiting: Vec::new(),
        }
    }
}

impl Topology {
    fn conns(&self) -> Vec<(Link, Rc<PeerConn>)> {
        match self {
            Topology::Mesh { conns, .. } => conns
                .iter()
                .map(|(id, pc)| (Link::Peer(id.clone()), pc.clone()))
                .collect(),
            Topology::Sfu { conn, links, .. } => conn
                .iter()
                .map(|pc| (Link::Sfu, pc.clone()))
                .chain(
                    links
                        .iter()
                        .map(|(id, pc)| (Link::Data(id.clone()), pc.clone())),
                )
                .collect(),
        }
    }

    /// Closes every connection; the kind of room stays.
    fn close(&mut self) {
        for (_, pc) in self.conns() {
            pc.close();
        }
        match self {
            Topology::Mesh { conns, waiting } => {
                conns.clear();
                waiting.clear();
            }
            Topology::Sfu {
                conn, state, links, ..
            } => {
                *conn = None;
                *state = ConnState::New;
                links.clear();
            }
        }
    }
}

/// The far end of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Link {
    /// A peer of a mesh room, by id.
    Peer(String),
    /// The server's SFU, standing for everyone in an SFU room.
    Sfu,
    /// A data-only connection to a peer of an SFU room.
    Data(String),
}

impl Link {
    /// The id signals to this end are addressed with.
    fn wire_id(&self) -> &str {
        match self {
            Link::Peer(id) | Link::Data(id) => id,
            Link::Sfu => protocol::SFU_PEER,
        }
    }
}

/// Messages on a mesh connection's data channel, externally tagged
/// (`{"chat": {...}}`): the smallest serde code (an internally tagged enum
/// cost 11 KB of WASM).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Wire {
    Chat {
        id: String,
        text: String,
        ts: f64,
        name: String,
    },
    Ack {
        id: String,
    },
    Ping {
        seq: u32,
    },
    Pong {
        seq: u32,
    },
}

impl Call {
    /// After the join ack: the room's topology, and its connections as soon
    /// as our media is ready (we are the newcomer: we offer).
    pub(super) fn set_topology(
        self: &Rc<Self>,
        mode: Mode,
        peers: Vec<PeerInfo>,
        sfu_epoch: Option<u64>,
    ) {
        let old = std::mem::replace(
            &mut *self.topology.borrow_mut(),
            match mode {
                Mode::Sfu => Topology::Sfu {
                    conn: None,
                    state: ConnState::New,
                    links: HashMap::new(),
                    epoch: sfu_epoch,
                },
                Mode::Mesh => Topology::Mesh {
                    conns: HashMap::new(),
                    waiting: peers,
                },
            },
        );
        // Left over from before a reconnect (normally already closed).
        for (_, pc) in old.conns() {
            pc.close();
        }
        if self.media_ready() {
            self.connect_waiting();
        }
    }

    /// Connects what waited for our media: the peers of the join ack, or
    /// the SFU.
    pub(super) fn connect_waiting(self: &Rc<Self>) {
        let (peers, sfu) = match &mut *self.topology.borrow_mut() {
            Topology::Mesh { waiting, .. } => (std::mem::take(waiting), false),
            Topology::Sfu { conn, .. } => (Vec::new(), conn.is_none()),
        };
        for p in &peers {
            self.connect_peer(&p.id, true);
        }
        // Not while disconnected: the rejoin connects it.
        if sfu && self.ui.phase.get_untracked() == Phase::Joined {
            self.connect_sfu(true);
        }
    }

    /// Scaled out, the room's SFU is at placement `epoch` (a resumed join's
    /// ack, or `sfu-moved`). If our connection is to an older one, its
    /// server is gone: it closes (what it still had to say, waiting for
    /// the seat, is dropped), every tile waits, and we offer afresh to
    /// `"sfu"`, which reaches the current one. Data-only links are
    /// untouched.
    ///
    /// `resumed`: our seat came back after a drop; a connection whose first
    /// offer never got its answer (the offer was lost with the server that
    /// took it, as when a stopping server handed the room over and then
    /// closed our socket) starts afresh too, whatever the epoch.
    pub(super) fn sfu_placed(self: &Rc<Self>, epoch: Option<u64>, resumed: bool) {
        let Some(epoch) = epoch else {
            return;
        };
        let old = match &mut *self.topology.borrow_mut() {
            Topology::Sfu {
                conn,
                state,
                epoch: ours,
                ..
            } if ours.is_none_or(|e| e < epoch)
                || (resumed && conn.as_ref().is_some_and(|pc| !pc.answered())) =>
            {
                *ours = Some(epoch.max(ours.unwrap_or(0)));
                *state = ConnState::New;
                conn.take()
            }
            _ => return,
        };
        log(&format!(
            "the room's SFU moved (placement {epoch}): connecting to it afresh"
        ));
        let Some(old) = old else {
            // Not connected yet: the first connection goes to the new one.
            return;
        };
        old.close();
        self.ui
            .notice("The call moved to another media server: reconnecting video…");
        self.sig.drop_waiting_to(protocol::SFU_PEER);
        // If our last offer already reached the new SFU (it crossed this
        // news), the connection it made there ends before the next offer,
        // which starts afresh rather than renegotiating it; what the SFU
        // says before that is for the connection before.
        self.bye_to(protocol::SFU_PEER.to_owned());
        self.ui.peers.update(|ps| {
            for p in ps {
                p.connection = ConnState::New;
                p.stream_rev += 1;
            }
        });
        if self.media_ready() && self.ui.phase.get_untracked() == Phase::Joined {
            self.connect_sfu(true);
        }
    }

    pub(super) fn is_sfu(&self) -> bool {
        matches!(*self.topology.borrow(), Topology::Sfu { .. })
    }

    /// The state every tile shares, when one connection serves everyone.
    pub(super) fn shared_state(&self) -> Option<ConnState> {
        match &*self.topology.borrow() {
            Topology::Mesh { .. } => None,
            Topology::Sfu { state, .. } => Some(*state),
        }
    }

    /// Every connection that carries media, with its far end.
    pub(super) fn connections(&self) -> Vec<(Link, Rc<PeerConn>)> {
        let mut all = self.topology.borrow().conns();
        all.retain(|(link, _)| !matches!(link, Link::Data(_)));
        all
    }

    pub(super) fn close_connections(&self) {
        self.topology.borrow_mut().close();
    }

    /// A peer joined. In a mesh it offers; we ready the connection now.
    /// Through the SFU, the server adds its tracks to our connection itself.
    pub(super) fn welcome(self: &Rc<Self>, peer: &PeerId) {
        if !self.is_sfu() {
            self.connect_peer(peer, false);
        }
    }

    /// A peer left: close its connection, if it has its own.
    pub(super) fn drop_connection(&self, id: &str) {
        let gone = match &mut *self.topology.borrow_mut() {
            Topology::Mesh { conns, waiting } => {
                waiting.retain(|p| p.id.as_str() != id);
                conns.remove(id)
            }
            Topology::Sfu { links, .. } => links.remove(id),
        };
        if let Some(pc) = gone {
            pc.close();
        }
        self.end_files_with(id);
    }

    /// Creates the connection to `peer` in a mesh room (initiator: we offer).
    fn connect_peer(self: &Rc<Self>, peer: &PeerId, initiator: bool) -> Option<Rc<PeerConn>> {
        let id = peer.to_string();
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => {
                if let Some(existing) = conns.get(&id) {
                    return Some(existing.clone());
                }
            }
            Topology::Sfu { .. } => return None,
        }
        let pc = self.new_connection(Link::Peer(id.clone()), initiator)?;
        if let Topology::Mesh { conns, .. } = &mut *self.topology.borrow_mut() {
            conns.insert(id, pc.clone());
        }
        Some(pc)
    }

    /// The connection that carries data channels to `peer`: its own in a
    /// mesh; in an SFU room a data-only one, made now if there is none
    /// (`initiator`: we offer).
    pub(super) fn data_link(self: &Rc<Self>, peer: &str, initiator: bool) -> Option<Rc<PeerConn>> {
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => return conns.get(peer).cloned(),
            Topology::Sfu { links, .. } => {
                if let Some(pc) = links.get(peer) {
                    return Some(pc.clone());
                }
            }
        }
        let pc = self.new_connection(Link::Data(peer.to_owned()), initiator)?;
        if let Topology::Sfu { links, .. } = &mut *self.topology.borrow_mut() {
            links.insert(peer.to_owned(), pc.clone());
        }
        Some(pc)
    }

    /// Creates the one connection of an SFU room.
    fn connect_sfu(self: &Rc<Self>, initiator: bool) -> Option<Rc<PeerConn>> {
        if let Topology::Sfu { conn: Some(pc), .. } = &*self.topology.borrow() {
            return Some(pc.clone());
        }
        let pc = self.new_connection(Link::Sfu, initiator)?;
        if let Topology::Sfu { conn, .. } = &mut *self.topology.borrow_mut() {
            *conn = Some(pc.clone());
        }
        Some(pc)
    }

    fn new_connection(self: &Rc<Self>, link: Link, initiator: bool) -> Option<Rc<PeerConn>> {
        let me = self.self_id()?;
        let weak = Rc::downgrade(self);
        let sink: Sink = {
            let link = link.clone();
            Rc::new(move |ev: PeerEvent| {
                if let Some(call) = weak.upgrade() {
                    call.on_peer_event(&link, ev);
                }
            })
        };
        // The data channel is peer to peer: none on the connection to the SFU.
        let carries = match link {
            Link::Peer(_) => Carries::MediaAndData,
            // Simulcast: to an SFU that takes it.
            Link::Sfu => Carries::Media {
                simulcast: self.life.simulcast(),
            },
            Link::Data(_) => Carries::Data,
        };
        PeerConn::new(
            link.wire_id(),
            &me,
            &self.life.ice(),
            self.outgoing(),
            initiator,
            carries,
            sink,
        )
        .map_err(|e| {
            self.ui.set_status(
                StatusKind::Error,
                format!("Cannot create a connection: {e}"),
            )
        })
        .ok()
    }

    pub(super) fn on_signal(self: &Rc<Self>, s: SignalEvent) {
        let from = s.from.as_str();
        if self.is_stale(from) {
            log(&format!(
                "signal from {from} for the page before the reload ignored"
            ));
            return;
        }
        if matches!(s.data, SignalData::Bye) {
            // Its page reloaded and took its seat back: a new connection
            // follows (its offer). In an SFU room only a data-only
            // connection goes; its media comes through the SFU again.
            self.drop_connection(from);
            if self.is_sfu() {
                return;
            }
            self.ui.update_peer(from, |p| {
                p.connection = ConnState::New;
                p.frames = 0;
                p.first_frame_ms = None;
                p.stream_rev += 1;
            });
            return;
        }
        let pc = if self.is_sfu() {
            if from != protocol::SFU_PEER {
                // Another browser's data-only connection (a file for us).
                if let Some(pc) = self.data_link(from, false) {
                    pc.handle(s.data);
                }
                return;
            }
            // The server may offer before our media is ready.
            self.connect_sfu(false)
        } else {
            // Unknown: a peer whose signal raced its peer-joined.
            self.connect_peer(&s.from, false)
        };
        if let Some(pc) = pc {
            pc.handle(s.data);
        }
    }

    fn on_peer_event(self: &Rc<Self>, link: &Link, ev: PeerEvent) {
        match ev {
            PeerEvent::Signal(data) => {
                let req = SignalRequest {
                    room: self.room(),
                    to: PeerId::from(link.wire_id().to_owned()),
                    data,
                };
                self.sig.send(events::SIGNAL, req);
            }
            PeerEvent::Stream => match link {
                Link::Sfu => self.ui.peers.update(|ps| {
                    for p in ps {
                        p.stream_rev += 1;
                    }
                }),
                Link::Peer(id) => self.ui.update_peer(id, |p| p.stream_rev += 1),
                Link::Data(_) => {}
            },
            // A data-only connection's state is its files' (they say when it fails).
            PeerEvent::State(_) if matches!(link, Link::Data(_)) => {}
            PeerEvent::State(state) => self.on_conn_state(link, state),
            PeerEvent::DataOpen => {}
            PeerEvent::DataMessage(text) => match link {
                Link::Peer(id) | Link::Data(id) => self.on_data(id, &text),
                Link::Sfu => log("data channel message from the SFU ignored"),
            },
            PeerEvent::Channel(dc) => match link {
                Link::Peer(id) | Link::Data(id) => self.receive_file(id, dc),
                Link::Sfu => dc.close(),
            },
            PeerEvent::Error(e) => log(&format!("peer {}: {e}", link.wire_id())),
        }
    }

    fn on_conn_state(&self, link: &Link, state: ConnState) {
        match state {
            ConnState::Failed => {
                let name = match link {
                    Link::Peer(id) | Link::Data(id) => self.ui.peer_name(id),
                    // What the banner has always said of the SFU.
                    Link::Sfu => "someone".to_owned(),
                };
                self.ui.set_status(
                    StatusKind::IceFailed,
                    format!("The connection to {name} failed — restarting ICE…"),
                );
            }
            ConnState::Connected => self.ui.clear_status(&[StatusKind::IceFailed]),
            _ => {}
        }
        match link {
            Link::Sfu => {
                if let Topology::Sfu { state: shared, .. } = &mut *self.topology.borrow_mut() {
                    *shared = state;
                }
                self.ui.peers.update(|ps| {
                    for p in ps {
                        p.connection = state;
                    }
                });
            }
            Link::Peer(id) => self.ui.update_peer(id, |p| p.connection = state),
            Link::Data(_) => {}
        }
    }

    /// A message on `peer`'s data channel.
    fn on_data(&self, peer: &str, text: &str) {
        let Ok(msg) = serde_json::from_str::<Wire>(text) else {
            log(&format!("unreadable data channel message from {peer}"));
            return;
        };
        match msg {
            Wire::Chat { id, text, ts, name } => self.on_p2p_chat(peer, id, text, ts, name),
            Wire::Ack { id } => self.on_receipt(&id, peer),
            Wire::Ping { seq } => {
                self.send_data(peer, &Wire::Pong { seq });
            }
            Wire::Pong { seq } => self.on_pong(peer, seq, Via::P2p),
        }
    }

    /// Sends on `peer`'s data channel; false when there is none open.
    pub(super) fn send_data(&self, peer: &str, msg: &Wire) -> bool {
        let Ok(text) = serde_json::to_string(msg) else {
            return false;
        };
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => conns.get(peer).is_some_and(|pc| pc.send_data(&text)),
            Topology::Sfu { .. } => false,
        }
    }

    /// The peers with a connection of their own (mesh), for data-channel chat.
    pub(super) fn data_peers(&self) -> Vec<String> {
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => conns.keys().cloned().collect(),
            Topology::Sfu { .. } => Vec::new(),
        }
    }

    /// What we receive from `peer`.
    pub(super) fn remote_stream(&self, peer: &str) -> Option<MediaStream> {
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => conns.get(peer).and_then(|pc| pc.remote_stream()),
            // The SFU names each forwarded stream after its publisher.
            Topology::Sfu { conn, .. } => conn.as_ref().and_then(|pc| pc.stream_of(peer)),
        }
    }

    /// The screen `peer` shares, as we receive it.
    pub(super) fn remote_screen(&self, peer: &str) -> Option<MediaStream> {
        match &*self.topology.borrow() {
            Topology::Mesh { conns, .. } => conns.get(peer).and_then(|pc| pc.remote_screen()),
            // A stream-less video of a publisher: its screen.
            Topology::Sfu { conn, .. } => conn
                .as_ref()
                .and_then(|pc| pc.stream_of(&format!("{peer}~screen"))),
        }
    }
}
