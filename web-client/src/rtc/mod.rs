//! One `RTCPeerConnection` per remote peer, with the "perfect negotiation"
//! pattern (so simultaneous offers never deadlock), trickle ICE, automatic
//! ICE restart, a negotiated data channel for chat and pings, and stats.
//!
//! Browser callbacks only push [`PeerEvent`]s to a sink and hold `Weak`
//! references, so nothing here keeps a connection alive by accident. What
//! a connection sends comes from the call's [`Outgoing`].

mod outgoing;
mod stats;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use js_sys::{Function, Reflect};
use protocol::{IceCandidate, SignalData};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcConfiguration, RtcDataChannel, RtcDataChannelInit,
    RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcRtpTransceiver,
    RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType, RtcSessionDescriptionInit,
    RtcSignalingState,
};

use crate::js::{Listeners, error_text, get, get_str};
use crate::media::Kind;
use crate::state::ConnState;

pub use outgoing::Outgoing;
pub use stats::Stats;

/// What a peer connection tells the call.
pub enum PeerEvent {
    /// Send this to the peer through the signaling server.
    Signal(SignalData),
    /// The peer's media stream gained a track.
    Stream,
    /// `connectionState` changed.
    State(ConnState),
    DataOpen,
    DataMessage(String),
    /// The peer opened a data channel of its own (a file).
    Channel(RtcDataChannel),
    Error(String),
}

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// Media and the chat data channel: a peer of a mesh room.
    MediaAndData,
    /// Media only: the SFU; `simulcast`: our camera in layers (an SFU
    /// that takes them).
    Media { simulcast: bool },
    /// Data channels only: two browsers of an SFU room (files).
    Data,
}

/// Receives every event of one peer connection.
pub type Sink = Rc<dyn Fn(PeerEvent)>;

pub struct PeerConn {
    pc: RtcPeerConnection,
    /// Negotiated (id 0) on both sides. The initiator creates it at once; the
    /// other side after applying the first offer, so that it never triggers
    /// an offer of its own (glare that breaks SCTP in Chromium).
    dc: RefCell<Option<RtcDataChannel>>,
    /// The polite peer yields on offer collision; decided by id order, so
    /// exactly one of the two is polite.
    polite: bool,
    making_offer: Cell<bool>,
    ignore_offer: Cell<bool>,
    answer_pending: Cell<bool>,
    /// Signals are applied one at a time, in arrival order.
    inbox: RefCell<VecDeque<SignalData>>,
    busy: Cell<bool>,
    /// The peer's camera and microphone (mesh).
    remote: RefCell<Option<MediaStream>>,
    /// The peer's shared screen (mesh): video on any but the first video
    /// transceiver (the camera's is always made first, on both sides).
    remote_screen: RefCell<Option<MediaStream>>,
    /// Our screen's sender while we share or once shared on this connection:
    /// a transceiver of its own, sent without a stream (through the SFU that
    /// is how a screen is told from a camera), kept when the share stops
    /// (no track) so the next share needs no negotiation.
    screen_tx: RefCell<Option<RtcRtpTransceiver>>,
    /// Streams by the sender's stream id: through the SFU, one per publisher
    /// (the SFU names each forwarded stream after its publisher's peer id).
    by_stream: RefCell<HashMap<String, MediaStream>>,
    /// Whether this connection carries the chat data channel (not to the SFU).
    data: bool,
    /// Whether it carries media (not a data-only link of an SFU room).
    media: bool,
    /// Publishes its camera in simulcast layers (to an SFU that takes them).
    simulcast: bool,
    /// What we send, shared with the call and its other connections.
    outgoing: Rc<Outgoing>,
    sink: Sink,
    listeners: Listeners,
    closed: Cell<bool>,
}

