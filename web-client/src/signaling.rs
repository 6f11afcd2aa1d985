//! The transport: the official socket.io-client (loaded by index.html as
//! `socket.io.min.js`) wrapped in one Rust type.
//!
//! Requests pass a gate that is closed until the room is joined and while
//! the connection is away: what the call sends meanwhile waits, in order,
//! and goes out once the seat is back (socket.io-client's own buffer would
//! send it before the join, where the server refuses it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::js::{error_text, from_js, to_js};
use protocol::{Ack, ErrorAck, ErrorCode};

#[wasm_bindgen]
extern "C" {
    /// A socket.io-client `Socket`.
    #[derive(Clone)]
    pub type JsSocket;

    #[wasm_bindgen(js_name = io)]
    fn io(url: &str, opts: &JsValue) -> JsSocket;

    #[wasm_bindgen(method)]
    fn on(this: &JsSocket, event: &str, cb: &Function);

    #[wasm_bindgen(method)]
    fn timeout(this: &JsSocket, ms: u32) -> JsSocket;

    #[wasm_bindgen(method, js_name = emitWithAck)]
    fn emit_with_ack(this: &JsSocket, event: &str, payload: &JsValue) -> Promise;

    #[wasm_bindgen(method)]
    fn disconnect(this: &JsSocket);

    /// The socket's Manager (`socket.io`), which emits reconnection events.
    #[wasm_bindgen(method, getter, js_name = io)]
    fn manager(this: &JsSocket) -> JsManager;

    pub type JsManager;

    #[wasm_bindgen(method, js_name = on)]
    fn on_manager(this: &JsManager, event: &str, cb: &Function);
}

/// Why a request failed: the server's error ack, or no answer at all.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    Server { code: ErrorCode, message: String },
    Transport(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Server { code, message } => write!(f, "{code}: {message}"),
            RequestError::Transport(m) => write!(f, "no answer from the server ({m})"),
        }
    }
}

/// How long to wait for an ack before reporting the server unreachable.
const ACK_TIMEOUT_MS: u32 = 10_000;

/// An ack read as `T` on success, or the server's error.
fn read_ack<T: DeserializeOwned>(value: JsValue) -> Result<T, RequestError> {
    match from_js::<Ack<T>>(&value) {
        Ok(Ack::Ok(t)) => Ok(t),
        Ok(Ack::Err(ErrorAck { error, .. })) => Err(RequestError::Server {
            code: error.code,
            message: error.message,
        }),
        Err(e) => Err(RequestError::Transport(format!("unreadable ack: {e}"))),
    }
}

/// The signaling connection. Cheap to clone (a JS handle).
#[derive(Clone)]
pub struct Signaling {
    socket: JsSocket,
    gate: Rc<Gate>,
}

/// Requests waiting for the seat: each event's name, a signal's addressee,
/// and what lets it go.
struct Gate {
    closed: Cell<bool>,
    waiting: RefCell<Vec<Waiting>>,
}

struct Waiting {
    event: String,
    /// A `signal`'s `to`.
    to: Option<String>,
    go: Function,
}

