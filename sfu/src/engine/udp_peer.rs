//! A browser stand-in for the shard's tests and benchmark: one `rtc` peer
//! connection on a UDP socket of its own, polled by its owner.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

pub const VP8: &str = "video/VP8";
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// A VP8 video track sending on `ssrc`.
pub fn video_track(name: &str, ssrc: u32) -> MediaStreamTrack {
    MediaStreamTrack::new(
        format!("{name}-stream"),
        format!("{name}-track"),
        name.to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: VP8.to_owned(),
                clock_rate: 90_000,
                ..Default::default()
            },
            ..Default::default()
        }],
    )
}

/// The payload type `sender`'s codec `mime` was given in the negotiation.
pub fn payload_type(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId, mime: &str) -> Option<u8> {
    let mut s = pc.rtp_sender(sender)?;
    s.get_parameters()
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

/// An `rtc` connection with the default codecs and interceptors, speaking
/// from `addr` (its one host candidate, already added), with these ICE
/// credentials when given.
pub fn connection_at(
    addr: SocketAddr,
    credentials: Option<(String, String)>,
) -> Result<RTCPeerConnection, Error> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?
        // Keyframe requests (and reports) reach `poll_read`: the shard relays them.
        .with(Slot::from(14_000), crate::keyframe_request_forwarder());
    let mut settings = SettingEngineBuilder::new();
    if let Some((ufrag, pwd)) = credentials {
        settings = settings.with_ice_credentials(ufrag, pwd);
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(Instant::now())?;
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
    Ok(pc)
}

fn io_error(e: io::Error) -> Error {
    Error::Other(e.to_string())
}

pub struct UdpPeer {
    pub pc: RTCPeerConnection,
    sock: UdpSocket,
    addr: SocketAddr,
    buf: Vec<u8>,
    pub state: RTCPeerConnectionState,
    /// Every RTP packet read, in order, when asked to keep them.
    pub rtp: Vec<rtp::Packet>,
    keep: bool,
    /// RTP packets read.
    pub received: u64,
    /// Per SSRC received: packets read, and the highest sequence number
    /// (wrapping), for the loss count.
    pub streams: HashMap<u32, (u64, u16)>,
    /// Sequence numbers skipped (lost on the way), counted as they show.
    pub gaps: u64,
    /// Keyframe requests (PLI, FIR) read: what a publisher is asked.
    pub keyframe_requests: u64,
    /// The streams received, as they opened: (receiver, SSRC).
    pub opened: Vec<(RTCRtpReceiverId, u32)>,
}

impl UdpPeer {
    /// A connection on a fresh 127.0.0.1 socket, its one host candidate
    /// added (so its offer or answer carries it). `keep`: keep every packet
    /// read in [`UdpPeer::rtp`] (else only counted).
    pub fn new(keep: bool) -> Result<Self, Error> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(io_error)?;
        sock.set_nonblocking(true).map_err(io_error)?;
        let addr = sock.local_addr().map_err(io_error)?;
        let pc = connection_at(addr, None)?;
        Ok(Self {
            pc,
            sock,
            addr,
            buf: vec![0; 2048],
            state: RTCPeerConnectionState::New,
            rtp: Vec::new(),
            keep,
            received: 0,
            streams: HashMap::new(),
            gaps: 0,
            keyframe_requests: 0,
            opened: Vec::new(),
        })
    }

    /// A peer that will send one VP8 track on `ssrc`; and its sender.
    pub fn publisher(ssrc: u32, keep: bool) -> Result<(Self, RTCRtpSenderId), Error> {
        let mut p = Self::new(keep)?;
        let sender = p.pc.add_track(video_track("camera", ssrc))?;
        Ok((p, sender))
    }

    /// A peer that will send one VP8 track in simulcast: a layer per
    /// `(rid, ssrc)`, lowest first; and its sender.
    pub fn simulcast_publisher(
        layers: &[(&str, u32)],
        keep: bool,
    ) -> Result<(Self, RTCRtpSenderId), Error> {
        let mut p = Self::new(keep)?;
        let codings = layers
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: (*rid).to_owned(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: VP8.to_owned(),
                    clock_rate: 90_000,
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new(
            "camera-stream".to_owned(),
            "camera-track".to_owned(),
            "camera".to_owned(),
            RtpCodecKind::Video,
            codings,
        );
        let sender = p.pc.add_track(track)?;
        Ok((p, sender))
    }

    /// Sends a packet of simulcast layer `rid` with the mid and rid header
    /// extensions a receiver tells the layers apart by.
    pub fn send_layer(
        &mut self,
        sender: RTCRtpSenderId,
        rid: &str,
        header: (u8, u32, u16, u32),
        payload: &Bytes,
    ) -> Result<(), Error> {
        let mid = self
            .pc
            .local_description()
            .and_then(|d| {
                d.sdp
                    .lines()
                    .find_map(|l| l.strip_prefix("a=mid:").map(|m| m.trim().to_owned()))
            })
            .ok_or_else(|| Error::Other("no mid".to_owned()))?;
        let mut s = self
            .pc
            .rtp_sender(sender)
            .ok_or_else(|| Error::Other("no such sender".to_owned()))?;
        let ext_id = |uri: &str, s: &mut rtc::rtp_transceiver::rtp_sender::RTCRtpSender<'_>| {
            s.get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
        };
        let (Some(mid_id), Some(rid_id)) = (ext_id(MID_URI, &mut s), ext_id(RID_URI, &mut s))
        else {
            return Err(Error::Other(
                "mid/rid header extensions not negotiated".to_owned(),
            ));
        };
        let (pt, ssrc, seq, ts) = header;
        let mut h = rtp::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        };
        h.set_extension(mid_id, Bytes::from(mid))?;
        h.set_extension(rid_id, Bytes::from(rid.to_owned()))?;
        s.write_rtp(
            Instant::now(),
            rtp::Packet {
                header: h,
                payload: payload.clone(),
            },
        )
    }

    /// A peer that will receive one video track.
    pub fn receiver(keep: bool) -> Result<Self, Error> {
        let mut p = Self::new(keep)?;
        p.pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
        Ok(p)
    }

    /// Sends one VP8 RTP packet on `sender` (which sends on `ssrc`, with
    /// payload type `pt`).
    pub fn send(
        &mut self,
        sender: RTCRtpSenderId,
        header: (u8, u32, u16, u32),
        payload: &Bytes,
    ) -> Result<(), Error> {
        let (pt, ssrc, seq, ts) = header;
        let pkt = rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        self.pc
            .rtp_sender(sender)
            .ok_or_else(|| Error::Other("no such sender".to_owned()))?
            .write_rtp(Instant::now(), pkt)
    }

    /// Asks for a keyframe of the first stream received (a PLI, as a
    /// browser's decoder does after loss).
    pub fn request_keyframe(&mut self) -> Result<(), Error> {
        let (receiver, ssrc) = *self
            .opened
            .first()
            .ok_or_else(|| Error::Other("nothing received yet".to_owned()))?;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        self.pc
            .rtp_receiver(receiver)
            .ok_or_else(|| Error::Other("no such receiver".to_owned()))?
            .write_rtcp(Instant::now(), vec![Box::new(pli)])
    }

    /// Reports `fraction_lost` (of 256) of the first stream received, in a
    /// receiver report (what a browser on a lossy link sends).
    pub fn report_loss(&mut self, fraction_lost: u8) -> Result<(), Error> {
        let (receiver, ssrc) = *self
            .opened
            .first()
            .ok_or_else(|| Error::Other("nothing received yet".to_owned()))?;
        let rr = ReceiverReport {
            reports: vec![ReceptionReport {
                ssrc,
                fraction_lost,
                ..Default::default()
            }],
            ..Default::default()
        };
        self.pc
            .rtp_receiver(receiver)
            .ok_or_else(|| Error::Other("no such receiver".to_owned()))?
            .write_rtcp(Instant::now(), vec![Box::new(rr)])
    }

    /// Applies the other side's offer and returns our answer.
    pub fn answer(&mut self, offer: RTCSessionDescription) -> Result<RTCSessionDescription, Error> {
        self.pc.set_remote_description(Instant::now(), offer)?;
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(Instant::now(), answer)?;
        self.pc
            .local_description()
            .ok_or_else(|| Error::Other("no local answer".to_owned()))
    }

    /// Packets read of the stream `ssrc`.
    pub fn received_of(&self, ssrc: u32) -> u64 {
        self.streams.get(&ssrc).map_or(0, |s| s.0)
    }

    /// Creates and sets our offer; returns it for the other side.
    pub fn offer(&mut self) -> Result<RTCSessionDescription, Error> {
        let offer = self.pc.create_offer(None)?;
        self.pc.set_local_description(Instant::now(), offer)?;
        self.pc
            .local_description()
            .ok_or_else(|| Error::Other("no local offer".to_owned()))
    }

    pub fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    pub fn failed(&self) -> bool {
        self.state == RTCPeerConnectionState::Failed
    }

    /// Reads what waits on the socket, runs due timers, takes events and
    /// RTP, and sends what the connection has to send.
    pub fn poll(&mut self, now: Instant) {
        while let Ok((n, from)) = self.sock.recv_from(&mut self.buf) {
            let _ = self.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.addr,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&self.buf[..n]),
            });
        }
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => self.state = s,
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.opened.push((init.receiver_id, init.ssrc));
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtcpPacket(_, pkts) = &message {
                let asks = pkts
                    .iter()
                    .filter(|p| crate::is_keyframe_request(p.as_ref()));
                self.keyframe_requests += asks.count() as u64;
            }
            if let RTCMessage::RtpPacket(_, p) = message {
                let seq = p.header.sequence_number;
                match self.streams.get_mut(&p.header.ssrc) {
                    Some((n, last)) => {
                        *n += 1;
                        let ahead = seq.wrapping_sub(*last);
                        if ahead > 0 && ahead < 0x8000 {
                            self.gaps += u64::from(ahead - 1);
                            *last = seq;
                        }
                    }
                    None => {
                        self.streams.insert(p.header.ssrc, (1, seq));
                    }
                }
                self.received += 1;
                if self.keep {
                    self.rtp.push(p);
                }
            }
        }
        while let Some(out) = self.pc.poll_write() {
            let _ = self.sock.send_to(&out.message, out.transport.peer_addr);
        }
    }
}
