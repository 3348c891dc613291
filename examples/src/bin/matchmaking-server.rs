//! The matchmaking server:
//! `cargo run --release -p examples --bin matchmaking-server -- [--listen ADDR] [--match-size N]`.

use std::process::ExitCode;
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};
use examples::matchmaking::{MatchConfig, MatchServer};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut listen = "127.0.0.1:7100".to_owned();
    let mut config = MatchConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            ("--match-size", Some(n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                config.match_size = n.parse().unwrap_or(4);
            }
            _ => {
                eprintln!("usage: matchmaking-server [--listen ADDR] [--match-size N]");
                return ExitCode::from(2);
            }
        }
    }
    let rt = match ActorSystem::with_runtime(SystemConfig {
        name: "matchmaking".into(),
        ..Default::default()
    }) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the actor system: {e}");
            return ExitCode::FAILURE;
        }
    };
    let system = rt.system().clone();
    let served = rt.block_on(async {
        let server = MatchServer::start(&system, &listen, config).await?;
        println!(
            "matchmaking server on {}; try: echo '{{\"op\":\"queue\",\"player\":\"p1\",\"rating\":1500,\"region\":\"eu\"}}' | nc -q 5 {} {}",
            server.local_addr,
            server.local_addr.ip(),
            server.local_addr.port()
        );
        tokio::signal::ctrl_c().await?;
        println!("shutting down after {} matches", server.stats.matches.load(std::sync::atomic::Ordering::Relaxed));
        Ok::<_, std::io::Error>(())
    });
    let report = rt.shutdown(Duration::from_secs(5));
    match served {
        Ok(()) if report.is_graceful() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("matchmaking server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
