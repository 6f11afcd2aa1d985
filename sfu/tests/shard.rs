//! The shard of the synchronous media core (`sfu::engine::Shard`): `rtc`
//! peers, each on a UDP socket of its own, connect to the shard's ONE port
//! (told apart by their ICE ufrags), and a publisher's RTP reaches every
//! subscriber through it, decrypted and read back. All on this thread:
//! every side is polled in turn until a condition holds, with a deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::engine::{ConnId, Event, Shard, Source, UdpPeer, VP8, payload_type, video_track};

/// Polls the shard and every peer until `done`, or panics after `secs`.
fn run_until(
    shard: &mut Shard,
    peers: &mut [&mut UdpPeer],
    what: &str,
    secs: u64,
    mut done: impl FnMut(&Shard, &mut [&mut UdpPeer]) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done(shard, peers) {
        assert!(
            Instant::now() < end,
            "not within {secs} s: {what}; shard {:?}",
            shard.stats
        );
        assert!(!peers.iter().any(|p| p.failed()), "a peer failed: {what}");
        shard.wait(Duration::from_millis(1)).expect("shard wait");
        let now = Instant::now();
        shard.poll(now).expect("shard poll");
        for p in peers.iter_mut() {
            p.poll(now);
        }
    }
}

#[test]
fn one_port_carries_a_publisher_to_two_subscribers() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let shard_addr = shard.local_addr();

    // The publisher offers its camera; the shard answers, receiving.
    let pub_ssrc = 0x0a0b_0c0d;
    let (mut publisher, sender) = UdpPeer::publisher(pub_ssrc, false).expect("publisher");
    let offer = publisher.offer().expect("offer");
    let (pub_id, answer, _) = shard.accept(offer, Vec::new()).expect("accept publisher");
    assert!(
        answer
            .sdp
            .contains(&format!("{} {}", shard_addr.ip(), shard_addr.port())),
        "the answer names the shard's port"
    );
    publisher
        .pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");

    // Two subscribers offer to receive; the shard answers with a track each.
    let mut subs = Vec::new();
    for i in 0..2u32 {
        let mut sub = UdpPeer::receiver(true).expect("receiver");
        let ssrc = 0x5500 + i;
        let offer = sub.offer().expect("offer");
        let (id, answer, senders) = shard
            .accept(offer, vec![video_track(&format!("fwd{i}"), ssrc)])
            .expect("accept subscriber");
        sub.pc
            .set_remote_description(Instant::now(), answer)
            .expect("set answer");
        shard
            .forward(pub_id, RtpCodecKind::Video, id, senders[0])
            .expect("route");
        subs.push((sub, ssrc, id));
    }
    let [(mut a, a_ssrc, a_id), (mut b, b_ssrc, _)] = <[(UdpPeer, u32, ConnId); 2]>::try_from(subs)
        .ok()
        .expect("two");

    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a, &mut b],
        "all three connected",
        20,
        |_, ps| ps.iter().all(|p| p.connected()),
    );

    // The publisher sends packets, one per pass.
    let pt = payload_type(&mut publisher.pc, sender, VP8).expect("vp8");
    let payload = Bytes::from(vec![0x10_u8; 900]);
    let mut sent = 0u16;
    let mut send_one = |p: &mut UdpPeer| {
        let header = (pt, pub_ssrc, 1000 + sent, u32::from(sent) * 3000);
        p.send(sender, header, &payload).expect("send");
        sent += 1;
    };
    let mut burst = 0;
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a, &mut b],
        "every packet at both subscribers",
        20,
        |_, ps| {
            if burst < 200 {
                send_one(ps[0]);
                burst += 1;
            }
            ps[1].received >= 200 && ps[2].received >= 200
        },
    );

    for (who, p, ssrc) in [("a", &a, a_ssrc), ("b", &b, b_ssrc)] {
        let seqs: Vec<u16> = p.rtp.iter().map(|r| r.header.sequence_number).collect();
        assert_eq!(
            seqs,
            (1000..1200).collect::<Vec<u16>>(),
            "{who} got every packet in order"
        );
        assert!(
            p.rtp
                .iter()
                .all(|r| r.header.ssrc == ssrc && r.payload == payload),
            "{who}: its SSRC, the publisher's payload"
        );
    }
    assert_eq!(shard.stats.rtp_in, 200);
    assert_eq!(shard.stats.rtp_out, 400);
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);

    // A subscriber removed: the other still receives everything, and
    // nothing more is written for the one that is gone.
    shard.remove(a_id);
    let mut more = 0;
    // a is still polled: anything sent to it would be read.
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut b, &mut a],
        "b receives 50 more after a left",
        20,
        |_, ps| {
            if more < 50 {
                send_one(ps[0]);
                more += 1;
            }
            ps[1].received >= 250
        },
    );
    assert_eq!(shard.stats.rtp_in, 250);
    assert_eq!(
        shard.stats.rtp_out, 450,
        "only b's 50 were written after a left"
    );
    assert_eq!(a.received, 200, "a got nothing more");
}

