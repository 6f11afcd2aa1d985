//! The room rules, one table, run against both stores: the in-memory one
//! of a single node, and the Redis one (a real `redis-server`) with two
//! stores standing for two nodes. On one node "two nodes" are the same
//! store, so every rule must come out the same whether the peers sit on
//! one node or on two.

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use common::Redis;
use protocol::{ChatText, DisplayName, MediaState, Mode, Password, PeerId, RoomName};
use signal_server::redis_driver::ReconnectingDriver;
use signal_server::rooms::{
    Act, ActError, Conn, Dest, HeldSeat, How, JoinError, JoinSpec, Joined, Keep, LocalStore,
    NewMessage, NotInRoom, Parcel, ReceiptError, RedisStore, RoomLimits, RoomStore, RouteError,
    SfuHost, StoreError,
};
use socketioxide::socket::Sid;

/// Every rule, in order. Each builds its own rooms (with its own limits).
async fn all_rules<F: Stores>(f: &F) {
    join_order_and_idempotence(f).await;
    capacity(f).await;
    password(f).await;
    mode(f).await;
    history(f).await;
    receipts(f).await;
    routes(f).await;
    media_state(f).await;
    leave_and_disconnect(f).await;
    sweep(f).await;
    rooms_per_connection(f).await;
    history_bytes_per_room(f).await;
    history_bytes_per_address(f).await;
    resume(f).await;
    resume_a_live_seat(f).await;
    sweep_holds(f).await;
    host_and_acts(f).await;
    sfu_placement(f).await;
}

#[tokio::test]
async fn the_rules_on_one_node() {
    all_rules(&OneNode).await;
}

#[tokio::test]
async fn the_rules_on_redis_across_two_nodes() {
    let redis = Redis::start();
    let f = OnRedis {
        redis,
        worlds: std::sync::atomic::AtomicUsize::new(0),
    };
    all_rules(&f).await;
}

// ---------------------------------------------------------------------------
// The two store families

/// Two nodes' views of one room state (the same store on one node).
struct Nodes<S> {
    a: Arc<S>,
    b: Arc<S>,
    /// Stops node `b` for good (its members are swept); `false` where
    /// there is no other node to stop.
    stop_b: Option<Box<dyn Fn() + Send + Sync>>,
}

trait Stores {
    type S: RoomStore<Addr: SidOf>;
    async fn nodes(&self, limits: RoomLimits) -> Nodes<Self::S>;
}

/// What the tests compare of an address: the connection it names.
trait SidOf {
    fn sid(&self) -> Sid;
}
impl SidOf for Sid {
    fn sid(&self) -> Sid {
        *self
    }
}
impl SidOf for Conn {
    fn sid(&self) -> Sid {
        self.sid
    }
}
impl<A: SidOf + std::fmt::Debug> SidOf for Dest<A> {
    fn sid(&self) -> Sid {
        match self {
            Dest::Live(a) => a.sid(),
            Dest::Held => panic!("a held seat has no connection"),
        }
    }
}

struct OneNode;

impl Stores for OneNode {
    type S = LocalStore;
    async fn nodes(&self, limits: RoomLimits) -> Nodes<LocalStore> {
        let store = Arc::new(LocalStore::new(limits));
        Nodes {
            a: store.clone(),
            b: store,
            stop_b: None,
        }
    }
}

struct OnRedis {
    redis: Redis,
    /// Each set of nodes gets its own key prefix.
    worlds: std::sync::atomic::AtomicUsize,
}

