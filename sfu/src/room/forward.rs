//! Forwarding: each published track has one reader task that writes every
//! packet to every subscriber's track at once, without waiting. A
//! subscriber whose connection cannot take the packet right now (its driver
//! queue is full) misses it alone, counted, and nobody else waits for it.
//! (An earlier version gave each subscription its own task fed by a
//! `broadcast` channel: one more task and one more wake-up per packet per
//! subscriber, for the same isolation.)
//!
//! The way back: each subscription has a task reading the subscriber's RTCP
//! (keyframe requests, handed to the room, which forwards them to the
//! publisher at most once per `pli_throttle`; reception reports, counted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

use super::metrics::{PeerMetrics, RoomMetrics};
use super::{Ev, Peer, Room};
use protocol::PeerId;

use crate::error::SfuError;

/// Tracks one peer may publish: microphone, camera, and room for a screen
/// share with its audio.
pub const MAX_TRACKS_PER_PEER: usize = 4;

/// One published track: who publishes it, and the id it gave the track.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct TrackKey {
    pub(super) publisher: PeerId,
    pub(super) track: String,
}

/// A track being forwarded.
pub(super) struct Published {
    remote: Arc<dyn TrackRemote>,
    media_ssrc: u32,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    /// The stream id subscribers receive it in: the publisher's peer id, or
    /// `<peer id>~screen` for a video the publisher sent without a stream
    /// (our client's screen share, beside its camera).
    stream: String,
    sinks: Sinks,
    /// When a keyframe was last asked of the publisher, for the throttle.
    last_pli: Option<Instant>,
    reader: JoinHandle<()>,
}

/// Every subscriber's copy of one published track. Locked by the reader
/// task for one packet's fan-out (no await inside) and by the room to add
/// or remove a subscriber.
type Sinks = Arc<Mutex<Vec<Arc<Sink>>>>;

/// One subscriber's copy of one published track.
struct Sink {
    subscriber: PeerId,
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: NegotiatedPt,
    metrics: Arc<PeerMetrics>,
}

/// The payload type a subscription was given on the subscriber's
/// connection: unknown until the subscriber has answered the offer that
/// added it. Read by the reader task for every packet, so an atomic.
struct NegotiatedPt(AtomicU32);

impl NegotiatedPt {
    /// Stored while the payload type is unknown; never a payload type (those are 7 bits).
    const UNKNOWN: u32 = u32::MAX;

    fn unknown() -> Self {
        Self(AtomicU32::new(Self::UNKNOWN))
    }
    fn get(&self) -> Option<u8> {
        u8::try_from(self.0.load(Ordering::Relaxed)).ok()
    }
    fn set(&self, pt: u8) {
        self.0.store(u32::from(pt), Ordering::Relaxed);
    }
}

/// One track forwarded to one subscriber: what the room keeps to undo it.
pub(super) struct Subscription {
    sender: Arc<dyn RtpSender>,
    sink: Arc<Sink>,
    /// The publisher's codec, to find its payload type on this connection.
    codec: RTCRtpCodec,
    rtcp_task: JoinHandle<()>,
}

