//! The reconnecting Redis driver against a real `redis-server` on a free
//! loopback port: messages across two drivers, Redis killed (calls fail at
//! once, no hang), Redis back on the same port (re-subscribed, messages
//! flow again), and a driver started while Redis is down.

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use signal_server::redis_driver::ReconnectingDriver;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};

use common::Redis;

async fn next(stream: &mut MessageStream<ChanItem>, secs: u64) -> ChanItem {
    tokio::time::timeout(Duration::from_secs(secs), stream.next())
        .await
        .expect("message within the deadline")
        .expect("stream open")
}

/// Publishes until it succeeds (the driver reconnects with back-off).
async fn publish_until_ok(d: &ReconnectingDriver, chan: &str, msg: &[u8], secs: u64) {
    let t0 = Instant::now();
    while d.publish(chan.into(), msg.to_vec()).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "publish never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn survives_a_redis_restart() {
    let mut redis = Redis::start();
    let a = ReconnectingDriver::start(redis.client()).await;
    let b = ReconnectingDriver::start(redis.client()).await;
    assert!(a.health().is_up() && b.health().is_up());

    let mut sub = b
        .subscribe("room-chan".into(), 16)
        .await
        .expect("subscribe");
    a.publish("room-chan".into(), b"one".to_vec())
        .await
        .expect("publish");
    assert_eq!(
        next(&mut sub, 5).await,
        ("room-chan".into(), b"one".to_vec())
    );
    assert_eq!(a.num_serv("room-chan").await.expect("numsub"), 1);

    // Redis dies: calls fail quickly instead of hanging.
    redis.kill();
    let t0 = Instant::now();
    while a
        .publish("room-chan".into(), b"lost".to_vec())
        .await
        .is_ok()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "publish kept succeeding"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    let t0 = Instant::now();
    assert!(a.publish("room-chan".into(), b"x".to_vec()).await.is_err());
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "a failing publish must not wait long"
    );

    // Redis is back on the same port: both reconnect, b re-subscribes.
    redis.restart();
    publish_until_ok(&a, "room-chan", b"probe", 15).await;
    let t0 = Instant::now();
    loop {
        // b may re-subscribe a moment after a reconnects: probe until it hears.
        a.publish("room-chan".into(), b"two".to_vec())
            .await
            .expect("publish");
        match tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            Ok(Some((_, m))) if m == b"two" => break,
            _ => assert!(
                t0.elapsed() < Duration::from_secs(15),
                "b never re-subscribed"
            ),
        }
    }
    assert!(
        a.health()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    assert!(a.health().errors.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn starts_while_redis_is_down_and_connects_later() {
    let mut redis = Redis::start();
    redis.kill();
    let t0 = Instant::now();
    let a = ReconnectingDriver::start(redis.client()).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "start must not hang");
    assert!(!a.health().is_up());
    assert!(a.num_serv("c").await.is_err());
    // Subscribing while down still gives a stream; it works once Redis is up.
    let mut sub = a
        .subscribe("c".into(), 16)
        .await
        .expect("stream while down");
    redis.restart();
    let b = ReconnectingDriver::start(redis.client()).await;
    let t0 = Instant::now();
    loop {
        publish_until_ok(&b, "c", b"hello", 15).await;
        match tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            Ok(Some((_, m))) if m == b"hello" => break,
            _ => assert!(t0.elapsed() < Duration::from_secs(15), "a never subscribed"),
        }
    }
    assert!(a.health().is_up());
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_connection() {
    let redis = Redis::start();
    let mut admin = redis.client().get_connection().expect("conn");
    let clients = |c: &mut redis::Connection| -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(c)
            .expect("client list");
        list.lines().count()
    };
    let before = clients(&mut admin);
    let a = ReconnectingDriver::start(redis.client()).await;
    let a2 = a.clone();
    assert_eq!(clients(&mut admin), before + 1);
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(clients(&mut admin), before + 1, "a clone is still alive");
    drop(a2);
    let t0 = Instant::now();
    while clients(&mut admin) > before {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the supervisor kept its connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
