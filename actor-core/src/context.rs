//! [`Context`]: what an actor can do besides handling its message: know itself, spawn and
//! supervise children, watch other actors, set timers and a receive timeout, stash messages, and
//! pipe futures back into its mailbox.
//!
//! The context lives in the actor's task next to the actor's state; nothing in it is shared, so
//! none of it needs a lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rustc_hash::FxBuildHasher;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::{Cell, Family, SysTarget, SystemMsg, Watcher};
use crate::failure::{
    ChildFailure, Directive, Failure, FailureKind, FailurePhase, SupervisionPolicy,
    TerminationReason,
};
use crate::group::ActorGroup;
use crate::path::{ActorId, ActorPath};
use crate::props::Props;
use crate::runner::spawn_actor;
use crate::system::{ActorSystem, RestartHistory, SpawnError};
use crate::timer::wheel::Wheel;
use crate::timer::{TimerKey, Timers};

/// The stash is full; the message is handed back.
pub struct StashError<M>(pub M);

impl<M> fmt::Debug for StashError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StashError(..)")
    }
}

impl<M> fmt::Display for StashError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stash is full")
    }
}

impl<M> std::error::Error for StashError<M> {}

/// Why [`Context::spawn_and_wait_started`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The child could not be spawned.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The child's `started` hook failed.
    #[error("child failed to start: {0}")]
    Failed(Failure),
    /// The child ended before it finished starting.
    #[error("child {0} ended before it finished starting")]
    Ended(ActorPath),
}

/// A child as its parent sees it.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// The child's id.
    pub id: ActorId,
    /// The child's path.
    pub path: ActorPath,
    /// Restarts so far.
    pub restart_count: u32,
}

pub(crate) struct ChildEntry {
    pub(crate) target: Arc<dyn SysTarget>,
    pub(crate) restarts: RestartHistory,
}

/// The parts of a context most actors never use (children, timers, stash, watches, pipes),
/// allocated on first use so an idle actor stays small.
///
/// `repr(C)`, in this order: what the loop reads on every turn (`pending`, `receive_timeout`)
/// and what a timer's tick reads (the timers' hot part) come first, so that the tick of an actor
/// whose extras are cold takes as few cache lines as it can.
#[repr(C)]
pub(crate) struct Extras<M> {
    /// Unstashed messages, handled before the mailbox.
    pub(crate) pending: VecDeque<M>,
    /// Set by [`Context::set_receive_timeout`].
    pub(crate) receive_timeout: Option<ReceiveTimeout>,
    pub(crate) timers: Timers<M>,
    /// How many messages may be stashed.
    pub(crate) stash_capacity: usize,
    pub(crate) children: BTreeMap<ActorId, ChildEntry>,
    pub(crate) stash: VecDeque<M>,
    pub(crate) watching: HashMap<ActorId, Box<dyn Fn(ActorId) + Send>, FxBuildHasher>,
    pub(crate) pipes: Vec<AbortHandle>,
    /// The child failure being decided, for `restart_child` called from `on_child_failure`.
    pub(crate) deciding: Option<Failure>,
    /// The family of this actor's anonymous children (made at the first child's spawn).
    pub(crate) child_family: Option<Arc<Family>>,
}

/// An actor's receive timeout: the idle period, and when the current one began.
pub(crate) struct ReceiveTimeout {
    after: Duration,
    /// When the actor last ran out of work; `None` while it has been busy since (set at the next
    /// park, so a handled message costs no clock read).
    idle_since: Option<Instant>,
}

impl<M: Send + 'static> Extras<M> {
    fn new(stash_capacity: usize, wheel: Arc<Wheel>) -> Self {
        Self {
            stash_capacity,
            children: BTreeMap::new(),
            timers: Timers::new(wheel),
            stash: VecDeque::new(),
            pending: VecDeque::new(),
            watching: HashMap::default(),
            pipes: Vec::new(),
            deciding: None,
            receive_timeout: None,
            child_family: None,
        }
    }
}

/// The cell of an actor's own ref, which [`Context::new`] makes local.
#[inline]
fn own_cell<M: Send + 'static>(myself: &ActorRef<M>) -> &Arc<Cell<M>> {
    match myself.cell() {
        Some(cell) => cell,
        None => unreachable!("an actor's own ref is a local one"),
    }
}