impl Room {
    /// A peer's new track: forwarded to every other peer, or read and
    /// dropped when the peer already publishes [`MAX_TRACKS_PER_PEER`].
    pub(super) async fn publish(
        &mut self,
        peer: PeerId,
        track: Arc<dyn TrackRemote>,
    ) -> Result<(), SfuError> {
        if !self.peers.contains_key(&peer) {
            return Ok(());
        }
        let Some(media_ssrc) = track.ssrcs().await.first().copied() else {
            return Ok(());
        };
        let Some(codec) = track.codec(media_ssrc).await else {
            return Ok(());
        };
        let kind = track.kind().await;
        let stream_id = track.stream_id().await;
        let stream = if kind == RtpCodecKind::Video && matches!(stream_id.as_str(), "" | "-") {
            format!("{peer}~screen")
        } else {
            peer.as_str().to_owned()
        };
        let key = TrackKey {
            publisher: peer.clone(),
            track: track.track_id().await,
        };
        let already = self
            .published
            .keys()
            .filter(|k| k.publisher == peer)
            .count();
        if already >= MAX_TRACKS_PER_PEER || self.published.contains_key(&key) {
            // Every track is sent to every other peer: a peer may not multiply
            // that. The track is still read (and dropped) so that its queue in
            // webrtc-rs does not fill and log an error per packet.
            self.metrics.tracks_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %peer, track = %key.track, "sfu: track refused, {already} already published");
            let drain = tokio::spawn(async move { while track.poll().await.is_some() {} });
            if let Some(p) = self.peers.get_mut(&peer) {
                p.drains.push(drain);
            }
            return Ok(());
        }
        let sinks: Sinks = Arc::default();
        let publisher_metrics = self.peers.get(&peer).map(|p| p.metrics.clone());
        let reader = tokio::spawn(read_and_forward(
            track.clone(),
            sinks.clone(),
            self.metrics.clone(),
            publisher_metrics.unwrap_or_default(),
        ));
        tracing::debug!(peer = %peer, track = %key.track, codec = %codec.mime_type, media_ssrc, "sfu: publishing");
        self.metrics
            .published_tracks
            .fetch_add(1, Ordering::Relaxed);
        self.published.insert(
            key.clone(),
            Published {
                remote: track,
                media_ssrc,
                kind,
                codec,
                stream,
                sinks,
                last_pli: None,
                reader,
            },
        );
        let others: Vec<PeerId> = self.peers.keys().filter(|p| **p != peer).cloned().collect();
        for o in others {
            self.subscribe(&o, key.clone()).await?;
            self.negotiate(&o).await?;
        }
        Ok(())
    }

    /// Add one TrackLocalStaticRTP for `key` on `sub`'s PC, its sink in the
    /// publisher's fan-out, and a task reading the subscriber's RTCP for it.
    /// Offering it is the caller's part.
    pub(super) async fn subscribe(&mut self, sub: &PeerId, key: TrackKey) -> Result<(), SfuError> {
        let pubd = self.published.get(&key).ok_or(SfuError::NoTrack)?;
        let ssrc: u32 = rand_u32();
        let local = Arc::new(TrackLocalStaticRTP::new(forwarded_track(
            &pubd.stream,
            &key.publisher,
            &key.track,
            pubd.kind,
            &pubd.codec,
            ssrc,
        )));
        let p = self.peers.get_mut(sub).ok_or(SfuError::NoPeer)?;
        let sender =
            p.pc.add_track(local.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(SfuError::webrtc("add track"))?;
        let sink = Arc::new(Sink {
            subscriber: sub.clone(),
            local: local.clone(),
            ssrc,
            pt: NegotiatedPt::unknown(),
            metrics: p.metrics.clone(),
        });
        pubd.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sink.clone());
        let rtcp_task =
            spawn_rtcp_reader(local, key.clone(), self.ev_tx.clone(), p.metrics.clone());
        p.subs.insert(
            key.clone(),
            Subscription {
                sender,
                sink,
                codec: pubd.codec.clone(),
                rtcp_task,
            },
        );
        p.awaiting_keyframe.push(key);
        Ok(())
    }

    /// Asks the publisher of `key` for a keyframe (video only); at most once
    /// per `pli_throttle` unless `force`d.
    pub(super) async fn request_keyframe(&mut self, key: &TrackKey, force: bool) {
        let throttle = self.cfg.pli_throttle;
        let Some(pb) = self.published.get_mut(key) else {
            return;
        };
        if pb.kind != RtpCodecKind::Video {
            return;
        }
        let now = Instant::now();
        if !force
            && pb
                .last_pli
                .is_some_and(|t| now.duration_since(t) < throttle)
        {
            self.metrics.pli_throttled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pb.last_pli = Some(now);
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: pb.media_ssrc,
        };
        if pb.remote.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
            self.metrics
                .pli_to_publishers
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Backstop for payload types not yet readable right after an answer:
    /// resolves them, and asks again for the keyframes that went nowhere.
    pub(super) async fn resolve_late_payload_types(&mut self) {
        let mut late = Vec::new();
        for p in self.peers.values() {
            if p.subs.values().any(|s| s.sink.pt.get().is_none()) {
                late.extend(resolve_payload_types(p).await);
            }
        }
        // The keyframe requested at the answer went nowhere for these.
        for k in late {
            self.request_keyframe(&k, true).await;
        }
    }

    /// A leaving subscriber's subscriptions: out of every publisher's fan-out.
    pub(super) fn drop_subscriptions(
        &self,
        subscriber: &PeerId,
        subs: HashMap<TrackKey, Subscription>,
    ) {
        for (key, s) in subs {
            s.rtcp_task.abort();
            if let Some(pb) = self.published.get(&key) {
                pb.sinks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|k| &k.subscriber != subscriber);
            }
        }
    }

    /// A leaving publisher's tracks: off every subscriber's connection,
    /// renegotiated. An error on one subscriber is logged and the cleanup
    /// goes on.
    pub(super) async fn unpublish(&mut self, publisher: &PeerId) {
        let gone: Vec<TrackKey> = self
            .published
            .keys()
            .filter(|k| &k.publisher == publisher)
            .cloned()
            .collect();
        for k in gone {
            if let Some(pb) = self.published.remove(&k) {
                pb.reader.abort();
                self.metrics
                    .published_tracks
                    .fetch_sub(1, Ordering::Relaxed);
            }
            let subs: Vec<PeerId> = self.peers.keys().cloned().collect();
            for s in subs {
                let Some(sp) = self.peers.get_mut(&s) else {
                    continue;
                };
                if let Some(sub) = sp.subs.remove(&k) {
                    sub.rtcp_task.abort();
                    if let Err(e) = sp.pc.remove_track(&sub.sender).await {
                        tracing::warn!(peer = %s, "sfu: remove track: {e}");
                    }
                    if let Err(e) = self.negotiate(&s).await {
                        tracing::warn!(peer = %s, "sfu: renegotiate after a leave: {e}");
                    }
                }
            }
        }
    }
}

