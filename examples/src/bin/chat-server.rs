//! The chat server: `cargo run --release -p examples --bin chat-server -- [--listen ADDR]`.
//!
//! Connect with `nc 127.0.0.1 7000`, then `/nick ada`, `/join lobby`, and type.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use examples::chat::{ChatConfig, ChatServer};

fn main() -> ExitCode {
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
    examples::serve::run("chat", |system| async move {
        let server = ChatServer::start(&system, &listen, ChatConfig::default()).await?;
        let addr = server.local_addr;
        println!(
            "chat server on {addr}; connect with: nc {} {}",
            addr.ip(),
            addr.port()
        );
        tokio::signal::ctrl_c().await?;
        println!(
            "shutting down ({} connections served, {} lines dropped for slow clients)",
            server.stats.connections.load(Ordering::Relaxed),
            server.stats.dropped_lines.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
