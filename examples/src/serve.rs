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
