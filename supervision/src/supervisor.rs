//! [`Supervisor`]: an actor that owns an ordered list of children described by [`ChildSpec`]s,
//! as OTP's `supervisor` module does.
//!
//! * Children start in declaration order, each after the previous one finished `started`; a child
//!   that fails to start fails the supervisor's start with an error naming it (the children
//!   already started are shut down in reverse order first).
//! * Failures are decided by the supervisor's [`SupervisionStrategy`]; children that stop
//!   normally (or are killed) are handled by their restart type: a permanent child is started
//!   again (a new actor at the same path), a transient one is left stopped, a temporary one is
//!   removed.
//! * Beyond the restart intensity the supervisor fails itself (escalates); its own supervisor then
//!   restarts or stops it, and either way its children are shut down in reverse order first.
//! * Shutdown (stop, or restart of the supervisor) stops children in reverse order, each within
//!   its [`Shutdown`] timeout, then kills it.
//! * Children can be started, terminated, restarted and deleted at run time ([`SupervisorApi`]).
//!   A supervisor that restarts comes back with its declared children only, as in OTP.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorId, ActorPath, ActorRef, ActorResult, AskError, ChildFailure, Context, Directive,
    Props, Reply, Signal, StartError,
};
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::decider::{Decision, Exit, RestartType, Strategy};
use crate::strategy::{SupervisionStrategy, directive_for};

/// How a child is shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop; kill it if it has not ended after this long.
    Timeout(Duration),
    /// Kill it at once (no stopped hook).
    Kill,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

impl Shutdown {
    /// The graceful period, `None` to kill at once.
    pub(crate) fn timeout(self) -> Option<Duration> {
        match self {
            Shutdown::Timeout(d) => Some(d),
            Shutdown::Kill => None,
        }
    }
}

type StartFn = Arc<
    dyn for<'a> Fn(
            &'a mut Context<Supervisor>,
            String,
        ) -> BoxFuture<'a, Result<(ActorId, ActorPath), StartError>>
        + Send
        + Sync,
>;

/// A child of a [`Supervisor`]: its id (also its actor name, so its path is
/// `<supervisor path>/<id>`), how to build it, its restart type and its shutdown.
///
/// ```
/// use actor_core::prelude::*;
/// use supervision::{ChildSpec, RestartType, Shutdown};
/// use std::time::Duration;
/// # struct Db; impl Actor for Db { type Msg = (); async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult { Ok(()) } }
/// let spec = ChildSpec::new("db", Props::new(|| Db))
///     .restart(RestartType::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
/// assert_eq!(spec.id(), "db");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    id: String,
    start: StartFn,
    restart: RestartType,
    shutdown: Shutdown,
}

impl ChildSpec {
    /// A permanent child built from `props` (its name is replaced by `id`).
    pub fn new<A: Actor>(id: impl Into<String>, props: Props<A>) -> Self {
        let start: StartFn = Arc::new(move |ctx, name| {
            let props = props.clone().name(name);
            Box::pin(async move {
                let child = ctx.spawn_and_wait_started(props).await?;
                ctx.watch(&child);
                Ok((child.id(), child.path()))
            })
        });
        Self {
            id: id.into(),
            start,
            restart: RestartType::Permanent,
            shutdown: Shutdown::default(),
        }
    }

    /// Sets the restart type (default: permanent).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is shut down (default: 5 s, then kill).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// Errors of the supervisor's run-time API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// No child has this id.
    #[error("no child with id {0:?}")]
    NotFound(String),
    /// A child with this id exists already.
    #[error("a child with id {0:?} exists already")]
    AlreadyPresent(String),
    /// The child is running (delete needs a stopped child).
    #[error("child {0:?} is running; terminate it first")]
    Running(String),
    /// The child failed to start.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The dynamic supervisor holds its maximum number of children.
    #[error("the supervisor already has its maximum of {0} children")]
    TooManyChildren(usize),
    /// Restart intensity exceeded.
    #[error("restart intensity exceeded: {restarts} restarts within {within:?}")]
    IntensityExceeded {
        /// Restarts in the window.
        restarts: usize,
        /// The window.
        within: Duration,
    },
    /// The supervisor could not be asked (stopped, busy past the timeout).
    #[error("the supervisor did not answer: {0}")]
    Unavailable(#[from] AskError),
}

/// A child's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStatus {
    /// Running.
    Running,
    /// Waiting for a delayed restart.
    Restarting,
    /// Not running (terminated, or a transient child that stopped normally).
    Stopped,
}