impl PeerConn {
    /// Creates the connection. The `initiator` (the peer that just joined)
    /// adds its transceivers now, which triggers the first offer; the other
    /// side attaches its tracks when that offer arrives.
    pub fn new(
        id: &str,
        self_id: &str,
        config: &RtcConfiguration,
        outgoing: Rc<Outgoing>,
        initiator: bool,
        carries: Carries,
        sink: Sink,
    ) -> Result<Rc<Self>, String> {
        let pc = RtcPeerConnection::new_with_configuration(config).map_err(|e| error_text(&e))?;
        let this = Rc::new(Self {
            pc,
            dc: RefCell::new(None),
            polite: self_id < id,
            making_offer: Cell::new(false),
            ignore_offer: Cell::new(false),
            answer_pending: Cell::new(false),
            inbox: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            remote: RefCell::new(None),
            remote_screen: RefCell::new(None),
            screen_tx: RefCell::new(None),
            by_stream: RefCell::new(HashMap::new()),
            data: !matches!(carries, Carries::Media { .. }),
            media: carries != Carries::Data,
            simulcast: carries == Carries::Media { simulcast: true },
            outgoing,
            sink,
            listeners: Listeners::default(),
            closed: Cell::new(false),
        });
        this.wire();
        if initiator {
            this.open_data_channel();
            if carries != Carries::Data {
                for kind in Kind::BOTH {
                    this.add_transceiver(kind);
                }
                this.add_screen();
            }
        }
        Ok(this)
    }

    /// Creates the negotiated data channel (both sides use id 0, so there is
    /// no `ondatachannel` race).
    fn open_data_channel(self: &Rc<Self>) {
        if !self.data || self.dc.borrow().is_some() {
            return;
        }
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(true);
        let dc = self
            .pc
            .create_data_channel_with_data_channel_dict("chat", &init);
        let weak = Rc::downgrade(self);
        self.listen(dc.as_ref(), "open", {
            let weak = weak.clone();
            move |_| {
                if let Some(this) = weak.upgrade() {
                    this.emit(PeerEvent::DataOpen);
                }
            }
        });
        self.listen(dc.as_ref(), "message", move |ev| {
            let Some(this) = weak.upgrade() else { return };
            if let Some(text) = get(&ev, "data").as_string() {
                this.emit(PeerEvent::DataMessage(text));
            }
        });
        *self.dc.borrow_mut() = Some(dc);
    }

    fn add_transceiver(&self, kind: Kind) {
        let init = RtcRtpTransceiverInit::new();
        if self.simulcast && kind == Kind::Video {
            // Two layers: half size ("l") and full size ("h"); the SFU sends
            // each subscriber the one that fits its tile.
            let low = js_sys::Object::new();
            let _ = Reflect::set(&low, &"rid".into(), &"l".into());
            let _ = Reflect::set(&low, &"scaleResolutionDownBy".into(), &2.0.into());
            let high = js_sys::Object::new();
            let _ = Reflect::set(&high, &"rid".into(), &"h".into());
            let _ = Reflect::set(
                init.as_ref(),
                &"sendEncodings".into(),
                &js_sys::Array::of2(&low, &high),
            );
        }
        match self.outgoing.track(kind) {
            Some(track) => {
                init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                if let Some(stream) = self.outgoing.camera() {
                    init.set_streams(&js_sys::Array::of1(&stream));
                }
                let t = self
                    .pc
                    .add_transceiver_with_media_stream_track_and_init(&track, &init);
                self.outgoing.prefer_codec(&t, kind);
            }
            None => {
                // Not sending yet (camera still starting): the preference still
                // shapes this first offer, which later sends on this transceiver.
                init.set_direction(RtcRtpTransceiverDirection::Recvonly);
                let t = self
                    .pc
                    .add_transceiver_with_str_and_init(kind.as_str(), &init);
                self.outgoing.prefer_codec(&t, kind);
            }
        }
    }