#[test]
fn a_datagram_naming_no_connection_is_dropped_and_counted() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    // RTP-looking bytes from an address no binding request came from.
    stranger
        .send_to(&[0x80; 100], shard.local_addr())
        .expect("send");
    let end = Instant::now() + Duration::from_secs(5);
    while shard.stats.unrouted == 0 {
        assert!(Instant::now() < end, "the datagram never arrived");
        shard.wait(Duration::from_millis(10)).expect("wait");
        shard.poll(Instant::now()).expect("poll");
    }
    assert_eq!(shard.stats.datagrams_in, 1);
    assert_eq!(shard.stats.unrouted, 1);
    assert_eq!(shard.stats.errors, 0);
}

/// A binding request naming `ufrag` as ours, with a MESSAGE-INTEGRITY that
/// no key made.
fn forged_binding_request(ufrag: &str) -> Vec<u8> {
    let username = format!("{ufrag}:intruder");
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&u16::try_from(username.len()).expect("len").to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    attrs.extend_from_slice(&0x0008u16.to_be_bytes());
    attrs.extend_from_slice(&20u16.to_be_bytes());
    attrs.extend_from_slice(&[0xab; 20]);
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&u16::try_from(attrs.len()).expect("len").to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[9; 12]);
    m.extend_from_slice(&attrs);
    m
}

#[test]
fn a_forged_binding_request_does_not_take_an_address() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let mut sub = UdpPeer::receiver(false).expect("receiver");
    let offer = sub.offer().expect("offer");
    let (_, answer, _) = shard
        .accept(offer, vec![video_track("fwd", 0x77)])
        .expect("accept");
    let ufrag = answer
        .sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("the answer has a ufrag")
        .trim()
        .to_owned();
    sub.pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    run_until(&mut shard, &mut [&mut sub], "connected", 20, |_, ps| {
        ps[0].connected()
    });

    // The forged request names the connection (so it is routed to it),
    // fails its integrity check there, and teaches the shard nothing: what
    // the intruder sends next is dropped as unrouted.
    let intruder = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let before = shard.stats;
    intruder
        .send_to(&forged_binding_request(&ufrag), shard.local_addr())
        .expect("send");
    intruder
        .send_to(&[0x80; 100], shard.local_addr())
        .expect("send");
    run_until(
        &mut shard,
        &mut [&mut sub],
        "both datagrams in",
        5,
        |s, _| s.stats.datagrams_in >= before.datagrams_in + 2,
    );
    assert_eq!(
        shard.stats.unrouted,
        before.unrouted + 1,
        "{:?}",
        shard.stats
    );
    assert!(sub.connected(), "the real peer is still connected");
}

