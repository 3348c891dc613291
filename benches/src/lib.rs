//! Benchmark harness library: workload sizes, measurement records, JSON-lines output, the
//! Markdown summary, and one module per framework implementing the same workloads.
//!
//! Every workload verifies its own result (a count, a total) and returns an error instead of a
//! number when the result is wrong, so a broken implementation cannot report a speed.

pub mod frameworks;
pub mod remote;
pub mod report;

use std::time::{Duration, Instant};

/// What one workload run returns: a number or why it could not be measured.
pub type BenchResult<T> = Result<T, String>;

/// Workload sizes (full or `--quick`).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Ping-pong round trips.
    pub pingpong: u64,
    /// Increments sent to the counter.
    pub counting: u64,
    /// Messages spread over the fan-out receivers.
    pub fanout: u64,
    /// Receivers in the fan-out.
    pub fanout_receivers: usize,
    /// Messages sent to one counter by the fan-in's senders together.
    pub fanin: u64,
    /// Concurrent senders in the fan-in.
    pub fanin_senders: usize,
    /// Actors in the ring.
    pub ring_actors: usize,
    /// Token hops around the ring.
    pub ring_hops: u64,
    /// Sequential asks for the latency histogram.
    pub asks: u64,
    /// Actors spawned (and stopped) in the spawn workload.
    pub spawn: usize,
    /// Actors in "big".
    pub big_actors: usize,
    /// Pings each actor sends in "big".
    pub big_pings: u64,
}

impl Sizes {
    /// The full sizes (the issue's numbers).
    pub fn full() -> Self {
        Self {
            pingpong: 1_000_000,
            counting: 10_000_000,
            fanout: 10_000_000,
            fanout_receivers: 64,
            fanin: 10_000_000,
            fanin_senders: 4,
            ring_actors: 1_000,
            ring_hops: 1_000_000,
            asks: 200_000,
            spawn: 100_000,
            big_actors: 500,
            big_pings: 2_000,
        }
    }

    /// Smaller sizes for `--quick` (the local suite, all frameworks, in well under 3 minutes).
    pub fn quick() -> Self {
        Self {
            pingpong: 100_000,
            counting: 1_000_000,
            fanout: 1_000_000,
            fanout_receivers: 64,
            fanin: 1_000_000,
            fanin_senders: 4,
            ring_actors: 1_000,
            ring_hops: 200_000,
            asks: 20_000,
            spawn: 100_000,
            big_actors: 500,
            big_pings: 200,
        }
    }
}

/// One number in the JSON-lines output.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// `actor-core`, `actor-core-group`, `ractor`, `kameo`, `actix`, `tokio-mpsc`, `tokio-task`,
    /// `crossbeam`.
    pub framework: &'static str,
    /// The workload.
    pub bench: &'static str,
    /// What was measured.
    pub metric: &'static str,
    /// The median over the runs.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// Every run's value.
    pub runs: Vec<f64>,
}

impl Measurement {
    /// The JSON object for one line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "framework": self.framework,
            "bench": self.bench,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "runs": self.runs,
        })
        .to_string()
    }
}

/// True when a larger value of this metric is better.
pub fn higher_is_better(metric: &str) -> bool {
    metric.ends_with("_per_s")
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The order in which the harness runs one workload's `runs` runs for `jobs` frameworks: round
/// by round, one run of each framework in turn, each round starting one framework further on.
/// Yields job indices.
///
/// The host's pace drifts over minutes (this VM's rates swing by 2x to 3x between phases), so
/// runs of a workload taken back to back for every framework at once put minutes between the
/// frameworks they compare; interleaved, every framework's runs are spread over the same
/// stretch of time, and none always runs right after the same other one.
///
/// ```
/// let order: Vec<usize> = benches::interleaved(3, 2).collect();
/// assert_eq!(order, [0, 1, 1, 0, 0, 1]);
/// ```
pub fn interleaved(runs: usize, jobs: usize) -> impl Iterator<Item = usize> {
    (0..runs).flat_map(move |round| (0..jobs).map(move |k| (k + round) % jobs))
}

/// A tokio runtime with 2 workers, as every tokio-based framework gets.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

/// Runs `work` as a task on a fresh 2-worker runtime and waits for it: code that talks to actors
/// from a worker thread, as an actor or a session task does, rather than from the thread blocked
/// in `block_on` (every wake-up of which crosses threads).
pub fn on_worker<T: Send + 'static>(
    work: impl std::future::Future<Output = BenchResult<T>> + Send + 'static,
) -> BenchResult<T> {
    runtime().block_on(async {
        tokio::spawn(work)
            .await
            .map_err(|e| format!("the task failed: {e}"))?
    })
}

