//! Request-reply: the [`Reply`] port carried inside a request message, and the [`AskError`] that
//! keeps delivery failures apart from the actor's own answer.
//!
//! An ask is a `tell` of a message built around a fresh one-shot reply port, plus a timeout on the
//! asker's side. When the asker gives up (timeout, or it drops the future), the port's receiving
//! end is gone: a late reply is dropped and counted as a dead letter; it is never delivered to
//! anyone else.

use std::fmt;
use std::sync::Arc;
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
    /// The answer could not arrive: the request or the reply port went to another node and the
    /// connection to it was lost (the reason says which node and why).
    #[error("ask to {actor} failed: {reason}")]
    Lost {
        /// The recipient.
        actor: ActorPath,
        /// Why.
        reason: Arc<str>,
    },
}

/// The port an actor answers an ask through. Put it in a request variant:
/// `enum Msg { Get(Reply<u64>) }`, then `actor.ask(Msg::Get)`. A port can travel to another
/// node inside a message (see [`crate::transport`]); answering it there sends the answer back.
pub struct Reply<T> {
    // A `Cell` so that a transport can move the port out while serializing the message (`&self`).
    inner: std::cell::Cell<Option<ReplyInner<T>>>,
}

enum ReplyInner<T> {
    /// From [`Reply::channel`].
    Channel {
        tx: oneshot::Sender<T>,
        system: Option<ActorSystem>,
    },
    /// From an ask: the asker also learns why a port failed.
    Ask {
        tx: oneshot::Sender<Result<T, Arc<str>>>,
        system: Option<ActorSystem>,
    },
    Callback(Box<dyn FnOnce(T) + Send>),
    /// A port decoded from the wire: `None` tells the asking node it was dropped unanswered.
    Remote(Box<dyn FnOnce(Option<T>) + Send>),
}

impl<T: Send + 'static> Reply<T> {
    fn new(inner: ReplyInner<T>) -> Self {
        Self {
            inner: std::cell::Cell::new(Some(inner)),
        }
    }

    pub(crate) fn asked(
        tx: oneshot::Sender<Result<T, Arc<str>>>,
        system: Option<ActorSystem>,
    ) -> Self {
        Self::new(ReplyInner::Ask { tx, system })
    }

    pub(crate) fn remote(f: impl FnOnce(Option<T>) + Send + 'static) -> Self {
        Self::new(ReplyInner::Remote(Box::new(f)))
    }

    /// Drops the port without answering and without the "dropped" notice of a port from another
    /// node.
    pub(crate) fn forget(&self) {
        drop(self.inner.take());
    }

    /// Moves the port out, leaving this one spent (a transport exporting it).
    pub(crate) fn take(&self) -> Option<Self> {
        self.inner.take().map(Self::new)
    }

    /// A reply port that hands the answer to `f` (for transports and tests).
    pub fn from_fn(f: impl FnOnce(T) + Send + 'static) -> Self {
        Self::new(ReplyInner::Callback(Box::new(f)))
    }

    /// A reply port and the receiver of its answer, for code that is not an actor. Dropping the
    /// receiver makes a later `send` a dead letter.
    pub fn channel(system: &ActorSystem) -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (
            Self::new(ReplyInner::Channel {
                tx,
                system: Some(system.clone()),
            }),
            rx,
        )
    }

    /// Answers. If the asker already gave up, the answer is dropped and counted as a dead letter.
    pub fn send(self, value: T) {
        let late = |system: Option<ActorSystem>| {
            if let Some(system) = system {
                system.shared().dead_letters.record(
                    &ActorPath::from_string("/temp/ask"),
                    std::any::type_name::<T>(),
                    DeadLetterReason::ReplyAfterTimeout,
                );
            }
        };
        match self.inner.take() {
            Some(ReplyInner::Channel { tx, system }) => {
                tx.send(value).unwrap_or_else(|_| late(system))
            }
            Some(ReplyInner::Ask { tx, system }) => {
                tx.send(Ok(value)).unwrap_or_else(|_| late(system))
            }
            Some(ReplyInner::Callback(f)) => f(value),
            Some(ReplyInner::Remote(f)) => f(Some(value)),
            None => {}
        }
    }

    /// Fails the port without an answer: an asker gets [`AskError::Lost`] with `reason` (other
    /// kinds of port see it dropped). Transports use it when the answer cannot arrive.
    pub fn fail(self, reason: Arc<str>) {
        match self.inner.take() {
            Some(ReplyInner::Ask { tx, .. }) => {
                let _ = tx.send(Err(reason));
            }
            Some(ReplyInner::Remote(f)) => f(None),
            _ => {}
        }
    }

    /// True when the asker has given up (a reply would be a dead letter).
    pub fn is_closed(&self) -> bool {
        let inner = self.inner.take();
        let closed = match &inner {
            Some(ReplyInner::Channel { tx, .. }) => tx.is_closed(),
            Some(ReplyInner::Ask { tx, .. }) => tx.is_closed(),
            Some(_) => false,
            None => true,
        };
        self.inner.set(inner);
        closed
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        // A port from another node dropped unanswered: tell the asker now rather than at its
        // timeout.
        if let Some(ReplyInner::Remote(f)) = self.inner.take() {
            f(None);
        }
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply<{}>", std::any::type_name::<T>())
    }
}
