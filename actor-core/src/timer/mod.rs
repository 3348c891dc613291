//! Per-actor timers: single-shot (`send_after`) and fixed-rate (`send_interval`), keyed.
//!
//! The timers of an actor live in its own loop: a table of entries and a heap of their deadlines.
//! The actor's loop looks at the earliest deadline before it looks at its user messages (so a
//! tick that falls due overtakes queued user messages, as system messages do). When it is not
//! yet due, the loop arms the system's timer wheel ([`wheel`]) with its task's waker for that
//! deadline, unless an earlier arm that has not fired already covers it: a tick costs one wake-up
//! and one poll of the actor, with no task and no tokio `Sleep` of its own and no trip through the
//! system lane. While that arm has not fired (the wheel's epoch has not moved), no timer can be
//! due, so the loop does not read the clock for every message an actor with running timers
//! handles. A fixed-rate timer has at most one tick due: ticks that fall due while the actor
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

use self::wheel::{Arm, FarKey, Wheel};

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

#[repr(C)]
pub(crate) struct Timers<M> {
    // `repr(C)`, in this order: what a tick reads comes first, so that it takes as few cache
    // lines as it can (an actor's timers are cold when its tick comes; see `Extras`).
    /// Deadlines, earliest first, with lazy deletion (see `Entry::deadline`). An item whose index
    /// has been reused by a later timer with the same deadline is that timer's item as much as
    /// its own: either fires it at its deadline, and the other is then stale.
    heap: Deadlines,
    /// The earliest deadline the wheel will wake this actor at, if armed.
    armed: Option<Instant>,
    /// The wheel's epoch just before that arm (see [`Timers::poll_due`]).
    armed_epoch: u64,
    /// The wheel that wakes this actor: the system's, or its dedicated thread's.
    wheel: Arc<Wheel>,
    /// The entries, by index: a timer's id.
    entries: Slab<M>,
    /// The key of that arm when it is a far one, to take it back when it is no longer needed.
    far: Option<FarKey>,
    /// Each key's entry, by its index in `entries`.
    by_key: HashMap<TimerKey, usize, FxBuildHasher>,
}

/// A timer that [`Timers::poll_due`] found due, and the clock it was found due by; give it to
/// [`Timers::fire`] or [`Timers::skip`].
pub(crate) struct Due {
    id: usize,
    now: Instant,
}

