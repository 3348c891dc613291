//! The chat server: `cargo run --release -p examples --bin chat-server -- [--listen ADDR]`.
//!
//! Connect with `nc 127.0.0.1 7000`, then `/nick ada`, `/join lobby`, and type.

use std::process::ExitCode;
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};
use examples::chat::{ChatConfig, ChatServer};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut listen = "127.0.0.1:7000".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            _ => {
                eprintln!(
                    "usage: chat-server [--listen ADDR]   (multi-node flags arrive with actor-remote)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let rt = match ActorSystem::with_runtime(SystemConfig {
        name: "chat".into(),
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
        let server = ChatServer::start(&system, &listen, ChatConfig::default()).await?;
        println!(
            "chat server on {}; connect with: nc {} {}",
            server.local_addr,
            server.local_addr.ip(),
            server.local_addr.port()
        );
        tokio::signal::ctrl_c().await?;
        println!(
            "shutting down ({} connections served, {} lines dropped for slow clients)",
            server
                .stats
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            server
                .stats
                .dropped_lines
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        Ok::<_, std::io::Error>(())
    });
    let report = rt.shutdown(Duration::from_secs(5));
    match served {
        Ok(()) if report.is_graceful() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chat server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
