//! Small bridges between Rust values and JavaScript.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::EventTarget;

/// A Rust value as a plain JS object (through JSON: exact, and no extra crate).
pub fn to_js<T: Serialize>(v: &T) -> JsValue {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::NULL)
}

/// A JS value read as `T`; `Err` carries a message for the user or the log.
pub fn from_js<T: DeserializeOwned>(v: &JsValue) -> Result<T, String> {
    let s = js_sys::JSON::stringify(v)
        .map_err(|_| "value is not JSON".to_owned())?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&s).map_err(|e| e.to_string())
}

/// Milliseconds since page load, with sub-millisecond precision.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_default()
}

/// Wall-clock Unix milliseconds.
pub fn unix_ms() -> f64 {
    js_sys::Date::now()
}

/// A random UUID (for peer-to-peer chat message ids).
pub fn random_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("{:x}", (js_sys::Math::random() * 1e16) as u64))
}

/// A readable message from a JS exception or rejection.
pub fn error_text(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", err.name(), err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// Reads `obj[key]`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Reads `obj[key]` as a number.
pub fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// Reads `obj[key]` as a string.
pub fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// Local time of a Unix-ms timestamp as HH:MM.
pub fn clock(ts_ms: f64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ts_ms));
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// GETs `url` from this origin and reads the body as JSON; `None` on any
/// failure (network, status, body).
pub async fn fetch_json(url: &str) -> Option<JsValue> {
    let window = web_sys::window()?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
        .await
        .ok()?;
    let resp: web_sys::Response = resp.unchecked_into();
    if !resp.ok() {
        return None;
    }
    wasm_bindgen_futures::JsFuture::from(resp.json().ok()?)
        .await
        .ok()
}

/// This tab's `sessionStorage[key]`.
pub fn session_get(key: &str) -> Option<String> {
    web_sys::window()?
        .session_storage()
        .ok()??
        .get_item(key)
        .ok()?
}

/// Sets (or, with `None`, removes) this tab's `sessionStorage[key]`.
pub fn session_set(key: &str, value: Option<&str>) {
    if let Some(s) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

/// Whether this page was loaded by a reload (not a new or duplicated tab,
/// which copies `sessionStorage` too).
pub fn reloaded() -> bool {
    let Some(perf) = web_sys::window().and_then(|w| w.performance()) else {
        return false;
    };
    let entries = get(&perf, "getEntriesByType")
        .dyn_into::<js_sys::Function>()
        .ok()
        .and_then(|f| f.call1(&perf, &"navigation".into()).ok());
    entries.is_some_and(|e| get_str(&get(&e, "0"), "type").as_deref() == Some("reload"))
}

/// Browser event callbacks owned by Rust. Each is removed from its target
/// before it is freed: an event already queued when its owner goes would
/// otherwise call a freed closure (a page error).
#[derive(Default)]
pub struct Listeners(RefCell<Vec<Listener>>);

/// Where a callback is registered, and the callback.
type Listener = (EventTarget, String, Closure<dyn FnMut(JsValue)>);

impl Listeners {
    /// Calls `f` with every `event` on `target` while these listeners live.
    pub fn add(&self, target: &EventTarget, event: &str, f: impl FnMut(JsValue) + 'static) {
        let cb = Closure::<dyn FnMut(JsValue)>::new(f);
        let _ = target.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        self.0
            .borrow_mut()
            .push((target.clone(), event.to_owned(), cb));
    }

    /// Removes and frees them all.
    pub fn clear(&self) {
        for (target, event, cb) in self.0.take() {
            let _ = target.remove_event_listener_with_callback(&event, cb.as_ref().unchecked_ref());
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The first of `events` on `target` (its event object), with no callback
/// of ours to free: the promise's own `resolve` is the listener.
pub async fn next_event(target: &EventTarget, events: &[&str]) -> JsValue {
    let mut resolve = None;
    let promise = js_sys::Promise::new(&mut |r, _| resolve = Some(r));
    let Some(resolve) = resolve else {
        return JsValue::UNDEFINED;
    };
    for e in events {
        let _ = target.add_event_listener_with_callback(e, &resolve);
    }
    let ev = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .unwrap_or(JsValue::UNDEFINED);
    for e in events {
        let _ = target.remove_event_listener_with_callback(e, &resolve);
    }
    ev
}
