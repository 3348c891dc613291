//! The vocabulary of failure and supervision that the actor cell's mechanism speaks: what a
//! failure is, what a parent may decide about it ([`Directive`]), the policy hook that decides
//! ([`SupervisionPolicy`]), the simple default ([`RestartLimit`]), and why an actor ended
//! ([`TerminationReason`]). Rich policies (one-for-all, backoff, OTP intensity) live in the
//! `supervision` crate and are built on these types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::path::{ActorId, ActorPath};

/// The error type actors return from their handlers. Any `std::error::Error + Send + Sync` (and
/// `String` / `&str`, via `From`) converts into it with `?` or `.into()`.
pub type ActorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What handlers return.
pub type ActorResult = Result<(), ActorError>;

/// How an actor failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// A handler or hook returned `Err`.
    Error,
    /// A handler or hook panicked; the panic was contained to this actor.
    Panic,
    /// A child failed and this actor's policy escalated it: this actor fails with the child's error.
    Escalated,
}

/// Where in its life the actor failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePhase {
    /// In `started` (or `post_restart`): the actor never became ready.
    Start,
    /// While handling a message or a signal.
    Message,
}

/// A contained failure: which actor, how, where, and the error's text.
#[derive(Clone)]
pub struct Failure {
    /// The actor that failed.
    pub actor: ActorPath,
    /// Error, panic or escalation.
    pub kind: FailureKind,
    /// Start-up or message handling.
    pub phase: FailurePhase,
    /// The error's `Display` text, or the panic message.
    pub message: Arc<str>,
    pub(crate) source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    pub(crate) fn error(actor: ActorPath, phase: FailurePhase, err: ActorError) -> Self {
        Self {
            actor,
            kind: FailureKind::Error,
            phase,
            message: Arc::from(err.to_string()),
            source: Some(Arc::from(err)),
        }
    }

    pub(crate) fn panic(
        actor: ActorPath,
        phase: FailurePhase,
        payload: &(dyn std::any::Any + Send),
    ) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Self {
            actor,
            kind: FailureKind::Panic,
            phase,
            message: Arc::from(text),
            source: None,
        }
    }

    pub(crate) fn escalated(actor: ActorPath, child: &Failure) -> Self {
        Self {
            actor,
            kind: FailureKind::Escalated,
            phase: FailurePhase::Message,
            message: Arc::from(format!("escalated from {}: {}", child.actor, child.message)),
            source: child.source.clone(),
        }
    }

    /// The original error, when the failure was an `Err` (not a panic).
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("actor", &self.actor)
            .field("kind", &self.kind)
            .field("phase", &self.phase)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            FailureKind::Error => "failed",
            FailureKind::Panic => "panicked",
            FailureKind::Escalated => "failed (escalated)",
        };
        write!(f, "{} {how}: {}", self.actor, self.message)
    }
}

/// A parent's decision about a failed child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Keep the child's state and go on with its next message; the failing message is dropped.
    Resume,
    /// Build fresh state from the child's factory, keeping its mailbox and `ActorRef`; its children
    /// are stopped and its timers cancelled first.
    Restart,
    /// Like `Restart`, after a delay. Until then the child stays suspended: its mailbox keeps
    /// queuing (a bounded one sheds per its policy) and its ref stays valid.
    RestartAfter(Duration),
    /// Stop the child (its stopped hook runs; watchers see `TerminationReason::Failed`).
    Stop,
    /// Fail the parent with the child's error, so the grandparent decides.
    Escalate,
}

/// What a parent is told when one of its children fails.
#[derive(Clone, Debug)]
pub struct ChildFailure {
    /// The failed child.
    pub child: ActorId,
    /// The failure.
    pub failure: Failure,
    /// How many times this child has been restarted since it was spawned.
    pub restart_count: u32,
    /// When the most recent restarts happened (oldest first; the last 32 at most).
    pub recent_restarts: Vec<Instant>,
}

impl ChildFailure {
    /// Restarts within `window` before `now`.
    pub fn restarts_within(&self, window: Duration, now: Instant) -> usize {
        self.recent_restarts
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < window)
            .count()
    }
}

/// Decides what happens to a failed child. A pure decision: given the failure (with its restart
/// history) and the current time, return a directive. The `supervision` crate implements the OTP
/// strategies on top of this trait.
pub trait SupervisionPolicy: Send {
    /// The directive for `failure` at time `now`.
    fn decide(&mut self, failure: &ChildFailure, now: Instant) -> Directive;
}

/// The default policy of every actor and of the user guardian: restart a failed child, unless it
/// was already restarted `max_restarts` times within `within`, then stop it.
///
/// The default (10 restarts within 10 s) keeps a crashing game room from crash-looping forever
/// without ever taking its parent down.
///
/// ```
/// use actor_core::{Directive, RestartLimit, SupervisionPolicy};
/// use std::time::Duration;
/// let mut policy = RestartLimit { max_restarts: 3, within: Duration::from_secs(5) };
/// # let _ = &mut policy;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartLimit {
    /// Restarts allowed within the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

impl Default for RestartLimit {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            within: Duration::from_secs(10),
        }
    }
}

impl SupervisionPolicy for RestartLimit {
    fn decide(&mut self, failure: &ChildFailure, now: Instant) -> Directive {
        if failure.restarts_within(self.within, now) >= self.max_restarts as usize {
            Directive::Stop
        } else {
            Directive::Restart
        }
    }
}

/// Why an actor ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TerminationReason {
    /// It stopped normally (asked to stop, or stopped itself, or its parent or system stopped).
    Stopped,
    /// Its supervisor stopped it after this failure.
    Failed(Failure),
    /// It was killed: its task was aborted without running its stopped hook (explicit kill, a
    /// killed ancestor, or a shutdown deadline).
    Killed,
    /// It runs on another node that was declared unreachable (set by transports).
    Unreachable(Arc<str>),
    /// It ran on another node and ended there for this reason (set by transports; a normal stop
    /// on the other node arrives as `Stopped`).
    Remote(Arc<str>),
}

impl TerminationReason {
    /// A normal stop?
    pub fn is_normal(&self) -> bool {
        matches!(self, TerminationReason::Stopped)
    }
}

impl fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TerminationReason::Stopped => f.write_str("stopped"),
            TerminationReason::Failed(failure) => write!(f, "stopped after failure: {failure}"),
            TerminationReason::Killed => f.write_str("killed"),
            TerminationReason::Unreachable(why) => write!(f, "node unreachable: {why}"),
            TerminationReason::Remote(why) => write!(f, "ended on its node: {why}"),
        }
    }
}

/// A watched actor ended.
#[derive(Clone, Debug)]
pub struct Terminated {
    /// Its id.
    pub id: ActorId,
    /// Its path.
    pub path: ActorPath,
    /// Why.
    pub reason: TerminationReason,
}
