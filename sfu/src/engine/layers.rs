//! Simulcast for one subscription: which of a publisher's layers the
//! subscriber gets, switched only at a keyframe of the new layer, with
//! sequence numbers, timestamps and (VP8) picture ids rewritten so that the
//! subscriber's decoder sees one clean stream (docs/sfu-engine.md). Pure
//! logic: the shard feeds it packets and writes what it returns.

use bytes::{Bytes, BytesMut};

/// What the switch needs of a VP8 payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8 {
    /// The first packet of a frame (S bit, partition 0).
    pub start: bool,
    /// The frame is a keyframe (only known on a frame's first packet).
    pub keyframe: bool,
    /// Picture id: value, 15 bits wide (else 7), its byte offset.
    pub picture_id: Option<(u16, bool, usize)>,
    /// TL0PICIDX and its byte offset.
    pub tl0: Option<(u8, usize)>,
    /// Where the VP8 payload (its frame tag) starts.
    pub payload_at: usize,
}

/// Reads a VP8 payload descriptor; `None` when it is truncated.
pub fn parse_vp8(p: &[u8]) -> Option<Vp8> {
    let b0 = *p.first()?;
    let x = b0 & 0x80 != 0;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut at = 1;
    let (mut picture_id, mut tl0) = (None, None);
    if x {
        let b1 = *p.get(at)?;
        at += 1;
        let (i, l, t, k) = (
            b1 & 0x80 != 0,
            b1 & 0x40 != 0,
            b1 & 0x20 != 0,
            b1 & 0x10 != 0,
        );
        if i {
            let m = *p.get(at)?;
            if m & 0x80 != 0 {
                let lo = *p.get(at + 1)?;
                picture_id = Some(((u16::from(m & 0x7f) << 8) | u16::from(lo), true, at));
                at += 2;
            } else {
                picture_id = Some((u16::from(m), false, at));
                at += 1;
            }
        }
        if l {
            tl0 = Some((*p.get(at)?, at));
            at += 1;
        }
        if t || k {
            at += 1;
        }
    }
    // The VP8 payload header's P bit (0: keyframe), on a frame's first packet.
    let keyframe = start && p.get(at).is_some_and(|h| h & 0x01 == 0);
    Some(Vp8 {
        start,
        keyframe,
        picture_id,
        tl0,
        payload_at: at,
    })
}

/// The frame height a VP8 keyframe's first packet declares (RFC 6386
/// §9.1: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and
/// height, little endian); `None` for anything else.
pub fn vp8_keyframe_height(p: &[u8]) -> Option<u16> {
    let v = parse_vp8(p)?;
    if !v.keyframe {
        return None;
    }
    let h = p.get(v.payload_at..v.payload_at + 10)?;
    (h[3..6] == [0x9d, 0x01, 0x2a]).then(|| u16::from_le_bytes([h[8], h[9]]) & 0x3fff)
}

/// Whether an H.264 RTP payload starts a keyframe: an IDR slice (type 5),
/// or SPS (7) in a single NAL, a STAP-A or the start of a FU-A.
pub fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&h) = p.first() else { return false };
    match h & 0x1f {
        5 | 7 => true,
        // STAP-A: 2-byte sizes, then NAL units.
        24 => {
            let mut at = 1;
            while let (Some(&a), Some(&b)) = (p.get(at), p.get(at + 1)) {
                let size = usize::from(u16::from_be_bytes([a, b]));
                if p.get(at + 2).is_some_and(|n| matches!(n & 0x1f, 5 | 7)) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        // FU-A: start bit and the fragmented NAL's type.
        28 => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1f, 5 | 7)),
        _ => false,
    }
}

/// The codec of the layers, for keyframes and picture ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    H264,
}

/// One packet as the subscriber gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub seq: u16,
    pub timestamp: u32,
    /// The payload: shared when nothing in it changed, else a rewritten copy.
    pub payload: Bytes,
}

/// Timestamp step put between the last frame of one layer and the first of
/// the next (one frame at 30 fps on a 90 kHz clock): the switch is one
/// frame later, whatever the layers' own clocks.
const SWITCH_TS_STEP: u32 = 3_000;

/// How far behind the newest packet a packet may be and still go out.
const SEQ_WINDOW: u16 = 0x4000;

