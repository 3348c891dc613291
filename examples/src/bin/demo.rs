//! The demo behind the README's run command: a two-node cluster in one process (two actor
//! systems joined over QUIC on 127.0.0.1), each node with a chat server, chatters connected to
//! both nodes and meeting in rooms spread over the two, a matchmaking server with simulated
//! players, one match crashed on purpose (and restarted by its supervisor), and a live summary
//! every second. Afterwards the servers keep running for you to try with netcat, until Ctrl-C
//! (or `--duration SECS`).
//!
//! `cargo run --release -p examples --bin demo`

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::sync::Arc;

use actor_core::{ActorSystem, SystemConfig};
use actor_remote::node::{Node, NodeConfig};
use examples::chat::{ChatConfig, ChatServer};
use examples::matchmaking::{MatchConfig, MatchServer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut duration: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--duration", Some(secs)) => duration = Some(secs),
            _ => return Err("usage: demo [--duration SECS]".into()),
        }
    }
    // Panics inside actors are contained; one line each is enough here (a panic hook is
    // process-wide, so setting it is the application's choice, not the library's).
    std::panic::set_hook(Box::new(|info| eprintln!("contained panic: {info}")));
    // The supervisor's restart of the crashed match is logged at info; the rest only at warn.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,supervision=info")),
        )
        .with_target(false)
        .init();
    let rt = ActorSystem::with_runtime(SystemConfig {
        name: "demo".into(),
        worker_threads: Some(2),
        ..Default::default()
    })?;
    let system = rt.system().clone();
    rt.block_on(async {
        // Two nodes: this system is "alpha", a second one is "beta"; both on QUIC with the
        // development-mode TLS and a cluster secret.
        let system_b = ActorSystem::new(SystemConfig { name: "demo-beta".into(), ..Default::default() })?;
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let alpha = Arc::new(Node::start(&system, NodeConfig::new("alpha", any, "demo-secret"))?);
        let beta = Arc::new(Node::start(&system_b, NodeConfig::new("beta", any, "demo-secret"))?);
        alpha.connect(beta.local_addr()?).await?;
        // Fixed ports if free, any port otherwise.
        let chat_cfg = ChatConfig::default();
        let chat = match ChatServer::start_clustered(&system, "127.0.0.1:7000", chat_cfg.clone(), alpha.clone()).await {
            Ok(s) => s,
            Err(_) => ChatServer::start_clustered(&system, "127.0.0.1:0", chat_cfg.clone(), alpha.clone()).await?,
        };
        let chat_b = match ChatServer::start_clustered(&system_b, "127.0.0.1:7001", chat_cfg.clone(), beta.clone()).await {
            Ok(s) => s,
            Err(_) => ChatServer::start_clustered(&system_b, "127.0.0.1:0", chat_cfg, beta.clone()).await?,
        };
        let mm_cfg = MatchConfig { match_ticks: 60, allow_crash: true, ..Default::default() };
        let mm = match MatchServer::start(&system, "127.0.0.1:7100", mm_cfg.clone()).await {
            Ok(s) => s,
            Err(_) => MatchServer::start(&system, "127.0.0.1:0", mm_cfg).await?,
        };
        println!("cluster:            nodes alpha ({}) and beta ({}) over QUIC", alpha.local_addr()?, beta.local_addr()?);
        println!("chat on alpha:      nc {} {}", chat.local_addr.ip(), chat.local_addr.port());
        println!("chat on beta:       nc {} {}   (same rooms: clients of both nodes meet)", chat_b.local_addr.ip(), chat_b.local_addr.port());
        println!("matchmaking server: nc {} {}   (one JSON object per line)", mm.local_addr.ip(), mm.local_addr.port());
        println!("simulating 24 chatters (half on each node) in 3 rooms and 600 players in 3 regions; one match will crash...\n");

        for bot in 0..24u32 {
            let addr = if bot % 2 == 0 { chat.local_addr } else { chat_b.local_addr };
            tokio::spawn(async move {
                let Ok(stream) = TcpStream::connect(addr).await else { return };
                let (read, mut write) = stream.into_split();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(_)) = lines.next_line().await {}
                });
                let _ = write.write_all(format!("/nick bot{bot}\n/join {}\n", ["lobby", "arena", "guild"][bot as usize % 3]).as_bytes()).await;
                for n in 0u32.. {
                    tokio::time::sleep(Duration::from_millis(300 + u64::from(bot) * 7)).await;
                    if write.write_all(format!("gg #{n}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
        let mm_addr = mm.local_addr;
        tokio::spawn(async move {
            let Ok(stream) = TcpStream::connect(mm_addr).await else { return };
            let (read, mut write) = stream.into_split();
            let mut crashed = false;
            let (tx, mut matched) = tokio::sync::mpsc::unbounded_channel::<u64>();
            tokio::spawn(async move {
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["op"] == "matched"
                        && let Some(id) = v["match"].as_u64()
                    {
                        let _ = tx.send(id);
                    }
                }
            });
            for p in 0..600u32 {
                let rating = 1000 + (p * 7919) % 1500;
                let region = ["eu", "us", "asia"][p as usize % 3];
                let line = json!({"op": "queue", "player": format!("sim-{p}"), "rating": rating, "region": region});
                if write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(8)).await;
                if !crashed && p > 300 && let Ok(id) = matched.try_recv() {
                    crashed = true;
                    let _ = write.write_all(format!("{}\n", json!({"op": "crash", "match": id})).as_bytes()).await;
                }
            }
            // Keep the connection (and the queued players) open.
            std::future::pending::<()>().await;
            drop(write);
        });

        let mut second = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            second += 1;
            println!(
                "[{second:>3}s] actors {:>4}+{:<3} | chat: {}+{} connections, {} lines dropped | matchmaking: {} matches, {} players matched | alpha<->beta {} msgs | dead letters {}",
                system.actor_count(),
                system_b.actor_count(),
                chat.stats.connections.load(Ordering::Relaxed),
                chat_b.stats.connections.load(Ordering::Relaxed),
                chat.stats.dropped_lines.load(Ordering::Relaxed) + chat_b.stats.dropped_lines.load(Ordering::Relaxed),
                mm.stats.matches.load(Ordering::Relaxed),
                mm.stats.players_matched.load(Ordering::Relaxed),
                alpha.stats().messages_sent + beta.stats().messages_sent,
                system.dead_letter_count() + system_b.dead_letter_count(),
            );
            if second == 6 {
                println!("        (a match crashed above and was restarted by its supervisor; the other matches kept ticking)");
                println!("        try it yourself: nc {} {}  (or port {} on the other node)  then /nick you, /join lobby", chat.local_addr.ip(), chat.local_addr.port(), chat_b.local_addr.port());
            }
            if duration.is_some_and(|d| second >= d) {
                break;
            }
        }
        alpha.shutdown();
        beta.shutdown();
        let _ = system_b.shutdown(Duration::from_secs(5)).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let report = rt.shutdown(Duration::from_secs(5));
    println!(
        "shut down {}",
        if report.is_graceful() {
            "gracefully"
        } else {
            "with kills"
        }
    );
    Ok(())
}
