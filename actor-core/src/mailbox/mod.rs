//! An actor's mailbox: one system lane, one user lane, and the wake protocol between them and the
//! actor's task.
//!
//! # Invariants
//!
//! * **Many producers, one consumer.** Only the actor's own task pops (a producer may evict from a
//!   bounded `DropOldest` lane, under the lock). The consumer of an unbounded lane, or of a
//!   bounded one that refuses or sheds new messages, takes the whole queue into its private batch
//!   (`Cursor`); the actor loop drains that batch as dead letters when it stops.
//! * **System first.** The consumer always drains the system lane before taking a user message;
//!   the system lane is unbounded and never drops. A stop request is not queued: it is a flag
//!   (`stop`), set under `LOCKED` like a system message's push and woken like one, that the
//!   consumer takes once the queued system messages are drained.
//! * **Wake on the idle-to-running transition only.** The state word is `RUNNING` while the
//!   consumer works. Before parking, the consumer registers its waker, moves the state to `IDLE`
//!   (or `IDLE_SYS` when it only accepts system messages) with a read-modify-write (and, if its
//!   user lane is the priority lane, a `SeqCst` fence) and looks at the lanes once more. Only
//!   the producer that finds an idle state admitting its lane, and takes `WAKING` from it, wakes
//!   the task; it then hands the state back (`RUNNING`). A busy actor therefore costs its
//!   producers no wake-up.
//! * **The system and user lanes are locked by the state word.** The user lane's queues
//!   (`sync::Deque`s, and the conflating lane's map) have no lock of their own: `LOCKED` is a bit
//!   of the state word, and while it is set only its holder changes the word (everyone else's
//!   read-modify-writes wait it out). So a send is one compare-and-swap, which takes the lock *and*
//!   reads the consumer's state, then the push, then one plain store that lets go, and that stores
//!   `WAKING` instead of `IDLE` when the consumer was parked: no fence, no second
//!   read-modify-write. The consumer's park is a read-modify-write on the same word, so it either
//!   comes first (the producer's lock reads the idle state and wakes) or reads the producer's
//!   release (and sees its message). No user code runs and no message is dropped while `LOCKED` is
//!   held (`lane`'s module doc). The system lane (boxed on its first message) and the stop flag are
//!   pushed the same way. The priority lane's classes have locks of their own (a flood of a low
//!   class must not hold up a sender of the top class): their producers push, issue a `SeqCst`
//!   fence and read the state; by that fence and the consumer's (issued only by a mailbox with a
//!   priority lane), at least one side sees the other's write.
//! * **The state word guards the waker.** The waker stays registered between parks
//!   (`sync::WakerSlot`, no synchronisation of its own): a producer reads it only while it holds
//!   `WAKING`, so at most one does; the consumer writes it only in `RUNNING`, which no producer
//!   leaves, or after `CLOSED`. Waking costs the producer its take of `WAKING` and its hand-back.
//! * **Parking on top of `WAKING`.** Waking can take a system call (unparking a worker), so the
//!   consumer is often polled and done before the producer that woke it lets go. It then parks as
//!   `WAKING | IDLE` (or `IDLE_SYS`) instead of waiting; the producer's hand-back to `RUNNING`
//!   fails, and it hands over the idle state instead, then (with a priority lane, after a fence)
//!   looks at the lanes for messages whose producers saw `WAKING` and did not wake, waking again
//!   if there are any.
//!   `close` waits out a `WAKING` producer (one wake: at most a system call) before it sets
//!   `CLOSED`.
//! * **Nothing escapes the dead-letter count.** `CLOSED` is set by the consumer before it drains
//!   the user lane. A producer that sees `CLOSED` before pushing gets its message back; `CLOSED`
//!   cannot be set while a producer holds the lock, so a push either lands before it (and is
//!   drained) or is handed back. A priority-lane producer that sees `CLOSED` only after pushing
//!   drains the lane itself; by the fence argument every message is consumed, handed back, or
//!   drained by someone and counted.

mod config;
mod lane;

use std::collections::VecDeque;
use std::task::{Context, Poll};

pub use config::{MailboxConfig, Overflow};
pub(crate) use lane::Cursor;
use lane::{Priority, Pushed, UserLane};

use crate::slim_deque::SlimDeque;
use crate::sync::{AtomicBool, AtomicU8, Deque, Guarded, Ordering, WakerSlot, backoff, fence};

const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const IDLE_SYS: u8 = 2;
const CLOSED: u8 = 4;
/// A producer won the transition out of idle and is waking the task; it alone reads the waker
/// until it hands the state back.
const WAKING: u8 = 8;
/// The user lane's lock; while it is set, only its holder changes the state word, and it
/// lets go with a plain store of the state it found (or of `WAKING`, when it takes the wake-up).
const LOCKED: u8 = 16;
/// The consumer's idle states; with `WAKING`, it parked while a producer was still waking it.
const IDLE_BITS: u8 = IDLE | IDLE_SYS;

/// What happened to an accepted user message.
#[derive(Debug)]
pub(crate) enum Accepted<M> {
    /// Queued.
    Queued,
    /// Accepted, and this message was shed by the overflow policy (a dead letter): the new one
    /// or the oldest queued one.
    Shed(M),
    /// The mailbox closed while we pushed to the priority lane: the caller must drain it with
    /// `drain_user`. (A push under `LOCKED` cannot race `close`.)
    Closed,
}

impl<M> Accepted<M> {
    /// The shed message, if one was.
    #[cfg(test)]
    pub(crate) fn shed(self) -> Option<M> {
        match self {
            Accepted::Shed(m) => Some(m),
            _ => None,
        }
    }
}

/// Why a user message was refused; the message is handed back.
#[derive(Debug)]
pub(crate) enum Refused<M> {
    Full(M),
    Closed(M),
}

pub(crate) struct Mailbox<M, S> {
    state: AtomicU8,
    sys_pending: AtomicBool,
    /// A stop was requested ([`Mailbox::request_stop`]): the most common system message, kept out
    /// of the system lane so that stopping an actor allocates nothing.
    stop: AtomicBool,
    /// The system lane, locked by the state word like the user lane (`LOCKED`). Boxed on the
    /// first system message: most actors get few (often only the final stop), and 8 bytes
    /// instead of 32 in every mailbox keep the cell small.
    #[allow(clippy::box_collection, reason = "8 bytes inline instead of 32")]
    sys: Guarded<Option<Box<VecDeque<S>>>>,
    user: UserLane<M>,
    waker: WakerSlot,
    /// The actor task's hand-off state and where its task is (`handoff::Hook`; in what would
    /// be the mailbox's padding). loom's atomics under loom, for `handoff`'s own models; the
    /// mailbox's models never hand off.
    run: crate::sync::AtomicU8,
    run_at: crate::sync::AtomicI32,
    /// Where threads waiting for `LOCKED` block under loom (see `wait_unlocked`).
    #[cfg(actor_loom)]
    turnstile: crate::sync::Turnstile,
}

