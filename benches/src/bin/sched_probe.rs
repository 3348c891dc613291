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
    use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SystemConfig};
    use std::time::{Duration, Instant};
    use tokio::runtime::{Handle, Runtime, RuntimeMetrics};
    use tokio::sync::mpsc;

    const HOPS: u64 = 1_000_000;

    struct Node {
        next: Option<ActorRef<RingMsg>>,
        done: mpsc::UnboundedSender<()>,
    }

    enum RingMsg {
        Next(ActorRef<RingMsg>),
        Token(u64),
    }

    impl Actor for Node {
        type Msg = RingMsg;
        async fn handle(&mut self, msg: RingMsg, _ctx: &mut Context<Self>) -> ActorResult {
            match msg {
                RingMsg::Next(n) => self.next = Some(n),
                RingMsg::Token(0) => {
                    let _ = self.done.send(());
                }
                RingMsg::Token(left) => match &self.next {
                    Some(next) => next.tell(RingMsg::Token(left - 1)),
                    None => return Err("ring not closed".into()),
                },
            }
            Ok(())
        }
    }

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

    fn runtime() -> Runtime {
        benches::runtime()
    }

    fn report(name: &str, n: usize, rt: &Runtime, before: [u64; 6], elapsed: Duration) {
        let now = counters(&rt.metrics());
        let per_k = |i: usize| (now[i] - before[i]) as f64 * 1000.0 / HOPS as f64;
        println!(
            "{name:>10}, ring of {n:>4}: {:.2}M hops/s; per 1,000 hops: {:.0} tasks from the \
             run queue (each followed by up to 3 from the LIFO slot), {:.0} local schedules, \
             {:.1} parks, {:.1} unparks that found nothing, {:.1} tasks stolen",
            HOPS as f64 / elapsed.as_secs_f64() / 1e6,
            per_k(0),
            per_k(3),
            per_k(4),
            per_k(5),
            per_k(1),
        );
    }

    fn ours(n: usize) {
        let rt = runtime();
        let (elapsed, before) = rt.block_on(async {
            let sys = ActorSystem::new(SystemConfig::default()).expect("system");
            let (tx, mut rx) = mpsc::unbounded_channel();
            let nodes: Vec<_> = (0..n)
                .map(|_| {
                    let done = tx.clone();
                    sys.spawn(Props::new(move || Node {
                        next: None,
                        done: done.clone(),
                    }))
                    .expect("spawn")
                })
                .collect();
            for i in 0..n {
                nodes[i].tell(RingMsg::Next(nodes[(i + 1) % n].clone()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = counters(&Handle::current().metrics());
            let start = Instant::now();
            nodes[0].tell(RingMsg::Token(HOPS));
            rx.recv().await.expect("the token comes back");
            (start.elapsed(), before)
        });
        report("actor-core", n, &rt, before, elapsed);
    }

    fn tokio_mpsc(n: usize) {
        let rt = runtime();
        let (elapsed, before) = rt.block_on(async {
            let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..n).map(|_| mpsc::unbounded_channel::<u64>()).unzip();
            for (i, mut rx) in receivers.into_iter().enumerate() {
                let next = senders[(i + 1) % n].clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    while let Some(left) = rx.recv().await {
                        if left == 0 {
                            let _ = done.send(());
                        } else if next.send(left - 1).is_err() {
                            break;
                        }
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = counters(&Handle::current().metrics());
            let start = Instant::now();
            senders[0].send(HOPS).expect("ring alive");
            done_rx.recv().await.expect("the token comes back");
            (start.elapsed(), before)
        });
        report("tokio-mpsc", n, &rt, before, elapsed);
    }

    pub(crate) fn main() {
        for n in [2, 1000] {
            for _ in 0..3 {
                ours(n);
                tokio_mpsc(n);
            }
        }
    }
}
