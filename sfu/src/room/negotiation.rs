//! Offer/answer and ICE with each peer. The browser is the polite side of
//! perfect negotiation, the room the impolite one: a browser offer that
//! collides with the room's own pending offer is ignored (the browser rolls
//! back and answers); changes made while an offer is in flight are queued
//! and offered again after the answer ([`Negotiation`]).
//!
//! The browser's candidates that arrive before its offer could be applied
//! wait in [`Peer::pending_candidates`](super::Peer) until there is a
//! remote description.
//!
//! A peer's first offer is checked ([`check_description`]) before its
//! connection is built, and a connection whose first offer cannot be
//! applied and answered is closed at once: no peer keeps a connection (or
//! a port) without a remote description.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use protocol::{IceCandidate, SignalData};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use super::forward::{TrackKey, resolve_payload_types};
use super::{Peer, PeerAllowance, Room};
use crate::error::SfuError;
use crate::peer::candidate_from_wire;
use crate::validate::check_description;
use protocol::PeerId;

/// Where the room's side of the offer/answer exchange with one peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Negotiation {
    /// No offer of ours is out and no change waits for one.
    #[default]
    Stable,
    /// Changes wait for an offer and none of ours is out: they could not be
    /// offered when they were made (the connection had an offer pending
    /// that the room had not recorded), or the steps after an answer failed.
    /// Offered at the next chance: after the next answer, or right after
    /// answering the browser's next offer.
    Due,
    /// Our offer is out, waiting for the answer. `again`: changes were made
    /// since it was sent, so one more offer follows the answer.
    OfferSent { again: bool },
}

impl Negotiation {
    /// Our offer is out (by the room's record).
    pub(super) fn offer_in_flight(self) -> bool {
        matches!(self, Negotiation::OfferSent { .. })
    }

    /// A change could not be offered now: offer it after the answer, or at
    /// the next chance when no offer of ours is out.
    fn queue(&mut self) {
        *self = match *self {
            Negotiation::OfferSent { .. } => Negotiation::OfferSent { again: true },
            Negotiation::Stable | Negotiation::Due => Negotiation::Due,
        };
    }

    /// Our offer went out; it carries every change made so far.
    fn offer_sent(&mut self) {
        *self = Negotiation::OfferSent { again: false };
    }

    /// The peer answered: changes queued behind the offer are now due.
    fn answered(&mut self) {
        *self = match *self {
            Negotiation::OfferSent { again: true } | Negotiation::Due => Negotiation::Due,
            Negotiation::OfferSent { again: false } | Negotiation::Stable => Negotiation::Stable,
        };
    }

    /// Takes the due changes: true when an offer should be made now.
    fn take_due(&mut self) -> bool {
        let due = *self == Negotiation::Due;
        if due {
            *self = Negotiation::Stable;
        }
        due
    }
}

impl Room {
    /// One `signal` a peer addressed to the SFU; `allowance` is counted if
    /// it brings the peer a connection.
    pub(super) async fn on_signal(
        &mut self,
        peer: PeerId,
        s: SignalData,
        allowance: Option<Arc<dyn PeerAllowance>>,
    ) -> Result<(), SfuError> {
        match s {
            SignalData::Offer { sdp } => self.on_offer(peer, sdp, allowance).await,
            SignalData::Answer { sdp } => self.on_answer(peer, sdp).await,
            SignalData::Candidate { candidate: Some(c) } => self.on_candidate(&peer, c).await,
            SignalData::Candidate { candidate: None } => Ok(()),
            SignalData::Bye => self.remove_peer(&peer).await,
        }
    }

    /// The browser's offer: its first one brings it into the room (if it
    /// passes the checks and the peer's allowance agrees). Answered unless
    /// it collides with ours; then the peer is subscribed to every track it
    /// does not receive yet, and offered those.
    async fn on_offer(
        &mut self,
        peer: PeerId,
        offer: String,
        allowance: Option<Arc<dyn PeerAllowance>>,
    ) -> Result<(), SfuError> {
        // Before any connection or port exists.
        check_description(&offer)?;
        let desc = RTCSessionDescription::offer(offer).map_err(SfuError::peer("offer"))?;
        let fresh = !self.peers.contains_key(&peer);
        if fresh {
            self.add_peer(&peer, allowance).await?;
        }
        let answered = self.answer(&peer, desc).await;
        if fresh && !matches!(answered, Ok(true)) {
            // No remote description to live on: close it, free its port.
            self.remove_peer(&peer).await?;
        }
        if !answered? {
            return Ok(());
        }
        // New peer: subscribe it to everything already published.
        let keys: Vec<TrackKey> = self
            .published
            .keys()
            .filter(|k| k.publisher != peer)
            .cloned()
            .collect();
        let mut added = false;
        for k in keys {
            if !self
                .peers
                .get(&peer)
                .is_some_and(|p| p.subs.contains_key(&k))
            {
                self.subscribe(&peer, k).await?;
                added = true;
            }
        }
        if added
            || self
                .peers
                .get(&peer)
                .is_some_and(|p| p.negotiation == Negotiation::Due)
        {
            self.negotiate(&peer).await?;
        }
        Ok(())
    }

