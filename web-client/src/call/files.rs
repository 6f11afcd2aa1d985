//! Files, peer to peer: each file goes to each peer on an RTCDataChannel
//! of its own (label `"file"`), never through the server. In a mesh room
//! the channel is opened on the peer's connection; in an SFU room on a
//! data-only connection made on demand through the same `signal` relay
//! ([`Call::data_link`]).
//!
//! On the channel (docs/client-contract.md, "File transfer"): the sender's
//! header `{"t":"file","id","name","size","mime"}`, the bytes as binary
//! messages of [`CHUNK`] bytes, then `{"t":"end","sha256"}`; the receiver
//! answers `{"t":"ok"}` or `{"t":"bad","reason"}`, and either side may
//! send `{"t":"cancel"}`. The sender closes the channel at the end.
//!
//! Sending waits while the channel's `bufferedAmount` is above
//! [`HIGH_WATER`] (`bufferedamountlow` at [`LOW_WATER`] wakes it), and
//! reads the file [`BLOCK`] bytes at a time: memory stays bounded whatever
//! the file's size. Both sides hash what passes with SHA-256 as it passes
//! (no second read of the file); the receiver keeps the bytes in a Blob,
//! merged every [`MERGE`] bytes so that the browser may move them to disk.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, File, RtcDataChannel, RtcDataChannelState, RtcDataChannelType,
};

use super::{Call, log};
use crate::js::{Listeners, get, get_f64, get_str, next_event, now_ms, random_id};
use crate::state::{ChatEntry, FileItem, FileProgress, FileState, Phase};

/// Bytes per message: what every browser accepts (Chromium up to 256 KiB).
const CHUNK: u32 = 64 * 1024;
/// Bytes read from the file at a time.
const BLOCK: f64 = 1024.0 * 1024.0;
/// Sending waits while more than this is queued on the channel...
const HIGH_WATER: u32 = 4 * 1024 * 1024;
/// ...until it drains to this (`bufferedamountlow`).
const LOW_WATER: u32 = 1024 * 1024;
/// Received bytes are merged into one Blob this often.
const MERGE: f64 = 16.0 * 1024.0 * 1024.0;
/// The progress shown is refreshed at most this often.
const SHOW_EVERY_MS: f64 = 150.0;
/// A file's name is shown, and offered for saving, up to this length.
const NAME_MAX: usize = 255;
/// Files one peer may be sending us at once; more are refused (each may
/// be as large as the limit, and this browser keeps what arrives).
const INCOMING_PER_PEER: usize = 4;

/// The transfers under way, by their item's key.
#[derive(Default)]
pub(super) struct Files {
    live: RefCell<HashMap<String, Rc<Transfer>>>,
}

/// One file to or from one peer, on its own channel.
struct Transfer {
    key: String,
    peer: String,
    dc: RtcDataChannel,
    listeners: Listeners,
    /// Set by the header (receiving) or at once (sending).
    item: RefCell<Option<FileItem>>,
    /// Receiving: what has arrived so far.
    rx: RefCell<Incoming>,
    started: Cell<f64>,
    shown: Cell<f64>,
}

#[derive(Default)]
struct Incoming {
    hasher: Sha256,
    got: f64,
    parts: Vec<JsValue>,
    /// `got` when the parts were last merged.
    merged: f64,
    mime: String,
}

impl Transfer {
    fn state(&self) -> FileState {
        self.item
            .borrow()
            .as_ref()
            .and_then(|i| i.progress.try_with_untracked(|p| p.state))
            .unwrap_or_default()
    }

    fn size(&self) -> f64 {
        self.item.borrow().as_ref().map_or(0.0, |i| i.size)
    }

    fn update(&self, f: impl FnOnce(&mut FileProgress)) {
        if let Some(item) = self.item.borrow().as_ref() {
            item.progress.try_update(f);
        }
    }

    /// Bytes so far, and the rate, on screen (throttled unless `now`).
    fn show(&self, bytes: f64, now: bool) {
        let t = now_ms();
        if !now && t - self.shown.get() < SHOW_EVERY_MS {
            return;
        }
        self.shown.set(t);
        let secs = ((t - self.started.get()) / 1000.0).max(0.001);
        self.update(|p| {
            // A late figure never brings an ended transfer back.
            if !p.state.ended() {
                p.state = FileState::Moving;
                p.bytes = bytes;
                p.rate = bytes / secs;
            }
        });
    }

    fn send(&self, msg: &serde_json::Value) {
        let _ = self.dc.send_with_str(&msg.to_string());
    }

    fn is_open(&self) -> bool {
        self.dc.ready_state() == RtcDataChannelState::Open
    }
}

