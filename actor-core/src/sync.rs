//! Synchronisation primitives behind one seam, so the mailbox can be model-checked with loom.
//!
//! Under `--cfg actor_loom` the atomics and the mutex are loom's, so the loom tests check the
//! mailbox's send / receive / wake protocol, and the user lanes' queue built on the mutex,
//! exhaustively; in normal builds they are `std` atomics and `parking_lot`.

#[cfg(actor_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
#[cfg(not(actor_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};

/// A mutex whose `lock` cannot fail (poisoning is not used anywhere in this crate).
#[cfg(not(actor_loom))]
pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

#[cfg(not(actor_loom))]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(parking_lot::Mutex::new(value))
    }
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
        self.0.lock()
    }
}

#[cfg(actor_loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(actor_loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }
    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        // Poisoning only follows a panic, which already fails the loom model.
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The queue of the user lanes: a `VecDeque` under a short lock (no allocation per message once
/// it has grown, 40 bytes when empty, no cache-line padding). Any thread may pop (a producer
/// draining a closed mailbox, or evicting the oldest message of a bounded lane). The consumer of
/// an unbounded lane takes everything queued at once with [`Queue::take_all`], so it takes the
/// producers' lock once per batch, not once per message. The same code runs under loom (`Mutex`
/// is the seam).
///
/// `nonempty` mirrors "the deque is not empty" and is only written under the lock, so at every
/// unlock it is exact; read without the lock it lets the consumer find an empty queue with one
/// load instead of a lock. A stale `false` is covered by the mailbox's wake protocol: the
/// producer's push (and flag store) precedes its `SeqCst` fence, the consumer's park stores
/// `IDLE` and fences before it reads the flag, so one of them sees the other.
pub(crate) struct Queue<T> {
    queue: Mutex<std::collections::VecDeque<T>>,
    nonempty: AtomicBool,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(std::collections::VecDeque::new()),
            nonempty: AtomicBool::new(false),
        }
    }
    #[inline]
    pub(crate) fn push(&self, value: T) {
        let mut queue = self.queue.lock();
        queue.push_back(value);
        self.nonempty.store(true, Ordering::Release);
    }
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        if !self.nonempty.load(Ordering::Acquire) {
            return None;
        }
        let mut queue = self.queue.lock();
        let value = queue.pop_front();
        if queue.is_empty() {
            self.nonempty.store(false, Ordering::Release);
        }
        value
    }
    /// Pops under the lock whatever the flag says (a producer evicting the oldest message must
    /// not miss one that another producer queued a moment ago).
    pub(crate) fn pop_locked(&self) -> Option<T> {
        let mut queue = self.queue.lock();
        let value = queue.pop_front();
        if queue.is_empty() {
            self.nonempty.store(false, Ordering::Release);
        }
        value
    }
    /// Moves every queued value to the back of `into`, oldest first (an O(1) swap when `into`
    /// is empty, which is how the consumer calls it).
    #[inline]
    pub(crate) fn take_all(&self, into: &mut std::collections::VecDeque<T>) {
        if !self.nonempty.load(Ordering::Acquire) {
            return;
        }
        let mut queue = self.queue.lock();
        if into.is_empty() {
            std::mem::swap(&mut *queue, into);
        } else {
            into.extend(queue.drain(..));
        }
        self.nonempty.store(false, Ordering::Release);
    }
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.nonempty.load(Ordering::Acquire)
    }
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().len()
    }
}

/// `UnsafeCell` behind the same seam (loom tracks every access to its own).
#[cfg(actor_loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(not(actor_loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(actor_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// `WakerSlot::state`: a registration is writing the slot.
const REGISTERING: usize = 1;
/// `WakerSlot::state`: one producer reading the slot (the count sits above the flag).
const READER: usize = 2;

/// The consumer's waker: registered by the consumer before it parks, woken by the producer that
/// performs the idle-to-running transition.
///
/// An actor's task parks with the same waker every time, so the slot *keeps* it: after the first
/// park, `register` is a `will_wake` comparison (no atomic at all), and `wake` wakes by reference
/// (no clone, no drop). Compared with `AtomicWaker`, which takes the waker out on every wake,
/// this saves two CASes and a reference-count increment per park.
///
/// The slot is a tiny reader/writer lock on one word:
///
/// * Producers are readers: `wake` adds `READER`, wakes the slot's waker by reference unless a
///   registration is writing, and subtracts `READER`. Readers never exclude each other, so no
///   wake is ever skipped because another one is running.
/// * The consumer is the only writer, and writes only when its waker changed: it takes
///   `REGISTERING` when no reader is inside (otherwise it wakes itself to retry on its next
///   poll). A reader that arrived during the write did not wake anybody; the writer sees its count
///   when it releases `REGISTERING` and wakes itself, which is the wake the reader owed. (The
///   mailbox does not depend on that wake, since its park looks at the lanes again after
///   registering, but it keeps the slot correct on its own.)
/// * The consumer's reads need no guard: it is the only writer.
pub(crate) struct WakerSlot {
    state: AtomicUsize,
    waker: UnsafeCell<Option<std::task::Waker>>,
}

