//! The chat server.
//!
//! ```text
//! cargo run --release -p examples --bin chat-server -- [--listen ADDR]
//!     [--node ADDR [--name NAME] [--secret S] [--join ADDR]...]
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

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actor_remote::node::{Node, NodeConfig};
use examples::chat::{ChatConfig, ChatServer};

const USAGE: &str =
    "usage: chat-server [--listen ADDR] [--node ADDR [--name NAME] [--secret S] [--join ADDR]...]";

struct Args {
    listen: String,
    node: Option<SocketAddr>,
    name: Option<String>,
    secret: String,
    join: Vec<SocketAddr>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:7000".into(),
        node: None,
        name: None,
        secret: String::new(),
        join: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--listen" => a.listen = value,
            "--node" => a.node = Some(addr(&value)?),
            "--name" => a.name = Some(value),
            "--secret" => a.secret = value,
            "--join" => a.join.push(addr(&value)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.node.is_none() && (!a.join.is_empty() || a.name.is_some()) {
        return Err("--join and --name need --node".into());
    }
    if a.node.is_some() && a.secret.is_empty() {
        return Err("--node needs --secret (the shared cluster secret)".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    examples::serve::run("chat", |system| async move {
        let config = ChatConfig::default();
        let (server, node) = match args.node {
            None => (
                ChatServer::start(&system, &args.listen, config).await?,
                None,
            ),
            Some(bind) => {
                let name = args
                    .name
                    .unwrap_or_else(|| format!("chat-{}", std::process::id()));
                let node = Node::start(&system, NodeConfig::new(name, bind, args.secret))
                    .map(Arc::new)
                    .map_err(std::io::Error::other)?;
                for peer in args.join {
                    let node = node.clone();
                    tokio::spawn(async move {
                        // The peer may not be up yet: retry until it answers.
                        loop {
                            match node.connect(peer).await {
                                Ok(p) => {
                                    println!("joined node {} at {peer}", p.node);
                                    break;
                                }
                                Err(e) => {
                                    eprintln!("joining {peer}: {e}; retrying in 1 s");
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                        }
                    });
                }
                let server =
                    ChatServer::start_clustered(&system, &args.listen, config, node.clone())
                        .await?;
                println!("node {} on {} (QUIC)", node.name(), node.local_addr()?);
                (server, Some(node))
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
