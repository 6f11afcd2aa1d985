//! Relay vs peer-to-peer, for someone who is not an engineer: what the two
//! paths are in one sentence, the latest round trip of each to every
//! person (with units), and per person a chart of the last minute with
//! axes and a summary taken from the same minute.

use std::collections::VecDeque;

use leptos::prelude::*;
use protocol::Mode;

use super::room::RoomUi;
use crate::state::{RttRow, Ui};

fn last(series: &VecDeque<f64>, none: &'static str) -> (String, String) {
    match series.back() {
        Some(ms) => (format!("{ms:.2}"), format_ms(*ms)),
        None => (String::new(), none.into()),
    }
}

fn format_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0 ms".into()
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn median(series: &VecDeque<f64>) -> Option<f64> {
    let mut v: Vec<f64> = series.iter().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The chart's top value: the largest sample rounded up to 1, 2 or 5 × 10ⁿ.
pub fn nice_max(max: f64) -> f64 {
    let max = max.max(0.1);
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

/// The one-line verdict over the window both numbers come from.
pub fn summary(relay: &VecDeque<f64>, p2p: &VecDeque<f64>) -> String {
    match (median(relay), median(p2p)) {
        (Some(r), Some(p)) if p > 0.0 && r >= p * 1.05 => format!(
            "Last minute: peer-to-peer was {:.1}× faster (median {} vs {} through the server).",
            r / p,
            format_ms(p),
            format_ms(r)
        ),
        (Some(r), Some(p)) if r > 0.0 && p >= r * 1.05 => format!(
            "Last minute: the server relay was {:.1}× faster (median {} vs {} peer-to-peer).",
            p / r,
            format_ms(r),
            format_ms(p)
        ),
        (Some(r), Some(p)) => format!(
            "Last minute: about the same (median {} relay, {} peer-to-peer).",
            format_ms(r),
            format_ms(p)
        ),
        (Some(r), None) => format!("Last minute: median {} through the server.", format_ms(r)),
        (None, Some(p)) => format!("Last minute: median {} peer-to-peer.", format_ms(p)),
        (None, None) => "Measuring…".into(),
    }
}

/// The plot area of a chart: left, top, width, height (SVG units).
const PLOT: (f64, f64, f64, f64) = (44.0, 8.0, 268.0, 104.0);
const CHART_W: f64 = 320.0;
const CHART_H: f64 = 132.0;

/// Polyline points for `series` (newest at the right edge, one sample a
/// second) scaled to `max`.
fn points(series: &VecDeque<f64>, max: f64) -> String {
    let (x0, y0, w, h) = PLOT;
    let n = RttRow::KEEP as f64 - 1.0;
    let offset = RttRow::KEEP - series.len().min(RttRow::KEEP);
    series
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let x = x0 + (i + offset) as f64 / n * w;
            let y = y0 + h - (ms / max).min(1.0) * h;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A dot on the newest sample (a lone first sample draws no line).
fn newest(series: &VecDeque<f64>, max: f64) -> Option<(f64, f64)> {
    let (x0, y0, w, h) = PLOT;
    series
        .back()
        .map(|ms| (x0 + w, y0 + h - (ms / max).min(1.0) * h))
}

/// One person's last minute, both paths, with axes.
fn chart(row: &RttRow, label: String) -> impl IntoView + use<> {
    let top = nice_max(
        row.relay
            .iter()
            .chain(row.p2p.iter())
            .copied()
            .fold(0.0, f64::max),
    );
    let (x0, y0, w, h) = PLOT;
    let ticks: Vec<(f64, String)> = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| (y0 + h - f * h, format_ms(top * f)))
        .collect();
    let verdict = summary(&row.relay, &row.p2p);
    view! {
        <figure class="rtt-figure" data-peer-id=row.peer.clone()>
            <figcaption><strong>{label}</strong>" · "<span class="rtt-verdict">{verdict.clone()}</span></figcaption>
            <svg class="rtt-chart" viewBox=format!("0 0 {CHART_W} {CHART_H}") role="img" aria-label=verdict
                preserveAspectRatio="xMidYMid meet">
                {ticks.into_iter().map(|(y, text)| view! {
                    <line class="grid-line" x1=x0 x2=x0 + w y1=y y2=y />
                    <text class="axis" x=x0 - 4.0 y=y + 3.5 text-anchor="end">{text}</text>
                }).collect_view()}
                <line class="axis-line" x1=x0 x2=x0 y1=y0 y2=y0 + h />
                <text class="axis" x=x0 y=y0 + h + 16.0 text-anchor="start">"60 s ago"</text>
                <text class="axis" x=x0 + w y=y0 + h + 16.0 text-anchor="end">"now"</text>
                <polyline class="relay" fill="none" points=points(&row.relay, top) />
                <polyline class="p2p" fill="none" points=points(&row.p2p, top) />
                {newest(&row.relay, top).map(|(x, y)| view! { <circle class="relay" cx=x cy=y r="3" /> })}
                {newest(&row.p2p, top).map(|(x, y)| view! { <circle class="p2p" cx=x cy=y r="3" /> })}
            </svg>
        </figure>
    }
}

#[component]
pub fn RttPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let room_ui = expect_context::<RoomUi>();
    let sfu = move || ui.mode.get() == Some(Mode::Sfu);
    let label = move |id: &str| {
        room_ui
            .labels
            .with(|l| l.get(id).cloned())
            .unwrap_or_default()
    };
    view! {
        <section id="rtt-panel" class="rtt" aria-label="Round trip: relay versus peer-to-peer">
            <p class="explain">
                "How long a tiny message takes to reach each person and come back: "
                <span class="sw relay"></span>" through the server (WebSocket relay), or "
                <span class="sw p2p"></span>" straight between the browsers (WebRTC DataChannel). Lower is faster."
            </p>
            <p id="rtt-sfu-note" class="notice-box" class:hidden=move || !sfu()>
                    "This room sends its media through the server (SFU), so there is no channel between the browsers to compare with: only the relay is measured. "
                    {move || ui.sfu_rtt.get().map(|ms| format!("Your media reaches the server in {} (round trip).", format_ms(ms))).unwrap_or_default()}
            </p>
            <p class="muted" class:hidden=move || ui.rtt.with(|r| !r.is_empty())>"Measured once someone else is in the room."</p>
            <table class:hidden=move || ui.rtt.with(|r| r.is_empty())>
                <thead>
                    <tr><th scope="col">"Person"</th><th scope="col">"Relay, now"</th><th scope="col">"Peer-to-peer, now"</th></tr>
                </thead>
                <tbody>
                    {move || ui.rtt.get().into_iter().map(|row| {
                            let (relay_ms, relay_text) = last(&row.relay, "—");
                            let none = if sfu() { "n/a" } else { "—" };
                            let (p2p_ms, p2p_text) = last(&row.p2p, none);
                            view! {
                                <tr data-peer-id=row.peer.clone()>
                                    <th scope="row">{label(&row.peer)}</th>
                                    <td class="rtt-relay" data-ms=relay_ms>{relay_text}</td>
                                    <td class="rtt-p2p" data-ms=p2p_ms>{p2p_text}</td>
                                </tr>
                            }
                        }).collect_view()}
                </tbody>
            </table>
            {move || ui.rtt.get().into_iter().map(|row| chart(&row, label(&row.peer))).collect_view()}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_verdicts() {
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(0.7), 1.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(0.0), 0.1);
        let relay: VecDeque<f64> = [3.0, 3.2, 2.8].into();
        let p2p: VecDeque<f64> = [1.0, 1.1, 0.9].into();
        assert!(summary(&relay, &p2p).contains("peer-to-peer was 3.0× faster"));
        assert!(summary(&p2p, &relay).contains("server relay was 3.0× faster"));
        assert!(summary(&relay, &relay).contains("about the same"));
        assert_eq!(summary(&VecDeque::new(), &VecDeque::new()), "Measuring…");
    }
}
