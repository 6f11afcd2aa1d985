//! `getStats` of one connection, read into plain numbers for the tiles
//! and the quality indicator.

use std::collections::HashMap;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use crate::js::{get, get_f64, get_str};

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

impl Stats {
    /// Reads a `getStats` report.
    pub async fn read(pc: &RtcPeerConnection) -> Stats {
        let mut out = Stats::default();
        let Ok(report) = JsFuture::from(pc.get_stats()).await else {
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
}

/// Each received audio track's `totalAudioEnergy` and
/// `totalSamplesDuration` (seconds): their changes between two reads give
/// the track's mean level over that time, short sounds included.
pub async fn audio_energy(pc: &RtcPeerConnection) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    let Ok(report) = JsFuture::from(pc.get_stats()).await else {
        return out;
    };
    let report: js_sys::Map = report.unchecked_into();
    report.for_each(&mut |v, _| {
        if get_str(&v, "type").as_deref() == Some("inbound-rtp")
            && get_str(&v, "kind").as_deref() == Some("audio")
        {
            out.push((
                get_str(&v, "trackIdentifier").unwrap_or_default(),
                get_f64(&v, "totalAudioEnergy").unwrap_or_default(),
                get_f64(&v, "totalSamplesDuration").unwrap_or_default(),
            ));
        }
    });
    out
}
