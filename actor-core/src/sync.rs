//! Synchronisation primitives behind one seam, so the mailbox can be model-checked with loom.
//!
//! Under `--cfg actor_loom` the atomics, the mutex and the queue are loom's (the queue becomes a
//! loom-mutex-protected `VecDeque`), so the loom tests check the mailbox's send / receive / wake
//! protocol exhaustively; in normal builds they are `std` atomics, `parking_lot` and crossbeam's
//! lock-free block-linked `SegQueue`.

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

/// Multi-producer queue used by the user lanes.
#[cfg(not(actor_loom))]
pub(crate) struct Queue<T>(crossbeam_queue::SegQueue<T>);

#[cfg(not(actor_loom))]
impl<T> Queue<T> {
    pub(crate) const fn new() -> Self {
        Self(crossbeam_queue::SegQueue::new())
    }
    #[inline]
    pub(crate) fn push(&self, value: T) {
        self.0.push(value)
    }
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        self.0.pop()
    }
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(actor_loom)]
pub(crate) struct Queue<T>(loom::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(actor_loom)]
impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Self(loom::sync::Mutex::new(std::collections::VecDeque::new()))
    }
    fn inner(&self) -> loom::sync::MutexGuard<'_, std::collections::VecDeque<T>> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
    pub(crate) fn push(&self, value: T) {
        self.inner().push_back(value)
    }
    pub(crate) fn pop(&self) -> Option<T> {
        self.inner().pop_front()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.inner().is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.inner().len()
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
