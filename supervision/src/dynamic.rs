//! [`DynamicSupervisor`]: many children of one kind, started at run time with arguments (OTP's
//! `simple_one_for_one`), such as one actor per game room or per match.
//!
//! Children are one-for-one. Restart intensity counts **per child**: a child that exceeds it is
//! stopped and the supervisor carries on, so one crash-looping room never takes down the fleet
//! (OTP counts restarts across all children of a `simple_one_for_one` supervisor, which for a
//! fleet of rooms turns unrelated crashes into an outage). Children are transient by default: a
//! room that ends its match normally is gone; one that crashes is restarted behind the same ref.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorId, ActorRef, ActorResult, ChildFailure, Context, Directive, Props, Reply, Signal,
    StartError,
};
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::decider::{
    ChildExit, ChildHistory, Decider, Decision, Exit, Intensity, RestartHistory, RestartType,
    Strategy,
};
use crate::supervisor::{Shutdown, SupervisorError, discard_failed_start};

/// Messages of a [`DynamicSupervisor`]; use them through [`DynamicSupervisorApi`].
#[non_exhaustive]
pub enum DynamicMsg<M: Send + 'static, Args> {
    /// Start a child from arguments; answers its ref once its `started` hook succeeded.
    Start(Args, Reply<Result<ActorRef<M>, SupervisorError>>),
    /// Stop a child (per the shutdown setting). Answers false if it is not a child.
    Terminate(ActorId, Reply<bool>),
    /// The live children, in start order.
    Children(Reply<Vec<ActorRef<M>>>),
    /// Internal: a delayed start of a child that had ended.
    #[doc(hidden)]
    Respawn(u64),
}

struct DynChild<A: Actor> {
    actor_ref: ActorRef<A::Msg>,
    props: Props<A>,
    history: ChildHistory,
    restarts: RestartHistory,
}

/// A supervisor of many children built from one template. Build it with
/// [`DynamicSupervisor::props`].
///
/// ```
/// use actor_core::prelude::*;
/// use supervision::{DynamicSupervisor, DynamicSupervisorApi};
///
/// struct Room { id: u32 }
/// impl Actor for Room {
///     type Msg = String;
///     async fn handle(&mut self, _: String, _: &mut Context<Self>) -> ActorResult { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = ActorSystem::new(SystemConfig::default()).unwrap();
/// let rooms = system
///     .spawn(DynamicSupervisor::props(|id: u32| Props::new(move || Room { id }).name(format!("room-{id}"))).name("rooms"))
///     .unwrap();
/// let room_7 = rooms.start_child(7).await.unwrap();
/// assert_eq!(room_7.path().as_str(), "/user/rooms/room-7");
/// assert_eq!(rooms.children().await.unwrap().len(), 1);
/// # }
/// ```
pub struct DynamicSupervisor<A: Actor, Args: Send + 'static> {
    make: Arc<dyn Fn(Args) -> Props<A> + Send + Sync>,
    decider: Decider,
    restart: RestartType,
    shutdown: Shutdown,
    max_children: Option<usize>,
    children: BTreeMap<ActorId, DynChild<A>>,
    /// Ended children waiting for a delayed start, by ticket.
    pending: BTreeMap<u64, DynChild<A>>,
    next_ticket: u64,
    jitter: Jitter,
}

/// Settings of a [`DynamicSupervisor`], turned into props with [`DynamicSupervisorBuilder::props`].
pub struct DynamicSupervisorBuilder<A: Actor, Args: Send + 'static> {
    make: Arc<dyn Fn(Args) -> Props<A> + Send + Sync>,
    decider: Decider,
    restart: RestartType,
    shutdown: Shutdown,
    max_children: Option<usize>,
}

impl<A: Actor, Args: Send + 'static> DynamicSupervisorBuilder<A, Args> {
    /// Restarts allowed per child within a window (default 3 within 5 s); beyond, the child is
    /// stopped.
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.decider.intensity = Intensity {
            max_restarts,
            within,
        };
        self
    }

    /// Restart children after exponential delays.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.decider.backoff = Some(backoff);
        self
    }

    /// The children's restart type (default transient).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// How children are shut down (default 5 s, then kill).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Refuse to start more than this many children.
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// The supervisor's props.
    pub fn props(self) -> Props<DynamicSupervisor<A, Args>> {
        Props::new(move || DynamicSupervisor {
            make: self.make.clone(),
            decider: self.decider,
            restart: self.restart,
            shutdown: self.shutdown,
            max_children: self.max_children,
            children: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_ticket: 0,
            jitter: Jitter::new(0xD1CE),
        })
    }
}

