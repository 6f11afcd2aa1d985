//! Bad clients must not disturb good ones, and no event may be lost right
//! after connecting.

use serde_json::json;
use tests::{Peer, RawSocket, TestServer};

#[tokio::test]
async fn garbage_frames_disturb_no_one_else() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut a = Peer::connect(&server).await?;
    let mut b = Peer::connect(&server).await?;
    a.join("r", "A").await?;
    b.join("r", "B").await?;
    a.next("peer-joined").await?;

    let garbage: [&str; 14] = [
        "",
        "x",
        "9999",
        "4",
        "4x",
        "40",
        "42",
        "42[",
        r#"42["join""#,
        "42[1,2]",
        r#"42["join","not an object"]"#,
        r#"421["join",{"room":5}]"#,
        r#"451-["chat",{"_placeholder":true,"num":0}]"#,
        "4\u{0}\u{1}\u{2}",
    ];
    for (i, frame) in garbage.iter().enumerate() {
        let mut raw = RawSocket::open(server.addr).await?;
        raw.send("40").await?;
        raw.recv_prefixed("40").await?;
        // Either answered or dropped: what matters is the others.
        let _ = raw.send(*frame).await;
        let _ = raw.send_binary(vec![0xff; 64]).await;
        let _ = raw.send("x".repeat(1 << 20)).await;
        a.ok(
            "chat",
            json!({"room": "r", "text": format!("still here {i}")}),
        )
        .await?;
        assert_eq!(b.next("chat").await?["text"], format!("still here {i}"));
    }
    server.stop().await
}

#[tokio::test]
async fn malformed_events_get_bad_request_acks() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut raw = RawSocket::open(server.addr).await?;
    raw.send("40").await?;
    raw.recv_prefixed("40").await?;
    let cases = [
        (r#"421["join","room"]"#, "431["),
        (r#"422["join",["r","A"]]"#, "432["),
        (r#"423["join"]"#, "433["),
        (r#"425["chat",{"room":"r","text":7}]"#, "435["),
    ];
    for (frame, ack_prefix) in cases {
        raw.send(frame).await?;
        let ack = raw.recv_prefixed(ack_prefix).await?;
        let body: serde_json::Value = serde_json::from_str(&ack[ack_prefix.len() - 1..])?;
        assert_eq!(body[0]["ok"], false, "{frame} -> {ack}");
        assert_eq!(body[0]["error"]["code"], "bad_request", "{frame} -> {ack}");
    }
    // The connection is still usable after all that.
    raw.send(r#"426["join",{"room":"r","name":"A"}]"#).await?;
    let ack = raw.recv_prefixed("436[").await?;
    assert!(ack.contains(r#""ok":true"#), "{ack}");
    server.stop().await
}

/// Each client sends `join` the instant the server says it is connected:
/// the server must answer every join (socketioxide can lose such events
/// when handlers are registered in an async connect handler).
#[tokio::test]
async fn no_event_lost_right_after_connect() -> anyhow::Result<()> {
    let server = TestServer::with(|c| c.limits.max_conns_per_ip = 0).await?;
    let clients = 1000;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let addr = server.addr;
        tasks.spawn(async move {
            let mut raw = RawSocket::open(addr).await?;
            raw.send("40").await?;
            raw.recv_prefixed("40").await?;
            raw.send(format!(
                r#"421["join",{{"room":"burst{}","name":"p{i}"}}]"#,
                i % 10
            ))
            .await?;
            let ack = raw.recv_prefixed("431[").await?;
            anyhow::ensure!(ack.contains(r#""ok":true"#), "{ack}");
            // Keep the socket open until everyone has joined.
            Ok::<_, anyhow::Error>(raw)
        });
    }
    let mut ok = Vec::new();
    while let Some(res) = tasks.join_next().await {
        ok.push(res??);
    }
    assert_eq!(ok.len(), clients);
    drop(ok);
    server.stop().await
}
