//! A system's timer wheel: one tokio `Sleep` per worker thread for every timer of every actor.
//! (A dedicated-thread actor has a one-shard wheel on its own thread's runtime.)
//!
//! An actor whose earliest timer is not yet due *arms* the wheel: it leaves a clone of its task's
//! waker, with the deadline, in the slot of that deadline's millisecond, in its thread's shard of
//! the wheel. One driver task per shard sleeps (on tokio's timer) until the earliest armed
//! deadline, wakes every waker whose deadline has passed ([`WAKE_CHUNK`] a poll, yielding to the
//! woken tasks in between), and sleeps again; the actors then find their due timers themselves
//! (`Timers::poll_due`). A tick so costs a push into a `Vec` and a wake-up, where a tokio `Sleep`
//! per actor cost a re-registration in tokio's own wheel (its lock, an intrusive list, the timer
//! entry's state word) on every tick. The driver sleeps until a deadline itself, not a slot's
//! edge, so a wake-up is as late as tokio's timer makes it (and, when many fall due at once, the
//! tasks woken before it), no later.
//!
//! The ring holds the next [`RING`] milliseconds; later deadlines wait in an ordered map and move
//! into the ring as it comes near. A wake-up never comes before its deadline. The driver ends
//! when the wheel is empty and is spawned again by the next arm, so an idle system has no timer
//! task. Time is tokio's (`tokio::time::Instant`), so a paused clock drives the wheel.
//!
//! An arm in the ring is never cancelled: a timer that is cancelled or replaced leaves its waker
//! there, and the actor gets one spurious wake-up (the loop finds nothing due and parks again).
//! A far arm (beyond the ring) can be taken back ([`Wheel::disarm`]), so that an actor that ends
//! does not keep its task's memory alive until a far deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::time::{Instant, Sleep};

/// Milliseconds the ring covers; deadlines further out wait in `State::far`.
pub(crate) const RING: u64 = 256;
const WORDS: usize = (RING / 64) as usize;
const MS: u64 = 1_000_000;

/// What [`Wheel::arm`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arm {
    /// Armed in the ring: fires within [`RING`] ms and cannot be taken back.
    Near,
    /// Armed beyond the ring; may be taken back with [`Wheel::disarm`].
    Far(FarKey),
    /// The deadline was already behind the wheel: the waker has been woken, nothing is armed.
    Now,
}

/// A far arm, as [`Wheel::arm`] returns it, to be taken back with [`Wheel::disarm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FarKey {
    shard: usize,
    key: Far,
}

/// A far arm's place in its shard's map: the deadline, in nanoseconds from the wheel's origin,
/// then the order of arming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Far {
    at: u64,
    seq: u64,
}

/// One system's timer wheel. See the module doc.
pub(crate) struct Wheel {
    origin: Instant,
    handle: tokio::runtime::Handle,
    /// One per worker thread, each with its own lock and driver: a thread arms its own shard
    /// (`thread_shard`), so the workers do not pass the lock's cache line back and forth on
    /// every tick.
    shards: Box<[Shard]>,
    /// Moves whenever a driver wakes arms whose deadline has passed. An actor that armed for its
    /// earliest deadline and sees it unmoved knows that arm has not fired, so nothing of its can
    /// be due: it need not read the clock (`Timers::poll_due`).
    epoch: AtomicU64,
}

/// A shard on a cache line of its own.
#[repr(align(128))]
struct Shard(Mutex<State>);

/// The shard index of the calling thread: threads are numbered in the order they first arm any
/// wheel, so a runtime's workers take consecutive numbers and, modulo the shard count, shards of
/// their own.
fn thread_shard() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SHARD.with(|s| match s.get() {
        Some(n) => n,
        None => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            s.set(Some(n));
            n
        }
    })
}

struct State {
    /// Every slot of a millisecond below this one has been emptied; this one's arms whose
    /// deadline has passed have been woken.
    cursor: u64,
    /// Slot `m % RING` holds the arms (deadline in nanoseconds from the origin, waker) whose
    /// deadline falls in millisecond `m`, `cursor <= m < cursor + RING`.
    slots: Box<[Vec<(u64, Waker)>]>,
    /// Which slots are non-empty.
    occupied: [u64; WORDS],
    far: BTreeMap<Far, Waker>,
    seq: u64,
    driver: Driver,
}

