//! [`ActorSystem`]: owns everything it runs (no globals): the user guardian and its top-level
//! actors, the registry of named actors, the dead-letter office, and graceful shutdown.
//!
//! The user guardian is not a task: it is the system itself acting as parent of the top-level
//! actors. It applies [`SystemConfig::default_supervision`] to their failures, under a mutex that
//! is taken only on spawn, failure and termination of a top-level actor.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxBuildHasher;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::{CellCore, Family, SysTarget, SystemMsg};
use crate::context::StartError;
use crate::dead_letters::{DeadLetterOffice, DeadLetterSubscription};
use crate::failure::{ChildFailure, Directive, RestartLimit, SupervisionPolicy, TerminationReason};
use crate::group::ActorGroup;
use crate::path::{ActorId, ActorPath};
use crate::props::Props;
use crate::runner::spawn_actor;
use crate::timer::wheel::Wheel;

/// Settings of one actor system. Build with struct update syntax:
///
/// ```
/// use actor_core::SystemConfig;
/// use std::time::Duration;
/// let config = SystemConfig { ask_timeout: Duration::from_secs(2), ..Default::default() };
/// ```
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The system's name (logs).
    pub name: String,
    /// Default timeout of `ActorRef::ask` (5 s).
    pub ask_timeout: Duration,
    /// User messages an actor handles per activation before yielding its worker (64; at most
    /// 65,535: larger values count as that).
    pub throughput: usize,
    /// The policy of every actor's default `on_child_failure` and of the user guardian: restart,
    /// at most 10 times within 10 s, then stop the child.
    pub default_supervision: RestartLimit,
    /// How many dead-letter events a subscriber may lag behind (1024).
    pub dead_letter_buffer: usize,
    /// Default stash capacity per actor (1000).
    pub stash_capacity: usize,
    /// Worker threads of a runtime created by [`ActorSystem::with_runtime`] (`None`: one per
    /// core).
    pub worker_threads: Option<usize>,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            name: "actors".to_owned(),
            ask_timeout: crate::actor_ref::DEFAULT_ASK_TIMEOUT,
            throughput: 64,
            default_supervision: RestartLimit::default(),
            dead_letter_buffer: 1024,
            stash_capacity: 1000,
            worker_threads: None,
        }
    }
}

/// Whether the runtime behind `handle` has tokio's timer driver. tokio has no query for it: a
/// `Sleep` made without it panics ("timers are disabled"), so this makes one (never polled, so
/// never registered with the driver) and catches that panic. With `panic = "abort"` the process
/// ends there, with tokio's message, where it would otherwise end at the first timer.
fn has_timers(handle: &tokio::runtime::Handle) -> bool {
    let _entered = handle.enter();
    std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

/// Errors creating a system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// `ActorSystem::new` was called outside a tokio runtime.
    #[error(
        "no tokio runtime: call ActorSystem::new inside a runtime, or use ActorSystem::with_runtime"
    )]
    NoRuntime,
    /// Building the runtime failed.
    #[error("building the tokio runtime failed: {0}")]
    Runtime(#[from] std::io::Error),
    /// The runtime was built without tokio's timer driver, which actors' timers, receive
    /// timeouts and ask timeouts run on.
    #[error(
        "the tokio runtime has no timer driver: build it with enable_time() or enable_all() \
         (actors' timers, receive timeouts and ask timeouts need it)"
    )]
    TimersDisabled,
}

/// Errors spawning an actor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Another live actor has this path.
    #[error("an actor named {0} already exists")]
    NameTaken(ActorPath),
    /// The name is not allowed.
    #[error("invalid actor name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The system (or the parent) is shutting down.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// The dedicated thread could not be started.
    #[error("starting the actor's dedicated thread failed: {0}")]
    Thread(#[from] std::io::Error),
    /// The actor's group no longer runs: the runtime its task was on has shut down.
    #[error("the actor group's task has ended (its runtime shut down)")]
    GroupEnded,
}

/// Errors looking an actor up by path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No live named actor has this path.
    #[error("no actor at {0}")]
    NotFound(String),
    /// The actor exists but accepts another message type.
    #[error("actor {path} accepts {actual}, not {expected}")]
    TypeMismatch {
        /// The path.
        path: String,
        /// The message type asked for.
        expected: &'static str,
        /// The message type the actor accepts.
        actual: &'static str,
    },
}

