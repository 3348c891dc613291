//! The user lanes of a mailbox: unbounded, bounded, priority classes and conflating.
//!
//! Every lane is multi-producer, single-consumer and keeps FIFO order per producer within a class.
//! The unbounded, bounded and conflating lanes have no lock of their own: their queues
//! (`sync::Deque`s, a `VecDeque` with no allocation per message once grown, and the conflating
//! lane's map) are guarded by the `LOCKED` bit of the mailbox's state word, so a send is the
//! mailbox's one compare-and-swap, the push, and one plain store. The `*_locked` functions are
//! `unsafe` for that reason: their caller holds `LOCKED`. They run no user code (a conflation key
//! is computed before the lock is taken, see [`UserLane::prepare`]) and drop no message (what a
//! push sheds or replaces is returned), so nothing can panic while the lock is held.
//!
//! The priority lane is the exception: a lock per class (`sync::Queue`), so that a sender of the
//! top class never waits for the lock a flood of a lower class keeps busy (one lock over all
//! classes, the state word's, made the top class's p99 latency under a flood go from about 10 us
//! to about 4 ms: `benches/HISTORY.md`, "Session 12"). It keeps the fence handshake with the
//! consumer (`super::Mailbox::push_priority`).
//!
//! The unbounded lane (the default) and a bounded lane that refuses or sheds new messages hand
//! the consumer the whole queue at once (its private batch, `Cursor`), so it pays the lock once
//! per batch; a bounded lane counts a message as queued until the consumer hands it to the actor,
//! so its capacity still bounds what is pending. A `DropOldest` lane, the priority lane and the
//! conflating lane give out one message at a time: eviction, class order and conflation must see
//! every message that has not been handled.
//! Wake-ups are not this module's business: `super::Mailbox` owns the wake protocol.

use std::collections::{HashMap, VecDeque};

use super::config::{LaneKind, MailboxConfig, Overflow};
use crate::slim_deque::SlimDeque;
use crate::sync::{AtomicUsize, Deque, Ordering, Queue, UnsafeCell};

/// The result of a push that was accepted.
pub(crate) enum Pushed<M> {
    /// The message is queued.
    Queued,
    /// The message is queued or dropped per the overflow policy; this one was shed and must be
    /// counted as a dead letter by the caller.
    Shed(M),
    /// The message took the place of this older one with the same conflation key (counted in
    /// the lane's `conflated`, not a dead letter); the caller drops it once it let go of the lock.
    Replaced(M),
}

/// The consumer's private state (kept out of the shared mailbox so its bookkeeping never bounces
/// between cores): the batch taken from an unbounded lane. Messages in the batch are still queued
/// as far as the actor is concerned: whoever drops a cursor must drain it first
/// ([`Cursor::drain`]). (The priority lane's round-robin position is that lane's own: every
/// byte here is in every actor's task.)
#[derive(Debug)]
pub(crate) struct Cursor<M> {
    pub(super) batch: SlimDeque<M>,
}

impl<M> Default for Cursor<M> {
    fn default() -> Self {
        Self {
            batch: SlimDeque::new(),
        }
    }
}

impl<M> Cursor<M> {
    /// Messages taken from the lane but not handed out yet.
    pub(crate) fn batched(&self) -> usize {
        self.batch.len()
    }

    /// Removes the messages of the batch.
    pub(crate) fn drain(&mut self) -> crate::slim_deque::Drain<'_, M> {
        self.batch.drain()
    }
}

// The unbounded lane is the default and the hottest: it stays inline to save an indirection per
// send; the rarer lanes are boxed so they do not grow every mailbox.
#[allow(clippy::large_enum_variant)]
pub(crate) enum UserLane<M> {
    Unbounded(Deque<M>),
    Bounded(Box<Bounded<M>>),
    Priority(Box<Priority<M>>),
    Conflating(Box<Conflating<M>>),
}

pub(crate) struct Bounded<M> {
    pub(super) queue: Deque<M>,
    capacity: usize,
    overflow: Overflow,
    /// Whether the consumer takes the whole queue at once (not for `DropOldest`, whose producers
    /// must be able to evict every message not yet handled).
    pub(super) batches: bool,
    /// Messages accepted so far; written only under the lock (a load and a store).
    pushed: AtomicUsize,
    /// Messages handed to the actor (or drained) so far; written only by the consumer. A message
    /// is pending from its push until it is handed out, `pushed - handed` (wrapping), so the
    /// capacity bounds the queue and the consumer's batch together.
    handed: AtomicUsize,
    /// Senders parked in `send().await`.
    waiting: AtomicUsize,
    space: tokio::sync::Notify,
}