enum Driver {
    /// No driver task: the next arm spawns one.
    Absent,
    /// Spawned or woken, and about to look at the wheel.
    Running,
    /// Asleep until `until` (nanoseconds from the origin); an earlier arm wakes it.
    Parked { waker: Waker, until: u64 },
}

impl Wheel {
    /// A wheel whose driver runs on the runtime behind `handle`.
    pub(crate) fn new(handle: tokio::runtime::Handle) -> Arc<Self> {
        let shards = handle.metrics().num_workers().max(1);
        Self::with_shards(handle, shards)
    }

    fn with_shards(handle: tokio::runtime::Handle, shards: usize) -> Arc<Self> {
        // The runtime's clock, which is paused in tests that pause it.
        let origin = {
            let _in_runtime = handle.enter();
            Instant::now()
        };
        Arc::new(Self {
            origin,
            handle,
            epoch: AtomicU64::new(0),
            shards: (0..shards)
                .map(|_| {
                    Shard(Mutex::new(State {
                        cursor: 0,
                        slots: (0..RING).map(|_| Vec::new()).collect(),
                        occupied: [0; WORDS],
                        far: BTreeMap::new(),
                        seq: 0,
                        driver: Driver::Absent,
                    }))
                })
                .collect(),
        })
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }

    /// The current epoch (see the field): read it before arming, compare it later.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Wakes `waker` once the clock has passed `deadline`.
    pub(crate) fn arm(self: &Arc<Self>, deadline: Instant, waker: &Waker) -> Arm {
        self.arm_in(thread_shard() % self.shards.len(), deadline, waker)
    }

    fn arm_in(self: &Arc<Self>, shard: usize, deadline: Instant, waker: &Waker) -> Arm {
        let at = self.nanos(deadline);
        let mut st = self.shards[shard].0.lock();
        if at / MS < st.cursor {
            // The driver has already passed that millisecond: the deadline is behind us.
            drop(st);
            waker.wake_by_ref();
            return Arm::Now;
        }
        let armed = if at / MS < st.cursor.saturating_add(RING) {
            st.put(at, waker.clone());
            Arm::Near
        } else {
            st.seq += 1;
            let key = Far { at, seq: st.seq };
            st.far.insert(key, waker.clone());
            Arm::Far(FarKey { shard, key })
        };
        let wake = match &st.driver {
            Driver::Absent => {
                st.driver = Driver::Running;
                drop(st);
                let driver = DriverTask {
                    wheel: Arc::clone(self),
                    shard,
                    sleep: None,
                    due: Vec::new(),
                };
                drop(self.handle.spawn(driver));
                return armed;
            }
            Driver::Parked { until, .. } if at < *until => {
                match std::mem::replace(&mut st.driver, Driver::Running) {
                    Driver::Parked { waker, .. } => Some(waker),
                    _ => None,
                }
            }
            Driver::Parked { .. } | Driver::Running => None,
        };
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
        armed
    }

    /// Takes back a far arm that has not fired; false if it had.
    pub(crate) fn disarm(&self, far: FarKey) -> bool {
        self.shards[far.shard]
            .0
            .lock()
            .far
            .remove(&far.key)
            .is_some()
    }

    /// How many wakers are armed (tests).
    #[cfg(test)]
    pub(crate) fn armed(&self) -> usize {
        let armed = |st: &State| st.slots.iter().map(Vec::len).sum::<usize>() + st.far.len();
        self.shards.iter().map(|s| armed(&s.0.lock())).sum()
    }
}

impl State {
    fn put(&mut self, at: u64, waker: Waker) {
        let i = ((at / MS) % RING) as usize;
        self.slots[i].push((at, waker));
        self.occupied[i / 64] |= 1 << (i % 64);
    }

    fn clear_bit(&mut self, i: usize) {
        self.occupied[i / 64] &= !(1 << (i % 64));
    }

    /// Takes the wakers of every arm whose deadline is at or before `now` into `due`, and moves
    /// far arms that the ring now covers into it.
    fn advance(&mut self, now: u64, due: &mut Vec<Waker>) {
        let now_ms = now / MS;
        if now_ms >= self.cursor {
            // Whole milliseconds behind `now`: every arm in them is due.
            let behind = (now_ms - self.cursor).min(RING);
            for m in self.cursor..self.cursor + behind {
                let i = (m % RING) as usize;
                if self.occupied[i / 64] & (1 << (i % 64)) != 0 {
                    due.extend(self.slots[i].drain(..).map(|(_, w)| w));
                    self.clear_bit(i);
                }
            }
            self.cursor = now_ms;
            // The current millisecond: the arms whose deadline has passed.
            let i = (now_ms % RING) as usize;
            let slot = &mut self.slots[i];
            due.extend(slot.extract_if(.., |(at, _)| *at <= now).map(|(_, w)| w));
            if slot.is_empty() {
                self.clear_bit(i);
            }
        }
        let horizon = self.cursor.saturating_add(RING);
        while let Some(entry) = self.far.first_entry() {
            let at = entry.key().at;
            if at / MS >= horizon {
                break;
            }
            let waker = entry.remove();
            if at <= now {
                due.push(waker);
            } else {
                self.put(at, waker);
            }
        }
    }

