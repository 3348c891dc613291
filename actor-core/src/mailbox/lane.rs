//! The user lanes of a mailbox: unbounded, bounded, priority classes and conflating.
//!
//! Every lane is multi-producer, single-consumer and keeps FIFO order per producer within a class.
//! A send takes one short lock on the lane's queue (a `VecDeque`, no allocation per message once
//! grown). The unbounded lane (the default) is a `sync::Deque` locked by the mailbox's state word,
//! so `super::Mailbox` pushes to it and takes from it itself; its consumer takes the whole queue
//! at once into its private batch (`Cursor`), so it pays the lock once per batch. The bounded,
//! priority and conflating lanes (`sync::Queue`s and a mutex of their own) pop one message at a
//! time, because capacity, class order and conflation must see every message that has not been
//! handled.
//! Wake-ups are not this module's business: `super::Mailbox` owns the wake protocol.

use std::collections::{HashMap, VecDeque};

use super::config::{LaneKind, MailboxConfig, Overflow};
use crate::sync::{AtomicUsize, Deque, Mutex, Ordering, Queue};

/// The result of a push that was accepted.
pub(crate) enum Pushed<M> {
    /// The message is queued.
    Queued,
    /// The message is queued or dropped per the overflow policy; this one was shed and must be
    /// counted as a dead letter by the caller.
    Shed(M),
}

/// The consumer's private state (kept out of the shared mailbox so its bookkeeping never bounces
/// between cores): the batch taken from an unbounded lane. Messages in the batch are still queued
/// as far as the actor is concerned: whoever drops a cursor must drain it first
/// ([`Cursor::drain`]). (The priority lane's round-robin position is that lane's own: every
/// byte here is in every actor's task.)
#[derive(Debug)]
pub(crate) struct Cursor<M> {
    pub(super) batch: VecDeque<M>,
}

impl<M> Default for Cursor<M> {
    fn default() -> Self {
        Self {
            batch: VecDeque::new(),
        }
    }
}

impl<M> Cursor<M> {
    /// Messages taken from the lane but not handed out yet.
    pub(crate) fn batched(&self) -> usize {
        self.batch.len()
    }