/// One child, as [`SupervisorApi::which_children`] reports it.
#[derive(Clone, Debug)]
pub struct ChildReport {
    /// The spec's id.
    pub id: String,
    /// The running actor's path.
    pub path: Option<ActorPath>,
    /// Its state.
    pub status: ChildStatus,
    /// Its restart type.
    pub restart: RestartType,
    /// Restarts so far (in place or by starting it again).
    pub restarts: u32,
}

/// Messages of a [`Supervisor`]; use them through [`SupervisorApi`].
#[non_exhaustive]
pub enum SupervisorMsg {
    /// Add and start a child.
    StartChild(ChildSpec, Reply<Result<ActorPath, SupervisorError>>),
    /// Stop a child (per its shutdown), keeping its spec.
    TerminateChild(String, Reply<Result<(), SupervisorError>>),
    /// Restart a running child in place, or start a stopped one again.
    RestartChild(String, Reply<Result<ActorPath, SupervisorError>>),
    /// Remove a stopped child's spec.
    DeleteChild(String, Reply<Result<(), SupervisorError>>),
    /// List the children in start order.
    WhichChildren(Reply<Vec<ChildReport>>),
    /// Internal: a delayed start of a child that had ended.
    #[doc(hidden)]
    Respawn(String),
}

struct Slot {
    spec: ChildSpec,
    running: Option<(ActorId, ActorPath)>,
    /// The id of its latest actor, kept after it ends: restart history is keyed by it.
    last_id: Option<ActorId>,
    restarting_until: Option<Instant>,
    restarts: u32,
}

/// An OTP-style supervisor actor. Build it with [`Supervisor::builder`].
///
/// ```
/// use actor_core::prelude::*;
/// use supervision::{ChildSpec, Strategy, Supervisor, SupervisorApi};
/// use std::time::Duration;
///
/// #[derive(Default)]
/// struct Chat;
/// impl Actor for Chat {
///     type Msg = String;
///     async fn handle(&mut self, _: String, _: &mut Context<Self>) -> ActorResult { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = ActorSystem::new(SystemConfig::default()).unwrap();
/// // Waits for the supervisor's `started`, so its children exist when this returns.
/// let sup = system
///     .spawn_and_wait_started(
///         Supervisor::builder(Strategy::OneForOne)
///             .intensity(3, Duration::from_secs(5))
///             .child(ChildSpec::new("chat", Props::new(Chat::default)))
///             .props()
///             .name("game"),
///     )
///     .await
///     .unwrap();
/// let chat: ActorRef<String> = system.lookup("/user/game/chat").unwrap();
/// chat.tell("hello".into());
/// assert_eq!(sup.which_children().await.unwrap().len(), 1);
/// # }
/// ```
pub struct Supervisor {
    strategy: SupervisionStrategy,
    slots: Vec<Slot>,
}

/// Builds the [`Props`] of a [`Supervisor`].
#[derive(Clone)]
pub struct SupervisorBuilder {
    strategy: SupervisionStrategy,
    specs: Vec<ChildSpec>,
}