    /// The earliest armed deadline, if any.
    fn next(&self) -> Option<u64> {
        let start = (self.cursor % RING) as usize;
        // Scan the bitmap from the cursor's slot around the ring, back to the start word (whose
        // bits from the cursor's slot up are known empty by then).
        for step in 0..=WORDS {
            let w = (start / 64 + step) % WORDS;
            let mut bits = self.occupied[w];
            if step == 0 {
                bits &= !0u64 << (start % 64);
            }
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                return self.slots[i].iter().map(|&(at, _)| at).min();
            }
        }
        self.far.first_key_value().map(|(k, _)| k.at)
    }
}

/// The driver task: sleeps until the earliest armed deadline and wakes what has come due.
/// One per shard.
struct DriverTask {
    wheel: Arc<Wheel>,
    shard: usize,
    /// Made at the driver's first sleep, in its own poll: a `Sleep` belongs to the timer of the
    /// runtime it is made on, and the arm that spawns the driver may come from another runtime
    /// (a dedicated thread's), whose end would leave the sleep panicking when polled.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The wakers taken from the slots that came due, woken after the lock is let go, a chunk a
    /// poll (see [`WAKE_CHUNK`]); kept for its capacity.
    due: Vec<Waker>,
}

/// How many wakers the driver wakes per poll before it yields to the tasks it woke.
///
/// A pass can find hundreds of arms due (10,000 actors ticking at 50 Hz make 500 a millisecond).
/// Woken all at once, they overflowed the worker's run queue into the shared one, and the other
/// worker was unparked, found the work gone and parked again, over and over: 14,000 eventfd
/// wake-ups and 20,000 context switches a second in `timer_jitter`. In chunks, the woken actors
/// run between the driver's polls: about 1,000 of each a second, and ticks 40% less late
/// (`benches/HISTORY.md`, "Session 16"; 8 to 64 measured alike, 256 worse).
const WAKE_CHUNK: usize = 16;

impl DriverTask {
    /// Wakes the next [`WAKE_CHUNK`] wakers of `due` (kept in reverse order, so the earliest
    /// deadline is at the back); true if some are left for the next poll.
    fn wake_some(&mut self) -> bool {
        for _ in 0..WAKE_CHUNK {
            match self.due.pop() {
                Some(waker) => waker.wake(),
                None => return false,
            }
        }
        !self.due.is_empty()
    }
}

