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

/// The consumer's waker, written by the consumer before it parks and taken by the producer that
/// performs the idle-to-running transition.
#[cfg(not(actor_loom))]
pub(crate) struct WakerSlot(futures_util::task::AtomicWaker);

#[cfg(not(actor_loom))]
impl WakerSlot {
    pub(crate) fn new() -> Self {
        Self(futures_util::task::AtomicWaker::new())
    }
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register(waker)
    }
    pub(crate) fn wake(&self) {
        self.0.wake()
    }
}

#[cfg(actor_loom)]
pub(crate) struct WakerSlot(loom::sync::Mutex<Option<std::task::Waker>>);

#[cfg(actor_loom)]
impl WakerSlot {
    pub(crate) fn new() -> Self {
        Self(loom::sync::Mutex::new(None))
    }
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(waker.clone());
        }
    }
    pub(crate) fn wake(&self) {
        let taken = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(waker) = taken {
            waker.wake();
        }
    }
}