/// The fan-in workload's senders: `senders` tasks at once on the current tokio runtime, each
/// calling `send` on its own clone of `target` `per` times; returns when all are done.
pub async fn run_senders<T, F>(senders: usize, per: u64, target: &T, send: F) -> BenchResult<()>
where
    T: Clone + Send + 'static,
    F: Fn(&T) -> BenchResult<()> + Copy + Send + 'static,
{
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    send(&target)?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Rate of `count` events over `elapsed`.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Checks a workload's own result.
pub fn verify(what: &str, got: u64, expected: u64) -> BenchResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected}, got {got}"))
    }
}

/// Resident set size of this process, in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time (user + system) of this process so far.
pub fn cpu_time() -> Duration {
    // Fields 14 and 15 of /proc/self/stat are utime and stime in clock ticks; USER_HZ is 100 on
    // Linux for every architecture this harness targets.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Results of the spawn workload.
#[derive(Clone, Copy, Debug)]
pub struct SpawnStats {
    /// Actors spawned per second.
    pub spawns_per_s: f64,
    /// Actors stopped (until their end is observed) per second.
    pub stops_per_s: f64,
    /// Resident memory per idle actor.
    pub rss_bytes_per_actor: f64,
}

impl SpawnStats {
    /// The stats of `n` actors spawned in `spawned` and stopped in `stopped`, with the process's
    /// resident memory ([`rss_bytes`]) read before the spawns and once they were all idle.
    pub fn new(
        n: usize,
        spawned: Duration,
        stopped: Duration,
        rss_before: u64,
        rss_idle: u64,
    ) -> Self {
        Self {
            spawns_per_s: rate(n as u64, spawned),
            stops_per_s: rate(n as u64, stopped),
            rss_bytes_per_actor: rss_idle.saturating_sub(rss_before) as f64 / n as f64,
        }
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// A histogram of nanoseconds, 1 ns to 60 s, 3 significant digits.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Percentiles of a histogram.
pub fn percentiles(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
    Percentiles {
        p50: h.value_at_quantile(0.5) as f64,
        p99: h.value_at_quantile(0.99) as f64,
        p999: h.value_at_quantile(0.999) as f64,
    }
}

/// The `timer_jitter` result from every ticker's lateness samples (us): their percentiles and the
/// share of two CPUs that `cpu` was of `wall`. Ticks are skipped, never burst, when the machine
/// falls behind: that is an error only when most of the ticks `actors` tickers of `period`
/// should have made in `wall` are missing.
pub fn tick_summary(
    samples: impl IntoIterator<Item = Vec<u32>>,
    actors: usize,
    period: Duration,
    wall: Duration,
    cpu: Duration,
) -> BenchResult<(Percentiles, f64)> {
    let mut h = histogram();
    let mut ticks = 0u64;
    for us in samples.into_iter().flatten() {
        let _ = h.record(u64::from(us).max(1));
        ticks += 1;
    }
    let expected = (actors as f64 * wall.as_secs_f64() / period.as_secs_f64()) as u64;
    if ticks < expected / 2 {
        return Err(format!("only {ticks} of about {expected} ticks arrived"));
    }
    let cpu_percent = 100.0 * cpu.as_secs_f64() / (wall.as_secs_f64() * 2.0);
    Ok((percentiles(&h), cpu_percent))
}

/// Times `f`.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// A tiny xorshift generator for picking random peers (deterministic per seed).
#[derive(Clone, Copy, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::interleaved;

    #[test]
    fn every_round_runs_each_framework_once_starting_one_further_on() {
        let (runs, jobs) = (5, 4);
        let order: Vec<usize> = interleaved(runs, jobs).collect();
        assert_eq!(order.len(), runs * jobs);
        for (round, chunk) in order.chunks(jobs).enumerate() {
            let mut seen = chunk.to_vec();
            seen.sort_unstable();
            assert_eq!(
                seen,
                (0..jobs).collect::<Vec<_>>(),
                "round {round}: {chunk:?}"
            );
            assert_eq!(
                chunk[0],
                round % jobs,
                "round {round} starts at {}",
                chunk[0]
            );
        }
    }

    #[test]
    fn one_framework_runs_all_its_runs() {
        assert_eq!(interleaved(3, 1).collect::<Vec<_>>(), [0, 0, 0]);
        assert_eq!(interleaved(0, 3).count(), 0);
    }
}
