//! Test helpers: a [`TestProbe`] is an `ActorRef<M>` whose received messages a test inspects,
//! with timeouts. Combine with `#[tokio::test(start_paused = true)]` to test timers, receive
//! timeouts and backoff without sleeping.
//!
//! The `expect_*` methods panic with a clear message when the expectation fails: they are test
//! assertions.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::actor_ref::{ActorRef, RefTarget, TrySendError};
use crate::cell::Watcher;
use crate::dead_letters::DeadLetterReason;
use crate::failure::{Terminated, TerminationReason};
use crate::path::{ActorId, ActorPath};
use crate::system::ActorSystem;

/// A stand-in actor for tests.
///
/// ```
/// use actor_core::{ActorSystem, testkit::TestProbe};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let system = ActorSystem::new(Default::default()).unwrap();
/// let mut probe = TestProbe::<String>::new(&system);
/// probe.actor_ref().tell("hello".to_owned());
/// assert_eq!(probe.expect_msg(Duration::from_secs(1)).await, "hello");
/// probe.expect_no_msg(Duration::from_millis(100)).await;
/// # }
/// ```
pub struct TestProbe<M: Send + 'static> {
    rx: mpsc::UnboundedReceiver<M>,
    actor_ref: ActorRef<M>,
    target: Arc<ProbeTarget<M>>,
    term_tx: mpsc::UnboundedSender<Terminated>,
    term_rx: mpsc::UnboundedReceiver<Terminated>,
    early: Vec<Terminated>,
}

struct ProbeTarget<M> {
    id: ActorId,
    path: ActorPath,
    tx: mpsc::UnboundedSender<M>,
    system: ActorSystem,
    watchers: Mutex<Vec<Watcher>>,
}

impl<M: Send + 'static> RefTarget<M> for ProbeTarget<M> {
    fn id(&self) -> ActorId {
        self.id
    }
    fn path(&self) -> ActorPath {
        self.path.clone()
    }
    fn tell(&self, msg: M) {
        if self.tx.send(msg).is_err() {
            self.system.shared().dead_letters.record(
                &self.path,
                std::any::type_name::<M>(),
                DeadLetterReason::Stopped,
            );
        }
    }
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        self.tx.send(msg).map_err(|e| TrySendError::Closed(e.0))
    }
    fn watch(&self, watcher: Watcher) {
        self.watchers.lock().push(watcher);
    }
    fn unwatch(&self, watcher: ActorId) {
        self.watchers.lock().retain(|w| w.id() != watcher);
    }
    fn stop(&self) {}
    fn system(&self) -> Option<ActorSystem> {
        Some(self.system.clone())
    }
    fn ask_timeout(&self) -> Duration {
        self.system.config().ask_timeout
    }
}

impl<M: Send + 'static> TestProbe<M> {
    /// A probe in `system`, with path `/temp/probe-<id>`.
    pub fn new(system: &ActorSystem) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (term_tx, term_rx) = mpsc::unbounded_channel();
        let id = system.allocate_id();
        let target = Arc::new(ProbeTarget {
            id,
            path: ActorPath::from_string(format!("/temp/probe-{}", id.as_u64())),
            tx,
            system: system.clone(),
            watchers: Mutex::new(Vec::new()),
        });
        let actor_ref = ActorRef::from_target(target.clone());
        Self {
            rx,
            actor_ref,
            target,
            term_tx,
            term_rx,
            early: Vec::new(),
        }
    }

    /// The probe's ref, to hand to the actors under test.
    pub fn actor_ref(&self) -> ActorRef<M> {
        self.actor_ref.clone()
    }

    /// The next message, or `None` after `timeout`.
    pub async fn receive(&mut self, timeout: Duration) -> Option<M> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message; panics if none arrives within `timeout`.
    pub async fn expect_msg(&mut self, timeout: Duration) -> M {
        match self.receive(timeout).await {
            Some(msg) => msg,
            None => panic!(
                "{}: expected a {} within {timeout:?}, got nothing",
                self.target.path,
                std::any::type_name::<M>()
            ),
        }
    }

    /// Panics if a message arrives within `duration`.
    pub async fn expect_no_msg(&mut self, duration: Duration) {
        if self.receive(duration).await.is_some() {
            panic!(
                "{}: expected no message within {duration:?}, got one",
                self.target.path
            );
        }
    }

    /// Watches `actor`: its end becomes visible to [`TestProbe::expect_terminated`].
    pub fn watch<N: Send + 'static>(&self, actor: &ActorRef<N>) {
        let tx = self.term_tx.clone();
        actor.add_watcher(Watcher::from_fn(self.target.id, move |t| {
            let _ = tx.send(t);
        }));
    }

    /// Waits for `actor` (watched with [`TestProbe::watch`]) to end; panics after `timeout`.
    pub async fn expect_terminated<N: Send + 'static>(
        &mut self,
        actor: &ActorRef<N>,
        timeout: Duration,
    ) -> Terminated {
        let id = actor.id();
        if let Some(pos) = self.early.iter().position(|t| t.id == id) {
            return self.early.remove(pos);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.term_rx.recv()).await {
                Ok(Some(t)) if t.id == id => return t,
                Ok(Some(other)) => self.early.push(other),
                _ => panic!(
                    "{}: expected {} to terminate within {timeout:?}",
                    self.target.path,
                    actor.path()
                ),
            }
        }
    }
}

impl<M: Send + 'static> Drop for TestProbe<M> {
    fn drop(&mut self) {
        let watchers = std::mem::take(&mut *self.target.watchers.lock());
        for w in watchers {
            w.notify(Terminated {
                id: self.target.id,
                path: self.target.path.clone(),
                reason: TerminationReason::Stopped,
            });
        }
    }
}