impl SupervisorBuilder {
    /// At most `max_restarts` within `within` (default 3 in 5 s).
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.strategy = self.strategy.intensity(max_restarts, within);
        self
    }

    /// Restart with exponential backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.strategy = self.strategy.backoff(backoff);
        self
    }

    /// Seeds the backoff jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.strategy = self.strategy.seed(seed);
        self
    }

    /// Appends a child (children start in the order they are added).
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// The props. Each (re)start of the supervisor builds fresh state with fresh restart history.
    pub fn props(self) -> Props<Supervisor> {
        Props::new(move || Supervisor {
            strategy: self.strategy.clone(),
            slots: self
                .specs
                .iter()
                .map(|spec| Slot {
                    spec: spec.clone(),
                    running: None,
                    last_id: None,
                    restarting_until: None,
                    restarts: 0,
                })
                .collect(),
        })
    }
}

impl Supervisor {
    /// A builder with the given strategy, default intensity, no backoff, no children.
    pub fn builder(strategy: Strategy) -> SupervisorBuilder {
        SupervisorBuilder {
            strategy: SupervisionStrategy::new(strategy),
            specs: Vec::new(),
        }
    }

    fn order(&self) -> Vec<ActorId> {
        self.slots
            .iter()
            .filter_map(|s| s.running.as_ref().map(|(id, _)| *id))
            .collect()
    }