    /// Registers the browser callbacks; each holds only a `Weak`.
    fn wire(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        self.listen(self.pc.as_ref(), "negotiationneeded", {
            let weak = weak.clone();
            move |_| {
                if let Some(this) = weak.upgrade() {
                    wasm_bindgen_futures::spawn_local(this.negotiate());
                }
            }
        });
        self.listen(self.pc.as_ref(), "icecandidate", {
            let weak = weak.clone();
            move |ev| {
                let Some(this) = weak.upgrade() else { return };
                let ev: RtcPeerConnectionIceEvent = ev.unchecked_into();
                let candidate = ev.candidate().and_then(|c| {
                    let cand = c.candidate();
                    (!cand.is_empty()).then(|| IceCandidate {
                        candidate: cand,
                        sdp_mid: c.sdp_mid(),
                        sdp_m_line_index: c.sdp_m_line_index(),
                        username_fragment: get_str(c.as_ref(), "usernameFragment"),
                    })
                });
                this.emit(PeerEvent::Signal(SignalData::Candidate { candidate }));
            }
        });
        self.listen(self.pc.as_ref(), "track", {
            let weak = weak.clone();
            move |ev| {
                let Some(this) = weak.upgrade() else { return };
                let streams = get(&ev, "streams");
                if let Ok(streams) = streams.dyn_into::<js_sys::Array>() {
                    for st in streams.iter() {
                        if let Some(id) = get_str(&st, "id") {
                            this.by_stream.borrow_mut().insert(id, st.unchecked_into());
                        }
                    }
                }
                // The camera: every audio track and the first video
                // transceiver's; a video on any other is the peer's screen.
                let camera_video = this.camera_transceiver();
                let screen: Option<MediaStreamTrack> = get(&ev, "transceiver")
                    .dyn_into::<RtcRtpTransceiver>()
                    .ok()
                    .filter(|t| {
                        Kind::of(&t.receiver().track()) == Some(Kind::Video)
                            && camera_video.as_ref() != Some(t)
                    })
                    .map(|t| t.receiver().track());
                if let Some(track) = screen {
                    if let Ok(stream) = MediaStream::new_with_tracks(&js_sys::Array::of1(&track)) {
                        *this.remote_screen.borrow_mut() = Some(stream);
                    }
                } else {
                    let tracks = js_sys::Array::new();
                    for t in this.transceivers() {
                        let track = t.receiver().track();
                        match Kind::of(&track) {
                            Some(Kind::Audio) => {}
                            Some(Kind::Video) if camera_video.as_ref() == Some(&t) => {}
                            _ => continue,
                        }
                        tracks.push(track.as_ref());
                    }
                    if let Ok(stream) = MediaStream::new_with_tracks(&tracks) {
                        *this.remote.borrow_mut() = Some(stream);
                    }
                }
                this.emit(PeerEvent::Stream);
            }
        });
        self.listen(self.pc.as_ref(), "datachannel", {
            let weak = weak.clone();
            move |ev| {
                if let Some(this) = weak.upgrade()
                    && let Ok(dc) = get(&ev, "channel").dyn_into::<RtcDataChannel>()
                {
                    this.emit(PeerEvent::Channel(dc));
                }
            }
        });
        self.listen(self.pc.as_ref(), "connectionstatechange", move |_| {
            let Some(this) = weak.upgrade() else { return };
            let raw = get_str(this.pc.as_ref(), "connectionState").unwrap_or_default();
            let Some(state) = ConnState::parse(&raw) else {
                web_sys::console::warn_1(&format!("unknown connectionState {raw:?}").into());
                return;
            };
            if state == ConnState::Failed {
                // Both sides may restart; perfect negotiation sorts out the offers.
                this.restart_ice();
            }
            this.emit(PeerEvent::State(state));
        });
    }

    fn listen(&self, target: &web_sys::EventTarget, event: &str, f: impl FnMut(JsValue) + 'static) {
        self.listeners.add(target, event, f);
    }

    fn emit(&self, ev: PeerEvent) {
        if !self.closed.get() {
            (self.sink)(ev);
        }
    }