#[test]
fn keyframe_requests_reach_the_publisher_throttled_and_a_late_subscriber_gets_the_stream() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let pub_ssrc = 0x0101_0101;
    let (mut publisher, sender) = UdpPeer::publisher(pub_ssrc, false).expect("publisher");
    let offer = publisher.offer().expect("offer");
    let (pub_id, answer, _) = shard.accept(offer, Vec::new()).expect("accept");
    publisher
        .pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    let subscribe = |shard: &mut Shard, ssrc: u32| {
        let mut sub = UdpPeer::receiver(false).expect("receiver");
        let offer = sub.offer().expect("offer");
        let (id, answer, senders) = shard
            .accept(offer, vec![video_track("fwd", ssrc)])
            .expect("accept");
        sub.pc
            .set_remote_description(Instant::now(), answer)
            .expect("set answer");
        shard
            .forward(pub_id, RtpCodecKind::Video, id, senders[0])
            .expect("route");
        sub
    };
    let mut a = subscribe(&mut shard, 0xa);
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a],
        "connected",
        20,
        |_, ps| ps.iter().all(|p| p.connected()),
    );
    let pt = payload_type(&mut publisher.pc, sender, VP8).expect("vp8");
    let payload = Bytes::from(vec![1_u8; 500]);
    let mut seq = 0u16;
    let mut send = |p: &mut UdpPeer, n: u16| {
        for _ in 0..n {
            p.send(sender, (pt, pub_ssrc, seq, u32::from(seq) * 3000), &payload)
                .expect("send");
            seq += 1;
        }
    };
    send(&mut publisher, 20);
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a],
        "a receives",
        10,
        |_, ps| ps[1].received >= 20,
    );

    // Three requests from a at once: the publisher is asked once.
    for _ in 0..3 {
        a.request_keyframe().expect("pli");
    }
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a],
        "the shard read a's three requests",
        10,
        |s, ps| s.stats.keyframe_requests_in >= 3 && ps[0].keyframe_requests >= 1,
    );
    assert_eq!(shard.stats.plis, 1, "throttled: {:?}", shard.stats);

    // A late subscriber: routed at once, and the publisher is asked for a
    // keyframe for it (whatever the throttle).
    let mut c = subscribe(&mut shard, 0xc);
    assert_eq!(
        shard.stats.plis, 2,
        "a keyframe asked for the late subscriber"
    );
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a, &mut c],
        "c connected, the publisher asked twice",
        20,
        |_, ps| ps[2].connected() && ps[0].keyframe_requests >= 2,
    );
    send(&mut publisher, 20);
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut a, &mut c],
        "c receives what is sent after it came",
        10,
        |_, ps| ps[1].received >= 40 && ps[2].received >= 20,
    );
    assert_eq!(c.received, 20);
    assert_eq!(c.gaps, 0);
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);
}

