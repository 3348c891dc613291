//! [`ActorRef<M>`]: the handle to an actor, typed by the messages it accepts.
//!
//! A ref to a local actor points straight at its cell (static dispatch on the send path). Other
//! targets (message adapters, test probes, actors on other nodes) sit behind the [`RefTarget`]
//! trait. A ref stays valid across restarts of its actor: restart keeps the cell and the mailbox.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::ask::{AskError, Reply};
use crate::cell::{Cell, SysTarget, Watcher};
use crate::failure::TerminationReason;
use crate::mailbox::Refused;
use crate::path::{ActorId, ActorPath};
use crate::system::ActorSystem;

/// The ask timeout used by targets that do not name one.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `try_tell` did not queue a message; the message is handed back.
pub enum TrySendError<M> {
    /// The bounded mailbox is full (overflow policy `Fail`).
    Full(M),
    /// The actor is stopped.
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(m) | TrySendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the actor's mailbox is full"),
            TrySendError::Closed(_) => f.write_str("the actor is stopped"),
        }
    }
}

impl<M> std::error::Error for TrySendError<M> {}

/// `send().await` failed because the actor is stopped; the message is handed back.
pub struct SendError<M>(pub M);

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the actor is stopped")
    }
}

impl<M> std::error::Error for SendError<M> {}

/// A snapshot of one actor's counters.
#[derive(Clone, Debug)]
pub struct ActorStats {
    /// The actor.
    pub path: ActorPath,
    /// User messages waiting in its mailbox (of those the actor has taken from it in one batch
    /// and not handled yet, at most 65,535 are counted).
    pub mailbox_depth: usize,
    /// User messages (timer messages included) it has handled. Brought up to date whenever the
    /// actor pauses (its mailbox is empty, or it has used its throughput budget) and when it
    /// ends: while it is busy, it may be up to its throughput (see
    /// [`crate::SystemConfig::throughput`]) behind. Counted modulo 2^48.
    pub processed: u64,
    /// Failures (errors and panics) so far.
    pub failures: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// Messages replaced by newer ones in a conflating mailbox.
    pub conflated: usize,
}

/// Something an [`ActorRef`] can point at other than a local actor: a message adapter, a test
/// probe, or a proxy for an actor on another node. Implementations must count every message they
/// cannot deliver as a dead letter.
pub trait RefTarget<M: Send + 'static>: Send + Sync + 'static {
    /// The target's identity (allocate with [`ActorSystem::allocate_id`] for proxies).
    fn id(&self) -> ActorId;
    /// The target's path.
    fn path(&self) -> ActorPath;
    /// Fire and forget; never blocks.
    fn tell(&self, msg: M);
    /// Queue or hand back.
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>>;
    /// Registers a watcher (notify it at once if the target already ended).
    fn watch(&self, watcher: Watcher);
    /// Removes a watcher.
    fn unwatch(&self, watcher: ActorId);
    /// Asks the target to stop gracefully.
    fn stop(&self);
    /// Stops the target without its stopped hook (defaults to `stop`).
    fn kill(&self) {
        self.stop()
    }
    /// The system this target lives in, for dead-letter accounting of late replies.
    fn system(&self) -> Option<ActorSystem> {
        None
    }
    /// The default ask timeout.
    fn ask_timeout(&self) -> Duration {
        DEFAULT_ASK_TIMEOUT
    }
    /// Where the target lives on another node, if it does: a ref to it then serializes as that
    /// address instead of being exported from this node (see [`crate::transport`]).
    fn wire_ref(&self) -> Option<crate::transport::WireRef> {
        None
    }
}

/// A handle to an actor that accepts messages of type `M`. Cheap to clone (one reference count),
/// `Send + Sync`, and independent of the actor's concrete type.
///
/// A ref to an actor that has ended keeps only the actor's cell (its mailbox, now closed, and its
/// identity: about 200 bytes), so that messages sent to it are counted as dead letters. The
/// actor's state and its tokio task are freed when it ends; its place in an
/// [`crate::ActorGroup`] when the group lets go of its ended members (in batches, see there).
pub struct ActorRef<M: Send + 'static> {
    inner: Inner<M>,
}