impl<A: Actor, Args: Send + 'static> DynamicSupervisor<A, Args> {
    /// A builder whose children are made by `make(args)`.
    pub fn builder(
        make: impl Fn(Args) -> Props<A> + Send + Sync + 'static,
    ) -> DynamicSupervisorBuilder<A, Args> {
        DynamicSupervisorBuilder {
            make: Arc::new(make),
            decider: Decider::new(Strategy::OneForOne),
            restart: RestartType::Transient,
            shutdown: Shutdown::default(),
            max_children: None,
        }
    }

    /// Props with the defaults (transient children, 3 restarts per child within 5 s).
    pub fn props(
        make: impl Fn(Args) -> Props<A> + Send + Sync + 'static,
    ) -> Props<DynamicSupervisor<A, Args>> {
        Self::builder(make).props()
    }

    /// Starts an ended child again from its props (a new actor, with a new ref, at the same path
    /// when the props name it). Its restart history carries over.
    fn respawn(&mut self, old: DynChild<A>, ctx: &mut Context<Self>) {
        match ctx.spawn(old.props.clone()) {
            Ok(child) => {
                ctx.watch(&child);
                self.children.insert(
                    child.id(),
                    DynChild {
                        actor_ref: child,
                        props: old.props,
                        history: old.history,
                        restarts: old.restarts,
                    },
                );
            }
            Err(e) => {
                tracing::error!(supervisor = %ctx.path(), error = %e, "could not start an ended child again");
            }
        }
    }

    fn decide(&mut self, child: ActorId, exit: Exit) -> Decision {
        let Some(c) = self.children.get_mut(&child) else {
            return Decision::Leave;
        };
        let now = Instant::now();
        let ce = ChildExit {
            position: 0,
            siblings: 1,
            restart: self.restart,
            exit,
        };
        let decision = self
            .decider
            .decide(&ce, &c.history, &c.restarts, now, self.jitter.sample());
        if let Decision::Restart { delay, .. } = &decision {
            c.history.record(self.decider.backoff.as_ref(), now, *delay);
            c.restarts.record(now, self.decider.intensity.within);
        }
        decision
    }
}

