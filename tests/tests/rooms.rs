//! The protocol through a real Rust socket.io client (rust_socketio),
//! against the real server on a real port.

use rust_socketio::TransportType;
use serde_json::json;
use tests::{Peer, TestServer};

#[tokio::test]
async fn join_ack_lists_peers_and_presence_reaches_others_only() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect(&server).await?;

    let ack_a = a.join("room1", " Ana ").await?;
    assert_eq!(ack_a["self"]["name"], "Ana", "name is trimmed");
    assert_eq!(ack_a["room"], json!({"id": "room1", "mode": "mesh"}));
    assert_eq!(ack_a["peers"], json!([]));
    assert_eq!(ack_a["history"], json!([]));
    let id_a = ack_a["self"]["id"].as_str().expect("id").to_owned();
    assert_eq!(id_a.len(), 36, "a UUID: {id_a}");

    assert_eq!(
        ack_a["self"]["host"], true,
        "version 2: the creator is host"
    );

    let ack_b = b.join("room1", "Bo").await?;
    assert_eq!(
        ack_b["peers"],
        json!([{"id": id_a, "name": "Ana", "host": true}])
    );
    assert_eq!(ack_b["self"].get("host"), None, "only the host is marked");
    let id_b = ack_b["self"]["id"].as_str().expect("id").to_owned();
    assert_ne!(id_a, id_b);

    let joined = a.next("peer-joined").await?;
    assert_eq!(joined, json!({"room": "room1", "id": id_b, "name": "Bo"}));
    b.sync().await?;
    b.assert_quiet()?; // the joiner gets no peer-joined for itself

    b.ok("leave", json!({"room": "room1"})).await?;
    assert_eq!(
        a.next("peer-left").await?,
        json!({"room": "room1", "id": id_b})
    );
    assert_eq!(
        b.error("chat", json!({"room": "room1", "text": "hi"}))
            .await?,
        "not_in_room"
    );
    server.stop().await
}

#[tokio::test]
async fn signals_reach_the_addressed_peer_only_with_server_set_from() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect(&server).await?;
    let mut c = Peer::connect(&server).await?;
    let id_a = a.join("r", "A").await?["self"]["id"].clone();
    let id_b = b.join("r", "B").await?["self"]["id"].clone();
    c.join("r", "C").await?;
    a.next("peer-joined").await?;
    a.next("peer-joined").await?;
    b.next("peer-joined").await?;

    for data in [
        json!({"type": "offer", "sdp": "v=0\r\n"}),
        json!({"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}),
        json!({"type": "candidate", "candidate": null}),
        json!({"type": "bye"}),
    ] {
        a.ok(
            "signal",
            json!({"room": "r", "to": id_b, "from": "forged", "data": data}),
        )
        .await?;
        let got = b.next("signal").await?;
        assert_eq!(got["from"], id_a, "from is set by the server");
        assert_eq!(got["room"], "r");
        assert_eq!(got["data"], data);
    }
    c.sync().await?;
    c.assert_quiet()?;

    assert_eq!(
        a.error(
            "signal",
            json!({"room": "r", "to": "nobody", "data": {"type": "bye"}})
        )
        .await?,
        "unknown_peer"
    );
    assert_eq!(
        a.error(
            "signal",
            json!({"room": "elsewhere", "to": id_b, "data": {"type": "bye"}})
        )
        .await?,
        "not_in_room"
    );
    assert_eq!(
        a.error(
            "signal",
            json!({"room": "r", "to": id_b, "data": {"type": "offer"}})
        )
        .await?,
        "bad_request"
    );
    server.stop().await
}

#[tokio::test]
async fn chat_history_and_typing() -> anyhow::Result<()> {
    let server = TestServer::with(|c| c.limits.history = 2).await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect_with(&server, TransportType::Polling).await?;
    let id_a = a.join("r", "A").await?["self"]["id"].clone();
    b.join("r", "B").await?;
    a.next("peer-joined").await?;

    let ack = a
        .ok("chat", json!({"room": "r", "text": "<b>hi</b>"}))
        .await?;
    let msg = b.next("chat").await?;
    assert_eq!(msg["id"], ack["id"]);
    assert_eq!(msg["ts"], ack["ts"]);
    assert_eq!(msg["text"], "<b>hi</b>", "relayed verbatim");
    assert_eq!(msg["from"], json!({"id": id_a, "name": "A"}));
    a.sync().await?;
    a.assert_quiet()?; // the sender has the ack, not the event

    a.ok("typing", json!({"room": "r", "typing": true})).await?;
    assert_eq!(
        b.next("typing").await?,
        json!({"room": "r", "from": id_a, "typing": true})
    );

    for text in ["two", "three"] {
        a.ok("chat", json!({"room": "r", "text": text})).await?;
        b.next("chat").await?;
    }
    let late = Peer::connect(&server).await?;
    let history = late.join("r", "Late").await?["history"].clone();
    let texts: Vec<_> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, ["two", "three"], "bounded, oldest first");
    server.stop().await
}