impl Stores for OnRedis {
    type S = RedisStore;
    async fn nodes(&self, limits: RoomLimits) -> Nodes<RedisStore> {
        let n = self
            .worlds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("t{n}");
        let node = |name: &'static str| {
            let prefix = prefix.clone();
            let client = self.redis.client();
            async move {
                let driver = ReconnectingDriver::start(client).await;
                // Liveness is staged by the tests: rooms move at once.
                let store = RedisStore::new(driver, &prefix, name, limits)
                    .with_sfu_settle(std::time::Duration::ZERO);
                assert!(store.heartbeat().await.is_ok(), "heartbeat");
                Arc::new(store)
            }
        };
        let (a, b) = (node("node-a").await, node("node-b").await);
        let client = self.redis.client();
        let heartbeat = format!("{prefix}:n:node-b");
        // Node b dies: its heartbeat expires (deleted here rather than
        // waited for, so the test does not race the TTL).
        let stop_b = move || {
            let mut c = client.get_connection().expect("redis connection");
            redis::cmd("DEL")
                .arg(&heartbeat)
                .query::<()>(&mut c)
                .expect("DEL");
        };
        Nodes {
            a,
            b,
            stop_b: Some(Box::new(stop_b)),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

const LIMITS: RoomLimits = RoomLimits {
    max_peers: 3,
    history: 3,
    history_bytes: 64 << 10,
    history_bytes_per_ip: 4 << 20,
    rooms_per_conn: 4,
    sfu: Err("no SFU here"),
    resume_grace: std::time::Duration::ZERO,
    kept_events: 4,
    kept_bytes: 64 << 10,
};

/// [`LIMITS`] with seats held for a resume.
const HOLDING: RoomLimits = RoomLimits {
    resume_grace: std::time::Duration::from_millis(800),
    ..LIMITS
};

fn room(s: &str) -> RoomName {
    RoomName::parse(s).expect("valid room")
}

fn spec(r: &str, name: &str) -> JoinSpec {
    JoinSpec {
        room: room(r),
        name: DisplayName::parse(name).expect("valid name"),
        mode: Mode::Mesh,
        password: None,
        resume: None,
        token: next_token(),
    }
}

fn next_token() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "tok{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn resuming(mut s: JoinSpec, token: &str) -> JoinSpec {
    s.resume = Some(protocol::ResumeToken::parse(token.to_owned()).expect("valid token"));
    s
}

fn with_password(mut s: JoinSpec, pw: &str) -> JoinSpec {
    s.password = Password::parse(pw.to_owned()).expect("valid password");
    s
}

fn id(s: &str) -> PeerId {
    PeerId::from(s.to_owned())
}

fn message(text: &str, id: &str, from_ip: Option<IpAddr>) -> NewMessage {
    NewMessage {
        text: ChatText::parse(text.to_owned()).expect("valid text"),
        id: id.to_owned(),
        ts: 1,
        from_ip,
    }
}

/// The texts of a late joiner's history in room `r`.
async fn history_of<S: RoomStore>(store: &S, r: &str) -> Vec<String> {
    let conn = Sid::new();
    let j = joined(store, conn, spec(r, "Reader"), "reader").await;
    store.leave(conn, &room(r), |_| ()).await.expect("leaves");
    j.history.into_iter().map(|m| m.text).collect()
}

type JoinedAt<S> = Joined<<S as RoomStore>::Addr>;

async fn join<S: RoomStore>(
    store: &S,
    conn: Sid,
    spec: JoinSpec,
    peer: &str,
) -> Result<JoinedAt<S>, StoreError<JoinError>> {
    store.join(conn, spec, id(peer), |j| j).await
}

async fn joined<S: RoomStore>(store: &S, conn: Sid, spec: JoinSpec, peer: &str) -> JoinedAt<S> {
    join(store, conn, spec, peer).await.expect("joins")
}

/// The connections of these addresses, in a comparable order.
fn sids<A: SidOf>(at: &[A]) -> Vec<String> {
    let mut v: Vec<String> = at.iter().map(|a| a.sid().to_string()).collect();
    v.sort();
    v
}

fn ids<A>(j: &Joined<A>) -> Vec<&str> {
    j.peers.iter().map(|p| p.id.as_str()).collect()
}

async fn chat<S: RoomStore>(store: &S, conn: Sid, r: &RoomName, t: &str, msg: &str) {
    store
        .chat(conn, r, message(t, msg, None), |_, _| ())
        .await
        .expect("chat");
}

// ---------------------------------------------------------------------------
// The rules

async fn join_order_and_idempotence<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
    let a = joined(&*n.a, s1, spec("r", "A"), "p1").await;
    assert!(a.fresh() && a.peers.is_empty() && a.history.is_empty());
    assert_eq!(a.me.name, "A");
    joined(&*n.b, s2, spec("r", "B"), "p2").await;
    let c = joined(&*n.a, s3, spec("r", "C"), "p3").await;
    assert_eq!(ids(&c), ["p1", "p2"], "others, in join order");
    assert_eq!(c.peers[1].name, "B");
    // Scaled out, the others' connections come with the seat (its
    // peer-joined goes to each straight); one node has no need of them.
    let want = if n.stop_b.is_some() {
        vec![s1, s2]
    } else {
        vec![]
    };
    assert_eq!(sids(&c.others_at), sids(&want), "the others' connections");
    // A connection already in the room gets its own seat back (a
    // connection lives on one node).
    let again = joined(&*n.a, s1, spec("r", "A2"), "p9").await;
    assert!(!again.fresh());
    assert_eq!(again.me.id, id("p1"));
    assert_eq!(again.me.name, "A");
    assert_eq!(ids(&again), ["p2", "p3"]);
}

async fn capacity<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    for (i, store) in [&n.a, &n.b, &n.a].into_iter().enumerate() {
        joined(&**store, Sid::new(), spec("full", "X"), &format!("p{i}")).await;
    }
    assert!(matches!(
        join(&*n.b, Sid::new(), spec("full", "D"), "p4").await,
        Err(StoreError::Rule(JoinError::RoomFull(3)))
    ));
    let m = n.a.member(Sid::new(), &room("full")).await;
    assert!(matches!(m, Err(StoreError::Rule(NotInRoom))));
}

async fn password<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    joined(
        &*n.a,
        Sid::new(),
        with_password(spec("pw", "A"), "s3cret"),
        "p1",
    )
    .await;
    for attempt in [spec("pw", "B"), with_password(spec("pw", "B"), "S3cret")] {
        assert!(matches!(
            join(&*n.b, Sid::new(), attempt, "p2").await,
            Err(StoreError::Rule(JoinError::Unauthorized))
        ));
    }
    let b = joined(
        &*n.b,
        Sid::new(),
        with_password(spec("pw", "B"), "s3cret"),
        "p2",
    )
    .await;
    assert_eq!(ids(&b), ["p1"]);
    // A password given for a room that has none is ignored.
    joined(&*n.a, Sid::new(), spec("open", "C"), "p3").await;
    joined(
        &*n.b,
        Sid::new(),
        with_password(spec("open", "D"), "x"),
        "p4",
    )
    .await;
}