/// `n` bytes as people read them ("3.1 MB").
pub fn human_size(n: f64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000.0 {
        return format!("{n} B");
    }
    let mut v = n / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name that is safe to show and to save as: no path, no control
/// characters, not empty, at most [`NAME_MAX`] characters.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX)
        .collect();
    match clean.trim() {
        "" | "." | ".." => "file".to_owned(),
        t => t.to_owned(),
    }
}

impl Call {
    /// Sends `file` to `to`, or to everyone in the call.
    pub(super) fn send_file(self: &Rc<Self>, file: File, to: Option<String>) -> Result<(), String> {
        let size = file.size();
        let max = self.ui.file_max.get_untracked();
        if size > max {
            return Err(format!(
                "{} is {}: files up to {} can be sent here.",
                clean_name(&file.name()),
                human_size(size),
                human_size(max)
            ));
        }
        let present = |id: &str| {
            self.ui
                .peers
                .with_untracked(|ps| ps.iter().any(|p| p.id == id))
        };
        let peers: Vec<String> = match to {
            Some(p) if !present(&p) => {
                return Err("The person you picked has left the call: pick someone else.".into());
            }
            Some(p) => vec![p],
            None => self
                .ui
                .peers
                .with_untracked(|ps| ps.iter().map(|p| p.id.clone()).collect()),
        };
        if peers.is_empty() {
            return Err("Nobody else is in the call to send it to.".into());
        }
        if self.ui.phase.get_untracked() != Phase::Joined {
            return Err("Files can be sent once the connection is back.".into());
        }
        let id = random_id();
        for peer in peers {
            let Some(pc) = self.data_link(&peer, true) else {
                return Err(format!(
                    "There is no connection to {} yet; try again in a moment.",
                    self.ui.peer_name(&peer)
                ));
            };
            let dc = pc.open_channel("file");
            let t = self.track(format!("out-{id}-{peer}"), &peer, dc);
            *t.item.borrow_mut() = Some(self.file_item(&t, &file.name(), size, false));
            wasm_bindgen_futures::spawn_local(self.clone().pump(t, file.clone(), id.clone()));
        }
        Ok(())
    }

    /// A channel the peer opened for a file.
    pub(super) fn receive_file(self: &Rc<Self>, peer: &str, dc: RtcDataChannel) {
        if dc.label() != "file" {
            log(&format!(
                "data channel {:?} from {peer} refused",
                dc.label()
            ));
            dc.close();
            return;
        }
        self.track(format!("in-{}", random_id()), peer, dc);
    }

    /// The user cancels the transfer shown as `key`.
    pub(super) fn cancel_file(&self, key: &str) {
        let t = self.files.live.borrow().get(key).cloned();
        if let Some(t) = t {
            t.send(&json!({"t": "cancel"}));
            self.end_file(&t, FileState::Cancelled, "You cancelled it.".into());
        }
    }

    /// `peer` left (or reloaded): its transfers end, and say so.
    pub(super) fn end_files_with(&self, peer: &str) {
        let gone: Vec<Rc<Transfer>> = self
            .files
            .live
            .borrow()
            .values()
            .filter(|t| t.peer == peer)
            .cloned()
            .collect();
        let name = self.ui.peer_name(peer);
        for t in gone {
            self.end_file(
                &t,
                FileState::Failed,
                format!("{name} left the call: the transfer ended."),
            );
        }
    }

    /// We leave the call: every transfer ends.
    pub(super) fn end_all_files(&self) {
        let all: Vec<Rc<Transfer>> = self.files.live.borrow().values().cloned().collect();
        for t in all {
            t.send(&json!({"t": "cancel"}));
            self.end_file(&t, FileState::Cancelled, "You left the call.".into());
        }
    }

    /// Registers a transfer on `dc` and listens to it.
    fn track(self: &Rc<Self>, key: String, peer: &str, dc: RtcDataChannel) -> Rc<Transfer> {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let t = Rc::new(Transfer {
            key: key.clone(),
            peer: peer.to_owned(),
            dc: dc.clone(),
            listeners: Listeners::default(),
            item: RefCell::new(None),
            rx: RefCell::new(Incoming::default()),
            started: Cell::new(now_ms()),
            shown: Cell::new(0.0),
        });
        let weak = Rc::downgrade(self);
        let on = move |key: String, f: fn(&Rc<Call>, &Rc<Transfer>, JsValue)| {
            let weak = weak.clone();
            move |ev: JsValue| {
                let Some(call) = weak.upgrade() else { return };
                let t = call.files.live.borrow().get(&key).cloned();
                if let Some(t) = t {
                    f(&call, &t, ev);
                }
            }
        };
        t.listeners
            .add(&dc, "message", on(key.clone(), Call::on_file_message));
        t.listeners.add(
            &dc,
            "close",
            on(key.clone(), |call, t, _| {
                if !t.state().ended() {
                    let name = call.ui.peer_name(&t.peer);
                    call.end_file(
                        t,
                        FileState::Failed,
                        format!("The connection to {name} closed before the end."),
                    );
                }
            }),
        );
        self.files.live.borrow_mut().insert(key, t.clone());
        t
    }

