//! The transport: the official socket.io-client (loaded by index.html as
//! `socket.io.min.js`) wrapped in one Rust type.

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

/// The signaling connection. Cheap to clone (a JS handle).
#[derive(Clone)]
pub struct Signaling {
    socket: JsSocket,
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
        }
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

    /// Emits `event` and waits for the ack, read as `T` on success.
    pub async fn request<P: Serialize, T: DeserializeOwned>(
        &self,
        event: &str,
        payload: &P,
    ) -> Result<T, RequestError> {
        let promise = self
            .socket
            .timeout(ACK_TIMEOUT_MS)
            .emit_with_ack(event, &to_js(payload));
        let value = JsFuture::from(promise)
            .await
            .map_err(|e| RequestError::Transport(error_text(&e)))?;
        match from_js::<Ack<T>>(&value) {
            Ok(Ack::Ok(t)) => Ok(t),
            Ok(Ack::Err(ErrorAck { error, .. })) => Err(RequestError::Server {
                code: error.code,
                message: error.message,
            }),
            Err(e) => Err(RequestError::Transport(format!("unreadable ack: {e}"))),
        }
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