impl<M: Send + 'static> Timers<M> {
    /// Timers that `wheel` wakes.
    pub(crate) fn new(wheel: Arc<Wheel>) -> Self {
        Self {
            by_key: HashMap::default(),
            entries: Slab::default(),
            heap: Deadlines::default(),
            wheel,
            armed: None,
            far: None,
            armed_epoch: 0,
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
        // Not `cancel`: a replaced timer keeps the wheel's arm, which the next poll reuses if it
        // comes soon enough.
        if let Some(old) = self.by_key.remove(&key) {
            self.entries.remove(old);
        }
        self.compact();
        let entry = Entry {
            key: key.clone(),
            payload,
            deadline,
        };
        let id = self.entries.insert(entry);
        self.by_key.insert(key, id);
        self.heap.push((deadline, id));
    }

    /// Whether no timer is active (the loop then skips polling).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.live == 0
    }

    /// A timer that is due, if any; otherwise arms the wheel with `cx`'s waker for the earliest
    /// deadline.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Option<Due> {
        // Armed for a deadline no later than the earliest one, and no arm has fired since: that
        // arm has not, so no timer is due yet (when one is, the wheel fires the arm, which moves
        // the epoch, and wakes the task). This spares a clock read per message to an actor whose
        // timers run (a ticking room taking its players' inputs); a tick counts as due once the
        // wheel fires it.
        if let (Some(armed), Some((first, _))) = (self.armed, self.heap.peek())
            && armed <= first
            && self.wheel.epoch() == self.armed_epoch
        {
            return None;
        }
        // Read before the clock: see below.
        let epoch = self.wheel.epoch();
        let now = Instant::now();
        #[cfg(test)]
        tests::CLOCK_READS.set(tests::CLOCK_READS.get() + 1);
        loop {
            let (deadline, id) = self.heap.peek()?;
            if self.entries.get(id).is_none_or(|e| e.deadline != deadline) {
                self.heap.pop();
                continue;
            }
            if deadline <= now {
                self.heap.pop();
                return Some(Due { id, now });
            }
            if self
                .armed
                .is_some_and(|armed| armed <= deadline && armed > now)
            {
                // The arm out covers the earliest deadline and had not fired when `epoch` was
                // read: a driver reads the clock before it fires an arm and moves the epoch
                // after, so had it fired, `epoch` would have shown the move and the clock read
                // since would be past the arm's deadline. So the epoch moved for other actors'
                // arms, and the fast path above may trust this arm again until it moves once
                // more. Without this, once any other arm fired, a busy actor with timers read
                // the clock for every message until its own arm fired.
                self.armed_epoch = epoch;
                return None;
            }
            self.arm_until(deadline, now, cx);
            return None;
        }
    }

    /// Makes sure the wheel wakes this actor once `deadline` has passed: an earlier arm that has
    /// not fired does (the actor looks again when it fires); otherwise a new arm, which replaces
    /// a far one. For the actor's timers and its receive timeout alike (the loop checks the
    /// receive deadline on every park, so a far arm taken back with the last timer is renewed).
    pub(crate) fn arm_until(&mut self, deadline: Instant, now: Instant, cx: &Context<'_>) {
        let wheel = &self.wheel;
        if self
            .armed
            .is_some_and(|armed| armed <= deadline && armed > now)
        {
            return;
        }
        if let Some(far) = self.far.take() {
            wheel.disarm(far);
        }
        self.armed_epoch = wheel.epoch();
        (self.armed, self.far) = match wheel.arm(deadline, cx.waker()) {
            Arm::Near => (Some(deadline), None),
            Arm::Far(key) => (Some(deadline), Some(key)),
            // Woken already: the next poll looks at the clock.
            Arm::Now => (None, None),
        };
    }

    /// The message of a due timer (from [`Timers::poll_due`]): a single-shot timer is removed, a
    /// fixed-rate one is due next at the first point of its grid after now.
    pub(crate) fn fire(&mut self, due: Due) -> Option<M> {
        self.advance(due, true)
    }

    /// Lets a due tick pass unhandled (the actor is suspended or has no state).
    pub(crate) fn skip(&mut self, due: Due) {
        drop(self.advance(due, false));
    }

    fn advance(&mut self, Due { id, now }: Due, make: bool) -> Option<M> {
        let entry = self.entries.get_mut(id)?;
        match &entry.payload {
            Payload::Repeat { make: f, period } => {
                let mut next = entry.deadline + *period;
                if next <= now {
                    // Skipped ticks: the first grid point after now.
                    let behind = now.duration_since(entry.deadline).as_nanos();
                    let period_ns = period.as_nanos().max(1);
                    let steps = u32::try_from(behind / period_ns + 1).unwrap_or(u32::MAX);
                    next = entry.deadline + period.saturating_mul(steps);
                }
                entry.deadline = next;
                self.heap.push((next, id));
                make.then(f)
            }
            Payload::Once(_) => {
                let entry = self.entries.remove(id)?;
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
                self.entries.remove(id);
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
        if self.heap.len() > 2 * self.entries.live + 16 {
            self.heap = self
                .entries
                .iter()
                .map(|(id, e)| (e.deadline, id))
                .collect();
        }
    }

    /// With no timer left, lets go of the stale deadlines and takes back a far arm (which would
    /// keep the actor's task alive until its deadline). An arm in the ring stays: it fires
    /// within `wheel::RING` ms, and a timer started before then may reuse it.
    fn tidy(&mut self) {
        if self.entries.live == 0 {
            self.heap.clear();
            self.entries.clear();
            self.disarm_far();
        }
    }
}

/// The timers' entries by index (a free index is reused), index 0 kept in the timers' own
/// struct. A tick costs an index, not a hash lookup, and an actor with one timer finds it without
/// another cache miss once its timers have gone cold since its last tick.
#[repr(C)]
struct Slab<M> {
    // `repr(C)`: index 0 and the live count first (see `Timers`).
    zero: Option<Entry<M>>,
    /// Live entries.
    live: usize,
    /// Indexes handed out so far (free or live).
    used: usize,
    /// Indexes 1 and up.
    more: Vec<Option<Entry<M>>>,
    /// Freed indexes, reused first.
    free: Vec<usize>,
}

impl<M> Default for Slab<M> {
    fn default() -> Self {
        Self {
            zero: None,
            more: Vec::new(),
            free: Vec::new(),
            used: 0,
            live: 0,
        }
    }
}

impl<M> Slab<M> {
    fn slot(&mut self, id: usize) -> Option<&mut Option<Entry<M>>> {
        match id {
            0 => Some(&mut self.zero),
            _ => self.more.get_mut(id - 1),
        }
    }

    fn get(&self, id: usize) -> Option<&Entry<M>> {
        match id {
            0 => self.zero.as_ref(),
            _ => self.more.get(id - 1)?.as_ref(),
        }
    }

    fn get_mut(&mut self, id: usize) -> Option<&mut Entry<M>> {
        self.slot(id)?.as_mut()
    }

    fn insert(&mut self, entry: Entry<M>) -> usize {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.used += 1;
                if self.used > 1 {
                    self.more.push(None);
                }
                self.used - 1
            }
        };
        if let Some(slot) = self.slot(id) {
            *slot = Some(entry);
            self.live += 1;
        }
        id
    }

    fn remove(&mut self, id: usize) -> Option<Entry<M>> {
        let entry = self.slot(id)?.take()?;
        self.free.push(id);
        self.live -= 1;
        Some(entry)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Entry<M>)> {
        let rest = self.more.iter().enumerate();
        let rest = rest.filter_map(|(i, e)| Some((i + 1, e.as_ref()?)));
        self.zero.as_ref().map(|e| (0, e)).into_iter().chain(rest)
    }
}

