//! Per-peer association state, sans IO: liveness by heartbeats and the peer's incarnation.
//!
//! Any frame from the peer proves it alive. When nothing arrived for a heartbeat interval the
//! association asks for a heartbeat to be sent; when nothing arrived for `unreachable_after`, it
//! declares the peer unreachable, once. Time is an argument; the driver calls
//! [`Association::handle_timeout`] at [`Association::poll_timeout`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Failure-detection settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Send a heartbeat after this long without sending anything.
    pub heartbeat_interval: Duration,
    /// Declare the peer unreachable after this long without hearing from it (default 5 s).
    pub unreachable_after: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            unreachable_after: Duration::from_secs(5),
        }
    }
}

/// What the association wants the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a heartbeat with this sequence number.
    SendHeartbeat(u64),
    /// The peer is unreachable: fail its pending asks, tell watchers of its actors, reconnect.
    Unreachable {
        /// How long it has been silent.
        silent_for: Duration,
    },
}

/// Liveness of one established peer.
#[derive(Debug)]
pub struct Association {
    liveness: Liveness,
    last_heard: Instant,
    last_sent: Instant,
    next_seq: u64,
    unreachable: bool,
}

impl Association {
    /// A peer established at `now`.
    pub fn new(liveness: Liveness, now: Instant) -> Self {
        Self {
            liveness,
            last_heard: now,
            last_sent: now,
            next_seq: 0,
            unreachable: false,
        }
    }

    /// A frame arrived from the peer.
    pub fn on_received(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        self.unreachable = false;
    }

    /// A frame was sent to the peer (heartbeats are only needed when the line is idle).
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// Declared unreachable (and not heard from since)?
    pub fn is_unreachable(&self) -> bool {
        self.unreachable
    }

    /// The next instant at which [`Association::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Instant {
        let heartbeat = self.last_sent + self.liveness.heartbeat_interval;
        if self.unreachable {
            heartbeat
        } else {
            heartbeat.min(self.last_heard + self.liveness.unreachable_after)
        }
    }

    /// What is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let silent_for = now.saturating_duration_since(self.last_heard);
        if !self.unreachable && silent_for >= self.liveness.unreachable_after {
            self.unreachable = true;
            actions.push(Action::Unreachable { silent_for });
        }
        if now.saturating_duration_since(self.last_sent) >= self.liveness.heartbeat_interval {
            actions.push(Action::SendHeartbeat(self.next_seq));
            self.next_seq += 1;
            self.last_sent = now;
        }
        actions
    }
}

/// What a peer's announced incarnation means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incarnation {
    /// First time this node is seen.
    New,
    /// The same process as before (a reconnect).
    Same,
    /// The node restarted: every actor of the previous incarnation is gone.
    Restarted {
        /// The previous incarnation.
        previous: u64,
    },
    /// Older than one already seen: a stale connection from a dead process; refuse it.
    Stale {
        /// The newest incarnation seen.
        newest: u64,
    },
}

/// The incarnations seen per node name.
#[derive(Debug, Default)]
pub struct Incarnations {
    seen: HashMap<String, u64>,
}

impl Incarnations {
    /// Records `incarnation` for `node` and classifies it.
    pub fn observe(&mut self, node: &str, incarnation: u64) -> Incarnation {
        match self.seen.get(node).copied() {
            None => {
                self.seen.insert(node.to_owned(), incarnation);
                Incarnation::New
            }
            Some(prev) if prev == incarnation => Incarnation::Same,
            Some(prev) if incarnation > prev => {
                self.seen.insert(node.to_owned(), incarnation);
                Incarnation::Restarted { previous: prev }
            }
            Some(newest) => Incarnation::Stale { newest },
        }
    }
}