#[test]
fn a_publisher_who_comes_later_reaches_a_connected_subscriber_through_a_new_offer() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let join = |shard: &mut Shard, ssrc: u32| {
        let (mut p, sender) = UdpPeer::publisher(ssrc, false).expect("publisher");
        let offer = p.offer().expect("offer");
        let (id, answer, _) = shard.accept(offer, Vec::new()).expect("accept");
        p.pc.set_remote_description(Instant::now(), answer)
            .expect("set answer");
        (p, sender, id)
    };
    let (mut first, first_sender, first_id) = join(&mut shard, 0x1111);
    let mut sub = UdpPeer::receiver(false).expect("receiver");
    let offer = sub.offer().expect("offer");
    let (sub_id, answer, senders) = shard
        .accept(offer, vec![video_track("fwd-first", 0xf1)])
        .expect("accept");
    sub.pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    shard
        .forward(first_id, RtpCodecKind::Video, sub_id, senders[0])
        .expect("route");
    run_until(
        &mut shard,
        &mut [&mut first, &mut sub],
        "connected",
        20,
        |_, ps| ps.iter().all(|p| p.connected()),
    );
    let payload = Bytes::from(vec![7_u8; 400]);
    let send = |p: &mut UdpPeer, sender, ssrc: u32, n: u16| {
        let pt = payload_type(&mut p.pc, sender, VP8).expect("vp8");
        for seq in 0..n {
            p.send(sender, (pt, ssrc, seq, u32::from(seq) * 3000), &payload)
                .expect("send");
        }
    };
    send(&mut first, first_sender, 0x1111, 10);

    // The second publisher: the shard offers the subscriber a new track
    // on its live connection, the subscriber answers.
    let (mut second, second_sender, second_id) = join(&mut shard, 0x2222);
    let (new_sender, offer) = shard
        .add_track(sub_id, video_track("fwd-second", 0xf2))
        .expect("add track");
    let answer = sub.answer(offer).expect("answer");
    shard.apply_answer(sub_id, answer).expect("apply answer");
    shard
        .forward(second_id, RtpCodecKind::Video, sub_id, new_sender)
        .expect("route");
    run_until(
        &mut shard,
        &mut [&mut first, &mut second, &mut sub],
        "the second publisher connected",
        20,
        |_, ps| ps[1].connected(),
    );
    send(&mut second, second_sender, 0x2222, 30);
    run_until(
        &mut shard,
        &mut [&mut first, &mut second, &mut sub],
        "both streams at the subscriber",
        10,
        |_, ps| ps[2].received_of(0xf1) >= 10 && ps[2].received_of(0xf2) >= 30,
    );
    assert_eq!(sub.received_of(0xf1), 10);
    assert_eq!(sub.received_of(0xf2), 30);
    assert_eq!(sub.gaps, 0);
    assert!(sub.connected(), "the first stream's connection stayed up");
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);
}

/// A one-packet VP8 frame with a 15-bit picture id.
fn vp8_frame(picture_id: u16, keyframe: bool) -> Bytes {
    Bytes::from(vec![
        0x90,
        0x80,
        0x80 | (picture_id >> 8) as u8,
        (picture_id & 0xff) as u8,
        if keyframe { 0x00 } else { 0x01 },
        0x11,
        0x22,
    ])
}

fn picture_id(payload: &[u8]) -> u16 {
    (u16::from(payload[2] & 0x7f) << 8) | u16::from(payload[3])
}

/// A simulcast publisher (a layer per `(rid, ssrc)`, lowest first) and one
/// subscriber (sending on `fwd_ssrc`), both connected to a new shard, the
/// subscriber forwarded the publisher's video.
struct SimulcastPair {
    shard: Shard,
    publisher: UdpPeer,
    sender: RTCRtpSenderId,
    sub: UdpPeer,
    pub_id: ConnId,
    sub_id: ConnId,
    /// The publisher's VP8 payload type.
    pt: u8,
}

fn simulcast_pair(layers: &[(&str, u32)], fwd_ssrc: u32) -> SimulcastPair {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let (mut publisher, sender) =
        UdpPeer::simulcast_publisher(layers, false).expect("simulcast publisher");
    let offer = publisher.offer().expect("offer");
    assert!(
        offer.sdp.contains("a=simulcast:send"),
        "the offer carries simulcast"
    );
    let (pub_id, answer, _) = shard.accept(offer, Vec::new()).expect("accept");
    publisher
        .pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    let mut sub = UdpPeer::receiver(true).expect("receiver");
    let offer = sub.offer().expect("offer");
    let (sub_id, answer, senders) = shard
        .accept(offer, vec![video_track("fwd", fwd_ssrc)])
        .expect("accept");
    sub.pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    shard
        .forward(pub_id, RtpCodecKind::Video, sub_id, senders[0])
        .expect("route");
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "connected",
        20,
        |_, ps| ps.iter().all(|p| p.connected()),
    );
    let pt = payload_type(&mut publisher.pc, sender, VP8).expect("vp8");
    SimulcastPair {
        shard,
        publisher,
        sender,
        sub,
        pub_id,
        sub_id,
        pt,
    }
}

