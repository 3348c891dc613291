//! What every server binary does around its server: logging, an actor system owning its runtime,
//! serving until Ctrl-C, and a graceful shutdown whose outcome becomes the exit code.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};

/// Runs `serve` on a fresh actor system named `name` until it returns (normally after Ctrl-C),
/// then shuts the system down within 5 s.
pub fn run<F, Fut>(name: &str, serve: F) -> ExitCode
where
    F: FnOnce(ActorSystem) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = match ActorSystem::with_runtime(SystemConfig {
        name: name.into(),
        ..Default::default()
    }) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the actor system: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(serve(rt.system().clone()));
    let report = rt.shutdown(Duration::from_secs(5));
    match served {
        Ok(()) if report.is_graceful() => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!(
                "{name}: shutdown had to kill {} actor(s)",
                report.killed.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{name} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The cluster flags every server binary accepts: `--node ADDR` (this node's QUIC address),
/// `--name NAME` (unique in the cluster; default from the process id), `--secret S` (the shared
/// cluster secret, development-mode TLS) and `--join ADDR` (a node to dial; repeatable).
#[derive(Clone, Debug, Default)]
pub struct NodeArgs {
    /// `--node`.
    pub node: Option<std::net::SocketAddr>,
    /// `--name`.
    pub name: Option<String>,
    /// `--secret`.
    pub secret: String,
    /// `--join`.
    pub join: Vec<std::net::SocketAddr>,
}

impl NodeArgs {
    /// The usage text of these flags.
    pub const USAGE: &'static str = "[--node ADDR [--name NAME] --secret S [--join ADDR]...]";

    /// Takes `flag` and its `value` if it is one of these flags (`Ok(false)` if not).
    pub fn take(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        let addr = |v: &str| {
            v.parse::<std::net::SocketAddr>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag {
            "--node" => self.node = Some(addr(value)?),
            "--name" => self.name = Some(value.to_owned()),
            "--secret" => self.secret = value.to_owned(),
            "--join" => self.join.push(addr(value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that the flags go together.
    pub fn check(&self) -> Result<(), String> {
        if self.node.is_none() && (!self.join.is_empty() || self.name.is_some()) {
            return Err("--join and --name need --node".into());
        }
        if self.node.is_some() && self.secret.is_empty() {
            return Err("--node needs --secret (the shared cluster secret)".into());
        }
        Ok(())
    }

    /// Starts the node (if `--node` was given) and dials every `--join` address in the
    /// background, retrying each second until it answers (lost connections are re-dialled by the
    /// node itself).
    pub fn start(
        &self,
        system: &ActorSystem,
    ) -> std::io::Result<Option<std::sync::Arc<actor_remote::node::Node>>> {
        use actor_remote::node::{Node, NodeConfig};
        let Some(bind) = self.node else {
            return Ok(None);
        };
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("node-{}", std::process::id()));
        let node = Node::start(system, NodeConfig::new(name, bind, self.secret.clone()))
            .map(std::sync::Arc::new)
            .map_err(std::io::Error::other)?;
        println!("node {} on {} (QUIC)", node.name(), node.local_addr()?);
        for peer in self.join.clone() {
            let node = node.clone();
            tokio::spawn(async move {
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
        Ok(Some(node))
    }
}