/// The offsets that map one layer onto the subscriber's stream.
#[derive(Debug, Clone, Copy, Default)]
struct Map {
    seq: u16,
    ts: u32,
    pic: u16,
    tl0: u8,
    /// The oldest input sequence number of this layer still forwarded:
    /// anything older is from before the switch (or far out of date) and is
    /// dropped. Set at the switch (unset: taken from the next packet), then
    /// kept [`SEQ_WINDOW`] behind the newest, so that it never falls half
    /// the sequence space behind and turns every packet into "older".
    first_seq: Option<u16>,
}

/// The numbering of the newest packet a subscriber got: sequence number,
/// timestamp, VP8 picture id and TL0PICIDX (0 for what has none).
pub type Sent = (u16, u32, u16, u8);

/// `next` if it is newer than `last` (by sequence number), else `last`.
pub fn newest(last: Option<Sent>, next: Sent) -> Sent {
    match last {
        Some(l) if next.0.wrapping_sub(l.0).wrapping_sub(1) >= 0x8000 => l,
        _ => next,
    }
}

/// The picture id and TL0PICIDX of a VP8 payload (0 for what it lacks).
pub fn vp8_ids(p: &[u8]) -> (u16, u8) {
    parse_vp8(p).map_or((0, 0), |v| {
        (v.picture_id.map_or(0, |p| p.0), v.tl0.map_or(0, |t| t.0))
    })
}

/// One subscription's layer choice and rewriting.
#[derive(Debug)]
pub struct LayerSwitch {
    codec: Codec,
    target: usize,
    current: Option<usize>,
    map: Map,
    /// The last values the subscriber got.
    last: Option<Sent>,
}

impl LayerSwitch {
    pub fn new(codec: Codec, target: usize) -> Self {
        Self {
            codec,
            target,
            current: None,
            map: Map::default(),
            last: None,
        }
    }

    /// A switch for a subscription that has been getting `layer` as it came
    /// (its stream turned out to be simulcast when a second layer opened),
    /// `last` the newest packet it got: that layer goes on unchanged, no
    /// keyframe awaited, and the next layer follows on from `last`.
    pub fn continuing(codec: Codec, target: usize, layer: usize, last: Option<Sent>) -> Self {
        Self {
            codec,
            target,
            current: Some(layer),
            map: Map::default(),
            last,
        }
    }

    /// `layer` started again with another SSRC (its numbering too): if it
    /// is the one forwarded, it is taken again at its next keyframe,
    /// following on from what the subscriber got.
    pub fn restart(&mut self, layer: usize) {
        if self.current == Some(layer) {
            self.current = None;
        }
    }

    /// The layer the subscriber should get; taken at its next keyframe.
    pub fn set_target(&mut self, layer: usize) {
        self.target = layer;
    }

    /// The layer being forwarded (none before the first keyframe).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Whether a keyframe of the target layer is awaited (a reason to ask
    /// the publisher for one).
    pub fn wants_keyframe(&self) -> bool {
        self.current != Some(self.target)
    }

    /// A packet of `layer`: what the subscriber gets of it, if anything.
    pub fn on_packet(&mut self, layer: usize, seq: u16, ts: u32, payload: &Bytes) -> Option<Out> {
        let vp8 = match self.codec {
            Codec::Vp8 => parse_vp8(payload),
            Codec::H264 => None,
        };
        let keyframe = match self.codec {
            Codec::Vp8 => vp8.is_some_and(|v| v.keyframe),
            Codec::H264 => h264_keyframe(payload),
        };
        if layer == self.target && self.current != Some(layer) {
            if !keyframe {
                // The old layer goes on (its own packets) until this one can start.
                return None;
            }
            self.switch(layer, seq, ts, vp8);
        }
        self.forward(layer, seq, ts, payload, vp8)
    }

    /// Maps `layer` so that its packet `seq`/`ts` follow what the
    /// subscriber got last.
    fn switch(&mut self, layer: usize, seq: u16, ts: u32, vp8: Option<Vp8>) {
        let (pic, tl0) = vp8.map_or((0, 0), |v| {
            (v.picture_id.map_or(0, |p| p.0), v.tl0.map_or(0, |t| t.0))
        });
        self.map = match self.last {
            None => Map {
                first_seq: Some(seq),
                ..Map::default()
            },
            Some((last_seq, last_ts, last_pic, last_tl0)) => Map {
                seq: last_seq.wrapping_add(1).wrapping_sub(seq),
                ts: last_ts.wrapping_add(SWITCH_TS_STEP).wrapping_sub(ts),
                pic: last_pic.wrapping_add(1).wrapping_sub(pic),
                tl0: last_tl0.wrapping_add(1).wrapping_sub(tl0),
                first_seq: Some(seq),
            },
        };
        self.current = Some(layer);
    }

