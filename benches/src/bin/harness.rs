//! The benchmark harness.
//!
//! ```text
//! cargo run --release -p benches --bin harness -- [--suite local|remote|all] [--quick]
//!     [--only NAME[,NAME]] [--frameworks LIST] [--runs N] [--summary PATH]
//! cargo run --release -p benches --bin harness -- --pool A.jsonl,B.jsonl
//! ```
//!
//! Prints one JSON object per line per measurement (the median over `--runs`, every run listed),
//! and writes a Markdown summary (default `target/bench-summary.md`). The local suite goes
//! workload by workload, and runs each workload's frameworks in turn, one run each per round
//! ([`benches::interleaved`]), so that the host's drift over minutes falls on all of them alike;
//! each run is announced on stderr (`pingpong 2/3: actix`). `--pool` runs nothing: it
//! prints the summary of saved outputs, each cell the median over all their runs. The spawn workload runs in a
//! fresh child process per framework, so resident memory is not skewed by earlier workloads.

use std::process::{Command, ExitCode};
use std::time::Duration;

use benches::frameworks::{self, Framework};
use benches::{Measurement, Sizes, median, report};

/// Actors in the `timer_jitter` workload, each ticking at 50 Hz.
const TIMER_ACTORS: usize = 10_000;
/// Entities in the `conflating` workload (a room's players, each sending position updates).
const CONFLATING_ENTITIES: u64 = 1_000;
/// Rooms ticking beside the busy one in the `ticking_rooms` workload.
const CROWD_ROOMS: usize = 1_000;

/// A remote workload: message count in, messages per second out.
type RemoteBench = fn(u64) -> benches::BenchResult<f64>;

