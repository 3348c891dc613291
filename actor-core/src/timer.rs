//! Per-actor timers: single-shot (`send_after`) and fixed-rate (`send_interval`), keyed.
//!
//! The timers of an actor live in its own loop: a table of entries, a heap of their deadlines, and
//! one tokio `Sleep` set to the earliest. The actor's loop polls that sleep before it looks at its
//! user messages (so a tick that falls due overtakes queued user messages, as system messages
//! do), and the timer wheel wakes the actor's task itself when the sleep elapses: a tick costs
//! one wake-up and one poll of the actor, with no task of its own and no trip through the system
//! lane. A fixed-rate timer has at most one tick due: ticks that fall due while the actor is busy
//! are skipped (the next deadline is the first point of the grid after now), never burst.
//! Cancelling removes the entry, so a tick that was due is discarded. All timers are cancelled
//! when the actor stops or restarts.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustc_hash::FxBuildHasher;
use tokio::time::{Instant, Sleep};

/// Names a timer of one actor. Starting a timer with a key that is in use replaces that timer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TimerKey(Cow<'static, str>);

impl From<&'static str> for TimerKey {
    fn from(s: &'static str) -> Self {
        Self(Cow::Borrowed(s))
    }
}

impl From<String> for TimerKey {
    fn from(s: String) -> Self {
        Self(Cow::Owned(s))
    }
}

impl From<u64> for TimerKey {
    fn from(n: u64) -> Self {
        Self(Cow::Owned(n.to_string()))
    }
}

impl fmt::Debug for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerKey({})", self.0)
    }
}

enum Payload<M> {
    Once(M),
    Repeat {
        make: Box<dyn Fn() -> M + Send>,
        period: Duration,
    },
}

struct Entry<M> {
    key: TimerKey,
    payload: Payload<M>,
    /// When the timer is due next; the heap's item for this entry carries the same instant (an
    /// item whose instant differs, or whose entry is gone, is stale and skipped).
    deadline: Instant,
}

pub(crate) struct Timers<M> {
    by_key: HashMap<TimerKey, u64, FxBuildHasher>,
    entries: HashMap<u64, Entry<M>, FxBuildHasher>,
    /// Deadlines, earliest first, with lazy deletion (see `Entry::deadline`).
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Set to the earliest live deadline when polled; registers the actor's task with tokio's
    /// timer wheel. Boxed: `Sleep` is `!Unpin`, and most actors never start a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    next: u64,
}

impl<M: Send + 'static> Timers<M> {
    pub(crate) fn new() -> Self {
        Self {
            by_key: HashMap::default(),
            entries: HashMap::default(),
            heap: BinaryHeap::new(),
            sleep: None,
            next: 0,
        }
    }

    pub(crate) fn start_once(&mut self, key: TimerKey, delay: Duration, msg: M) {
        self.insert(key, Payload::Once(msg), Instant::now() + delay);
    }

    pub(crate) fn start_interval(
        &mut self,
        key: TimerKey,
        period: Duration,
        make: Box<dyn Fn() -> M + Send>,
    ) {
        let period = period.max(Duration::from_millis(1));
        self.insert(
            key,
            Payload::Repeat { make, period },
            Instant::now() + period,
        );
    }

    fn insert(&mut self, key: TimerKey, payload: Payload<M>, deadline: Instant) {
        // Not `cancel`: a replaced timer keeps the sleep (re-armed at the next poll) instead of
        // dropping and re-allocating it.
        if let Some(old) = self.by_key.remove(&key) {
            self.entries.remove(&old);
        }
        self.compact();
        self.next += 1;
        let id = self.next;
        self.by_key.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                key,
                payload,
                deadline,
            },
        );
        self.heap.push(Reverse((deadline, id)));
    }

    /// Whether no timer is active (the loop then skips polling).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The id of a timer that is due, if any; otherwise registers `cx`'s waker for the earliest
    /// deadline. Call [`Timers::fire`] or [`Timers::skip`] with the id.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Option<u64> {
        loop {
            let &Reverse((deadline, id)) = self.heap.peek()?;
            if self.entries.get(&id).is_none_or(|e| e.deadline != deadline) {
                self.heap.pop();
                continue;
            }
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            return match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.heap.pop();
                    Some(id)
                }
                Poll::Pending => None,
            };
        }
    }

    /// The message of a due timer (from [`Timers::poll_due`]): a single-shot timer is removed, a
    /// fixed-rate one is due next at the first point of its grid after now.
    pub(crate) fn fire(&mut self, id: u64) -> Option<M> {
        self.advance(id, true)
    }

    /// Lets a due tick pass unhandled (the actor is suspended or has no state).
    pub(crate) fn skip(&mut self, id: u64) {
        drop(self.advance(id, false));
    }

    fn advance(&mut self, id: u64, make: bool) -> Option<M> {
        let entry = self.entries.get_mut(&id)?;
        match &entry.payload {
            Payload::Repeat { make: f, period } => {
                let now = Instant::now();
                let mut next = entry.deadline + *period;
                if next <= now {
                    // Skipped ticks: the first grid point after now.
                    let behind = now.duration_since(entry.deadline).as_nanos();
                    let period_ns = period.as_nanos().max(1);
                    let steps = u32::try_from(behind / period_ns + 1).unwrap_or(u32::MAX);
                    next = entry.deadline + period.saturating_mul(steps);
                }
                entry.deadline = next;
                self.heap.push(Reverse((next, id)));
                make.then(f)
            }
            Payload::Once(_) => {
                let entry = self.entries.remove(&id)?;
                self.by_key.remove(&entry.key);
                self.tidy();
                match entry.payload {
                    Payload::Once(msg) => Some(msg),
                    Payload::Repeat { .. } => None,
                }
            }
        }
    }

    pub(crate) fn cancel(&mut self, key: &TimerKey) -> bool {
        match self.by_key.remove(key) {
            Some(id) => {
                self.entries.remove(&id);
                self.tidy();
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub(crate) fn cancel_all(&mut self) {
        self.by_key.clear();
        self.entries.clear();
        self.tidy();
    }

    /// Rebuilds the heap from the live entries once stale items (of cancelled or replaced
    /// timers, removed lazily) outnumber them: a timer restarted on every message (an idle
    /// timeout, say) would otherwise leave one stale item per restart until its deadline passed.
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.entries.len() + 16 {
            self.heap = self
                .entries
                .iter()
                .map(|(&id, e)| Reverse((e.deadline, id)))
                .collect();
        }
    }

    /// With no timer left, lets go of the stale deadlines and the sleep (unregistering it).
    fn tidy(&mut self) {
        if self.entries.is_empty() {
            self.heap.clear();
            self.sleep = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer restarted over and over beside a sooner one (whose deadline keeps the stale items
    /// of the restarted one from reaching the top of the heap) leaves a bounded heap.
    #[test]
    fn restarting_a_timer_does_not_grow_the_heap() {
        let mut timers = Timers::<u32>::new();
        timers.start_interval("tick".into(), Duration::from_millis(50), Box::new(|| 0));
        for n in 0..10_000 {
            timers.start_once("idle".into(), Duration::from_secs(30), n);
        }
        assert_eq!(timers.entries.len(), 2);
        assert!(
            timers.heap.len() <= 2 * timers.entries.len() + 17,
            "{} heap items for 2 timers",
            timers.heap.len()
        );
        assert!(timers.contains(&"idle".into()) && timers.contains(&"tick".into()));
    }
}