/// The actor's view of itself and the system. Passed to every handler and hook.
pub struct Context<A: Actor> {
    /// Always a local ref: the cell is reached through it ([`Context::cell`]), not kept twice.
    myself: ActorRef<A::Msg>,
    /// The system is the cell's (`system()` lends it as an `ActorSystem`), and the stash
    /// capacity lives in `Extras`: every byte here is in every actor's task.
    pub(crate) extras: Option<Box<Extras<A::Msg>>>,
}

impl<A: Actor> Context<A> {
    /// `stash_capacity`: the actor's own, or `None` for the system's default. `wheel`: the
    /// timer wheel of the actor's own runtime (a dedicated thread's), or `None` for the system's.
    /// Either makes the `Extras` at once, to hold it.
    pub(crate) fn new(
        cell: Arc<Cell<A::Msg>>,
        stash_capacity: Option<usize>,
        wheel: Option<Arc<Wheel>>,
    ) -> Self {
        let system = cell.core.system();
        let extras = (stash_capacity.is_some() || wheel.is_some()).then(|| {
            Box::new(Extras::new(
                stash_capacity.unwrap_or(system.config.stash_capacity),
                wheel.unwrap_or_else(|| Arc::clone(system.wheel())),
            ))
        });
        Self {
            myself: ActorRef::local(cell),
            extras,
        }
    }

    /// The actor's own cell.
    #[inline]
    pub(crate) fn cell(&self) -> &Arc<Cell<A::Msg>> {
        own_cell(&self.myself)
    }

    /// The rarely used parts, allocated on first use.
    pub(crate) fn x(&mut self) -> &mut Extras<A::Msg> {
        let system = own_cell(&self.myself).core.system();
        self.extras.get_or_insert_with(|| {
            let wheel = Arc::clone(system.wheel());
            Box::new(Extras::new(system.config.stash_capacity, wheel))
        })
    }

    /// The next unstashed message, if any (no allocation when there is none).
    #[inline]
    pub(crate) fn pop_pending(&mut self) -> Option<A::Msg> {
        self.extras.as_mut()?.pending.pop_front()
    }

    /// Live children (no allocation when there are none).
    pub(crate) fn has_children(&self) -> bool {
        self.extras.as_ref().is_some_and(|x| !x.children.is_empty())
    }

    fn sys_self(&self) -> Arc<dyn SysTarget> {
        self.cell().clone()
    }

    /// A ref to this actor.
    pub fn myself(&self) -> &ActorRef<A::Msg> {
        &self.myself
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.cell().core.id
    }

    /// This actor's path. An anonymous actor's path is built on each call (only named actors
    /// store theirs), so keep it if you need it often.
    pub fn path(&self) -> ActorPath {
        self.cell().core.path()
    }

    /// The system this actor runs in.
    pub fn system(&self) -> &ActorSystem {
        ActorSystem::lend(self.cell().core.system())
    }

    /// The [`ActorGroup`] this actor is a member of, or `None` when it has a task (or a thread) of
    /// its own, also while it runs inside a group's task, handed off by a member that woke it.
    /// Spawn the actors this one talks to most into it, so that their messages never go
    /// through tokio's scheduler: a room's players, a match's bots.
    ///
    /// Each call makes a new handle. A handle keeps the group taking members (and its task
    /// alive) even once they have all ended, so keep one only while you spawn with it; one kept in
    /// a member's own state goes with that member.
    ///
    /// ```
    /// use actor_core::prelude::*;
    ///
    /// struct Player;
    /// impl Actor for Player {
    ///     type Msg = Reply<bool>;
    ///     async fn handle(&mut self, r: Reply<bool>, ctx: &mut Context<Self>) -> ActorResult {
    ///         r.send(ctx.group().is_some());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// /// Spawns its players next to itself.
    /// struct Room;
    /// impl Actor for Room {
    ///     type Msg = Reply<ActorRef<Reply<bool>>>;
    ///     async fn handle(&mut self, r: Self::Msg, ctx: &mut Context<Self>) -> ActorResult {
    ///         let mut props = Props::new(|| Player);
    ///         if let Some(group) = ctx.group() {
    ///             props = props.group(&group);
    ///         }
    ///         r.send(ctx.spawn(props)?);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let system = ActorSystem::new(SystemConfig::default()).unwrap();
    /// let room = system.spawn(Props::new(|| Room).group(&system.group())).unwrap();
    /// let player = room.ask(|r| r).await.unwrap();
    /// assert!(player.ask(|r| r).await.unwrap(), "the player runs in the room's group");
    /// # }
    /// ```
    pub fn group(&self) -> Option<ActorGroup> {
        // A member runs only in its group's task, so the group polling here is its own. An actor
        // with a task of its own may run in a group's task too (handed off by a member, see
        // `handoff`): it is not in the group.
        if !self.cell().core.is_group_member() {
            return None;
        }
        ActorGroup::polling()
    }

