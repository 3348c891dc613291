//! criterion micro-benchmarks of actor-core's mailbox alone: a push and a pop on one thread for
//! each kind of user lane, and the park / wake handshake between an idle consumer and the
//! producer that wakes it. No actor loop, no handler and no tokio are in these numbers; the
//! `hot_path` benchmarks time the same pushes and pops through the public API, with all of that.
//!
//! ```text
//! cargo bench -p benches --bench mailbox
//! ```
//!
//! The mailbox is private to actor-core, so this benchmark compiles its source (`mailbox/`, and
//! the `sync`, `slim_deque` and `handoff` modules it is built on) into itself, unchanged, rather than have
//! actor-core export it. Every iteration checks what it popped, so a broken lane fails instead of reporting a
//! number.

// The included modules are actor-core's: this benchmark uses part of them (and their unit-test
// modules, compiled here by `clippy --all-targets`, run nothing here).
#![allow(dead_code, unreachable_pub, unused_imports)]

#[path = "../../actor-core/src/sync.rs"]
mod sync;

#[path = "../../actor-core/src/slim_deque.rs"]
mod slim_deque;

#[path = "../../actor-core/src/mailbox/mod.rs"]
mod mailbox;

#[path = "../../actor-core/src/handoff.rs"]
mod handoff;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailbox::{Cursor, Mailbox, MailboxConfig, Overflow};

/// Messages pushed, then popped, per iteration.
const BATCH: u64 = 100;

type Mb = Mailbox<u64, ()>;

/// A lane to time: its name, how to make it, and the sum a batch pops from it.
type Lane = (&'static str, fn() -> MailboxConfig<u64>, u64);

/// Pushes `BATCH` messages, pops them all and checks their sum (and that the lane is empty).
fn push_then_pop(mb: &Mb, cursor: &mut Cursor<u64>, expected_sum: u64) {
    for i in 0..BATCH {
        if mb.push_user(black_box(i), false).is_err() {
            panic!("the lane refused message {i}");
        }
    }
    let mut sum = 0;
    while let Some(m) = mb.pop_user(cursor) {
        sum += m;
    }
    assert_eq!(sum, expected_sum, "every message popped once");
}

fn lanes(c: &mut Criterion) {
    let mut group = c.benchmark_group("push_pop");
    group.throughput(Throughput::Elements(BATCH));
    let all = BATCH * (BATCH - 1) / 2;
    let configs: [Lane; 4] = [
        ("unbounded", MailboxConfig::unbounded, all),
        (
            "bounded",
            || MailboxConfig::bounded(1024, Overflow::Fail),
            all,
        ),
        // Ten keys: each batch of 100 conflates to its last ten messages (90..100).
        (
            "conflating",
            || MailboxConfig::conflating(|m: &u64| Some(m % 10)),
            (90..BATCH).sum(),
        ),
        (
            "priority",
            || MailboxConfig::priority(|m: &u64| (m % 3) as usize, &[2, 1]),
            all,
        ),
    ];
    for (name, config, expected) in configs {
        let mb = Mb::new(config());
        let mut cursor = Cursor::default();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| push_then_pop(&mb, &mut cursor, expected));
        });
    }
    group.finish();
}

/// A waker that counts its wakes.
struct Counting(AtomicU64);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The consumer parks on an empty lane, a push wakes it (the producer takes the wake-up, wakes the
/// task and hands the state back), and the consumer pops the message: what every hop of a
/// ping-pong or a ring costs the mailbox, without the scheduler's part.
fn park_wake(c: &mut Criterion) {
    let mb = Mb::new(MailboxConfig::unbounded());
    let wakes = Arc::new(Counting(AtomicU64::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut cursor = Cursor::default();
    let mut n = 0u64;
    c.bench_function("park_push_wake_pop", |b| {
        b.iter(|| {
            assert!(
                matches!(mb.poll_park(&mut cx, false), Poll::Pending),
                "parks on an empty lane"
            );
            if mb.push_user(black_box(n), false).is_err() {
                panic!("the lane refused message {n}");
            }
            n += 1;
            assert_eq!(mb.pop_user(&mut cursor), Some(n - 1));
        });
    });
    assert_eq!(
        wakes.0.load(Ordering::Relaxed),
        n,
        "one wake per push to a parked consumer"
    );
}

criterion_group!(benches, lanes, park_wake);
criterion_main!(benches);