async fn mode<F: Stores>(f: &F) {
    let mut sfu = spec("sfu", "A");
    sfu.mode = Mode::Sfu;
    let n = f.nodes(LIMITS).await;
    assert!(
        matches!(
            join(&*n.a, Sid::new(), sfu.clone(), "p1").await,
            Err(StoreError::Rule(JoinError::ModeUnavailable("no SFU here")))
        ),
        "no SFU here: such a room is not created"
    );
    let n = f
        .nodes(RoomLimits {
            sfu: Ok(()),
            ..LIMITS
        })
        .await;
    // Scaled out, an SFU room needs a live SFU node (a no-op on one node).
    n.a.sfu_announce(0, true, &[]).await.expect("announced");
    let a = joined(&*n.a, Sid::new(), sfu, "p1").await;
    assert_eq!(a.mode, Mode::Sfu);
    assert!(
        a.sfu_epoch.is_none_or(|e| e > 0),
        "one node: no epoch; scaled out: the first placement ({:?})",
        a.sfu_epoch
    );
    let b = joined(&*n.b, Sid::new(), spec("sfu", "B"), "p2").await;
    assert_eq!(b.mode, Mode::Sfu, "later joiners get the room's mode");
    let m = n.b.member(Sid::new(), &room("sfu")).await;
    assert!(m.is_err());
}

/// Scaled out, an SFU room is owned by an SFU node; when that goes, the
/// room moves (or waits for one). On one node it is always here.
async fn sfu_placement<F: Stores>(f: &F) {
    let n = f
        .nodes(RoomLimits {
            sfu: Ok(()),
            ..LIMITS
        })
        .await;
    let r = room("placed");
    let mut sfu = spec("placed", "A");
    sfu.mode = Mode::Sfu;
    let route = |s: &Arc<F::S>| {
        let (s, r) = (s.clone(), r.clone());
        async move { s.sfu_route(&r).await.expect("routed") }
    };
    if n.stop_b.is_none() {
        joined(&*n.a, Sid::new(), sfu, "p1").await;
        assert_eq!(
            route(&n.a).await.host,
            SfuHost::Here,
            "one node: always here"
        );
        return;
    }
    // Node b runs no SFU: a room it creates is owned by node a.
    n.a.sfu_announce(0, true, &[]).await.expect("announced");
    let (c1, c2) = (Sid::new(), Sid::new());
    joined(&*n.b, c1, sfu, "p1").await;
    joined(&*n.a, c2, spec("placed", "B"), "p2").await;
    assert_eq!(route(&n.a).await.host, SfuHost::Here);
    let from_b = route(&n.b).await;
    assert_eq!(from_b.host, SfuHost::Elsewhere("node-a".into()));
    assert!(from_b.epoch > 0 && from_b.moved.is_none(), "{from_b:?}");
    let first = from_b.epoch;
    // Node a's SFU stops with no other SFU node: the room waits, unowned.
    n.a.sfu_retire().await.expect("retired");
    let swept = n.b.sfu_sweep(true).await.expect("swept");
    assert!(
        swept.moved.is_empty() && !swept.live,
        "nowhere to go: {swept:?}"
    );
    assert_eq!(route(&n.b).await.host, SfuHost::Nowhere);
    // Node b starts an SFU: the next signal moves the room there, to a new
    // placement.
    n.b.sfu_announce(0, true, &[]).await.expect("announced");
    let moved = route(&n.a).await;
    assert_eq!(moved.host, SfuHost::Elsewhere("node-b".into()));
    let mv = moved.moved.expect("moved now");
    assert_eq!((mv.from, mv.to.as_str(), mv.members), (None, "node-b", 2));
    assert!(mv.epoch > first, "epochs grow: {} then {}", first, mv.epoch);
    assert_eq!(route(&n.b).await.host, SfuHost::Here);
    assert!(route(&n.b).await.moved.is_none(), "moved once");
    // Node a's SFU comes back; node b's dies: the sweep moves the room back.
    n.a.sfu_announce(0, true, &[]).await.expect("announced");
    n.b.sfu_retire().await.expect("retired");
    let swept = n.a.sfu_sweep(true).await.expect("swept");
    assert!(swept.live && swept.simulcast);
    assert_eq!(swept.moved.len(), 1, "{swept:?}");
    assert_eq!(swept.moved[0].to, "node-a");
    assert_eq!(swept.moved[0].from.as_deref(), Some("node-b"));
    assert!(swept.moved[0].epoch > mv.epoch);
    // Each node squares what it hosts with Redis: node a owns the room;
    // node b (stalled, say, and back) must end its copy and tell its
    // members, who may have missed the move.
    let hosted = [r.clone()];
    let squared = n.a.sfu_announce(0, true, &hosted).await.expect("announced");
    assert!(
        squared.gone.is_empty() && squared.orphans.is_empty(),
        "{squared:?}"
    );
    let squared = n.b.sfu_announce(0, true, &hosted).await.expect("announced");
    assert_eq!(squared.gone.len(), 1, "{squared:?}");
    assert_eq!(
        (squared.gone[0].to.as_str(), squared.gone[0].epoch),
        ("node-a", swept.moved[0].epoch)
    );
    // Once the room ended, a node that still hosts it (it never heard the
    // last leave) finds it an orphan.
    n.b.leave(c1, &r, |_| ()).await.expect("left");
    n.a.leave(c2, &r, |_| ()).await.expect("left");
    let squared = n.a.sfu_announce(0, true, &hosted).await.expect("announced");
    assert_eq!(squared.orphans, vec![r.clone()]);
    assert!(
        n.a.sfu_announce(0, true, &[])
            .await
            .expect("announced")
            .orphans
            .is_empty()
    );
}

