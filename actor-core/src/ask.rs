//! Request-reply: the [`Reply`] port carried inside a request message, and the [`AskError`] that
//! keeps delivery failures apart from the actor's own answer.
//!
//! An ask is a `tell` of a message built around a fresh one-shot reply port, plus a timeout on the
//! asker's side. When the asker gives up (timeout, or it drops the future), the port's receiving
//! end is gone: a late reply is dropped and counted as a dead letter; it is never delivered to
//! anyone else.

use std::fmt;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::dead_letters::DeadLetterReason;
use crate::path::ActorPath;
use crate::system::ActorSystem;

/// Why an ask produced no answer. The actor's own answer (including its own errors, when the
/// reply type is a `Result`) comes back as `Ok`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No reply within the timeout.
    #[error("ask to {actor} timed out after {timeout:?}")]
    Timeout {
        /// The recipient.
        actor: ActorPath,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The recipient was already stopped; the request was not delivered.
    #[error("ask to {0} failed: the actor is stopped")]
    Stopped(ActorPath),
    /// The recipient's bounded mailbox was full; the request was not delivered.
    #[error("ask to {0} failed: its mailbox is full")]
    MailboxFull(ActorPath),
    /// The request was delivered but the reply port was dropped unanswered (the actor stopped,
    /// failed while handling it, or ignored it).
    #[error(
        "ask to {0} got no reply: the reply port was dropped (the actor stopped, failed or ignored the request)"
    )]
    NoReply(ActorPath),
}

/// The port an actor answers an ask through. Put it in a request variant:
/// `enum Msg { Get(Reply<u64>) }`, then `actor.ask(Msg::Get)`.
pub struct Reply<T> {
    inner: ReplyInner<T>,
}

enum ReplyInner<T> {
    Local {
        tx: oneshot::Sender<T>,
        system: Option<ActorSystem>,
    },
    Callback(Box<dyn FnOnce(T) + Send>),
}

impl<T: Send + 'static> Reply<T> {
    pub(crate) fn local(tx: oneshot::Sender<T>, system: Option<ActorSystem>) -> Self {
        Self {
            inner: ReplyInner::Local { tx, system },
        }
    }

    /// A reply port that hands the answer to `f` (for transports that carry replies to other
    /// nodes, and for tests).
    pub fn from_fn(f: impl FnOnce(T) + Send + 'static) -> Self {
        Self {
            inner: ReplyInner::Callback(Box::new(f)),
        }
    }

    /// A reply port and the receiver of its answer, for code that is not an actor. Dropping the
    /// receiver makes a later `send` a dead letter.
    pub fn channel(system: &ActorSystem) -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Self::local(tx, Some(system.clone())), rx)
    }

    /// Answers. If the asker already gave up, the answer is dropped and counted as a dead letter.
    pub fn send(self, value: T) {
        match self.inner {
            ReplyInner::Local { tx, system } => {
                if tx.send(value).is_err()
                    && let Some(system) = system
                {
                    system.shared().dead_letters.record(
                        &ActorPath::from_string("/temp/ask"),
                        std::any::type_name::<T>(),
                        DeadLetterReason::ReplyAfterTimeout,
                    );
                }
            }
            ReplyInner::Callback(f) => f(value),
        }
    }

    /// True when the asker has given up (a reply would be a dead letter).
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            ReplyInner::Local { tx, .. } => tx.is_closed(),
            ReplyInner::Callback(_) => false,
        }
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply<{}>", std::any::type_name::<T>())
    }
}