    /// `onnegotiationneeded`: make an offer with the implicit
    /// `setLocalDescription()`, which cannot race with a remote offer.
    async fn negotiate(self: Rc<Self>) {
        self.making_offer.set(true);
        let res = self.set_local_description().await;
        self.making_offer.set(false);
        match res {
            Ok(()) => self.send_local_description(),
            Err(e) => self.emit(PeerEvent::Error(format!("cannot make an offer: {e}"))),
        }
    }

    async fn set_local_description(&self) -> Result<(), String> {
        let f: Function = Reflect::get(self.pc.as_ref(), &"setLocalDescription".into())
            .map_err(|e| error_text(&e))?
            .dyn_into()
            .map_err(|_| "setLocalDescription is missing".to_owned())?;
        let promise: js_sys::Promise = f
            .call0(self.pc.as_ref())
            .map_err(|e| error_text(&e))?
            .dyn_into()
            .map_err(|_| "setLocalDescription returned no promise".to_owned())?;
        JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    fn send_local_description(&self) {
        let Some(desc) = self.pc.local_description() else {
            return;
        };
        let sdp = desc.sdp();
        let data = match desc.type_() {
            RtcSdpType::Offer => SignalData::Offer { sdp },
            RtcSdpType::Answer => SignalData::Answer { sdp },
            _ => return,
        };
        self.emit(PeerEvent::Signal(data));
    }

    /// Queues a signal from the peer; they are applied in order.
    pub fn handle(self: &Rc<Self>, data: SignalData) {
        self.inbox.borrow_mut().push_back(data);
        if !self.busy.get() {
            self.busy.set(true);
            wasm_bindgen_futures::spawn_local(self.clone().drain());
        }
    }

    async fn drain(self: Rc<Self>) {
        loop {
            let next = self.inbox.borrow_mut().pop_front();
            let Some(data) = next else { break };
            if let Err(e) = self.apply(data).await {
                self.emit(PeerEvent::Error(e));
            }
        }
        self.busy.set(false);
    }

    async fn apply(self: &Rc<Self>, data: SignalData) -> Result<(), String> {
        match data {
            SignalData::Offer { sdp } => self.apply_description(RtcSdpType::Offer, sdp).await,
            SignalData::Answer { sdp } => self.apply_description(RtcSdpType::Answer, sdp).await,
            SignalData::Candidate { candidate: Some(c) } => {
                let init = RtcIceCandidateInit::new(&c.candidate);
                init.set_sdp_mid(c.sdp_mid.as_deref());
                init.set_sdp_m_line_index(c.sdp_m_line_index);
                if let Some(uf) = &c.username_fragment {
                    let _ = Reflect::set(init.as_ref(), &"usernameFragment".into(), &uf.into());
                }
                let res = JsFuture::from(
                    self.pc
                        .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                )
                .await;
                match res {
                    // Candidates of an offer we ignored are expected to fail.
                    Err(e) if !self.ignore_offer.get() => {
                        Err(format!("bad ICE candidate: {}", error_text(&e)))
                    }
                    _ => Ok(()),
                }
            }
            // End of candidates: browsers need no notice.
            SignalData::Candidate { candidate: None } => Ok(()),
            SignalData::Bye => {
                self.close();
                Ok(())
            }
        }
    }

    async fn apply_description(
        self: &Rc<Self>,
        kind: RtcSdpType,
        sdp: String,
    ) -> Result<(), String> {
        let is_offer = kind == RtcSdpType::Offer;
        let stable = self.pc.signaling_state() == RtcSignalingState::Stable;
        let ready = !self.making_offer.get() && (stable || self.answer_pending.get());
        let collision = is_offer && !ready;
        self.ignore_offer.set(!self.polite && collision);
        if self.ignore_offer.get() {
            return Ok(());
        }
        self.answer_pending.set(!is_offer);
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(&sdp);
        let res = JsFuture::from(self.pc.set_remote_description(&init)).await;
        self.answer_pending.set(false);
        res.map_err(|e| format!("cannot apply the peer's description: {}", error_text(&e)))?;
        if is_offer {
            self.open_data_channel();
            self.attach_local_tracks().await;
            // Sharing when this connection was made: the screen's transceiver
            // (it renegotiates once this answer is done).
            self.add_screen();
            self.set_local_description()
                .await
                .map_err(|e| format!("cannot answer: {e}"))?;
            self.send_local_description();
        }
        Ok(())
    }

    /// Answering side: send our tracks on the transceivers the offer created,
    /// one transceiver per kind. An SFU's offers add a transceiver for every
    /// track it forwards to us: those stay receive-only (sending our camera
    /// on them would publish it again, and every other peer's copy again, in
    /// a loop).
    async fn attach_local_tracks(&self) {
        let transceivers = self.transceivers();
        let screen = self.screen_tx.borrow().clone();
        let transceivers = transceivers
            .into_iter()
            .filter(|t| screen.as_ref() != Some(t));
        let transceivers: Vec<RtcRtpTransceiver> = transceivers.collect();
        let mut sending: Vec<Kind> = transceivers
            .iter()
            .filter_map(|t| t.sender().track().and_then(|tr| Kind::of(&tr)))
            .collect();
        for t in transceivers {
            let sender = t.sender();
            let Some(kind) = Kind::of(&t.receiver().track()) else {
                continue;
            };
            if sender.track().is_some() || sending.contains(&kind) {
                continue;
            }
            if let Some(track) = self.outgoing.track(kind) {
                let _ = JsFuture::from(sender.replace_track(Some(&track))).await;
                send_recv(&t);
                self.outgoing.prefer_codec(&t, kind);
                self.outgoing.label(&sender);
                sending.push(kind);
            }
        }
    }

    fn transceivers(&self) -> Vec<RtcRtpTransceiver> {
        self.pc
            .get_transceivers()
            .iter()
            .filter_map(|t| t.dyn_into().ok())
            .collect()
    }

    /// The first video transceiver that is not our screen's: the camera's.
    fn camera_transceiver(&self) -> Option<RtcRtpTransceiver> {
        let screen = self.screen_tx.borrow().clone();
        self.transceivers().into_iter().find(|t| {
            Kind::of(&t.receiver().track()) == Some(Kind::Video) && screen.as_ref() != Some(t)
        })
    }

    /// Adds the screen's transceiver when we share and this connection
    /// carries media and has none yet (a new connection during a share);
    /// negotiation follows by itself. Not before the camera's and the
    /// microphone's exist: on the answering side they come with the first
    /// offer, which adds the screen's after them (`apply_remote`), so that
    /// the camera's is always the first video transceiver on both sides.
    fn add_screen(&self) {
        if !self.media
            || self.closed.get()
            || self.screen_tx.borrow().is_some()
            || self.transceivers().is_empty()
        {
            return;
        }
        let Some(track) = self.outgoing.screen_track() else {
            return;
        };
        let init = RtcRtpTransceiverInit::new();
        // Send only, and without a stream: the SFU forwards a stream-less
        // video as the publisher's screen (`<publisher>~screen`).
        init.set_direction(RtcRtpTransceiverDirection::Sendonly);
        let t = self
            .pc
            .add_transceiver_with_media_stream_track_and_init(&track, &init);
        self.outgoing.prefer_codec(&t, Kind::Video);
        *self.screen_tx.borrow_mut() = Some(t);
    }

    /// Sends the screen we share now (`Some`), or stops sending it: on the
    /// screen's own transceiver, added (one negotiation) the first time.
    pub async fn set_screen(&self, track: Option<&MediaStreamTrack>) {
        let existing = self.screen_tx.borrow().clone();
        match existing {
            Some(t) => {
                let _ = JsFuture::from(t.sender().replace_track(track)).await;
            }
            None if track.is_some() => self.add_screen(),
            None => {}
        }
    }

    /// Replaces what the camera/microphone send of `kind` (a camera
    /// change) without renegotiating, unless that transceiver was receive-only.
    pub async fn replace_track(&self, kind: Kind, track: Option<&MediaStreamTrack>) {
        let screen = self.screen_tx.borrow().clone();
        for t in self.transceivers() {
            if Kind::of(&t.receiver().track()) != Some(kind) || screen.as_ref() == Some(&t) {
                continue;
            }
            let _ = JsFuture::from(t.sender().replace_track(track)).await;
            if track.is_some()
                && matches!(
                    t.direction(),
                    RtcRtpTransceiverDirection::Recvonly | RtcRtpTransceiverDirection::Inactive
                )
            {
                // Triggers negotiationneeded: the peer learns we now send.
                send_recv(&t);
            }
            self.outgoing.label(&t.sender());
            return;
        }
    }

    pub fn restart_ice(&self) {
        if let Ok(f) = Reflect::get(self.pc.as_ref(), &"restartIce".into())
            && let Ok(f) = f.dyn_into::<Function>()
        {
            let _ = f.call0(self.pc.as_ref());
        }
    }

    /// Sends on the data channel; false when it is not open.
    /// Whether the far end ever answered (or offered): a connection whose
    /// first offer was lost has no remote description.
    pub fn answered(&self) -> bool {
        self.pc.remote_description().is_some()
    }

    pub fn send_data(&self, text: &str) -> bool {
        self.data_open()
            && self
                .dc
                .borrow()
                .as_ref()
                .is_some_and(|dc| dc.send_with_str(text).is_ok())
    }

    /// A new data channel of our own (a file), ordered and reliable; it
    /// opens once the connection is up.
    pub fn open_channel(&self, label: &str) -> RtcDataChannel {
        self.pc.create_data_channel(label)
    }

    pub fn data_open(&self) -> bool {
        self.dc
            .borrow()
            .as_ref()
            .is_some_and(|dc| get_str(dc.as_ref(), "readyState").as_deref() == Some("open"))
    }

    pub fn remote_stream(&self) -> Option<MediaStream> {
        self.remote.borrow().clone()
    }

    /// The peer's shared screen (mesh).
    pub fn remote_screen(&self) -> Option<MediaStream> {
        self.remote_screen.borrow().clone()
    }

    /// The stream the sender labelled `id` (through the SFU: a publisher).
    pub fn stream_of(&self, id: &str) -> Option<MediaStream> {
        self.by_stream.borrow().get(id).cloned()
    }

    /// Each received audio track's total energy and duration so far
    /// (`getStats`), keyed by track id, with the id of the stream it came
    /// in (through the SFU: its publisher).
    pub async fn audio_energy(&self) -> Vec<(String, Option<String>, f64, f64)> {
        let tracks = stats::audio_energy(&self.pc).await;
        let streams = self.by_stream.borrow();
        tracks
            .into_iter()
            .map(|(track, energy, secs)| {
                let stream = streams
                    .iter()
                    .find(|(_, st)| st.get_track_by_id(&track).is_some())
                    .map(|(id, _)| id.clone());
                (track, stream, energy, secs)
            })
            .collect()
    }

    /// Reads `getStats`.
    pub async fn stats(&self) -> Stats {
        Stats::read(&self.pc).await
    }

    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if let Some(dc) = self.dc.borrow().as_ref() {
            dc.close();
        }
        self.pc.close();
    }
}

/// Makes `t` send and receive. The setter throws once the connection is
/// closed (a peer that left while a track was being replaced): through
/// `Reflect`, that is an error we ignore, not an uncaught exception.
fn send_recv(t: &RtcRtpTransceiver) {
    let _ = Reflect::set(t.as_ref(), &"direction".into(), &"sendrecv".into());
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        self.close();
        self.listeners.clear();
    }
}

/// Configuration from `/api/config`'s `iceServers`.
pub fn rtc_config(ice_servers: &JsValue) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if ice_servers.is_array() {
        let _ = Reflect::set(config.as_ref(), &"iceServers".into(), ice_servers);
    }
    config
}