    fn forward(
        &mut self,
        layer: usize,
        seq: u16,
        ts: u32,
        payload: &Bytes,
        vp8: Option<Vp8>,
    ) -> Option<Out> {
        if self.current != Some(layer) {
            return None;
        }
        let first = *self.map.first_seq.get_or_insert(seq);
        let ahead = seq.wrapping_sub(first);
        if ahead >= 0x8000 {
            return None;
        }
        if ahead > SEQ_WINDOW {
            self.map.first_seq = Some(seq.wrapping_sub(SEQ_WINDOW));
        }
        let out_seq = seq.wrapping_add(self.map.seq);
        let out_ts = ts.wrapping_add(self.map.ts);
        let mut pic_out = 0;
        let mut tl0_out = 0;
        let mut rewritten: Option<BytesMut> = None;
        if let Some(v) = vp8 {
            if let Some((pic, wide, at)) = v.picture_id {
                pic_out = pic.wrapping_add(self.map.pic) & if wide { 0x7fff } else { 0x7f };
                if pic_out != pic {
                    let b = rewritten.get_or_insert_with(|| BytesMut::from(&payload[..]));
                    if wide {
                        b[at] = 0x80 | ((pic_out >> 8) as u8 & 0x7f);
                        b[at + 1] = (pic_out & 0xff) as u8;
                    } else {
                        b[at] = (pic_out & 0x7f) as u8;
                    }
                }
            }
            if let Some((tl0, at)) = v.tl0 {
                tl0_out = tl0.wrapping_add(self.map.tl0);
                if tl0_out != tl0 {
                    rewritten.get_or_insert_with(|| BytesMut::from(&payload[..]))[at] = tl0_out;
                }
            }
        }
        // Newer than what the subscriber has: the point the next switch follows.
        self.last = Some(newest(self.last, (out_seq, out_ts, pic_out, tl0_out)));
        Some(Out {
            seq: out_seq,
            timestamp: out_ts,
            payload: rewritten.map_or_else(|| payload.clone(), BytesMut::freeze),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-packet VP8 frame: descriptor with a 15-bit picture id and
    /// TL0PICIDX, then the payload header (P bit clear on a keyframe).
    fn vp8(pic: u16, tl0: u8, keyframe: bool) -> Bytes {
        Bytes::from(vec![
            0x90,                               // X, S, PID 0
            0xc0,                               // I, L
            0x80 | (pic >> 8) as u8,            // M + picture id high bits
            (pic & 0xff) as u8,                 // picture id low bits
            tl0,                                // TL0PICIDX
            if keyframe { 0x00 } else { 0x01 }, // P bit
            0xaa,
            0xbb,
        ])
    }

    fn pic_of(p: &Bytes) -> u16 {
        parse_vp8(p)
            .and_then(|v| v.picture_id)
            .map(|p| p.0)
            .unwrap_or(u16::MAX)
    }

    #[test]
    fn descriptors_are_read() {
        let v = parse_vp8(&vp8(0x1234, 7, true)).expect("parsed");
        assert!(v.start && v.keyframe);
        assert_eq!(v.picture_id, Some((0x1234, true, 2)));
        assert_eq!(v.tl0, Some((7, 4)));
        // 7-bit picture id, no TL0PICIDX, a delta frame.
        let short = [0x90, 0x80, 0x05, 0x01, 0];
        let v = parse_vp8(&short).expect("parsed");
        assert_eq!(v.picture_id, Some((5, false, 2)));
        assert!(!v.keyframe);
        // Not a frame's first packet: never a keyframe.
        let cont = [0x80, 0x80, 0x05, 0x00];
        assert!(!parse_vp8(&cont).expect("parsed").keyframe);
        assert_eq!(parse_vp8(&[0x90, 0xc0, 0x80]), None, "truncated");
    }

    #[test]
    fn a_keyframe_tells_its_height() {
        // Descriptor (X, S; I with a 15-bit picture id), frame tag (keyframe),
        // start code, 640 x 480.
        let mut p = vec![0x90, 0x80, 0x80, 0x01, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a];
        p.extend_from_slice(&640u16.to_le_bytes());
        p.extend_from_slice(&480u16.to_le_bytes());
        assert_eq!(vp8_keyframe_height(&p), Some(480));
        p[4] |= 0x01; // a delta frame
        assert_eq!(vp8_keyframe_height(&p), None);
        assert_eq!(vp8_keyframe_height(&p[..8]), None, "truncated");
    }

    #[test]
    fn h264_keyframes_in_every_packetization() {
        assert!(h264_keyframe(&[0x65, 0x88]));
        assert!(!h264_keyframe(&[0x41, 0x9a]));
        // STAP-A with SPS, PPS.
        assert!(h264_keyframe(&[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]));
        // FU-A start of an IDR, and its continuation.
        assert!(h264_keyframe(&[0x7c, 0x85, 0x88]));
        assert!(!h264_keyframe(&[0x7c, 0x05, 0x88]));
        assert!(!h264_keyframe(&[]));
    }

    #[test]
    fn nothing_goes_out_before_a_keyframe_of_the_target() {
        let mut s = LayerSwitch::new(Codec::Vp8, 1);
        assert_eq!(s.on_packet(1, 10, 900, &vp8(1, 0, false)), None);
        assert_eq!(
            s.on_packet(0, 50, 100, &vp8(9, 0, true)),
            None,
            "not the target layer"
        );
        let first = s
            .on_packet(1, 11, 3900, &vp8(2, 0, true))
            .expect("keyframe starts it");
        assert_eq!(
            (first.seq, first.timestamp),
            (11, 3900),
            "the first layer passes as is"
        );
        assert_eq!(s.current(), Some(1));
        let next = s
            .on_packet(1, 12, 6900, &vp8(3, 0, false))
            .expect("then every packet");
        assert_eq!(next.seq, 12);
        assert_eq!(pic_of(&next.payload), 3);
    }

    #[test]
    fn a_switch_waits_for_the_new_layers_keyframe_and_the_stream_stays_continuous() {
        let mut s = LayerSwitch::new(Codec::Vp8, 0);
        // Layer 0: seq 100.., ts 1000.., picture ids 40.., tl0 5.
        let mut got = Vec::new();
        got.push(s.on_packet(0, 100, 1000, &vp8(40, 5, true)).expect("start"));
        got.push(
            s.on_packet(0, 101, 4000, &vp8(41, 5, false))
                .expect("delta"),
        );
        // Up to layer 2 (its own numbering: seq 7000.., ts 555_000.., pic 900..).
        s.set_target(2);
        assert!(s.wants_keyframe());
        assert_eq!(
            s.on_packet(2, 7000, 555_000, &vp8(900, 60, false)),
            None,
            "no keyframe yet"
        );
        got.push(
            s.on_packet(0, 102, 7000, &vp8(42, 5, false))
                .expect("old layer until then"),
        );
        let switched = s
            .on_packet(2, 7001, 558_000, &vp8(901, 61, true))
            .expect("keyframe: switch");
        got.push(switched);
        assert!(!s.wants_keyframe());
        assert_eq!(
            s.on_packet(0, 103, 10_000, &vp8(43, 5, false)),
            None,
            "old layer dropped"
        );
        got.push(
            s.on_packet(2, 7002, 561_000, &vp8(902, 61, false))
                .expect("new layer"),
        );
        let seqs: Vec<u16> = got.iter().map(|o| o.seq).collect();
        assert_eq!(seqs, vec![100, 101, 102, 103, 104], "no gap, no jump");
        let pics: Vec<u16> = got.iter().map(|o| pic_of(&o.payload)).collect();
        assert_eq!(pics, vec![40, 41, 42, 43, 44], "picture ids continue");
        let ts: Vec<u32> = got.iter().map(|o| o.timestamp).collect();
        assert_eq!(
            ts,
            vec![1000, 4000, 7000, 10_000, 13_000],
            "one frame after the last"
        );
        let tl0 = parse_vp8(&got[3].payload).and_then(|v| v.tl0).map(|t| t.0);
        assert_eq!(tl0, Some(6), "TL0PICIDX goes on from the old layer's");
        // A late packet of the new layer from before the switch is dropped.
        assert_eq!(s.on_packet(2, 7000, 555_000, &vp8(900, 60, false)), None);
    }

    #[test]
    fn numbers_wrap_and_unchanged_payloads_are_shared() {
        let mut s = LayerSwitch::new(Codec::Vp8, 0);
        let a = s
            .on_packet(0, 65_535, u32::MAX - 100, &vp8(0x7fff, 255, true))
            .expect("start");
        let p = vp8(0, 0, false);
        let b = s.on_packet(0, 0, 2900, &p).expect("wrapped");
        assert_eq!((a.seq, b.seq), (65_535, 0));
        assert_eq!(
            b.payload.as_ptr(),
            p.as_ptr(),
            "offset 0: the payload is not copied"
        );
        // Switch to a layer whose numbers are behind: still forward.
        s.set_target(1);
        let c = s.on_packet(1, 10, 0, &vp8(5, 0, true)).expect("switch");
        assert_eq!(c.seq, 1);
        assert_eq!(pic_of(&c.payload), 1);
    }

    #[test]
    fn a_layer_goes_on_past_half_the_sequence_space_and_its_wrap() {
        let mut s = LayerSwitch::new(Codec::Vp8, 0);
        let start = 1000u16;
        let n = 140_000u32; // over twice the 16-bit sequence space
        let mut expect = start;
        for i in 0..n {
            let seq = start.wrapping_add(i as u16);
            let out = s
                .on_packet(0, seq, i * 3000, &vp8((i & 0x7fff) as u16, 0, i == 0))
                .unwrap_or_else(|| panic!("packet {i} (seq {seq}) dropped"));
            assert_eq!(out.seq, expect);
            expect = expect.wrapping_add(1);
        }
        // A packet far behind the newest is still refused.
        let stale = start.wrapping_add((n - 0x5000) as u16);
        assert_eq!(s.on_packet(0, stale, 0, &vp8(1, 0, false)), None);
        // A reordered one just behind goes out.
        let late = start.wrapping_add((n - 10) as u16);
        assert!(s.on_packet(0, late, 0, &vp8(1, 0, false)).is_some());
    }

    #[test]
    fn a_continuing_switch_passes_its_layer_unchanged_then_switches_continuously() {
        let mut s = LayerSwitch::continuing(Codec::Vp8, 0, 0, None);
        let a = s
            .on_packet(0, 500, 10, &vp8(7, 0, false))
            .expect("no keyframe needed");
        assert_eq!((a.seq, a.timestamp, pic_of(&a.payload)), (500, 10, 7));
        s.set_target(1);
        let b = s.on_packet(1, 9, 99, &vp8(300, 0, true)).expect("switch");
        assert_eq!((b.seq, pic_of(&b.payload)), (501, 8));
    }

    /// Found with Chrome: the top layer's first packet is a keyframe, so a
    /// subscription that had been getting the lowest layer as it came
    /// switched before any packet went through its new switch; the top
    /// layer then went out with its own numbers (a jump the browser's
    /// jitter buffer took for old packets: video frozen, a PLI a second).
    #[test]
    fn a_continuing_switch_follows_what_was_sent_before_it_existed() {
        let mut s = LayerSwitch::continuing(Codec::Vp8, 1, 0, Some((500, 10, 7, 3)));
        let b = s.on_packet(1, 9, 99, &vp8(300, 40, true)).expect("switch");
        assert_eq!(
            (b.seq, b.timestamp, pic_of(&b.payload)),
            (501, 10 + SWITCH_TS_STEP, 8)
        );
        assert_eq!(
            parse_vp8(&b.payload).and_then(|v| v.tl0).map(|t| t.0),
            Some(4)
        );
    }

    #[test]
    fn a_layer_restarted_under_another_ssrc_is_taken_again_at_its_keyframe() {
        let mut s = LayerSwitch::continuing(Codec::Vp8, 0, 0, None);
        assert!(s.on_packet(0, 100, 1000, &vp8(5, 0, false)).is_some());
        // The layer starts over (new SSRC, numbering from 0): nothing until
        // its keyframe, then one sequence on from what was sent.
        s.restart(0);
        assert_eq!(s.on_packet(0, 0, 0, &vp8(0, 0, false)), None);
        let out = s.on_packet(0, 1, 90, &vp8(1, 0, true)).expect("keyframe");
        assert_eq!((out.seq, pic_of(&out.payload)), (101, 6));
    }

    #[test]
    fn h264_layers_switch_on_an_idr() {
        let mut s = LayerSwitch::new(Codec::H264, 0);
        let idr = Bytes::from_static(&[0x65, 1, 2]);
        let slice = Bytes::from_static(&[0x41, 1, 2]);
        assert!(s.on_packet(0, 1, 0, &idr).is_some());
        s.set_target(1);
        assert_eq!(s.on_packet(1, 500, 9000, &slice), None);
        assert!(s.on_packet(0, 2, 3000, &slice).is_some());
        let out = s.on_packet(1, 501, 12_000, &idr).expect("IDR switches");
        assert_eq!((out.seq, out.timestamp), (3, 6000));
    }
}