/// Reads the subscriber's RTCP for one subscription: PLI/FIR and reception
/// reports arrive on the local track (the interceptor delivers them to the
/// application). Keyframe requests go to the room; losses to the metrics.
fn spawn_rtcp_reader(
    local: Arc<TrackLocalStaticRTP>,
    key: TrackKey,
    ev_tx: mpsc::UnboundedSender<Ev>,
    metrics: Arc<PeerMetrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // poll() returns None until bound: wait for bind by retrying.
        loop {
            match local.poll().await {
                Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                    let mut keyframe = false;
                    for pkt in &pkts {
                        let any = pkt.as_any();
                        if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                            metrics.on_reception_reports(&rr.reports);
                        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                            metrics.on_reception_reports(&sr.reports);
                        } else if crate::keyframe::is_keyframe_request(pkt.as_ref()) {
                            keyframe = true;
                        }
                    }
                    if keyframe {
                        let _ = ev_tx.send(Ev::KeyframeRequest(key.clone()));
                    }
                }
                Some(_) => {}
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
}

/// Learns the payload type each new subscription was given on `p`'s
/// connection (known once the subscriber has answered); returns the tracks
/// resolved by this call.
pub(super) async fn resolve_payload_types(p: &Peer) -> Vec<TrackKey> {
    let mut resolved = Vec::new();
    for (key, sub) in &p.subs {
        if sub.sink.pt.get().is_some() {
            continue;
        }
        let Ok(params) = sub.sender.get_parameters().await else {
            continue;
        };
        // Same codec and parameters (H.264 comes in several profiles and
        // packetization modes, each its own payload type), else same codec.
        let codecs = &params.rtp_parameters.codecs;
        let same_mime = |c: &&RTCRtpCodecParameters| {
            c.rtp_codec
                .mime_type
                .eq_ignore_ascii_case(&sub.codec.mime_type)
        };
        if let Some(c) = codecs
            .iter()
            .filter(same_mime)
            .find(|c| c.rtp_codec.sdp_fmtp_line == sub.codec.sdp_fmtp_line)
            .or_else(|| codecs.iter().find(same_mime))
        {
            sub.sink.pt.set(c.payload_type);
            resolved.push(key.clone());
        }
    }
    resolved
}

