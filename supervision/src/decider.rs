//! The pure heart of supervision: given how a child ended, its position among its siblings, its
//! own restart history and its supervisor's, the time and a random sample, decide what to do.
//! No runtime, no actors: table-tested below.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;

/// Which children restart when one fails (OTP's strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the failed child.
    OneForOne,
    /// Every child.
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

/// When a child is restarted (OTP's restart types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RestartType {
    /// Always: after a failure and after a normal stop.
    #[default]
    Permanent,
    /// Only after a failure; a normal stop ends it.
    Transient,
    /// Never.
    Temporary,
}

/// Restart intensity: at most `max_restarts` restarts within `within`; one more and the
/// supervisor gives up. Default: 3 within 5 s (OTP's is 1 in 5 s; a game server sees more benign
/// crashes, such as one malformed packet, and should not tear a subtree down for two of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: Duration::from_secs(5),
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It failed (error, panic) or was killed.
    Failed,
    /// It stopped normally.
    Normal,
}

/// A child's end, as the decider sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildExit {
    /// Its index among its siblings, in start order.
    pub position: usize,
    /// How many siblings there are, itself included.
    pub siblings: usize,
    /// Its restart type.
    pub restart: RestartType,
    /// How it ended.
    pub exit: Exit,
}

/// One child's backoff state: consecutive restarts and when it last (re)started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildHistory {
    /// Restarts since it last ran for a stable period.
    pub attempt: u32,
    /// When its current incarnation started (restart time plus delay).
    pub last_start: Option<Instant>,
    /// Restarts since it was first started.
    pub total: u32,
}

impl ChildHistory {
    fn effective_attempt(&self, backoff: &Backoff, now: Instant) -> u32 {
        match self.last_start {
            Some(t) if now.saturating_duration_since(t) >= backoff.reset_after => 0,
            _ => self.attempt,
        }
    }

    /// Records a restart decided at `now` that takes effect after `delay`.
    pub fn record(&mut self, backoff: Option<&Backoff>, now: Instant, delay: Duration) {
        self.attempt = match backoff {
            Some(b) => self.effective_attempt(b, now) + 1,
            None => self.attempt + 1,
        };
        self.last_start = Some(now + delay);
        self.total += 1;
    }
}

/// A supervisor's recent restarts, for its intensity.
#[derive(Clone, Debug, Default)]
pub struct RestartHistory {
    restarts: VecDeque<Instant>,
}

impl RestartHistory {
    /// Restarts within `window` before `now`.
    pub fn within(&self, window: Duration, now: Instant) -> usize {
        self.restarts
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < window)
            .count()
    }

    /// Records a restart at `now`, forgetting those older than `keep`.
    pub fn record(&mut self, now: Instant, keep: Duration) {
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= keep)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
    }
}

/// What to do about a child that ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart it after `delay` (zero: at once), and restart the siblings at `also` (positions,
    /// in start order) at once.
    Restart {
        /// Delay before the child restarts.
        delay: Duration,
        /// Siblings restarted with it.
        also: Vec<usize>,
    },
    /// Do not restart it (temporary, or transient after a normal stop).
    Leave,
    /// Restart intensity exceeded: the supervisor gives up.
    Escalate {
        /// Restarts within the window when it gave up.
        restarts: usize,
        /// The window.
        within: Duration,
    },
}

/// Strategy, intensity and (optional) backoff: everything a decision depends on besides its
/// inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decider {
    /// Which siblings restart with a failed child.
    pub strategy: Strategy,
    /// How many restarts within what window.
    pub intensity: Intensity,
    /// Restart delays; `None` restarts at once.
    pub backoff: Option<Backoff>,
}