#[test]
fn simulcast_a_subscriber_gets_one_layer_and_moves_up_at_a_keyframe_without_a_gap() {
    let layers = [("q", 0xa0_u32), ("h", 0xa1), ("f", 0xa2)];
    let SimulcastPair {
        mut shard,
        mut publisher,
        sender,
        mut sub,
        pub_id,
        sub_id,
        pt,
    } = simulcast_pair(&layers, 0x77);
    // Frame f of layer l: its own numbering (seq 1000·l + f, picture id
    // 100·l + f, a clock offset), a keyframe every 10 frames.
    let send_frames = |p: &mut UdpPeer, frames: std::ops::Range<u16>| {
        for f in frames {
            for (l, (rid, ssrc)) in layers.iter().enumerate() {
                let l = u16::try_from(l).expect("layer");
                let header = (
                    pt,
                    *ssrc,
                    1000 * l + f,
                    u32::from(f) * 3000 + u32::from(l) * 7,
                );
                p.send_layer(sender, rid, header, &vp8_frame(100 * l + f, f % 10 == 0))
                    .expect("send layer");
            }
        }
    };
    // The subscriber gets the lowest layer only.
    send_frames(&mut publisher, 0..20);
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "the lowest layer's 20 frames",
        10,
        |s, ps| s.stats.rtp_in >= 60 && ps[1].received >= 20,
    );
    assert_eq!(sub.received, 20, "one layer of three");
    let pics: Vec<u16> = sub.rtp.iter().map(|p| picture_id(&p.payload)).collect();
    assert_eq!(pics, (0..20).collect::<Vec<u16>>(), "layer q's frames");

    // Up to the top layer: a keyframe is asked of it, and the subscriber
    // moves at the next one (frame 20), its numbering carried on.
    let asked = publisher.keyframe_requests;
    shard.set_layer(sub_id, pub_id, 2);
    send_frames(&mut publisher, 20..40);
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "the top layer's frames after the switch",
        10,
        |_, ps| ps[1].received >= 41 && ps[0].keyframe_requests > asked,
    );
    assert_eq!(sub.received, 41, "frame 20 of q, then 20 frames of f");
    let seqs: Vec<u16> = sub.rtp.iter().map(|p| p.header.sequence_number).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (0..41).map(|i| first.wrapping_add(i)).collect::<Vec<u16>>(),
        "one gapless sequence across the switch"
    );
    let pics: Vec<u16> = sub.rtp.iter().map(|p| picture_id(&p.payload)).collect();
    assert_eq!(pics, (0..41).collect::<Vec<u16>>(), "picture ids carry on");
    let ts: Vec<u32> = sub.rtp.iter().map(|p| p.header.timestamp).collect();
    assert!(
        ts.windows(2).all(|w| w[1] > w[0]),
        "timestamps only move forward: {ts:?}"
    );
    assert_eq!(sub.gaps, 0);

    // The publisher stops sending its top layer (as a browser does when
    // bandwidth drops): after LAYER_IDLE the subscriber moves down to the
    // middle layer at its next keyframe, and its numbering still carries on.
    let mut f = 40u16;
    let mut last_sent = Instant::now();
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "the middle layer's frames once the top one paused",
        10,
        |_, ps| {
            if last_sent.elapsed() >= Duration::from_millis(33) {
                last_sent = Instant::now();
                for (l, (rid, ssrc)) in layers.iter().enumerate().take(2) {
                    let l = u16::try_from(l).expect("layer");
                    let header = (
                        pt,
                        *ssrc,
                        1000 * l + f,
                        u32::from(f) * 3000 + u32::from(l) * 7,
                    );
                    ps[0]
                        .send_layer(
                            sender,
                            rid,
                            header,
                            &vp8_frame(100 * l + f, f.is_multiple_of(10)),
                        )
                        .expect("send layer");
                }
                f += 1;
            }
            ps[1]
                .rtp
                .last()
                .is_some_and(|p| picture_id(&p.payload) >= 41 && ps[1].received >= 44)
        },
    );
    let seqs: Vec<u16> = sub.rtp.iter().map(|p| p.header.sequence_number).collect();
    assert_eq!(
        seqs,
        (0..seqs.len())
            .map(|i| first.wrapping_add(u16::try_from(i).expect("count")))
            .collect::<Vec<u16>>(),
        "still one gapless sequence after the move down"
    );
    let pics: Vec<u16> = sub.rtp.iter().map(|p| picture_id(&p.payload)).collect();
    assert_eq!(
        pics,
        (0..u16::try_from(pics.len()).expect("count")).collect::<Vec<u16>>(),
        "picture ids carry on"
    );
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);
}