enum Inner<M: Send + 'static> {
    Local(Arc<Cell<M>>),
    Dyn(Arc<dyn RefTarget<M>>),
}

impl<M: Send + 'static> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Local(c) => Inner::Local(c.clone()),
            Inner::Dyn(d) => Inner::Dyn(d.clone()),
        };
        Self { inner }
    }
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn local(cell: Arc<Cell<M>>) -> Self {
        Self {
            inner: Inner::Local(cell),
        }
    }

    /// A ref backed by a custom target (transports, adapters, probes).
    pub fn from_target(target: Arc<dyn RefTarget<M>>) -> Self {
        Self {
            inner: Inner::Dyn(target),
        }
    }

    pub(crate) fn cell(&self) -> Option<&Arc<Cell<M>>> {
        match &self.inner {
            Inner::Local(c) => Some(c),
            Inner::Dyn(_) => None,
        }
    }

    /// Where the actor lives if it is on another node (`None` for local actors, adapters and
    /// probes): what transports send to.
    pub fn remote_wire_ref(&self) -> Option<crate::transport::WireRef> {
        match &self.inner {
            Inner::Local(_) => None,
            Inner::Dyn(d) => d.wire_ref(),
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        match &self.inner {
            Inner::Local(c) => c.core.id,
            Inner::Dyn(d) => d.id(),
        }
    }

    /// The actor's path.
    pub fn path(&self) -> ActorPath {
        match &self.inner {
            Inner::Local(c) => c.core.path(),
            Inner::Dyn(d) => d.path(),
        }
    }

    /// Sends without waiting. Never blocks; a message that cannot be queued (actor stopped,
    /// bounded mailbox full) is counted as a dead letter.
    #[inline]
    pub fn tell(&self, msg: M) {
        match &self.inner {
            Inner::Local(c) => c.tell(msg),
            Inner::Dyn(d) => d.tell(msg),
        }
    }

    /// Sends without waiting, handing the message back if it cannot be queued. A bounded mailbox
    /// with a `DropNewest`/`DropOldest` policy accepts (and sheds per its policy) instead of
    /// refusing.
    #[inline]
    pub fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        match &self.inner {
            Inner::Local(c) => c.try_tell(msg, false).map_err(|r| match r {
                Refused::Full(m) => TrySendError::Full(m),
                Refused::Closed(m) => TrySendError::Closed(m),
            }),
            Inner::Dyn(d) => d.try_tell(msg),
        }
    }

    /// Sends, waiting for room while a bounded mailbox is full (whatever its overflow policy).
    /// Fails only when the actor is stopped. For non-local targets this is `try_tell`.
    pub async fn send(&self, msg: M) -> Result<(), SendError<M>> {
        match &self.inner {
            Inner::Local(c) => {
                let mut msg = msg;
                loop {
                    match c.try_tell(msg, true) {
                        Ok(()) => return Ok(()),
                        Err(Refused::Closed(m)) => return Err(SendError(m)),
                        Err(Refused::Full(m)) => {
                            msg = m;
                            c.mailbox.wait_for_room().await;
                        }
                    }
                }
            }
            Inner::Dyn(d) => d.try_tell(msg).map_err(|e| SendError(e.into_inner())),
        }
    }

    /// Asks with the default timeout ([`crate::SystemConfig::ask_timeout`]). `make` builds the
    /// request around a reply port, usually an enum variant: `counter.ask(Msg::Get)`.
    pub async fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> M,
    ) -> Result<T, AskError> {
        let timeout = match &self.inner {
            Inner::Local(c) => c.core.system().config.ask_timeout,
            Inner::Dyn(d) => d.ask_timeout(),
        };
        self.ask_timeout(make, timeout).await
    }

    /// Asks with an explicit timeout.
    pub async fn ask_timeout<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> M,
        timeout: Duration,
    ) -> Result<T, AskError> {
        let (tx, rx) = oneshot::channel();
        let system = match &self.inner {
            Inner::Local(c) => Some(ActorSystem::from_shared(c.core.system().clone())),
            Inner::Dyn(d) => d.system(),
        };
        let request = make(Reply::asked(tx, system));
        if let Err(e) = self.try_tell(request) {
            return Err(match e {
                TrySendError::Full(_) => AskError::MailboxFull(self.path()),
                TrySendError::Closed(_) => AskError::Stopped(self.path()),
            });
        }
        // Most answers come within one scheduling round (an actor on this worker runs before we
        // are polled again): look once after yielding, and only then pay for a timer (registering
        // and removing one is more than half the cost of a local ask).
        let mut rx = rx;
        crate::yielding::yield_to_queue().await;
        let first = match rx.try_recv() {
            Ok(answer) => Some(Ok(answer)),
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(())),
            Err(oneshot::error::TryRecvError::Empty) => None,
        };
        let answer = match first {
            Some(Ok(answer)) => Ok(Ok(answer)),
            Some(Err(())) => Ok(Err(())),
            None => tokio::time::timeout(timeout, rx)
                .await
                .map(|r| r.map_err(|_| ())),
        };
        match answer {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(reason))) => Err(AskError::Lost {
                actor: self.path(),
                reason,
            }),
            Ok(Err(_)) => Err(AskError::NoReply(self.path())),
            Err(_) => Err(AskError::Timeout {
                actor: self.path(),
                timeout,
            }),
        }
    }

    /// A ref of another message type whose messages are mapped into this actor's (Akka's message
    /// adapter). Watching or stopping the adapter acts on the underlying actor.
    ///
    /// ```
    /// # use actor_core::{Actor, ActorRef, ActorResult, Context};
    /// enum RoomMsg { Said(String), Left(u64) }
    /// struct ChatLine(String);
    /// fn lines_for_room(room: &ActorRef<RoomMsg>) -> ActorRef<ChatLine> {
    ///     room.adapt(|ChatLine(text)| RoomMsg::Said(text))
    /// }
    /// ```
    pub fn adapt<S: Send + 'static>(
        &self,
        map: impl Fn(S) -> M + Send + Sync + 'static,
    ) -> ActorRef<S> {
        ActorRef::from_target(Arc::new(Adapter {
            target: self.clone(),
            map,
        }))
    }

    /// Asks the actor to stop gracefully: after its current message, before any queued one (the
    /// stop request travels on the system lane, and is taken after the system messages already
    /// queued, such as watch notifications). Queued user messages become dead letters.
    pub fn stop(&self) {
        match &self.inner {
            Inner::Local(c) => {
                c.send_sys(crate::cell::SystemMsg::Stop);
            }
            Inner::Dyn(d) => d.stop(),
        }
    }

    /// Asks the actor to stop gracefully once it has handled the messages in its mailbox: it keeps
    /// working until it finds the mailbox empty (messages that arrive meanwhile are handled too),
    /// then stops as with [`ActorRef::stop`]. Use it where queued work must not be lost, e.g. when a
    /// client closed its connection after sending its last commands. Not available for non-local
    /// targets, where it is `stop`.
    pub fn stop_when_idle(&self) {
        match &self.inner {
            Inner::Local(c) => {
                c.send_sys(crate::cell::SystemMsg::StopWhenIdle);
            }
            Inner::Dyn(d) => d.stop(),
        }
    }

    /// Kills the actor: its task is aborted at its next await point, its stopped hook does not
    /// run, its children are killed, and watchers see `TerminationReason::Killed`.
    pub fn kill(&self) {
        match &self.inner {
            Inner::Local(c) => c.core.kill(),
            Inner::Dyn(d) => d.kill(),
        }
    }

    /// Waits until the actor has ended and returns why. For code that is not an actor; actors use
    /// [`crate::Context::watch`]. By then the actor no longer counts in
    /// [`crate::ActorSystem::actor_count`] and its name is free for a new actor.
    pub async fn wait_for_stop(&self) -> TerminationReason {
        let rx = match &self.inner {
            Inner::Local(c) => {
                return match c.core.wait_for_end() {
                    Ok(reason) => reason,
                    Err(ended) => ended.await,
                };
            }
            Inner::Dyn(d) => {
                let (tx, rx) = oneshot::channel();
                let tx = parking_lot::Mutex::new(Some(tx));
                d.watch(Watcher::from_fn(ActorId(u64::MAX), move |t| {
                    if let Some(tx) = tx.lock().take() {
                        let _ = tx.send(t.reason);
                    }
                }));
                rx
            }
        };
        // The sender is dropped unanswered only if the whole system is torn down without
        // terminating this actor, which only happens when its task is leaked; report a kill.
        rx.await.unwrap_or(TerminationReason::Killed)
    }

    /// True once a local actor has ended (always false for other targets).
    pub fn is_terminated(&self) -> bool {
        match &self.inner {
            Inner::Local(c) => c.core.ended().is_some(),
            Inner::Dyn(_) => false,
        }
    }

    /// Counters of a local actor (`None` for other targets).
    pub fn stats(&self) -> Option<ActorStats> {
        let c = self.cell()?;
        let (failures, restarts) = c.core.failures_and_restarts();
        let (processed, batched) = c.core.progress();
        Some(ActorStats {
            path: c.core.path(),
            mailbox_depth: c.mailbox.len() + batched,
            processed,
            failures,
            restarts,
            conflated: c.mailbox.conflated(),
        })
    }

    pub(crate) fn add_watcher(&self, watcher: Watcher) {
        match &self.inner {
            Inner::Local(c) => c.core.add_watcher(watcher),
            Inner::Dyn(d) => d.watch(watcher),
        }
    }

    pub(crate) fn remove_watcher(&self, watcher: ActorId) {
        match &self.inner {
            Inner::Local(c) => c.core.remove_watcher(watcher),
            Inner::Dyn(d) => d.unwatch(watcher),
        }
    }
}

