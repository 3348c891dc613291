//! Load generator for the matchmaking server: connects simulated players over TCP, queues them
//! with random ratings in a few regions, and reports matches per second, time-to-match
//! percentiles and the rating spread of the matches.
//!
//! `cargo run --release -p examples --bin matchmaking-loadgen -- [--players N] [--target ADDR]`
//! Without `--target` it starts a server in-process on 127.0.0.1 (port 0) and loads that.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use actor_core::{ActorSystem, SystemConfig};
use examples::matchmaking::{MatchConfig, MatchServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 50;

fn main() -> ExitCode {
    let mut players = 10_000usize;
    let mut target: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--players", Some(n)) if n.parse::<usize>().is_ok() => {
                players = n.parse().unwrap_or(players)
            }
            ("--target", Some(addr)) => target = Some(addr),
            _ => {
                eprintln!("usage: matchmaking-loadgen [--players N] [--target ADDR]");
                return ExitCode::from(2);
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(players, target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each player's rating, a deterministic function of its index, so any connection can compute
/// the rating spread of a match.
fn rating(player: usize) -> f64 {
    let mut z = (player as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    1000.0 + ((z ^ (z >> 31)) % 2000) as f64
}

async fn run(players: usize, target: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    let _server;
    let addr = match target {
        Some(a) => a,
        None => {
            let system = ActorSystem::new(SystemConfig::default())?;
            let config = MatchConfig {
                match_ticks: 20,
                ..Default::default()
            };
            let server = MatchServer::start(&system, "127.0.0.1:0", config).await?;
            let a = server.local_addr.to_string();
            _server = (system, server);
            a
        }
    };
    let regions = ["eu", "us", "asia"];
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..CONNECTIONS {
        let addr = addr.clone();
        let mine: Vec<usize> = (0..players).filter(|p| p % CONNECTIONS == conn).collect();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut sent_at: HashMap<String, Instant> = HashMap::new();
            for p in &mine {
                let name = format!("player-{p}");
                let region = regions[p % regions.len()];
                let line =
                    json!({"op": "queue", "player": name, "rating": rating(*p), "region": region})
                        .to_string();
                write.write_all(format!("{line}\n").as_bytes()).await?;
                sent_at.insert(name, Instant::now());
            }
            // Per own player: time to match. Per match seen: its rating spread (deduplicated
            // across connections by the caller).
            let mut waits = Vec::new();
            let mut matches: HashMap<u64, f64> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !sent_at.is_empty() && Instant::now() < deadline {
                let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
                else {
                    break;
                };
                let v: Value = serde_json::from_str(&line)?;
                if v["op"] != "matched" {
                    continue;
                }
                let names: Vec<&str> = v["players"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
                    .unwrap_or_default();
                let ratings: Vec<f64> = names
                    .iter()
                    .filter_map(|n| n.strip_prefix("player-")?.parse::<usize>().ok())
                    .map(rating)
                    .collect();
                if let (Some(id), Some(lo), Some(hi)) = (
                    v["match"].as_u64(),
                    ratings.iter().copied().reduce(f64::min),
                    ratings.iter().copied().reduce(f64::max),
                ) {
                    matches.insert(id, hi - lo);
                }
                for n in names {
                    if let Some(t) = sent_at.remove(n) {
                        waits.push(t.elapsed());
                    }
                }
            }
            Ok::<_, std::io::Error>((waits, matches, sent_at.len()))
        }));
    }
    let mut waits = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut all_matches: HashMap<u64, f64> = HashMap::new();
    let mut unmatched = 0;
    for t in tasks {
        let (w, m, left) = t.await??;
        unmatched += left;
        for d in w {
            waits.record(d.as_micros() as u64)?;
        }
        all_matches.extend(m);
    }
    let elapsed = start.elapsed();
    let mut spread = hdrhistogram::Histogram::<u64>::new(3)?;
    for s in all_matches.values() {
        spread.record(*s as u64)?;
    }
    println!(
        "players: {players}, matched: {}, still queued when the run ended: {unmatched}",
        waits.len()
    );
    println!(
        "matches: {} ({:.0}/s over {:.2} s)",
        all_matches.len(),
        all_matches.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "time to match: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        waits.value_at_quantile(0.5) as f64 / 1e3,
        waits.value_at_quantile(0.99) as f64 / 1e3,
        waits.max() as f64 / 1e3
    );
    println!(
        "rating spread per match: p50 {}, p99 {}, max {}",
        spread.value_at_quantile(0.5),
        spread.value_at_quantile(0.99),
        spread.max()
    );
    Ok(())
}
