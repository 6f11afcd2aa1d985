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
    Conn, JoinError, JoinSpec, Joined, LocalStore, NewMessage, NotInRoom, ReceiptError, RedisStore,
    RoomLimits, RoomStore, RouteError, StoreError,
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
                let store = RedisStore::new(driver, &prefix, name, limits);
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
    }
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

async fn join<S: RoomStore>(
    store: &S,
    conn: Sid,
    spec: JoinSpec,
    peer: &str,
) -> Result<Joined, StoreError<JoinError>> {
    store.join(conn, spec, id(peer), |j| j).await
}

async fn joined<S: RoomStore>(store: &S, conn: Sid, spec: JoinSpec, peer: &str) -> Joined {
    join(store, conn, spec, peer).await.expect("joins")
}

fn ids(j: &Joined) -> Vec<&str> {
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
    assert!(a.fresh && a.peers.is_empty() && a.history.is_empty());
    assert_eq!(a.me.name, "A");
    joined(&*n.b, s2, spec("r", "B"), "p2").await;
    let c = joined(&*n.a, s3, spec("r", "C"), "p3").await;
    assert_eq!(ids(&c), ["p1", "p2"], "others, in join order");
    assert_eq!(c.peers[1].name, "B");
    // A connection already in the room gets its own seat back (a
    // connection lives on one node).
    let again = joined(&*n.a, s1, spec("r", "A2"), "p9").await;
    assert!(!again.fresh);
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
    let a = joined(&*n.a, Sid::new(), sfu, "p1").await;
    assert_eq!(a.mode, Mode::Sfu);
    let b = joined(&*n.b, Sid::new(), spec("sfu", "B"), "p2").await;
    assert_eq!(b.mode, Mode::Sfu, "later joiners get the room's mode");
    let m = n.b.member(Sid::new(), &room("sfu")).await;
    assert!(m.is_err());
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
    assert!(n.a.rooms_of(s1).await.expect("rooms").is_empty());
    assert!(matches!(
        n.a.leave(s1, &y, |_| ()).await,
        Err(StoreError::Rule(NotInRoom))
    ));
    // Room x is gone: a new room of that name starts afresh, with its
    // creator's mode and password.
    let c = joined(&*n.b, s2, with_password(spec("x", "B"), "new"), "p4").await;
    assert!(c.fresh && c.peers.is_empty());
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
        n.a.sweep().await.expect("sweep").is_empty(),
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
    assert!(n.a.sweep().await.expect("sweep again").is_empty());
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
    assert!(!again.fresh, "a room it is in can be joined again");
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