async fn history<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2) = (Sid::new(), Sid::new());
    let r = room("chat");
    joined(&*n.a, s1, spec("chat", "A"), "p1").await;
    for i in 0..5 {
        chat(&*n.a, s1, &r, &format!("m{i}"), &format!("id{i}")).await;
    }
    let members =
        n.a.chat(s1, &r, message("counted", "id5", None), |msg, count| {
            (msg, count)
        })
        .await
        .expect("chat");
    assert_eq!(members.1, 1);
    assert_eq!(members.0.from.id, id("p1"));
    assert_eq!(
        members.0.from.media, None,
        "chat from carries id and name only"
    );
    assert!(matches!(
        n.b.chat(s2, &r, message("x", "nope", None), |_, _| ())
            .await,
        Err(StoreError::Rule(NotInRoom))
    ));
    let late = joined(&*n.b, s2, spec("chat", "B"), "p2").await;
    let texts: Vec<_> = late.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m3", "m4", "counted"], "bounded, oldest first");
    assert_eq!(late.history[0].from.name, "A");
    // No message outlives its room.
    for (store, s) in [(&n.a, s1), (&n.b, s2)] {
        store.leave(s, &r, |_| ()).await.expect("leaves");
    }
    let fresh = joined(&*n.b, s2, spec("chat", "C"), "p3").await;
    assert!(fresh.history.is_empty() && fresh.peers.is_empty());
}

async fn receipts<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2) = (Sid::new(), Sid::new());
    let r = room("rcpt");
    joined(&*n.a, s1, spec("rcpt", "A"), "p1").await;
    joined(&*n.b, s2, spec("rcpt", "B"), "p2").await;
    chat(&*n.a, s1, &r, "hello", "m1").await;
    let got = n.b.receipt(s2, &r, "m1").await.expect("receipt");
    assert_eq!((got.from.as_str(), got.author.as_str()), ("p2", "p1"));
    assert_eq!(got.to.sid(), s1);
    let own = n.a.receipt(s1, &r, "m1").await.expect("own receipt");
    assert_eq!(
        own.author, own.from,
        "one's own message: the handler drops it"
    );
    assert!(matches!(
        n.b.receipt(s2, &r, "nope").await,
        Err(StoreError::Rule(ReceiptError::UnknownMessage))
    ));
    assert!(matches!(
        n.b.receipt(Sid::new(), &r, "m1").await,
        Err(StoreError::Rule(ReceiptError::NotInRoom))
    ));
    n.a.leave(s1, &r, |_| ()).await.expect("leaves");
    assert!(matches!(
        n.b.receipt(s2, &r, "m1").await,
        Err(StoreError::Rule(ReceiptError::AuthorGone))
    ));
}

async fn routes<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
    let r = room("sig");
    joined(&*n.a, s1, spec("sig", "A"), "p1").await;
    joined(&*n.b, s2, spec("sig", "B"), "p2").await;
    joined(&*n.a, s3, spec("other", "C"), "p3").await;
    let (from, to) = n.b.route(s2, &r, &id("p1")).await.expect("routes");
    assert_eq!((from, to.sid()), (id("p2"), s1));
    let cases = [
        (s1, "sig", "p3", RouteError::UnknownPeer),
        (s1, "sig", "p1", RouteError::ToSelf),
        (s3, "sig", "p1", RouteError::NotInRoom),
        (s1, "nope", "p2", RouteError::NotInRoom),
    ];
    for (conn, r, to, want) in cases {
        match n.a.route(conn, &room(r), &id(to)).await {
            Err(StoreError::Rule(got)) => assert_eq!(got, want, "{r} → {to}"),
            other => panic!("{r} → {to}: {other:?}"),
        }
    }
    let to = n.a.addr_of(&r, &id("p2")).await.expect("store answers");
    assert_eq!(to.map(|a| a.sid()), Some(s2));
    assert_eq!(n.a.addr_of(&r, &id("p3")).await.expect("answers"), None);
}

