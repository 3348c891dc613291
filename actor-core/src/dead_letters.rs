//! The dead-letter office: every user message that could not be delivered is counted here and
//! published to subscribers.
//!
//! Recording happens only on the failure path, so it costs nothing on a successful send. A
//! `tracing` event at `debug` level is emitted for each dead letter.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::path::ActorPath;

/// Why a message became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The recipient had stopped (or was stopping and drained its mailbox).
    Stopped,
    /// The recipient's bounded mailbox was full (`Overflow::Fail`, sent with `tell`).
    MailboxFull,
    /// The recipient's overflow policy shed it (`Overflow::DropNewest` / `DropOldest`).
    Shed,
    /// A reply whose asker had already given up (timed out or dropped the ask).
    ReplyAfterTimeout,
    /// The message was stashed, or taken out of the stash, when the actor stopped.
    Stashed,
    /// Lost in transit to another node (set by transports).
    Remote,
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterReason::Stopped => "recipient stopped",
            DeadLetterReason::MailboxFull => "mailbox full",
            DeadLetterReason::Shed => "shed by overflow policy",
            DeadLetterReason::ReplyAfterTimeout => "reply after the asker gave up",
            DeadLetterReason::Stashed => "stashed when the actor stopped",
            DeadLetterReason::Remote => "lost in transit",
        })
    }
}

/// One undeliverable message (its payload is dropped; its type and recipient are kept).
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Who it was for.
    pub recipient: ActorPath,
    /// `std::any::type_name` of the message.
    pub message_type: &'static str,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
}

pub(crate) struct DeadLetterOffice {
    count: AtomicU64,
    tx: broadcast::Sender<DeadLetter>,
}

impl DeadLetterOffice {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            count: AtomicU64::new(0),
            tx,
        }
    }

    #[cold]
    pub(crate) fn record(
        &self,
        recipient: &ActorPath,
        message_type: &'static str,
        reason: DeadLetterReason,
    ) {
        self.record_with(recipient, || recipient.clone(), message_type, reason);
    }

    /// As `record`, for a recipient whose path is built only if a subscriber needs it (`shown`
    /// writes it for the log line): an anonymous actor's path is not stored, and a stopped
    /// actor with many queued messages records one dead letter per message.
    #[cold]
    pub(crate) fn record_with(
        &self,
        shown: impl std::fmt::Display,
        recipient: impl FnOnce() -> ActorPath,
        message_type: &'static str,
        reason: DeadLetterReason,
    ) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(recipient = %shown, message_type, %reason, "dead letter");
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(DeadLetter {
                recipient: recipient(),
                message_type,
                reason,
            });
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self) -> DeadLetterSubscription {
        DeadLetterSubscription {
            rx: self.tx.subscribe(),
            missed: 0,
        }
    }
}

/// A stream of dead letters from one system, from the moment of subscribing.
///
/// It buffers a bounded number of events ([`crate::SystemConfig::dead_letter_buffer`]); a slow
/// subscriber misses the oldest ones, and [`DeadLetterSubscription::missed`] says how many. The
/// count in [`crate::ActorSystem::dead_letter_count`] is always exact.
pub struct DeadLetterSubscription {
    rx: broadcast::Receiver<DeadLetter>,
    missed: u64,
}

impl DeadLetterSubscription {
    /// The next dead letter; `None` once the system is gone.
    pub async fn recv(&mut self) -> Option<DeadLetter> {
        loop {
            match self.rx.recv().await {
                Ok(dl) => return Some(dl),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// A dead letter if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<DeadLetter> {
        loop {
            match self.rx.try_recv() {
                Ok(dl) => return Some(dl),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// Events this subscriber missed because it fell behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
