//! Test harness: the real signal server on `127.0.0.1:0`, real socket.io
//! clients (`rust_socketio`) and a raw Engine.IO WebSocket client for what
//! no well-behaved client sends. Every wait has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{FutureExt, SinkExt, StreamExt};
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::Value;
use signal_server::Config;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long any single expected thing may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// The server events a [`Peer`] records.
pub const SERVER_EVENTS: [&str; 8] = [
    "peer-joined",
    "peer-left",
    "signal",
    "chat",
    "typing",
    "media-state",
    "chat-receipt",
    "peer-ping",
];

/// A signal server running in this process on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start() -> anyhow::Result<Self> {
        Self::with(|_| {}).await
    }

    /// Starts with the default config changed by `tweak`.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let mut config = Config {
            static_dir: std::env::temp_dir().join("signal-server-tests-no-client"),
            ..Config::default()
        };
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(signal_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .context("server did not stop")??
            .context("server failed")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A socket.io client (rust_socketio) that records every server event.
pub struct Peer {
    pub client: Client,
    events: mpsc::UnboundedReceiver<(String, Value)>,
}

impl Peer {
    pub async fn connect(server: &TestServer) -> anyhow::Result<Self> {
        Self::connect_with(server, TransportType::Websocket).await
    }

    pub async fn connect_with(
        server: &TestServer,
        transport: TransportType,
    ) -> anyhow::Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut builder = ClientBuilder::new(server.url())
            .transport_type(transport)
            .reconnect(false);
        for name in SERVER_EVENTS {
            let tx = tx.clone();
            builder = builder.on(name, move |payload: Payload, _: Client| {
                let _ = tx.send((name.to_owned(), first_value(payload)));
                async {}.boxed()
            });
        }
        // rust_socketio returns from connect() before the server has accepted
        // the namespace; an event sent in that window is not for a connected
        // socket. Wait for the CONNECT reply, as socket.io-client does.
        let (connected_tx, connected) = oneshot::channel();
        let connected_tx = std::sync::Mutex::new(Some(connected_tx));
        builder = builder.on(
            rust_socketio::Event::Connect,
            move |_: Payload, _: Client| {
                if let Some(tx) = connected_tx.lock().ok().and_then(|mut t| t.take()) {
                    let _ = tx.send(());
                }
                async {}.boxed()
            },
        );
        let client = builder.connect().await.context("connect")?;
        tokio::time::timeout(WAIT, connected)
            .await
            .context("no CONNECT reply")?
            .context("client dropped")?;
        Ok(Self { client, events })
    }

    /// Emits `event` with `payload` and returns the ack.
    pub async fn ack(&self, event: &str, payload: Value) -> anyhow::Result<Value> {
        let (tx, rx) = oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        self.client
            .emit_with_ack(event, payload, WAIT, move |p: Payload, _: Client| {
                if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                    // rust_socketio hands an ack's arguments over as one array.
                    let v = match first_value(p) {
                        Value::Array(mut args) if !args.is_empty() => args.swap_remove(0),
                        v => v,
                    };
                    let _ = tx.send(v);
                }
                async {}.boxed()
            })
            .await
            .context("emit")?;
        tokio::time::timeout(WAIT, rx)
            .await
            .with_context(|| format!("no ack for {event}"))?
            .map_err(|_| anyhow!("ack callback dropped for {event}"))
    }

    /// Emits and expects `{"ok": true, ...}`.
    pub async fn ok(&self, event: &str, payload: Value) -> anyhow::Result<Value> {
        let ack = self.ack(event, payload).await?;
        if ack["ok"] != true {
            bail!("{event} failed: {ack}");
        }
        Ok(ack)
    }

    /// Emits and returns the error code of a failed ack.
    pub async fn error(&self, event: &str, payload: Value) -> anyhow::Result<String> {
        let ack = self.ack(event, payload).await?;
        if ack["ok"] != false {
            bail!("{event} should have failed: {ack}");
        }
        ack["error"]["code"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("error ack without code: {ack}"))
    }

    /// Joins a room and returns the ack.
    pub async fn join(&self, room: &str, name: &str) -> anyhow::Result<Value> {
        self.ok("join", serde_json::json!({"room": room, "name": name}))
            .await
    }

    /// The next server event, which must be `name`.
    pub async fn next(&mut self, name: &str) -> anyhow::Result<Value> {
        let (got, payload) = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .with_context(|| format!("no {name} event"))?
            .ok_or_else(|| anyhow!("client closed"))?;
        if got != name {
            bail!("expected {name}, got {got}: {payload}");
        }
        Ok(payload)
    }

    /// Asserts nothing arrived so far. Call it after an ack round trip that the
    /// server orders after the event in question, so "not yet" means "never".
    pub fn assert_quiet(&mut self) -> anyhow::Result<()> {
        match self.events.try_recv() {
            Ok((name, payload)) => bail!("unexpected {name}: {payload}"),
            Err(_) => Ok(()),
        }
    }

    /// A round trip through the server: everything the server sent this
    /// socket before answering has arrived once this returns.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.ack("typing", serde_json::json!({"room": "!", "typing": false}))
            .await
            .map(|_| ())
    }

    pub async fn disconnect(self) -> anyhow::Result<()> {
        self.client.disconnect().await.context("disconnect")
    }
}

fn first_value(p: Payload) -> Value {
    match p {
        Payload::Text(mut v) if !v.is_empty() => v.swap_remove(0),
        #[allow(deprecated)]
        Payload::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        _ => Value::Null,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare Engine.IO v4 WebSocket connection: sends exactly the frames it is
/// told to, for garbage, floods and early events.
pub struct RawSocket {
    ws: Ws,
}

impl RawSocket {
    /// Opens the WebSocket and reads the Engine.IO open packet.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("ws connect timeout")??;
        let mut raw = Self { ws };
        let open = raw.recv().await?;
        if !open.starts_with('0') {
            bail!("expected open packet, got {open}");
        }
        Ok(raw)
    }

    pub async fn send(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        self.ws.send(Message::text(text.into())).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(Message::binary(data)).await?;
        Ok(())
    }

    /// The next text frame, answering Engine.IO pings on the way.
    /// `Ok(None)`-like closes are reported as errors.
    pub async fn recv(&mut self) -> anyhow::Result<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("ws recv timeout")?
                .ok_or_else(|| anyhow!("ws closed"))??;
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3").await?,
                Message::Text(t) => return Ok(t.as_str().to_owned()),
                Message::Close(_) => bail!("ws closed by server"),
                _ => {}
            }
        }
    }

    /// Waits for a frame starting with `prefix`, skipping others.
    pub async fn recv_prefixed(&mut self, prefix: &str) -> anyhow::Result<String> {
        loop {
            let t = self.recv().await?;
            if t.starts_with(prefix) {
                return Ok(t);
            }
        }
    }

    /// True once the server has closed the connection (within the wait).
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