async fn media_state<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2) = (Sid::new(), Sid::new());
    let r = room("media");
    let media = MediaState {
        audio: false,
        video: true,
        screen: false,
        recording: true,
    };
    assert!(matches!(
        n.a.set_media(s1, &r, media).await,
        Err(StoreError::Rule(NotInRoom))
    ));
    joined(&*n.a, s1, spec("media", "A"), "p1").await;
    let set = n.a.set_media(s1, &r, media).await.expect("set");
    assert_eq!(set, (id("p1"), 1));
    let b = joined(&*n.b, s2, spec("media", "B"), "p2").await;
    assert_eq!(b.peers[0].media, Some(media), "listed to later joiners");
    assert_eq!(b.me.media, None);
    let m = n.a.member(s1, &r).await.expect("member");
    assert_eq!((m.me.id.as_str(), m.count, m.mode), ("p1", 2, Mode::Mesh));
    assert_eq!(m.me.media, None, "the sender's identity carries no media");
}

async fn leave_and_disconnect<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2) = (Sid::new(), Sid::new());
    let (x, y) = (room("x"), room("y"));
    joined(&*n.a, s1, spec("x", "A"), "p1").await;
    joined(&*n.a, s1, spec("y", "A"), "p2").await;
    joined(&*n.b, s2, spec("y", "B"), "p3").await;
    let mut rooms = n.a.rooms_of(s1).await.expect("rooms");
    rooms.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(rooms, [x.clone(), y.clone()]);
    assert!(matches!(
        n.a.leave(s2, &x, |_| ()).await,
        Err(StoreError::Rule(NotInRoom))
    ));
    // A disconnect leaves every room: what the handler does with rooms_of.
    let mut lefts = Vec::new();
    for r in n.a.rooms_of(s1).await.expect("rooms") {
        lefts.push(n.a.leave(s1, &r, |left| left).await.expect("leaves"));
    }
    lefts.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let got: Vec<_> = lefts.iter().map(|l| (l.id.as_str(), l.remaining)).collect();
    assert_eq!(got, [("p1", 0), ("p2", 1)]);
    // Scaled out, a leave names those still there (its peer-left goes to
    // each straight).
    let want = if n.stop_b.is_some() { vec![s2] } else { vec![] };
    assert_eq!(sids(&lefts[1].others_at), sids(&want), "who is still there");
    assert!(lefts[0].others_at.is_empty(), "nobody is left in room x");
    assert!(n.a.rooms_of(s1).await.expect("rooms").is_empty());
    assert!(matches!(
        n.a.leave(s1, &y, |_| ()).await,
        Err(StoreError::Rule(NotInRoom))
    ));
    // Room x is gone: a new room of that name starts afresh, with its
    // creator's mode and password.
    let c = joined(&*n.b, s2, with_password(spec("x", "B"), "new"), "p4").await;
    assert!(c.fresh() && c.peers.is_empty());
    n.b.leave(s2, &y, |_| ()).await.expect("leaves");
    assert!(n.a.member(s2, &y).await.is_err(), "room y is gone");
}

async fn sweep<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
    let r = room("sweep");
    joined(&*n.a, s1, spec("sweep", "Live"), "p1").await;
    joined(&*n.b, s2, spec("sweep", "B1"), "p2").await;
    joined(&*n.b, s3, spec("sweep", "B2"), "p3").await;
    assert!(
        n.a.sweep().await.expect("sweep").gone.is_empty(),
        "every node is alive"
    );
    let Some(stop_b) = n.stop_b else {
        // One node: no other node can stop; its members leave by disconnect.
        assert_eq!(n.a.member(s1, &r).await.expect("member").count, 3);
        return;
    };
    stop_b();
    let mut gone: Vec<_> =
        n.a.sweep()
            .await
            .expect("sweep")
            .gone
            .into_iter()
            .map(|(r, left)| (r, left.id, left.remaining))
            .collect();
    gone.sort_by(|x, y| x.1.as_str().cmp(y.1.as_str()));
    assert_eq!(gone.len(), 2);
    assert_eq!(
        (gone[0].0.clone(), gone[0].1.clone()),
        (r.clone(), id("p2"))
    );
    assert_eq!(gone[1].1, id("p3"));
    assert_eq!(
        gone.iter().map(|g| g.2).min(),
        Some(1),
        "the live member stays"
    );
    assert!(n.a.sweep().await.expect("sweep again").gone.is_empty());
    let m = n.a.member(s1, &r).await.expect("still in");
    assert_eq!((m.me.id.as_str(), m.count), ("p1", 1));
}

async fn rooms_per_connection<F: Stores>(f: &F) {
    let n = f.nodes(LIMITS).await;
    let s1 = Sid::new();
    for i in 0..4 {
        joined(&*n.a, s1, spec(&format!("cap{i}"), "A"), &format!("p{i}")).await;
    }
    assert!(matches!(
        join(&*n.a, s1, spec("cap4", "A"), "p4").await,
        Err(StoreError::Rule(JoinError::TooManyRooms(4)))
    ));
    let again = joined(&*n.a, s1, spec("cap0", "A"), "p9").await;
    assert!(!again.fresh(), "a room it is in can be joined again");
    n.a.leave(s1, &room("cap1"), |_| ()).await.expect("leaves");
    joined(&*n.a, s1, spec("cap4", "A"), "p4").await;
    // Leaving every room (a disconnect, last room first) empties them all.
    let rooms = n.a.rooms_of(s1).await.expect("rooms");
    assert_eq!(rooms.len(), 4);
    for r in rooms.iter().rev() {
        n.a.leave(s1, r, |_| ()).await.expect("leaves");
    }
    assert!(n.a.rooms_of(s1).await.expect("rooms").is_empty());
}