    fn slot_of(&self, child: ActorId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.running.as_ref().is_some_and(|(id, _)| *id == child))
    }

    fn slot_named(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.spec.id == name)
    }

    async fn start_slot(
        &mut self,
        i: usize,
        ctx: &mut Context<Self>,
    ) -> Result<ActorPath, SupervisorError> {
        let spec = self.slots[i].spec.clone();
        match (spec.start)(ctx, spec.id.clone()).await {
            Ok((id, path)) => {
                let slot = &mut self.slots[i];
                slot.running = Some((id, path.clone()));
                slot.restarting_until = None;
                if let Some(old) = slot.last_id.replace(id) {
                    self.strategy.rekey(old, id);
                }
                self.strategy.set_restart_type(id, spec.restart);
                tracing::debug!(supervisor = %ctx.path(), child = %path, "child started");
                Ok(path)
            }
            Err(e) => {
                discard_failed_start(ctx, &e).await;
                tracing::error!(supervisor = %ctx.path(), child = %spec.id, error = %e, "child failed to start");
                Err(SupervisorError::StartFailed {
                    id: spec.id,
                    reason: e.to_string(),
                })
            }
        }
    }

    async fn shutdown_slot(&mut self, i: usize, ctx: &mut Context<Self>) {
        if let Some((id, path)) = self.slots[i].running.take() {
            let reason = ctx
                .shutdown_child(id, self.slots[i].spec.shutdown.timeout())
                .await;
            tracing::debug!(supervisor = %ctx.path(), child = %path, ?reason, "child shut down");
        }
        self.slots[i].restarting_until = None;
    }

    async fn shutdown_all(&mut self, ctx: &mut Context<Self>) {
        for i in (0..self.slots.len()).rev() {
            self.shutdown_slot(i, ctx).await;
        }
    }

    /// The ids in declaration order, with `id` standing in slot `i`.
    fn order_with(&self, i: usize, id: ActorId) -> Vec<ActorId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(j, s)| {
                if j == i {
                    Some(id)
                } else {
                    s.running.as_ref().map(|(x, _)| *x)
                }
            })
            .collect()
    }

    /// A child ended by itself (normal stop, kill, stopped after a failure, or a failed start
    /// again): apply its restart type and the strategy.
    async fn on_child_ended(
        &mut self,
        i: usize,
        exit: Exit,
        ctx: &mut Context<Self>,
        why: &str,
    ) -> ActorResult {
        let Some(id) = self.slots[i].last_id else {
            return Ok(());
        };
        let path = ctx.path().child(&self.slots[i].spec.id);
        let order = self.order_with(i, id);
        let sup = ctx.path().clone();
        let (decision, also) = self.strategy.decide(id, &order, exit, &sup, &path, why);
        self.slots[i].running = None;
        match decision {
            Decision::Restart { delay, .. } => {
                for sibling in also {
                    ctx.restart_child(sibling);
                    if let Some(j) = self.slot_of(sibling) {
                        self.slots[j].restarts += 1;
                    }
                }
                self.slots[i].restarts += 1;
                let name = self.slots[i].spec.id.clone();
                if delay.is_zero() {
                    self.respawn(&name, ctx).await?;
                } else {
                    self.slots[i].restarting_until = Some(Instant::now() + delay);
                    ctx.send_after(
                        format!("respawn-{name}"),
                        delay,
                        SupervisorMsg::Respawn(name),
                    );
                }
            }
            Decision::Leave => {
                self.strategy.forget(id);
                if self.slots[i].spec.restart == RestartType::Temporary {
                    self.slots.remove(i);
                }
            }
            Decision::Escalate { restarts, within } => {
                return Err(Box::new(SupervisorError::IntensityExceeded {
                    restarts,
                    within,
                }));
            }
        }
        Ok(())
    }

    /// Starts an ended child again; a child that fails to start counts as another failure.
    async fn respawn(&mut self, name: &str, ctx: &mut Context<Self>) -> ActorResult {
        let Some(i) = self.slot_named(name) else {
            return Ok(());
        };
        if self.slots[i].running.is_some() {
            return Ok(());
        }
        if self.start_slot(i, ctx).await.is_err() {
            return Box::pin(self.on_child_ended(i, Exit::Failed, ctx, "failed to start")).await;
        }
        Ok(())
    }

    fn report(&self) -> Vec<ChildReport> {
        let now = Instant::now();
        self.slots
            .iter()
            .map(|s| ChildReport {
                id: s.spec.id.clone(),
                path: s.running.as_ref().map(|(_, p)| p.clone()),
                status: match (&s.running, s.restarting_until) {
                    (Some(_), Some(t)) if t > now => ChildStatus::Restarting,
                    (Some(_), _) => ChildStatus::Running,
                    (None, Some(_)) => ChildStatus::Restarting,
                    (None, None) => ChildStatus::Stopped,
                },
                restart: s.spec.restart,
                restarts: s.restarts,
            })
            .collect()
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for i in 0..self.slots.len() {
            if let Err(e) = self.start_slot(i, ctx).await {
                self.shutdown_all(ctx).await;
                return Err(Box::new(e));
            }
        }
        Ok(())
    }

    async fn handle(&mut self, msg: SupervisorMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            SupervisorMsg::StartChild(spec, reply) => {
                if self.slot_named(&spec.id).is_some() {
                    reply.send(Err(SupervisorError::AlreadyPresent(spec.id)));
                    return Ok(());
                }
                self.slots.push(Slot {
                    spec,
                    running: None,
                    last_id: None,
                    restarting_until: None,
                    restarts: 0,
                });
                let i = self.slots.len() - 1;
                let res = self.start_slot(i, ctx).await;
                if res.is_err() {
                    self.slots.remove(i);
                }
                reply.send(res);
            }
            SupervisorMsg::TerminateChild(name, reply) => match self.slot_named(&name) {
                Some(i) => {
                    self.shutdown_slot(i, ctx).await;
                    reply.send(Ok(()));
                }
                None => reply.send(Err(SupervisorError::NotFound(name))),
            },
            SupervisorMsg::RestartChild(name, reply) => match self.slot_named(&name) {
                Some(i) => match self.slots[i].running.clone() {
                    Some((id, path)) => {
                        ctx.restart_child(id);
                        self.slots[i].restarts += 1;
                        reply.send(Ok(path));
                    }
                    None => {
                        let res = self.start_slot(i, ctx).await;
                        if res.is_ok() {
                            self.slots[i].restarts += 1;
                        }
                        reply.send(res);
                    }
                },
                None => reply.send(Err(SupervisorError::NotFound(name))),
            },
            SupervisorMsg::DeleteChild(name, reply) => match self.slot_named(&name) {
                Some(i) if self.slots[i].running.is_some() => {
                    reply.send(Err(SupervisorError::Running(name)))
                }
                Some(i) => {
                    self.slots.remove(i);
                    ctx.cancel_timer(format!("respawn-{name}"));
                    reply.send(Ok(()));
                }
                None => reply.send(Err(SupervisorError::NotFound(name))),
            },
            SupervisorMsg::WhichChildren(reply) => reply.send(self.report()),
            SupervisorMsg::Respawn(name) => self.respawn(&name, ctx).await?,
        }
        Ok(())
    }

    async fn on_signal(&mut self, signal: Signal, ctx: &mut Context<Self>) -> ActorResult {
        if let Signal::Terminated(t) = signal
            && let Some(i) = self.slot_of(t.id)
        {
            let exit = if t.reason.is_normal() {
                Exit::Normal
            } else {
                Exit::Failed
            };
            let why = t.reason.to_string();
            self.on_child_ended(i, exit, ctx, &why).await?;
        }
        Ok(())
    }

    fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
        let Some(i) = self.slot_of(failure.child) else {
            return Directive::Stop;
        };
        let order = self.order();
        let sup = ctx.path().clone();
        let (decision, also) = self.strategy.decide(
            failure.child,
            &order,
            Exit::Failed,
            &sup,
            &failure.failure.actor,
            &failure.failure.message,
        );
        if let Decision::Restart { delay, .. } = &decision {
            self.slots[i].restarts += 1;
            if !delay.is_zero() {
                self.slots[i].restarting_until = Some(Instant::now() + *delay);
            }
            for sibling in also {
                ctx.restart_child(sibling);
                if let Some(j) = self.slot_of(sibling) {
                    self.slots[j].restarts += 1;
                }
            }
        }
        directive_for(&decision)
    }

    async fn pre_stop(&mut self, ctx: &mut Context<Self>) {
        self.shutdown_all(ctx).await;
    }

    async fn pre_restart(&mut self, _failure: &actor_core::Failure, ctx: &mut Context<Self>) {
        self.shutdown_all(ctx).await;
    }
}