    /// Applies `offer` and answers it; `false`: it collided with our own
    /// offer and was ignored (the impolite side of perfect negotiation).
    async fn answer(
        &mut self,
        peer: &PeerId,
        offer: RTCSessionDescription,
    ) -> Result<bool, SfuError> {
        let p = self.peers.get_mut(peer).ok_or(SfuError::NoPeer)?;
        if has_offer_out(p).await {
            self.metrics
                .offers_ignored_glare
                .fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        p.pc.set_remote_description(offer)
            .await
            .map_err(SfuError::peer("apply offer"))?;
        add_pending_candidates(p).await;
        let answer =
            p.pc.create_answer(None)
                .await
                .map_err(SfuError::peer("create answer"))?;
        p.pc.set_local_description(answer.clone())
            .await
            .map_err(SfuError::webrtc("set answer"))?;
        let _ = self
            .out
            .send((peer.clone(), SignalData::Answer { sdp: answer.sdp }));
        Ok(true)
    }

    /// The answer to our offer: the new subscriptions can be forwarded (their
    /// payload types are known now) and their publishers are asked for a
    /// keyframe; changes queued meanwhile are offered.
    async fn on_answer(&mut self, peer: PeerId, answer: String) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        p.pc.set_remote_description(
            RTCSessionDescription::answer(answer).map_err(SfuError::peer("answer"))?,
        )
        .await
        .map_err(SfuError::peer("apply answer"))?;
        p.negotiation.answered();
        add_pending_candidates(p).await;
        let want_kf: Vec<TrackKey> = p.awaiting_keyframe.drain(..).collect();
        let again = p.negotiation.take_due();
        let _ = resolve_payload_types(p).await;
        for k in want_kf {
            self.request_keyframe(&k, true).await;
        }
        if again {
            self.negotiate(&peer).await?;
        }
        Ok(())
    }

    /// A candidate the browser trickled: kept until its offer is applied.
    async fn on_candidate(&mut self, peer: &PeerId, c: IceCandidate) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Ok(());
        };
        if p.pc.remote_description().await.is_none() {
            p.pending_candidates.push(candidate_from_wire(c));
        } else {
            p.pc.add_ice_candidate(candidate_from_wire(c))
                .await
                .map_err(SfuError::peer("candidate"))?;
        }
        Ok(())
    }

    /// Offers the peer every change made to its connection, or queues the
    /// offer behind the one in flight.
    pub(super) async fn negotiate(&mut self, peer: &PeerId) -> Result<(), SfuError> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Ok(());
        };
        if has_offer_out(p).await {
            p.negotiation.queue(); // re-run when the answer lands
            return Ok(());
        }
        let offer =
            p.pc.create_offer(None)
                .await
                .map_err(SfuError::webrtc("create offer"))?;
        p.pc.set_local_description(offer.clone())
            .await
            .map_err(SfuError::webrtc("set offer"))?;
        p.negotiation.offer_sent();
        self.metrics.offers_sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .out
            .send((peer.clone(), SignalData::Offer { sdp: offer.sdp }));
        Ok(())
    }
}

/// Our offer to `p` is out: by the room's record or, as a backstop, by the
/// connection's signaling state.
async fn has_offer_out(p: &Peer) -> bool {
    p.negotiation.offer_in_flight() || has_local_offer(&p.pc).await
}

/// The signaling state is `have-local-offer`. (No `signaling_state()` getter
/// on the async trait: derived from the pending descriptions.)
async fn has_local_offer(pc: &Arc<dyn PeerConnection>) -> bool {
    pc.pending_local_description().await.is_some()
        && pc.pending_remote_description().await.is_none()
}

/// The candidates that waited for a remote description, now that there is
/// one. One the connection refuses is skipped: the others may still work.
async fn add_pending_candidates(p: &mut Peer) {
    for c in p.pending_candidates.drain(..) {
        if let Err(e) = p.pc.add_ice_candidate(c).await {
            tracing::debug!("sfu: a candidate of the peer is refused: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Negotiation::{self, Due, OfferSent, Stable};

    #[test]
    fn a_change_during_an_offer_is_offered_after_the_answer() {
        let mut n = Negotiation::default();
        assert!(!n.offer_in_flight());
        n.offer_sent();
        assert!(n.offer_in_flight());
        n.queue();
        assert_eq!(n, OfferSent { again: true });
        n.answered();
        assert_eq!(n, Due);
        assert!(!n.offer_in_flight());
        assert!(n.take_due());
        assert_eq!(n, Stable);
    }

    #[test]
    fn an_answer_with_nothing_queued_settles() {
        let mut n = Stable;
        n.offer_sent();
        n.answered();
        assert_eq!(n, Stable);
        assert!(!n.take_due());
    }

    #[test]
    fn due_changes_survive_a_stray_answer_and_go_with_the_next_offer() {
        let mut n = Stable;
        n.queue();
        assert_eq!(n, Due);
        n.answered();
        assert_eq!(n, Due);
        n.offer_sent();
        assert_eq!(n, OfferSent { again: false });
    }
}
