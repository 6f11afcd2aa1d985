//! Building one peer connection, and the callbacks that feed the room.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use protocol::IceCandidate;
use rtc::interceptor::Slot;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceCandidateType, RTCPeerConnectionIceEvent,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::SfuError;
use crate::keyframe::KeyframeRequestForwarder;

/// Build a PeerConnection bound to `ip:port` with mDNS off and the keyframe-request forwarder.
pub async fn build_pc(
    ip: IpAddr,
    port: u16,
    nat_1to1_ip: Option<String>,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, SfuError> {
    let mut me = MediaEngine::default();
    me.register_default_codecs()
        .map_err(SfuError::webrtc("codecs"))?;
    let registry = register_default_interceptors(Registry::new(), &mut me)
        .map_err(SfuError::webrtc("interceptors"))?;
    let registry = registry.with(Slot::from(14_000), KeyframeRequestForwarder::default());
    let mut se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true);
    if let Some(nat) = nat_1to1_ip {
        se = se.with_nat_1to1_ips(vec![nat], RTCIceCandidateType::Host);
    }
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_setting_engine(se.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![SocketAddr::new(ip, port)])
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
