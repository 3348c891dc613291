//! The actor loop: one tokio task per actor that takes messages one at a time, contains failures,
//! and applies its parent's directives. This is the failure-containment mechanism the
//! `supervision` crate's policies drive.
//!
//! # The loop
//!
//! 1. Take a system message if there is one (stop, directives, child failures, timers, ...).
//! 2. Otherwise, unless suspended, take one user message: unstashed ones first, then the mailbox.
//!    After `throughput` messages in a row, yield the worker.
//! 3. Otherwise park until the mailbox wakes the task (or the receive timeout fires).
//!
//! The task's future is `ActorTask`, written by hand: `ActorLoop::next_user` takes the common case
//! (a user message, when nothing comes before it), `ActorLoop::may_park_at_once` lets the loop park
//! as soon as that case finds the lanes empty, and `ActorLoop::next` decides everything else,
//! both synchronously; a handler's future is made in place and polled there (kept in the task
//! only while it is suspended), and the rare paths (start, system messages, stop) are boxed
//! futures.
//!
//! # Failure containment
//!
//! Every handler and hook runs under `catch_unwind`. An `Err` or a panic *suspends* the actor (it
//! takes only system messages from then on) and sends `ChildFailed` to its parent's system lane.
//! The parent's `on_child_failure` returns a directive, which comes back on this actor's system
//! lane: resume, restart now or after a delay, stop, or (handled by the parent itself) escalate.
//!
//! # Teardown
//!
//! All teardown happens in `Drop for ActorLoop`: after a graceful stop, and equally when the task
//! is aborted (kill, shutdown deadline). Children are killed if still alive, timers and pipes
//! cancelled, the mailbox closed and drained into dead letters, watchers and the parent told.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::actor::{Actor, Signal};
use crate::actor_ref::ActorRef;
use crate::cell::{Abort, Cell, CellCore, Family, SysTarget, SystemMsg};
use crate::context::Context;
use crate::dead_letters::DeadLetterReason;
use crate::failure::{
    ActorResult, ChildFailure, Directive, Failure, FailurePhase, TerminationReason,
};
use crate::group::Reserved;
use crate::handoff::TaskRun;
use crate::mailbox::Cursor;
use crate::path::{ActorId, ActorPath, validate_name};
use crate::props::{Placement, Props};
use crate::system::SpawnError;
use crate::timer::wheel::Wheel;

/// Who supervises an actor: the user guardian (the system) or another actor. (Kept in the
/// actor's cell, see `Cell::new`.)
enum Flow {
    Continue,
    Stop,
}

type Caught<T> = Result<T, Box<dyn std::any::Any + Send>>;

struct ActorLoop<A: Actor> {
    actor: Option<A>,
    ctx: Context<A>,
    /// The factory, for restarts. (The parent is in the cell: together with the rare state boxed
    /// on first use, the task future stays within 152 bytes, which makes a 256-byte tokio task
    /// instead of a 384-byte one; see `size_probe`.)
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    /// State only failures, restarts and waited-for starts need, boxed on first use.
    rare: Option<Box<Rare>>,
    /// Set by a graceful stop with `TerminationReason::Stopped` (any other reason is kept in
    /// `rare`); neither at drop means the task was aborted (killed).
    stopped: bool,
    /// Whether `Rare::suspended` holds a failure: read per message, without touching the rare
    /// box (another cache line per message when many actors take turns).
    suspended: bool,
    cursor: Cursor<A::Msg>,
    /// Stop gracefully the next time the mailbox is empty (`stop_when_idle`).
    stop_when_idle: bool,
    /// Messages handled per activation before the loop yields the worker. 16 bits, like
    /// `budget`: with them and no counter of its own, the loop leaves 8 bytes of a small actor's
    /// 152-byte task future to the hand-off's poll function (see `handoff::TaskRun`).
    throughput: u16,
    /// Messages left before the loop yields the worker. `throughput - budget` is also how many
    /// messages were handled since the cell's `processed` counter was last brought up to date
    /// (`flush_stats`, which refills the budget, when the loop parks, yields or ends). Counted
    /// here rather than in the cell, whose counter may share a cache line with the mailbox's
    /// state word, which every send writes.
    budget: u16,
}

/// The rarely used part of an actor loop.
#[derive(Default)]
struct Rare {
    /// The failure this actor is suspended on, waiting for its parent's directive.
    suspended: Option<Failure>,
    /// A child whose failure this actor escalated (resumed if this actor is resumed).
    escalated_child: Option<ActorId>,
    /// System messages put aside while suspended or while waiting for children to stop.
    deferred: VecDeque<SystemMsg>,
    delayed_restart: Option<AbortHandle>,
    /// Told the outcome of the first start, for `Context::spawn_and_wait_started`.
    start_signal: Option<oneshot::Sender<Result<(), Failure>>>,
    /// Why a graceful stop ended the actor, when it is not `TerminationReason::Stopped`.
    reason: Option<TerminationReason>,
}

/// What the loop does next (see `ActorLoop::next`).
enum Todo<M> {
    /// Handle a user message or a timer tick's message.
    Handle(M),
    /// Run a rare path.
    Rare(RarePath),
}

/// A rare path of the loop, run as a boxed future (see `ActorTask::rare_step`).
enum RarePath {
    /// Build the actor and run `started`.
    Start,
    /// Handle a system message (other than a timer tick).
    System(SystemMsg),
    /// The mailbox is empty and `stop_when_idle` was asked for.
    StopWhenIdle,
    /// The receive timeout fired.
    ReceiveTimeout,
}

/// What an actor's task is in the middle of.
enum Step<H> {
    /// Not started: the first poll runs the factory and `started`.
    Start,
    /// Between messages: `ActorLoop::next` decides.
    Next,
    /// A handler that has not finished. It borrows the loop's actor state and context.
    Handle(H),
    /// A rare path (start, a system message, a receive timeout, a stop), boxed when it happens so
    /// that an idle actor's task stays small. It borrows the whole loop.
    Rare(Pin<Box<dyn Future<Output = Flow> + Send>>),
    /// Ended.
    Done,
}

