//! [`SupervisionStrategy`]: OTP strategies, restart intensity and backoff as the policy of any
//! actor over its own children. Call it from `Actor::on_child_failure`; it decides with the pure
//! [`Decider`], restarts siblings through the context, logs the decision, and keeps the history.

use std::collections::HashMap;
use std::time::Duration;

use actor_core::{Actor, ActorId, ActorPath, ChildFailure, Context, Directive};
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::decider::{
    ChildExit, ChildHistory, Decider, Decision, Exit, Intensity, RestartHistory, RestartType,
    Strategy,
};

/// The policy of an actor over its children.
///
/// ```
/// use actor_core::prelude::*;
/// use actor_core::ChildFailure;
/// use supervision::SupervisionStrategy;
/// use std::time::Duration;
///
/// struct Match { policy: SupervisionStrategy }
///
/// impl Actor for Match {
///     type Msg = ();
///     async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> ActorResult { Ok(()) }
///     fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
///         self.policy.on_child_failure(failure, ctx)
///     }
/// }
///
/// let policy = SupervisionStrategy::one_for_all().intensity(5, Duration::from_secs(10));
/// let props = Props::new(move || Match { policy: policy.clone() });
/// # let _ = props;
/// ```
#[derive(Clone, Debug)]
pub struct SupervisionStrategy {
    decider: Decider,
    history: RestartHistory,
    children: HashMap<ActorId, ChildHistory>,
    restart_types: HashMap<ActorId, RestartType>,
    jitter: Jitter,
}

impl SupervisionStrategy {
    /// A strategy with the default intensity (3 restarts within 5 s) and no backoff.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            decider: Decider::new(strategy),
            history: RestartHistory::default(),
            children: HashMap::new(),
            restart_types: HashMap::new(),
            jitter: Jitter::new(0x5EED),
        }
    }

    /// Only the failed child restarts.
    pub fn one_for_one() -> Self {
        Self::new(Strategy::OneForOne)
    }

    /// Every child restarts when one fails.
    pub fn one_for_all() -> Self {
        Self::new(Strategy::OneForAll)
    }

    /// The failed child and those started after it restart.
    pub fn rest_for_one() -> Self {
        Self::new(Strategy::RestForOne)
    }

    /// At most `max_restarts` restarts within `within`; beyond it, give up (escalate).
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.decider.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    /// Restart after exponential delays.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.decider.backoff = Some(backoff);
        self
    }

    /// Seeds the jitter (for reproducible delays).
    pub fn seed(mut self, seed: u64) -> Self {
        self.jitter = Jitter::new(seed);
        self
    }

    /// Sets a child's restart type (default: permanent).
    pub fn set_restart_type(&mut self, child: ActorId, restart: RestartType) {
        self.restart_types.insert(child, restart);
    }

    /// The pure decider behind this strategy.
    pub fn decider(&self) -> &Decider {
        &self.decider
    }

    /// Decides about `child` (at `position` in `order`), records the decision and logs it.
    /// Returns the decision with sibling positions resolved to ids.
    pub(crate) fn decide(
        &mut self,
        child: ActorId,
        order: &[ActorId],
        exit: Exit,
        supervisor: &ActorPath,
        child_path: &ActorPath,
        error: &str,
    ) -> (Decision, Vec<ActorId>) {
        let now = Instant::now();
        let position = order
            .iter()
            .position(|id| *id == child)
            .unwrap_or(order.len());
        let restart = self.restart_types.get(&child).copied().unwrap_or_default();
        let ce = ChildExit {
            position,
            siblings: order.len().max(position + 1),
            restart,
            exit,
        };
        let history = self.children.entry(child).or_default();
        let decision = self
            .decider
            .decide(&ce, history, &self.history, now, self.jitter.sample());
        let mut also_ids = Vec::new();
        match &decision {
            Decision::Restart { delay, also } => {
                history.record(self.decider.backoff.as_ref(), now, *delay);
                let total = history.total;
                let keep = self.decider.intensity.within;
                self.history.record(now, keep);
                also_ids = also.iter().filter_map(|p| order.get(*p).copied()).collect();
                for id in &also_ids {
                    self.children.entry(*id).or_default().total += 1;
                }
                tracing::info!(
                    supervisor = %supervisor,
                    child = %child_path,
                    error,
                    restarts = total,
                    ?delay,
                    siblings = also_ids.len(),
                    "restarting child"
                );
            }
            Decision::Leave => {
                tracing::info!(supervisor = %supervisor, child = %child_path, error, ?restart, "child not restarted");
            }
            Decision::Escalate { restarts, within } => {
                tracing::error!(
                    supervisor = %supervisor,
                    child = %child_path,
                    error,
                    restarts,
                    ?within,
                    "restart intensity exceeded; giving up and escalating"
                );
            }
        }
        (decision, also_ids)
    }

    /// Moves a child's history to its new actor id (a child started again after it ended).
    pub(crate) fn rekey(&mut self, old: ActorId, new: ActorId) {
        if let Some(h) = self.children.remove(&old) {
            self.children.insert(new, h);
        }
        if let Some(t) = self.restart_types.remove(&old) {
            self.restart_types.insert(new, t);
        }
    }

    /// Forgets a child that is gone.
    pub fn forget(&mut self, child: ActorId) {
        self.children.remove(&child);
        self.restart_types.remove(&child);
    }

    /// Restarts of `child` so far (its own, and those caused by its siblings' failures).
    pub fn restarts_of(&self, child: ActorId) -> u32 {
        self.children.get(&child).map_or(0, |h| h.total)
    }

    /// The policy hook: call from `Actor::on_child_failure`. Restarts siblings as the strategy
    /// says and returns the directive for the failed child.
    pub fn on_child_failure<A: Actor>(
        &mut self,
        failure: &ChildFailure,
        ctx: &mut Context<A>,
    ) -> Directive {
        let order: Vec<ActorId> = ctx.children().iter().map(|c| c.id).collect();
        let supervisor = ctx.path().clone();
        let (decision, also) = self.decide(
            failure.child,
            &order,
            Exit::Failed,
            &supervisor,
            &failure.failure.actor,
            &failure.failure.message,
        );
        for sibling in also {
            ctx.restart_child(sibling);
        }
        directive_for(&decision)
    }
}

/// The directive for the failed child itself.
pub(crate) fn directive_for(decision: &Decision) -> Directive {
    match decision {
        Decision::Restart { delay, .. } if delay.is_zero() => Directive::Restart,
        Decision::Restart { delay, .. } => Directive::RestartAfter(*delay),
        Decision::Leave => Directive::Stop,
        Decision::Escalate { .. } => Directive::Escalate,
    }
}