/// The reader of one published track: counts what arrives and writes each
/// packet to every subscriber at once.
async fn read_and_forward(
    track: Arc<dyn TrackRemote>,
    sinks: Sinks,
    room: Arc<RoomMetrics>,
    publisher: Arc<PeerMetrics>,
) {
    let mut highest: Option<u16> = None;
    while let Some(ev) = track.poll().await {
        let pkt = match ev {
            TrackRemoteEvent::OnRtpPacket(p) => p,
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => continue,
        };
        room.rtp_in.fetch_add(1, Ordering::Relaxed);
        publisher.rtp_in.fetch_add(1, Ordering::Relaxed);
        publisher
            .bytes_in
            .fetch_add(pkt.payload.len() as u64, Ordering::Relaxed);
        let seq = pkt.header.sequence_number;
        match highest {
            None => highest = Some(seq),
            Some(h) => {
                let delta = seq.wrapping_sub(h);
                if delta != 0 && delta < 0x8000 {
                    // ahead: a jump of k means k - 1 missing (a late packet is not counted again)
                    publisher
                        .lost_in
                        .fetch_add(u64::from(delta - 1), Ordering::Relaxed);
                    highest = Some(seq);
                }
            }
        }
        let sinks = sinks.lock().unwrap_or_else(PoisonError::into_inner);
        for sink in sinks.iter() {
            forward(sink, &pkt, &room);
        }
    }
}

/// Writes one packet to one subscriber without waiting: the subscriber's SSRC
/// and payload type, no header extensions (their ids are not negotiated on
/// this leg). A full queue drops the packet for this subscriber only.
fn forward(sink: &Sink, pkt: &rtp::Packet, room: &RoomMetrics) {
    let Some(pt) = sink.pt.get() else {
        return; // not negotiated yet
    };
    let out = rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            padding: pkt.header.padding,
            marker: pkt.header.marker,
            payload_type: pt,
            sequence_number: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            ssrc: sink.ssrc,
            csrc: pkt.header.csrc.clone(),
            ..Default::default()
        },
        payload: pkt.payload.clone(),
    };
    let bytes = out.payload.len() as u64;
    // One poll: Ready unless the connection's queue is full. `unconstrained`
    // keeps tokio's cooperative budget from failing sends that are ready
    // (one packet fans out to more subscribers than the budget's 128).
    match tokio::task::unconstrained(sink.local.write_rtp(out)).now_or_never() {
        Some(Ok(())) => {
            room.rtp_out.fetch_add(1, Ordering::Relaxed);
            sink.metrics.rtp_out.fetch_add(1, Ordering::Relaxed);
            sink.metrics.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
        Some(Err(_)) => {
            room.rtp_write_err.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            room.rtp_dropped_slow.fetch_add(1, Ordering::Relaxed);
            sink.metrics.dropped_out.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A subscriber's copy of `publisher`'s track `track` (both engines): in
/// `stream` (the publisher's peer id, `~screen` for its screen), with a
/// track id unique per room, the publisher's codec, sent on `ssrc`.
pub(crate) fn forwarded_track(
    stream: &str,
    publisher: &PeerId,
    track: &str,
    kind: RtpCodecKind,
    codec: &RTCRtpCodec,
    ssrc: u32,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream.to_owned(),
        format!("{publisher}-{track}"),
        track.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        }],
    )
}

/// An SSRC for a subscriber's copy of a track: odd, so never 0.
pub(crate) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() as u32) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_type_is_unknown_until_set() {
        let pt = NegotiatedPt::unknown();
        assert_eq!(pt.get(), None);
        pt.set(96);
        assert_eq!(pt.get(), Some(96));
        pt.set(0);
        assert_eq!(pt.get(), Some(0));
    }
}
