//! Scheduler counters behind the ring and pingpong rows: how often tokio's 2-worker runtime
//! takes a woken task from its run queue instead of the LIFO slot, parks and unparks its idle
//! worker, and steals, per 1,000 hops, for actor-core and the tokio-mpsc baseline side by side.
//! A ring of 2 is pingpong's pattern.
//!
//! tokio's per-worker counters need `--cfg tokio_unstable` (its own target directory, so the
//! normal build is untouched):
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/unstable \
//!     cargo run --release -p benches --bin sched_probe
//! ```

#[cfg(not(tokio_unstable))]
fn main() {
    eprintln!(
        "sched_probe reads tokio's unstable runtime metrics: run it with \
         RUSTFLAGS=\"--cfg tokio_unstable\" CARGO_TARGET_DIR=target/unstable \
         cargo run --release -p benches --bin sched_probe"
    );
    std::process::exit(2);
}

#[cfg(tokio_unstable)]
fn main() {
    probe::main();
}

#[cfg(tokio_unstable)]
mod probe {
    use benches::BenchResult;
    use benches::frameworks::{ours, tokio_mpsc};
    use std::cell::Cell;
    use tokio::runtime::{Handle, Runtime, RuntimeMetrics};

    const HOPS: u64 = 1_000_000;

    /// Polls, steals, steal operations, local schedules, parks, no-op unparks: summed over
    /// the workers.
    fn counters(m: &RuntimeMetrics) -> [u64; 6] {
        let mut c = [0u64; 6];
        for w in 0..m.num_workers() {
            c[0] += m.worker_poll_count(w);
            c[1] += m.worker_steal_count(w);
            c[2] += m.worker_steal_operations(w);
            c[3] += m.worker_local_schedule_count(w);
            c[4] += m.worker_park_count(w);
            c[5] += m.worker_noop_count(w);
        }
        c
    }

    type Ring = fn(&Runtime, usize, u64, Box<dyn FnOnce() + '_>) -> BenchResult<f64>;

    /// Runs the harness's own ring workload of `name` and prints the counters of its timed part.
    fn probe(name: &str, ring: Ring, n: usize) {
        let rt = benches::runtime();
        let before = Cell::new([0u64; 6]);
        let rate = match ring(
            &rt,
            n,
            HOPS,
            Box::new(|| before.set(counters(&Handle::current().metrics()))),
        ) {
            Ok(rate) => rate,
            Err(e) => {
                eprintln!("{name}: {e}");
                return;
            }
        };
        let (now, before) = (counters(&rt.metrics()), before.get());
        let per_k = |i: usize| (now[i] - before[i]) as f64 * 1000.0 / HOPS as f64;
        println!(
            "{name:>16}, ring of {n:>4}: {:.2}M hops/s; per 1,000 hops: {:.0} tasks from the \
             run queue (each followed by up to 3 from the LIFO slot), {:.0} local schedules, \
             {:.1} parks, {:.1} unparks that found nothing, {:.1} tasks stolen",
            rate / 1e6,
            per_k(0),
            per_k(3),
            per_k(4),
            per_k(5),
            per_k(1),
        );
    }

    pub(crate) fn main() {
        for n in [2, 1000] {
            for _ in 0..3 {
                probe(
                    "actor-core",
                    |rt, n, hops, f| ours::ring_on(rt, n, hops, ours::Placement::Tasks, f),
                    n,
                );
                probe(
                    "actor-core-group",
                    |rt, n, hops, f| ours::ring_on(rt, n, hops, ours::Placement::Group, f),
                    n,
                );
                probe(
                    "tokio-mpsc",
                    |rt, n, hops, f| tokio_mpsc::ring_on(rt, n, hops, f),
                    n,
                );
            }
        }
    }
}