/// The future of an actor's task: its loop, and the step it is in the middle of.
///
/// Written by hand rather than as an `async fn`: the compiler's state machine kept the handler's
/// future, the loop's locals and two copies of the loop's address in every actor's task (112
/// bytes for an actor with a `u64` of state); this keeps only the handler's future (its type `H`
/// is `A::handle`'s, inferred from [`handler`] at spawn).
///
/// The handler's and the rare paths' futures borrow `lp` while they are stored in `step`. That is
/// sound because the task is pinned (`PhantomPinned`: it never moves once polled), `poll` touches
/// only `step` while one of them is stored, and `step` is declared first, so it is dropped
/// before `lp` (whose `Drop` runs the teardown).
struct ActorTask<A: Actor, H, F> {
    step: Step<H>,
    lp: ActorLoop<A>,
    /// Makes a handler's future: the function item [`handler`] (zero-sized).
    make: F,
    _pinned: std::marker::PhantomPinned,
}

/// Writes `Step::Next` over a step whose handler's future was dropped in place, when dropped
/// (also while unwinding), without dropping what was there.
struct WriteNext<H>(*mut Step<H>);

impl<H> Drop for WriteNext<H> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the pointer is to the task's `step`, whose content was dropped in place.
        unsafe { std::ptr::write(self.0, Step::Next) }
    }
}

/// A borrow with its lifetime erased, for a future that `ActorTask` stores beside what it borrows.
///
/// # Safety
///
/// The returned borrow (and whatever holds it) must be gone before the referent is touched
/// through any other path, moved or dropped.
unsafe fn erased<T: 'static>(r: &mut T) -> &'static mut T {
    // SAFETY: per the caller's contract.
    unsafe { &mut *(r as *mut T) }
}

/// The handler's future with its borrows' lifetimes erased, so that [`ActorTask`] can store it.
fn handler<A: Actor>(
    actor: &'static mut A,
    msg: A::Msg,
    ctx: &'static mut Context<A>,
) -> impl Future<Output = ActorResult> + Send + 'static {
    actor.handle(msg, ctx)
}

impl<A, H, F> ActorTask<A, H, F>
where
    A: Actor,
    H: Future<Output = ActorResult> + Send,
    F: Fn(&'static mut A, A::Msg, &'static mut Context<A>) -> H,
{
    fn new(mut lp: ActorLoop<A>, make: F) -> Self {
        lp.budget = lp.throughput;
        Self {
            step: Step::Start,
            lp,
            make,
            _pinned: std::marker::PhantomPinned,
        }
    }
}

impl<A, H, F> Future for ActorTask<A, H, F>
where
    A: Actor,
    H: Future<Output = ActorResult> + Send,
    F: Fn(&'static mut A, A::Msg, &'static mut Context<A>) -> H,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        // SAFETY: nothing is moved out of the task: `step`'s futures are pinned in place (and
        // dropped in place when replaced), `lp` is only borrowed.
        let this = unsafe { self.get_unchecked_mut() };
        loop {
            match &mut this.step {
                Step::Handle(fut) => {
                    // SAFETY: `fut` is pinned: it stays in `step` until it is dropped there.
                    let mut fut = unsafe { Pin::new_unchecked(fut) };
                    let polled =
                        std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
                    // `None` on success: that arm has nothing to drop (no call to the result's
                    // drop glue per message).
                    let failed = match polled {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Ok(()))) => None,
                        Ok(Poll::Ready(Err(e))) => Some(Ok(Err(e))),
                        Err(payload) => Some(Err(payload)),
                    };
                    // The handler's borrows end here, before `lp` is touched. (Dropping only
                    // the handler's future, in place, spares a call to `Step`'s drop glue per
                    // message.) `step` becomes `Next` when the guard goes, also if the future's
                    // `Drop` panics: it is never dropped twice.
                    // SAFETY: `fut` is dropped in place once; the guard then overwrites `step`
                    // without dropping it again, and nothing reads `step` in between.
                    unsafe {
                        let fut: *mut H = fut.get_unchecked_mut();
                        let step: *mut Step<H> = &mut this.step;
                        let _next = WriteNext(step);
                        std::ptr::drop_in_place(fut);
                    }
                    let lp = &mut this.lp;
                    lp.handled(failed);
                    if lp.budget == 0 {
                        lp.flush_stats();
                        // tokio's deferred yield, not `yielding::yield_to_queue`: requeueing at
                        // once measured counting -37% (the producers get less time to fill the
                        // next batch). Its first poll defers the wake and is pending; the task
                        // resumes at `Next`.
                        let yielding = std::pin::pin!(tokio::task::yield_now());
                        if yielding.poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                }
                Step::Rare(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(flow) => {
                        this.step = Step::Next;
                        if let Flow::Stop = flow {
                            this.step = Step::Done;
                            return Poll::Ready(());
                        }
                    }
                },
                Step::Next => {
                    // The common case first: the next message of the batch taken, when nothing
                    // comes before it (`next_user`); `next` decides everything else. (Through
                    // `next` and its `Todo`, the message was moved three times more: callgrind
                    // counted 37 instructions a message more on `--quick --only counting`.)
                    let msg = match this.lp.next_user() {
                        Some(msg) => msg,
                        // The lanes are empty and nothing else is waiting: park at once, without
                        // `next`'s second look at every lane (pingpong parks after every
                        // message). Checked here, off the per-message path: the checks only
                        // pass now if they passed in `next_user`, so its `None` meant empty lanes.
                        None if this.lp.may_park_at_once() => {
                            this.lp.flush_stats();
                            match this.lp.ctx.cell().mailbox.poll_park(cx, false) {
                                // "Look again": from the top, as `next` would.
                                Poll::Ready(()) => continue,
                                // No extras, so no receive timeout to arm: parked.
                                Poll::Pending => return Poll::Pending,
                            }
                        }
                        None => match this.lp.next(cx) {
                            None => return Poll::Pending,
                            Some(Todo::Handle(msg)) => msg,
                            Some(Todo::Rare(path)) => {
                                let step = Step::Rare(this.rare_step(path));
                                // SAFETY: `step` is `Next` (nothing to drop).
                                unsafe { std::ptr::write(&mut this.step, step) };
                                continue;
                            }
                        },
                    };
                    let Some(actor) = this.lp.actor.as_mut() else {
                        // (`next` hands out messages only while there is an actor.)
                        drop(msg);
                        this.lp.ctx.cell().dead_letter(DeadLetterReason::Stopped);
                        continue;
                    };
                    // SAFETY: the future is stored in `step` and dropped before `lp`
                    // is touched again (see `ActorTask`).
                    let (actor, ctx) = unsafe { (erased(actor), erased(&mut this.lp.ctx)) };
                    // `handle` itself runs under the guard too: a hand-written one that
                    // panics before returning its future fails like any handler.
                    let make = &this.make;
                    let step = match std::panic::catch_unwind(AssertUnwindSafe(|| {
                        make(actor, msg, ctx)
                    })) {
                        Ok(fut) => Step::Handle(fut),
                        Err(payload) => {
                            this.lp.handled(Some(Err(payload)));
                            if this.lp.budget == 0 {
                                this.lp.flush_stats();
                            }
                            continue;
                        }
                    };
                    // SAFETY: `step` is `Next` (nothing to drop).
                    unsafe { std::ptr::write(&mut this.step, step) };
                }
                Step::Start => this.step = Step::Rare(this.rare_step(RarePath::Start)),
                Step::Done => return Poll::Ready(()),
            }
        }
    }
}