#[test]
fn a_subscriber_gets_the_screen_not_the_camera_of_a_publisher_sending_both() {
    let mut shard = Shard::bind("127.0.0.1:0".parse().expect("addr")).expect("bind shard");
    let (camera_ssrc, screen_ssrc) = (0xc0, 0x5c);
    let (mut publisher, camera) = UdpPeer::publisher(camera_ssrc, false).expect("publisher");
    let screen = publisher
        .pc
        .add_track(video_track("screen", screen_ssrc))
        .expect("screen track");
    let offer = publisher.offer().expect("offer");
    let (pub_id, answer, _) = shard.accept(offer, Vec::new()).expect("accept");
    publisher
        .pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    let mut sub = UdpPeer::receiver(true).expect("receiver");
    let offer = sub.offer().expect("offer");
    let (sub_id, answer, senders) = shard
        .accept(offer, vec![video_track("fwd", 0x99)])
        .expect("accept");
    sub.pc
        .set_remote_description(Instant::now(), answer)
        .expect("set answer");
    // Before either stream opened: the screen, by its track id.
    shard
        .forward(
            pub_id,
            Source::Track("screen-track".to_owned()),
            sub_id,
            senders[0],
        )
        .expect("route");
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "connected",
        20,
        |_, ps| ps.iter().all(|p| p.connected()),
    );
    let pt = payload_type(&mut publisher.pc, camera, VP8).expect("vp8");
    let mut n = 0u16;
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "30 screen packets",
        10,
        |_, ps| {
            if n < 30 {
                let ts = u32::from(n) * 3000;
                ps[0]
                    .send(
                        camera,
                        (pt, camera_ssrc, 100 + n, ts),
                        &vp8_frame(n, n == 0),
                    )
                    .expect("camera");
                ps[0]
                    .send(
                        screen,
                        (pt, screen_ssrc, 5000 + n, ts),
                        &vp8_frame(7000 + n, n == 0),
                    )
                    .expect("screen");
                n += 1;
            }
            ps[1].received >= 30
        },
    );
    let pics: Vec<u16> = sub.rtp.iter().map(|p| picture_id(&p.payload)).collect();
    assert_eq!(
        pics,
        (7000..7030).collect::<Vec<u16>>(),
        "the screen's frames, none of the camera's"
    );
    let mut opened: Vec<(ConnId, String, Vec<String>)> = shard
        .events()
        .filter_map(|e| match e {
            Event::Opened(o) => Some((o.conn, o.track, o.streams)),
            Event::State(..) => None,
        })
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        vec![
            (
                pub_id,
                "camera-track".to_owned(),
                vec!["camera-stream".to_owned()]
            ),
            (
                pub_id,
                "screen-track".to_owned(),
                vec!["screen-stream".to_owned()]
            ),
        ],
        "both streams reported as they opened"
    );
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);
}

/// A one-packet VP8 frame of picture id `pic`: a keyframe declaring its
/// size (`height` rows of 4:3), or a delta frame; its last byte names its
/// layer (picture ids are rewritten on the way, the payload's end is not).
fn vp8_sized(pic: u16, keyframe_height: Option<u16>, layer: u8) -> Bytes {
    let mut p = vec![0x90, 0x80, 0x80 | (pic >> 8) as u8, (pic & 0xff) as u8];
    match keyframe_height {
        Some(h) => {
            p.extend_from_slice(&[0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a]);
            p.extend_from_slice(&(h / 3 * 4).to_le_bytes());
            p.extend_from_slice(&h.to_le_bytes());
        }
        None => p.extend_from_slice(&[0x51, 0x2a, 0x00, 0x11]),
    }
    p.push(layer);
    Bytes::from(p)
}

