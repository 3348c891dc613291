//! A node in its own OS process, driven by the multi-process test (`tests/multi_process.rs`).
//!
//! `actor-remote-test-node --name N --bind ADDR --secret S [--heartbeat-ms H] [--unreachable-ms U]`
//! starts a node with the ping actor exposed and prints `LISTENING <addr> <incarnation>`. Each
//! time a peer comes up it looks up the peer's ping actor, asks it, and prints
//! `PONG <node> <incarnation>`, so the test sees asks travel from this process too. It runs until
//! killed.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use actor_core::{ActorRef, ActorSystem, SystemConfig};
use actor_remote::association::Liveness;
use actor_remote::node::{Node, NodeConfig, PeerState};
use actor_remote::ping::{PING_PATH, PingMsg, spawn_ping};

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let name = arg(&args, "--name").ok_or("--name is required")?;
    let bind: SocketAddr = arg(&args, "--bind")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let secret = arg(&args, "--secret").ok_or("--secret is required")?;
    let ms = |flag: &str, default: u64| -> Result<Duration, Box<dyn std::error::Error>> {
        Ok(Duration::from_millis(match arg(&args, flag) {
            Some(v) => v.parse()?,
            None => default,
        }))
    };
    let liveness = Liveness {
        heartbeat_interval: ms("--heartbeat-ms", 200)?,
        unreachable_after: ms("--unreachable-ms", 1_000)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let system = ActorSystem::new(SystemConfig::default())?;
        let mut config = NodeConfig::new(name, bind, secret.into_bytes());
        config.liveness = liveness;
        let node = Node::start(&system, config)?;
        spawn_ping(&system, &node)?;
        println!("LISTENING {} {}", node.local_addr()?, node.incarnation());
        std::io::stdout().flush()?;
        let mut asked = HashSet::new();
        loop {
            for peer in node.peers() {
                if peer.state != PeerState::Up
                    || !asked.insert((peer.node.clone(), peer.incarnation))
                {
                    continue;
                }
                let ping: ActorRef<PingMsg> = match node.lookup(&peer.node, PING_PATH).await {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("lookup on {} failed: {e}", peer.node);
                        asked.remove(&(peer.node.clone(), peer.incarnation));
                        continue;
                    }
                };
                match ping.ask(|reply| PingMsg::Ping { reply }).await {
                    Ok(pong) => println!("PONG {} {}", pong.node, pong.incarnation),
                    Err(e) => eprintln!("ask to {} failed: {e}", peer.node),
                }
                std::io::stdout().flush()?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}
