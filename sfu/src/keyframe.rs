//! Interceptors on the read side of a peer connection.
//!
//! [`keyframe_request_forwarder`] hands subscribers' keyframe requests (PLI,
//! FIR) to the application, so the room can forward them to the publisher,
//! and their reception reports (RR, and SR report blocks), for the loss
//! figures. (webrtc-rs answers RTCP internally otherwise; see the
//! `rtcp-processing` example of the webrtc crate.)

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;

/// An interceptor that passes writes through and runs `filter` on every
/// inbound message: it may change the message, and drops it by returning false.
pub struct ReadFilter<F> {
    filter: F,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<F: FnMut(&mut TaggedPacket) -> bool + Send + Sync + 'static> ReadFilter<F> {
    pub fn new(filter: F) -> Self {
        Self {
            filter,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl<F: FnMut(&mut TaggedPacket) -> bool> Protocol<TaggedPacket, TaggedPacket, ()>
    for ReadFilter<F>
{
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if (self.filter)(&mut msg) {
            self.read.push_back(msg);
        }
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl<F: FnMut(&mut TaggedPacket) -> bool + Send + Sync + 'static> Interceptor for ReadFilter<F> {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// PLI or FIR: a receiver asks for a keyframe.
pub fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let a = p.as_any();
    a.is::<PictureLossIndication>() || a.is::<FullIntraRequest>()
}

fn is_for_application(p: &dyn rtc::rtcp::Packet) -> bool {
    let a = p.as_any();
    is_keyframe_request(p) || a.is::<ReceiverReport>() || a.is::<SenderReport>()
}

/// Marks inbound PLI/FIR/RR/SR with `DeliverToApplication` so they reach
/// `TrackLocal::poll()`; other RTCP (already consumed by the interceptors
/// below this one) goes no further. RTP passes unchanged.
pub fn keyframe_request_forwarder() -> impl Interceptor {
    ReadFilter::new(|msg: &mut TaggedPacket| {
        let Packet::Rtcp(pkts) = &msg.message.packet else {
            return true;
        };
        let wanted: Vec<_> = pkts
            .iter()
            .filter(|p| is_for_application(p.as_ref()))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return false;
        }
        msg.message.packet = Packet::Rtcp(wanted);
        msg.message.add(Attribute::DeliverToApplication);
        true
    })
}
