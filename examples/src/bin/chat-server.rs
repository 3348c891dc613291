//! The chat server.
//!
//! ```text
//! cargo run --release -p examples --bin chat-server -- [--listen ADDR]
//!     [--node ADDR [--name NAME] --secret S [--join ADDR]...]
//! ```
//!
//! Alone: connect with `nc 127.0.0.1 7000`, then `/nick ada`, `/join lobby`, and type.
//!
//! Several nodes: `--node` binds this node's QUIC endpoint, `--join` dials another node (retried
//! until it answers; reconnected if lost), `--secret` is the shared cluster secret (development
//! mode TLS). Rooms are spread over the nodes; clients of any node meet in any room:
//!
//! ```text
//! chat-server --listen 127.0.0.1:7000 --node 127.0.0.1:7400 --name a --secret s
//! chat-server --listen 127.0.0.1:7001 --node 127.0.0.1:7401 --name b --secret s --join 127.0.0.1:7400
//! ```

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use examples::chat::{ChatConfig, ChatServer};
use examples::serve::NodeArgs;

fn parse() -> Result<(String, NodeArgs), String> {
    let (mut listen, mut cluster) = ("127.0.0.1:7000".to_owned(), NodeArgs::default());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--listen" {
            listen = value;
        } else if !cluster.take(&flag, &value)? {
            return Err(format!("unknown flag {flag}"));
        }
    }
    cluster.check()?;
    Ok((listen, cluster))
}

fn main() -> ExitCode {
    let (listen, cluster) = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: chat-server [--listen ADDR] {}",
                NodeArgs::USAGE
            );
            return ExitCode::from(2);
        }
    };
    examples::serve::run("chat", |system| async move {
        let config = ChatConfig::default();
        let node = cluster.start(&system)?;
        let server = match &node {
            None => ChatServer::start(&system, &listen, config).await?,
            Some(node) => {
                ChatServer::start_clustered(&system, &listen, config, node.clone()).await?
            }
        };
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
        if let Some(node) = node {
            node.shutdown();
        }
        Ok(())
    })
}
