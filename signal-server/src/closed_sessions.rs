//! The memory of closed sessions: a socket whose session ended must never
//! connect or act again. Engine.IO notifies a disconnect on another task
//! while the rest of a polling POST may still be read, and socket.io runs a
//! connect packet on a task of its own, so a `40` read after its session's
//! `41` (or after the transport closed) would otherwise connect a socket
//! that never gets a disconnect (docs/fuzzing.md).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use socketioxide::socket::Sid;

/// How long a closed session stays remembered: far longer than a dead
/// session's packets still being read (the rest of a polling POST, a
/// WebSocket's buffered frames), short enough to keep the set small.
pub const CLOSED_TTL: Duration = Duration::from_secs(60);

/// Sessions closed in the last one or two [`CLOSED_TTL`]s.
#[derive(Debug, Default)]
pub struct ClosedSessions(Mutex<Generations>);

#[derive(Debug, Default)]
struct Generations {
    /// Newest first.
    sets: [HashSet<Sid>; 2],
    since: Option<Instant>,
}

impl ClosedSessions {
    fn lock(&self) -> MutexGuard<'_, Generations> {
        // Two sets and an instant: nothing a panic could leave half-done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers `sid` as closed for at least [`CLOSED_TTL`] from `now`.
    pub fn close(&self, sid: Sid, now: Instant) {
        let mut g = self.lock();
        let since = *g.since.get_or_insert(now);
        if now.saturating_duration_since(since) >= CLOSED_TTL {
            let [newer, older] = &mut g.sets;
            std::mem::swap(newer, older);
            newer.clear();
            g.since = Some(now);
        }
        g.sets[0].insert(sid);
    }

    pub fn is_closed(&self, sid: Sid) -> bool {
        self.lock().sets.iter().any(|set| set.contains(&sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sessions_are_remembered_for_a_while() {
        let closed = ClosedSessions::default();
        let (a, b, c) = (Sid::new(), Sid::new(), Sid::new());
        let t0 = Instant::now();
        assert!(!closed.is_closed(a));
        closed.close(a, t0);
        assert!(closed.is_closed(a));
        assert!(!closed.is_closed(b));
        // One generation later it is still there; two later it is forgotten.
        closed.close(b, t0 + CLOSED_TTL);
        assert!(closed.is_closed(a) && closed.is_closed(b));
        closed.close(c, t0 + 2 * CLOSED_TTL);
        assert!(!closed.is_closed(a));
        assert!(closed.is_closed(b) && closed.is_closed(c));
    }
}