pub(crate) struct Priority<M> {
    classes: Box<[Queue<M>]>,
    classify: fn(&M) -> usize,
    weights: Box<[u32]>,
    /// The weighted round robin's position: the class being served (0: none yet) and the
    /// messages it may still take. Only the consumer pops, so relaxed loads and stores suffice;
    /// they are atomics only so the lane stays `Sync`.
    class: std::sync::atomic::AtomicU32,
    credit: std::sync::atomic::AtomicU32,
}

pub(crate) struct Conflating<M> {
    key: fn(&M) -> Option<u64>,
    state: UnsafeCell<ConflateState<M>>,
    /// Queued messages and messages replaced so far; written only under the lock.
    len: AtomicUsize,
    conflated: AtomicUsize,
}

// SAFETY: `state` is only reached through the `unsafe fn`s below, whose callers hold the
// mailbox's lock; the messages move between threads, hence `M: Send`.
unsafe impl<M: Send> Sync for Conflating<M> {}

struct ConflateState<M> {
    order: VecDeque<Slot<M>>,
    keyed: HashMap<u64, M>,
}

enum Slot<M> {
    Keyed(u64),
    Plain(M),
}

impl<M> UserLane<M> {
    pub(crate) fn new(config: MailboxConfig<M>) -> Self {
        match config.kind {
            LaneKind::Unbounded => UserLane::Unbounded(Deque::new()),
            LaneKind::Bounded { capacity, overflow } => UserLane::Bounded(Box::new(Bounded {
                queue: Deque::new(),
                capacity,
                overflow,
                batches: !matches!(overflow, Overflow::DropOldest),
                pushed: AtomicUsize::new(0),
                handed: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                space: tokio::sync::Notify::new(),
            })),
            LaneKind::Priority { classify, weights } => {
                let classes = (0..=weights.len()).map(|_| Queue::new()).collect();
                UserLane::Priority(Box::new(Priority {
                    classes,
                    classify,
                    weights,
                    class: std::sync::atomic::AtomicU32::new(0),
                    credit: std::sync::atomic::AtomicU32::new(0),
                }))
            }
            LaneKind::Conflating { key } => UserLane::Conflating(Box::new(Conflating {
                key,
                state: UnsafeCell::new(ConflateState {
                    order: VecDeque::new(),
                    keyed: HashMap::new(),
                }),
                len: AtomicUsize::new(0),
                conflated: AtomicUsize::new(0),
            })),
        }
    }

    /// What the push of `msg` needs computed before the lock is taken: a conflating lane's key
    /// for it (`None`: not conflated), from the user's function, which must not run under the
    /// lock. `None` for the other lanes, which need nothing.
    #[inline]
    pub(crate) fn prepare(&self, msg: &M) -> Option<u64> {
        match self {
            UserLane::Conflating(c) => (c.key)(msg),
            _ => None,
        }
    }

    /// Pushes per the lane's policy. `Err` hands the message back (bounded lane, full, `Fail`
    /// policy or `force_fail`). `key` is [`UserLane::prepare`]'s for this message.
    ///
    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    #[inline]
    pub(crate) unsafe fn push_locked(
        &self,
        msg: M,
        key: Option<u64>,
        force_fail: bool,
    ) -> Result<Pushed<M>, M> {
        // SAFETY (all arms): the caller holds the lock.
        match self {
            UserLane::Unbounded(q) => unsafe { q.push(msg) }.map(|()| Pushed::Queued),
            UserLane::Bounded(b) => unsafe { b.push_locked(msg, force_fail) },
            UserLane::Conflating(c) => Ok(unsafe { c.push_locked(msg, key) }),
            UserLane::Priority(_) => {
                unreachable!("the priority lane is pushed to with its own locks (Priority::push)")
            }
        }
    }

    /// Consumer side: the next message per the lane's order, for lanes that give out one message
    /// per lock (see [`UserLane::batch`]). A bounded lane's message is counted out here; the
    /// caller wakes a waiting sender ([`Bounded::wake_sender`]) once it let go of the lock: a
    /// waker runs code that is not ours.
    ///
    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    #[inline]
    pub(crate) unsafe fn pop_locked(&self) -> Option<M> {
        // SAFETY (all arms): the caller holds the lock.
        match self {
            UserLane::Unbounded(q) => unsafe { q.pop_front() },
            UserLane::Bounded(b) => {
                let msg = unsafe { b.queue.pop_front() };
                if msg.is_some() {
                    b.count_out(1);
                }
                msg
            }
            UserLane::Priority(_) => {
                unreachable!("the priority lane is popped with its own locks (Priority::pop)")
            }
            UserLane::Conflating(c) => unsafe { c.pop_locked() },
        }
    }

