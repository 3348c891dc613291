//! Synchronisation primitives behind one seam, so the mailbox can be model-checked with loom.
//!
//! Under `--cfg actor_loom` the atomics, the mutex and `UnsafeCell` are loom's, so the loom
//! tests check the mailbox's send / receive / wake protocol, and the accesses to the lanes'
//! queues that its state word guards, exhaustively; in normal builds they are `std` atomics and
//! `parking_lot`.

#[cfg(actor_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering, fence,
};
#[cfg(not(actor_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering, fence};

use crate::slim_deque::SlimDeque;

/// Where a task registers its waker and anyone wakes it (an actor group's task).
#[cfg(not(actor_loom))]
pub(crate) use futures_util::task::AtomicWaker;

/// Where a task registers its waker and anyone wakes it (loom's, under `actor_loom`).
#[cfg(actor_loom)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(actor_loom)]
impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self(loom::future::AtomicWaker::new())
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

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

/// A queue of the priority lane: a `VecDeque` under a short lock of its own (no allocation per
/// message once it has grown, 40 bytes when empty, no cache-line padding), one per class, so that
/// a sender of the top class never waits for the lock that a flood of a lower class keeps busy.
/// The same code runs under loom (`Mutex` is the seam). The other lanes' queues are [`Deque`]s,
/// locked by the mailbox's state word.
///
/// `nonempty` mirrors "the deque is not empty" and is only written under the lock, so at every
/// unlock it is exact; read without the lock it lets the consumer find an empty queue with one
/// load instead of a lock. A stale `false` is covered by the mailbox's wake protocol: the
/// producer's push (and flag store) precedes its `SeqCst` fence, the consumer's park moves the
/// state to `IDLE` and fences before it reads the flag, so one of them sees the other.
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
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.nonempty.load(Ordering::Acquire)
    }
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().len()
    }
}

/// A one-valued byte: its 255 invalid values are a niche for enclosing enums.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Niche {
    Only = 0,
}

/// A user lane's queue: a `VecDeque` with no lock of its own. Its owner (the mailbox) locks it
/// with a bit of its state word, so that a send takes the lock and learns the consumer's state in
/// one read-modify-write and lets go with a plain store (see `mailbox`'s invariants). 40 bytes
/// when empty.
///
/// `nonempty` mirrors "the deque is not empty" and is only written under the owner's lock; read
/// without it, it lets the consumer find an empty queue with one load.
pub(crate) struct Deque<T> {
    items: UnsafeCell<SlimDeque<T>>,
    nonempty: AtomicBool,
    /// A byte with one valid value, in padding that is there anyway: it gives the deque a niche
    /// (its other fields are all behind `UnsafeCell`s, which hide theirs), so an enum that holds
    /// a deque or a box, like the mailbox's user lane, needs no separate discriminant.
    _niche: Niche,
}

// SAFETY: `items` is only reached through the `unsafe fn`s below, whose callers hold the owner's
// lock, so one thread at a time touches it; the values move between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Deque<T> {}

impl<T> Deque<T> {
    pub(crate) fn new() -> Self {
        Self {
            items: UnsafeCell::new(SlimDeque::new()),
            nonempty: AtomicBool::new(false),
            _niche: Niche::Only,
        }
    }