impl Signaling {
    /// Connects to the page's own origin. WebSocket first (no sticky
    /// sessions needed behind a load balancer), polling as the fallback.
    pub fn connect() -> Self {
        let opts = to_js(&serde_json::json!({
            "transports": ["websocket", "polling"],
            "reconnection": true,
            "reconnectionDelay": 500,
            "reconnectionDelayMax": 5000,
        }));
        Self {
            socket: io("/", &opts),
            gate: Rc::new(Gate {
                closed: Cell::new(true),
                waiting: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Requests wait from now on (the connection is away).
    pub fn hold(&self) {
        self.gate.closed.set(true);
    }

    /// Lets the waiting requests go, in order; with `drop_signals`, the
    /// waiting `signal`s are dropped instead (they were for connections of
    /// a seat that is gone).
    pub fn release(&self, drop_signals: bool) {
        self.gate.closed.set(false);
        for w in self.gate.waiting.take() {
            let pass = !(drop_signals && w.event == protocol::events::SIGNAL);
            let _ = w.go.call1(&JsValue::NULL, &pass.into());
        }
    }

    /// Drops the waiting `signal`s addressed to `to` (they were for a
    /// connection that is closed).
    pub fn drop_waiting_to(&self, to: &str) {
        let dropped: Vec<Waiting> = {
            let mut waiting = self.gate.waiting.borrow_mut();
            let (drop, keep) = std::mem::take(&mut *waiting)
                .into_iter()
                .partition(|w| w.to.as_deref() == Some(to));
            *waiting = keep;
            drop
        };
        for w in dropped {
            let _ = w.go.call1(&JsValue::NULL, &false.into());
        }
    }

    /// Waits at the gate; `false` when the request was dropped.
    async fn pass(&self, event: &str, to: Option<String>) -> bool {
        if !self.gate.closed.get() {
            return true;
        }
        let mut go = None;
        let opened = Promise::new(&mut |resolve, _| go = Some(resolve));
        if let Some(go) = go {
            self.gate.waiting.borrow_mut().push(Waiting {
                event: event.to_owned(),
                to,
                go,
            });
        }
        JsFuture::from(opened)
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Calls `f` with each payload of `event`. The closure lives as long as the page.
    pub fn on(&self, event: &str, f: impl FnMut(JsValue) + 'static) {
        let cb = Closure::<dyn FnMut(JsValue)>::new(f);
        self.socket.on(event, cb.as_ref().unchecked_ref());
        cb.forget();
    }

    /// Calls `f` on a Manager event (`reconnect_attempt`, `reconnect`, ...).
    pub fn on_manager(&self, event: &str, f: impl FnMut(JsValue) + 'static) {
        let cb = Closure::<dyn FnMut(JsValue)>::new(f);
        self.socket
            .manager()
            .on_manager(event, cb.as_ref().unchecked_ref());
        cb.forget();
    }

    pub fn close(&self) {
        self.socket.disconnect();
    }

    /// Emits `event` once the gate is open and waits for the ack, read as
    /// `T` on success.
    pub async fn request<P: Serialize, T: DeserializeOwned>(
        &self,
        event: &str,
        payload: &P,
    ) -> Result<T, RequestError> {
        read_ack(self.exchange(event, to_js(payload), true).await?)
    }

    /// Emits `event` now, gate or not (the join), and waits for the ack.
    pub async fn request_now<P: Serialize, T: DeserializeOwned>(
        &self,
        event: &str,
        payload: &P,
    ) -> Result<T, RequestError> {
        read_ack(self.exchange(event, to_js(payload), false).await?)
    }

    /// The part of a request that does not depend on its types (written
    /// once, not once per request type: the bundle's size).
    async fn exchange(
        &self,
        event: &str,
        payload: JsValue,
        gated: bool,
    ) -> Result<JsValue, RequestError> {
        let to = (event == protocol::events::SIGNAL)
            .then(|| js_sys::Reflect::get(&payload, &"to".into()).ok())
            .flatten()
            .and_then(|v| v.as_string());
        if gated && !self.pass(event, to).await {
            return Err(RequestError::Transport("dropped: the seat was lost".into()));
        }
        let promise = self
            .socket
            .timeout(ACK_TIMEOUT_MS)
            .emit_with_ack(event, &payload);
        JsFuture::from(promise)
            .await
            .map_err(|e| RequestError::Transport(error_text(&e)))
    }

    /// Emits without caring about the answer beyond logging a failure.
    pub fn send<P: Serialize + 'static>(&self, event: &'static str, payload: P) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match this.request::<P, protocol::OkAck>(event, &payload).await {
                // A ping racing a peer's departure is expected, not worth a warning.
                Err(RequestError::Server {
                    code: ErrorCode::UnknownPeer | ErrorCode::NotInRoom,
                    ..
                }) if event == protocol::events::PING => {}
                Err(e) => web_sys::console::warn_1(&format!("{event} failed: {e}").into()),
                Ok(_) => {}
            }
        });
    }
}
