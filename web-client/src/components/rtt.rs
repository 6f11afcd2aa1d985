//! Relay vs peer-to-peer: the last round trip of both paths to each peer,
//! as numbers and a small live chart.

use std::collections::VecDeque;

use leptos::prelude::*;

use crate::state::{RttRow, Ui};

fn last(series: &VecDeque<f64>) -> (String, String) {
    match series.back() {
        Some(ms) => (format!("{ms:.2}"), format!("{ms:.1} ms")),
        None => (String::new(), "—".into()),
    }
}

fn median(series: &VecDeque<f64>) -> Option<f64> {
    let mut v: Vec<f64> = series.iter().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Polyline points for `series` in a `w`×`h` box scaled to `max`.
fn points(series: &VecDeque<f64>, max: f64, w: f64, h: f64) -> String {
    let n = RttRow::KEEP as f64 - 1.0;
    let offset = RttRow::KEEP - series.len();
    series
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let x = (i + offset) as f64 / n * w;
            let y = h - (ms / max).min(1.0) * (h - 2.0) - 1.0;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
pub fn RttPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let name = move |id: &str| {
        ui.peers
            .with(|ps| ps.iter().find(|p| p.id == id).map(|p| p.name.clone()))
            .unwrap_or_default()
    };
    view! {
        <section id="rtt-panel" class="card rtt" aria-label="Round trip: relay versus peer-to-peer">
            <h2>"Round trip: relay vs peer-to-peer"</h2>
            <p class="legend"><span class="sw relay"></span>" WebSocket relay  "<span class="sw p2p"></span>" DataChannel"</p>
            <Show when=move || ui.rtt.with(|r| r.is_empty())>
                <p class="muted">"Measured once someone else is in the room."</p>
            </Show>
            <table>
                <tbody>
                    <For each=move || ui.rtt.get() key=|r| (r.peer.clone(), r.relay.len(), r.p2p.len(), r.relay.back().map(|v| v.to_bits()), r.p2p.back().map(|v| v.to_bits())) let:row>
                        {
                            let (relay_ms, relay_text) = last(&row.relay);
                            let (p2p_ms, p2p_text) = last(&row.p2p);
                            let max = row.relay.iter().chain(row.p2p.iter()).copied().fold(1.0, f64::max) * 1.1;
                            let summary = match (median(&row.relay), median(&row.p2p)) {
                                (Some(r), Some(p)) if p > 0.0 && r >= p => format!("median relay {r:.1} ms, peer-to-peer {p:.1} ms ({:.1}× faster)", r / p),
                                (Some(r), Some(p)) => format!("median relay {r:.1} ms, peer-to-peer {p:.1} ms"),
                                _ => String::new(),
                            };
                            view! {
                                <tr data-peer-id=row.peer.clone()>
                                    <th scope="row">{name(&row.peer)}</th>
                                    <td class="rtt-relay" data-ms=relay_ms>{relay_text}</td>
                                    <td class="rtt-p2p" data-ms=p2p_ms>{p2p_text}</td>
                                    <td>
                                        <svg class="rtt-chart" viewBox="0 0 120 36" width="120" height="36" role="img"
                                            aria-label=summary.clone()>
                                            <polyline class="relay" fill="none" points=points(&row.relay, max, 120.0, 36.0) />
                                            <polyline class="p2p" fill="none" points=points(&row.p2p, max, 120.0, 36.0) />
                                        </svg>
                                    </td>
                                </tr>
                                <tr class="rtt-summary"><td colspan="4">{summary}</td></tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
        </section>
    }
}