async fn history_bytes_per_room<F: Stores>(f: &F) {
    let limits = RoomLimits {
        history: 100,
        history_bytes: 20 << 10,
        ..LIMITS
    };
    let n = f.nodes(limits).await;
    let s1 = Sid::new();
    let r = room("hb");
    joined(&*n.a, s1, spec("hb", "A"), "p1").await;
    // 2 000 four-byte characters: 8 000 bytes of text each.
    let big = "😀".repeat(2000);
    for i in 0..5 {
        n.a.chat(s1, &r, message(&big, &format!("b{i}"), None), |_, _| ())
            .await
            .expect("chat");
    }
    n.a.chat(s1, &r, message("small", "s", None), |_, _| ())
        .await
        .expect("chat");
    let kept = history_of(&*n.b, "hb").await;
    assert_eq!(
        kept.len(),
        3,
        "two big ones and the small one fit in 20 KiB"
    );
    assert_eq!(
        kept.last().map(String::as_str),
        Some("small"),
        "oldest first, newest kept"
    );
}

async fn history_bytes_per_address<F: Stores>(f: &F) {
    let limits = RoomLimits {
        history: 100,
        history_bytes: 64 << 10,
        history_bytes_per_ip: 40 << 10,
        ..LIMITS
    };
    let n = f.nodes(limits).await;
    let ip: IpAddr = "198.51.100.7".parse().expect("ip");
    let other: IpAddr = "198.51.100.8".parse().expect("ip");
    let big = "😀".repeat(2000);
    // One address writes 8 messages of ~8 KB (8 132 bytes counted) over 4
    // rooms: only its newest 5 (under 40 KiB) stay, wherever they are.
    for i in 0..4 {
        let s = Sid::new();
        let name = format!("ip{i}");
        joined(&*n.a, s, spec(&name, "A"), &format!("p{i}")).await;
        for j in 0..2 {
            let msg = message(&big, &format!("m{i}{j}"), Some(ip));
            n.a.chat(s, &room(&name), msg, |_, _| ())
                .await
                .expect("chat");
        }
    }
    let mut kept = Vec::new();
    for i in 0..4 {
        kept.push(history_of(&*n.b, &format!("ip{i}")).await.len());
    }
    assert_eq!(
        kept,
        [0, 1, 2, 2],
        "the address's oldest messages went first"
    );
    // Another address's history is its own.
    let s = Sid::new();
    joined(&*n.b, s, spec("ip0", "B"), "q").await;
    let msg = message(&big, "o", Some(other));
    n.b.chat(s, &room("ip0"), msg, |_, _| ())
        .await
        .expect("chat");
    assert_eq!(history_of(&*n.a, "ip0").await.len(), 1);
    assert_eq!(history_of(&*n.a, "ip3").await.len(), 2, "untouched");
}

fn signal(from: &str, n: u32) -> Parcel {
    let ev: protocol::SignalEvent = serde_json::from_value(serde_json::json!({
        "room": "held", "from": from, "data": {"type": "offer", "sdp": format!("v=0 {n}")}
    }))
    .expect("a signal event");
    Parcel::Signal(ev)
}

