//! Public configuration of an actor's user lane, chosen once at spawn time.
//!
//! The system lane is not configurable: it is unbounded, never drops, and is always drained
//! before any user message.

use std::fmt;

/// What a bounded mailbox does with a message that arrives when it is full.
///
/// `ActorRef::send(..).await` always waits for room instead, whatever the policy: explicit
/// back-pressure wins over shedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the message: `try_tell` hands it back in `TrySendError::Full`, `tell` counts it as a
    /// dead letter.
    Fail,
    /// Drop the incoming message and count it as a dead letter; the send itself succeeds.
    DropNewest,
    /// Drop the oldest queued message, count it as a dead letter, and queue the new one.
    DropOldest,
}

/// How the user lane of an actor's mailbox behaves. Chosen at spawn with [`crate::Props::mailbox`].
///
/// ```
/// use actor_core::{MailboxConfig, Overflow};
///
/// #[derive(Debug)]
/// enum Msg { Chat(String), Admin(String), Position { id: u64, x: f32, y: f32 } }
///
/// let bounded: MailboxConfig<Msg> = MailboxConfig::bounded(1_000, Overflow::DropOldest);
/// // Class 0 is served strictly first; classes 1 and 2 share the rest 4:1.
/// let prio: MailboxConfig<Msg> = MailboxConfig::priority(
///     |m: &Msg| match m { Msg::Admin(_) => 0, Msg::Chat(_) => 1, _ => 2 },
///     &[4, 1],
/// );
/// // Latest position per entity wins; other messages are never conflated.
/// let conflating: MailboxConfig<Msg> = MailboxConfig::conflating(|m: &Msg| match m {
///     Msg::Position { id, .. } => Some(*id),
///     _ => None,
/// });
/// # let _ = (bounded, prio, conflating);
/// ```
pub struct MailboxConfig<M> {
    pub(crate) kind: LaneKind<M>,
}

pub(crate) enum LaneKind<M> {
    Unbounded,
    Bounded {
        capacity: usize,
        overflow: Overflow,
    },
    Priority {
        classify: fn(&M) -> usize,
        weights: Box<[u32]>,
    },
    Conflating {
        key: fn(&M) -> Option<u64>,
    },
}

impl<M> MailboxConfig<M> {
    /// An unbounded FIFO lane (the default). "Unbounded" up to 2^31 queued messages: past that
    /// a `tell` is counted as a dead letter (`MailboxFull`) and a `send` yields and retries, as
    /// no process holds that many without running out of memory first.
    pub fn unbounded() -> Self {
        Self {
            kind: LaneKind::Unbounded,
        }
    }

    /// A FIFO lane holding at most `capacity` messages (at least 1, at most 2^31: the most a
    /// lane's queue holds), with an overflow policy. A message counts toward the capacity from
    /// its send until the actor receives it (the actor may take several queued messages at once;
    /// they still count until each is handed to it).
    pub fn bounded(capacity: usize, overflow: Overflow) -> Self {
        Self {
            kind: LaneKind::Bounded {
                capacity: capacity.clamp(1, 1 << 31),
                overflow,
            },
        }
    }

    /// Priority classes. `classify` maps each message to a class; class 0 is always served
    /// first, and classes `1..=weights.len()` share what is left by weighted round robin with the
    /// given weights (a weight of 0 counts as 1), so no class below the top one starves. A class
    /// index past the last class is treated as the last class.
    pub fn priority(classify: fn(&M) -> usize, weights: &[u32]) -> Self {
        let weights = weights.iter().map(|w| (*w).max(1)).collect();
        Self {
            kind: LaneKind::Priority { classify, weights },
        }
    }

    /// A conflating lane: while a message with key `k` is queued, a newer message with the same
    /// key replaces it in place (latest wins; the replaced one is counted as conflated, not as a
    /// dead letter). Messages for which `key` returns `None` are never conflated.
    pub fn conflating(key: fn(&M) -> Option<u64>) -> Self {
        Self {
            kind: LaneKind::Conflating { key },
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self.kind {
            LaneKind::Unbounded => "unbounded",
            LaneKind::Bounded { .. } => "bounded",
            LaneKind::Priority { .. } => "priority",
            LaneKind::Conflating { .. } => "conflating",
        }
    }
}

impl<M> Default for MailboxConfig<M> {
    fn default() -> Self {
        Self::unbounded()
    }
}

impl<M> Clone for MailboxConfig<M> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            LaneKind::Unbounded => LaneKind::Unbounded,
            LaneKind::Bounded { capacity, overflow } => LaneKind::Bounded {
                capacity: *capacity,
                overflow: *overflow,
            },
            LaneKind::Priority { classify, weights } => LaneKind::Priority {
                classify: *classify,
                weights: weights.clone(),
            },
            LaneKind::Conflating { key } => LaneKind::Conflating { key: *key },
        };
        Self { kind }
    }
}

impl<M> fmt::Debug for MailboxConfig<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LaneKind::Bounded { capacity, overflow } => f
                .debug_struct("MailboxConfig::Bounded")
                .field("capacity", capacity)
                .field("overflow", overflow)
                .finish(),
            LaneKind::Priority { weights, .. } => f
                .debug_struct("MailboxConfig::Priority")
                .field("weights", weights)
                .finish(),
            _ => write!(f, "MailboxConfig::{}", self.name()),
        }
    }
}