impl Decider {
    /// A decider with the default intensity and no backoff.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            intensity: Intensity::default(),
            backoff: None,
        }
    }

    /// The decision for `exit` at `now`. Pure: the same inputs give the same decision.
    /// `random` is a sample in `[0, 1)` for the backoff's jitter.
    pub fn decide(
        &self,
        exit: &ChildExit,
        child: &ChildHistory,
        history: &RestartHistory,
        now: Instant,
        random: f64,
    ) -> Decision {
        let restart = match (exit.restart, exit.exit) {
            (RestartType::Permanent, _) => true,
            (RestartType::Transient, Exit::Failed) => true,
            (RestartType::Transient, Exit::Normal) | (RestartType::Temporary, _) => false,
        };
        if !restart {
            return Decision::Leave;
        }
        let recent = history.within(self.intensity.within, now);
        if recent >= self.intensity.max_restarts as usize {
            return Decision::Escalate {
                restarts: recent,
                within: self.intensity.within,
            };
        }
        let delay = match &self.backoff {
            Some(b) => b.delay(child.effective_attempt(b, now), random),
            None => Duration::ZERO,
        };
        let also = match self.strategy {
            Strategy::OneForOne => Vec::new(),
            Strategy::OneForAll => (0..exit.siblings).filter(|p| *p != exit.position).collect(),
            Strategy::RestForOne => (exit.position + 1..exit.siblings).collect(),
        };
        Decision::Restart { delay, also }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Exit::*;
    use RestartType::*;
    use Strategy::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn restart(delay: Duration, also: &[usize]) -> Decision {
        Decision::Restart {
            delay,
            also: also.to_vec(),
        }
    }

    /// (strategy, restart type, exit, position, siblings, restarts in window) -> decision,
    /// with intensity 3 in 5 s and no backoff.
    #[test]
    fn decision_table() {
        let rows: &[(Strategy, RestartType, Exit, usize, usize, usize, Decision)] = &[
            // Restart types.
            (OneForOne, Permanent, Failed, 0, 1, 0, restart(ms(0), &[])),
            (OneForOne, Permanent, Normal, 0, 1, 0, restart(ms(0), &[])),
            (OneForOne, Transient, Failed, 0, 1, 0, restart(ms(0), &[])),
            (OneForOne, Transient, Normal, 0, 1, 0, Decision::Leave),
            (OneForOne, Temporary, Failed, 0, 1, 0, Decision::Leave),
            (OneForOne, Temporary, Normal, 0, 1, 0, Decision::Leave),
            // Strategies pick the siblings.
            (OneForOne, Permanent, Failed, 1, 4, 0, restart(ms(0), &[])),
            (
                OneForAll,
                Permanent,
                Failed,
                1,
                4,
                0,
                restart(ms(0), &[0, 2, 3]),
            ),
            (
                RestForOne,
                Permanent,
                Failed,
                1,
                4,
                0,
                restart(ms(0), &[2, 3]),
            ),
            (RestForOne, Permanent, Failed, 3, 4, 0, restart(ms(0), &[])),
            (OneForAll, Transient, Normal, 1, 4, 0, Decision::Leave),
            // Intensity: 3 allowed, the 4th gives up; a leave never counts.
            (OneForOne, Permanent, Failed, 0, 1, 2, restart(ms(0), &[])),
            (
                OneForOne,
                Permanent,
                Failed,
                0,
                1,
                3,
                Decision::Escalate {
                    restarts: 3,
                    within: ms(5000),
                },
            ),
            (
                OneForAll,
                Permanent,
                Failed,
                0,
                2,
                7,
                Decision::Escalate {
                    restarts: 7,
                    within: ms(5000),
                },
            ),
            (OneForOne, Temporary, Failed, 0, 1, 9, Decision::Leave),
        ];
        let decider = Decider::new(OneForOne);
        let now = Instant::now();
        for (i, (strategy, restart_type, exit, position, siblings, recent, expected)) in
            rows.iter().enumerate()
        {
            let d = Decider {
                strategy: *strategy,
                ..decider
            };
            let mut history = RestartHistory::default();
            for k in 0..*recent {
                history.record(now - ms(10 * k as u64 + 1), Duration::from_secs(60));
            }
            let got = d.decide(
                &ChildExit {
                    position: *position,
                    siblings: *siblings,
                    restart: *restart_type,
                    exit: *exit,
                },
                &ChildHistory::default(),
                &history,
                now,
                0.5,
            );
            assert_eq!(&got, expected, "row {i}");
        }
    }

    #[test]
    fn intensity_counts_only_the_window() {
        let d = Decider::new(OneForOne);
        let now = Instant::now() + Duration::from_secs(100);
        let mut h = RestartHistory::default();
        for secs in [30, 20, 6, 4, 1] {
            h.record(now - Duration::from_secs(secs), Duration::from_secs(60));
        }
        assert_eq!(h.within(Duration::from_secs(5), now), 2);
        let exit = ChildExit {
            position: 0,
            siblings: 1,
            restart: Permanent,
            exit: Failed,
        };
        assert_eq!(
            d.decide(&exit, &ChildHistory::default(), &h, now, 0.0),
            restart(ms(0), &[])
        );
        h.record(now, Duration::from_secs(60));
        assert!(matches!(
            d.decide(&exit, &ChildHistory::default(), &h, now, 0.0),
            Decision::Escalate { restarts: 3, .. }
        ));
    }

    /// Backoff: attempt n waits min * 2^n (no jitter), capped; resets after a stable period.
    #[test]
    fn backoff_table() {
        let backoff = Backoff::new(ms(100), ms(1000))
            .jitter(0.0)
            .reset_after(Duration::from_secs(10));
        let d = Decider {
            strategy: OneForOne,
            intensity: Intensity {
                max_restarts: 100,
                within: Duration::from_secs(1),
            },
            backoff: Some(backoff),
        };
        let exit = ChildExit {
            position: 0,
            siblings: 1,
            restart: Permanent,
            exit: Failed,
        };
        let t0 = Instant::now();
        let mut child = ChildHistory::default();
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let Decision::Restart { delay, .. } =
                d.decide(&exit, &child, &RestartHistory::default(), now, 0.0)
            else {
                panic!("expected a restart");
            };
            delays.push(delay);
            child.record(Some(&backoff), now, delay);
            // It fails again right after it restarts.
            now += delay + ms(1);
        }
        assert_eq!(
            delays,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(child.total, 6);
        // Runs stably for 10 s: back to the first delay.
        now += Duration::from_secs(10);
        let got = d.decide(&exit, &child, &RestartHistory::default(), now, 0.0);
        assert_eq!(got, restart(ms(100), &[]));
        child.record(Some(&backoff), now, ms(100));
        assert_eq!(child.attempt, 1);
    }
}