/// A publisher sending layers `(rid, ssrc, height)`, frame after frame.
struct SizedFrames<'a> {
    layers: &'a [(&'a str, u32, u16)],
    sender: RTCRtpSenderId,
    pt: u8,
    next: u16,
}

impl SizedFrames<'_> {
    /// Sends `frames` frames of every layer (frame f of layer l: picture id
    /// 1000·l + f, a keyframe every 10, the payload's last byte naming the
    /// layer), then runs until the subscriber has about that many more.
    fn send(&mut self, shard: &mut Shard, publisher: &mut UdpPeer, sub: &mut UdpPeer, frames: u16) {
        for _ in 0..frames {
            let f = self.next;
            self.next += 1;
            for (l, (rid, ssrc, h)) in self.layers.iter().enumerate() {
                let l = u16::try_from(l).expect("layer");
                let header = (self.pt, *ssrc, 1000 * l + f, u32::from(f) * 3000);
                let payload = vp8_sized(
                    1000 * l + f,
                    f.is_multiple_of(10).then_some(*h),
                    u8::try_from(l).expect("layer"),
                );
                publisher
                    .send_layer(self.sender, rid, header, &payload)
                    .expect("send layer");
            }
        }
        let want = sub.received + u64::from(frames);
        run_until(shard, &mut [publisher, sub], "the frames", 10, |_, ps| {
            ps[1].received >= want.saturating_sub(10)
        });
    }
}

/// The layer of the last packet `sub` got (its payload's last byte).
fn layer_now(sub: &UdpPeer) -> Option<u8> {
    sub.rtp.last().and_then(|p| p.payload.last().copied())
}

/// Three layers 120, 240 and 480 rows tall.
const SIZED: [(&str, u32, u16); 3] = [("q", 0xb0, 120), ("h", 0xb1, 240), ("f", 0xb2, 480)];

fn sized_pair() -> (SimulcastPair, SizedFrames<'static>) {
    let rids: Vec<(&str, u32)> = SIZED.iter().map(|(r, s, _)| (*r, *s)).collect();
    let pair = simulcast_pair(&rids, 0x78);
    let frames = SizedFrames {
        layers: &SIZED,
        sender: pair.sender,
        pt: pair.pt,
        next: 0,
    };
    (pair, frames)
}

#[test]
fn the_size_a_subscriber_shows_picks_the_layer_by_the_heights_the_keyframes_declare() {
    let (
        SimulcastPair {
            mut shard,
            mut publisher,
            mut sub,
            pub_id,
            sub_id,
            ..
        },
        mut frames,
    ) = sized_pair();
    // Shown 200 rows tall: the 240 layer; 480: the top; not shown: the lowest.
    frames.send(&mut shard, &mut publisher, &mut sub, 20);
    for (height, layer) in [(200, 1), (480, 2), (0, 0), (121, 1)] {
        shard.set_view(sub_id, pub_id, height);
        frames.send(&mut shard, &mut publisher, &mut sub, 30);
        assert_eq!(
            layer_now(&sub),
            Some(layer),
            "shown {height} rows tall: layer {layer}"
        );
    }
    assert_eq!(sub.gaps, 0, "one gapless sequence throughout");
    assert_eq!(shard.stats.errors, 0, "{:?}", shard.stats);
}