/// What [`ActorSystem::shutdown`] did.
#[derive(Clone, Debug, Default)]
pub struct ShutdownReport {
    /// Every actor (at any depth) that was killed because the deadline passed.
    pub killed: Vec<ActorPath>,
    /// Top-level actors still not ended after being killed (blocked in synchronous code on a
    /// dedicated thread).
    pub unresponsive: Vec<ActorPath>,
}

impl ShutdownReport {
    /// True when every actor stopped gracefully within the deadline.
    pub fn is_graceful(&self) -> bool {
        self.killed.is_empty() && self.unresponsive.is_empty()
    }
}

struct RegistryEntry {
    id: ActorId,
    actor_ref: Box<dyn Any + Send + Sync>,
    message_type: &'static str,
}

/// The user guardian's children: the live top-level actors, and the restart history of those
/// that restarted. Kept apart because most actors never restart.
#[derive(Default)]
struct Guardian {
    live: TopLevel,
    restarts: HashMap<ActorId, RestartHistory, FxBuildHasher>,
}

/// The live top-level actors, in numbered slots: each actor's cell keeps its slot
/// (`CellCore::guardian_slot`) and names it when it reports to the guardian, so adding and
/// removing one is an index, not a hash and a probe. Actors spawned one after another take
/// neighbouring slots, which keeps a burst of spawns (or of stops) on few cache lines; a hash set
/// scattered them over its whole table (measured in `benches/HISTORY.md`, "Session 14"). 16 bytes
/// a slot; a freed slot is reused, the most recently freed first.
#[derive(Default)]
struct TopLevel {
    slots: Vec<Option<Arc<dyn SysTarget>>>,
    free: Vec<u32>,
    len: usize,
}

impl TopLevel {
    /// Adds `target` and tells its cell its slot.
    fn insert(&mut self, target: Arc<dyn SysTarget>) {
        // The slot is told to the cell before the target moves in: no count taken and given back.
        match self.free.pop() {
            Some(slot) => {
                target.core().set_guardian_slot(slot);
                self.slots[slot as usize] = Some(target);
            }
            None => {
                // More than 4 billion live top-level actors do not fit in memory anyway.
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                target.core().set_guardian_slot(slot);
                self.slots.push(Some(target));
            }
        }
        self.len += 1;
    }

    /// The actor `id` in `slot`, if it is still there.
    fn get(&self, slot: u32, id: &ActorId) -> Option<&Arc<dyn SysTarget>> {
        self.slots
            .get(slot as usize)?
            .as_ref()
            .filter(|t| &t.core().id == id)
    }

    /// Removes the actor `id` from `slot`, if it is there.
    fn remove(&mut self, slot: u32, id: &ActorId) {
        if self.get(slot, id).is_some() {
            self.slots[slot as usize] = None;
            self.free.push(slot);
            self.len -= 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<dyn SysTarget>> {
        self.slots.iter().flatten()
    }
}

pub(crate) struct SystemShared {
    pub(crate) config: SystemConfig,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) dead_letters: DeadLetterOffice,
    /// Every actor's timers wake through this wheel (except a dedicated-thread actor's, which
    /// have one on that thread's runtime), made with the first actor extras (a context's rarely
    /// used parts, which hold the timers).
    wheel: OnceLock<Arc<Wheel>>,
    next_id: AtomicU64,
    registry: RwLock<HashMap<Arc<str>, RegistryEntry>>,
    guardian: Mutex<Guardian>,
    guardian_empty: Notify,
    live: AtomicUsize,
    shutting_down: AtomicBool,
    killed_log: Mutex<Vec<ActorPath>>,
    /// The family of the anonymous top-level actors: the user guardian's children, under
    /// `/user`. Weak, as the family holds the system: made again by the first spawn after the
    /// last of them is gone (see [`SystemShared::top_family`]).
    top_family: Mutex<Weak<Family>>,
}

/// Restart history kept per child: the most recent restarts, oldest first.
pub(crate) const RESTART_HISTORY: usize = 32;

/// A supervised actor's restarts: how many, and the most recent ones. Boxed on the first
/// restart, so an actor that never restarts costs its parent 8 bytes here.
#[derive(Default)]
pub(crate) struct RestartHistory(Option<Box<History>>);

#[derive(Default)]
struct History {
    count: u32,
    /// The latest restarts (at most `RESTART_HISTORY`), oldest first.
    recent: VecDeque<Instant>,
}

impl RestartHistory {
    pub(crate) fn count(&self) -> u32 {
        self.0.as_ref().map_or(0, |h| h.count)
    }