impl<A: Actor, H, F> crate::handoff::Hooked for ActorTask<A, H, F> {
    fn hook(&self) -> crate::handoff::Hook {
        self.lp.ctx.cell().mailbox.hook()
    }
}

/// An actor's task with its `actor` span (see `spawn_actor`).
impl<T: crate::handoff::Hooked> crate::handoff::Hooked for tracing::instrument::Instrumented<T> {
    fn hook(&self) -> crate::handoff::Hook {
        self.inner().hook()
    }
}

impl<A: Actor, H, F> ActorTask<A, H, F> {
    /// The boxed future of a rare path.
    fn rare_step(&mut self, path: RarePath) -> Pin<Box<dyn Future<Output = Flow> + Send>> {
        // SAFETY: the future is stored in `step` and dropped before `lp` is touched again (see
        // `ActorTask`).
        let lp = unsafe { erased(&mut self.lp) };
        match path {
            RarePath::Start => Box::pin(async move {
                lp.build_and_start(None).await;
                Flow::Continue
            }),
            RarePath::System(sys) => Box::pin(lp.on_system(sys)),
            RarePath::StopWhenIdle => Box::pin(async move {
                lp.stop_gracefully(TerminationReason::Stopped).await;
                Flow::Stop
            }),
            RarePath::ReceiveTimeout => Box::pin(async move {
                lp.deliver_signal(Signal::ReceiveTimeout).await;
                Flow::Continue
            }),
        }
    }
}

/// Spawns an actor's task; returns its ref and what `place` made of its type-erased system
/// target. `place` runs before the actor's loop can: the user guardian files a top-level actor's
/// target there (`SystemShared::add_top_level`), a parent actor gets its child's back.
///
/// Every reference it makes is one that stays (the ref, the target, the context's): the props
/// are taken apart rather than cloned, since each count taken and given back is an atomic
/// read-modify-write on the spawn path.
pub(crate) fn spawn_actor<A: Actor, T>(
    family: &Arc<Family>,
    props: Props<A>,
    start_signal: Option<oneshot::Sender<Result<(), Failure>>>,
    place: impl FnOnce(Arc<dyn SysTarget>) -> T,
) -> Result<(ActorRef<A::Msg>, T), SpawnError> {
    if family.system.is_shutting_down() {
        return Err(SpawnError::ShuttingDown);
    }
    // The span costs ~50 instructions per poll even when disabled, so the task is wrapped only
    // when a subscriber wants `debug` spans (decided once, at spawn). That decides the type of
    // the actor's task, which a group member's slot is taken for before the cell exists (see
    // `spawn_with`), so the span is made first and given the actor's path once there is one.
    let span = tracing::debug_span!("actor", path = tracing::field::Empty);
    let spawn = Spawn {
        family,
        props,
        start_signal,
        place,
    };
    if span.is_disabled() {
        spawn_with(spawn, |lp| ActorTask::new(lp, handler::<A>))
    } else {
        spawn_with(spawn, move |lp: ActorLoop<A>| {
            span.record(
                "path",
                tracing::field::display(lp.ctx.cell().core.display_path()),
            );
            ActorTask::new(lp, handler::<A>).instrument(span)
        })
    }
}

/// What [`spawn_actor`] was given.
struct Spawn<'a, A: Actor, P> {
    /// The family of the spawner's anonymous children (a named child gets one of its own).
    family: &'a Arc<Family>,
    props: Props<A>,
    start_signal: Option<oneshot::Sender<Result<(), Failure>>>,
    place: P,
}

