//! Hand-off: an actor woken by the actor that runs on this thread runs right after it, inside the
//! same tokio task's poll, instead of going through tokio's scheduler.
//!
//! With one tokio task per actor, every message to an idle actor wakes its task. tokio runs a
//! task woken by the running one from its LIFO slot, but at most three in a row; the fourth goes
//! to the run queue and unparks the other worker (a system call, and often a move to the other
//! CPU). That is what bounded the rows where actors wake each other in a chain (pingpong, ring,
//! big; `benches/RESULTS.md`). Here the sender's task, once its own poll is done, polls the woken
//! actor itself, and that one the next, up to [`BUDGET`] actors a poll (more, up to
//! [`MAX_BUDGET`], while a chain of cheap handlers goes on). The thread's slot holds up
//! to [`SLOTS`] woken actors, run oldest first (an actor that answers a batch of messages wakes
//! several); one more while it is full sends the oldest to tokio, where the other worker can take
//! it, and past the budget whatever is left is woken through tokio as before. It is tokio's LIFO
//! slot, kept by the actors: the woken actors run on the same worker, next. A group's task
//! enters the runner as well ([`GroupTurn`]): an actor with a task of its own that a member
//! wakes runs between that member and the next one.
//!
//! # How
//!
//! * [`TaskRun`] wraps an actor's tokio task future (only for actors with a task of their own).
//!   At its first poll it publishes where it is, as an offset from its mailbox's `run` byte
//!   ([`Hook`]: two fields in the mailbox's padding, so the cell does not grow), and it keeps
//!   its poll function in its first field.
//! * A producer that takes the mailbox's `WAKING` state (the idle-to-running transition) while an
//!   actor's task runs on its thread calls [`defer`] instead of waking: it claims the target
//!   (`BUSY`) and leaves it in the thread's [`Runner`] slot, with the parts of the target's
//!   waker (no count of their own).
//! * The task's offset from its hook is 32 bits. The cell and the task are allocated one after
//!   the other by the spawning thread, so they are close, but a cell may reuse memory another
//!   thread's malloc arena gave out (freed on this thread), terabytes away: such an actor is not
//!   published and never handed off (it is woken through tokio, as before the hand-off).
//! * When the running task's poll is done, the runner polls the actors in its slot, oldest
//!   first, each through its published poll function and with its own waker, so every wake-up a
//!   target registers still goes to its own task.
//!
//! # Invariants
//!
//! * **One poller at a time.** Whoever polls an actor's future holds `BUSY` in its hook: tokio's
//!   poll of the task, or a runner's slot from the deferral to the end of the inline poll. A
//!   tokio poll that finds `BUSY` marks `REPOLL` and returns; whoever lets go of `BUSY` and finds
//!   `REPOLL` wakes the task, after letting go (with a counted clone of the waker, taken while
//!   holding it): a poll that found the claim only marks `REPOLL`, and a second mark cannot be
//!   told from the first, so the wake must find the task free (`Entry::release`; a wake before
//!   the release lost the token in the two-worker test).
//! * **The future outlives every claim.** [`TaskRun`]'s `Drop` waits until no one holds `BUSY`
//!   and unpublishes before the future is dropped (tokio drops a task's future on a worker after
//!   completion, an abort or at shutdown, never inside another task's poll; a claim held by this
//!   thread's own slot is taken back instead of waited for). So the task's memory, its mailbox
//!   and the waker whose parts the slot keeps (the tokio task is not released while its future
//!   exists) stay valid while a claim is held.
//! * **Done is sticky.** An inline poll that completes the future (or panics) sets `DONE` and
//!   wakes the task, whose next poll by tokio returns `Ready` without polling again.
//!
//! loom checks these (`loom_tests` below: a deferral racing tokio's polls, a wake-up that finds
//! the claim, a drop during a claim, two actors in the slot), under `--cfg actor_loom`, where the
//! hook's atomics and the runner's thread-local are loom's.

use std::cell::Cell;
use std::marker::PhantomPinned;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, RawWakerVTable, Waker};

use crate::sync::{AtomicI32, AtomicU8, Ordering};

/// `Hook::at` holds where the task is; its future is alive and not done.
const PUBLISHED: u8 = 1;
/// Someone polls the future, or will (a deferral).
const BUSY: u8 = 2;
/// tokio polled the task while it was `BUSY`: the holder wakes it when it lets go.
const REPOLL: u8 = 4;
/// The future completed (or panicked) in an inline poll: the task's next poll returns `Ready`.
const DONE: u8 = 8;

/// Actors polled inline per poll of a task, beyond its own, whatever they cost.
pub(crate) const BUDGET: u32 = 64;

