//! Building one peer connection, and the callbacks that feed the room.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use protocol::{IceCandidate, SignalData};
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::Slot;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceCandidateType, RTCPeerConnectionIceEvent,
    RTCSessionDescription, Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::error::SfuError;
use crate::keyframe::keyframe_request_forwarder;

/// Which transports a peer connection offers for ICE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transports {
    /// UDP only (the default).
    #[default]
    Udp,
    /// UDP, plus ICE-TCP (RFC 4571 framing) on the same port number, for
    /// networks that block UDP. Passive on the SFU: the browser dials in.
    UdpAndTcp,
    /// TCP only (a test client behind a "firewall" that blocks UDP).
    TcpOnly,
}

/// Where and how one peer connection listens.
#[derive(Clone, Debug)]
pub struct PcOptions {
    pub ip: IpAddr,
    /// 0: an ephemeral port.
    pub port: u16,
    /// Public address announced instead of `ip` (1:1 NAT).
    pub nat_1to1_ip: Option<String>,
    pub transports: Transports,
}

impl PcOptions {
    /// UDP on `ip`, any port: a test or bot client.
    pub fn client(ip: IpAddr) -> Self {
        Self {
            ip,
            port: 0,
            nat_1to1_ip: None,
            transports: Transports::Udp,
        }
    }
}

/// Build a PeerConnection with mDNS off and the keyframe-request forwarder;
/// `customize` may add interceptors of its own (tests use it to drop packets).
pub async fn build_pc(
    opts: &PcOptions,
    handler: Arc<dyn PeerConnectionEventHandler>,
    customize: impl FnOnce(Registry) -> Registry,
) -> Result<Arc<dyn PeerConnection>, SfuError> {
    let mut me = MediaEngine::default();
    me.register_default_codecs()
        .map_err(SfuError::webrtc("codecs"))?;
    let registry = register_default_interceptors(Registry::new(), &mut me)
        .map_err(SfuError::webrtc("interceptors"))?;
    let registry = customize(registry.with(Slot::from(14_000), keyframe_request_forwarder()));
    let mut se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true);
    if let Some(nat) = opts.nat_1to1_ip.clone() {
        se = se.with_nat_1to1_ips(vec![nat], RTCIceCandidateType::Host);
    }
    let addr = SocketAddr::new(opts.ip, opts.port);
    let (udp, tcp) = match opts.transports {
        Transports::Udp => (vec![addr], vec![]),
        Transports::UdpAndTcp => (vec![addr], vec![addr]),
        Transports::TcpOnly => {
            se = se.with_network_types(vec![NetworkType::Tcp4, NetworkType::Tcp6]);
            (vec![], vec![addr])
        }
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_setting_engine(se.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(udp)
        .with_tcp_addrs(tcp)
        .build()
        .await
        .map_err(SfuError::webrtc("peer connection"))?;
    Ok(Arc::new(pc))
}

/// RTCIceCandidate -> browser RTCIceCandidateInit. `to_json()` yields sdpMid:"" which a browser
/// rejects (no m-line with mid ""), so send sdpMid:null, sdpMLineIndex:0 (BUNDLE: one transport).
pub fn candidate_to_wire(ev: &RTCPeerConnectionIceEvent) -> Option<IceCandidate> {
    let init = ev.candidate.to_json().ok()?;
    Some(IceCandidate {
        candidate: init.candidate,
        sdp_mid: None,
        sdp_m_line_index: Some(0),
        username_fragment: None,
    })
}

/// A browser's `RTCIceCandidateInit` as webrtc-rs takes it.
pub fn candidate_from_wire(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

/// What [`apply_as_polite`] did with one signal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The SDP of the offer that was answered, if the signal was an offer.
    pub offer: Option<String>,
    /// Our own pending offer was rolled back for it (glare).
    pub rolled_back: bool,
}

/// The polite side of perfect negotiation, for a webrtc-rs client of the
/// SFU (the tests' clients and the load bots): applies one signal from
/// `"sfu"`; answers an offer, rolling back a colliding offer of our own and
/// offering again afterwards, as a browser's `negotiationneeded` would;
/// keeps candidates in `pending` until there is a remote description.
/// Replies go to `reply`.
pub async fn apply_as_polite(
    pc: &Arc<dyn PeerConnection>,
    pending: &mut Vec<RTCIceCandidateInit>,
    s: SignalData,
    reply: &tokio::sync::mpsc::UnboundedSender<SignalData>,
) -> Result<Applied, SfuError> {
    let mut applied = Applied::default();
    match s {
        SignalData::Offer { sdp } => {
            applied.rolled_back = pc.pending_local_description().await.is_some();
            if applied.rolled_back {
                let rollback =
                    RTCSessionDescription::rollback(None).map_err(SfuError::webrtc("rollback"))?;
                pc.set_local_description(rollback)
                    .await
                    .map_err(SfuError::webrtc("rollback"))?;
            }
            let offer =
                RTCSessionDescription::offer(sdp.clone()).map_err(SfuError::webrtc("offer"))?;
            pc.set_remote_description(offer)
                .await
                .map_err(SfuError::webrtc("apply offer"))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(SfuError::webrtc("create answer"))?;
            pc.set_local_description(answer.clone())
                .await
                .map_err(SfuError::webrtc("set answer"))?;
            let _ = reply.send(SignalData::Answer { sdp: answer.sdp });
            if applied.rolled_back {
                let offer = pc
                    .create_offer(None)
                    .await
                    .map_err(SfuError::webrtc("create offer"))?;
                pc.set_local_description(offer.clone())
                    .await
                    .map_err(SfuError::webrtc("set offer"))?;
                let _ = reply.send(SignalData::Offer { sdp: offer.sdp });
            }
            applied.offer = Some(sdp);
        }
        SignalData::Answer { sdp } => {
            let answer = RTCSessionDescription::answer(sdp).map_err(SfuError::webrtc("answer"))?;
            pc.set_remote_description(answer)
                .await
                .map_err(SfuError::webrtc("apply answer"))?;
        }
        SignalData::Candidate { candidate: Some(c) } => {
            if pc.remote_description().await.is_none() {
                pending.push(candidate_from_wire(c));
            } else {
                pc.add_ice_candidate(candidate_from_wire(c))
                    .await
                    .map_err(SfuError::webrtc("candidate"))?;
            }
        }
        SignalData::Candidate { candidate: None } | SignalData::Bye => {}
    }
    if pc.remote_description().await.is_some() {
        for c in pending.drain(..) {
            pc.add_ice_candidate(c)
                .await
                .map_err(SfuError::webrtc("candidate"))?;
        }
    }
    Ok(applied)
}
