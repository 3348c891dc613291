//! Hand-off: an actor woken by the actor that runs on this thread runs right after it, inside the
//! same tokio task's poll, instead of going through tokio's scheduler.
//!
//! With one tokio task per actor, every message to an idle actor wakes its task. tokio runs a
//! task woken by the running one from its LIFO slot, but at most three in a row; the fourth goes
//! to the run queue and unparks the other worker (a system call, and often a move to the other
//! CPU). That is what bounded the rows where actors wake each other in a chain (pingpong, ring,
//! big; `benches/RESULTS.md`). Here the sender's task, once its own poll is done, polls the woken
//! actor itself, and that one the next, up to [`BUDGET`] actors a poll; past the budget, or when
//! a second actor is woken before the first one ran, the actor is woken through tokio as before.
//! It is tokio's LIFO slot, kept by the actors: the woken actor runs on the same worker, next.
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
//! * When the running task's poll is done, the runner polls the actor in its slot through the
//!   published poll function, with the target's own waker, so every wake-up the target registers
//!   still goes to its own task.
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

use std::cell::Cell;
use std::marker::PhantomPinned;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::task::{Context, Poll, RawWakerVTable, Waker};

/// `Hook::at` holds where the task is; its future is alive and not done.
const PUBLISHED: u8 = 1;
/// Someone polls the future, or will (a deferral).
const BUSY: u8 = 2;
/// tokio polled the task while it was `BUSY`: the holder wakes it when it lets go.
const REPOLL: u8 = 4;
/// The future completed (or panicked) in an inline poll: the task's next poll returns `Ready`.
const DONE: u8 = 8;

/// Actors polled inline per poll of a task, beyond its own.
pub(crate) const BUDGET: u32 = 64;

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
            if leave.entered && runner.next.get().is_some() {
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
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
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

/// This thread's hand-off state while an actor's task is polled here.
struct Runner {
    active: Cell<bool>,
    next: Cell<Option<Entry>>,
}

thread_local! {
    static RUNNER: Runner = const {
        Runner {
            active: Cell::new(false),
            next: Cell::new(None),
        }
    };
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
            if let Some(entry) = self.runner.next.take() {
                entry.release(true, false);
            }
        }
    }
}

impl Runner {
    /// Takes back this thread's claim on `state`, if its slot holds it (the task is being
    /// dropped on this thread).
    fn take_back(state: *const AtomicU8) -> bool {
        RUNNER.with(|r| match r.next.get() {
            Some(entry) if entry.state == state => {
                r.next.set(None);
                true
            }
            _ => false,
        })
    }

    /// Polls the actors left in the slot, up to [`BUDGET`]; what is left then is woken when the
    /// runner is left.
    #[inline(never)]
    fn drain(&self) {
        for _ in 0..BUDGET {
            let Some(entry) = self.next.take() else { break };
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
        if let Some(old) = r.next.replace(Some(entry)) {
            // Like tokio's LIFO slot: the newest runs next, the one before goes to tokio.
            old.release(true, false);
        }
        true
    })
}