/// Inline polls a task's poll may make in all, when a chain is still going after [`BUDGET`]:
/// it then runs one round of [`ROUND`] polls, timed, and as many more as fit in [`SLICE`] at
/// that round's pace. (A handler that uses tokio's channels, sockets or timers ends its chain
/// itself once tokio's cooperative budget for the task's poll is spent.) The same count as a
/// group's turn (`group::POLL_BUDGET`), for the same reason: each time a chain leaves its task
/// it goes through tokio, whose LIFO slot takes three in a row; the fourth goes to the run queue
/// and unparks the other worker (a system call, and the chain often moves to the other CPU). At
/// 64, a million pingpong round trips took 0.03-0.05 s of system time in 0.20 s; alternated
/// against it, this bound ran 26% more round trips and 26% more ring hops
/// (`benches/HISTORY.md`, "Session 27").
pub(crate) const MAX_BUDGET: u32 = 1024;

/// The timed round past [`BUDGET`] that sets the pace for the rest (see [`MAX_BUDGET`]).
pub(crate) const ROUND: u32 = 16;

/// About how long a chain may keep its worker past its first [`BUDGET`] inline polls: handlers
/// of under about 95 ns a hop reach [`MAX_BUDGET`] first; costly ones leave after
/// `BUDGET + ROUND`, so a chain of heavy handlers holds its worker about as long as it did with a
/// budget of [`BUDGET`] alone. (A handler much slower than the timed round's can stretch it.)
pub(crate) const SLICE: std::time::Duration = std::time::Duration::from_micros(100);