/// Waits (at most 5 s) until the hold of a seat ends, as the node's
/// expiry pass does; returns what ended.
async fn expired<S: RoomStore>(store: &S) -> Vec<(RoomName, signal_server::rooms::Left<S::Addr>)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let gone = store.expire().await.expect("expire");
        if !gone.is_empty() || std::time::Instant::now() > deadline {
            return gone;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// PROTOCOL.md version 2, "Resume": a lost connection's seat is held,
/// still counted and listed; events for it are kept (the last
/// `kept_events`); its token takes it back on any node, with the same id,
/// without the password, once; the grace period ends it as a leave.
async fn resume<F: Stores>(f: &F) {
    let n = f.nodes(HOLDING).await;
    let (s1, s2, s3, s4) = (Sid::new(), Sid::new(), Sid::new(), Sid::new());
    let r = room("held");
    let a = joined(&*n.a, s1, with_password(spec("held", "Ana"), "pw"), "p1").await;
    let pw = |s| with_password(s, "pw");
    joined(&*n.b, s2, pw(spec("held", "Bo")), "p2").await;
    let held = n.a.hold(s1).await.expect("hold");
    assert_eq!(
        held,
        [HeldSeat {
            room: r.clone(),
            id: id("p1")
        }]
    );
    assert_eq!(
        n.a.held_count(),
        usize::from(n.stop_b.is_none()),
        "one node counts at once"
    );
    assert!(
        n.a.rooms_of(s1).await.expect("rooms").is_empty(),
        "the lost socket is in no room"
    );
    // Held: routed as held, still counted and listed, never a sender.
    let (from, dest) = n.b.route(s2, &r, &id("p1")).await.expect("routes");
    assert_eq!((from, dest), (id("p2"), Dest::Held));
    assert_eq!(n.b.member(s2, &r).await.expect("member").count, 2);
    let c = joined(&*n.b, s3, pw(spec("held", "Cy")), "p3").await;
    assert_eq!(ids(&c), ["p1", "p2"], "a held seat is listed");
    assert!(
        matches!(
            join(&*n.a, Sid::new(), pw(spec("held", "Full")), "p9").await,
            Err(StoreError::Rule(JoinError::RoomFull(3)))
        ),
        "a held seat counts toward capacity"
    );
    for i in 0..6 {
        assert_eq!(
            n.b.keep(&r, &id("p1"), signal("p2", i))
                .await
                .expect("kept"),
            Keep::Kept
        );
    }
    assert!(matches!(
        n.b.keep(&r, &id("nobody"), signal("p2", 9)).await,
        Err(StoreError::Rule(RouteError::UnknownPeer))
    ));
    // A wrong token is an ordinary join (here refused: full).
    assert!(matches!(
        join(&*n.b, s4, pw(resuming(spec("held", "X"), "wrong")), "p8").await,
        Err(StoreError::Rule(JoinError::RoomFull(3)))
    ));
    // Taken back on the other node, without the password, keeping its name.
    let back = joined(&*n.b, s4, resuming(spec("held", "Other"), &a.token), "p7").await;
    assert_eq!((back.me.id.as_str(), back.me.name.as_str()), ("p1", "Ana"));
    assert_eq!(ids(&back), ["p2", "p3"]);
    assert_ne!(back.token, a.token, "a new token");
    let How::Resumed { kept, replaced } = back.how else {
        panic!("resumed: {:?}", back.how);
    };
    assert_eq!(replaced, None, "it was held, not live");
    assert_eq!(
        kept,
        (2..6).map(|i| signal("p2", i)).collect::<Vec<_>>(),
        "the last 4, in order"
    );
    let (_, dest) = n.b.route(s2, &r, &id("p1")).await.expect("routes");
    assert_eq!(dest.sid(), s4, "live again, at its new connection");
    match n
        .b
        .keep(&r, &id("p1"), signal("p2", 7))
        .await
        .expect("live")
    {
        Keep::Live(addr, parcel) => {
            assert_eq!(addr.sid(), s4);
            assert_eq!(parcel, signal("p2", 7), "handed back to be delivered");
        }
        Keep::Kept => panic!("a live seat keeps nothing"),
    }
    // Each token resumes once: the old one is now unknown.
    let s5 = Sid::new();
    n.b.leave(s3, &r, |_| ()).await.expect("p3 leaves");
    let again = joined(&*n.a, s5, pw(resuming(spec("held", "Dee"), &a.token)), "p5").await;
    assert!(again.fresh(), "a used token: an ordinary join");
    assert_eq!(again.me.id, id("p5"));
    n.a.leave(s5, &r, |_| ()).await.expect("p5 leaves");
    // The grace period ends it: a leave, the others stay.
    assert_eq!(n.b.hold(s4).await.expect("hold").len(), 1);
    assert!(n.a.expire().await.expect("expire").is_empty(), "not yet");
    let gone = expired(&*n.a).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (&gone[0].0, &gone[0].1.id, gone[0].1.remaining),
        (&r, &id("p1"), 1)
    );
    assert_eq!(n.a.held_count(), 0);
    assert!(n.a.expire().await.expect("expire").is_empty(), "ended once");
    let late = joined(
        &*n.a,
        Sid::new(),
        resuming(pw(spec("held", "Late")), &back.token),
        "p6",
    )
    .await;
    assert!(late.fresh(), "an expired token: an ordinary join");
}

/// A token also takes back a seat whose connection is not known to be lost
/// yet (a reload seen before the old socket's close): the old connection
/// is out of the room.
async fn resume_a_live_seat<F: Stores>(f: &F) {
    let n = f.nodes(HOLDING).await;
    let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
    let r = room("live");
    let a = joined(&*n.a, s1, spec("live", "Ana"), "p1").await;
    joined(&*n.a, s2, spec("live", "Bo"), "p2").await;
    let back = joined(&*n.b, s3, resuming(spec("live", "Ana"), &a.token), "p3").await;
    assert_eq!(back.me.id, id("p1"));
    let How::Resumed { kept, replaced } = back.how else {
        panic!("resumed: {:?}", back.how);
    };
    assert!(kept.is_empty());
    assert_eq!(replaced.map(|a| a.sid()), Some(s1));
    assert!(n.a.rooms_of(s1).await.expect("rooms").is_empty());
    assert!(
        n.a.member(s1, &r).await.is_err(),
        "the old connection is out"
    );
    assert!(
        n.a.hold(s1).await.expect("hold").is_empty(),
        "nothing of the old connection to hold"
    );
    assert_eq!(n.a.member(s2, &r).await.expect("member").count, 2);
}