/// Ends a child whose start failed: it is suspended waiting for a directive, and its pending
/// failure report becomes moot once it has ended.
pub(crate) async fn discard_failed_start<A: Actor>(ctx: &mut Context<A>, error: &StartError) {
    if let StartError::Failed(failure) = error {
        let failed = ctx.children().into_iter().find(|c| c.path == failure.actor);
        if let Some(c) = failed {
            ctx.shutdown_child(c.id, None).await;
        }
    }
}

/// The run-time API of a supervisor, on its ref.
pub trait SupervisorApi {
    /// Adds and starts a child; returns its path.
    fn start_child(
        &self,
        spec: ChildSpec,
    ) -> impl Future<Output = Result<ActorPath, SupervisorError>> + Send;
    /// Stops a child per its shutdown, keeping its spec.
    fn terminate_child(&self, id: &str)
    -> impl Future<Output = Result<(), SupervisorError>> + Send;
    /// Restarts a running child in place, or starts a stopped one again.
    fn restart_child(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ActorPath, SupervisorError>> + Send;
    /// Removes a stopped child's spec.
    fn delete_child(&self, id: &str) -> impl Future<Output = Result<(), SupervisorError>> + Send;
    /// The children in start order.
    fn which_children(
        &self,
    ) -> impl Future<Output = Result<Vec<ChildReport>, SupervisorError>> + Send;
}

impl SupervisorApi for ActorRef<SupervisorMsg> {
    async fn start_child(&self, spec: ChildSpec) -> Result<ActorPath, SupervisorError> {
        self.ask(|r| SupervisorMsg::StartChild(spec, r)).await?
    }
    async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.ask(|r| SupervisorMsg::TerminateChild(id, r)).await?
    }
    async fn restart_child(&self, id: &str) -> Result<ActorPath, SupervisorError> {
        let id = id.to_owned();
        self.ask(|r| SupervisorMsg::RestartChild(id, r)).await?
    }
    async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.ask(|r| SupervisorMsg::DeleteChild(id, r)).await?
    }
    async fn which_children(&self) -> Result<Vec<ChildReport>, SupervisorError> {
        Ok(self.ask(SupervisorMsg::WhichChildren).await?)
    }
}