#[test]
fn a_subscriber_reporting_loss_gets_a_layer_less_at_a_time_and_them_back_once_calm() {
    let (
        SimulcastPair {
            mut shard,
            mut publisher,
            mut sub,
            pub_id,
            sub_id,
            ..
        },
        mut frames,
    ) = sized_pair();
    shard.set_calm_before_up(Duration::from_millis(300));
    frames.send(&mut shard, &mut publisher, &mut sub, 20);
    shard.set_view(sub_id, pub_id, 480);
    frames.send(&mut shard, &mut publisher, &mut sub, 30);
    assert_eq!(layer_now(&sub), Some(2), "shown full size: the top layer");
    // 39 % lost, twice: one layer less each time, though it is shown at 480.
    for layer in [1, 0] {
        let changes = shard.stats.loss_cap_changes;
        sub.report_loss(100).expect("report");
        run_until(
            &mut shard,
            &mut [&mut publisher, &mut sub],
            "the report read",
            5,
            |shard, _| shard.stats.loss_cap_changes > changes,
        );
        frames.send(&mut shard, &mut publisher, &mut sub, 30);
        assert_eq!(layer_now(&sub), Some(layer), "loss reported: layer {layer}");
    }
    // Calm reports: a layer back per calm spell, up to the one it asks for.
    let mut seen = vec![0];
    let end = Instant::now() + Duration::from_secs(10);
    while seen.last() != Some(&2) {
        assert!(Instant::now() < end, "not back at the top layer: {seen:?}");
        sub.report_loss(0).expect("report");
        frames.send(&mut shard, &mut publisher, &mut sub, 3);
        // Paced: a report and three frames each 50 ms.
        let paced = Instant::now();
        run_until(
            &mut shard,
            &mut [&mut publisher, &mut sub],
            "the pace",
            1,
            |_, _| paced.elapsed() >= Duration::from_millis(50),
        );
        let now = layer_now(&sub).expect("a layer");
        if seen.last() != Some(&now) {
            seen.push(now);
        }
    }
    assert_eq!(seen, [0, 1, 2], "one layer at a time");
    assert_eq!(sub.gaps, 0, "one gapless sequence throughout");
}

/// A browser names a simulcast layer (the `mid`/`rid` header extensions)
/// only until its SSRC is acknowledged; a renegotiation of the publisher's
/// connection (each time somebody joins the room) must not forget which
/// SSRC is which layer (`vendor/rtc/PATCHED.md`: it did, and every
/// publisher but the newest went dark).
#[test]
fn a_renegotiation_keeps_the_simulcast_layers_a_browser_no_longer_names() {
    let layers = [("q", 0xb0_u32), ("f", 0xb2)];
    let SimulcastPair {
        mut shard,
        mut publisher,
        sender,
        mut sub,
        pub_id,
        pt,
        ..
    } = simulcast_pair(&layers, 0x78);
    let header = |l: usize, f: u16| {
        let l16 = u16::try_from(l).expect("layer");
        (
            pt,
            layers[l].1,
            1000 * l16 + f,
            u32::from(f) * 3000 + u32::from(l16) * 7,
        )
    };
    // The first frames name their layer.
    for f in 0..10 {
        for (l, (rid, _)) in layers.iter().enumerate() {
            publisher
                .send_layer(sender, rid, header(l, f), &vp8_frame(f, f == 0))
                .expect("send layer");
        }
    }
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "the lowest layer's first frames",
        10,
        |_, ps| ps[1].received >= 10,
    );
    // The shard offers the publisher a track (a renegotiation), then the
    // frames come without the extensions, as a browser's do by now.
    let (_, offer) = shard
        .add_track(pub_id, video_track("back", 0x99))
        .expect("add track");
    let answer = publisher.answer(offer).expect("answer");
    shard.apply_answer(pub_id, answer).expect("apply answer");
    for f in 10..30 {
        for l in 0..layers.len() {
            publisher
                .send(sender, header(l, f), &vp8_frame(f, false))
                .expect("send");
        }
    }
    run_until(
        &mut shard,
        &mut [&mut publisher, &mut sub],
        "the frames after the renegotiation",
        10,
        |_, ps| ps[1].received >= 30,
    );
    assert_eq!(sub.received, 30, "the lowest layer, all of it");
    assert_eq!(sub.gaps, 0);
}