/// A type-erased poll of a [`TaskRun`]'s future, given the `TaskRun`'s address.
type PollFn = unsafe fn(*mut (), &mut Context<'_>) -> Poll<()>;

/// An actor task's hand-off state: two fields of its mailbox (see [`crate::mailbox`]'s `run` and
/// `run_at`), referenced without a lifetime so that a future can hand them out while it is
/// polled (they live in the cell, which the future holds).
#[derive(Clone, Copy)]
pub(crate) struct Hook {
    state: *const AtomicU8,
    at: *const AtomicI32,
}

impl Hook {
    /// # Safety
    ///
    /// Both must stay valid while the hook is used (they are in the cell of the actor whose
    /// future makes the hook, which the future holds).
    pub(crate) unsafe fn new(state: &AtomicU8, at: &AtomicI32) -> Self {
        Self { state, at }
    }

    fn state(&self) -> &AtomicU8 {
        // SAFETY: valid per `new`'s contract.
        unsafe { &*self.state }
    }

    /// Whether an actor with this hook can be handed off at all (published and not busy).
    // (Under loom the mailbox never hands off: its models do not run actor tasks.)
    #[cfg_attr(actor_loom, allow(dead_code))]
    #[inline]
    pub(crate) fn is_free(&self) -> bool {
        self.state().load(Ordering::Relaxed) == PUBLISHED
    }
}

/// A future that knows its actor's hand-off hook.
pub(crate) trait Hooked {
    fn hook(&self) -> Hook;
}

/// An actor's tokio task future, with its poll function first so that a runner can poll it from
/// its published address.
#[repr(C)]
pub(crate) struct TaskRun<F: Future<Output = ()> + Hooked> {
    poll: PollFn,
    fut: F,
    _pinned: PhantomPinned,
}

impl<F: Future<Output = ()> + Hooked> TaskRun<F> {
    pub(crate) fn new(fut: F) -> Self {
        Self {
            poll: poll_erased::<F>,
            fut,
            _pinned: PhantomPinned,
        }
    }
}

/// Polls the future of the `TaskRun<F>` at `run`.
///
/// # Safety
///
/// `run` is a pinned, live `TaskRun<F>`, and the caller holds its hook's `BUSY`.
unsafe fn poll_erased<F: Future<Output = ()> + Hooked>(
    run: *mut (),
    cx: &mut Context<'_>,
) -> Poll<()> {
    // SAFETY: per the contract; the future is pinned in the task and only the `BUSY` holder
    // touches it.
    unsafe { Pin::new_unchecked(&mut (*run.cast::<TaskRun<F>>()).fut) }.poll(cx)
}

/// Lets go of the `BUSY` a tokio poll took, also when the poll panics.
struct Release {
    hook: Hook,
    /// What the state becomes: `PUBLISHED`, or nothing once the future is done.
    to: u8,
}

impl Drop for Release {
    #[inline]
    fn drop(&mut self) {
        // A plain store: while tokio's poll holds `BUSY` nobody else writes the word (a deferral
        // needs it free, `REPOLL` comes only from this task's own polls, `DONE` only from a
        // `BUSY` holder, and tokio never polls and drops a task at once). Release: our writes
        // to the future before the next holder's claim.
        self.hook.state().store(self.to, Ordering::Release);
    }
}

impl<F: Future<Output = ()> + Hooked> Future for TaskRun<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: nothing is moved out; from here on the task is reached through `run` only
        // (`TaskRun` is `!Unpin`, so a runner's poll through the published address during the
        // drain below does not alias a unique borrow).
        let run: *mut Self = unsafe { self.get_unchecked_mut() };
        // SAFETY: `run` is live for this poll.
        let hook = unsafe { (*run).fut.hook() };
        let state = hook.state();
        let mut now = state.load(Ordering::Relaxed);
        loop {
            if now & DONE != 0 {
                return Poll::Ready(());
            }
            let (to, ordering) = if now & BUSY != 0 {
                (now | REPOLL, Ordering::Relaxed)
            } else {
                // Acquire: the previous holder's writes to the future.
                (now | BUSY, Ordering::Acquire)
            };
            match state.compare_exchange_weak(now, to, ordering, Ordering::Relaxed) {
                Ok(_) if now & BUSY != 0 => return Poll::Pending,
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        let published = now & PUBLISHED != 0 || publish(hook, run.cast());
        // One look-up of the thread's runner for the whole poll.
        RUNNER.with(|runner| {
            // Entered here unless a poll further up the stack did; left (and drained) by the
            // guard, also when the poll unwinds.
            let leave = Leave {
                runner,
                entered: !runner.active.replace(true),
            };
            let polled = {
                let mut release = Release {
                    hook,
                    to: if published { PUBLISHED } else { 0 },
                };
                // SAFETY: pinned in the task; we hold `BUSY`.
                let polled = unsafe { Pin::new_unchecked(&mut (*run).fut) }.poll(cx);
                if polled.is_ready() {
                    release.to = 0;
                }
                polled
            };
            if leave.entered && !runner.is_empty() {
                runner.drain();
            }
            drop(leave);
            polled
        })
    }
}

/// Publishes the task at `run` in its hook, if its offset fits; the caller holds `BUSY` and
/// makes it visible with its release.
fn publish(hook: Hook, run: *mut ()) -> bool {
    let offset = (run as isize).wrapping_sub(hook.state as isize);
    match i32::try_from(offset) {
        Ok(offset) => {
            // SAFETY: valid per `Hook::new`'s contract.
            unsafe { &*hook.at }.store(offset, Ordering::Relaxed);
            true
        }
        // The cell and the task are allocated one after the other: more than 2 GiB apart, the
        // actor is simply never handed off.
        Err(_) => false,
    }
}

impl<F: Future<Output = ()> + Hooked> Drop for TaskRun<F> {
    fn drop(&mut self) {
        // The future is still alive (its fields drop after this), and so is its cell.
        let hook = self.fut.hook();
        let state = hook.state();
        let mut now = state.load(Ordering::Acquire);
        let mut spins = 0u32;
        let mut ours = false;
        loop {
            if now & BUSY != 0 && !ours {
                if Runner::take_back(hook.state) {
                    ours = true;
                    continue;
                }
                // Another thread's runner holds it, and lets go at the end of its poll.
                crate::sync::backoff(spins);
                spins += 1;
                now = state.load(Ordering::Acquire);
                continue;
            }
            // Free, or our own slot's claim, taken back: nobody else holds `BUSY`. `DONE`: no
            // deferral claims it again.
            match state.compare_exchange_weak(now, DONE, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => now = actual,
            }
        }
    }
}

/// An actor left in a runner's slot: claimed (`BUSY`), to be polled inline.
#[derive(Clone, Copy)]
struct Entry {
    state: *const AtomicU8,
    run: *mut (),
    /// The target's waker, copied out of its mailbox without a count of its own (its parts):
    /// valid while the claim is held (see the module's invariants).
    waker_data: *const (),
    waker_vtable: &'static RawWakerVTable,
}

impl Entry {
    /// The target's waker, without a count of its own: not to be dropped.
    fn waker(&self) -> ManuallyDrop<Waker> {
        // SAFETY: the parts of the target's waker, which is alive while the claim is held.
        ManuallyDrop::new(unsafe { Waker::new(self.waker_data, self.waker_vtable) })
    }

    /// Lets go of the claim. `wake`: wake the task (not polled here, or done); it is also woken
    /// if a poll by tokio found it claimed meanwhile (`REPOLL`).
    fn release(self, wake: bool, done: bool) {
        // SAFETY: the claim keeps the mailbox alive.
        let state = unsafe { &*self.state };
        let mut now = state.load(Ordering::Relaxed);
        // The wake comes after the claim is let go, so that a poll it causes finds the task
        // free: a poll that found the claim would only set `REPOLL` again (once set, a second
        // poll's mark cannot be told from the first). Once the claim is gone the task may end,
        // so the wake is made with a counted clone, taken while the claim is still held.
        let mut waker = None;
        loop {
            if (wake || now & REPOLL != 0) && waker.is_none() {
                waker = Some(Waker::clone(&self.waker()));
            }
            let to = if done { DONE } else { now & !(BUSY | REPOLL) };
            // Release: our inline poll's writes before the next holder's claim.
            match state.compare_exchange_weak(now, to, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Actors a runner's slot holds at once, run oldest first; one more woken while it is full sends
/// the oldest to tokio. Alternated with a slot of one on the harness's `big` (500 actors pinging
/// random others, so one actor's batch wakes several), a ring buffer of 8 gave 11% more messages
/// a second, of 4 and 16 less than 8; with the oldest in `next` (a single chain's only slot),
/// big +24%, pingpong +7%, ring +13% (`benches/HISTORY.md`, "Session 24"). The price: the actors
/// kept here wait for the end of the waking handler's turn, which another worker cannot cut
/// short (docs/semantics.md, section 10).
pub(crate) const SLOTS: usize = 8;

/// Woken actors kept behind the oldest one ([`Runner::later`]).
const LATER: usize = SLOTS - 1;
const _: () = assert!(
    LATER > 0,
    "a slot of one is `next` alone: no `later` to index"
);

/// This thread's hand-off state while an actor's task is polled here.
///
/// The oldest woken actor has a slot of its own (`next`), so a single chain of actors waking
/// each other (pingpong, a ring) costs what a one-actor slot did; `later` is used only while
/// `next` is taken, and is empty whenever `next` is.
struct Runner {
    active: Cell<bool>,
    /// The oldest woken actor waiting here, if any.
    next: Cell<Option<Entry>>,
    /// Where the oldest entry of `later` is.
    head: Cell<usize>,
    /// Entries of `later` from `head` on (wrapping), with the holes `take_back` left.
    len: Cell<usize>,
    /// The actors woken after `next`, oldest first.
    later: [Cell<Option<Entry>>; LATER],
}

#[cfg(not(actor_loom))]
thread_local! {
    static RUNNER: Runner = const { Runner::new() };
}

// Under loom, a thread-local that each model's execution starts afresh.
#[cfg(actor_loom)]
loom::thread_local! {
    static RUNNER: Runner = Runner::new();
}

/// Leaves this thread's runner when dropped, if this poll entered it, waking what is left in
/// its slot (also when the poll unwinds).
struct Leave<'a> {
    runner: &'a Runner,
    entered: bool,
}

impl Drop for Leave<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.entered {
            self.runner.active.set(false);
            while let Some(entry) = self.runner.pop() {
                entry.release(true, false);
            }
        }
    }
}

impl Runner {
    const fn new() -> Self {
        Self {
            active: Cell::new(false),
            next: Cell::new(None),
            head: Cell::new(0),
            len: Cell::new(0),
            later: [const { Cell::new(None) }; LATER],
        }
    }

    /// Takes back this thread's claim on `state`, if its slot holds it (the task is being
    /// dropped on this thread).
    fn take_back(state: *const AtomicU8) -> bool {
        RUNNER.with(|r| {
            if r.next.get().is_some_and(|e| e.state == state) {
                r.next.set(r.pop_later());
                return true;
            }
            let head = r.head.get();
            (0..r.len.get()).any(|i| {
                let slot = &r.later[(head + i) % LATER];
                let ours = slot.get().is_some_and(|e| e.state == state);
                if ours {
                    // A hole, skipped by `pop_later`.
                    slot.set(None);
                }
                ours
            })
        })
    }

    /// Whether no actor waits here.
    #[inline]
    fn is_empty(&self) -> bool {
        self.next.get().is_none()
    }

    /// Leaves `entry` here; when all [`SLOTS`] are taken, hands back the oldest (to be woken).
    #[inline]
    fn push(&self, entry: Entry) -> Option<Entry> {
        if self.is_empty() {
            self.next.set(Some(entry));
            None
        } else {
            self.push_later(entry)
        }
    }

    /// [`Runner::push`] behind `next` (out of line: a single chain never comes here, and
    /// inlined it kept the deferral out of the mailbox's wake: 125.97M instructions against
    /// 122.37M for callgrind's `harness --quick --only pingpong`, "Session 24").
    #[inline(never)]
    fn push_later(&self, entry: Entry) -> Option<Entry> {
        let evicted = if self.len.get() == LATER {
            // Full: the oldest goes, the next oldest moves up.
            self.next.replace(self.pop_later())
        } else {
            None
        };
        let len = self.len.get();
        self.later[(self.head.get() + len) % LATER].set(Some(entry));
        self.len.set(len + 1);
        evicted
    }

    /// Takes the oldest entry.
    #[inline]
    fn pop(&self) -> Option<Entry> {
        let entry = self.next.take()?;
        if self.len.get() != 0 {
            self.refill();
        }
        Some(entry)
    }

    /// Moves the oldest of `later` up to `next` (out of line, as `push_later`).
    #[inline(never)]
    fn refill(&self) {
        self.next.set(self.pop_later());
    }

    /// Takes the oldest entry of `later`, skipping holes.
    fn pop_later(&self) -> Option<Entry> {
        while self.len.get() != 0 {
            let head = self.head.get();
            self.head.set(if head + 1 == LATER { 0 } else { head + 1 });
            self.len.set(self.len.get() - 1);
            let entry = self.later[head].take();
            if entry.is_some() {
                return entry;
            }
        }
        None
    }

    /// Polls the actors left in the slot, up to [`BUDGET`], and past it while a chain goes on
    /// (see [`MAX_BUDGET`]); what is left then is woken when the runner is left.
    #[inline(never)]
    fn drain(&self) {
        if self.drain_up_to(BUDGET) == BUDGET && !self.is_empty() {
            self.drain_on();
        }
    }

    /// [`Runner::drain`] past [`BUDGET`]: one timed round of [`ROUND`] polls, then as many as
    /// fit in the rest of [`SLICE`] at its pace, up to [`MAX_BUDGET`] in all (out of line: only a
    /// chain at least [`BUDGET`] long comes here).
    #[cold]
    #[inline(never)]
    fn drain_on(&self) {
        let start = std::time::Instant::now();
        if self.drain_up_to(ROUND) < ROUND || self.is_empty() {
            return;
        }
        let spent = start.elapsed();
        if spent >= SLICE {
            return;
        }
        // As many more as fit in what is left of the slice at the round's pace: two looks at
        // the clock, not one per round of 16 (a build that looked after every round ran ring
        // 6.5% slower than a plain budget of 1,024, "Session 27").
        let per_poll = (spent / ROUND).as_nanos().max(1);
        let fit = (SLICE - spent).as_nanos() / per_poll;
        let left = MAX_BUDGET - BUDGET - ROUND;
        self.drain_up_to(u32::try_from(fit).map_or(left, |fit| fit.min(left)));
    }

    /// Polls the actors left in the slot, oldest first, up to `limit` of them; returns how many
    /// it polled.
    fn drain_up_to(&self, limit: u32) -> u32 {
        let mut polled_here = 0;
        while polled_here < limit {
            let Some(entry) = self.pop() else { break };
            polled_here += 1;
            // SAFETY: the claim keeps the task alive; its first field is its poll function.
            let poll = unsafe { *entry.run.cast::<PollFn>() };
            let waker = entry.waker();
            let mut cx = Context::from_waker(&waker);
            // SAFETY: published by the task, claimed by us.
            let polled =
                std::panic::catch_unwind(AssertUnwindSafe(|| unsafe { poll(entry.run, &mut cx) }));
            // A panic is the task's end, as it is under tokio (which drops the future).
            let done = !matches!(polled, Ok(Poll::Pending));
            entry.release(done, done);
        }
        polled_here
    }
}

/// A poll that runs actors without a task of their own (an [`crate::ActorGroup`]'s) with this
/// thread's runner entered: an actor with a task of its own that a member wakes is left in the
/// slot, and [`GroupTurn::run_woken`] polls it between two members, instead of tokio's scheduler
/// running it after the group's turn (or the other worker, woken for it). [`BUDGET`] such polls
/// in all per turn: then the turn leaves the runner, waking what its slot holds through tokio,
/// as it does when the turn ends, and members' wake-ups go through tokio again.
pub(crate) struct GroupTurn {
    /// This thread's runner, if this turn entered it (not when it runs inside a poll that did)
    /// and its budget is not spent; null otherwise. A pointer rather than a look-up of the
    /// thread-local per member: the turn lives within one poll, on this thread.
    runner: *const Runner,
    /// Inline polls left this turn.
    left: u32,
}

impl GroupTurn {
    /// Enters this thread's runner, unless a poll further up the stack did.
    pub(crate) fn enter() -> Self {
        let runner = RUNNER.with(|r| {
            if r.active.replace(true) {
                std::ptr::null()
            } else {
                std::ptr::from_ref(r)
            }
        });
        Self {
            runner,
            left: BUDGET,
        }
    }

    /// Polls the actors members woke so far (while this turn's budget lasts).
    #[inline]
    pub(crate) fn run_woken(&mut self) {
        // SAFETY: non-null, it is this thread's runner, which outlives the turn.
        if !self.runner.is_null() && !unsafe { &*self.runner }.is_empty() {
            self.drain();
        }
    }

    #[inline(never)]
    fn drain(&mut self) {
        // SAFETY: as in `run_woken`.
        let runner = unsafe { &*self.runner };
        self.left -= runner.drain_up_to(self.left);
        if self.left == 0 {
            // Spent: what members wake from now on goes through tokio.
            self.leave();
        }
    }

    /// Leaves the runner, waking what is left in its slot through tokio.
    fn leave(&mut self) {
        if !self.runner.is_null() {
            // SAFETY: as in `run_woken`.
            drop(Leave {
                runner: unsafe { &*self.runner },
                entered: true,
            });
            self.runner = std::ptr::null();
        }
    }
}

impl Drop for GroupTurn {
    fn drop(&mut self) {
        // Also on an unwind.
        self.leave();
    }
}

/// Producer side, holding the target's `WAKING` state with `waker` registered: leaves the target
/// in this thread's runner instead of waking it. False (wake it) when no actor's task runs on
/// this thread or the target cannot be claimed.
#[cfg_attr(actor_loom, allow(dead_code))]
#[inline]
pub(crate) fn defer(hook: Hook, waker: &Waker) -> bool {
    RUNNER.with(|r| {
        if !r.active.get() {
            return false;
        }
        // Acquire: the publisher's offset and the last holder's writes to the future.
        if hook
            .state()
            .compare_exchange(
                PUBLISHED,
                PUBLISHED | BUSY,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        // SAFETY: valid per `Hook::new`; published before `PUBLISHED` was released.
        let offset = unsafe { &*hook.at }.load(Ordering::Relaxed);
        let entry = Entry {
            state: hook.state,
            run: hook
                .state
                .cast::<u8>()
                .wrapping_offset(offset as isize)
                .cast_mut()
                .cast(),
            // Used only while the claim is held (see `Entry`).
            waker_data: waker.data(),
            waker_vtable: waker.vtable(),
        };
        if let Some(old) = r.push(entry) {
            // The slot is full: the one that waited longest goes to tokio (where the other
            // worker can take it).
            old.release(true, false);
        }
        true
    })
}

#[cfg(all(test, actor_loom))]
mod loom_tests {
    //! The claim protocol, model-checked: a deferral and its inline poll on one thread, tokio's
    //! polls (and a drop) of the same task on another. Run with
    //! `RUSTFLAGS="--cfg actor_loom" cargo test -p actor-core --release --lib loom_tests`.
    //!
    //! Each model's target is a future whose every poll writes a loom `UnsafeCell`, and whose
    //! drop writes it too: loom fails the model if two polls, or a poll and the drop, are not
    //! ordered by the protocol. A lost wake-up leaves the thread standing in for tokio waiting
    //! forever, which loom reports as a deadlock.

    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use super::{Hook, Hooked, TaskRun, defer};
    use crate::sync::loom_support::{Wakeup, consumer_task, model_preempting};
    use crate::sync::{AtomicI32, AtomicU8, AtomicUsize, Ordering, UnsafeCell};

    /// These models are small: exhaustive to 6 preemptions they take about 5 s in all, to 20
    /// about 70 s (both pass). Each of these mutations fails a model within a second: a wake
    /// before the claim is let go (the bug of "Session 23"), a tokio poll that finds the claim
    /// without marking `REPOLL`, a drop that does not wait out a claim, an inline `Ready` that
    /// does not wake the task.
    const PREEMPTIONS: usize = 6;

    /// An actor's hand-off hook (in the real thing, two fields of its mailbox) and its messages.
    struct Actor {
        run: AtomicU8,
        run_at: AtomicI32,
        /// Messages sent to the actor.
        sent: AtomicUsize,
        /// Polls so far, and whether the future was dropped: written by every poll and by the
        /// drop, so loom checks that they never overlap.
        polled: UnsafeCell<(usize, bool)>,
    }

    impl Actor {
        fn new() -> Self {
            Self {
                run: AtomicU8::new(0),
                run_at: AtomicI32::new(0),
                sent: AtomicUsize::new(0),
                polled: UnsafeCell::new((0, false)),
            }
        }

        fn hook(&self) -> Hook {
            // SAFETY: the actor outlives its task and every sender in these models.
            unsafe { Hook::new(&self.run, &self.run_at) }
        }

        /// `(polls, dropped)`.
        fn polled(&self) -> (usize, bool) {
            // SAFETY: read after every thread that polls was joined.
            self.polled.with(|p| unsafe { *p })
        }
    }

    /// An actor and its task future in one allocation. The task is published only if its
    /// offset from the hook fits in 32 bits, and two allocations may come from different malloc
    /// arenas, terabytes apart (seen here: the model was published in some executions and not
    /// in others, which loom rejects as nondeterministic).
    struct Spawned<F: Future<Output = ()> + Hooked> {
        actor: Actor,
        /// Polled and dropped only by the thread standing in for tokio (and polled, through
        /// the published address, by a runner holding the claim: the protocol under test).
        /// `None` once dropped.
        task: std::cell::UnsafeCell<Option<TaskRun<F>>>,
    }

    // SAFETY: see `task`; the actor's own fields are atomics and a loom cell that loom checks.
    unsafe impl<F: Future<Output = ()> + Hooked> Send for Spawned<F> {}
    // SAFETY: as for `Send`.
    unsafe impl<F: Future<Output = ()> + Hooked> Sync for Spawned<F> {}

    impl<F: Future<Output = ()> + Hooked> Spawned<F> {
        /// `make` builds the task's future from its actor's address.
        fn new(make: impl FnOnce(*const Actor) -> F) -> Arc<Self> {
            Arc::new_cyclic(|me: &std::sync::Weak<Self>| {
                // SAFETY: only the field's address is taken; it is read once `new` is done.
                let actor = unsafe { &raw const (*me.as_ptr()).actor };
                Self {
                    actor: Actor::new(),
                    task: std::cell::UnsafeCell::new(Some(TaskRun::new(make(actor)))),
                }
            })
        }

        /// Polls the task as tokio does, and drops it once it is ready: true then.
        fn poll(&self, cx: &mut Context<'_>) -> bool {
            // SAFETY: only this thread touches `task` (see there); the future does not move
            // inside the `Arc`.
            let task = unsafe { &mut *self.task.get() };
            let Some(run) = task.as_mut() else {
                return true;
            };
            // SAFETY: as above.
            if unsafe { Pin::new_unchecked(run) }.poll(cx).is_ready() {
                *task = None;
                return true;
            }
            false
        }

        /// Drops the task, as tokio does when it is aborted.
        fn drop_task(&self) {
            // SAFETY: as in `poll`.
            unsafe { *self.task.get() = None };
        }
    }

    /// The woken actor's task future: ready once it has seen `goal` messages.
    struct Target {
        actor: *const Actor,
        goal: usize,
    }

    impl Target {
        fn actor(&self) -> &Actor {
            // SAFETY: the actor is in the same `Spawned` as this future.
            unsafe { &*self.actor }
        }
    }

    impl Future for Target {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            let actor = self.actor();
            actor.polled.with_mut(|p| {
                // SAFETY: loom checks that nothing else touches it meanwhile.
                let p = unsafe { &mut *p };
                assert!(!p.1, "polled after its drop");
                p.0 += 1;
            });
            // Acquire: the send's write (the mailbox's lock, in the real thing).
            if actor.sent.load(Ordering::Acquire) >= self.goal {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Hooked for Target {
        fn hook(&self) -> Hook {
            self.actor().hook()
        }
    }

    impl Drop for Target {
        fn drop(&mut self) {
            // SAFETY: loom checks that no poll touches it meanwhile.
            self.actor().polled.with_mut(|p| unsafe { (*p).1 = true });
        }
    }

    /// The sending actor's task future: one poll sends one message to each target, deferring
    /// the wake-up as the mailbox does (or waking through the waker when it cannot).
    struct Sender {
        actor: *const Actor,
        targets: Vec<(Arc<Spawned<Target>>, Waker)>,
    }

    impl Future for Sender {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            for (target, waker) in &self.targets {
                target.actor.sent.fetch_add(1, Ordering::Release);
                if !defer(target.actor.hook(), waker) {
                    waker.wake_by_ref();
                }
            }
            Poll::Ready(())
        }
    }

    impl Hooked for Sender {
        fn hook(&self) -> Hook {
            // SAFETY: the actor is in the same `Spawned` as this future.
            unsafe { &*self.actor }.hook()
        }
    }

    /// Polls the sender's task once on this thread (where its poll defers, and then polls the
    /// deferred targets inline).
    fn run_sender(targets: Vec<(Arc<Spawned<Target>>, Waker)>) {
        let sender = Spawned::new(|actor| Sender { actor, targets });
        let task = consumer_task();
        assert!(sender.poll(&mut Context::from_waker(&task.waker)));
    }

    /// Runs `tokio` on a thread standing in for a tokio worker (given the targets, a context
    /// with their tasks' one waker, and what that waker wakes), races it with the sender's poll,
    /// which sends one message to each target, on this thread, and joins it.
    fn race(
        targets: &[Arc<Spawned<Target>>],
        tokio: impl FnOnce(&[Arc<Spawned<Target>>], &mut Context<'_>, &Wakeup) + Send + 'static,
    ) {
        let task = consumer_task();
        let worker = {
            let targets = targets.to_vec();
            let waker = task.waker.clone();
            let notify = task.notify.clone();
            loom::thread::spawn(move || tokio(&targets, &mut Context::from_waker(&waker), &notify))
        };
        run_sender(
            targets
                .iter()
                .map(|t| (t.clone(), task.waker.clone()))
                .collect(),
        );
        worker.join().expect("the tokio thread");
    }

    /// Polls the target until it is ready, waiting for a wake-up after each pending poll.
    fn poll_to_end(target: &Spawned<Target>, cx: &mut Context<'_>, woken: &Wakeup) {
        while !target.poll(cx) {
            woken.0.wait();
        }
    }

    /// Two polls by tokio (a wake-up from before the send is still pending) race the sender's
    /// deferral and inline poll: the target is never polled by both at once, and the message's
    /// wake-up is never lost (the "tokio" thread would wait forever).
    #[test]
    fn a_deferred_wake_up_is_never_lost_and_never_polled_twice_at_once() {
        model_preempting(PREEMPTIONS, || {
            let target = Spawned::new(|actor| Target { actor, goal: 1 });
            race(std::slice::from_ref(&target), |targets, cx, woken| {
                // A wake-up from before: tokio polls the task once more.
                cx.waker().wake_by_ref();
                poll_to_end(&targets[0], cx, woken);
            });
            let (polls, dropped) = target.actor.polled();
            assert!(polls >= 1 && dropped);
        });
    }

    /// A second message, from outside any actor (so it wakes the task through tokio), may come
    /// while the sender's runner polls the target inline: tokio's poll then finds the claim and
    /// marks it, and the runner wakes the task as it lets go, so the second message is handled.
    #[test]
    fn a_wake_up_that_finds_the_task_claimed_is_passed_on_by_the_claim() {
        model_preempting(PREEMPTIONS, || {
            let target = Spawned::new(|actor| Target { actor, goal: 2 });
            race(&[target], |targets, cx, woken| {
                let target = &targets[0];
                assert!(!target.poll(cx), "one message at most so far");
                target.actor.sent.fetch_add(1, Ordering::Release);
                cx.waker().wake_by_ref();
                poll_to_end(target, cx, woken);
            });
        });
    }

    /// tokio drops the target's task (an abort) while the sender may hold a claim on it: the
    /// drop waits for the inline poll to end, and nothing polls the future after it is dropped.
    #[test]
    fn a_task_dropped_while_claimed_is_dropped_after_the_inline_poll() {
        model_preempting(PREEMPTIONS, || {
            let target = Spawned::new(|actor| Target { actor, goal: 2 });
            race(std::slice::from_ref(&target), |targets, cx, _| {
                assert!(!targets[0].poll(cx));
                targets[0].drop_task();
            });
            assert!(target.actor.polled().1, "dropped");
        });
    }

    /// One send wakes two actors, both tasks polled by one "tokio" thread: the first waits in
    /// `next`, the second in `later`, and both run inline, oldest first, or are polled by tokio
    /// when a deferral finds them taken. Either way both end, and neither is polled twice at
    /// once. (They share a waker, so that one thread can wait for both: a lost wake-up of one
    /// could hide behind the other's; the other models check the wake-up of one.)
    #[test]
    fn two_actors_woken_by_one_poll_both_run() {
        model_preempting(PREEMPTIONS, || {
            let targets = [0, 1].map(|_| Spawned::new(|actor| Target { actor, goal: 1 }));
            race(&targets, |targets, cx, woken| {
                let mut ready = [false; 2];
                loop {
                    for (target, ready) in targets.iter().zip(&mut ready) {
                        *ready = *ready || target.poll(cx);
                    }
                    if ready.iter().all(|r| *r) {
                        break;
                    }
                    woken.0.wait();
                }
            });
        });
    }
}