// SAFETY: the slot is written only by the consumer while it holds `REGISTERING` with no reader
// inside; producers read it only after announcing themselves with `READER` while `REGISTERING` is
// clear; the consumer's unguarded read can only overlap producers' reads. (`Send` is automatic.)
unsafe impl Sync for WakerSlot {}

impl WakerSlot {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            waker: UnsafeCell::new(None),
        }
    }

    /// Consumer side: make `waker` the one woken by the next `wake`.
    #[inline]
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        // SAFETY: only this consumer writes the slot, so this read can only overlap reads.
        let same = self
            .waker
            .with(|slot| unsafe { (*slot).as_ref() }.is_some_and(|old| old.will_wake(waker)));
        if !same {
            self.register_slow(waker);
        }
    }

    #[cold]
    fn register_slow(&self, waker: &std::task::Waker) {
        if !self.try_write(|slot| *slot = Some(waker.clone())) {
            // A producer is waking the old waker (only possible when the waker changed, which a
            // tokio task's does not): be polled again and register then.
            #[cfg(actor_loom)]
            loom::thread::yield_now();
            waker.wake_by_ref();
        }
    }

    /// Runs `write` on the slot if no producer is reading it; returns whether it ran. Wakes the
    /// slot's (new) waker if producers tried to wake it meanwhile.
    fn try_write(&self, write: impl FnOnce(&mut Option<std::task::Waker>)) -> bool {
        if self
            .state
            .compare_exchange(0, REGISTERING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: `REGISTERING` with no reader inside: the slot is ours until we release it.
        self.waker.with_mut(|slot| write(unsafe { &mut *slot }));
        // AcqRel: acquire what the readers who arrived meanwhile published (their messages).
        let prev = self.state.fetch_and(!REGISTERING, Ordering::AcqRel);
        if prev != REGISTERING {
            // SAFETY: still the only writer; readers that see `REGISTERING` clear only read.
            self.waker.with(|slot| {
                if let Some(waker) = unsafe { (*slot).as_ref() } {
                    waker.wake_by_ref();
                }
            });
        }
        true
    }

    /// Producer side: wake the registered waker (if a registration is writing, it wakes itself).
    #[inline]
    pub(crate) fn wake(&self) {
        // AcqRel: acquire the registration; release our message to a writer that sees our count.
        if self.state.fetch_add(READER, Ordering::AcqRel) & REGISTERING == 0 {
            // SAFETY: `REGISTERING` was clear when we announced ourselves, so the consumer will
            // not write the slot until we leave.
            self.waker.with(|slot| {
                if let Some(waker) = unsafe { (*slot).as_ref() } {
                    waker.wake_by_ref();
                }
            });
        }
        self.state.fetch_sub(READER, Ordering::Release);
    }

    /// Consumer side, at teardown: drop the registered waker, so that refs outliving the actor
    /// do not keep its task's allocation alive. The caller guarantees that no new `wake` begins
    /// (the mailbox is closed: no producer can win the transition out of idle), so a producer
    /// still reading the slot leaves within a few instructions; this waits for it.
    pub(crate) fn clear(&self) {
        let mut old = None;
        let mut spins = 0u32;
        while !self.try_write(|slot| old = slot.take()) {
            spins += 1;
            #[cfg(actor_loom)]
            loom::thread::yield_now();
            #[cfg(not(actor_loom))]
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // The reader's thread was preempted inside `wake`: let it run.
                std::thread::yield_now();
            }
        }
        drop(old);
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use super::WakerSlot;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Counting>, Waker) {
        let c = Arc::new(Counting(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn keeps_the_waker_and_wakes_it_by_reference() {
        let slot = WakerSlot::new();
        let (a, wa) = counting();
        slot.register(&wa);
        // The slot holds one clone: the test's `a`, `wa` and the slot's.
        assert_eq!(Arc::strong_count(&a), 3);
        slot.wake();
        slot.wake();
        assert_eq!(a.0.load(Ordering::SeqCst), 2, "kept across wakes");
        slot.register(&wa);
        assert_eq!(Arc::strong_count(&a), 3, "same waker: not cloned again");
    }

    #[test]
    fn a_changed_waker_replaces_the_old_one_and_clear_releases_it() {
        let slot = WakerSlot::new();
        let (a, wa) = counting();
        let (b, wb) = counting();
        slot.register(&wa);
        slot.register(&wb);
        assert_eq!(Arc::strong_count(&a), 2, "old waker released");
        slot.wake();
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        slot.clear();
        assert_eq!(Arc::strong_count(&b), 2, "cleared at teardown");
        slot.wake();
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "nothing to wake after clear");
    }
}