    /// Queues `value` at the back; hands it back if the queue holds 2^31 values already.
    ///
    /// # Safety
    ///
    /// The caller holds the owner's lock.
    #[inline]
    pub(crate) unsafe fn push(&self, value: T) -> Result<(), T> {
        // SAFETY: exclusive per the contract.
        self.items.with_mut(|q| unsafe { (*q).push_back(value) })?;
        self.nonempty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Moves every queued value to the back of `into`, oldest first.
    ///
    /// When `into` is empty, as the consumer calls it, this is an O(1) swap, and the queue keeps
    /// `into`'s buffer for the next pushes: a steady flow recycles two buffers and never regrows
    /// one. Except a buffer of more than [`Deque::SHED_ABOVE`] slots that the queue now fills to
    /// less than a [`Deque::SHED_BELOW`]th: that one is returned instead, for the caller to
    /// drop once it has let go of the lock, and the queue starts a new one. So a burst's peak
    /// size is shed once the flow is back to normal.
    ///
    /// # Safety
    ///
    /// The caller holds the owner's lock.
    #[inline]
    #[must_use = "drop the returned buffer after letting go of the lock"]
    pub(crate) unsafe fn take_all(&self, into: &mut SlimDeque<T>) -> Option<SlimDeque<T>> {
        // SAFETY: exclusive per the contract.
        let shed = self.items.with_mut(|q| {
            let q = unsafe { &mut *q };
            if into.is_empty() {
                let shed = (into.capacity() > Self::SHED_ABOVE
                    && q.len() < into.capacity() / Self::SHED_BELOW)
                    .then(|| std::mem::take(into));
                std::mem::swap(q, into);
                shed
            } else {
                Self::append(into, q);
                None
            }
        });
        self.nonempty.store(false, Ordering::Relaxed);
        shed
    }

    /// `take_all` into a batch that is not empty (a priority lane's, or a consumer that put
    /// messages back): out of line, so that the usual swap stays small enough to be inlined
    /// into the consumer's loop. (When the loop grew, the compiler moved `take_all` out of it;
    /// this and `Mailbox::take_all` always inlined took pingpong from 108.9M back to 104.1M
    /// instructions in callgrind, "Session 31".)
    #[inline(never)]
    fn append(into: &mut SlimDeque<T>, from: &mut SlimDeque<T>) {
        into.append(from);
    }

    /// See [`Deque::take_all`].
    pub(crate) const SHED_ABOVE: usize = 4096;
    /// See [`Deque::take_all`].
    pub(crate) const SHED_BELOW: usize = 8;

    /// Takes the value at the front.
    ///
    /// # Safety
    ///
    /// The caller holds the owner's lock.
    #[inline]
    pub(crate) unsafe fn pop_front(&self) -> Option<T> {
        // SAFETY: exclusive per the contract.
        self.items.with_mut(|q| {
            let q = unsafe { &mut *q };
            let value = q.pop_front();
            if q.is_empty() {
                self.nonempty.store(false, Ordering::Relaxed);
            }
            value
        })
    }

    /// Queued values.
    ///
    /// # Safety
    ///
    /// The caller holds the owner's lock.
    pub(crate) unsafe fn len(&self) -> usize {
        // SAFETY: exclusive per the contract.
        self.items.with(|q| unsafe { (*q).len() })
    }

    /// The queue's buffer, in slots.
    #[cfg(all(test, not(actor_loom)))]
    pub(crate) fn capacity(&self) -> usize {
        // SAFETY: tests call it with no other thread around.
        self.items.with(|q| unsafe { (*q).capacity() })
    }

    /// Whether the queue was empty at the last unlock of the owner's lock that this thread has
    /// seen.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.nonempty.load(Ordering::Acquire)
    }
}

/// A value with no lock of its own, guarded by its owner's lock like a [`Deque`] (the mailbox's
/// system lane, under the state word's `LOCKED` bit).
pub(crate) struct Guarded<T>(UnsafeCell<T>);

// SAFETY: the value is only reached through `with_mut`, whose callers hold the owner's lock, so
// one thread at a time touches it; it moves between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Guarded<T> {}

impl<T> Guarded<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Runs `f` on the value.
    ///
    /// # Safety
    ///
    /// The caller holds the owner's lock.
    #[inline]
    pub(crate) unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: exclusive per the contract.
        self.0.with_mut(|value| f(unsafe { &mut *value }))
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

/// Under loom: where threads wait for a lock bit (the mailbox's `LOCKED`) to clear, blocking
/// instead of spinning. The holder calls [`Turnstile::release`] after it clears the bit; a waiter
/// counts itself in and checks the bit under the turnstile's mutex, so the release cannot slip
/// between its check and its wait. (The count spares a release with nobody waiting the mutex,
/// which keeps the models' state space small.)
#[cfg(actor_loom)]
#[derive(Default)]
pub(crate) struct Turnstile {
    mutex: loom::sync::Mutex<()>,
    released: loom::sync::Condvar,
    waiting: AtomicUsize,
}