/// [`spawn_actor`], with `make_task` turning the actor's loop into its task.
fn spawn_with<A: Actor, T, F>(
    spawn: Spawn<'_, A, impl FnOnce(Arc<dyn SysTarget>) -> T>,
    make_task: impl FnOnce(ActorLoop<A>) -> F,
) -> Result<(ActorRef<A::Msg>, T), SpawnError>
where
    F: std::future::Future<Output = ()> + crate::handoff::Hooked + Send + 'static,
{
    let shared = &spawn.family.system;
    let Props {
        factory,
        name,
        mailbox,
        placement,
        stash_capacity,
        throughput,
    } = spawn.props;
    let id = shared.next_id();
    // A named actor's path; an anonymous actor's is never built here (see `CellCore::path`).
    let named_path = match &name {
        Some(name) => {
            validate_name(name).map_err(|reason| SpawnError::InvalidName {
                name: name.clone(),
                reason,
            })?;
            Some(spawn.family.child_path(name))
        }
        None => None,
    };
    // A dedicated thread's runtime is built here, so that the actor's timers can ride a wheel
    // of its own runtime (see `ThreadRuntime`). A group member's slot is taken here, before the
    // cell, so that the cell is made holding the member as its kill switch: handing it over
    // afterwards took the cell's lock, and grouped spawns ran 6% (unpinned) to 15% (pinned)
    // faster without it (`benches/HISTORY.md`, "Session 22"). A tokio task's handle exists only
    // once the task is spawned, and is handed over then.
    let (site, kill_switch) = match &placement {
        Placement::Task => (Site::Task, None),
        Placement::Group(group) => {
            let (reserved, kill_switch) = group.reserve::<F>();
            (Site::Group(reserved), Some(Abort::Group(kill_switch)))
        }
        Placement::DedicatedThread => (Site::Thread(ThreadRuntime::new()?), None),
    };
    let cell = Arc::new(Cell::new(
        id,
        match &named_path {
            Some(path) => spawn.family.named(path.clone()),
            None => spawn.family.clone(),
        },
        mailbox,
        named_path.is_some(),
        kill_switch,
    ));
    if let Some(path) = &named_path {
        shared.register(path, &ActorRef::local(cell.clone()))?;
    }
    shared.actor_started();
    let target = (spawn.place)(cell.clone());
    let lp: ActorLoop<A> = ActorLoop {
        actor: None,
        ctx: Context::new(
            cell.clone(),
            stash_capacity,
            match &site {
                Site::Thread(rt) => Some(rt.wheel()),
                Site::Task | Site::Group(_) => None,
            },
        ),
        factory,
        rare: spawn.start_signal.map(|tx| {
            Box::new(Rare {
                start_signal: Some(tx),
                ..Rare::default()
            })
        }),
        stopped: false,
        suspended: false,
        cursor: Cursor::default(),
        stop_when_idle: false,
        budget: 0,
        // Kept in 16 bits (the loop stays small): 65,535 messages in a row hold a worker for
        // milliseconds, which is "never yield" in practice.
        throughput: throughput
            .unwrap_or(shared.config.throughput)
            .clamp(1, usize::from(u16::MAX)) as u16,
    };
    // Dropping the future (completion or abort) runs the teardown in `Drop for ActorLoop`.
    let fut = make_task(lp);
    #[cfg(all(test, not(actor_loom)))]
    // What a task of its own holds: the future in the hand-off's wrapper.
    size_probe::TASK_FUTURE.set(std::mem::size_of::<TaskRun<F>>());
    match site {
        Site::Task => cell
            .core
            .set_abort(Abort::Spawned(shared.handle.spawn(TaskRun::new(fut)))),
        Site::Group(reserved) => reserved.join(fut)?,
        Site::Thread(rt) => spawn_thread(&cell, rt, fut)?,
    }
    tracing::debug!(actor = %cell.core.display_path(), "actor spawned");
    Ok((ActorRef::local(cell), target))
}

/// Where an actor's loop (an `F`) runs: its props' placement, with a dedicated thread's runtime
/// built or a group member's slot taken.
enum Site<'a, F> {
    /// A tokio task of its own on the system's runtime.
    Task,
    /// Inside a group's task.
    Group(Reserved<'a, F>),
    /// A thread of its own, on this runtime.
    Thread(ThreadRuntime),
}

/// The single-threaded runtime of a dedicated actor thread, and the timer wheel on it.
///
/// A dedicated actor's timers ride this wheel, not the system's: its deadlines are read on its
/// own runtime's clock (the system's may be paused in a test), and its ticks do not wait for
/// the system's workers, however busy (a fixed-rate simulation loop is what a dedicated thread
/// is for).
///
/// Built on the spawning thread, which may be a worker of another runtime: a runtime dropped
/// there would panic (tokio refuses to block inside an async context), so an unused one is shut
/// down in the background instead.
struct ThreadRuntime {
    rt: Option<tokio::runtime::Runtime>,
    wheel: Arc<Wheel>,
}

impl ThreadRuntime {
    fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let wheel = Wheel::new(rt.handle().clone());
        Ok(Self {
            rt: Some(rt),
            wheel,
        })
    }

    fn wheel(&self) -> Arc<Wheel> {
        Arc::clone(&self.wheel)
    }

    /// The runtime, for the thread that runs it (and drops it there).
    fn take(mut self) -> Option<tokio::runtime::Runtime> {
        self.rt.take()
    }
}

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs an actor's loop on a thread of its own, on `rt`.
fn spawn_thread<M, F>(cell: &Arc<Cell<M>>, rt: ThreadRuntime, fut: F) -> Result<(), SpawnError>
where
    M: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let core_cell = cell.clone();
    let name: String = cell.core.path().name().chars().take(15).collect();
    // If the thread cannot start, the closure (and `rt` in it) is dropped here: in the
    // background, see `ThreadRuntime`. The unpolled future then tears the actor down.
    std::thread::Builder::new().name(name).spawn(move || {
        if let Some(rt) = rt.take() {
            rt.block_on(async move {
                let handle = tokio::spawn(fut);
                core_cell.core.set_abort(Abort::Task(handle.abort_handle()));
                let _ = handle.await;
            });
        }
    })?;
    Ok(())
}

