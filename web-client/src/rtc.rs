//! One `RTCPeerConnection` per remote peer, with the "perfect negotiation"
//! pattern (so simultaneous offers never deadlock), trickle ICE, automatic
//! ICE restart, a negotiated data channel for chat and pings, and stats.
//!
//! Browser callbacks only push [`PeerEvent`]s to a sink and hold `Weak`
//! references, so nothing here keeps a connection alive by accident.

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

use crate::js::{error_text, get, get_f64, get_str};

/// What a peer connection tells the call.
pub enum PeerEvent {
    /// Send this to the peer through the signaling server.
    Signal(SignalData),
    /// The peer's media stream gained a track.
    Stream,
    /// `connectionState` changed.
    State(String),
    DataOpen,
    DataMessage(String),
    Error(String),
}

/// A browser event callback, kept alive as long as its connection.
type Listener = Closure<dyn FnMut(JsValue)>;

/// Receives every event of every peer connection: `(peer id, event)`.
pub type Sink = Rc<dyn Fn(&str, PeerEvent)>;

/// Numbers from `getStats`, for the tile and the quality indicator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub frames_decoded: u64,
    pub audio_packets: u64,
    pub packets_lost: i64,
    pub packets_received: u64,
    pub rtt_ms: Option<f64>,
    /// One entry per inbound track.
    pub per_track: Vec<TrackStats>,
    /// Video codec received (MIME type), when there is one video track.
    pub video_codec: Option<String>,
}

/// `getStats` of one inbound track.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackStats {
    /// `trackIdentifier`: the receiving `MediaStreamTrack`'s id.
    pub track: String,
    pub frames_decoded: u64,
    pub audio_packets: u64,
    /// Video only: the codec's MIME type (`video/VP8`, `video/H264`, …).
    pub codec: Option<String>,
}