struct Args {
    suite: String,
    quick: bool,
    only: Option<Vec<String>>,
    frameworks: Option<Vec<String>>,
    runs: Option<usize>,
    summary: String,
    child_spawn: Option<(String, usize)>,
    /// Saved outputs to pool into one summary instead of running anything.
    pool: Option<Vec<String>>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        suite: "local".into(),
        quick: false,
        only: None,
        frameworks: None,
        runs: None,
        summary: "target/bench-summary.md".into(),
        child_spawn: None,
        pool: None,
    };
    let mut it = std::env::args().skip(1);
    let list = |s: String| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--suite" => a.suite = value("--suite")?,
            "--quick" => a.quick = true,
            "--only" => a.only = Some(list(value("--only")?)),
            "--frameworks" => a.frameworks = Some(list(value("--frameworks")?)),
            "--runs" => {
                a.runs = Some(
                    value("--runs")?
                        .parse()
                        .map_err(|_| "--runs takes a number")?,
                )
            }
            "--summary" => a.summary = value("--summary")?,
            "--pool" => a.pool = Some(list(value("--pool")?)),
            "--child-spawn" => {
                let fw = value("--child-spawn")?;
                let n = value("--child-spawn")?
                    .parse()
                    .map_err(|_| "--child-spawn FRAMEWORK N")?;
                a.child_spawn = Some((fw, n));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: harness [--suite local|remote|all] [--quick] [--only NAME[,NAME]] \
                            [--frameworks LIST] [--runs N] [--summary PATH] | \
                            --pool OUTPUT.jsonl[,OUTPUT.jsonl]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if !["local", "remote", "all"].contains(&a.suite.as_str()) {
        return Err(format!(
            "--suite must be local, remote or all, not {:?}",
            a.suite
        ));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some((fw, n)) = &args.child_spawn {
        return child_spawn(fw, *n);
    }
    if let Some(files) = &args.pool {
        return match pool(files) {
            Ok(md) => {
                println!("{md}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let local = args.suite != "remote";
    let remote = args.suite != "local";
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let selected: Vec<Framework> = frameworks::all()
        .into_iter()
        .filter(|f| {
            args.frameworks
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x == f.name))
        })
        .collect();
    let wants = |bench: &str| {
        args.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == bench))
    };
    let mut all = Vec::new();
    let mut failures = 0;
    let mut emit = |ms: Vec<Measurement>| {
        for m in ms {
            println!("{}", m.to_json());
            all.push(m);
        }
    };
    if local {
        // Every selected framework's workloads, grouped by workload in the suite's order.
        let mut suite: Vec<(&'static str, Vec<(&'static str, Job)>)> = Vec::new();
        for fw in &selected {
            for (bench, job) in workloads(fw, sizes, args.quick) {
                if !wants(bench) {
                    continue;
                }
                match suite.iter_mut().find(|(b, _)| *b == bench) {
                    Some((_, jobs)) => jobs.push((fw.name, job)),
                    None => suite.push((bench, vec![(fw.name, job)])),
                }
            }
        }
        for (bench, jobs) in suite {
            // Per framework: its metrics so far, or `None` once a run failed.
            let mut results: Vec<Option<Vec<Metric>>> =
                jobs.iter().map(|_| Some(Vec::new())).collect();
            for (n, i) in benches::interleaved(runs, jobs.len()).enumerate() {
                let (name, job) = &jobs[i];
                let Some(per_metric) = results[i].as_mut() else {
                    continue;
                };
                eprintln!("{bench} {}/{runs}: {name}", n / jobs.len() + 1);
                match job() {
                    Ok(values) => {
                        for (metric, v, unit) in values {
                            match per_metric.iter_mut().find(|(m, _, _)| *m == metric) {
                                Some((_, _, vs)) => vs.push(v),
                                None => per_metric.push((metric, unit, vec![v])),
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("{name} {bench}: FAILED: {e}");
                        failures += 1;
                        results[i] = None;
                    }
                }
            }
            for ((name, _), per_metric) in jobs.iter().zip(results) {
                let Some(per_metric) = per_metric else {
                    continue;
                };
                emit(
                    per_metric
                        .into_iter()
                        .map(|(metric, unit, runs)| Measurement {
                            framework: name,
                            bench,
                            metric,
                            value: median(&runs),
                            unit,
                            runs,
                        })
                        .collect(),
                );
            }
        }
    }
    if remote && wants("remote_throughput") {
        let n = if args.quick { 200_000 } else { 2_000_000 };
        let benches: [(&'static str, RemoteBench); 3] = [
            ("actor-core", benches::remote::actor_core_throughput),
            // The same with the payload marked `serde_bytes` (the README's advice).
            (
                "actor-core-serde-bytes",
                benches::remote::actor_core_throughput_serde_bytes,
            ),
            ("quinn-raw", benches::remote::quinn_raw_throughput),
        ];
        for (name, f) in benches {
            let mut values = Vec::new();
            for _ in 0..runs {
                match f(n) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        eprintln!("{name} remote_throughput: FAILED: {e}");
                        failures += 1;
                        break;
                    }
                }
            }
            if values.len() == runs {
                emit(vec![Measurement {
                    framework: name,
                    bench: "remote_throughput",
                    metric: "msgs_per_s",
                    value: median(&values),
                    unit: "1/s",
                    runs: values,
                }]);
            }
        }
    }
    if remote && wants("remote_fanin") {
        let n = if args.quick { 200_000 } else { 2_000_000 };
        let mut values = Vec::new();
        for _ in 0..runs {
            match benches::remote::actor_core_fanin(n, 10_000) {
                Ok(v) => values.push(v),
                Err(e) => {
                    eprintln!("actor-core remote_fanin: FAILED: {e}");
                    failures += 1;
                    break;
                }
            }
        }
        if values.len() == runs {
            emit(vec![Measurement {
                framework: "actor-core",
                bench: "remote_fanin",
                metric: "msgs_per_s",
                value: median(&values),
                unit: "1/s",
                runs: values,
            }]);
        }
    }
    if remote && wants("remote_rtt") {
        let n = if args.quick { 5_000 } else { 20_000 };
        type RttBench = fn(u64, Option<f64>) -> benches::BenchResult<benches::Percentiles>;
        let benches: [(&'static str, RttBench); 2] = [
            ("actor-core", benches::remote::actor_core_rtt),
            ("quinn-raw", benches::remote::quinn_raw_rtt),
        ];
        for (name, f) in benches {
            // Closed loop, then a fixed 10,000 requests/s.
            for (rate, p50, p99) in [
                (None, "p50_ns", "p99_ns"),
                (Some(10_000.0), "fixed_10k_p50_ns", "fixed_10k_p99_ns"),
            ] {
                let mut runs_p50 = Vec::new();
                let mut runs_p99 = Vec::new();
                for _ in 0..runs {
                    match f(n, rate) {
                        Ok(p) => {
                            runs_p50.push(p.p50);
                            runs_p99.push(p.p99);
                        }
                        Err(e) => {
                            eprintln!("{name} remote_rtt: FAILED: {e}");
                            failures += 1;
                            break;
                        }
                    }
                }
                if runs_p50.len() == runs {
                    emit(vec![
                        Measurement {
                            framework: name,
                            bench: "remote_rtt",
                            metric: p50,
                            value: median(&runs_p50),
                            unit: "ns",
                            runs: runs_p50,
                        },
                        Measurement {
                            framework: name,
                            bench: "remote_rtt",
                            metric: p99,
                            value: median(&runs_p99),
                            unit: "ns",
                            runs: runs_p99,
                        },
                    ]);
                }
            }
        }
    }
    let mut columns: Vec<(&'static str, bool)> = if local {
        selected.iter().map(|f| (f.name, f.is_peer)).collect()
    } else {
        vec![("actor-core", false)]
    };
    if remote {
        columns.push(("actor-core-serde-bytes", false));
        columns.push(("quinn-raw", false));
    }
    let header = format!(
        "Benchmark summary ({} sizes, median of {runs} run(s) each; cells: value (ratio to the best \
         peer among ractor, kameo, actix; above 1.00x is better than every peer))",
        if args.quick { "quick" } else { "full" }
    );
    let md = report::markdown(&all, &columns, &header);
    if let Err(e) = std::fs::write(&args.summary, &md) {
        eprintln!("could not write {}: {e}", args.summary);
    }
    eprintln!("{md}");
    if failures > 0 {
        eprintln!("{failures} workload(s) failed verification");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// A metric's name, unit and values, one per run.
type Metric = (&'static str, &'static str, Vec<f64>);

/// One run of one workload for one framework: each metric's name, value and unit.
type Job = Box<dyn Fn() -> Result<Vec<(&'static str, f64, &'static str)>, String>>;

/// A job that measures one metric.
fn one(
    metric: &'static str,
    unit: &'static str,
    f: impl Fn() -> benches::BenchResult<f64> + 'static,
) -> Job {
    Box::new(move || Ok(vec![(metric, f()?, unit)]))
}

/// The local workloads `fw` has, in the suite's order.
fn workloads(fw: &Framework, sizes: Sizes, quick: bool) -> Vec<(&'static str, Job)> {
    let mut w: Vec<(&'static str, Job)> = Vec::new();
    if let Some(f) = fw.pingpong {
        w.push((
            "pingpong",
            one("round_trips_per_s", "1/s", move || f(sizes.pingpong)),
        ));
    }
    if let Some(f) = fw.counting {
        w.push((
            "counting",
            one("msgs_per_s", "1/s", move || f(sizes.counting)),
        ));
    }
    if let Some(f) = fw.fanout {
        w.push((
            "fanout",
            one("msgs_per_s", "1/s", move || {
                f(sizes.fanout, sizes.fanout_receivers)
            }),
        ));
    }
    if let Some(f) = fw.fanin {
        w.push((
            "fanin",
            one("msgs_per_s", "1/s", move || {
                f(sizes.fanin, sizes.fanin_senders)
            }),
        ));
    }
    if let Some(f) = fw.ring {
        w.push((
            "ring",
            one("hops_per_s", "1/s", move || {
                f(sizes.ring_actors, sizes.ring_hops)
            }),
        ));
    }
    if let Some(f) = fw.ask_latency {
        w.push((
            "ask_latency",
            Box::new(move || {
                let p = f(sizes.asks)?;
                Ok(vec![
                    ("p50_ns", p.p50, "ns"),
                    ("p99_ns", p.p99, "ns"),
                    ("p999_ns", p.p999, "ns"),
                ])
            }),
        ));
    }
    if fw.spawn.is_some() {
        let name = fw.name;
        w.push(("spawn", Box::new(move || spawn_in_child(name, sizes.spawn))));
    }
    if let Some(f) = fw.big {
        w.push((
            "big",
            one("msgs_per_s", "1/s", move || {
                f(sizes.big_actors, sizes.big_pings)
            }),
        ));
    }
    if fw.name == "actor-core" {
        w.push((
            "bounded",
            Box::new(move || {
                let (tell, send) = frameworks::ours::bounded(sizes.counting)?;
                Ok(vec![
                    ("tell_msgs_per_s", tell, "1/s"),
                    ("send_msgs_per_s", send, "1/s"),
                ])
            }),
        ));
        w.push((
            "conflating",
            Box::new(move || {
                let (rate, conflated) =
                    frameworks::ours::conflating(sizes.counting, CONFLATING_ENTITIES)?;
                Ok(vec![
                    ("msgs_per_s", rate, "1/s"),
                    ("conflated_percent", conflated, "%"),
                ])
            }),
        ));
        w.push((
            "ticking_room",
            one("msgs_per_s", "1/s", move || {
                frameworks::ours::ticking_room(sizes.counting)
            }),
        ));
        w.push((
            "ticking_rooms",
            one("msgs_per_s", "1/s", move || {
                frameworks::ours::ticking_rooms(sizes.counting, CROWD_ROOMS)
            }),
        ));
        w.push((
            "mixed_ring",
            one("hops_per_s", "1/s", move || {
                frameworks::ours::mixed_ring(sizes.ring_actors, sizes.ring_hops)
            }),
        ));
        w.push((
            "idle_timeout",
            one("round_trips_per_s", "1/s", move || {
                frameworks::ours::idle_timeout(sizes.pingpong)
            }),
        ));
        let probes = if quick { 500 } else { 2_000 };
        w.push((
            "priority_latency",
            Box::new(move || {
                let p = frameworks::ours::priority_latency(probes)?;
                Ok(vec![("p50_ns", p.p50, "ns"), ("p99_ns", p.p99, "ns")])
            }),
        ));
    }
    if let Some(f) = fw.timer_jitter {
        let secs = if quick { 2 } else { 5 };
        w.push((
            "timer_jitter",
            Box::new(move || {
                let (p, cpu) = f(
                    TIMER_ACTORS,
                    Duration::from_millis(20),
                    Duration::from_secs(secs),
                )?;
                Ok(vec![
                    ("p50_us", p.p50, "us"),
                    ("p99_us", p.p99, "us"),
                    ("cpu_percent", cpu, "%"),
                ])
            }),
        ));
    }
    w
}

/// Runs the spawn workload of one framework in a fresh process.
fn spawn_in_child(
    framework: &str,
    n: usize,
) -> Result<Vec<(&'static str, f64, &'static str)>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--child-spawn", framework, &n.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let get = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .ok_or(format!("child output lacks {k}"))
    };
    Ok(vec![
        ("spawns_per_s", get("spawns_per_s")?, "1/s"),
        ("stops_per_s", get("stops_per_s")?, "1/s"),
        ("rss_bytes_per_actor", get("rss_bytes_per_actor")?, "B"),
    ])
}

fn child_spawn(framework: &str, n: usize) -> ExitCode {
    let Some(f) = frameworks::all()
        .into_iter()
        .find(|f| f.name == framework)
        .and_then(|f| f.spawn)
    else {
        eprintln!("no spawn workload for {framework}");
        return ExitCode::from(2);
    };
    match f(n) {
        Ok(s) => {
            println!(
                "{}",
                serde_json::json!({
                    "spawns_per_s": s.spawns_per_s,
                    "stops_per_s": s.stops_per_s,
                    "rss_bytes_per_actor": s.rss_bytes_per_actor,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `--pool`: the summary table of several saved outputs (this binary's JSON lines), each cell the
/// median over every run of every file. Two invocations of the same command can differ by 20%
/// or more on a row on this VM; a table over both says more than either.
fn pool(files: &[String]) -> Result<String, String> {
    type Key = (String, String, String);
    let mut pooled: std::collections::BTreeMap<Key, (String, Vec<f64>)> = Default::default();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| l.starts_with('{')) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{file}:{}: {e}", n + 1))?;
            let field = |k: &str| {
                v[k].as_str()
                    .map(str::to_owned)
                    .ok_or(format!("{file}:{}: no {k:?}", n + 1))
            };
            let runs = v["runs"]
                .as_array()
                .ok_or(format!("{file}:{}: no \"runs\"", n + 1))?
                .iter()
                .filter_map(serde_json::Value::as_f64);
            let key = (field("framework")?, field("bench")?, field("metric")?);
            let entry = pooled.entry(key).or_insert((field("unit")?, Vec::new()));
            entry.1.extend(runs);
        }
    }
    // The table's strings live as long as the process, which prints it and ends.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut counts = std::collections::BTreeSet::new();
    let measurements: Vec<Measurement> = pooled
        .into_iter()
        .map(|((framework, bench, metric), (unit, runs))| {
            counts.insert(runs.len());
            Measurement {
                framework: leak(framework),
                bench: leak(bench),
                metric: leak(metric),
                value: median(&runs),
                unit: leak(unit),
                runs,
            }
        })
        .collect();
    let columns: Vec<(&'static str, bool)> = frameworks::all()
        .into_iter()
        .map(|f| (f.name, f.is_peer))
        .chain([("actor-core-serde-bytes", false), ("quinn-raw", false)])
        .filter(|(name, _)| measurements.iter().any(|m| m.framework == *name))
        .collect();
    let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
    let header = format!(
        "Pooled medians of {} run(s) from {} output(s) (cells: value (ratio to the best peer \
         among ractor, kameo, actix; above 1.00x is better than every peer))",
        counts.join("/"),
        files.len()
    );
    Ok(report::markdown(&measurements, &columns, &header))
}