#[tokio::test]
async fn disconnect_leaves_every_room() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect(&server).await?;
    let multi = Peer::connect(&server).await?;
    a.join("one", "A").await?;
    b.join("two", "B").await?;
    let in_one = multi.join("one", "M").await?["self"]["id"].clone();
    let in_two = multi.join("two", "M").await?["self"]["id"].clone();
    assert_ne!(in_one, in_two, "a peer id per connection to a room");
    a.next("peer-joined").await?;
    b.next("peer-joined").await?;

    multi.disconnect().await?;
    assert_eq!(
        a.next("peer-left").await?,
        json!({"room": "one", "id": in_one})
    );
    assert_eq!(
        b.next("peer-left").await?,
        json!({"room": "two", "id": in_two})
    );
    server.stop().await
}

#[tokio::test]
async fn limits_password_and_mode() -> anyhow::Result<()> {
    let server = TestServer::with(|c| c.limits.max_peers_per_room = 2).await?;
    let a = Peer::connect(&server).await?;
    let b = Peer::connect(&server).await?;
    let c = Peer::connect(&server).await?;
    a.ok(
        "join",
        json!({"room": "locked", "name": "A", "password": "pw"}),
    )
    .await?;
    assert_eq!(
        b.error("join", json!({"room": "locked", "name": "B"}))
            .await?,
        "unauthorized"
    );
    assert_eq!(
        b.error(
            "join",
            json!({"room": "locked", "name": "B", "password": "PW"})
        )
        .await?,
        "unauthorized"
    );
    b.ok(
        "join",
        json!({"room": "locked", "name": "B", "password": "pw"}),
    )
    .await?;
    assert_eq!(
        c.error(
            "join",
            json!({"room": "locked", "name": "C", "password": "pw"})
        )
        .await?,
        "room_full"
    );
    assert_eq!(
        c.error("join", json!({"room": "s", "name": "C", "mode": "sfu"}))
            .await?,
        "bad_request",
        "no SFU on this server"
    );
    assert_eq!(
        c.error("join", json!({"room": "bad room", "name": "C"}))
            .await?,
        "bad_request"
    );
    assert_eq!(
        c.error("dance", json!({"room": "r"})).await?,
        "bad_request",
        "unknown event"
    );
    server.stop().await
}

#[tokio::test]
async fn rate_limit_and_payload_size_are_answered() -> anyhow::Result<()> {
    let server = TestServer::with(|c| {
        c.limits.rate_burst = 5;
        c.limits.rate_per_sec = 1;
        c.limits.max_message_bytes = 2000;
    })
    .await?;
    let a = Peer::connect(&server).await?;
    a.join("r", "A").await?;
    let big = "x".repeat(5000);
    assert_eq!(
        a.error(
            "signal",
            json!({"room": "r", "to": "x", "data": {"type": "offer", "sdp": big}})
        )
        .await?,
        "payload_too_large"
    );
    let mut codes = Vec::new();
    for _ in 0..8 {
        let ack = a
            .ack("typing", json!({"room": "r", "typing": true}))
            .await?;
        codes.push(if ack["ok"] == true {
            "ok".to_owned()
        } else {
            ack["error"]["code"].as_str().unwrap_or("?").to_owned()
        });
    }
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    assert!(
        codes.iter().all(|c| c == "ok" || c == "rate_limited"),
        "{codes:?}"
    );
    server.stop().await
}

/// The protocol extensions the web client uses (docs/protocol-extensions.md).
#[tokio::test]
async fn extensions_media_state_receipts_and_relay_pings() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect(&server).await?;
    let id_a = a.join("r", "A").await?["self"]["id"].clone();
    a.ok(
        "media-state",
        json!({"room": "r", "audio": false, "video": true}),
    )
    .await?;
    let ack_b = b.join("r", "B").await?;
    let id_b = ack_b["self"]["id"].clone();
    assert_eq!(
        ack_b["peers"][0]["media"],
        json!({"audio": false, "video": true, "screen": false}),
        "late joiners see the announced state"
    );
    a.next("peer-joined").await?;

    b.ok(
        "media-state",
        json!({"room": "r", "audio": true, "video": false, "screen": true}),
    )
    .await?;
    assert_eq!(
        a.next("media-state").await?,
        json!({"room": "r", "from": id_b, "audio": true, "video": false, "screen": true})
    );

    let msg_id = a.ok("chat", json!({"room": "r", "text": "hi"})).await?["id"].clone();
    b.next("chat").await?;
    b.ok("chat-receipt", json!({"room": "r", "id": msg_id}))
        .await?;
    assert_eq!(
        a.next("chat-receipt").await?,
        json!({"room": "r", "id": msg_id, "from": id_b})
    );
    assert_eq!(
        b.error("chat-receipt", json!({"room": "r", "id": "nope"}))
            .await?,
        "bad_request"
    );

    a.ok(
        "peer-ping",
        json!({"room": "r", "to": id_b, "seq": 7, "pong": false}),
    )
    .await?;
    let ping = b.next("peer-ping").await?;
    assert_eq!(
        ping,
        json!({"room": "r", "from": id_a, "seq": 7, "pong": false})
    );
    b.ok(
        "peer-ping",
        json!({"room": "r", "to": id_a, "seq": 7, "pong": true}),
    )
    .await?;
    assert_eq!(a.next("peer-ping").await?["pong"], true);
    server.stop().await
}