#[cfg(actor_loom)]
impl Turnstile {
    /// Blocks while `locked()` says so.
    pub(crate) fn wait_while(&self, locked: impl Fn() -> bool) {
        let mut guard = self.mutex.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // With the fence in `release`: either we see the bit cleared or it sees us waiting.
        fence(Ordering::SeqCst);
        while locked() {
            guard = self.released.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every waiter (the bit was just cleared).
    pub(crate) fn release(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _guard = self.mutex.lock().unwrap_or_else(|p| p.into_inner());
        self.released.notify_all();
    }
}

/// One step of waiting for another thread that is a few instructions from letting go: spin at
/// first, then yield the thread (the other one may have been preempted). Under loom, a yield.
///
/// The spins double (2, 4, 8, then 16 pauses a step), so a waiter leaves the contended cache line
/// alone for longer each time and the holder keeps it: with four tasks sending to one actor
/// (the harness's `fanin`), one pause a step ran 5.9M msgs/s and this 9.9M (`benches/HISTORY.md`,
/// "Session 12"). About 200 pauses in all before the first yield.
#[inline]
pub(crate) fn backoff(spins: u32) {
    #[cfg(actor_loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(actor_loom))]
    if spins < 16 {
        for _ in 0..1u32 << spins.min(4) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
}

/// The consumer's waker: registered by the consumer before it parks, woken by the producer that
/// performs the idle-to-running transition.
///
/// An actor's task parks with the same waker every time, so the slot *keeps* it: after the first
/// park, `register` is a `will_wake` comparison, and `wake` wakes by reference (no clone, no
/// drop). Compared with `AtomicWaker`, which takes the waker out on every wake, this saves two
/// CASes and a reference-count increment per park.
///
/// The slot has no synchronisation of its own: the mailbox's state word is its lock. A producer
/// reads the slot only while it holds the mailbox's `WAKING` state (which one producer at a time
/// wins, by a CAS out of an idle state); the consumer writes it only while the state is `RUNNING`
/// (which no producer leaves) or once `CLOSED` is set with no `WAKING` producer left. So a wake
/// costs no read-modify-write here at all.
///
/// One word (an `Option<Waker>` takes two; every actor has a slot): the waker's data pointer,
/// with its vtable told by the pointer's two low bits (see [`WakerSlot::encode`]): one of the
/// first two vtables the process registers (in practice tokio's task waker, the one every tokio
/// task's waker has, and a group member's), or, for a waker with any other vtable or an
/// unaligned data pointer, a box holding the waker.
pub(crate) struct WakerSlot {
    word: UnsafeCell<usize>,
}

// SAFETY: every access is one of the `unsafe fn`s below, whose contracts (kept by the mailbox's
// state word) exclude a write overlapping any other access; what the word holds is a `Waker`,
// which is `Send` and `Sync`.
unsafe impl Sync for WakerSlot {}
// (`Send` is automatic, and right: the word owns a `Waker`, which is `Send`.)

/// The vtables of the wakers whose slots hold their data pointer alone, tagged with the index
/// ([`WAKER_FIRST`], [`WAKER_SECOND`]); each set once, by the first registration of a waker
/// with a vtable not there yet.
static LEARNED_VTABLES: [std::sync::atomic::AtomicPtr<std::task::RawWakerVTable>; 2] = [
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
];

/// The low bits of a slot's word, which say what its other bits are.
const WAKER_TAG: usize = 0b11;
/// A data pointer whose vtable is the first of [`LEARNED_VTABLES`] (a word of 0 is an empty
/// slot).
const WAKER_FIRST: usize = 0b00;
/// A data pointer whose vtable is the second of [`LEARNED_VTABLES`].
const WAKER_SECOND: usize = 0b01;
/// A `Box<Waker>`.
const WAKER_BOXED: usize = 0b10;

impl WakerSlot {
    pub(crate) fn new() -> Self {
        Self {
            word: UnsafeCell::new(0),
        }
    }

    /// The word that holds `waker` (taken over: it is released by [`WakerSlot::release`]).
    fn encode(waker: std::task::Waker) -> usize {
        let data = waker.data() as usize;
        let vtable = waker.vtable();
        if data != 0 && data & WAKER_TAG == 0 {
            for (tag, slot) in [WAKER_FIRST, WAKER_SECOND]
                .into_iter()
                .zip(&LEARNED_VTABLES)
            {
                let mut learned = slot.load(std::sync::atomic::Ordering::Acquire);
                if learned.is_null() {
                    learned = match slot.compare_exchange(
                        learned,
                        std::ptr::from_ref(vtable).cast_mut(),
                        std::sync::atomic::Ordering::AcqRel,
                        std::sync::atomic::Ordering::Acquire,
                    ) {
                        Ok(_) => std::ptr::from_ref(vtable).cast_mut(),
                        Err(learned) => learned,
                    };
                }
                if std::ptr::eq(vtable, learned) {
                    std::mem::forget(waker);
                    return data | tag;
                }
            }
        }
        Box::into_raw(Box::new(waker)) as usize | WAKER_BOXED
    }

    /// Runs `f` on the waker `word` holds, if any, borrowed.
    ///
    /// # Safety
    ///
    /// `word` holds a waker made by [`WakerSlot::encode`] and not yet released.
    #[inline]
    unsafe fn with_waker<R>(word: usize, f: impl FnOnce(&std::task::Waker) -> R) -> Option<R> {
        if word == 0 {
            return None;
        }
        let vtable = match word & WAKER_TAG {
            WAKER_FIRST => LEARNED_VTABLES[0].load(std::sync::atomic::Ordering::Acquire),
            WAKER_SECOND => LEARNED_VTABLES[1].load(std::sync::atomic::Ordering::Acquire),
            // SAFETY: the word holds a `Box<Waker>` per the contract.
            _ => return Some(f(unsafe { Self::boxed(word) })),
        };
        // SAFETY: the word holds this data pointer with this vtable (a learned one never
        // changes once set, and was set before the word was written); the waker is borrowed
        // (`ManuallyDrop`), so the slot's reference is neither taken nor released.
        let waker = std::mem::ManuallyDrop::new(unsafe {
            std::task::Waker::new((word & !WAKER_TAG) as *const (), &*vtable)
        });
        Some(f(&waker))
    }

    /// The boxed waker `word` holds (out of line: rare, and kept out of the consumer's loop).
    ///
    /// # Safety
    ///
    /// `word` holds a `Box<Waker>` made by [`WakerSlot::encode`] and not yet released, which
    /// outlives the returned borrow.
    #[cold]
    #[inline(never)]
    unsafe fn boxed<'a>(word: usize) -> &'a std::task::Waker {
        // SAFETY: per the contract.
        unsafe { &*((word & !WAKER_TAG) as *const std::task::Waker) }
    }

    /// Releases the waker `word` holds, if any.
    ///
    /// # Safety
    ///
    /// As for [`WakerSlot::with_waker`]; the word is not used again.
    #[inline(never)]
    unsafe fn release(word: usize) {
        if word & WAKER_TAG == WAKER_BOXED {
            // SAFETY: the word holds a `Box<Waker>`, given up here.
            drop(unsafe { Box::from_raw((word & !WAKER_TAG) as *mut std::task::Waker) });
        } else {
            // SAFETY: per the contract. The borrowed waker is the slot's own reference: read out
            // as an owned waker (once), its drop gives the reference back.
            unsafe { Self::with_waker(word, |waker| drop(std::ptr::read(waker))) };
        }
    }

    /// Consumer side: make `waker` the one woken by the next `wake`.
    ///
    /// # Safety
    ///
    /// No `wake` or other access may run concurrently (the mailbox's state is `RUNNING`, which
    /// only the consumer leaves).
    #[inline]
    pub(crate) unsafe fn register(&self, waker: &std::task::Waker) {
        // SAFETY: exclusive per the contract.
        if unsafe { !self.will_wake(waker) } {
            // SAFETY: as for this function.
            unsafe { self.replace(waker) };
        }
    }

    /// `register`'s first registration or change of waker, out of line and cold: a task parks
    /// with the same waker every time, so this runs about once per actor, and the consumer's
    /// loop, which inlines `register`, stays small (see `Deque::append`).
    ///
    /// # Safety
    ///
    /// As for `register`.
    #[cold]
    #[inline(never)]
    unsafe fn replace(&self, waker: &std::task::Waker) {
        let new = Self::encode(waker.clone());
        // SAFETY: exclusive per the contract; the old word is released once, after it is
        // replaced.
        let old = self
            .word
            .with_mut(|word| unsafe { std::mem::replace(&mut *word, new) });
        // SAFETY: the old word held a waker made by `encode`, now out of the slot.
        unsafe { Self::release(old) };
    }

    /// Producer side: wake the registered waker, if any, by reference.
    ///
    /// # Safety
    ///
    /// No `register` or `clear` may run concurrently (the caller holds the mailbox's `WAKING`
    /// state, which excludes them).
    #[inline]
    pub(crate) unsafe fn wake(&self) {
        // SAFETY: no writer per the contract.
        let word = self.word.with(|word| unsafe { *word });
        // SAFETY: the slot's word holds a waker from `encode`.
        unsafe { Self::with_waker(word, std::task::Waker::wake_by_ref) };
    }

    /// Producer side: wake the registered waker, if any, by reference, unless `instead` takes
    /// care of it (and returns true).
    ///
    /// # Safety
    ///
    /// As for `wake`.
    #[cfg(not(actor_loom))]
    #[inline]
    pub(crate) unsafe fn wake_unless(&self, instead: impl FnOnce(&std::task::Waker) -> bool) {
        // SAFETY: no writer per the contract.
        let word = self.word.with(|word| unsafe { *word });
        // SAFETY: the slot's word holds a waker from `encode`.
        unsafe {
            Self::with_waker(word, |waker| {
                if !instead(waker) {
                    waker.wake_by_ref();
                }
            })
        };
    }

    /// Consumer side: whether `waker` is the registered one.
    ///
    /// # Safety
    ///
    /// No `register` or `clear` may run concurrently (only the consumer calls them).
    #[inline]
    pub(crate) unsafe fn will_wake(&self, waker: &std::task::Waker) -> bool {
        // SAFETY: no writer per the contract.
        let word = self.word.with(|word| unsafe { *word });
        let data = waker.data() as usize;
        // Compared in place, without making a waker of the word (this is on every park).
        if word == data | WAKER_FIRST && word != 0 {
            std::ptr::eq(
                waker.vtable(),
                LEARNED_VTABLES[0].load(std::sync::atomic::Ordering::Acquire),
            )
        } else if word == data | WAKER_SECOND {
            std::ptr::eq(
                waker.vtable(),
                LEARNED_VTABLES[1].load(std::sync::atomic::Ordering::Acquire),
            )
        } else if word & WAKER_TAG == WAKER_BOXED {
            // SAFETY: the slot's word holds a `Box<Waker>` from `encode`.
            unsafe { Self::boxed(word) }.will_wake(waker)
        } else {
            false
        }
    }

    /// Consumer side, at teardown: drop the registered waker, so that refs outliving the actor
    /// do not keep its task's allocation alive.
    ///
    /// # Safety
    ///
    /// As for `register`: the mailbox is closed and no producer holds `WAKING`, so none can read
    /// the slot again.
    pub(crate) unsafe fn clear(&self) {
        // SAFETY: exclusive per the contract.
        let old = self
            .word
            .with_mut(|word| unsafe { std::mem::replace(&mut *word, 0) });
        // SAFETY: the old word held a waker made by `encode`, now out of the slot.
        unsafe { Self::release(old) };
    }
}

impl Drop for WakerSlot {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other access.
        let word = self
            .word
            .with_mut(|word| unsafe { std::mem::replace(&mut *word, 0) });
        // SAFETY: the word held a waker made by `encode`, now out of the slot.
        unsafe { Self::release(word) };
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

    // Single-threaded, so every call's contract (no concurrent access) holds trivially.
    #[test]
    fn keeps_the_waker_and_wakes_it_by_reference() {
        let slot = WakerSlot::new();
        let (a, wa) = counting();
        // SAFETY (all calls here): one thread, no concurrent access.
        unsafe {
            slot.register(&wa);
            // The slot holds one clone: the test's `a`, `wa` and the slot's.
            assert_eq!(Arc::strong_count(&a), 3);
            assert!(slot.will_wake(&wa));
            slot.wake();
            slot.wake();
            assert_eq!(a.0.load(Ordering::SeqCst), 2, "kept across wakes");
            slot.register(&wa);
            assert_eq!(Arc::strong_count(&a), 3, "same waker: not cloned again");
        }
    }

    /// A waker with a data pointer the slot cannot tag (odd here): the slot boxes it.
    struct Odd(AtomicUsize);

    static ODD: Odd = Odd(AtomicUsize::new(0));
    static ODD_VTABLE: std::task::RawWakerVTable =
        std::task::RawWakerVTable::new(odd_clone, odd_wake, odd_wake, odd_drop);

    /// Clones and drops of `ODD`'s wakers so far (clones add 1, drops take 1 back).
    static ODD_REFS: AtomicUsize = AtomicUsize::new(0);

    unsafe fn odd_clone(data: *const ()) -> std::task::RawWaker {
        ODD_REFS.fetch_add(1, Ordering::SeqCst);
        std::task::RawWaker::new(data, &ODD_VTABLE)
    }

    unsafe fn odd_wake(_: *const ()) {
        ODD.0.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn odd_drop(_: *const ()) {
        ODD_REFS.fetch_sub(1, Ordering::SeqCst);
    }

    fn odd_waker() -> Waker {
        let data = std::ptr::from_ref(&ODD)
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<()>();
        ODD_REFS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the vtable's functions never read `data`.
        unsafe { Waker::new(data, &ODD_VTABLE) }
    }

    /// The tag a waker with `vtable` gets: one of the learned vtables' or, once both are taken
    /// by others, a box.
    fn expected_tag(vtable: &'static std::task::RawWakerVTable) -> usize {
        let learned = |i: usize| {
            super::LEARNED_VTABLES[i]
                .load(Ordering::SeqCst)
                .cast_const()
        };
        if std::ptr::eq(vtable, learned(0)) {
            super::WAKER_FIRST
        } else if std::ptr::eq(vtable, learned(1)) {
            super::WAKER_SECOND
        } else {
            super::WAKER_BOXED
        }
    }

    /// Each form of the word wakes, compares and releases its waker; an odd data pointer is
    /// boxed whatever its vtable.
    #[test]
    fn every_form_of_the_word_keeps_its_waker() {
        let (a, wa) = counting();
        // SAFETY: `encode`'s words, each released once.
        unsafe {
            let word = WakerSlot::encode(wa.clone());
            assert_eq!(
                word & super::WAKER_TAG,
                expected_tag(wa.vtable()),
                "a std waker"
            );
            WakerSlot::with_waker(word, |w| assert!(w.will_wake(&wa)));
            WakerSlot::with_waker(word, Waker::wake_by_ref);
            assert_eq!(a.0.load(Ordering::SeqCst), 1);
            assert_eq!(Arc::strong_count(&a), 3);
            WakerSlot::release(word);
            assert_eq!(Arc::strong_count(&a), 2, "released");

            let odd = odd_waker();
            let word = WakerSlot::encode(odd.clone());
            assert_eq!(
                word & super::WAKER_TAG,
                super::WAKER_BOXED,
                "an odd pointer"
            );
            assert_eq!(ODD_REFS.load(Ordering::SeqCst), 2);
            WakerSlot::with_waker(word, |w| assert!(w.will_wake(&odd)));
            WakerSlot::with_waker(word, Waker::wake_by_ref);
            assert_eq!(ODD.0.load(Ordering::SeqCst), 1);
            WakerSlot::release(word);
            assert_eq!(ODD_REFS.load(Ordering::SeqCst), 1, "released");
        }
    }

    /// Wakers with an aligned data pointer and a vtable the slot learned are kept as the
    /// pointer alone, tagged; with a third vtable they are boxed.
    #[test]
    fn learned_vtables_keep_the_pointer_alone() {
        unsafe fn never_cloned(_: *const ()) -> std::task::RawWaker {
            unreachable!("the slot takes the waker over, it does not clone it")
        }
        unsafe fn nothing(_: *const ()) {}
        static OTHER: [std::task::RawWakerVTable; 3] = [
            std::task::RawWakerVTable::new(never_cloned, nothing, nothing, nothing),
            std::task::RawWakerVTable::new(never_cloned, nothing, nothing, nothing),
            std::task::RawWakerVTable::new(never_cloned, nothing, nothing, nothing),
        ];
        let data = std::ptr::NonNull::<u64>::dangling().as_ptr().cast::<()>();
        let mut tags = Vec::new();
        for vtable in &OTHER {
            // SAFETY: the vtable's functions never read `data`; the waker is taken over by
            // `encode`, and the word is released below.
            let word = WakerSlot::encode(unsafe { Waker::new(data, vtable) });
            let tag = word & super::WAKER_TAG;
            assert_eq!(tag, expected_tag(vtable));
            if tag != super::WAKER_BOXED {
                assert_eq!(word & !super::WAKER_TAG, data as usize, "the pointer alone");
            }
            tags.push(tag);
            // SAFETY: made by `encode` above, released once.
            unsafe { WakerSlot::release(word) };
        }
        assert_eq!(
            tags[2],
            super::WAKER_BOXED,
            "two vtables at most are learned"
        );
    }

    #[test]
    fn a_changed_waker_replaces_the_old_one_and_clear_releases_it() {
        let slot = WakerSlot::new();
        let (a, wa) = counting();
        let (b, wb) = counting();
        // SAFETY (all calls here): one thread, no concurrent access.
        unsafe {
            slot.register(&wa);
            slot.register(&wb);
            assert_eq!(Arc::strong_count(&a), 2, "old waker released");
            assert!(!slot.will_wake(&wa));
            slot.wake();
            assert_eq!(a.0.load(Ordering::SeqCst), 0);
            assert_eq!(b.0.load(Ordering::SeqCst), 1);
            slot.clear();
            assert_eq!(Arc::strong_count(&b), 2, "cleared at teardown");
            assert!(!slot.will_wake(&wb));
            slot.wake();
        }
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "nothing to wake after clear");
    }
}

/// What the loom models share: the model runner and a task with one waker for its whole life.
#[cfg(all(test, actor_loom))]
pub(crate) mod loom_support {
    use std::sync::Arc;
    use std::task::Waker;

    /// Exhaustive up to 3 preemptions per execution, unless `LOOM_MAX_PREEMPTIONS` says
    /// otherwise.
    pub(crate) fn model<F: Fn() + Sync + Send + 'static>(f: F) {
        model_preempting(3, f);
    }

    /// The bound for a model with two producers that both take the mailbox's state-word lock,
    /// and its consumer. At 3 preemptions each such model takes 3 to 3.5 minutes (they were
    /// two thirds of CI's time); at 2 it takes 10 to 13 s. tokio's own loom CI bounds every
    /// model at 2. Each mutation of the wake protocol tried at 2 (a hand-back that does not
    /// look at the lanes again, an unlock without `Release`, a parked consumer's check that
    /// ignores the system lane, a priority-lane park without its fence) fails within a second.
    /// `LOOM_MAX_PREEMPTIONS=3` runs them exhaustively to 3 (about 11 minutes in all); do that
    /// when the mailbox's protocol changes.
    pub(crate) const TWO_LOCKING_PRODUCERS: usize = 2;

    /// Exhaustive up to `bound` preemptions per execution, unless `LOOM_MAX_PREEMPTIONS` says
    /// otherwise.
    pub(crate) fn model_preempting<F: Fn() + Sync + Send + 'static>(bound: usize, f: F) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(bound);
        builder.check(f);
    }

    /// A task with one waker for its whole life, as a tokio task has: `will_wake` recognises it
    /// and its clones, so a re-poll finds it registered and parks without writing the slot
    /// (`loom::future::block_on` makes a new waker per call, and its clones compare unequal, so
    /// it never exercises that path). Waking it notifies `notify`, which the task waits on.
    pub(crate) struct Task {
        pub(crate) notify: Arc<Wakeup>,
        pub(crate) waker: Waker,
    }

    pub(crate) struct Wakeup(pub(crate) loom::sync::Notify);

    impl std::task::Wake for Wakeup {
        fn wake(self: Arc<Self>) {
            self.0.notify();
        }
    }

    pub(crate) fn consumer_task() -> Task {
        let notify = Arc::new(Wakeup(loom::sync::Notify::new()));
        let waker = Waker::from(notify.clone());
        assert!(
            waker.will_wake(&waker.clone()),
            "a waker that knows its clones"
        );
        Task { notify, waker }
    }
}
