//! Web Audio: the microphone level meter and the short sounds for joins and
//! messages. One `AudioContext` per page, made only after the user's first
//! click or key press (browsers refuse, with a console warning, to start
//! one before), so a page opened from a link stays quiet until touched.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{AnalyserNode, AudioContext, MediaStream, MediaStreamAudioSourceNode};

thread_local! {
    static GESTURE: Cell<bool> = const { Cell::new(false) };
    static CONTEXT: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
}

/// Watches for the user's first gesture; call once at start-up.
pub fn install() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let seen = Closure::<dyn FnMut()>::new(|| {
        GESTURE.with(|g| g.set(true));
        if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
            let _ = ctx.resume();
        }
    });
    for event in ["pointerdown", "keydown"] {
        let _ = doc.add_event_listener_with_callback(event, seen.as_ref().unchecked_ref());
    }
    // Lives as long as the page.
    seen.forget();
}

/// The page's audio context, once the user has interacted with the page.
pub(crate) fn context() -> Option<AudioContext> {
    if !GESTURE.with(Cell::get) {
        return None;
    }
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = AudioContext::new().ok();
        }
        c.clone()
    })
}

/// The level of a stream's audio.
struct Meter {
    source: MediaStreamAudioSourceNode,
    analyser: AnalyserNode,
    buf: Vec<f32>,
}

impl Meter {
    fn new(stream: &MediaStream) -> Option<Self> {
        if stream.get_audio_tracks().length() == 0 {
            return None;
        }
        let ctx = context()?;
        let source = ctx.create_media_stream_source(stream).ok()?;
        let analyser = ctx.create_analyser().ok()?;
        analyser.set_fft_size(512);
        source.connect_with_audio_node(&analyser).ok()?;
        let buf = vec![0.0; analyser.fft_size() as usize];
        Some(Self {
            source,
            analyser,
            buf,
        })
    }

    /// 0 (silence) to 1, from the RMS of the last few milliseconds, on a
    /// loudness-like scale.
    fn level(&mut self) -> f64 {
        self.analyser.get_float_time_domain_data(&mut self.buf);
        let rms = (self.buf.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
            / self.buf.len().max(1) as f64)
            .sqrt();
        // -60 dBFS → 0, 0 dBFS → 1.
        let db = 20.0 * rms.max(1e-6).log10();
        ((db + 60.0) / 60.0).clamp(0.0, 1.0)
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let _ = self.source.disconnect();
    }
}

/// Writes the level of `stream`'s microphone into `out` ten times a second,
/// from when the page may use audio until dropped.
pub struct LevelWatch {
    timer: Option<IntervalHandle>,
    /// Shared with the timer's callback, which the browser may keep: the
    /// meter's audio nodes are disconnected here, on drop, not with it.
    meter: Rc<RefCell<Option<Meter>>>,
}

impl LevelWatch {
    pub fn new(stream: Option<MediaStream>, out: RwSignal<f64>) -> Self {
        out.set(0.0);
        let meter: Rc<RefCell<Option<Meter>>> = Rc::default();
        let Some(stream) = stream else {
            return Self { timer: None, meter };
        };
        let shared = meter.clone();
        let timer = set_interval_with_handle(
            move || {
                let meter = &shared;
                let mut m = meter.borrow_mut();
                if m.is_none() {
                    *m = Meter::new(&stream);
                }
                if let Some(m) = m.as_mut() {
                    let level = m.level();
                    // Fewer updates of the view: only changes that show.
                    if (level - out.get_untracked()).abs() > 0.02 {
                        out.set(level);
                    }
                }
            },
            Duration::from_millis(100),
        )
        .ok();
        Self { timer, meter }
    }
}

impl Drop for LevelWatch {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.clear();
        }
        self.meter.borrow_mut().take();
    }
}

/// The short sounds of the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    Joined,
    Left,
    Message,
}

/// Plays `cue` (nothing before the user's first gesture).
pub fn play(cue: Cue) {
    let Some(ctx) = context() else { return };
    let notes: &[(f32, f64)] = match cue {
        Cue::Joined => &[(660.0, 0.0), (880.0, 0.12)],
        Cue::Left => &[(660.0, 0.0), (440.0, 0.12)],
        Cue::Message => &[(990.0, 0.0)],
    };
    let start = ctx.current_time();
    for (freq, at) in notes {
        let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
            return;
        };
        osc.frequency().set_value(*freq);
        let t = start + at;
        let g = gain.gain();
        let _ = g.set_value_at_time(0.0, t);
        let _ = g.linear_ramp_to_value_at_time(0.08, t + 0.01);
        let _ = g.linear_ramp_to_value_at_time(0.0, t + 0.11);
        let _ = osc.connect_with_audio_node(&gain);
        let _ = gain.connect_with_audio_node(&ctx.destination());
        let _ = osc.start_with_when(t);
        let _ = osc.stop_with_when(t + 0.12);
    }
}
