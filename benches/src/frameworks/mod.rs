//! The frameworks under test. Each module implements the same workloads through the framework's
//! normal, documented API (no hand tuning), on tokio with 2 workers where the framework runs on
//! tokio.

pub mod actix_fw;
pub mod crossbeam_fw;
pub mod kameo_fw;
pub mod ours;
pub mod ractor_fw;
pub mod tokio_mpsc;
pub mod tokio_task;

use std::time::Duration;

use crate::{BenchResult, Percentiles, SpawnStats};

/// A framework's implementations of the workloads (`None`: not applicable).
pub struct Framework {
    /// Its name in the output.
    pub name: &'static str,
    /// A peer framework (ratios are taken against the best peer), or a limit baseline.
    pub is_peer: bool,
    /// Round trips per second.
    pub pingpong: Option<fn(u64) -> BenchResult<f64>>,
    /// Messages per second.
    pub counting: Option<fn(u64) -> BenchResult<f64>>,
    /// Messages per second.
    pub fanout: Option<fn(u64, usize) -> BenchResult<f64>>,
    /// Messages per second: several senders at once, one receiver.
    pub fanin: Option<fn(u64, usize) -> BenchResult<f64>>,
    /// Hops per second.
    pub ring: Option<fn(usize, u64) -> BenchResult<f64>>,
    /// Ask round-trip percentiles.
    pub ask_latency: Option<fn(u64) -> BenchResult<Percentiles>>,
    /// Spawn and stop rates, memory per actor.
    pub spawn: Option<fn(usize) -> BenchResult<SpawnStats>>,
    /// Messages per second.
    pub big: Option<fn(usize, u64) -> BenchResult<f64>>,
    /// Fixed-rate ticks of many actors (actors, period, measured time): lateness percentiles (us)
    /// and the share of two CPUs spent.
    pub timer_jitter: Option<TimerJitter>,
}

/// See [`Framework::timer_jitter`].
pub type TimerJitter = fn(usize, Duration, Duration) -> BenchResult<(Percentiles, f64)>;

/// Every framework, ours first.
pub fn all() -> Vec<Framework> {
    vec![
        ours::framework(),
        ours::grouped_framework(),
        ractor_fw::framework(),
        kameo_fw::framework(),
        actix_fw::framework(),
        tokio_mpsc::framework(),
        tokio_task::framework(),
        crossbeam_fw::framework(),
    ]
}