impl Future for DriverTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Wakers left from the last pass first (the driver yielded to the ones it woke).
        if this.wake_some() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            let now = this.wheel.nanos(Instant::now());
            let mut st = this.wheel.shards[this.shard].0.lock();
            st.advance(now, &mut this.due);
            this.due.reverse();
            if !this.due.is_empty() {
                // Before the wake-ups: a woken actor must see the epoch moved.
                this.wheel.epoch.fetch_add(1, Ordering::Release);
            }
            let Some(next) = st.next() else {
                st.driver = Driver::Absent;
                drop(st);
                this.due.drain(..).for_each(Waker::wake);
                return Poll::Ready(());
            };
            match &mut st.driver {
                Driver::Parked { waker, until } if waker.will_wake(cx.waker()) => *until = next,
                d => {
                    *d = Driver::Parked {
                        waker: cx.waker().clone(),
                        until: next,
                    }
                }
            }
            drop(st);
            if this.wake_some() {
                // Yield: the woken tasks run before the rest are woken.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let at = this.wheel.instant_of(next);
            let sleep = match &mut this.sleep {
                Some(sleep) => {
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                    sleep
                }
                None => this.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(120);

    /// Arms the wheel once for `deadline` and resolves at the first wake-up at or after it,
    /// with the time of that wake-up. A wake-up that comes early is not renewed. A wake-up that
    /// never comes shows as a late time: a `timeout` around this future polls it once more when
    /// it runs out, and it then resolves with that time, so callers check the time they get.
    async fn woken_at(wheel: Arc<Wheel>, deadline: Instant) -> Instant {
        woken_in(wheel, None, deadline).await
    }

    /// `woken_at`, arming a given shard (or the thread's).
    async fn woken_in(wheel: Arc<Wheel>, shard: Option<usize>, deadline: Instant) -> Instant {
        let mut armed = false;
        poll_fn(|cx| {
            let now = Instant::now();
            if armed && now >= deadline {
                return Poll::Ready(now);
            }
            if !armed {
                match shard {
                    Some(shard) => wheel.arm_in(shard, deadline, cx.waker()),
                    None => wheel.arm(deadline, cx.waker()),
                };
                armed = true;
            }
            Poll::Pending
        })
        .await
    }

    fn is_absent(wheel: &Wheel) -> bool {
        wheel
            .shards
            .iter()
            .all(|s| matches!(s.0.lock().driver, Driver::Absent))
    }

    #[tokio::test(start_paused = true)]
    async fn each_arm_wakes_in_its_own_millisecond_near_far_and_across_the_ring() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let start = Instant::now();
        let offsets_us: [u64; 14] = [
            300, 1_000, 1_500, 63_999, 64_000, 65_001, 255_000, 256_000, 257_300, 300_000, 511_999,
            512_000, 1_000_000, 30_000_000,
        ];
        let tasks: Vec<_> = offsets_us
            .iter()
            .map(|&us| {
                let deadline = start + Duration::from_micros(us);
                let wheel = tokio::spawn(woken_at(Arc::clone(&wheel), deadline));
                // tokio's own timer, for the same deadline: the wheel must be exactly as late.
                let tokio = tokio::spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    Instant::now()
                });
                (us, wheel, tokio)
            })
            .collect();
        for (us, wheel, tokio) in tasks {
            let at = tokio::time::timeout(LIMIT, wheel)
                .await
                .expect("woken")
                .expect("task");
            let expected = tokio.await.expect("task");
            assert_eq!(at, expected, "woken as tokio's timer would be, {us} us in");
            assert!(at >= start + Duration::from_micros(us));
        }
        assert_eq!(wheel.armed(), 0);
    }

    // An arm from another runtime's thread (a dedicated actor thread's, say) may be the one that
    // starts the driver. The driver must not take anything from that runtime: when its sleep was
    // made there, it panicked once that runtime had ended, and no arm of the shard fired again.
    #[tokio::test(start_paused = true)]
    async fn the_driver_outlives_the_runtime_of_the_arm_that_started_it() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        let from = Arc::clone(&wheel);
        std::thread::spawn(move || {
            let other = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            other.block_on(async { from.arm(far, std::task::Waker::noop()) });
        })
        .join()
        .expect("the other runtime's thread");
        // That runtime is gone; the driver it started still wakes this runtime's arms.
        let soon = start + Duration::from_millis(10);
        let at = tokio::time::timeout(LIMIT, woken_at(Arc::clone(&wheel), soon))
            .await
            .expect("woken");
        assert!(
            at >= soon && at < soon + Duration::from_millis(2),
            "woken by the driver, not by the timeout: {:?}",
            at - start
        );
    }

    // The driver wakes a chunk a poll: every arm of a crowded millisecond still wakes, and (the
    // clock being paused while tasks run) exactly when tokio's timer would.
    #[tokio::test(start_paused = true)]
    async fn arms_due_together_all_wake_a_chunk_at_a_time() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let start = Instant::now();
        let deadline = start + Duration::from_millis(5);
        let n = WAKE_CHUNK * 6 + 3;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                // A few distinct deadlines within the millisecond, so the order matters too.
                let at = deadline + Duration::from_micros((i % 3) as u64 * 100);
                let tokio = tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    Instant::now()
                });
                (tokio, tokio::spawn(woken_at(Arc::clone(&wheel), at)))
            })
            .collect();
        for (tokio, task) in tasks {
            let woken = tokio::time::timeout(LIMIT, task)
                .await
                .expect("woken")
                .expect("task");
            assert_eq!(woken, tokio.await.expect("task"));
        }
        assert_eq!(wheel.armed(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_arm_wakes_the_sleeping_driver() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let start = Instant::now();
        let late = tokio::spawn(woken_at(Arc::clone(&wheel), start + Duration::from_secs(2)));
        // The driver is now asleep until 2 s.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let soon = start + Duration::from_millis(11);
        let at = tokio::time::timeout(LIMIT, woken_at(Arc::clone(&wheel), soon))
            .await
            .expect("woken");
        assert!(
            at >= soon && at < soon + Duration::from_millis(2),
            "the sooner arm is not held up by the driver's sleep: {:?}",
            at - start
        );
        let at = tokio::time::timeout(LIMIT, late)
            .await
            .expect("woken")
            .expect("task");
        assert!(at >= start + Duration::from_secs(2) && at < start + Duration::from_millis(2_002));
    }

    #[tokio::test(start_paused = true)]
    async fn the_driver_ends_with_the_last_arm_and_the_next_arm_brings_it_back() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        assert!(is_absent(&wheel));
        for round in 1..=3u64 {
            let deadline = Instant::now() + Duration::from_millis(5 * round);
            let at = tokio::time::timeout(LIMIT, woken_at(Arc::clone(&wheel), deadline))
                .await
                .expect("woken");
            assert!(at >= deadline && at < deadline + Duration::from_millis(2));
            // Let the driver finish its poll: nothing is armed, so it ends.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(
                is_absent(&wheel),
                "round {round}: an empty wheel has no driver"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_arm_taken_back_lets_go_of_its_waker() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let far = Instant::now() + Duration::from_secs(30);
        let Arm::Far(key) = wheel.arm(far, std::task::Waker::noop()) else {
            panic!("a far arm");
        };
        assert_eq!(wheel.armed(), 1);
        assert!(wheel.disarm(key));
        assert_eq!(wheel.armed(), 0);
        assert!(!wheel.disarm(key), "already taken back");
        let near = Instant::now() + Duration::from_millis(30);
        assert_eq!(
            wheel.arm(near, std::task::Waker::noop()),
            Arm::Near,
            "a near arm is in the ring"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_shard_has_its_own_driver_and_a_far_arm_is_taken_back_from_its_shard() {
        let wheel = Wheel::with_shards(tokio::runtime::Handle::current(), 2);
        let start = Instant::now();
        let Arm::Far(far) =
            wheel.arm_in(1, start + Duration::from_secs(30), std::task::Waker::noop())
        else {
            panic!("a far arm");
        };
        let a = tokio::spawn(woken_in(Arc::clone(&wheel), Some(0), start + ms(10)));
        let b = tokio::spawn(woken_in(Arc::clone(&wheel), Some(1), start + ms(20)));
        tokio::task::yield_now().await;
        assert!(
            wheel
                .shards
                .iter()
                .all(|s| !matches!(s.0.lock().driver, Driver::Absent)),
            "both shards have a driver"
        );
        assert_eq!(
            tokio::time::timeout(LIMIT, a)
                .await
                .expect("woken")
                .expect("task"),
            start + ms(10)
        );
        assert_eq!(
            tokio::time::timeout(LIMIT, b)
                .await
                .expect("woken")
                .expect("task"),
            start + ms(20)
        );
        assert!(wheel.disarm(far), "taken back from shard 1");
        assert_eq!(wheel.armed(), 0);
        // Shard 1's driver still sleeps until the far deadline, then finds nothing and ends.
        tokio::time::sleep_until(start + Duration::from_secs(30) + ms(1)).await;
        assert!(is_absent(&wheel));
    }

    #[test]
    fn a_thread_keeps_its_shard_and_threads_differ() {
        let mine = thread_shard();
        assert_eq!(thread_shard(), mine);
        let other = std::thread::spawn(thread_shard).join().expect("thread");
        assert_ne!(other, mine);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn an_arm_behind_the_wheel_wakes_at_once_and_each_pass_that_wakes_moves_the_epoch() {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let start = Instant::now();
        let epoch = wheel.epoch();
        let at = tokio::time::timeout(LIMIT, woken_at(Arc::clone(&wheel), start + ms(5)))
            .await
            .expect("woken");
        assert_eq!(at, start + ms(5));
        assert!(
            wheel.epoch() > epoch,
            "the pass that woke the arm moved the epoch"
        );
        // The driver is past 5 ms now: an arm for 1 ms is behind it.
        let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Flag(Arc::clone(&woken))));
        assert_eq!(wheel.arm(start + ms(1), &waker), Arm::Now);
        assert!(woken.load(Ordering::SeqCst), "woken at once");
        assert_eq!(wheel.armed(), 0);
    }
}