    /// Spawns a child (path `<my path>/<name>`). Children are stopped before their parent, and on
    /// the parent's restart.
    pub fn spawn<B: Actor>(&mut self, props: Props<B>) -> Result<ActorRef<B::Msg>, SpawnError> {
        self.spawn_child(props, None)
    }

    fn spawn_child<B: Actor>(
        &mut self,
        props: Props<B>,
        start_signal: Option<oneshot::Sender<Result<(), Failure>>>,
    ) -> Result<ActorRef<B::Msg>, SpawnError> {
        let family = match &self.x().child_family {
            Some(family) => family.clone(),
            None => {
                let me: Weak<dyn SysTarget> = Arc::downgrade(self.cell()) as Weak<dyn SysTarget>;
                let core = &self.cell().core;
                let family = Family::children_of(core.system().clone(), me, core.path());
                self.x().child_family = Some(family.clone());
                family
            }
        };
        let (actor_ref, target) = spawn_actor(&family, props, start_signal, |target| target)?;
        self.x().children.insert(
            actor_ref.id(),
            ChildEntry {
                target,
                restarts: RestartHistory::default(),
            },
        );
        Ok(actor_ref)
    }

    /// Spawns a child and waits until its `started` hook has finished. A child that fails to
    /// start is reported as [`StartError::Failed`] (it is also reported to this actor's
    /// `on_child_failure` like any failure, unless it has ended by then, e.g. via
    /// [`Context::shutdown_child`]). Use it where start order matters, as in an OTP supervisor.
    pub async fn spawn_and_wait_started<B: Actor>(
        &mut self,
        props: Props<B>,
    ) -> Result<ActorRef<B::Msg>, StartError> {
        let (tx, rx) = oneshot::channel();
        let actor_ref = self.spawn_child(props, Some(tx))?;
        match rx.await {
            Ok(Ok(())) => Ok(actor_ref),
            Ok(Err(failure)) => Err(StartError::Failed(failure)),
            // The child ended (killed) before finishing its start.
            Err(_) => Err(StartError::Ended(actor_ref.path())),
        }
    }

    /// Stops a child and waits until it has ended: gracefully within `timeout`, then killed; with
    /// `timeout = None` it is killed at once. Returns how it ended, or `None` if it is not a child.
    pub async fn shutdown_child(
        &mut self,
        child: ActorId,
        timeout: Option<Duration>,
    ) -> Option<TerminationReason> {
        let target = self.x().children.get(&child)?.target.clone();
        let core = target.core();
        let reason = match core.wait_for_end() {
            Ok(reason) => reason,
            Err(ended) => Self::stop_or_kill(&target, ended, timeout).await,
        };
        self.x().children.remove(&child);
        Some(reason)
    }