impl<M, S> Mailbox<M, S> {
    pub(crate) fn new(config: MailboxConfig<M>) -> Self {
        Self {
            state: AtomicU8::new(RUNNING),
            sys_pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sys: Guarded::new(None),
            user: UserLane::new(config),
            waker: WakerSlot::new(),
            run: crate::sync::AtomicU8::new(0),
            run_at: crate::sync::AtomicI32::new(0),
            #[cfg(actor_loom)]
            turnstile: crate::sync::Turnstile::default(),
        }
    }

    /// Producer side: queue a user message. `force_fail` makes a full bounded lane refuse
    /// whatever its overflow policy (used by `send().await`, which then waits for room).
    #[inline]
    pub(crate) fn push_user(&self, msg: M, force_fail: bool) -> Result<Accepted<M>, Refused<M>> {
        if let UserLane::Unbounded(deque) = &self.user {
            return self.push_unbounded(deque, msg);
        }
        self.push_other(msg, force_fail)
    }

    /// `push_user` for the lanes other than the default one (out of line, so that the default
    /// lane's path stays small where it is inlined).
    #[inline(never)]
    fn push_other(&self, msg: M, force_fail: bool) -> Result<Accepted<M>, Refused<M>> {
        match &self.user {
            UserLane::Priority(p) => self.push_priority(p, msg),
            _ => self.push_lane(msg, force_fail),
        }
    }

    /// The priority lane's send: its class's own lock, then the fence handshake (see the module
    /// invariants and `lane`'s module doc for why this lane is not under `LOCKED`).
    fn push_priority(&self, lane: &Priority<M>, msg: M) -> Result<Accepted<M>, Refused<M>> {
        if self.state.load(Ordering::Acquire) & CLOSED != 0 {
            return Err(Refused::Closed(msg));
        }
        lane.push(msg);
        fence(Ordering::SeqCst);
        let state = self.settled(Ordering::Relaxed);
        if state & CLOSED != 0 {
            return Ok(Accepted::Closed);
        }
        if state == IDLE {
            self.wake_from(IDLE);
        }
        Ok(Accepted::Queued)
    }

    /// The default lane's send: lock (reading the consumer's state), push, let go.
    #[inline(always)]
    fn push_unbounded(&self, deque: &Deque<M>, msg: M) -> Result<Accepted<M>, Refused<M>> {
        let Some(state) = self.lock(true) else {
            return Err(Refused::Closed(msg));
        };
        // SAFETY: we hold `LOCKED`.
        if let Err(msg) = unsafe { deque.push(msg) } {
            self.unlock(state);
            return Err(Refused::Full(msg));
        }
        self.unlock_waking(state);
        Ok(Accepted::Queued)
    }

    /// The bounded and conflating lanes' send: the same lock, with the lane's policy applied
    /// under it. The conflation key (user code) is computed first, and what the policy sheds or
    /// replaces is dropped after the lock is let go.
    fn push_lane(&self, msg: M, force_fail: bool) -> Result<Accepted<M>, Refused<M>> {
        let key = self.user.prepare(&msg);
        let Some(state) = self.lock(true) else {
            return Err(Refused::Closed(msg));
        };
        // SAFETY: we hold `LOCKED`.
        let pushed = unsafe { self.user.push_locked(msg, key, force_fail) };
        if pushed.is_ok() {
            self.unlock_waking(state);
        } else {
            self.unlock(state);
        }
        match pushed {
            Ok(Pushed::Queued) => Ok(Accepted::Queued),
            Ok(Pushed::Shed(m)) => Ok(Accepted::Shed(m)),
            Ok(Pushed::Replaced(older)) => {
                drop(older);
                Ok(Accepted::Queued)
            }
            Err(m) => Err(Refused::Full(m)),
        }
    }

    /// Lets go of `LOCKED` after a push, found `state` when it took it: if the consumer had
    /// parked for user messages, take the wake-up with the store that lets go (nobody else
    /// changed the word meanwhile) and wake it.
    #[inline]
    fn unlock_waking(&self, state: u8) {
        self.unlock_waking_if(state, state == IDLE);
    }

    /// Lets go of `LOCKED`, found `state` when it took it, taking the wake-up with the store if
    /// `wake` (the consumer had parked in an idle state that admits what we pushed).
    #[inline]
    fn unlock_waking_if(&self, state: u8, wake: bool) {
        if wake {
            self.unlock(WAKING);
            self.wake_holding();
        } else {
            self.unlock(state);
        }
    }

