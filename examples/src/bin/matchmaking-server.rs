//! The matchmaking server:
//! `cargo run --release -p examples --bin matchmaking-server -- [--listen ADDR] [--match-size N]`.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use examples::matchmaking::{MatchConfig, MatchServer};

fn main() -> ExitCode {
    let mut listen = "127.0.0.1:7100".to_owned();
    let mut config = MatchConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--listen", Some(addr)) => listen = addr,
            ("--match-size", Some(n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => {
                config.match_size = n.parse().unwrap_or(config.match_size);
            }
            _ => {
                eprintln!("usage: matchmaking-server [--listen ADDR] [--match-size N]");
                return ExitCode::from(2);
            }
        }
    }
    examples::serve::run("matchmaking", |system| async move {
        let server = MatchServer::start(&system, &listen, config).await?;
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
        Ok(())
    })
}