    /// `shutdown_child`'s wait for a child that has not ended yet: a stop, and a kill after
    /// `timeout` (at once without one).
    async fn stop_or_kill(
        target: &Arc<dyn SysTarget>,
        ended: crate::cell::EndWait<'_>,
        timeout: Option<Duration>,
    ) -> TerminationReason {
        let core = target.core();
        match timeout {
            Some(t) => {
                target.send_sys(SystemMsg::Stop);
                tokio::pin!(ended);
                match tokio::time::timeout(t, &mut ended).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(child = %core.display_path(), ?t, "child did not stop in time; killing it");
                        core.kill();
                        ended.await
                    }
                }
            }
            None => {
                core.kill();
                ended.await
            }
        }
    }

    /// Kills a child at once (see [`ActorRef::kill`]). False if it is not a child.
    pub fn kill_child(&mut self, child: ActorId) -> bool {
        match self.x().children.get(&child) {
            Some(c) => {
                c.target.core().kill();
                true
            }
            None => false,
        }
    }

    /// The live children, in start order.
    pub fn children(&self) -> Vec<ChildInfo> {
        let Some(x) = &self.extras else {
            return Vec::new();
        };
        x.children
            .iter()
            .map(|(id, c)| ChildInfo {
                id: *id,
                path: c.target.core().path(),
                restart_count: c.restarts.count(),
            })
            .collect()
    }

    /// Asks a child to stop gracefully. False if it is not (or no longer) a child.
    pub fn stop_child(&mut self, child: ActorId) -> bool {
        match self.x().children.get(&child) {
            Some(c) => c.target.send_sys(SystemMsg::Stop),
            None => false,
        }
    }

    /// Restarts a child (fresh state, same ref), whether or not it failed: for strategies such as
    /// one-for-all. False if it is not a child.
    pub fn restart_child(&mut self, child: ActorId) -> bool {
        let cause = self.x().deciding.clone().unwrap_or_else(|| Failure {
            actor: self.cell().core.path(),
            kind: FailureKind::Error,
            phase: FailurePhase::Message,
            message: Arc::from("restart requested by the parent"),
            source: None,
        });
        let now = Instant::now();
        match self.x().children.get_mut(&child) {
            Some(c) => {
                c.restarts.record(now);
                c.target.send_sys(SystemMsg::Restart(cause))
            }
            None => false,
        }
    }

    /// Stops this actor gracefully after the current message (queued user messages become dead
    /// letters).
    pub fn stop(&mut self) {
        self.cell().send_sys(SystemMsg::Stop);
    }

    /// Stops this actor gracefully once its mailbox is empty (see [`ActorRef::stop_when_idle`]).
    pub fn stop_when_idle(&mut self) {
        self.cell().send_sys(SystemMsg::StopWhenIdle);
    }

    /// The directive of the system's default policy for `failure` (what the default
    /// `on_child_failure` returns).
    pub fn default_directive(&self, failure: &ChildFailure) -> Directive {
        let mut policy = self.cell().core.system().config.default_supervision;
        policy.decide(failure, Instant::now())
    }

    /// Watches another actor: when it ends, for any reason, this actor receives
    /// `Signal::Terminated` once. Watching an actor that already ended signals at once.
    pub fn watch<M: Send + 'static>(&mut self, other: &ActorRef<M>) {
        let id = other.id();
        if self.x().watching.contains_key(&id) {
            return;
        }
        let target = other.clone();
        self.x()
            .watching
            .insert(id, Box::new(move |me| target.remove_watcher(me)));
        other.add_watcher(Watcher::actor(self.sys_self()));
    }

    /// Stops watching; no `Terminated` for `other` is delivered after this, even one already
    /// queued.
    pub fn unwatch(&mut self, other: ActorId) {
        if let Some(remove) = self.x().watching.remove(&other) {
            remove(self.cell().core.id);
        }
    }

    /// Sends `msg` to this actor after `delay`. Replaces any timer with the same key. The
    /// message comes before queued user messages; if it falls due while the actor is suspended
    /// (a failure awaiting its parent's decision), it is dropped, as interval ticks are skipped.
    pub fn send_after(&mut self, key: impl Into<TimerKey>, delay: Duration, msg: A::Msg) {
        self.x().timers.start_once(key.into(), delay, msg);
    }

    /// Sends `make()` to this actor every `period`, at a fixed rate from now (ticks at
    /// `now + k * period`); ticks missed while the actor was busy are skipped, not burst. Replaces
    /// any timer with the same key. A factory rather than a message, so message types that carry
    /// reply ports (and are not `Clone`) can have intervals too.
    ///
    /// Ticks ride on the system's timer wheel (a dedicated-thread actor's, on a wheel of its own
    /// thread's runtime), whose drivers sleep on tokio's timer (resolution 1 ms): a tick arrives
    /// at or after its grid point, how late depending on the load. In the benchmark harness's
    /// `timer_jitter` row (10,000 actors ticking at 50 Hz on two CPUs), the ticks keep 11% to
    /// 51% of both CPUs busy, depending on the host's phase (0.4 to 2 us of CPU a tick; bare
    /// tokio tasks on `interval_at` take 9% to 64% on the same host), the median tick is 0.7 to
    /// 2 ms late and the 99th percentile 2 to 13 ms (`benches/RESULTS.md`, and
    /// `benches/HISTORY.md` for earlier runs).
    ///
    /// ```
    /// # use actor_core::prelude::*;
    /// # use std::time::Duration;
    /// struct Room { tick: u64 }
    /// enum RoomMsg { Tick }
    /// impl Actor for Room {
    ///     type Msg = RoomMsg;
    ///     async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
    ///         ctx.send_interval("tick", Duration::from_millis(50), || RoomMsg::Tick); // 20 Hz
    ///         Ok(())
    ///     }
    ///     async fn handle(&mut self, msg: RoomMsg, _ctx: &mut Context<Self>) -> ActorResult {
    ///         match msg { RoomMsg::Tick => self.tick += 1 }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn send_interval(
        &mut self,
        key: impl Into<TimerKey>,
        period: Duration,
        make: impl Fn() -> A::Msg + Send + 'static,
    ) {
        self.x()
            .timers
            .start_interval(key.into(), period, Box::new(make));
    }

    /// Cancels a timer; a tick of it that is already due is discarded. False if no such timer.
    pub fn cancel_timer(&mut self, key: impl Into<TimerKey>) -> bool {
        self.extras
            .as_mut()
            .is_some_and(|x| x.timers.cancel(&key.into()))
    }

    /// Is a timer with this key active?
    pub fn has_timer(&self, key: impl Into<TimerKey>) -> bool {
        self.extras
            .as_ref()
            .is_some_and(|x| x.timers.contains(&key.into()))
    }

    /// After `timeout` without a user message, the actor receives `Signal::ReceiveTimeout` (again
    /// after each further idle period). The idle period counts from when the actor last ran out
    /// of messages to handle. `None` turns it off. Reset on restart.
    pub fn set_receive_timeout(&mut self, timeout: Option<Duration>) {
        match timeout {
            Some(after) => {
                self.x().receive_timeout = Some(ReceiveTimeout {
                    after,
                    idle_since: None,
                })
            }
            None => {
                if let Some(x) = self.extras.as_mut() {
                    x.receive_timeout = None;
                }
            }
        }
    }

    /// Whether the receive timeout has come, at a park (`None`: no timeout). If not, makes sure
    /// the system's timer wheel wakes the task by then: an idle period that messages restarted
    /// needs no new arm while an earlier one is pending (the actor looks again when that one
    /// fires), so a park costs a clock read, not a timer registration.
    #[inline]
    pub(crate) fn receive_timeout_due(&mut self, cx: &std::task::Context<'_>) -> Option<bool> {
        self.extras.as_ref()?.receive_timeout.as_ref()?;
        Some(self.receive_timeout_due_slow(cx))
    }

    #[inline(never)]
    fn receive_timeout_due_slow(&mut self, cx: &std::task::Context<'_>) -> bool {
        let now = Instant::now();
        let x = self.x();
        let Some(rt) = x.receive_timeout.as_mut() else {
            return false;
        };
        let deadline = *rt.idle_since.get_or_insert(now) + rt.after;
        if deadline <= now {
            return true;
        }
        x.timers.arm_until(deadline, now, cx);
        false
    }

    /// Restarts the receive timeout's idle period (after a user message, a start, or a fired
    /// timeout): it begins at the next park.
    #[inline]
    pub(crate) fn reset_idle(&mut self) {
        if let Some(rt) = self
            .extras
            .as_mut()
            .and_then(|x| x.receive_timeout.as_mut())
        {
            rt.idle_since = None;
        }
    }

    /// Turns the receive timeout off (at restart).
    pub(crate) fn clear_receive_timeout(&mut self) {
        if let Some(x) = self.extras.as_mut() {
            x.receive_timeout = None;
        }
    }

    /// Puts a message aside until [`Context::unstash_all`]. Fails, handing it back, when the stash
    /// holds its capacity already ([`crate::Props::stash_capacity`]).
    ///
    /// Behaviors are state: an actor's phase is a field, and messages that the current phase
    /// cannot handle yet are stashed. A game room that loads its map before accepting players:
    ///
    /// ```
    /// use actor_core::prelude::*;
    /// use std::time::Duration;
    ///
    /// enum Phase { Loading, Ready { map: String } }
    ///
    /// struct Room { phase: Phase, players: Vec<String> }
    ///
    /// enum RoomMsg { MapLoaded(String), Join(String), Players(Reply<Vec<String>>) }
    ///
    /// impl Actor for Room {
    ///     type Msg = RoomMsg;
    ///
    ///     async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
    ///         // Load without blocking the mailbox; the result arrives as a message.
    ///         ctx.pipe(async { "dust2".to_owned() }, RoomMsg::MapLoaded);
    ///         Ok(())
    ///     }
    ///
    ///     async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
    ///         match (&self.phase, msg) {
    ///             (Phase::Loading, RoomMsg::MapLoaded(map)) => {
    ///                 self.phase = Phase::Ready { map };
    ///                 ctx.unstash_all(); // replay what waited, in arrival order
    ///             }
    ///             (Phase::Loading, other) => {
    ///                 if ctx.stash(other).is_err() {
    ///                     return Err("room is overloaded while loading".into());
    ///                 }
    ///             }
    ///             (Phase::Ready { .. }, RoomMsg::Join(name)) => self.players.push(name),
    ///             (Phase::Ready { .. }, RoomMsg::Players(reply)) => reply.send(self.players.clone()),
    ///             (Phase::Ready { .. }, RoomMsg::MapLoaded(_)) => return Err("loaded twice".into()),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let system = ActorSystem::new(SystemConfig::default()).unwrap();
    /// let room = system
    ///     .spawn(Props::new(|| Room { phase: Phase::Loading, players: vec![] }).stash_capacity(100))
    ///     .unwrap();
    /// room.tell(RoomMsg::Join("ada".into())); // stashed while loading
    /// let players = room.ask(RoomMsg::Players).await.unwrap(); // also stashed, answered when ready
    /// assert_eq!(players, vec!["ada".to_owned()]);
    /// # }
    /// ```
    pub fn stash(&mut self, msg: A::Msg) -> Result<(), StashError<A::Msg>> {
        let x = self.x();
        if x.stash.len() >= x.stash_capacity {
            return Err(StashError(msg));
        }
        x.stash.push_back(msg);
        Ok(())
    }

    /// Puts every stashed message back in front of the mailbox, in stash order.
    pub fn unstash_all(&mut self) {
        let Some(x) = self.extras.as_mut() else {
            return;
        };
        while let Some(msg) = x.stash.pop_back() {
            x.pending.push_front(msg);
        }
    }

    /// Messages in the stash.
    pub fn stash_len(&self) -> usize {
        self.extras.as_ref().map_or(0, |x| x.stash.len())
    }

    /// Runs `future` on the runtime and sends `map(output)` to this actor when it completes,
    /// without blocking the mailbox meanwhile. The future is aborted if the actor stops.
    pub fn pipe<F, T>(&mut self, future: F, map: impl FnOnce(T) -> A::Msg + Send + 'static)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.myself.clone();
        let task = self.cell().core.system().handle.spawn(async move {
            let out = future.await;
            me.tell(map(out));
        });
        let pipes = &mut self.x().pipes;
        pipes.retain(|h| !h.is_finished());
        pipes.push(task.abort_handle());
    }

    /// A ref that maps `S` into this actor's messages (see [`ActorRef::adapt`]).
    pub fn message_adapter<S: Send + 'static>(
        &self,
        map: impl Fn(S) -> A::Msg + Send + Sync + 'static,
    ) -> ActorRef<S> {
        self.myself.adapt(map)
    }
}