    /// The chat log's entry for `t`, added to the log.
    fn file_item(&self, t: &Transfer, name: &str, size: f64, incoming: bool) -> FileItem {
        let item = FileItem {
            key: t.key.clone(),
            name: clean_name(name),
            size,
            incoming,
            peer: t.peer.clone(),
            peer_name: self.ui.peer_name(&t.peer),
            progress: RwSignal::new(FileProgress::default()),
        };
        self.ui
            .chat
            .update(|c| c.push(ChatEntry::File(item.clone())));
        item
    }

    /// Ends `t` (once): its state and note on screen, its channel closed,
    /// what it held released.
    fn end_file(&self, t: &Rc<Transfer>, state: FileState, note: String) {
        if self.files.live.borrow_mut().remove(&t.key).is_none() {
            return;
        }
        t.listeners.clear();
        t.update(|p| {
            p.state = state;
            p.note = note;
        });
        *t.rx.borrow_mut() = Incoming::default();
        t.dc.close();
    }

    /// Sends the file on `t`'s channel.
    async fn pump(self: Rc<Self>, t: Rc<Transfer>, file: File, id: String) {
        if t.dc.ready_state() == RtcDataChannelState::Connecting {
            next_event(&t.dc, &["open", "close"]).await;
        }
        if !t.is_open() {
            return; // the close listener said why
        }
        let size = file.size();
        t.send(&json!({"t": "file", "id": id, "name": file.name(), "size": size, "mime": file.type_()}));
        t.started.set(now_ms());
        t.show(0.0, true);
        let mut hasher = Sha256::new();
        let mut off = 0.0;
        while off < size {
            let end = (off + BLOCK).min(size);
            let block = match read(&file, off, end).await {
                Ok(b) => b,
                Err(e) => {
                    t.send(&json!({"t": "cancel"}));
                    self.end_file(
                        &t,
                        FileState::Failed,
                        format!("The file could not be read: {e}"),
                    );
                    return;
                }
            };
            hasher.update(block.to_vec());
            let mut at = 0;
            while at < block.length() {
                while t.dc.buffered_amount() > HIGH_WATER && t.is_open() {
                    next_event(&t.dc, &["bufferedamountlow", "close"]).await;
                }
                if !t.is_open() || t.state().ended() {
                    return;
                }
                let piece = block.subarray(at, (at + CHUNK).min(block.length()));
                if let Err(e) = t.dc.send_with_array_buffer_view(&piece) {
                    self.end_file(&t, FileState::Failed, crate::js::error_text(&e));
                    return;
                }
                at += CHUNK;
            }
            off = end;
            t.show(off - f64::from(t.dc.buffered_amount()), false);
        }
        t.send(&json!({"t": "end", "sha256": hex(&hasher.finalize())}));
        // What is still queued drains; the receiver's answer ends it.
        while t.is_open() && !t.state().ended() && t.dc.buffered_amount() > 0 {
            t.show(size - f64::from(t.dc.buffered_amount()), false);
            next_event(&t.dc, &["bufferedamountlow", "close", "message"]).await;
        }
    }

