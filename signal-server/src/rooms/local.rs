//! Room state of one node, in memory: the [`Registry`] behind one lock.
//!
//! Every future here is ready when it is created (the work is done under
//! the lock before it returns), so awaiting it never suspends and costs
//! nothing: the single-node path runs each event to completion on the
//! socket's read loop. The closures of `join`, `leave` and `chat` run under
//! the lock, which is the room's critical section.

use std::future::{Future, ready};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use protocol::{ChatMessage, MediaState, PeerId, RoomName};
use socketioxide::socket::Sid;

use super::registry::Registry;
use super::{
    Act, ActError, Acted, Dest, HeldSeat, JoinError, JoinSpec, Joined, Keep, Left, Member,
    NewMessage, NotInRoom, Parcel, Receipt, ReceiptError, Result, RoomLimits, RoomStore,
    RouteError, StoreError, Swept,
};

/// All rooms of this node.
#[derive(Debug)]
pub struct LocalStore {
    /// One lock for all rooms: every operation under it is a few map
    /// lookups and non-blocking queue pushes, never an await.
    registry: Mutex<Registry<Sid>>,
    grace: std::time::Duration,
}

impl LocalStore {
    pub fn new(limits: RoomLimits) -> Self {
        Self {
            registry: Mutex::new(Registry::new(limits)),
            grace: limits.resume_grace,
        }
    }

    /// The registry checks before it mutates, so a panic cannot leave it
    /// half-changed: a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Registry<Sid>> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn rule<T, E>(r: std::result::Result<T, E>) -> Result<T, E> {
    r.map_err(StoreError::Rule)
}

impl RoomStore for LocalStore {
    type Addr = Sid;

    fn join<R: Send>(
        &self,
        conn: Sid,
        spec: JoinSpec,
        id: PeerId,
        admit: impl FnOnce(Joined<Sid>) -> R + Send,
    ) -> impl Future<Output = Result<R, JoinError>> + Send {
        let mut reg = self.lock();
        let res = reg.join(conn, spec, id).map(admit);
        drop(reg);
        ready(rule(res))
    }

    fn hold(&self, conn: Sid) -> impl Future<Output = Result<Vec<HeldSeat>>> + Send {
        let until = Instant::now() + self.grace;
        ready(Ok(self.lock().hold(conn, until)))
    }

    fn keep(
        &self,
        room: &RoomName,
        peer: &PeerId,
        parcel: Parcel,
    ) -> impl Future<Output = Result<Keep<Sid>, RouteError>> + Send {
        ready(rule(self.lock().keep(room, peer, parcel)))
    }

    fn act(
        &self,
        conn: Sid,
        room: &RoomName,
        act: Act,
    ) -> impl Future<Output = Result<Acted<Sid>, ActError>> + Send {
        ready(rule(self.lock().act(conn, room, act)))
    }

    fn expire(&self) -> impl Future<Output = Result<Vec<(RoomName, Left<Sid>)>>> + Send {
        ready(Ok(self.lock().expire(Instant::now())))
    }

    fn held_count(&self) -> usize {
        self.lock().held_count()
    }

    fn leave<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        then: impl FnOnce(Left<Sid>) -> R + Send,
    ) -> impl Future<Output = Result<R, NotInRoom>> + Send {
        let mut reg = self.lock();
        let res = reg.leave(conn, room).map(then);
        drop(reg);
        ready(rule(res))
    }

    fn rooms_of(&self, conn: Sid) -> impl Future<Output = Result<Vec<RoomName>>> + Send {
        ready(Ok(self.lock().rooms_of(conn)))
    }

    fn member(
        &self,
        conn: Sid,
        room: &RoomName,
    ) -> impl Future<Output = Result<Member, NotInRoom>> + Send {
        ready(rule(self.lock().member(conn, room)))
    }

    fn route(
        &self,
        conn: Sid,
        room: &RoomName,
        to: &PeerId,
    ) -> impl Future<Output = Result<(PeerId, Dest<Sid>), RouteError>> + Send {
        ready(rule(self.lock().route(conn, room, to)))
    }

    fn addr_of(
        &self,
        room: &RoomName,
        peer: &PeerId,
    ) -> impl Future<Output = Result<Option<Dest<Sid>>>> + Send {
        ready(Ok(self.lock().dest_of(room, peer)))
    }

    fn chat<R: Send>(
        &self,
        conn: Sid,
        room: &RoomName,
        msg: NewMessage,
        publish: impl FnOnce(ChatMessage, usize) -> R + Send,
    ) -> impl Future<Output = Result<R, NotInRoom>> + Send {
        let mut reg = self.lock();
        let res = reg
            .chat(conn, room, msg)
            .map(|(msg, count)| publish(msg, count));
        drop(reg);
        ready(rule(res))
    }

    fn set_media(
        &self,
        conn: Sid,
        room: &RoomName,
        media: MediaState,
    ) -> impl Future<Output = Result<(PeerId, usize), NotInRoom>> + Send {
        ready(rule(self.lock().set_media(conn, room, media)))
    }

    fn receipt(
        &self,
        conn: Sid,
        room: &RoomName,
        msg: &str,
    ) -> impl Future<Output = Result<Receipt<Sid>, ReceiptError>> + Send {
        ready(rule(self.lock().receipt(conn, room, msg)))
    }

    fn counts(&self) -> (usize, usize) {
        let reg = self.lock();
        (reg.room_count(), reg.peer_count())
    }

    fn forget(&self, _: Sid) {}

    fn heartbeat(&self) -> impl Future<Output = Result<bool>> + Send {
        ready(Ok(true))
    }

    fn sweep(&self) -> impl Future<Output = Result<Swept<Sid>>> + Send {
        ready(Ok(Swept::default()))
    }

    fn retire(&self) -> impl Future<Output = Result<()>> + Send {
        ready(Ok(()))
    }

    fn restore(&self) -> impl Future<Output = usize> + Send {
        ready(0)
    }
}