/// Scaled out with resume on, a stopped node's members are held rather
/// than removed: they resume on another node.
async fn sweep_holds<F: Stores>(f: &F) {
    let n = f.nodes(HOLDING).await;
    let (s1, s2, s3) = (Sid::new(), Sid::new(), Sid::new());
    let r = room("swept");
    joined(&*n.a, s1, spec("swept", "Live"), "p1").await;
    let b = joined(&*n.b, s2, spec("swept", "B"), "p2").await;
    let Some(stop_b) = n.stop_b else {
        return;
    };
    stop_b();
    let swept = n.a.sweep().await.expect("sweep");
    let (held, gone) = (swept.held, swept.gone);
    assert_eq!(
        held,
        [HeldSeat {
            room: r.clone(),
            id: id("p2")
        }]
    );
    assert!(gone.is_empty());
    assert_eq!(n.a.member(s1, &r).await.expect("member").count, 2);
    let back = joined(&*n.a, s3, resuming(spec("swept", "B"), &b.token), "p3").await;
    assert_eq!(back.me.id, id("p2"));
    assert!(matches!(back.how, How::Resumed { replaced: None, .. }));
}

/// PROTOCOL.md version 2, "Host controls": the creator is host, then whoever
/// is there longest; only the host kicks, locks and asks to mute; anyone
/// raises a hand; a locked room lets only resumes in.
async fn host_and_acts<F: Stores>(f: &F) {
    let n = f
        .nodes(RoomLimits {
            max_peers: 6,
            ..HOLDING
        })
        .await;
    let (s1, s2, s3, s4) = (Sid::new(), Sid::new(), Sid::new(), Sid::new());
    let r = room("hosted");
    let a = joined(&*n.a, s1, spec("hosted", "Ana"), "p1").await;
    assert!(a.me.host);
    let b = joined(&*n.b, s2, spec("hosted", "Bo"), "p2").await;
    assert!(!b.me.host);
    assert_eq!(b.peers.iter().map(|p| p.host).collect::<Vec<_>>(), [true]);
    joined(&*n.a, s3, spec("hosted", "Cy"), "p3").await;
    // Only the host.
    for act in [Act::Lock(true), Act::Kick(id("p3")), Act::Mute(id("p3"))] {
        assert!(
            matches!(
                n.b.act(s2, &r, act.clone()).await,
                Err(StoreError::Rule(ActError::Forbidden))
            ),
            "{act:?} from a member"
        );
    }
    for act in [Act::Kick(id("p1")), Act::Mute(id("p1"))] {
        assert!(matches!(
            n.a.act(s1, &r, act).await,
            Err(StoreError::Rule(ActError::ToSelf))
        ));
    }
    assert!(matches!(
        n.a.act(s1, &r, Act::Kick(id("nobody"))).await,
        Err(StoreError::Rule(ActError::UnknownPeer))
    ));
    assert!(matches!(
        n.a.act(Sid::new(), &r, Act::Lock(true)).await,
        Err(StoreError::Rule(ActError::NotInRoom))
    ));
    // A hand, from anyone, is listed to later joiners.
    let up = n.b.act(s2, &r, Act::Hand(true)).await.expect("hand");
    assert_eq!((up.by.as_str(), up.count), ("p2", 3));
    let d = joined(&*n.b, s4, spec("hosted", "Di"), "p4").await;
    let flags: Vec<_> = d
        .peers
        .iter()
        .map(|p| (p.id.as_str(), p.host, p.hand))
        .collect();
    assert_eq!(
        flags,
        [
            ("p1", true, false),
            ("p2", false, true),
            ("p3", false, false)
        ]
    );
    n.b.leave(s4, &r, |_| ()).await.expect("leaves");
    // Mute: where the peer is.
    let mute = n.a.act(s1, &r, Act::Mute(id("p2"))).await.expect("mute");
    assert_eq!(mute.target.map(|d| d.sid()), Some(s2));
    // Lock: only resumes get in.
    n.a.act(s1, &r, Act::Lock(true)).await.expect("lock");
    assert!(matches!(
        join(&*n.b, Sid::new(), spec("hosted", "Ed"), "p5").await,
        Err(StoreError::Rule(JoinError::Locked))
    ));
    n.b.hold(s2).await.expect("hold");
    let s2b = Sid::new();
    let back = joined(&*n.a, s2b, resuming(spec("hosted", "Bo"), &b.token), "p6").await;
    assert_eq!(back.me.id, id("p2"), "a resume gets into a locked room");
    assert!(back.locked, "and its ack says the room is locked");
    n.a.act(s1, &r, Act::Lock(false)).await.expect("unlock");
    // Kick: out, with its token.
    let kicked = n.a.act(s1, &r, Act::Kick(id("p3"))).await.expect("kick");
    assert_eq!(kicked.target.map(|d| d.sid()), Some(s3));
    let left = kicked.left.expect("a leave");
    assert_eq!(
        (left.id.as_str(), left.remaining, left.host),
        ("p3", 2, None)
    );
    assert!(
        n.a.member(s3, &r).await.is_err(),
        "the kicked connection is out"
    );
    assert!(n.a.rooms_of(s3).await.expect("rooms").is_empty());
    // The host leaves: the member there longest is host.
    let gone = n.a.leave(s1, &r, |l| l).await.expect("leaves");
    assert_eq!(gone.host, Some(id("p2")));
    let e = joined(&*n.b, Sid::new(), spec("hosted", "Ed"), "p7").await;
    assert_eq!(
        e.peers
            .iter()
            .map(|p| (p.id.as_str(), p.host))
            .collect::<Vec<_>>(),
        [("p2", true)]
    );
    n.a.act(s2b, &r, Act::Lock(true))
        .await
        .expect("the new host locks");
}