/// A min-heap of (deadline, entry index) whose earliest item is kept out of the heap's buffer,
/// in the timers' own struct: an actor with one timer (a game room's tick) then never touches
/// the buffer, which would be one more cache miss per tick once its timers have gone cold.
#[derive(Default)]
#[repr(C)]
struct Deadlines {
    first: Option<(Instant, usize)>,
    rest: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Deadlines {
    fn peek(&self) -> Option<(Instant, usize)> {
        self.first
    }

    fn pop(&mut self) -> Option<(Instant, usize)> {
        let first = self.first.take();
        self.first = self.rest.pop().map(|Reverse(item)| item);
        first
    }

    fn push(&mut self, item: (Instant, usize)) {
        match self.first {
            None => self.first = Some(item),
            Some(first) if item < first => {
                self.rest.push(Reverse(first));
                self.first = Some(item);
            }
            Some(_) => self.rest.push(Reverse(item)),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

impl FromIterator<(Instant, usize)> for Deadlines {
    fn from_iter<I: IntoIterator<Item = (Instant, usize)>>(items: I) -> Self {
        let mut rest: BinaryHeap<_> = items.into_iter().map(Reverse).collect();
        let first = rest.pop().map(|Reverse(item)| item);
        Self { first, rest }
    }
}

impl<M> Timers<M> {
    fn disarm_far(&mut self) {
        if let Some(far) = self.far.take() {
            self.wheel.disarm(far);
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

    thread_local! {
        /// Clock reads by `Timers::poll_due` on this thread.
        pub(super) static CLOCK_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Other actors' arms firing move the wheel's epoch; an actor whose own arm still stands
    /// reads the clock once to find that out, not on every poll after (every message to a busy
    /// actor with timers), and its tick still comes when its arm fires.
    #[tokio::test(start_paused = true)]
    async fn an_arm_that_stands_is_trusted_again_after_other_arms_fire() {
        let (mut timers, wheel) = with_wheel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let start = Instant::now();
        timers.start_interval("tick".into(), Duration::from_millis(50), Box::new(|| 0));
        assert!(timers.poll_due(&mut cx).is_none());
        let mut other: Timers<u32> = Timers::new(Arc::clone(&wheel));
        other.start_once("soon".into(), Duration::from_millis(10), 1);
        assert!(other.poll_due(&mut cx).is_none());
        let epoch = wheel.epoch();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_ne!(wheel.epoch(), epoch, "the other arm fired");
        let reads = CLOCK_READS.get();
        for _ in 0..3 {
            assert!(timers.poll_due(&mut cx).is_none());
        }
        assert_eq!(
            CLOCK_READS.get() - reads,
            1,
            "one clock read, then the arm is trusted"
        );
        tokio::time::sleep_until(start + Duration::from_millis(50)).await;
        tokio::task::yield_now().await;
        let due = timers
            .poll_due(&mut cx)
            .expect("the tick, once its arm fired");
        assert_eq!(timers.fire(due), Some(0));
    }

    /// A timer restarted over and over beside a sooner one (whose deadline keeps the stale items
    /// of the restarted one from reaching the top of the heap) leaves a bounded heap.
    #[tokio::test(start_paused = true)]
    async fn restarting_a_timer_does_not_grow_the_heap() {
        let (mut timers, _wheel) = with_wheel();
        timers.start_interval("tick".into(), Duration::from_millis(50), Box::new(|| 0));
        for n in 0..10_000 {
            timers.start_once("idle".into(), Duration::from_secs(30), n);
        }
        assert_eq!(timers.entries.live, 2);
        assert!(timers.entries.more.len() <= 2, "freed entries are reused");
        assert!(
            timers.heap.len() <= 2 * timers.entries.live + 17,
            "{} heap items for 2 timers",
            timers.heap.len()
        );
        assert!(timers.contains(&"idle".into()) && timers.contains(&"tick".into()));
    }

    fn with_wheel() -> (Timers<u32>, Arc<Wheel>) {
        let wheel = Wheel::new(tokio::runtime::Handle::current());
        (Timers::new(Arc::clone(&wheel)), wheel)
    }

    #[tokio::test(start_paused = true)]
    async fn an_arm_that_fires_first_is_reused_and_a_sooner_deadline_arms_again() {
        let (mut timers, wheel) = with_wheel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        timers.start_interval("tick".into(), Duration::from_millis(50), Box::new(|| 0));
        assert!(timers.poll_due(&mut cx).is_none());
        assert_eq!(wheel.armed(), 1);
        timers.start_once("later".into(), Duration::from_millis(100), 1);
        assert!(timers.poll_due(&mut cx).is_none());
        assert_eq!(
            wheel.armed(),
            1,
            "the 50 ms arm wakes the actor before 100 ms"
        );
        timers.start_once("sooner".into(), Duration::from_millis(10), 2);
        assert!(timers.poll_due(&mut cx).is_none());
        assert_eq!(wheel.armed(), 2, "10 ms needs an arm of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_arm_is_taken_back_when_no_timer_needs_it() {
        let (mut timers, wheel) = with_wheel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        timers.start_once("idle".into(), Duration::from_secs(30), 0);
        assert!(timers.poll_due(&mut cx).is_none());
        assert_eq!(wheel.armed(), 1);
        assert!(timers.cancel(&"idle".into()));
        assert_eq!(wheel.armed(), 0, "cancelled");
        timers.start_once("idle".into(), Duration::from_secs(30), 0);
        assert!(timers.poll_due(&mut cx).is_none());
        assert_eq!(wheel.armed(), 1);
        drop(timers);
        assert_eq!(wheel.armed(), 0, "the actor's timers are gone");
    }

    #[test]
    fn deadlines_pop_in_order_whatever_the_order_of_pushes() {
        let base = Instant::now();
        let mut deadlines = Deadlines::default();
        let mut reference = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2_000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) {
                reference.sort();
                let expected = (!reference.is_empty()).then(|| reference.remove(0));
                assert_eq!(deadlines.pop(), expected, "pop in round {round}");
            } else {
                let item = (base + Duration::from_micros(x % 1_000), round);
                deadlines.push(item);
                reference.push(item);
            }
            assert_eq!(deadlines.len(), reference.len());
        }
        let rebuilt: Deadlines = reference.iter().copied().collect();
        reference.sort();
        let mut rebuilt = rebuilt;
        for expected in reference {
            assert_eq!(rebuilt.pop(), Some(expected));
        }
        assert_eq!(rebuilt.peek(), None);
    }

    #[test]
    fn the_slab_reuses_freed_indexes_and_keeps_index_zero_inline() {
        let entry = |n: u32| Entry {
            key: TimerKey::from(u64::from(n)),
            payload: Payload::Once(n),
            deadline: Instant::now(),
        };
        let mut slab = Slab::default();
        assert_eq!(slab.insert(entry(0)), 0);
        assert!(slab.more.is_empty(), "index 0 is inline");
        assert_eq!(slab.insert(entry(1)), 1);
        assert_eq!(slab.insert(entry(2)), 2);
        assert!(matches!(
            slab.remove(1),
            Some(Entry {
                payload: Payload::Once(1),
                ..
            })
        ));
        assert!(slab.remove(1).is_none(), "already removed");
        assert!(slab.get(1).is_none());
        assert_eq!(slab.insert(entry(3)), 1, "a freed index is reused");
        assert!(slab.remove(7).is_none(), "never handed out");
        let live: Vec<usize> = slab.iter().map(|(id, _)| id).collect();
        assert_eq!(live, [0, 1, 2]);
        assert_eq!(slab.live, 3);
        assert!(matches!(
            slab.get(1),
            Some(Entry {
                payload: Payload::Once(3),
                ..
            })
        ));
    }
}