pub struct PeerConn {
    pub id: String,
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
    remote: RefCell<Option<MediaStream>>,
    /// Streams by the sender's stream id: through the SFU, one per publisher
    /// (the SFU names each forwarded stream after its publisher's peer id).
    by_stream: RefCell<HashMap<String, MediaStream>>,
    /// Whether this connection carries the chat data channel (not to the SFU).
    data: bool,
    sink: Sink,
    closures: RefCell<Vec<Listener>>,
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
        local: Option<&MediaStream>,
        initiator: bool,
        data: bool,
        sink: Sink,
    ) -> Result<Rc<Self>, String> {
        let pc = RtcPeerConnection::new_with_configuration(config).map_err(|e| error_text(&e))?;
        let this = Rc::new(Self {
            id: id.to_owned(),
            pc,
            dc: RefCell::new(None),
            polite: self_id < id,
            making_offer: Cell::new(false),
            ignore_offer: Cell::new(false),
            answer_pending: Cell::new(false),
            inbox: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            remote: RefCell::new(None),
            by_stream: RefCell::new(HashMap::new()),
            data,
            sink,
            closures: RefCell::new(Vec::new()),
            closed: Cell::new(false),
        });
        this.wire();
        if initiator {
            this.open_data_channel();
            for kind in ["audio", "video"] {
                this.add_transceiver(kind, local);
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

    fn add_transceiver(&self, kind: &str, local: Option<&MediaStream>) {
        let init = RtcRtpTransceiverInit::new();
        match outgoing_track(kind) {
            Some(track) => {
                init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                if let Some(stream) = local {
                    init.set_streams(&js_sys::Array::of1(stream));
                }
                let t = self
                    .pc
                    .add_transceiver_with_media_stream_track_and_init(&track, &init);
                prefer_codec(&t, kind);
            }
            None => {
                // Not sending yet (camera still starting): the preference still
                // shapes this first offer, which later sends on this transceiver.
                init.set_direction(RtcRtpTransceiverDirection::Recvonly);
                let t = self.pc.add_transceiver_with_str_and_init(kind, &init);
                prefer_codec(&t, kind);
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
                // One stream of every track we receive from this peer.
                let tracks = js_sys::Array::new();
                for r in this.pc.get_receivers().iter() {
                    let r: web_sys::RtcRtpReceiver = r.unchecked_into();
                    tracks.push(r.track().as_ref());
                }
                if let Ok(stream) = MediaStream::new_with_tracks(&tracks) {
                    *this.remote.borrow_mut() = Some(stream);
                    this.emit(PeerEvent::Stream);
                }
            }
        });
        self.listen(self.pc.as_ref(), "connectionstatechange", move |_| {
            let Some(this) = weak.upgrade() else { return };
            let state = get_str(this.pc.as_ref(), "connectionState").unwrap_or_default();
            if state == "failed" {
                // Both sides may restart; perfect negotiation sorts out the offers.
                this.restart_ice();
            }
            this.emit(PeerEvent::State(state));
        });
    }

    fn listen(&self, target: &JsValue, event: &str, f: impl FnMut(JsValue) + 'static) {
        let cb = Closure::<dyn FnMut(JsValue)>::new(f);
        let add: Option<Function> = Reflect::get(target, &"addEventListener".into())
            .ok()
            .and_then(|f| f.dyn_into().ok());
        if let Some(add) = add {
            let _ = add.call2(target, &event.into(), cb.as_ref());
        }
        self.closures.borrow_mut().push(cb);
    }

    fn emit(&self, ev: PeerEvent) {
        if !self.closed.get() {
            (self.sink)(&self.id, ev);
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
        let local = LOCAL.with(|l| l.borrow().clone());
        let transceivers = self.transceivers();
        let mut sending: Vec<String> = transceivers
            .iter()
            .filter_map(|t| t.sender().track().map(|tr| tr.kind()))
            .collect();
        for t in transceivers {
            let sender = t.sender();
            let kind = t.receiver().track().kind();
            if sender.track().is_some() || sending.contains(&kind) {
                continue;
            }
            if let Some(track) = outgoing_track(&kind) {
                let _ = JsFuture::from(sender.replace_track(Some(&track))).await;
                t.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                prefer_codec(&t, &kind);
                if let Some(local) = &local {
                    set_streams(&sender, local);
                }
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

    /// Replaces what we send of `kind` (screen share, camera change) without
    /// renegotiating, unless that transceiver was receive-only.
    pub async fn replace_track(&self, kind: &str, track: Option<&MediaStreamTrack>) {
        for t in self.transceivers() {
            if t.receiver().track().kind() != kind {
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
                t.set_direction(RtcRtpTransceiverDirection::Sendrecv);
            }
            if let Some(local) = LOCAL.with(|l| l.borrow().clone()) {
                set_streams(&t.sender(), &local);
            }
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
    pub fn send_data(&self, text: &str) -> bool {
        self.data_open()
            && self
                .dc
                .borrow()
                .as_ref()
                .is_some_and(|dc| dc.send_with_str(text).is_ok())
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

    /// The stream the sender labelled `id` (through the SFU: a publisher).
    pub fn stream_of(&self, id: &str) -> Option<MediaStream> {
        self.by_stream.borrow().get(id).cloned()
    }

    /// Reads `getStats` into [`Stats`].
    pub async fn stats(&self) -> Stats {
        let mut out = Stats::default();
        let Ok(report) = JsFuture::from(self.pc.get_stats()).await else {
            return out;
        };
        // RTCStatsReport is maplike: forEach(value, key).
        let report: js_sys::Map = report.unchecked_into();
        let mut codecs: HashMap<String, String> = HashMap::new(); // codec stats id -> mimeType
        let mut video_codec_ids: Vec<(usize, String)> = Vec::new(); // per_track index -> codecId
        report.for_each(&mut |v, _| {
            let ty = get_str(&v, "type").unwrap_or_default();
            let kind = get_str(&v, "kind").unwrap_or_default();
            let n = |k: &str| get_f64(&v, k).unwrap_or_default();
            let track = || get_str(&v, "trackIdentifier").unwrap_or_default();
            match (ty.as_str(), kind.as_str()) {
                ("codec", _) => {
                    if let (Some(id), Some(mime)) = (get_str(&v, "id"), get_str(&v, "mimeType")) {
                        codecs.insert(id, mime);
                    }
                }
                ("inbound-rtp", "video") => {
                    if let Some(id) = get_str(&v, "codecId") {
                        video_codec_ids.push((out.per_track.len(), id));
                    }
                    out.per_track.push(TrackStats {
                        track: track(),
                        frames_decoded: n("framesDecoded") as u64,
                        ..TrackStats::default()
                    });
                    out.frames_decoded += n("framesDecoded") as u64;
                    out.packets_lost += n("packetsLost") as i64;
                    out.packets_received += n("packetsReceived") as u64;
                }
                ("inbound-rtp", "audio") => {
                    out.per_track.push(TrackStats {
                        track: track(),
                        audio_packets: n("packetsReceived") as u64,
                        ..TrackStats::default()
                    });
                    out.audio_packets += n("packetsReceived") as u64;
                    out.packets_lost += n("packetsLost") as i64;
                    out.packets_received += n("packetsReceived") as u64;
                }
                ("candidate-pair", _)
                    if get_str(&v, "state").as_deref() == Some("succeeded")
                        && get(&v, "nominated").as_bool() != Some(false) =>
                {
                    if let Some(rtt) = get_f64(&v, "currentRoundTripTime") {
                        out.rtt_ms = Some(rtt * 1000.0);
                    }
                }
                _ => {}
            }
        });
        for (i, id) in video_codec_ids {
            if let (Some(t), Some(mime)) = (out.per_track.get_mut(i), codecs.get(&id)) {
                t.codec = Some(mime.clone());
                out.video_codec = Some(mime.clone());
            }
        }
        out
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

impl Drop for PeerConn {
    fn drop(&mut self) {
        self.close();
    }
}

thread_local! {
    /// The local camera/microphone stream, shared by every connection.
    pub static LOCAL: RefCell<Option<MediaStream>> = const { RefCell::new(None) };
    /// The screen track while sharing: it replaces the camera on every
    /// connection, including ones made during the share.
    pub static SCREEN: RefCell<Option<MediaStreamTrack>> = const { RefCell::new(None) };
}

thread_local! {
    /// The video codec to prefer, from `?codec=` when the page opened (the
    /// address loses its query once the room is joined).
    static PREFERRED_CODEC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Remembers the video codec to prefer (a MIME type) for connections made from now on.
pub fn set_preferred_codec(codec: Option<String>) {
    PREFERRED_CODEC.with(|c| *c.borrow_mut() = codec);
}

/// `?codec=` in the address: put that video codec first in what this
/// transceiver offers and accepts (the other side's first common choice
/// is what gets sent). Browsers without `setCodecPreferences` keep their order.
fn prefer_codec(t: &RtcRtpTransceiver, kind: &str) {
    if kind != "video" {
        return;
    }
    let Some(want) = PREFERRED_CODEC.with(|c| c.borrow().clone()) else {
        return;
    };
    let caps = Reflect::get(&js_sys::global(), &"RTCRtpReceiver".into())
        .ok()
        .and_then(|r| {
            let f: Function = Reflect::get(&r, &"getCapabilities".into())
                .ok()?
                .dyn_into()
                .ok()?;
            f.call1(&r, &"video".into()).ok()
        })
        .and_then(|c| Reflect::get(&c, &"codecs".into()).ok())
        .and_then(|c| c.dyn_into::<js_sys::Array>().ok());
    let Some(codecs) = caps else {
        return;
    };
    let is_wanted =
        |c: &JsValue| get_str(c, "mimeType").is_some_and(|m| m.eq_ignore_ascii_case(&want));
    let (first, rest): (Vec<JsValue>, Vec<JsValue>) = codecs.iter().partition(|c| is_wanted(c));
    if first.is_empty() {
        web_sys::console::warn_1(&format!("{want} is not supported by this browser").into());
        return;
    }
    let ordered: js_sys::Array = first.into_iter().chain(rest).collect();
    if let Ok(f) = Reflect::get(t.as_ref(), &"setCodecPreferences".into())
        && let Ok(f) = f.dyn_into::<Function>()
        && let Err(e) = f.call1(t.as_ref(), &ordered)
    {
        web_sys::console::warn_2(&"setCodecPreferences failed".into(), &e);
    }
}

/// What we send of `kind` now: the screen while sharing, else the camera/mic.
pub fn outgoing_track(kind: &str) -> Option<MediaStreamTrack> {
    if kind == "video"
        && let Some(screen) = SCREEN.with(|s| s.borrow().clone())
    {
        return Some(screen);
    }
    LOCAL.with(|l| l.borrow().as_ref().and_then(|s| first_track(s, kind)))
}

/// Configuration from `/api/config`'s `iceServers`.
pub fn rtc_config(ice_servers: &JsValue) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if ice_servers.is_array() {
        let _ = Reflect::set(config.as_ref(), &"iceServers".into(), ice_servers);
    }
    config
}

fn first_track(stream: &MediaStream, kind: &str) -> Option<MediaStreamTrack> {
    let tracks = if kind == "audio" {
        stream.get_audio_tracks()
    } else {
        stream.get_video_tracks()
    };
    tracks.get(0).dyn_into().ok()
}

/// `sender.setStreams(stream)` where supported, so the peer's `track`
/// events name our stream.
fn set_streams(sender: &web_sys::RtcRtpSender, stream: &MediaStream) {
    if let Ok(f) = Reflect::get(sender.as_ref(), &"setStreams".into())
        && let Ok(f) = f.dyn_into::<Function>()
    {
        let _ = f.call1(sender.as_ref(), stream.as_ref());
    }
}
