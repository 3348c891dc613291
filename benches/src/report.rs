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
            "fanin",
            "ring",
            "ask_latency",
            "spawn",
            "big",
            "bounded",
            "priority_latency",
            "timer_jitter",
            "idle_timeout",
            "ticking_room",
            "ticking_rooms",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(framework: &'static str, metric: &'static str, value: f64) -> Measurement {
        Measurement {
            framework,
            bench: "x",
            metric,
            value,
            unit: "u",
            runs: vec![value],
        }
    }

    #[test]
    fn ratios_are_against_the_best_peer_and_above_one_means_better() {
        let frameworks = [("ours", false), ("p1", true), ("p2", true), ("base", false)];
        let ms = [
            m("ours", "msgs_per_s", 300.0),
            m("p1", "msgs_per_s", 100.0),
            m("p2", "msgs_per_s", 200.0),
            m("base", "msgs_per_s", 400.0),
            m("ours", "p50_ns", 50.0),
            m("p1", "p50_ns", 100.0),
            m("p2", "p50_ns", 200.0),
        ];
        let md = markdown(&ms, &frameworks, "h");
        let throughput = md.lines().find(|l| l.contains("msgs_per_s")).expect("row");
        assert!(
            throughput.contains("300 (1.50x)") || throughput.contains("300.00 (1.50x)"),
            "{throughput}"
        );
        assert!(
            throughput.contains("(0.50x)")
                && throughput.contains("(1.00x)")
                && throughput.contains("(2.00x)")
        );
        let latency = md.lines().find(|l| l.contains("p50_ns")).expect("row");
        assert!(latency.contains("50.00 (2.00x)"), "{latency}");
        assert!(
            latency.trim_end().ends_with("- |"),
            "missing cells are dashes: {latency}"
        );
    }
}