impl<A: Actor, Args: Send + 'static> Actor for DynamicSupervisor<A, Args> {
    type Msg = DynamicMsg<A::Msg, Args>;

    async fn handle(&mut self, msg: Self::Msg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            DynamicMsg::Start(args, reply) => {
                if let Some(max) = self.max_children
                    && self.children.len() >= max
                {
                    reply.send(Err(SupervisorError::TooManyChildren(max)));
                    return Ok(());
                }
                let props = (self.make)(args);
                match ctx.spawn_and_wait_started(props.clone()).await {
                    Ok(child) => {
                        ctx.watch(&child);
                        self.children.insert(
                            child.id(),
                            DynChild {
                                actor_ref: child.clone(),
                                props,
                                history: ChildHistory::default(),
                                restarts: RestartHistory::default(),
                            },
                        );
                        reply.send(Ok(child));
                    }
                    Err(e) => {
                        let id = match &e {
                            StartError::Failed(f) => f.actor.to_string(),
                            StartError::Ended(p) => p.to_string(),
                            other => other.to_string(),
                        };
                        discard_failed_start(ctx, &e).await;
                        reply.send(Err(SupervisorError::StartFailed {
                            id,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            DynamicMsg::Terminate(id, reply) => {
                let known = self.children.remove(&id).is_some();
                if known {
                    ctx.unwatch(id);
                    ctx.shutdown_child(id, self.shutdown.timeout()).await;
                }
                reply.send(known);
            }
            DynamicMsg::Children(reply) => {
                reply.send(
                    self.children
                        .values()
                        .map(|c| c.actor_ref.clone())
                        .collect(),
                );
            }
            DynamicMsg::Respawn(ticket) => {
                if let Some(child) = self.pending.remove(&ticket) {
                    self.respawn(child, ctx);
                }
            }
        }
        Ok(())
    }

    fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
        let decision = self.decide(failure.child, Exit::Failed);
        let restarts = self
            .children
            .get(&failure.child)
            .map_or(0, |c| c.history.total);
        match &decision {
            Decision::Restart { delay, .. } => tracing::info!(
                supervisor = %ctx.path(),
                child = %failure.failure.actor,
                error = %failure.failure.message,
                restarts,
                ?delay,
                "restarting child"
            ),
            Decision::Leave => tracing::info!(
                supervisor = %ctx.path(),
                child = %failure.failure.actor,
                error = %failure.failure.message,
                "child not restarted"
            ),
            Decision::Escalate { restarts, within } => tracing::warn!(
                supervisor = %ctx.path(),
                child = %failure.failure.actor,
                error = %failure.failure.message,
                restarts,
                ?within,
                "child exceeded its restart intensity; giving up on it"
            ),
        }
        match decision {
            Decision::Restart { delay, .. } if delay.is_zero() => Directive::Restart,
            Decision::Restart { delay, .. } => Directive::RestartAfter(delay),
            Decision::Leave | Decision::Escalate { .. } => Directive::Stop,
        }
    }

    async fn on_signal(&mut self, signal: Signal, ctx: &mut Context<Self>) -> ActorResult {
        let Signal::Terminated(t) = signal else {
            return Ok(());
        };
        if !self.children.contains_key(&t.id) {
            return Ok(());
        }
        // A child stopped after a failure was already decided about (it exceeded its intensity,
        // or is not restarted after failures); others are decided now by their restart type.
        let decision = match &t.reason {
            actor_core::TerminationReason::Failed(_) => Decision::Leave,
            reason => self.decide(
                t.id,
                if reason.is_normal() {
                    Exit::Normal
                } else {
                    Exit::Failed
                },
            ),
        };
        let Some(child) = self.children.remove(&t.id) else {
            return Ok(());
        };
        match decision {
            Decision::Restart { delay, .. } => {
                tracing::info!(supervisor = %ctx.path(), child = %t.path, reason = %t.reason, ?delay, "starting an ended child again");
                if delay.is_zero() {
                    self.respawn(child, ctx);
                } else {
                    self.next_ticket += 1;
                    let ticket = self.next_ticket;
                    self.pending.insert(ticket, child);
                    ctx.send_after(
                        format!("respawn-{ticket}"),
                        delay,
                        DynamicMsg::Respawn(ticket),
                    );
                }
            }
            Decision::Leave => {
                tracing::debug!(supervisor = %ctx.path(), child = %t.path, reason = %t.reason, "child ended");
            }
            Decision::Escalate { restarts, within } => {
                tracing::warn!(
                    supervisor = %ctx.path(),
                    child = %t.path,
                    restarts,
                    ?within,
                    "child exceeded its restart intensity; giving up on it"
                );
            }
        }
        Ok(())
    }

    async fn pre_stop(&mut self, ctx: &mut Context<Self>) {
        let timeout = self.shutdown.timeout();
        let ids: Vec<ActorId> = self.children.keys().rev().copied().collect();
        for id in ids {
            ctx.shutdown_child(id, timeout).await;
        }
        self.children.clear();
    }
}

/// The run-time API of a dynamic supervisor, on its ref.
pub trait DynamicSupervisorApi<M: Send + 'static, Args> {
    /// Starts a child from `args`; its ref once it has started.
    fn start_child(
        &self,
        args: Args,
    ) -> impl Future<Output = Result<ActorRef<M>, SupervisorError>> + Send;
    /// Stops a child; false if it is not a child.
    fn terminate_child(
        &self,
        child: ActorId,
    ) -> impl Future<Output = Result<bool, SupervisorError>> + Send;
    /// The live children.
    fn children(&self) -> impl Future<Output = Result<Vec<ActorRef<M>>, SupervisorError>> + Send;
}

impl<M: Send + 'static, Args: Send + 'static> DynamicSupervisorApi<M, Args>
    for ActorRef<DynamicMsg<M, Args>>
{
    async fn start_child(&self, args: Args) -> Result<ActorRef<M>, SupervisorError> {
        self.ask(|r| DynamicMsg::Start(args, r)).await?
    }
    async fn terminate_child(&self, child: ActorId) -> Result<bool, SupervisorError> {
        Ok(self.ask(|r| DynamicMsg::Terminate(child, r)).await?)
    }
    async fn children(&self) -> Result<Vec<ActorRef<M>>, SupervisorError> {
        Ok(self.ask(DynamicMsg::Children).await?)
    }
}