    /// A message on a file channel: the header, bytes, the end, an answer.
    fn on_file_message(self: &Rc<Self>, t: &Rc<Transfer>, ev: JsValue) {
        let data = get(&ev, "data");
        if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
            self.on_file_bytes(t, buf);
            return;
        }
        let Some(msg) = data.as_string().and_then(|s| js_sys::JSON::parse(&s).ok()) else {
            return;
        };
        let name = self.ui.peer_name(&t.peer);
        match get_str(&msg, "t").as_deref() {
            Some("file") if t.item.borrow().is_none() => self.on_file_header(t, &msg),
            Some("end") => self.on_file_end(t, &get_str(&msg, "sha256").unwrap_or_default()),
            Some("ok") => {
                t.update(|p| p.bytes = t.size());
                self.end_file(
                    t,
                    FileState::Done,
                    format!("Delivered to {name}, SHA-256 checked."),
                );
            }
            Some("bad") => {
                let why = get_str(&msg, "reason").unwrap_or_default();
                self.end_file(t, FileState::Failed, format!("{name} refused it: {why}"));
            }
            Some("cancel") => {
                self.end_file(t, FileState::Cancelled, format!("{name} cancelled it."));
            }
            _ => log(&format!("unreadable file message from {}", t.peer)),
        }
    }

    fn on_file_header(self: &Rc<Self>, t: &Rc<Transfer>, msg: &JsValue) {
        let size = get_f64(msg, "size").unwrap_or(-1.0);
        let name = get_str(msg, "name").unwrap_or_default();
        let item = self.file_item(t, &name, size.max(0.0), true);
        *t.item.borrow_mut() = Some(item);
        let max = self.ui.file_max.get_untracked();
        let busy = self
            .files
            .live
            .borrow()
            .values()
            .filter(|o| o.peer == t.peer && o.key != t.key && o.key.starts_with("in-"))
            .filter(|o| o.item.borrow().is_some())
            .count();
        let refusal = if !(0.0..=max).contains(&size) || size.fract() != 0.0 {
            Some(format!("files up to {} are accepted here", human_size(max)))
        } else if busy >= INCOMING_PER_PEER {
            Some(format!(
                "at most {INCOMING_PER_PEER} files at once; send it when one has arrived"
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            t.send(&json!({"t": "bad", "reason": reason}));
            self.end_file(t, FileState::Failed, format!("Refused: {reason}."));
            return;
        }
        t.rx.borrow_mut().mime = get_str(msg, "mime").unwrap_or_default();
        t.started.set(now_ms());
        t.show(0.0, true);
    }

    fn on_file_bytes(self: &Rc<Self>, t: &Rc<Transfer>, buf: &ArrayBuffer) {
        if t.item.borrow().is_none() {
            return self.end_file(
                t,
                FileState::Failed,
                "Bytes came before the file's name.".into(),
            );
        }
        let got = {
            let mut rx = t.rx.borrow_mut();
            rx.got += f64::from(buf.byte_length());
            rx.hasher.update(Uint8Array::new(buf).to_vec());
            rx.parts.push(buf.clone().into());
            if rx.got - rx.merged >= MERGE {
                let merged = blob(&rx.parts, "");
                rx.parts = vec![merged.into()];
                rx.merged = rx.got;
            }
            rx.got
        };
        if got > t.size() {
            t.send(&json!({"t": "bad", "reason": "more bytes than announced"}));
            return self.end_file(
                t,
                FileState::Failed,
                "More bytes came than announced.".into(),
            );
        }
        t.show(got, false);
    }

    fn on_file_end(self: &Rc<Self>, t: &Rc<Transfer>, sha256: &str) {
        let (got, digest, whole) = {
            let mut rx = t.rx.borrow_mut();
            let rx = std::mem::take(&mut *rx);
            let whole = blob(&rx.parts, &rx.mime);
            (rx.got, hex(&rx.hasher.finalize()), whole)
        };
        if got != t.size() || digest != sha256 {
            t.send(&json!({"t": "bad", "reason": "it arrived damaged (SHA-256 differs)"}));
            return self.end_file(
                t,
                FileState::Failed,
                "It arrived damaged (its SHA-256 differs): deleted.".into(),
            );
        }
        let url = web_sys::Url::create_object_url_with_blob(&whole).unwrap_or_default();
        t.send(&json!({"t": "ok"}));
        t.show(got, true);
        t.update(|p| p.url = url);
        self.end_file(
            t,
            FileState::Done,
            "Received whole, SHA-256 checked.".into(),
        );
    }
}

/// `file[start..end]` as bytes.
async fn read(file: &File, start: f64, end: f64) -> Result<Uint8Array, String> {
    let part = file
        .slice_with_f64_and_f64(start, end)
        .map_err(|e| crate::js::error_text(&e))?;
    let buf = JsFuture::from(part.array_buffer())
        .await
        .map_err(|e| crate::js::error_text(&e))?;
    Ok(Uint8Array::new(&buf))
}

/// The parts as one Blob of type `mime`.
fn blob(parts: &[JsValue], mime: &str) -> Blob {
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let seq: Array = parts.iter().collect();
    Blob::new_with_blob_sequence_and_options(&seq, &opts)
        .unwrap_or_else(|_| Blob::new().expect("an empty Blob"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512.0), "512 B");
        assert_eq!(human_size(3_145_728.0), "3.1 MB");
        assert_eq!(human_size(1_073_741_824.0), "1.1 GB");
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name("   "), "file");
        assert_eq!(clean_name(&"x".repeat(400)).len(), NAME_MAX);
    }

    #[test]
    fn digests_are_hex() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