/// The failure a hook or handler's result amounts to, if any. The actor's path (built on each
/// call for an anonymous actor) is built only for a failure: a start or a signal that succeeds
/// costs no path.
fn outcome(core: &CellCore, phase: FailurePhase, result: Caught<ActorResult>) -> Option<Failure> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(Failure::error(core.path(), phase, e)),
        Err(payload) => Some(Failure::panic(core.path(), phase, &*payload)),
    }
}

impl<A: Actor> ActorLoop<A> {
    /// Parks on the mailbox; ready when the loop should look at its lanes again. Borrows only the
    /// mailbox (which is `Sync` for any `Send` message), so the loop itself need not be `Sync`.
    ///
    /// Polled again after parking, it is ready at once, without touching the mailbox's state:
    /// the loop pops first and parks anew only if it finds nothing, as the loom models consume.
    /// (Resuming into `poll_park` instead would re-park and un-park the mailbox on every wake:
    /// a store, a fence and a read-modify-write for nothing.) A spurious poll costs one empty
    /// look at the lanes.
    fn mailbox_park(&self, sys_only: bool) -> impl std::future::Future<Output = ()> + Send + '_ {
        let mailbox = &self.ctx.cell().mailbox;
        let mut parked = false;
        poll_fn(move |cx| {
            if parked {
                return Poll::Ready(());
            }
            parked = true;
            mailbox.poll_park(cx, sys_only)
        })
    }

    fn path(&self) -> ActorPath {
        self.ctx.cell().core.path()
    }

    /// Decides what the loop does next: a user message (or timer tick) to handle, a rare path to
    /// run, or park (`None`: parked, the mailbox wakes the task).
    ///
    /// The loop pops before it parks: polled again after parking, it looks at the lanes at once,
    /// without touching the mailbox's state, as the loom models consume. (Re-parking first would
    /// cost a store, a fence and a read-modify-write for nothing on every wake.) A spurious poll
    /// costs one empty look at the lanes.
    #[inline]
    fn next(&mut self, cx: &mut std::task::Context<'_>) -> Option<Todo<A::Msg>> {
        loop {
            let sys = match self.ctx.cell().mailbox.pop_sys() {
                Some(sys) => Some(sys),
                None if self.ctx.cell().mailbox.take_stop() => Some(SystemMsg::Stop),
                None => None,
            };
            if let Some(sys) = sys {
                return Some(Todo::Rare(RarePath::System(sys)));
            }
            // Timer ticks are hot for game loops: handled inline, like mailbox messages, and
            // before them.
            if let Some(msg) = self.due_timer(cx) {
                return Some(Todo::Handle(msg));
            }
            if self.is_suspended() || self.actor.is_none() {
                self.flush_stats();
                match self.ctx.cell().mailbox.poll_park(cx, true) {
                    Poll::Ready(()) => continue,
                    Poll::Pending => return None,
                }
            }
            let next = match self.ctx.pop_pending() {
                Some(msg) => Some(msg),
                None => self.ctx.cell().mailbox.pop_user(&mut self.cursor),
            };
            if let Some(msg) = next {
                return Some(Todo::Handle(msg));
            }
            self.flush_stats();
            if self.stop_when_idle {
                return Some(Todo::Rare(RarePath::StopWhenIdle));
            }
            if self.ctx.cell().mailbox.poll_park(cx, false).is_ready() {
                continue;
            }
            // Parked with a receive timeout: the system's timer wheel wakes the task too.
            if !self.ctx.receive_timeout_due(cx)? {
                return None;
            }
            self.ctx.reset_idle();
            return Some(Todo::Rare(RarePath::ReceiveTimeout));
        }
    }

    /// The next user message, when nothing can come before it: no system message or stop
    /// request, no timers, stash or receive timeout (no extras), not suspended, and an actor.
    /// Otherwise `None`, and [`ActorLoop::next`] decides (also when the lanes are empty). The
    /// loop's common case: a message of the batch it has taken, without `Todo`'s moves.
    #[inline]
    fn next_user(&mut self) -> Option<A::Msg> {
        let cell = self.ctx.cell();
        if !self.user_first(cell) {
            return None;
        }
        cell.mailbox.pop_user(&mut self.cursor)
    }

    /// Nothing can come before a user message: no system message or stop request, no extras
    /// (timers, stash, receive timeout), not suspended, and an actor. Once false, it stays false
    /// until the loop itself runs something else (only the loop clears the system lane, the
    /// extras and the suspension). `cell` is this actor's (passed in: looked up once a message).
    #[inline(always)]
    fn user_first(&self, cell: &Cell<A::Msg>) -> bool {
        !(cell.mailbox.sys_waiting()
            || self.ctx.extras.is_some()
            || self.is_suspended()
            || self.actor.is_none())
    }

    /// After `next_user` found nothing: whether the loop may park at once, with what `next` would
    /// do before parking reduced to `flush_stats` (no extras: no timers, stash or receive
    /// timeout; no stop-when-idle).
    #[inline]
    fn may_park_at_once(&self) -> bool {
        !self.stop_when_idle && self.user_first(self.ctx.cell())
    }

    /// After a user message (or timer tick) was handled: count it, restart the receive timeout's
    /// idle period, and fail on an error or a panic.
    #[inline]
    fn handled(&mut self, failed: Option<Caught<ActorResult>>) {
        // Never below zero: every path that handles a message flushes (and refills) at zero.
        self.budget -= 1;
        self.ctx.reset_idle();
        if let Some(failed) = failed {
            self.fail_with(FailurePhase::Message, failed);
        }
    }

    /// The message of a timer tick that is due, if any; otherwise the task is armed in the
    /// system's timer wheel for the next deadline. One load and a branch for an actor without timers.
    #[inline]
    fn due_timer(&mut self, cx: &mut std::task::Context<'_>) -> Option<A::Msg> {
        match self.ctx.extras.as_deref() {
            Some(x) if !x.timers.is_empty() => self.due_timer_slow(cx),
            _ => None,
        }
    }

    /// See `due_timer`. A suspended actor, or one without state, skips the ticks that fall due.
    #[inline(never)]
    fn due_timer_slow(&mut self, cx: &mut std::task::Context<'_>) -> Option<A::Msg> {
        let skip = self.is_suspended() || self.actor.is_none();
        let timers = &mut self.ctx.extras.as_mut()?.timers;
        while let Some(due) = timers.poll_due(cx) {
            if skip {
                timers.skip(due);
            } else if let Some(msg) = timers.fire(due) {
                return Some(msg);
            }
        }
        None
    }

    fn flush_stats(&mut self) {
        let unflushed = self.throughput - self.budget;
        self.budget = self.throughput;
        self.ctx
            .cell()
            .core
            .flush_progress(u64::from(unflushed), self.cursor.batched());
    }

    /// Builds fresh state from the factory and runs `started` (or `post_restart`).
    async fn build_and_start(&mut self, restart_cause: Option<&Failure>) {
        let factory = self.factory.clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| factory())) {
            Ok(actor) => self.actor = Some(actor),
            Err(payload) => {
                let f = Failure::panic(self.path(), FailurePhase::Start, &*payload);
                self.signal_start(Err(f.clone()));
                self.fail(f);
                return;
            }
        }
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        let result = match restart_cause {
            None => {
                AssertUnwindSafe(actor.started(&mut self.ctx))
                    .catch_unwind()
                    .await
            }
            Some(cause) => {
                AssertUnwindSafe(actor.post_restart(cause, &mut self.ctx))
                    .catch_unwind()
                    .await
            }
        };
        self.ctx.reset_idle();
        match outcome(&self.ctx.cell().core, FailurePhase::Start, result) {
            Some(f) => {
                self.signal_start(Err(f.clone()));
                self.fail(f);
            }
            None => self.signal_start(Ok(())),
        }
    }

    fn signal_start(&mut self, outcome: Result<(), Failure>) {
        if let Some(tx) = self.rare.as_mut().and_then(|r| r.start_signal.take()) {
            let _ = tx.send(outcome);
        }
    }

    /// Builds the failure of a handler that returned an error or panicked, and fails (kept out
    /// of line: the per-message path only checks for success).
    #[cold]
    #[inline(never)]
    fn fail_with(&mut self, phase: FailurePhase, result: Caught<ActorResult>) {
        if let Some(f) = outcome(&self.ctx.cell().core, phase, result) {
            self.fail(f);
        }
    }

    async fn deliver_signal(&mut self, signal: Signal) {
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        let result = AssertUnwindSafe(actor.on_signal(signal, &mut self.ctx))
            .catch_unwind()
            .await;
        if let Some(f) = outcome(&self.ctx.cell().core, FailurePhase::Message, result) {
            self.fail(f);
        }
    }

    /// Suspends this actor and reports the failure to its parent.
    fn fail(&mut self, failure: Failure) {
        let core = &self.ctx.cell().core;
        core.count_failure();
        tracing::error!(
            actor = %core.display_path(),
            kind = ?failure.kind,
            phase = ?failure.phase,
            error = %failure.message,
            "actor failed"
        );
        self.rare.get_or_insert_with(Box::default).suspended = Some(failure.clone());
        self.suspended = true;
        if !core.tell_parent(SystemMsg::ChildFailed {
            child: core.id,
            failure,
        }) {
            // Nobody left to decide: stop.
            self.ctx
                .cell()
                .send_sys(SystemMsg::Supervise(Directive::Stop));
        }
    }

    async fn on_system(&mut self, msg: SystemMsg) -> Flow {
        match msg {
            SystemMsg::Stop => {
                self.stop_gracefully(TerminationReason::Stopped).await;
                return Flow::Stop;
            }
            SystemMsg::StopWhenIdle => self.stop_when_idle = true,
            SystemMsg::Restart(cause) => self.restart(cause).await,
            SystemMsg::Supervise(directive) => {
                // A directive for a failure we are no longer suspended on is stale.
                let Some(failure) = self.rare.as_ref().and_then(|r| r.suspended.clone()) else {
                    return Flow::Continue;
                };
                match directive {
                    Directive::Resume if self.actor.is_some() => self.resume(),
                    Directive::Resume | Directive::Restart => self.restart(failure).await,
                    Directive::RestartAfter(delay) => self.schedule_restart(delay),
                    Directive::Stop | Directive::Escalate => {
                        self.stop_gracefully(TerminationReason::Failed(failure))
                            .await;
                        return Flow::Stop;
                    }
                }
            }
            SystemMsg::RestartNow => {
                if let Some(r) = self.rare.as_mut() {
                    r.delayed_restart = None;
                }
                if let Some(failure) = self.rare.as_ref().and_then(|r| r.suspended.clone()) {
                    self.restart(failure).await;
                }
            }
            SystemMsg::ChildFailed { child, failure } => {
                if self.is_suspended() || self.actor.is_none() {
                    // Decided once this actor is running again.
                    self.rare()
                        .deferred
                        .push_back(SystemMsg::ChildFailed { child, failure });
                } else {
                    self.on_child_failed(child, failure);
                }
            }
            SystemMsg::ChildTerminated { child } => {
                self.ctx.x().children.remove(&child);
            }
            SystemMsg::Terminated(t) => {
                if self.is_suspended() || self.actor.is_none() {
                    self.rare().deferred.push_back(SystemMsg::Terminated(t));
                } else if self.ctx.x().watching.remove(&t.id).is_some() {
                    Box::pin(self.deliver_signal(Signal::Terminated(t))).await;
                }
            }
        }
        Flow::Continue
    }

    fn on_child_failed(&mut self, child: ActorId, failure: Failure) {
        let Some(entry) = self.ctx.x().children.get(&child) else {
            return;
        };
        if entry.target.core().ended().is_some() {
            return;
        }
        let cf = ChildFailure {
            child,
            failure: failure.clone(),
            restart_count: entry.restarts.count(),
            recent_restarts: entry.restarts.recent(),
        };
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        self.ctx.x().deciding = Some(failure.clone());
        let ctx = &mut self.ctx;
        let decided =
            std::panic::catch_unwind(AssertUnwindSafe(|| actor.on_child_failure(&cf, ctx)));
        self.ctx.x().deciding = None;
        let directive = decided.unwrap_or_else(|_| {
            tracing::error!(actor = %self.ctx.cell().core.display_path(), "on_child_failure panicked; escalating");
            Directive::Escalate
        });
        let path = self.ctx.cell().core.path();
        let Some(entry) = self.ctx.x().children.get_mut(&child) else {
            return;
        };
        tracing::info!(
            actor = %path,
            child = %failure.actor,
            error = %failure.message,
            restarts = entry.restarts.count(),
            ?directive,
            "supervision decision"
        );
        match directive {
            Directive::Escalate => {
                self.rare().escalated_child = Some(child);
                let escalated = Failure::escalated(path, &failure);
                self.fail(escalated);
            }
            d => {
                if matches!(d, Directive::Restart | Directive::RestartAfter(_)) {
                    entry.restarts.record(Instant::now());
                }
                entry.target.send_sys(SystemMsg::Supervise(d));
            }
        }
    }

    fn resume(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            r.suspended = None;
        }
        self.suspended = false;
        if let Some(child) = self.rare.as_mut().and_then(|r| r.escalated_child.take())
            && let Some(entry) = self.ctx.x().children.get(&child)
        {
            entry
                .target
                .send_sys(SystemMsg::Supervise(Directive::Resume));
        }
        self.requeue_deferred();
    }

    /// The rare state, boxed on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    #[inline]
    fn is_suspended(&self) -> bool {
        debug_assert_eq!(
            self.suspended,
            self.rare.as_ref().is_some_and(|r| r.suspended.is_some()),
            "the suspended flag mirrors the rare state"
        );
        self.suspended
    }

    fn requeue_deferred(&mut self) {
        let deferred = self
            .rare
            .as_mut()
            .map(|r| std::mem::take(&mut r.deferred))
            .unwrap_or_default();
        for msg in deferred {
            self.ctx.cell().send_sys(msg);
        }
    }

    fn schedule_restart(&mut self, delay: std::time::Duration) {
        if let Some(h) = self.rare.as_mut().and_then(|r| r.delayed_restart.take()) {
            h.abort();
        }
        let me: Arc<dyn SysTarget> = self.ctx.cell().clone();
        tracing::info!(actor = %self.ctx.cell().core.display_path(), ?delay, "restart scheduled");
        let task = self.ctx.cell().core.system().handle.spawn(async move {
            tokio::time::sleep(delay).await;
            me.send_sys(SystemMsg::RestartNow);
        });
        self.rare().delayed_restart = Some(task.abort_handle());
    }

    async fn restart(&mut self, cause: Failure) {
        if let Some(h) = self.rare.as_mut().and_then(|r| r.delayed_restart.take()) {
            h.abort();
        }
        if let Some(actor) = self.actor.as_mut()
            && AssertUnwindSafe(actor.pre_restart(&cause, &mut self.ctx))
                .catch_unwind()
                .await
                .is_err()
        {
            tracing::warn!(actor = %self.ctx.cell().core.display_path(), "pre_restart panicked");
        }
        self.stop_children().await;
        if let Some(x) = self.ctx.extras.as_mut() {
            x.timers.cancel_all();
        }
        self.ctx.clear_receive_timeout();
        self.ctx.unstash_all();
        self.actor = None;
        if let Some(r) = self.rare.as_mut() {
            r.escalated_child = None;
            r.suspended = None;
        }
        self.suspended = false;
        let restarts = self.ctx.cell().core.count_restart();
        tracing::info!(
            actor = %self.ctx.cell().core.display_path(),
            restarts,
            cause = %cause.message,
            "actor restarted"
        );
        self.requeue_deferred();
        self.build_and_start(Some(&cause)).await;
    }

    /// Stops every child and waits until all have ended, putting other system messages aside.
    async fn stop_children(&mut self) {
        if !self.ctx.has_children() {
            return;
        }
        for child in self.ctx.x().children.values() {
            child.target.send_sys(SystemMsg::Stop);
        }
        while self.ctx.has_children() {
            match self.ctx.cell().mailbox.pop_sys() {
                Some(SystemMsg::ChildTerminated { child }) => {
                    self.ctx.x().children.remove(&child);
                }
                Some(msg @ (SystemMsg::Terminated(_) | SystemMsg::Stop)) => {
                    self.rare().deferred.push_back(msg)
                }
                // Children being stopped need no decision; other requests are moot mid-teardown.
                Some(_) => {}
                // A stop request is put aside like a queued stop (the park below would return
                // at once while the request is pending).
                None if self.ctx.cell().mailbox.take_stop() => {
                    self.rare().deferred.push_back(SystemMsg::Stop)
                }
                None => self.mailbox_park(true).await,
            }
        }
    }

    async fn stop_gracefully(&mut self, reason: TerminationReason) {
        if let Some(h) = self.rare.as_mut().and_then(|r| r.delayed_restart.take()) {
            h.abort();
        }
        if let Some(actor) = self.actor.as_mut()
            && AssertUnwindSafe(actor.pre_stop(&mut self.ctx))
                .catch_unwind()
                .await
                .is_err()
        {
            tracing::warn!(actor = %self.ctx.cell().core.display_path(), "pre_stop panicked");
        }
        self.stop_children().await;
        if let Some(x) = self.ctx.extras.as_mut() {
            x.timers.cancel_all();
        }
        if let Some(actor) = self.actor.as_mut()
            && AssertUnwindSafe(actor.stopped(&mut self.ctx))
                .catch_unwind()
                .await
                .is_err()
        {
            tracing::warn!(actor = %self.ctx.cell().core.display_path(), "stopped hook panicked");
        }
        match reason {
            TerminationReason::Stopped => self.stopped = true,
            other => self.rare().reason = Some(other),
        }
    }
}

