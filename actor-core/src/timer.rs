//! Per-actor timers: single-shot (`send_after`) and fixed-rate (`send_interval`), keyed.
//!
//! A timer is a small tokio task that puts `Timer { id }` on its actor's system lane; the payload
//! stays in the actor's own timer table. Cancelling removes the table entry, so a tick that is
//! already queued finds nothing and is discarded. A fixed-rate timer keeps at most one tick
//! queued: ticks that fall due while one is still waiting are skipped (game ticks are never burst).
//! All timers are cancelled when the actor stops or restarts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::cell::{SysTarget, SystemMsg};

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
    Once(Option<M>),
    Repeat {
        make: Box<dyn Fn() -> M + Send>,
        queued: Arc<AtomicBool>,
    },
}

struct Entry<M> {
    key: TimerKey,
    payload: Payload<M>,
    task: AbortHandle,
}

pub(crate) struct Timers<M> {
    by_key: HashMap<TimerKey, u64>,
    entries: HashMap<u64, Entry<M>>,
    next: u64,
}

impl<M: Send + 'static> Timers<M> {
    pub(crate) fn new() -> Self {
        Self {
            by_key: HashMap::new(),
            entries: HashMap::new(),
            next: 0,
        }
    }

    pub(crate) fn start_once(
        &mut self,
        handle: &tokio::runtime::Handle,
        target: Arc<dyn SysTarget>,
        key: TimerKey,
        delay: Duration,
        msg: M,
    ) {
        self.cancel(&key);
        let id = self.next_id();
        let deadline = Instant::now() + delay;
        let task = handle.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            target.send_sys(SystemMsg::Timer { id });
        });
        self.insert(id, key, Payload::Once(Some(msg)), task.abort_handle());
    }

    pub(crate) fn start_interval(
        &mut self,
        handle: &tokio::runtime::Handle,
        target: Arc<dyn SysTarget>,
        key: TimerKey,
        period: Duration,
        make: Box<dyn Fn() -> M + Send>,
    ) {
        self.cancel(&key);
        let id = self.next_id();
        let period = period.max(Duration::from_millis(1));
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let start = Instant::now() + period;
        let task = handle.spawn(async move {
            let mut interval = tokio::time::interval_at(start, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                // At most one tick waits in the mailbox; later ones are skipped, not burst.
                if !flag.swap(true, Ordering::AcqRel) && !target.send_sys(SystemMsg::Timer { id }) {
                    return;
                }
            }
        });
        self.insert(
            id,
            key,
            Payload::Repeat { make, queued },
            task.abort_handle(),
        );
    }

    fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn insert(&mut self, id: u64, key: TimerKey, payload: Payload<M>, task: AbortHandle) {
        self.by_key.insert(key.clone(), id);
        self.entries.insert(id, Entry { key, payload, task });
    }

    /// The message of a timer that fired, or `None` if it was cancelled meanwhile.
    pub(crate) fn fire(&mut self, id: u64) -> Option<M> {
        let entry = self.entries.get_mut(&id)?;
        match &mut entry.payload {
            Payload::Repeat { make, queued } => {
                queued.store(false, Ordering::Release);
                Some(make())
            }
            Payload::Once(msg) => {
                let msg = msg.take();
                if let Some(entry) = self.entries.remove(&id) {
                    self.by_key.remove(&entry.key);
                }
                msg
            }
        }
    }

    /// Skips a tick that arrived while the actor could not take it (suspended).
    pub(crate) fn skip(&mut self, id: u64) {
        if let Some(Entry {
            payload: Payload::Repeat { queued, .. },
            ..
        }) = self.entries.get(&id)
        {
            queued.store(false, Ordering::Release);
        }
    }

    pub(crate) fn cancel(&mut self, key: &TimerKey) -> bool {
        match self.by_key.remove(key) {
            Some(id) => {
                if let Some(entry) = self.entries.remove(&id) {
                    entry.task.abort();
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub(crate) fn cancel_all(&mut self) {
        for (_, entry) in self.entries.drain() {
            entry.task.abort();
        }
        self.by_key.clear();
    }
}