    /// The latest restarts, oldest first.
    pub(crate) fn recent(&self) -> Vec<Instant> {
        self.0
            .as_ref()
            .map(|h| h.recent.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn record(&mut self, now: Instant) {
        let h = self.0.get_or_insert_with(Box::default);
        if h.recent.len() == RESTART_HISTORY {
            h.recent.pop_front();
        }
        h.recent.push_back(now);
        h.count += 1;
    }
}

impl SystemShared {
    /// The system's timer wheel, made on first use.
    pub(crate) fn wheel(&self) -> &Arc<Wheel> {
        self.wheel.get_or_init(|| Wheel::new(self.handle.clone()))
    }

    pub(crate) fn next_id(&self) -> ActorId {
        ActorId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn register<M: Send + 'static>(
        &self,
        path: &ActorPath,
        actor_ref: &ActorRef<M>,
    ) -> Result<(), crate::system::SpawnError> {
        let mut reg = self.registry.write();
        let key: Arc<str> = Arc::from(path.as_str());
        if reg.contains_key(&key) {
            return Err(SpawnError::NameTaken(path.clone()));
        }
        reg.insert(
            key,
            RegistryEntry {
                id: actor_ref.id(),
                actor_ref: Box::new(actor_ref.clone()),
                message_type: std::any::type_name::<M>(),
            },
        );
        Ok(())
    }

    pub(crate) fn actor_started(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    /// Bookkeeping when any actor ends.
    pub(crate) fn actor_ended(&self, core: &CellCore, reason: &TerminationReason) {
        if let Some(path) = core.registered_path() {
            let mut reg = self.registry.write();
            if reg.get(path.as_str()).is_some_and(|e| e.id == core.id) {
                reg.remove(path.as_str());
            }
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
        if matches!(reason, TerminationReason::Killed) && self.is_shutting_down() {
            self.killed_log.lock().push(core.path());
        }
    }

    /// The family of the anonymous top-level actors, made if none of them is left: it holds
    /// the system, so the system holds it only weakly (a strong hold would be a cycle, and a
    /// system whose handles and refs were all dropped would never be freed).
    pub(crate) fn top_family(self: &Arc<Self>) -> Arc<Family> {
        let mut slot = self.top_family.lock();
        if let Some(family) = slot.upgrade() {
            return family;
        }
        let family = Family::top_level(self.clone());
        *slot = Arc::downgrade(&family);
        family
    }

    pub(crate) fn add_top_level(&self, target: Arc<dyn SysTarget>) {
        self.guardian.lock().live.insert(target);
    }

    /// The live top-level actors, as of now.
    fn top_level(&self) -> Vec<Arc<dyn SysTarget>> {
        self.guardian.lock().live.iter().cloned().collect()
    }

    /// The user guardian's system lane: it supervises the top-level actors.
    /// `slot`: the sender's slot among the live top-level actors (`CellCore::guardian_slot`).
    pub(crate) fn guardian_receive(&self, msg: SystemMsg, slot: u32) {
        match msg {
            SystemMsg::ChildFailed { child, failure } => {
                let mut guardian = self.guardian.lock();
                let Guardian { live, restarts } = &mut *guardian;
                let Some(target) = live.get(slot, &child) else {
                    return;
                };
                let now = Instant::now();
                let history = restarts.get(&child);
                let cf = ChildFailure {
                    child,
                    failure,
                    restart_count: history.map_or(0, RestartHistory::count),
                    recent_restarts: history.map(RestartHistory::recent).unwrap_or_default(),
                };
                let mut policy = self.config.default_supervision;
                let directive = match policy.decide(&cf, now) {
                    // The guardian has no parent to escalate to.
                    Directive::Escalate => Directive::Stop,
                    d => d,
                };
                let mut count = cf.restart_count;
                if matches!(directive, Directive::Restart | Directive::RestartAfter(_)) {
                    let history = restarts.entry(child).or_default();
                    history.record(now);
                    count = history.count();
                }
                tracing::info!(
                    actor = %cf.failure.actor,
                    error = %cf.failure.message,
                    restarts = count,
                    ?directive,
                    "user guardian decided on a failed top-level actor"
                );
                target.send_sys(SystemMsg::Supervise(directive));
            }
            SystemMsg::ChildTerminated { child } => {
                let mut guardian = self.guardian.lock();
                guardian.live.remove(slot, &child);
                guardian.restarts.remove(&child);
                if guardian.live.is_empty() {
                    self.guardian_empty.notify_waiters();
                }
            }
            _ => {}
        }
    }
}

/// An actor system: a handle (cheap to clone) to everything it runs. Any number of systems can
/// live side by side in one process.
#[derive(Clone)]
#[repr(transparent)]
pub struct ActorSystem {
    shared: Arc<SystemShared>,
}

impl ActorSystem {
    /// A system on the current tokio runtime. Fails outside a runtime
    /// ([`SystemError::NoRuntime`]) and on a runtime without timers
    /// ([`SystemError::TimersDisabled`]).
    ///
    /// ```
    /// use actor_core::{ActorSystem, SystemConfig, SystemError};
    /// let no_timers = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let made = no_timers.block_on(async { ActorSystem::new(SystemConfig::default()) });
    /// assert!(matches!(made, Err(SystemError::TimersDisabled)));
    /// ```
    pub fn new(config: SystemConfig) -> Result<Self, SystemError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SystemError::NoRuntime)?;
        Self::with_handle(config, handle)
    }

    /// A system whose actors run on the runtime behind `handle`. Fails on a runtime without
    /// timers ([`SystemError::TimersDisabled`]).
    pub fn with_handle(
        config: SystemConfig,
        handle: tokio::runtime::Handle,
    ) -> Result<Self, SystemError> {
        if !has_timers(&handle) {
            return Err(SystemError::TimersDisabled);
        }
        let dead_letters = DeadLetterOffice::new(config.dead_letter_buffer);
        tracing::debug!(system = %config.name, "actor system created");
        Ok(Self {
            shared: Arc::new(SystemShared {
                top_family: Mutex::new(Weak::new()),
                config,
                wheel: OnceLock::new(),
                handle,
                dead_letters,
                next_id: AtomicU64::new(1),
                registry: RwLock::new(HashMap::new()),
                guardian: Mutex::new(Guardian::default()),
                guardian_empty: Notify::new(),
                live: AtomicUsize::new(0),
                shutting_down: AtomicBool::new(false),
                killed_log: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A system that owns its own multi-threaded runtime.
    ///
    /// ```
    /// use actor_core::{ActorSystem, SystemConfig};
    /// let rt = ActorSystem::with_runtime(SystemConfig { worker_threads: Some(2), ..Default::default() }).unwrap();
    /// let count = rt.block_on(async { rt.system().actor_count() });
    /// assert_eq!(count, 0);
    /// ```
    pub fn with_runtime(config: SystemConfig) -> Result<SystemRuntime, SystemError> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .enable_all()
            .thread_name(format!("{}-worker", config.name));
        if let Some(n) = config.worker_threads {
            builder.worker_threads(n.max(1));
        }
        let runtime = builder.build()?;
        let system = Self::with_handle(config, runtime.handle().clone())?;
        Ok(SystemRuntime {
            runtime: Some(runtime),
            system,
        })
    }

    pub(crate) fn from_shared(shared: Arc<SystemShared>) -> Self {
        Self { shared }
    }

    /// The system behind `shared`, borrowed (no reference count taken).
    pub(crate) fn lend(shared: &Arc<SystemShared>) -> &Self {
        // SAFETY: `ActorSystem` is `repr(transparent)` over `Arc<SystemShared>`: the same layout,
        // and the borrow keeps `shared`'s lifetime.
        unsafe { &*(shared as *const Arc<SystemShared>).cast::<Self>() }
    }

    pub(crate) fn shared(&self) -> &Arc<SystemShared> {
        &self.shared
    }

    /// The configuration.
    pub fn config(&self) -> &SystemConfig {
        &self.shared.config
    }

    /// Spawns a top-level actor under the user guardian (path `/user/<name>`).
    pub fn spawn<A: Actor>(&self, props: Props<A>) -> Result<ActorRef<A::Msg>, SpawnError> {
        let (actor_ref, _) = spawn_actor(&self.shared.top_family(), props, None, |target| {
            self.shared.add_top_level(target)
        })?;
        Ok(actor_ref)
    }

    /// Spawns a top-level actor and waits until its `started` hook has finished, e.g. so that a
    /// supervisor's children exist when this returns. A start failure is returned as
    /// [`StartError::Failed`] (and handled by the guardian's policy like any failure).
    pub async fn spawn_and_wait_started<A: Actor>(
        &self,
        props: Props<A>,
    ) -> Result<ActorRef<A::Msg>, StartError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (actor_ref, _) = spawn_actor(&self.shared.top_family(), props, Some(tx), |target| {
            self.shared.add_top_level(target)
        })?;
        match rx.await {
            Ok(Ok(())) => Ok(actor_ref),
            Ok(Err(failure)) => Err(StartError::Failed(failure)),
            Err(_) => Err(StartError::Ended(actor_ref.path())),
        }
    }

    /// Finds a live named actor by path (`/user/lobby/room-7`, or `lobby` for `/user/lobby`),
    /// checking that it accepts `M`.
    pub fn lookup<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, LookupError> {
        let full = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/user/{path}")
        };
        let reg = self.shared.registry.read();
        let entry = reg
            .get(full.as_str())
            .ok_or_else(|| LookupError::NotFound(full.clone()))?;
        entry
            .actor_ref
            .downcast_ref::<ActorRef<M>>()
            .cloned()
            .ok_or_else(|| LookupError::TypeMismatch {
                path: full.clone(),
                expected: std::any::type_name::<M>(),
                actual: entry.message_type,
            })
    }

    /// Dead letters so far (exact).
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead_letters.count()
    }

    /// Counts (and publishes) a dead letter on behalf of a transport or another [`crate::RefTarget`]
    /// that could not deliver a message.
    pub fn record_dead_letter(
        &self,
        recipient: &ActorPath,
        message_type: &'static str,
        reason: crate::DeadLetterReason,
    ) {
        self.shared
            .dead_letters
            .record(recipient, message_type, reason);
    }

    /// Subscribes to dead-letter events from now on.
    pub fn subscribe_dead_letters(&self) -> DeadLetterSubscription {
        self.shared.dead_letters.subscribe()
    }

    /// Live actors (all depths).
    pub fn actor_count(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// A fresh id, unique in this system (for `RefTarget` implementations such as remote proxies).
    pub fn allocate_id(&self) -> ActorId {
        self.shared.next_id()
    }

    /// The runtime the actors run on.
    pub fn runtime_handle(&self) -> &tokio::runtime::Handle {
        &self.shared.handle
    }

    /// A new actor group: one task on this system's runtime that runs every actor spawned with
    /// [`Props::group`] naming it. See [`ActorGroup`].
    pub fn group(&self) -> ActorGroup {
        ActorGroup::start(&self.shared.handle)
    }

    /// Stops every actor gracefully (children before parents, stopped hooks run) and waits up to
    /// `deadline`; actors still running then are killed. No new actors can be spawned afterwards.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::Release);
        tracing::info!(system = %shared.config.name, ?deadline, "actor system shutting down");
        let top = shared.top_level();
        for t in &top {
            t.send_sys(SystemMsg::Stop);
        }
        let until = Instant::now() + deadline;
        let mut report = ShutdownReport::default();
        if !self.wait_top_level_empty(until).await {
            let remaining = shared.top_level();
            tracing::warn!(
                remaining = remaining.len(),
                "shutdown deadline passed; killing the rest"
            );
            for t in &remaining {
                t.core().kill();
            }
            // Aborted tasks are dropped promptly unless blocked in synchronous code.
            if !self
                .wait_top_level_empty(Instant::now() + Duration::from_secs(1))
                .await
            {
                report.unresponsive = shared
                    .guardian
                    .lock()
                    .live
                    .iter()
                    .map(|t| t.core().path())
                    .collect();
            }
        }
        report.killed = std::mem::take(&mut *shared.killed_log.lock());
        report
    }

    async fn wait_top_level_empty(&self, until: Instant) -> bool {
        loop {
            let notified = self.shared.guardian_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.guardian.lock().live.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.shared.guardian.lock().live.is_empty();
            }
        }
    }
}

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.shared.config.name)
            .field("actors", &self.actor_count())
            .finish()
    }
}

/// An [`ActorSystem`] together with the tokio runtime it owns (see
/// [`ActorSystem::with_runtime`]). Dropping it shuts the runtime down without waiting; call
/// [`SystemRuntime::shutdown`] for a graceful stop.
pub struct SystemRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    system: ActorSystem,
}

impl SystemRuntime {
    /// The system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Runs a future to completion on the system's runtime (from outside any runtime).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(future),
            None => unreachable!("the runtime is only taken by shutdown, which consumes self"),
        }
    }

    /// Shuts the system down gracefully (see [`ActorSystem::shutdown`]), then the runtime.
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        let report = self.block_on(self.system.shutdown(deadline));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        report
    }
}

impl Drop for SystemRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
