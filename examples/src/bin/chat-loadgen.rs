//! Load generator for the chat server: N users in M rooms over TCP, each saying K timestamped
//! lines; every member measures how long each line took to reach it (fan-out latency).
//!
//! `cargo run --release -p examples --bin chat-loadgen -- [--users N] [--rooms M] [--lines K] [--target ADDR]`
//! Without `--target` it starts a server in-process on 127.0.0.1 (port 0) and loads that.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actor_core::{ActorSystem, SystemConfig};
use examples::chat::{ChatConfig, ChatServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn main() -> ExitCode {
    let (mut users, mut rooms, mut lines) = (200usize, 10usize, 50usize);
    let mut target: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let num = value
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0);
        match (arg.as_str(), num, value) {
            ("--users", Some(n), _) => users = n,
            ("--rooms", Some(n), _) => rooms = n,
            ("--lines", Some(n), _) => lines = n,
            ("--target", _, Some(addr)) => target = Some(addr),
            _ => {
                eprintln!(
                    "usage: chat-loadgen [--users N] [--rooms M] [--lines K] [--target ADDR]"
                );
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
    match rt.block_on(run(users, rooms.min(users), lines, target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    users: usize,
    rooms: usize,
    lines: usize,
    target: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let _server;
    let addr = match target {
        Some(a) => a,
        None => {
            let system = ActorSystem::new(SystemConfig::default())?;
            let server = ChatServer::start(&system, "127.0.0.1:0", ChatConfig::default()).await?;
            let a = server.local_addr.to_string();
            _server = (system, server);
            a
        }
    };
    let epoch = Instant::now();
    let members_of = |room: usize| (0..users).filter(|u| u % rooms == room).count();
    // Everyone connects and joins first, so every line reaches the whole room.
    let mut conns = Vec::new();
    for u in 0..users {
        let stream = TcpStream::connect(&addr).await?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read).lines();
        write
            .write_all(format!("/nick u{u}\n/join room-{}\n", u % rooms).as_bytes())
            .await?;
        // Welcome, nick answer, own join.
        for _ in 0..3 {
            reader.next_line().await?;
        }
        conns.push((reader, write));
    }
    // Join announcements of later members are skipped by the readers (they are not timestamped).
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (u, (mut reader, mut write)) in conns.into_iter().enumerate() {
        let expected = members_of(u % rooms) * lines;
        tasks.push(tokio::spawn(async move {
            let writer = tokio::spawn(async move {
                for _ in 0..lines {
                    let at = epoch.elapsed().as_micros();
                    if write
                        .write_all(format!("t={at}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                write
            });
            let mut latencies = Vec::with_capacity(expected);
            while latencies.len() < expected {
                let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(10), reader.next_line()).await
                else {
                    break;
                };
                if let Some(at) = line
                    .split_once(": t=")
                    .and_then(|(_, t)| t.parse::<u128>().ok())
                {
                    latencies.push(epoch.elapsed().as_micros().saturating_sub(at) as u64);
                }
            }
            let _ = writer.await;
            (latencies, expected)
        }));
    }
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    let (mut got, mut want) = (0usize, 0usize);
    for t in tasks {
        let (lat, expected) = t.await?;
        got += lat.len();
        want += expected;
        for l in lat {
            h.record(l.max(1))?;
        }
    }
    let elapsed = start.elapsed();
    println!("users: {users} in {rooms} rooms, {lines} lines each");
    println!(
        "deliveries: {got} of {want} expected ({:.0}/s over {:.2} s)",
        got as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "fan-out latency: p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
    Ok(())
}