    /// Takes `LOCKED`, waiting out another holder; `None` if `open_only` and the mailbox is
    /// closed. Returns the state it found (without `LOCKED`), which stays as it is until the
    /// holder lets go with [`Mailbox::unlock`].
    #[inline]
    fn lock(&self, open_only: bool) -> Option<u8> {
        let mut state = self.state.load(Ordering::Relaxed);
        let mut spins = 0u32;
        loop {
            if open_only && state & CLOSED != 0 {
                return None;
            }
            if state & LOCKED != 0 {
                state = self.wait_unlocked(&mut spins);
                continue;
            }
            // Acquire: the previous holder's work on the lane, and the consumer's registration
            // if we find it idle.
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(state),
                Err(now) => state = now,
            }
        }
    }

    /// Lets go of `LOCKED`, leaving `state`. Release: our work on the lane happens before that of
    /// whoever changes the word next.
    #[inline]
    fn unlock(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        #[cfg(actor_loom)]
        self.turnstile.release();
    }

    /// The state word once nobody holds `LOCKED` (its holder may change the word when it lets
    /// go, so a decision to wake is not made on a locked word).
    #[inline]
    fn settled(&self, order: Ordering) -> u8 {
        let mut state = self.state.load(order);
        let mut spins = 0u32;
        while state & LOCKED != 0 {
            state = self.wait_unlocked(&mut spins);
        }
        state
    }

    /// Waits a little for `LOCKED` to clear (its holder is a few instructions from letting go)
    /// and reads the word again. Spins, then yields the thread (`sync::backoff`). Under loom it
    /// blocks on the turnstile until the holder lets go instead: there, two threads that spin
    /// and yield in turn can starve the holder for ever, which no real scheduler does.
    ///
    /// (Parking instead of yielding, as `parking_lot` does, needs the holder to learn of parked
    /// waiters when it lets go: a swap instead of the plain store, which measured 10-35% slower
    /// on counting, fanout, pingpong and ring; `benches/HISTORY.md`, "Session 12".)
    #[cold]
    fn wait_unlocked(&self, spins: &mut u32) -> u8 {
        #[cfg(actor_loom)]
        {
            let _ = spins;
            self.turnstile.wait_while(|| self.reload() & LOCKED != 0);
        }
        #[cfg(not(actor_loom))]
        {
            *spins += 1;
            backoff(*spins);
        }
        self.reload()
    }

    /// A read of the state word by a thread waiting for it to change. Under loom a plain load
    /// may keep reading an old value for ever (its model explores every value a load may
    /// return), so there it is a compare-and-swap that always fails (the word is never
    /// `u8::MAX`): that reads the newest value and, unlike a read-modify-write that stores, does
    /// not race the lock holder's plain store in loom's model. Acquire, as the consumer's first
    /// read in `poll_park`.
    #[inline]
    fn reload(&self) -> u8 {
        #[cfg(actor_loom)]
        return match self.state.compare_exchange(
            u8::MAX,
            u8::MAX,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(state) | Err(state) => state,
        };
        #[cfg(not(actor_loom))]
        self.state.load(Ordering::Acquire)
    }

    /// Compare-and-swap of the state word from `from` to `to`, waiting out `LOCKED`. `Err` holds
    /// the (unlocked) state found instead.
    #[inline]
    fn transition(&self, from: u8, to: u8, success: Ordering) -> Result<(), u8> {
        let mut spins = 0u32;
        loop {
            match self
                .state
                .compare_exchange(from, to, success, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) if now & LOCKED != 0 => {
                    self.wait_unlocked(&mut spins);
                }
                Err(now) => return Err(now),
            }
        }
    }

    /// Producer side: queue a system message. Returns it if the mailbox is closed.
    pub(crate) fn push_sys(&self, msg: S) -> Result<(), S> {
        let Some(state) = self.lock(true) else {
            return Err(msg);
        };
        // SAFETY: we hold `LOCKED`.
        unsafe {
            self.sys
                .with_mut(|sys| sys.get_or_insert_with(Box::default).push_back(msg));
        }
        self.sys_pending.store(true, Ordering::Release);
        self.unlock_waking_if(state, state == IDLE || state == IDLE_SYS);
        Ok(())
    }

    /// Producer side: ask the consumer to stop. Taken with [`Mailbox::take_stop`] once the queued
    /// system messages are drained; wakes the consumer like a system message does. False if the
    /// mailbox is closed.
    pub(crate) fn request_stop(&self) -> bool {
        // Under `LOCKED`, like `push_sys`, so a request racing `close` either lands before it or
        // sees `CLOSED`.
        let Some(state) = self.lock(true) else {
            return false;
        };
        self.stop.store(true, Ordering::Release);
        self.unlock_waking_if(state, state == IDLE || state == IDLE_SYS);
        true
    }

    /// Consumer side: was a stop requested (since the last call)?
    #[inline]
    pub(crate) fn take_stop(&self) -> bool {
        self.stop.load(Ordering::Acquire) && self.stop.swap(false, Ordering::AcqRel)
    }

    /// Producer side: if the state is still `idle`, take `WAKING` and wake the task.
    // Out of line: a busy actor's producers never get here, and their push stays small.
    #[inline(never)]
    fn wake_from(&self, idle: u8) {
        // Acquire: the consumer's registration (released by its move to `idle`).
        if self.transition(idle, WAKING, Ordering::Acquire).is_ok() {
            self.wake_holding();
        }
    }

    /// Producer side, holding `WAKING`: wake the task and hand the state back: `RUNNING`, or the
    /// idle state the consumer parked in meanwhile (then look at the lanes once more for
    /// messages whose producers saw `WAKING` and did not wake, and wake again if there are any).
    #[inline(never)]
    fn wake_holding(&self) {
        loop {
            // SAFETY: we hold `WAKING`: the consumer does not write the slot and no other
            // producer can win it until we hand the state back.
            unsafe { self.wake_registered() };
            let Some(idle) = self.hand_back() else {
                return;
            };
            if self.transition(idle, WAKING, Ordering::Acquire).is_err() {
                return;
            }
        }
    }

    /// Producer side, holding `WAKING`: wake the registered waker, or hand the actor off to
    /// the actor task running on this thread (`handoff`).
    ///
    /// # Safety
    ///
    /// The caller holds `WAKING`.
    #[inline]
    unsafe fn wake_registered(&self) {
        #[cfg(not(actor_loom))]
        {
            let hook = self.hook();
            if hook.is_free() {
                // SAFETY: we hold `WAKING`.
                return unsafe {
                    self.waker
                        .wake_unless(|waker| crate::handoff::defer(hook, waker))
                };
            }
        }
        // SAFETY: we hold `WAKING`.
        unsafe { self.waker.wake() }
    }

    /// The actor task's hand-off hook (see `handoff`).
    pub(crate) fn hook(&self) -> crate::handoff::Hook {
        // SAFETY: whoever uses the hook holds the cell this mailbox is in (the actor's future,
        // or a producer during its send).
        unsafe { crate::handoff::Hook::new(&self.run, &self.run_at) }
    }

    /// Producer side, holding `WAKING`: hands the state back. `Some(idle)` when the consumer had
    /// parked on top of `WAKING` (the wake was probably what got it polled: waking can take a
    /// system call to unpark a worker) and, now that it is idle again, has something to look at.
    /// While `WAKING` is held only we, the consumer (parking or un-parking) and `LOCKED` holders
    /// (who restore what they found) write the word.
    fn hand_back(&self) -> Option<u8> {
        // Release: our read of the slot happens before the consumer's next write of it.
        let mut now =
            match self
                .state
                .compare_exchange(WAKING, RUNNING, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return None,
                Err(now) => now,
            };
        let mut spins = 0u32;
        loop {
            if now & LOCKED != 0 {
                now = self.wait_unlocked(&mut spins);
                continue;
            }
            debug_assert!(
                now & WAKING != 0 && now & CLOSED == 0,
                "we hold WAKING: {now}"
            );
            let idle = now & IDLE_BITS;
            // `WAKING` alone: the consumer un-parked, hand back `RUNNING`. `WAKING | idle`: hand
            // over `idle` (AcqRel: release our read of the slot to the consumer's next
            // registration; acquire what `LOCKED` holders pushed meanwhile).
            match self
                .state
                .compare_exchange(now, idle, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if idle == RUNNING => return None,
                Ok(_) => {
                    // Producers that pushed while the state was `WAKING | idle` did not wake the
                    // consumer. Those that locked the word released their push to our
                    // compare-and-swap; for priority-lane producers, by this fence and theirs,
                    // either we see their message or they see `idle`.
                    self.priority_fence();
                    return self.has_work(idle).then_some(idle);
                }
                Err(actual) => now = actual,
            }
        }
    }

    /// Whether a consumer parked in `idle` has something to look at.
    #[inline]
    fn has_work(&self, idle: u8) -> bool {
        self.sys_waiting() || (idle == IDLE && !self.user.is_empty())
    }

    /// Consumer side: whether a system message or a stop request waits (what
    /// [`Mailbox::pop_sys`] and [`Mailbox::take_stop`] would find), with their two loads.
    #[inline]
    pub(crate) fn sys_waiting(&self) -> bool {
        self.sys_pending.load(Ordering::Acquire) || self.stop.load(Ordering::Acquire)
    }

    /// Consumer side: the next system message, if any.
    #[inline]
    pub(crate) fn pop_sys(&self) -> Option<S> {
        if !self.sys_pending.load(Ordering::Acquire) {
            return None;
        }
        let state = self.lock_any();
        // SAFETY: we hold `LOCKED`.
        let msg = unsafe {
            self.sys.with_mut(|sys| {
                let queue = sys.as_mut()?;
                let msg = queue.pop_front();
                if queue.is_empty() {
                    self.sys_pending.store(false, Ordering::Relaxed);
                }
                msg
            })
        };
        self.unlock(state);
        msg
    }

    /// Consumer side: the next user message, if any.
    #[inline]
    pub(crate) fn pop_user(&self, cursor: &mut Cursor<M>) -> Option<M> {
        let UserLane::Unbounded(deque) = &self.user else {
            return self.pop_other(cursor);
        };
        self.pop_batched(deque, cursor)
    }

    /// `pop_user` for the lanes other than the default one (out of line, so that the default
    /// lane's path stays inlined in the actor loop).
    #[inline(never)]
    fn pop_other(&self, cursor: &mut Cursor<M>) -> Option<M> {
        match &self.user {
            UserLane::Bounded(b) if b.batches => {
                let msg = self.pop_batched(&b.queue, cursor);
                if msg.is_some() {
                    b.hand_out(1);
                }
                msg
            }
            UserLane::Priority(p) => p.pop(),
            _ => self.pop_one(),
        }
    }

    /// The next message of the consumer's batch, taking the lane's whole queue when the batch is
    /// empty.
    #[inline(always)]
    fn pop_batched(&self, deque: &Deque<M>, cursor: &mut Cursor<M>) -> Option<M> {
        if let Some(msg) = cursor.batch.pop_front() {
            return Some(msg);
        }
        if deque.is_empty() {
            return None;
        }
        self.take_all(deque, &mut cursor.batch);
        cursor.batch.pop_front()
    }

    /// The next message of a lane that gives out one per lock.
    #[inline]
    fn pop_one(&self) -> Option<M> {
        if self.user.is_empty() {
            return None;
        }
        let state = self.lock_any();
        // SAFETY: we hold `LOCKED`.
        let msg = unsafe { self.user.pop_locked() };
        self.unlock(state);
        if msg.is_some()
            && let Some(b) = self.user.bounded()
        {
            b.wake_sender();
        }
        msg
    }

    /// Moves everything queued on `deque` to the back of `into`, under the lock. Always inlined:
    /// left to the compiler, it was moved out of the consumer's loop when the loop grew
    /// (pingpong 108.5M instructions in callgrind, 104.1M inlined, "Session 31").
    #[inline(always)]
    fn take_all(&self, deque: &Deque<M>, into: &mut SlimDeque<M>) {
        let state = self.lock_any();
        // SAFETY: we hold `LOCKED`.
        let shed = unsafe { deque.take_all(into) };
        self.unlock(state);
        drop(shed);
    }

    /// Takes `LOCKED` whatever the state (closed or not).
    #[inline]
    fn lock_any(&self) -> u8 {
        loop {
            // `lock(false)` returns only once it holds the lock: this loop runs once.
            if let Some(state) = self.lock(false) {
                return state;
            }
        }
    }

    /// Consumer side: park until a message arrives (`sys_only`: until a system message arrives).
    /// Ready means "look again", not a guarantee that a message is there.
    pub(crate) fn poll_park(&self, cx: &mut Context<'_>, sys_only: bool) -> Poll<()> {
        let idle = if sys_only { IDLE_SYS } else { IDLE };
        // Acquire: a waking producer's read of the slot happens before our write below.
        let mut state = self.state.load(Ordering::Acquire);
        let mut spins = 0u32;
        loop {
            if state & LOCKED != 0 {
                // A producer is pushing (or someone reads the length): only it changes the word
                // until it lets go.
                state = self.wait_unlocked(&mut spins);
                continue;
            }
            if state == RUNNING {
                // SAFETY: no producer reads the slot in `RUNNING`, which only we leave.
                unsafe { self.waker.register(cx.waker()) };
                // Release publishes the registration to the producer that takes the wake-up.
                // If a producer pushed (to the system lane, or to a user lane other than the
                // priority lane) under `LOCKED` before this, we read its release and see its
                // message below (Acquire here); if it locks after, it finds `idle` and wakes
                // us. The priority lane has its own handshake (`priority_fence`).
                match self.state.compare_exchange(
                    RUNNING,
                    idle,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => state = now,
                }
                continue;
            }
            if state & CLOSED != 0 {
                return Poll::Pending;
            }
            if state & IDLE_BITS != 0 {
                // Polled while parked (a timer, a join): running again, keeping a producer's
                // `WAKING`. Acquire as above.
                match self.state.compare_exchange(
                    state,
                    state & !IDLE_BITS,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => state &= !IDLE_BITS,
                    Err(now) => state = now,
                }
                continue;
            }
            // `WAKING`: a producer is still waking us (its wake may be what got us polled) and
            // reads the slot. Reading it too is fine; writing is not.
            // SAFETY: only we write the slot, and not here.
            if !unsafe { self.waker.will_wake(cx.waker()) } {
                // A new waker (never for a tokio task): register it on the next poll.
                #[cfg(actor_loom)]
                loom::thread::yield_now();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Park on top of `WAKING`: the producer hands the idle state back when it is done.
            // AcqRel as in `RUNNING` above.
            match self.state.compare_exchange(
                WAKING,
                WAKING | idle,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        self.priority_fence();
        if self.has_work(idle) {
            self.unpark();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The consumer's half of the priority lane's fence handshake (see the module invariants):
    /// the other lanes are pushed under `LOCKED`, whose release our read-modify-write of the
    /// state word acquires, so a mailbox without a priority lane parks with no fence.
    #[inline]
    fn priority_fence(&self) {
        if self.user.priority().is_some() {
            fence(Ordering::SeqCst);
        }
    }

    /// Consumer side: un-park, whatever happened meanwhile (a producer may hold `WAKING`, and
    /// hands back `RUNNING`, or have handed the idle state back to us), once no one holds
    /// `LOCKED`.
    fn unpark(&self) {
        let mut state = self.settled(Ordering::Acquire);
        loop {
            if state & IDLE_BITS == 0 {
                return;
            }
            match self.transition(state, state & !IDLE_BITS, Ordering::Acquire) {
                Ok(()) => return,
                Err(now) => state = now,
            }
        }
    }

    /// Consumer side: refuse all further messages. Call `drain_user` and `drain_sys` afterwards.
    pub(crate) fn close(&self) {
        let mut spins = 0u32;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // A producer holding `WAKING` hands the state back once its wake returns (its CAS
            // would not expect `CLOSED`): wait for it. None can take it after `CLOSED`. Nor do
            // we change the word under someone else's `LOCKED`: a producer holding it (of the
            // user lane, the system lane or a stop request) pushes before `CLOSED` is set, and
            // we drain what it pushed; any later one sees `CLOSED`.
            if state & LOCKED != 0 {
                state = self.wait_unlocked(&mut spins);
                continue;
            }
            if state & WAKING != 0 {
                spins += 1;
                backoff(spins);
                state = self.reload();
                continue;
            }
            match self.state.compare_exchange(
                state,
                state | CLOSED,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        fence(Ordering::SeqCst);
        // SAFETY: `CLOSED` is set and no producer holds `WAKING` (none can take it any more), so
        // nobody reads the slot again.
        unsafe { self.waker.clear() };
        if let Some(bounded) = self.user.bounded() {
            bounded.space().notify_waiters();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Removes every queued user message (the consumer, once it closed the mailbox, or a
    /// priority-lane producer that saw `CLOSED` only after its push): taken under the lock,
    /// handed to `f` after it.
    pub(crate) fn drain_user(&self, mut f: impl FnMut(M)) {
        if let Some(p) = self.user.priority() {
            while let Some(msg) = p.pop() {
                f(msg);
            }
            return;
        }
        let mut taken = SlimDeque::new();
        let mut popped = Vec::new();
        let state = self.lock_any();
        if let Some(deque) = self.user.batch() {
            // SAFETY: we hold `LOCKED`.
            // (`taken` has no buffer, so nothing is shed.)
            let _ = unsafe { deque.take_all(&mut taken) };
            if let Some(b) = self.user.bounded() {
                b.count_out(taken.len());
            }
        } else {
            // SAFETY: as above (a bounded lane's messages are counted out as they are popped).
            while let Some(msg) = unsafe { self.user.pop_locked() } {
                popped.push(msg);
            }
        }
        self.unlock(state);
        if let Some(b) = self.user.bounded() {
            b.wake_sender();
        }
        taken.drain().chain(popped).for_each(f);
    }

    /// Removes every queued system message.
    pub(crate) fn drain_sys(&self) -> VecDeque<S> {
        let state = self.lock_any();
        // SAFETY: we hold `LOCKED`.
        let queue = unsafe { self.sys.with_mut(Option::take) };
        self.sys_pending.store(false, Ordering::Relaxed);
        self.unlock(state);
        queue.map(|queue| *queue).unwrap_or_default()
    }

    /// Queued user messages (not counting the consumer's batch).
    pub(crate) fn len(&self) -> usize {
        if let Some(p) = self.user.priority() {
            return p.len();
        }
        let state = self.lock_any();
        // SAFETY: we hold `LOCKED`.
        let len = unsafe { self.user.len_locked() };
        self.unlock(state);
        len
    }

    /// Messages replaced by newer ones in a conflating lane.
    pub(crate) fn conflated(&self) -> usize {
        self.user.conflated()
    }

    /// Waits until a bounded lane may have room (or the mailbox closed). Returns at once for the
    /// other lanes. The caller retries its push after this returns.
    pub(crate) async fn wait_for_room(&self) {
        let Some(bounded) = self.user.bounded() else {
            // Only an unbounded lane holding 2^31 messages refuses one (`SlimDeque`): give the
            // consumer the worker for a while, rather than retry in a loop.
            tokio::task::yield_now().await;
            return;
        };
        let notified = bounded.space().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // `SeqCst` with the consumer's `Bounded::hand_out`: either it sees us waiting (and
        // notifies) or we see the room it made.
        bounded.waiting().fetch_add(1, Ordering::SeqCst);
        // Re-check after registering: a pop between our failed push and `enable` would
        // otherwise be missed.
        if bounded.has_room() || self.is_closed() {
            bounded.waiting().fetch_sub(1, Ordering::AcqRel);
            return;
        }
        notified.await;
        bounded.waiting().fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    fn unbounded() -> Mailbox<u32, &'static str> {
        Mailbox::new(MailboxConfig::unbounded())
    }

    #[test]
    fn system_lane_is_drained_before_user_lane() {
        let mb = unbounded();
        mb.push_user(1, false).expect("open");
        mb.push_sys("stop").expect("open");
        assert_eq!(mb.pop_sys(), Some("stop"));
        assert_eq!(mb.pop_sys(), None);
        assert_eq!(mb.pop_user(&mut Cursor::default()), Some(1));
    }

    /// Pushes `n` messages and pops one: the consumer then holds the rest as its batch.
    fn push_and_pop_one(mb: &Mailbox<u32, &'static str>, cursor: &mut Cursor<u32>, n: u32) {
        for i in 0..n {
            mb.push_user(i, false).expect("open");
        }
        assert_eq!(mb.pop_user(cursor), Some(0));
    }

    fn queue_capacity(mb: &Mailbox<u32, &'static str>) -> usize {
        mb.user.batch().expect("unbounded").capacity()
    }

    #[test]
    fn a_steady_flow_recycles_its_buffers_and_a_burst_is_shed_after_it() {
        const BURST: u32 = 20_000;
        let mb = unbounded();
        let mut cursor = Cursor::default();
        // The first burst: its buffer becomes the consumer's batch.
        push_and_pop_one(&mb, &mut cursor, BURST);
        cursor.drain().for_each(drop);
        assert!(cursor.batch.capacity() >= BURST as usize);
        // A second one, as big: the consumer's drained buffer goes to the queue for the next
        // pushes, instead of the queue growing a new one.
        push_and_pop_one(&mb, &mut cursor, BURST);
        cursor.drain().for_each(drop);
        assert!(queue_capacity(&mb) >= BURST as usize, "recycled");
        assert!(cursor.batch.capacity() >= BURST as usize);
        // Back to a trickle: the first take sheds the consumer's big buffer (the queue starts a
        // new one), and the second sheds the other, which the first one handed the consumer.
        push_and_pop_one(&mb, &mut cursor, 1);
        assert_eq!(queue_capacity(&mb), 0, "shed, not handed to the queue");
        assert!(cursor.batch.capacity() >= BURST as usize);
        push_and_pop_one(&mb, &mut cursor, 1);
        assert!(queue_capacity(&mb) == 0 && cursor.batch.capacity() < 64);
    }

    #[test]
    fn park_reports_pending_only_when_empty() {
        let mb = unbounded();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(mb.poll_park(&mut cx, false).is_pending());
        mb.push_user(7, false).expect("open");
        assert!(mb.poll_park(&mut cx, false).is_ready());
        // A sys-only park ignores user messages.
        assert!(mb.poll_park(&mut cx, true).is_pending());
        mb.push_sys("x").expect("open");
        assert!(mb.poll_park(&mut cx, true).is_ready());
    }

    #[test]
    fn closed_mailbox_hands_messages_back() {
        let mb = unbounded();
        mb.push_user(1, false).expect("open");
        mb.close();
        let mut drained = Vec::new();
        mb.drain_user(|m| drained.push(m));
        assert_eq!(drained, vec![1]);
        assert!(matches!(mb.push_user(2, false), Err(Refused::Closed(2))));
        assert_eq!(mb.push_sys("late"), Err("late"));
    }

    #[test]
    fn bounded_policies() {
        let fail: Mailbox<u32, ()> = Mailbox::new(MailboxConfig::bounded(2, Overflow::Fail));
        fail.push_user(1, false).expect("room");
        fail.push_user(2, false).expect("room");
        assert!(matches!(fail.push_user(3, false), Err(Refused::Full(3))));

        let newest: Mailbox<u32, ()> =
            Mailbox::new(MailboxConfig::bounded(2, Overflow::DropNewest));
        newest.push_user(1, false).expect("room");
        newest.push_user(2, false).expect("room");
        let acc = newest.push_user(3, false).expect("accepted");
        assert_eq!(acc.shed(), Some(3));
        assert!(matches!(newest.push_user(4, true), Err(Refused::Full(4))));

        let oldest: Mailbox<u32, ()> =
            Mailbox::new(MailboxConfig::bounded(2, Overflow::DropOldest));
        oldest.push_user(1, false).expect("room");
        oldest.push_user(2, false).expect("room");
        let acc = oldest.push_user(3, false).expect("accepted");
        assert_eq!(acc.shed(), Some(1));
        let mut c = Cursor::default();
        assert_eq!(oldest.pop_user(&mut c), Some(2));
        assert_eq!(oldest.pop_user(&mut c), Some(3));
        assert_eq!(oldest.len(), 0);
    }

    #[test]
    fn a_bounded_lanes_capacity_counts_the_consumers_batch() {
        let mb: Mailbox<u32, ()> = Mailbox::new(MailboxConfig::bounded(2, Overflow::Fail));
        mb.push_user(1, false).expect("room");
        mb.push_user(2, false).expect("room");
        let mut c = Cursor::default();
        // The consumer takes both into its batch and hands out the first.
        assert_eq!(mb.pop_user(&mut c), Some(1));
        assert_eq!(c.batched(), 1);
        assert_eq!(mb.len(), 0, "the lane's queue is empty");
        // Message 2 is still pending: one more fits, not two.
        mb.push_user(3, false).expect("room");
        assert!(matches!(mb.push_user(4, false), Err(Refused::Full(4))));
        assert!(!mb.user.bounded().expect("bounded").has_room());
        assert_eq!(mb.pop_user(&mut c), Some(2));
        assert!(mb.user.bounded().expect("bounded").has_room());
        assert_eq!(mb.pop_user(&mut c), Some(3));
        assert_eq!(mb.pop_user(&mut c), None);
        mb.push_user(5, false).expect("room");
        mb.push_user(6, false).expect("room");
        // Draining at close counts the drained messages as handed out.
        mb.close();
        let mut drained = Vec::new();
        mb.drain_user(|m| drained.push(m));
        assert_eq!(drained, vec![5, 6]);
        assert!(mb.user.bounded().expect("bounded").has_room());
    }

    #[test]
    fn conflating_lane_drains_in_order_at_close() {
        let mb: Mailbox<(u64, u32), ()> =
            Mailbox::new(MailboxConfig::conflating(|m: &(u64, u32)| Some(m.0)));
        mb.push_user((1, 10), false).expect("open");
        mb.push_user((2, 20), false).expect("open");
        mb.push_user((1, 11), false).expect("open");
        mb.close();
        assert!(matches!(
            mb.push_user((3, 1), false),
            Err(Refused::Closed(_))
        ));
        let mut drained = Vec::new();
        mb.drain_user(|m| drained.push(m));
        assert_eq!(drained, vec![(1, 11), (2, 20)]);
        assert_eq!(mb.len(), 0);
    }

    #[test]
    fn priority_top_class_first_and_weighted_round_robin_below() {
        // class = value / 100; weights 3:1 for classes 1 and 2.
        let mb: Mailbox<u32, ()> = Mailbox::new(MailboxConfig::priority(
            |m: &u32| (*m / 100) as usize,
            &[3, 1],
        ));
        for i in 0..8 {
            mb.push_user(200 + i, false).expect("open");
        }
        for i in 0..8 {
            mb.push_user(100 + i, false).expect("open");
        }
        mb.push_user(0, false).expect("open");
        mb.push_user(1, false).expect("open");
        let mut c = Cursor::default();
        let order: Vec<u32> = std::iter::from_fn(|| mb.pop_user(&mut c)).collect();
        assert_eq!(&order[..2], &[0, 1], "top class strictly first");
        assert_eq!(
            &order[2..10],
            &[100, 101, 102, 200, 103, 104, 105, 201],
            "3:1 weighted round robin, FIFO within a class"
        );
        assert_eq!(order.len(), 18, "nothing lost");
    }

    #[test]
    fn priority_class_index_is_clamped() {
        let mb: Mailbox<u32, ()> =
            Mailbox::new(MailboxConfig::priority(|m: &u32| *m as usize, &[1]));
        mb.push_user(99, false).expect("open");
        assert_eq!(mb.pop_user(&mut Cursor::default()), Some(99));
    }

    #[test]
    fn conflating_keeps_latest_per_key_in_first_position() {
        let mb: Mailbox<(u64, u32), ()> =
            Mailbox::new(MailboxConfig::conflating(|m: &(u64, u32)| {
                (m.0 != 0).then_some(m.0)
            }));
        mb.push_user((1, 10), false).expect("open");
        mb.push_user((2, 20), false).expect("open");
        mb.push_user((0, 1), false).expect("open");
        mb.push_user((1, 11), false).expect("open");
        mb.push_user((0, 2), false).expect("open");
        mb.push_user((1, 12), false).expect("open");
        assert_eq!(mb.len(), 4);
        assert_eq!(mb.conflated(), 2);
        let mut c = Cursor::default();
        let order: Vec<_> = std::iter::from_fn(|| mb.pop_user(&mut c)).collect();
        assert_eq!(order, vec![(1, 12), (2, 20), (0, 1), (0, 2)]);
    }
}

#[cfg(all(test, actor_loom))]
mod loom_tests {
    //! Run with `RUSTFLAGS="--cfg actor_loom" cargo test -p actor-core --release --lib loom_tests`.
    use super::*;
    use crate::sync::loom_support::{
        TWO_LOCKING_PRODUCERS, Task, consumer_task, model, model_preempting,
    };
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize as LoomUsize;
    use std::future::poll_fn;
    use std::task::Waker;

    /// Receives one message like the actor loop does (the cursor keeps the taken batch).
    fn recv(
        mb: &Mailbox<u32, u32>,
        cursor: &mut Cursor<u32>,
        task: &Task,
    ) -> (Option<u32>, Option<u32>) {
        block_on(
            task,
            poll_fn(|cx| {
                loop {
                    if let Some(s) = mb.pop_sys() {
                        return Poll::Ready((Some(s), None));
                    }
                    if let Some(m) = mb.pop_user(cursor) {
                        return Poll::Ready((None, Some(m)));
                    }
                    if mb.poll_park(cx, false).is_pending() {
                        return Poll::Pending;
                    }
                }
            }),
        )
    }

    /// Polls `f` with the task's waker until it is ready, waiting for a wake in between.
    fn block_on<F: std::future::Future>(task: &Task, f: F) -> F::Output {
        let mut cx = Context::from_waker(&task.waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            task.notify.0.wait();
        }
    }

    /// A consumer that parks while a producer pushes is always woken (loom reports a deadlock
    /// otherwise), and receives the message exactly once.
    #[test]
    fn no_lost_wakeup_user_lane() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let p = mb.clone();
            let producer = loom::thread::spawn(move || {
                p.push_user(1, false).expect("open");
            });
            assert_eq!(
                recv(&mb, &mut Cursor::default(), &consumer_task()),
                (None, Some(1))
            );
            producer.join().expect("producer");
        });
    }

    /// Two producers race on the user lane while the consumer takes batches: both messages
    /// arrive, each once, and the consumer is never left parked with a message queued.
    #[test]
    fn two_producers_and_batches_lose_nothing() {
        model_preempting(TWO_LOCKING_PRODUCERS, || {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let (a, b) = (mb.clone(), mb.clone());
            let t1 = loom::thread::spawn(move || a.push_user(1, false).map(|_| ()).expect("open"));
            let t2 = loom::thread::spawn(move || b.push_user(2, false).map(|_| ()).expect("open"));
            let (mut cursor, task) = (Cursor::default(), consumer_task());
            let mut got = [
                recv(&mb, &mut cursor, &task).1,
                recv(&mb, &mut cursor, &task).1,
            ];
            got.sort();
            assert_eq!(got, [Some(1), Some(2)]);
            assert_eq!(cursor.batched(), 0);
            t1.join().expect("t1");
            t2.join().expect("t2");
        });
    }

    /// As above, but one task receives both messages (so it parks with one waker throughout):
    /// the consumer can park while the producer that woke it still holds `WAKING`, and the
    /// other producer's push, which then sees no idle state, must be noticed by the waking
    /// producer when it hands the idle state back (loom reports a deadlock otherwise).
    #[test]
    fn a_consumer_parks_while_its_producer_is_still_waking_it() {
        model_preempting(TWO_LOCKING_PRODUCERS, || {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let (a, b) = (mb.clone(), mb.clone());
            let t1 = loom::thread::spawn(move || a.push_user(1, false).map(|_| ()).expect("open"));
            let t2 = loom::thread::spawn(move || b.push_user(2, false).map(|_| ()).expect("open"));
            let mut cursor = Cursor::default();
            let mut got = Vec::new();
            block_on(
                &consumer_task(),
                poll_fn(|cx| {
                    loop {
                        if let Some(m) = mb.pop_user(&mut cursor) {
                            got.push(m);
                            if got.len() == 2 {
                                return Poll::Ready(());
                            }
                            continue;
                        }
                        if mb.poll_park(cx, false).is_pending() {
                            return Poll::Pending;
                        }
                    }
                }),
            );
            got.sort();
            assert_eq!(got, [1, 2]);
            t1.join().expect("t1");
            t2.join().expect("t2");
        });
    }

    /// The priority lane keeps a lock per class and the fence handshake (the other user lanes are
    /// locked by the state word): a consumer parked while a producer pushes there is still woken
    /// (loom reports a deadlock otherwise), alongside a system message.
    #[test]
    fn no_lost_wakeup_priority_lane() {
        // 3 preemptions: only one of its producers (the system lane's) takes the state-word
        // lock, and this model takes about a minute at 3.
        a_user_and_a_system_message_both_arrive(3, || {
            MailboxConfig::priority(|m: &u32| *m as usize, &[1])
        });
    }

    /// A producer of a full `DropOldest` lane evicts the oldest message while the consumer pops:
    /// every message is received or shed, exactly once (loom also checks the two never touch the
    /// queue at the same time).
    #[test]
    fn drop_oldest_eviction_racing_the_consumer_loses_nothing() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::bounded(
                1,
                Overflow::DropOldest,
            )));
            mb.push_user(1, false).expect("room");
            let p = mb.clone();
            let producer =
                loom::thread::spawn(move || p.push_user(2, false).expect("accepted").shed());
            let mut cursor = Cursor::default();
            let task = consumer_task();
            let mut got = Vec::new();
            while got.last() != Some(&2) {
                if let (None, Some(m)) = recv(&mb, &mut cursor, &task) {
                    got.push(m);
                }
            }
            let shed = producer.join().expect("producer");
            got.extend(shed);
            got.sort();
            assert_eq!(got, [1, 2]);
            assert!(mb.user.bounded().expect("bounded").has_room());
        });
    }

    /// Two producers on different lanes: both messages arrive, each once.
    #[test]
    fn no_lost_wakeup_two_lanes() {
        a_user_and_a_system_message_both_arrive(TWO_LOCKING_PRODUCERS, MailboxConfig::unbounded);
    }

    /// One producer pushes a user message to a mailbox made by `config`, another a system
    /// message, while the consumer receives: both arrive, each once (loom reports a deadlock if
    /// a push leaves the consumer parked).
    fn a_user_and_a_system_message_both_arrive(
        preemptions: usize,
        config: impl Fn() -> MailboxConfig<u32> + Sync + Send + 'static,
    ) {
        model_preempting(preemptions, move || {
            let mb = Arc::new(Mailbox::<u32, u32>::new(config()));
            let (a, b) = (mb.clone(), mb.clone());
            let t1 = loom::thread::spawn(move || a.push_user(1, false).map(|_| ()).expect("open"));
            let t2 = loom::thread::spawn(move || b.push_sys(2).expect("open"));
            let mut cursor = Cursor::default();
            let task = consumer_task();
            let mut got = [recv(&mb, &mut cursor, &task), recv(&mb, &mut cursor, &task)];
            got.sort();
            assert_eq!(got, [(None, Some(1)), (Some(2), None)]);
            t1.join().expect("t1");
            t2.join().expect("t2");
        });
    }

    /// A consumer parked for system messages only is woken by a system message.
    #[test]
    fn sys_only_park_is_woken_by_system_message() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let p = mb.clone();
            let t = loom::thread::spawn(move || p.push_sys(9).expect("open"));
            let got = block_on(
                &consumer_task(),
                poll_fn(|cx| {
                    loop {
                        if let Some(s) = mb.pop_sys() {
                            return Poll::Ready(s);
                        }
                        if mb.poll_park(cx, true).is_pending() {
                            return Poll::Pending;
                        }
                    }
                }),
            );
            assert_eq!(got, 9);
            t.join().expect("t");
        });
    }

    /// A stop request wakes a consumer parked for system messages only, and is taken once.
    #[test]
    fn stop_request_wakes_a_parked_consumer() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let p = mb.clone();
            let t = loom::thread::spawn(move || assert!(p.request_stop()));
            block_on(
                &consumer_task(),
                poll_fn(|cx| {
                    loop {
                        if mb.take_stop() {
                            return Poll::Ready(());
                        }
                        if mb.poll_park(cx, true).is_pending() {
                            return Poll::Pending;
                        }
                    }
                }),
            );
            assert!(!mb.take_stop(), "taken once");
            t.join().expect("t");
        });
    }

    /// The consumer parked with one waker is polled again with another (a spurious poll, or the
    /// task moved to another executor) while a producer wakes it: the producer reads the slot
    /// only while it holds `WAKING` and the consumer writes it only in `RUNNING` (loom reports a
    /// data race on the slot otherwise), and the message still arrives (a deadlock otherwise).
    #[test]
    fn a_new_waker_registered_while_a_producer_wakes_the_old_one() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            assert!(
                mb.poll_park(&mut Context::from_waker(Waker::noop()), false)
                    .is_pending(),
                "parked with the old waker"
            );
            let p = mb.clone();
            let producer = loom::thread::spawn(move || {
                p.push_user(1, false).expect("open");
            });
            assert_eq!(
                recv(&mb, &mut Cursor::default(), &consumer_task()),
                (None, Some(1))
            );
            producer.join().expect("producer");
        });
    }

    /// Closing races a push that wakes the parked consumer: once both are done the mailbox holds
    /// no waker, so refs that outlive the actor do not keep its task allocated.
    #[test]
    fn close_lets_go_of_the_waker_even_while_a_producer_wakes_it() {
        use std::task::{Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let registered = std::sync::Arc::new(Noop);
            let waker = Waker::from(registered.clone());
            let mut cx = Context::from_waker(&waker);
            assert!(mb.poll_park(&mut cx, false).is_pending(), "parked");
            drop(waker);
            let p = mb.clone();
            let producer = loom::thread::spawn(move || {
                let _ = p.push_user(1, false);
            });
            mb.close();
            producer.join().expect("producer");
            assert_eq!(
                std::sync::Arc::strong_count(&registered),
                1,
                "the mailbox let go of the waker"
            );
        });
    }

    /// Closing races a push: the message is handed back to the producer or drained by the
    /// consumer, exactly once (the push takes `LOCKED`, which `close` waits out). Never lost,
    /// never counted twice.
    #[test]
    fn close_racing_push_loses_nothing() {
        a_push_racing_close_is_counted_once(
            |mb| match mb.push_user(1, false) {
                Err(Refused::Closed(_)) => false,
                Err(Refused::Full(_)) => unreachable!("unbounded"),
                // Accepted: the consumer drains it.
                Ok(_) => true,
            },
            |mb| {
                let mut drained = 0;
                mb.drain_user(|_| drained += 1);
                drained
            },
        );
    }

    /// The same for a system message (the system lane is locked by `LOCKED` too).
    #[test]
    fn close_racing_a_system_push_loses_nothing() {
        a_push_racing_close_is_counted_once(|mb| mb.push_sys(2).is_ok(), |mb| mb.drain_sys().len());
    }

    /// A producer's `push` (true: accepted) races the consumer's `close` and `drain`: the
    /// message is refused or drained, once.
    fn a_push_racing_close_is_counted_once(
        push: fn(&Mailbox<u32, u32>) -> bool,
        drain: fn(&Mailbox<u32, u32>) -> usize,
    ) {
        model(move || {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let refused = Arc::new(LoomUsize::new(0));
            let (p, r) = (mb.clone(), refused.clone());
            let producer = loom::thread::spawn(move || {
                if !push(&p) {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            });
            mb.close();
            let drained = drain(&mb);
            producer.join().expect("producer");
            assert_eq!(refused.load(Ordering::SeqCst) + drained, 1);
        });
    }
}
