//! Per-actor timers: single-shot (`send_after`) and fixed-rate (`send_interval`), keyed.
//!
//! The timers of an actor live in its own loop: a table of entries and a heap of their deadlines.
//! The actor's loop looks at the earliest deadline before it looks at its user messages (so a
//! tick that falls due overtakes queued user messages, as system messages do). When it is not
//! yet due, the loop arms the system's timer wheel ([`wheel`]) with its task's waker for that
//! deadline, unless an earlier arm that has not fired already covers it: a tick costs one wake-up
//! and one poll of the actor, with no task and no tokio `Sleep` of its own and no trip through the
//! system lane. A fixed-rate timer has at most one tick due: ticks that fall due while the actor
//! is busy are skipped (the next deadline is the first point of the grid after now), never burst.
//! Cancelling removes the entry, so a tick that was due is discarded. All timers are cancelled
//! when the actor stops or restarts.

pub(crate) mod wheel;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use rustc_hash::FxBuildHasher;
use tokio::time::Instant;

use self::wheel::{FarKey, Wheel};

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
    next: u64,
    /// The system's wheel, taken on the first start ([`Timers::set_wheel`]).
    wheel: Option<Arc<Wheel>>,
    /// The earliest deadline the wheel will wake this actor at, if armed.
    armed: Option<Instant>,
    /// The key of that arm when it is a far one, to take it back when it is no longer needed.
    far: Option<FarKey>,
    /// The clock as [`Timers::poll_due`] last read it, which [`Timers::fire`] reuses.
    now: Instant,
}

impl<M: Send + 'static> Timers<M> {
    pub(crate) fn new() -> Self {
        Self {
            by_key: HashMap::default(),
            entries: HashMap::default(),
            heap: BinaryHeap::new(),
            next: 0,
            wheel: None,
            armed: None,
            far: None,
            now: Instant::now(),
        }
    }

    /// Whether the system's wheel must still be given ([`Timers::set_wheel`]) before a start.
    #[inline]
    pub(crate) fn needs_wheel(&self) -> bool {
        self.wheel.is_none()
    }

    /// The wheel that wakes this actor; given once, before the first start.
    pub(crate) fn set_wheel(&mut self, wheel: Arc<Wheel>) {
        self.wheel = Some(wheel);
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
        // Not `cancel`: a replaced timer keeps the wheel's arm, which the next poll reuses if it
        // comes soon enough.
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

    /// The id of a timer that is due, if any; otherwise arms the wheel with `cx`'s waker for the
    /// earliest deadline. Call [`Timers::fire`] or [`Timers::skip`] with the id.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Option<u64> {
        let now = Instant::now();
        self.now = now;
        loop {
            let &Reverse((deadline, id)) = self.heap.peek()?;
            if self.entries.get(&id).is_none_or(|e| e.deadline != deadline) {
                self.heap.pop();
                continue;
            }
            if deadline <= now {
                self.heap.pop();
                return Some(id);
            }
            self.arm(deadline, now, cx);
            return None;
        }
    }

    /// Makes sure the wheel wakes this actor once `deadline` has passed: an earlier arm that has
    /// not fired does (the actor looks again when it fires); otherwise a new arm, which replaces
    /// a far one.
    fn arm(&mut self, deadline: Instant, now: Instant, cx: &Context<'_>) {
        let Some(wheel) = &self.wheel else {
            return;
        };
        if self
            .armed
            .is_some_and(|armed| armed <= deadline && armed > now)
        {
            return;
        }
        if let Some(far) = self.far.take() {
            wheel.disarm(far);
        }
        self.far = wheel.arm(deadline, cx.waker());
        self.armed = Some(deadline);
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
                // The clock when this tick was found due.
                let now = self.now;
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

    /// With no timer left, lets go of the stale deadlines and takes back a far arm (which would
    /// keep the actor's task alive until its deadline). An arm in the ring stays: it fires
    /// within `wheel::RING` ms, and a timer started before then may reuse it.
    fn tidy(&mut self) {
        if self.entries.is_empty() {
            self.heap.clear();
            self.disarm_far();
        }
    }
}

impl<M> Timers<M> {
    fn disarm_far(&mut self) {
        if let (Some(far), Some(wheel)) = (self.far.take(), &self.wheel) {
            wheel.disarm(far);
            self.armed = None;
        }
    }
}

impl<M> Drop for Timers<M> {
    fn drop(&mut self) {
        self.disarm_far();
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

    fn with_wheel() -> (Timers<u32>, Arc<Wheel>) {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        let mut timers = Timers::new();
        timers.set_wheel(Arc::clone(&wheel));
        (timers, wheel)
    }

    #[tokio::test(start_paused = true)]
    async fn an_arm_that_fires_first_is_reused_and_a_sooner_deadline_arms_again() {
        let (mut timers, wheel) = with_wheel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        timers.start_interval("tick".into(), Duration::from_millis(50), Box::new(|| 0));
        assert_eq!(timers.poll_due(&mut cx), None);
        assert_eq!(wheel.armed(), 1);
        timers.start_once("later".into(), Duration::from_millis(100), 1);
        assert_eq!(timers.poll_due(&mut cx), None);
        assert_eq!(
            wheel.armed(),
            1,
            "the 50 ms arm wakes the actor before 100 ms"
        );
        timers.start_once("sooner".into(), Duration::from_millis(10), 2);
        assert_eq!(timers.poll_due(&mut cx), None);
        assert_eq!(wheel.armed(), 2, "10 ms needs an arm of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_arm_is_taken_back_when_no_timer_needs_it() {
        let (mut timers, wheel) = with_wheel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        timers.start_once("idle".into(), Duration::from_secs(30), 0);
        assert_eq!(timers.poll_due(&mut cx), None);
        assert_eq!(wheel.armed(), 1);
        assert!(timers.cancel(&"idle".into()));
        assert_eq!(wheel.armed(), 0, "cancelled");
        timers.start_once("idle".into(), Duration::from_secs(30), 0);
        assert_eq!(timers.poll_due(&mut cx), None);
        assert_eq!(wheel.armed(), 1);
        drop(timers);
        assert_eq!(wheel.armed(), 0, "the actor's timers are gone");
    }
}