    /// Removes the messages of the batch.
    pub(crate) fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, M> {
        self.batch.drain(..)
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
    queue: Queue<M>,
    capacity: usize,
    overflow: Overflow,
    len: AtomicUsize,
    /// Senders parked in `send().await`.
    waiting: AtomicUsize,
    space: tokio::sync::Notify,
}

pub(crate) struct Priority<M> {
    classes: Box<[Queue<M>]>,
    classify: fn(&M) -> usize,
    weights: Box<[u32]>,
    /// The weighted round robin's position: the class being served (0: none yet) and the
    /// messages it may still take. Only the consumer pops (or, once the mailbox is closed, a
    /// producer draining it), so relaxed loads and stores suffice; they are atomics only so the
    /// lane stays `Sync`.
    class: std::sync::atomic::AtomicU32,
    credit: std::sync::atomic::AtomicU32,
}

pub(crate) struct Conflating<M> {
    key: fn(&M) -> Option<u64>,
    state: Mutex<ConflateState<M>>,
    len: AtomicUsize,
    conflated: AtomicUsize,
}

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
                queue: Queue::new(),
                capacity,
                overflow,
                len: AtomicUsize::new(0),
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
                state: Mutex::new(ConflateState {
                    order: VecDeque::new(),
                    keyed: HashMap::new(),
                }),
                len: AtomicUsize::new(0),
                conflated: AtomicUsize::new(0),
            })),
        }
    }

    /// Pushes per the lane's policy. `Err` hands the message back (bounded lane, full, `Fail`
    /// policy or `force_fail`). Not for the unbounded lane, which the mailbox pushes to under its
    /// own lock.
    #[inline]
    pub(crate) fn push(&self, msg: M, force_fail: bool) -> Result<Pushed<M>, M> {
        match self {
            UserLane::Unbounded(_) => {
                unreachable!("the mailbox pushes to its unbounded lane itself, under its lock")
            }
            UserLane::Bounded(b) => b.push(msg, force_fail),
            UserLane::Priority(p) => {
                let class = (p.classify)(&msg).min(p.classes.len() - 1);
                p.classes[class].push(msg);
                Ok(Pushed::Queued)
            }
            UserLane::Conflating(c) => {
                c.push(msg);
                Ok(Pushed::Queued)
            }
        }
    }

    /// Consumer side: the next message per the lane's order. Not for the unbounded lane, which
    /// the mailbox takes from under its own lock.
    #[inline]
    pub(crate) fn pop(&self) -> Option<M> {
        match self {
            UserLane::Unbounded(_) => {
                unreachable!("the mailbox takes from its unbounded lane itself, under its lock")
            }
            UserLane::Bounded(b) => b.pop(),
            UserLane::Priority(p) => p.pop(),
            UserLane::Conflating(c) => c.pop(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            UserLane::Unbounded(q) => q.is_empty(),
            UserLane::Bounded(b) => b.queue.is_empty(),
            UserLane::Priority(p) => p.classes.iter().all(Queue::is_empty),
            UserLane::Conflating(c) => c.len.load(Ordering::Acquire) == 0,
        }
    }

    /// Queued messages. Not for the unbounded lane, whose length the mailbox reads under its
    /// own lock.
    pub(crate) fn len(&self) -> usize {
        match self {
            UserLane::Unbounded(_) => {
                unreachable!("the mailbox reads its unbounded lane's length under its lock")
            }
            UserLane::Bounded(b) => b.queue.len(),
            UserLane::Priority(p) => p.classes.iter().map(Queue::len).sum(),
            UserLane::Conflating(c) => c.len.load(Ordering::Acquire),
        }
    }

    /// Messages replaced in a conflating lane so far (0 for other lanes).
    pub(crate) fn conflated(&self) -> usize {
        match self {
            UserLane::Conflating(c) => c.conflated.load(Ordering::Relaxed),
            _ => 0,
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
    fn push(&self, msg: M, force_fail: bool) -> Result<Pushed<M>, M> {
        let prev = self.len.fetch_add(1, Ordering::AcqRel);
        if prev < self.capacity {
            self.queue.push(msg);
            return Ok(Pushed::Queued);
        }
        if force_fail {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(msg);
        }
        match self.overflow {
            Overflow::Fail => {
                self.len.fetch_sub(1, Ordering::AcqRel);
                Err(msg)
            }
            Overflow::DropNewest => {
                self.len.fetch_sub(1, Ordering::AcqRel);
                Ok(Pushed::Shed(msg))
            }
            Overflow::DropOldest => {
                // The queue is multi-consumer, so a producer may evict the oldest entry. If the
                // consumer emptied it meanwhile, our increment of `len` simply stands.
                let evicted = self.queue.pop_locked();
                if evicted.is_some() {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                }
                self.queue.push(msg);
                Ok(evicted.map_or(Pushed::Queued, Pushed::Shed))
            }
        }
    }

    fn pop(&self) -> Option<M> {
        let msg = self.queue.pop()?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.space.notify_one();
        }
        Some(msg)
    }

    /// Where waiting senders are woken when a message leaves the lane.
    pub(crate) fn space(&self) -> &tokio::sync::Notify {
        &self.space
    }

    /// How many senders wait for room (the consumer notifies only when this is non-zero).
    pub(crate) fn waiting(&self) -> &AtomicUsize {
        &self.waiting
    }
}

impl<M> Priority<M> {
    fn pop(&self) -> Option<M> {
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
    fn push(&self, msg: M) {
        let mut state = self.state.lock();
        match (self.key)(&msg) {
            Some(k) => {
                if state.keyed.insert(k, msg).is_some() {
                    self.conflated.fetch_add(1, Ordering::Relaxed);
                } else {
                    state.order.push_back(Slot::Keyed(k));
                    self.len.fetch_add(1, Ordering::AcqRel);
                }
            }
            None => {
                state.order.push_back(Slot::Plain(msg));
                self.len.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn pop(&self) -> Option<M> {
        let mut state = self.state.lock();
        loop {
            let msg = match state.order.pop_front()? {
                Slot::Plain(msg) => Some(msg),
                Slot::Keyed(k) => state.keyed.remove(&k),
            };
            if let Some(msg) = msg {
                self.len.fetch_sub(1, Ordering::AcqRel);
                return Some(msg);
            }
        }
    }
}

impl<M> Bounded<M> {
    pub(crate) fn has_room(&self) -> bool {
        self.len.load(Ordering::Acquire) < self.capacity
    }
}