    /// The queue the consumer takes whole into its batch, if this lane is given out that way.
    #[inline]
    pub(crate) fn batch(&self) -> Option<&Deque<M>> {
        match self {
            UserLane::Unbounded(q) => Some(q),
            UserLane::Bounded(b) if b.batches => Some(&b.queue),
            _ => None,
        }
    }

    /// Whether the lane looked empty at the last unlock this thread has seen.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            UserLane::Unbounded(q) => q.is_empty(),
            UserLane::Bounded(b) => b.queue.is_empty(),
            UserLane::Priority(p) => p.classes.iter().all(Queue::is_empty),
            UserLane::Conflating(c) => c.len.load(Ordering::Acquire) == 0,
        }
    }

    /// Queued messages (not counting the consumer's batch).
    ///
    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    pub(crate) unsafe fn len_locked(&self) -> usize {
        // SAFETY (all arms): the caller holds the lock.
        match self {
            UserLane::Unbounded(q) => unsafe { q.len() },
            UserLane::Bounded(b) => unsafe { b.queue.len() },
            UserLane::Priority(p) => p.len(),
            UserLane::Conflating(c) => c.len.load(Ordering::Relaxed),
        }
    }

    /// Messages replaced in a conflating lane so far (0 for other lanes).
    pub(crate) fn conflated(&self) -> usize {
        match self {
            UserLane::Conflating(c) => c.conflated.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// The priority lane, which the mailbox pushes to and pops from with its own locks.
    #[inline]
    pub(crate) fn priority(&self) -> Option<&Priority<M>> {
        match self {
            UserLane::Priority(p) => Some(p),
            _ => None,
        }
    }

    /// The bounded lane, for senders that wait for room.
    pub(crate) fn bounded(&self) -> Option<&Bounded<M>> {
        match self {
            UserLane::Bounded(b) => Some(b),
            _ => None,
        }
    }
}

impl<M> Bounded<M> {
    /// Messages pushed and not handed out yet.
    #[inline]
    fn pending(&self, order: Ordering) -> usize {
        self.pushed
            .load(order)
            .wrapping_sub(self.handed.load(order))
    }

    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    #[inline]
    unsafe fn push_locked(&self, msg: M, force_fail: bool) -> Result<Pushed<M>, M> {
        // Only lock holders write `pushed`; the consumer's `handed` may be a little old, which
        // only makes the lane look fuller than it is (the waiting sender retries on its notify).
        let pushed = self.pushed.load(Ordering::Relaxed);
        if pushed.wrapping_sub(self.handed.load(Ordering::Acquire)) < self.capacity {
            // SAFETY: the caller holds the lock.
            unsafe { self.queue.push(msg) }?;
            self.pushed.store(pushed.wrapping_add(1), Ordering::Release);
            return Ok(Pushed::Queued);
        }
        if force_fail {
            return Err(msg);
        }
        match self.overflow {
            Overflow::Fail => Err(msg),
            Overflow::DropNewest => Ok(Pushed::Shed(msg)),
            Overflow::DropOldest => {
                // This lane gives out one message per lock and counts it out under the lock, so
                // everything pending is queued here (at least one: the capacity is at least 1):
                // evict the oldest (one out, one in: `pushed` stands). Were the queue empty, the
                // new message would be the one shed rather than exceed the capacity.
                // SAFETY: the caller holds the lock.
                match unsafe { self.queue.pop_front() } {
                    Some(oldest) => match unsafe { self.queue.push(msg) } {
                        Ok(()) => Ok(Pushed::Shed(oldest)),
                        // A deque refuses only when it holds 2^31 values, and the pop just left
                        // it one fewer.
                        Err(_) => unreachable!("a push refused right after a pop"),
                    },
                    None => Ok(Pushed::Shed(msg)),
                }
            }
        }
    }

    /// Consumer side, not holding the lock: `n` messages left the lane for the actor (or for the
    /// dead letters). Wakes a sender waiting for room.
    #[inline]
    pub(crate) fn hand_out(&self, n: usize) {
        self.count_out(n);
        self.wake_sender();
    }

    /// Consumer side: counts `n` messages out. A lane that gives out one message per lock
    /// counts under it (so a producer never finds the lane full of a message the consumer has
    /// already taken) and wakes senders after it ([`Bounded::wake_sender`]).
    #[inline]
    pub(crate) fn count_out(&self, n: usize) {
        let handed = self.handed.load(Ordering::Relaxed);
        self.handed.store(handed.wrapping_add(n), Ordering::SeqCst);
    }

    /// Consumer side, not holding the lock, after [`Bounded::count_out`]: wakes a sender waiting
    /// for room. `SeqCst`, with the waiting sender's count and re-check in
    /// `Mailbox::wait_for_room`: either we see it waiting or it sees the room we made.
    #[inline]
    pub(crate) fn wake_sender(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.space.notify_one();
        }
    }

    /// Where waiting senders are woken when a message leaves the lane.
    pub(crate) fn space(&self) -> &tokio::sync::Notify {
        &self.space
    }

    /// How many senders wait for room (the consumer notifies only when this is non-zero).
    pub(crate) fn waiting(&self) -> &AtomicUsize {
        &self.waiting
    }

    pub(crate) fn has_room(&self) -> bool {
        self.pending(Ordering::SeqCst) < self.capacity
    }
}

