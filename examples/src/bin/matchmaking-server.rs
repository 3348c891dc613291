//! The matchmaking server.
//!
//! ```text
//! cargo run --release -p examples --bin matchmaking-server -- [--listen ADDR] [--match-size N]
//!     [--node ADDR [--name NAME] --secret S [--join ADDR]...]
//! ```
//!
//! With the cluster flags (see `chat-server`), each region's queue lives on one node and clients
//! of any node are matched together.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use examples::matchmaking::{MatchConfig, MatchServer};
use examples::serve::NodeArgs;

fn parse() -> Result<(String, MatchConfig, NodeArgs), String> {
    let mut listen = "127.0.0.1:7100".to_owned();
    let mut config = MatchConfig::default();
    let mut cluster = NodeArgs::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--match-size" => match value.parse::<usize>() {
                Ok(n) if n > 0 => config.match_size = n,
                _ => return Err(format!("--match-size {value}: a positive number")),
            },
            _ if cluster.take(&flag, &value)? => {}
            other => return Err(format!("unknown flag {other}")),
        }
    }
    cluster.check()?;
    Ok((listen, config, cluster))
}

fn main() -> ExitCode {
    let (listen, config, cluster) = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: matchmaking-server [--listen ADDR] [--match-size N] {}",
                NodeArgs::USAGE
            );
            return ExitCode::from(2);
        }
    };
    examples::serve::run("matchmaking", |system| async move {
        let node = cluster.start(&system)?;
        let server = match &node {
            None => MatchServer::start(&system, &listen, config).await?,
            Some(node) => {
                MatchServer::start_clustered(&system, &listen, config, node.clone()).await?
            }
        };
        let addr = server.local_addr;
        println!(
            "matchmaking server on {addr}; try: echo '{{\"op\":\"queue\",\"player\":\"p1\",\"rating\":1500,\"region\":\"eu\"}}' | nc -q 5 {} {}",
            addr.ip(),
            addr.port()
        );
        tokio::signal::ctrl_c().await?;
        println!(
            "shutting down after {} matches",
            server.stats.matches.load(Ordering::Relaxed)
        );
        if let Some(node) = node {
            node.shutdown();
        }
        Ok(())
    })
}