impl<A: Actor> Drop for ActorLoop<A> {
    fn drop(&mut self) {
        let reason = match self.rare.as_mut().and_then(|r| r.reason.take()) {
            Some(reason) => reason,
            None if self.stopped => TerminationReason::Stopped,
            None => TerminationReason::Killed,
        };
        let cell = self.ctx.cell().clone();
        let core = &cell.core;
        if let Some(h) = self.rare.as_mut().and_then(|r| r.delayed_restart.take()) {
            h.abort();
        }
        cell.mailbox.close();
        // Messages and state are user types: a panic in one's `Drop` is contained, so that the
        // actor still terminates (watchers told, counted out) and the other messages are still
        // counted.
        for msg in self.cursor.drain() {
            core.drop_contained(msg);
            cell.dead_letter(DeadLetterReason::Stopped);
        }
        cell.drain_dead();
        if let Some(mut x) = self.ctx.extras.take() {
            for child in std::mem::take(&mut x.children).into_values() {
                child.target.core().kill();
            }
            x.timers.cancel_all();
            for pipe in x.pipes.drain(..) {
                pipe.abort();
            }
            for (_, unwatch) in x.watching.drain() {
                unwatch(core.id);
            }
            for msg in x.pending.drain(..) {
                core.drop_contained(msg);
                cell.dead_letter(DeadLetterReason::Stopped);
            }
            for msg in x.stash.drain(..) {
                core.drop_contained(msg);
                cell.dead_letter(DeadLetterReason::Stashed);
            }
        }
        drop(cell.mailbox.drain_sys());
        self.flush_stats();
        if let Some(actor) = self.actor.take() {
            core.drop_contained(actor);
        }
        core.terminate(reason);
        core.tell_parent(SystemMsg::ChildTerminated { child: core.id });
    }
}