impl<M> Priority<M> {
    /// Queues `msg` in its class (the classifier, user code, runs before the class's lock).
    #[inline]
    pub(crate) fn push(&self, msg: M) {
        let class = (self.classify)(&msg).min(self.classes.len() - 1);
        self.classes[class].push(msg);
    }

    /// Queued messages, all classes.
    pub(crate) fn len(&self) -> usize {
        self.classes.iter().map(Queue::len).sum()
    }

    /// Consumer side: the next message, top class first, then weighted round robin.
    pub(crate) fn pop(&self) -> Option<M> {
        if let Some(msg) = self.classes[0].pop() {
            return Some(msg);
        }
        // Class indices fit in `u32` (the position is stored so to stay small).
        let lower = self.weights.len() as u32;
        if lower == 0 {
            return None;
        }
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let (mut class, mut credit) = (self.class.load(relaxed), self.credit.load(relaxed));
        // Weighted round robin over classes 1..=lower: serve the current class while it has
        // credit and messages, then move on with fresh credit. Two passes cover a class that was
        // skipped for lack of credit on the first.
        let mut found = None;
        for _ in 0..2 * lower {
            if class == 0 || class > lower {
                class = 1;
                credit = self.weights[0];
            }
            if credit > 0
                && let Some(msg) = self.classes[class as usize].pop()
            {
                credit -= 1;
                found = Some(msg);
                break;
            }
            class += 1;
            if class <= lower {
                credit = self.weights[class as usize - 1];
            }
        }
        self.class.store(class, relaxed);
        self.credit.store(credit, relaxed);
        found
    }
}

impl<M> Conflating<M> {
    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    unsafe fn push_locked(&self, msg: M, key: Option<u64>) -> Pushed<M> {
        // SAFETY: exclusive per the contract.
        self.state.with_mut(|state| {
            let state = unsafe { &mut *state };
            match key {
                Some(k) => {
                    if let Some(old) = state.keyed.insert(k, msg) {
                        let n = self.conflated.load(Ordering::Relaxed);
                        self.conflated.store(n + 1, Ordering::Relaxed);
                        return Pushed::Replaced(old);
                    }
                    state.order.push_back(Slot::Keyed(k));
                }
                None => state.order.push_back(Slot::Plain(msg)),
            }
            let len = self.len.load(Ordering::Relaxed);
            self.len.store(len + 1, Ordering::Release);
            Pushed::Queued
        })
    }

    /// # Safety
    ///
    /// The caller holds the mailbox's `LOCKED`.
    unsafe fn pop_locked(&self) -> Option<M> {
        // SAFETY: exclusive per the contract.
        self.state.with_mut(|state| {
            let state = unsafe { &mut *state };
            loop {
                let msg = match state.order.pop_front()? {
                    Slot::Plain(msg) => Some(msg),
                    Slot::Keyed(k) => state.keyed.remove(&k),
                };
                if let Some(msg) = msg {
                    let len = self.len.load(Ordering::Relaxed);
                    self.len.store(len - 1, Ordering::Release);
                    return Some(msg);
                }
            }
        })
    }
}
