//! The Markdown summary: one row per bench and metric, one column per framework, each cell with
//! its ratio to the best peer framework (above 1.00x: better than every peer).

use std::collections::BTreeMap;

use crate::{Measurement, higher_is_better};

/// Renders the summary table.
pub fn markdown(
    measurements: &[Measurement],
    frameworks: &[(&'static str, bool)],
    header: &str,
) -> String {
    let mut rows: BTreeMap<
        (usize, &'static str, &'static str),
        BTreeMap<&'static str, &Measurement>,
    > = BTreeMap::new();
    let order = |bench: &str| {
        [
            "pingpong",
            "counting",
            "fanout",
            "ring",
            "ask_latency",
            "spawn",
            "big",
            "priority_latency",
            "timer_jitter",
        ]
        .iter()
        .position(|b| *b == bench)
        .unwrap_or(99)
    };
    for m in measurements {
        rows.entry((order(m.bench), m.bench, m.metric))
            .or_default()
            .insert(m.framework, m);
    }
    let mut out = String::new();
    out.push_str(header);
    out.push_str("\n\n| bench | metric |");
    for (name, _) in frameworks {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|---|");
    for _ in frameworks {
        out.push_str("---:|");
    }
    out.push('\n');
    for ((_, bench, metric), cells) in &rows {
        let higher = higher_is_better(metric);
        let best_peer = frameworks
            .iter()
            .filter(|(_, peer)| *peer)
            .filter_map(|(name, _)| cells.get(name).map(|m| m.value))
            .filter(|v| v.is_finite() && *v > 0.0)
            .reduce(|a, b| {
                if (higher && b > a) || (!higher && b < a) {
                    b
                } else {
                    a
                }
            });
        out.push_str(&format!(
            "| {bench} | {metric} ({}) |",
            cells.values().next().map_or("", |m| m.unit)
        ));
        for (name, _) in frameworks {
            match cells.get(name) {
                Some(m) => {
                    let ratio = best_peer.map(|b| if higher { m.value / b } else { b / m.value });
                    match ratio {
                        Some(r) if r.is_finite() => {
                            out.push_str(&format!(" {} ({r:.2}x) |", human(m.value)))
                        }
                        _ => out.push_str(&format!(" {} |", human(m.value))),
                    }
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    out
}

/// A number with a k/M suffix.
pub fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