#[cfg(all(test, not(actor_loom)))]
mod size_probe {
    //! The memory an idle actor costs is mostly its tokio task: a 128-byte-aligned allocation of
    //! a 32-byte header, the future (plus 24 bytes of stage tag, scheduler and task id) and a
    //! 48-byte trailer. A future of at most 152 bytes makes it 256 bytes; one byte more makes it
    //! 384. These tests keep an actor with a small state within 152 bytes.
    use std::cell::Cell;

    thread_local! {
        /// The size of the task future of the last actor spawned on this thread.
        pub(super) static TASK_FUTURE: Cell<usize> = const { Cell::new(0) };
    }

    /// An actor with a `u64` of state, like the benchmark's idle actors.
    struct Small {
        _state: u64,
    }

    impl crate::Actor for Small {
        type Msg = u64;
        async fn handle(&mut self, _m: u64, _c: &mut crate::Context<Self>) -> crate::ActorResult {
            Ok(())
        }
    }

    fn spawned_task_future() -> usize {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let sys = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
            let _r = sys
                .spawn(crate::Props::new(|| Small { _state: 7 }))
                .expect("spawn");
            TASK_FUTURE.get()
        })
    }

    #[test]
    fn a_small_actor_fits_a_256_byte_tokio_task() {
        let size = spawned_task_future();
        assert!(
            size <= 152,
            "the task future of an actor with a u64 of state is {size} bytes: over 152, its tokio \
             task takes 384 bytes instead of 256 (print layouts with `RUSTC_BOOTSTRAP=1 cargo \
             rustc -p actor-core --lib --profile test -- -Zprint-type-sizes`)"
        );
    }

    #[test]
    fn a_small_actors_cell_is_a_112_byte_chunk() {
        // The `Arc`'s two counts come on top; glibc rounds a request plus its 8-byte header up to
        // 16. With a 256-byte task, a chunk of 112 bytes or less packs at 470 B per idle actor in
        // `alloc_model` (it fits the gap glibc leaves before each 128-byte-aligned task), 128-144
        // bytes and 208 bytes at 536 B, 160-192 bytes at 613-664 B (see `Cell` in cell.rs).
        let size = std::mem::size_of::<crate::cell::Cell<u64>>() + 16;
        let chunk = (size + 8).next_multiple_of(16);
        assert!(
            chunk <= 112,
            "the cell of an actor with u64 messages is a {size}-byte allocation, a {chunk}-byte \
             chunk: over 112 bytes (see `Cell` in cell.rs)"
        );
    }

    #[test]
    #[ignore = "prints the sizes behind the memory per actor; run with --ignored --nocapture"]
    fn sizes() {
        eprintln!("task future of Small: {}", spawned_task_future());
        eprintln!(
            "ActorLoop<Small>: {}",
            std::mem::size_of::<super::ActorLoop<Small>>()
        );
        eprintln!(
            "Context<Small>: {}",
            std::mem::size_of::<crate::Context<Small>>()
        );
        eprintln!(
            "Cell<u64>: {}",
            std::mem::size_of::<crate::cell::Cell<u64>>()
        );
        eprintln!("CellCore: {}", std::mem::size_of::<crate::cell::CellCore>());
        eprintln!(
            "Extras<u64> (children, timers, stash, ...; boxed, on first use): {}",
            std::mem::size_of::<crate::context::Extras<u64>>()
        );
        eprintln!(
            "Timers<u64>: {}",
            std::mem::size_of::<crate::timer::Timers<u64>>()
        );
        eprintln!(
            "Mailbox<u64, SystemMsg>: {}",
            std::mem::size_of::<crate::mailbox::Mailbox<u64, crate::cell::SystemMsg>>()
        );
        eprintln!(
            "Cursor<u64>: {}",
            std::mem::size_of::<crate::mailbox::Cursor<u64>>()
        );
        eprintln!(
            "SystemMsg: {}",
            std::mem::size_of::<crate::cell::SystemMsg>()
        );
    }
}
