//! The Redis room store against a real `redis-server`, with two stores
//! standing for two nodes: the registry's rules hold across nodes, and the
//! members of a node whose heartbeat stopped are swept.

mod common;

use std::time::Duration;

use common::Redis;
use protocol::{ChatText, DisplayName, MediaState, Mode, Password, PeerId, RoomName};
use signal_server::redis_driver::ReconnectingDriver;
use signal_server::redis_store::{RedisStore, StoreError};
use signal_server::registry::{JoinError, JoinSpec, RoomLimits, SignalError};

async fn node(redis: &Redis, name: &str, max_peers: usize) -> RedisStore {
    let driver = ReconnectingDriver::start(redis.client()).await;
    let store = RedisStore::new(
        driver,
        "t",
        name,
        RoomLimits {
            max_peers,
            history: 3,
        },
    );
    store
        .heartbeat(Duration::from_secs(30))
        .await
        .expect("heartbeat");
    store
}

fn spec(room: &str, name: &str, password: Option<&str>) -> JoinSpec {
    JoinSpec {
        room: RoomName::parse(room).expect("room"),
        name: DisplayName::parse(name).expect("name"),
        mode: Mode::Mesh,
        password: password.and_then(|p| Password::parse(p.to_owned()).expect("password")),
    }
}

fn id(s: &str) -> PeerId {
    PeerId::from(s.to_owned())
}

#[tokio::test]
async fn the_rules_hold_across_two_nodes() {
    let redis = Redis::start();
    let a = node(&redis, "node-a", 2).await;
    let b = node(&redis, "node-b", 2).await;
    let room = RoomName::parse("cross").expect("room");

    let ana = a
        .join("s1", spec("cross", "Ana", Some("s3cret")), id("p-ana"))
        .await
        .expect("ana joins");
    assert!(ana.fresh && ana.peers.is_empty() && ana.history.is_empty());
    assert_eq!(ana.mode, Mode::Mesh);

    for pw in [None, Some("wrong")] {
        match b.join("s2", spec("cross", "Bo", pw), id("p-bo")).await {
            Err(StoreError::Rule(JoinError::Unauthorized)) => {}
            other => panic!("password {pw:?}: {other:?}"),
        }
    }
    let bo = b
        .join("s2", spec("cross", "Bo", Some("s3cret")), id("p-bo"))
        .await
        .expect("bo joins");
    assert_eq!(bo.peers.len(), 1);
    assert_eq!(bo.peers[0].id, id("p-ana"));
    assert_eq!(bo.peers[0].name, "Ana");
    // idempotent
    let again = b
        .join("s2", spec("cross", "Bo", Some("s3cret")), id("p-other"))
        .await
        .expect("again");
    assert!(!again.fresh);
    assert_eq!(again.me.id, id("p-bo"));
    // full (2)
    match a
        .join("s3", spec("cross", "Cy", Some("s3cret")), id("p-cy"))
        .await
    {
        Err(StoreError::Rule(JoinError::RoomFull(2))) => {}
        other => panic!("third join: {other:?}"),
    }

    // signals route to the other node's connection
    let (from, to) = b.route_signal("s2", &room, "p-ana").await.expect("route");
    assert_eq!(from, id("p-bo"));
    assert_eq!(
        (to.conn.node.as_str(), to.conn.sid.as_str()),
        ("node-a", "s1")
    );
    assert!(matches!(
        b.route_signal("s2", &room, "p-bo").await,
        Err(StoreError::Rule(SignalError::ToSelf))
    ));
    assert!(matches!(
        b.route_signal("s2", &room, "nobody").await,
        Err(StoreError::Rule(SignalError::UnknownPeer))
    ));
    assert!(matches!(
        b.route_signal("s9", &room, "p-ana").await,
        Err(StoreError::Rule(SignalError::NotInRoom))
    ));

    // chat history is bounded (3) and ordered; receipts find the author
    for i in 0..5 {
        a.chat(
            "s1",
            &room,
            ChatText::parse(format!("m{i}")).expect("text"),
            format!("id{i}"),
            i,
        )
        .await
        .expect("chat");
    }
    let (me, author) = b.route_receipt("s2", &room, "id4").await.expect("receipt");
    assert_eq!(me, id("p-bo"));
    assert_eq!(author.expect("author").conn.node, "node-a");

    // media state is kept for later joiners
    a.set_media(
        "s1",
        &room,
        MediaState {
            audio: false,
            video: true,
            screen: false,
        },
    )
    .await
    .expect("media");
    assert_eq!(b.leave("s2", &room).await.expect("leave").0, id("p-bo"));
    let cy = a
        .join("s3", spec("cross", "Cy", Some("s3cret")), id("p-cy"))
        .await
        .expect("cy joins after bo left");
    let texts: Vec<&str> = cy.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m2", "m3", "m4"]);
    assert_eq!(cy.peers[0].media.map(|m| m.audio), Some(false));
    assert_eq!(a.rooms_of("s3").await.expect("rooms"), vec![room.clone()]);

    // the last one out removes the room: a new room with that name is fresh
    a.leave("s1", &room).await.expect("ana leaves");
    a.leave("s3", &room).await.expect("cy leaves");
    assert_eq!(a.mode(&room).await.expect("mode"), None);
    let fresh = b
        .join("s2", spec("cross", "Bo", None), id("p-bo2"))
        .await
        .expect("no password on a new room");
    assert!(fresh.history.is_empty() && fresh.peers.is_empty());
}

#[tokio::test]
async fn members_of_a_dead_node_are_swept() {
    let redis = Redis::start();
    let live = node(&redis, "live", 10).await;
    let dead = node(&redis, "dead", 10).await;
    let room = RoomName::parse("sweep").expect("room");
    live.join("l1", spec("sweep", "Live", None), id("p-live"))
        .await
        .expect("join");
    dead.join("d1", spec("sweep", "Dead1", None), id("p-d1"))
        .await
        .expect("join");
    dead.join("d2", spec("sweep", "Dead2", None), id("p-d2"))
        .await
        .expect("join");
    assert!(
        live.sweep().await.expect("sweep").is_empty(),
        "dead's heartbeat is still alive"
    );
    // The node dies: its heartbeat key expires (deleted here rather than
    // waited for, so the test does not race a short TTL).
    let mut c = redis.client().get_connection().expect("conn");
    redis::cmd("DEL")
        .arg("t:n:dead")
        .query::<()>(&mut c)
        .expect("del");
    let mut gone = live.sweep().await.expect("sweep");
    gone.sort_by(|x, y| x.1.as_str().cmp(y.1.as_str()));
    assert_eq!(
        gone,
        vec![(room.clone(), id("p-d1")), (room.clone(), id("p-d2"))]
    );
    assert_eq!(live.peer_count_in(&room).await.expect("count"), 1);
    assert!(live.sweep().await.expect("sweep again").is_empty());
    assert_eq!(
        live.member("l1", &room).await.expect("still in").id,
        id("p-live")
    );
}
