//! criterion micro-benchmarks of actor-core's hot path, beside the harness: `tell` in batches,
//! `ask` round trips, and an actor's spawn and stop, each on a current-thread tokio runtime. One
//! thread keeps cross-CPU wake-ups (2 to 30 us on this VM, see `RESULTS.md`) out of the numbers,
//! so these show what our own code costs per operation, with criterion's confidence intervals;
//! the harness measures the same paths against the other frameworks on the 2-worker runtime.
//!
//! ```text
//! cargo bench -p benches --bench hot_path
//! ```
//!
//! Every iteration checks its result (the count, the reply, the stop), so a broken path fails
//! instead of reporting a number.

use std::hint::black_box;
use std::time::Duration;

use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, Reply, SystemConfig};
use benches::frameworks::ours::{Counter, CounterMsg, count_of};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Echoes a number back, plus one.
struct Echo;

struct Ping(u64, Reply<u64>);

impl Actor for Echo {
    type Msg = Ping;
    async fn handle(&mut self, Ping(n, r): Ping, _ctx: &mut Context<Self>) -> ActorResult {
        r.send(n + 1);
        Ok(())
    }
}

/// An actor with a small state that does nothing, like the harness's spawn workload's.
struct Idle {
    _state: u64,
}

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime can be built")
}

fn system(rt: &tokio::runtime::Runtime) -> ActorSystem {
    let _guard = rt.enter();
    ActorSystem::new(SystemConfig::default()).expect("inside the runtime")
}

/// `n` tells to one actor, then an ask for the count (which checks that every tell so far was
/// counted): the pushes, one wake-up, the batch taken and handled, and one ask, whose own cost
/// is the `ask` benchmark's.
fn tell(c: &mut Criterion) {
    let rt = runtime();
    let sys = system(&rt);
    let counter = {
        let _guard = rt.enter();
        sys.spawn(Props::new(Counter::default)).expect("spawn")
    };
    let sent = std::cell::Cell::new(0u64);
    let mut group = c.benchmark_group("tell");
    for n in [100u64, 10_000] {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter(|| async {
                for _ in 0..n {
                    counter.tell(CounterMsg::Inc);
                }
                sent.set(sent.get() + n);
                let count = count_of(&counter).await.expect("the counter answers");
                assert_eq!(count, sent.get(), "every tell counted");
            });
        });
    }
    group.finish();
}

/// One request-reply round trip.
fn ask(c: &mut Criterion) {
    let rt = runtime();
    let sys = system(&rt);
    let echo = {
        let _guard = rt.enter();
        sys.spawn(Props::new(|| Echo)).expect("spawn")
    };
    c.bench_function("ask", |b| {
        b.to_async(&rt).iter(|| async {
            let n = black_box(41);
            let reply = echo
                .ask_timeout(|r| Ping(n, r), Duration::from_secs(60))
                .await
                .expect("the echo answers");
            assert_eq!(reply, n + 1);
        });
    });
}

/// An actor spawned, started, stopped and ended.
fn spawn_stop(c: &mut Criterion) {
    let rt = runtime();
    let sys = system(&rt);
    c.bench_function("spawn_stop", |b| {
        b.to_async(&rt).iter(|| async {
            let actor = sys.spawn(Props::new(|| Idle { _state: 7 })).expect("spawn");
            actor.stop();
            actor.wait_for_stop().await;
        });
    });
    let _guard = rt.enter();
    assert_eq!(sys.actor_count(), 0, "every actor ended");
}

criterion_group!(hot_path, tell, ask, spawn_stop);
criterion_main!(hot_path);