impl<M: Send + 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({} {})", self.path(), self.id())
    }
}

impl<M: Send + 'static> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.inner, &other.inner) {
            // Same cell, same actor (an id alone is unique within one system only).
            (Inner::Local(a), Inner::Local(b)) => Arc::ptr_eq(a, b),
            _ => self.id() == other.id() && self.path() == other.path(),
        }
    }
}

impl<M: Send + 'static> Eq for ActorRef<M> {}

impl<M: Send + 'static> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

struct Adapter<M: Send + 'static, F> {
    target: ActorRef<M>,
    map: F,
}

impl<S, M, F> RefTarget<S> for Adapter<M, F>
where
    S: Send + 'static,
    M: Send + 'static,
    F: Fn(S) -> M + Send + Sync + 'static,
{
    fn id(&self) -> ActorId {
        self.target.id()
    }
    fn path(&self) -> ActorPath {
        self.target.path()
    }
    fn tell(&self, msg: S) {
        self.target.tell((self.map)(msg))
    }
    fn try_tell(&self, msg: S) -> Result<(), TrySendError<S>> {
        // Once mapped, a refused message cannot be handed back as an `S`: refuse up front when
        // the target has ended, and count a later refusal as a dead letter (via `tell`).
        if self.target.is_terminated() {
            return Err(TrySendError::Closed(msg));
        }
        self.target.tell((self.map)(msg));
        Ok(())
    }
    fn watch(&self, watcher: Watcher) {
        self.target.add_watcher(watcher)
    }
    fn unwatch(&self, watcher: ActorId) {
        self.target.remove_watcher(watcher)
    }
    fn stop(&self) {
        self.target.stop()
    }
    fn kill(&self) {
        self.target.kill()
    }
    fn system(&self) -> Option<ActorSystem> {
        match &self.target.inner {
            Inner::Local(c) => Some(ActorSystem::from_shared(c.core.system().clone())),
            Inner::Dyn(d) => d.system(),
        }
    }
    fn ask_timeout(&self) -> Duration {
        match &self.target.inner {
            Inner::Local(c) => c.core.system().config.ask_timeout,
            Inner::Dyn(d) => d.ask_timeout(),
        }
    }
}
