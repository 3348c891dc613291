//! An actor's mailbox: one system lane, one user lane, and the wake protocol between them and the
//! actor's task.
//!
//! # Invariants
//!
//! * **Many producers, one consumer.** Only the actor's own task pops (a producer may evict from a
//!   bounded `DropOldest` lane or drain a closed mailbox, both of which the locked queues allow).
//!   The consumer of an unbounded lane takes the whole queue into its private batch (`Cursor`);
//!   the actor loop drains that batch as dead letters when it stops.
//! * **System first.** The consumer always drains the system lane before taking a user message;
//!   the system lane is unbounded and never drops. A stop request is not queued: it is a flag
//!   (`stop`), set under the system lane's lock and woken like a system message, that the
//!   consumer takes once the queued system messages are drained.
//! * **Wake on the idle-to-running transition only.** The state word is `RUNNING` while the
//!   consumer works. Before parking, the consumer registers its waker, stores `IDLE` (or
//!   `IDLE_SYS` when it only accepts system messages), issues a `SeqCst` fence and looks at the
//!   lanes once more. A producer pushes, issues a `SeqCst` fence and loads the state: only when it
//!   reads an idle state that admits its lane and wins the CAS from it to `WAKING` does it wake the
//!   task, and then it hands the state back with a CAS to `RUNNING`. By the two fences at least
//!   one side sees the other's write, so no wake-up is lost, and a busy actor costs its producers
//!   one plain load each, no read-modify-write.
//! * **The state word guards the waker.** The waker stays registered between parks
//!   (`sync::WakerSlot`, no synchronisation of its own): a producer reads it only while it holds
//!   `WAKING`, so at most one does; the consumer writes it only in `RUNNING`, which no producer
//!   leaves, or after `CLOSED`. A wake therefore costs the producer two CASes on the state word.
//! * **Parking on top of `WAKING`.** Waking can take a system call (unparking a worker), so the
//!   consumer is often polled and done before the producer that woke it lets go. It then parks as
//!   `WAKING | IDLE` (or `IDLE_SYS`) instead of waiting; the producer's CAS back to `RUNNING` fails,
//!   and it hands over the idle state instead, then issues a fence and looks at the lanes for
//!   messages whose producers saw `WAKING` and did not wake (same two-fence argument), waking
//!   again if there are any. `close` waits out a `WAKING` producer (one wake: at most a system
//!   call) before it sets `CLOSED`.
//! * **Nothing escapes the dead-letter count.** `CLOSED` is set by the consumer before it drains
//!   the user lane. A producer that sees `CLOSED` before pushing gets its message back; one that
//!   sees it only after pushing drains the lane itself. By the same fence argument every message is
//!   either consumed, handed back, or drained by someone and counted.

mod config;
mod lane;

use std::collections::VecDeque;
use std::task::{Context, Poll};

pub use config::{MailboxConfig, Overflow};
pub(crate) use lane::Cursor;
use lane::{Pushed, UserLane};

use crate::sync::{AtomicBool, AtomicU8, Mutex, Ordering, WakerSlot, fence};

const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const IDLE_SYS: u8 = 2;
const CLOSED: u8 = 4;
/// A producer won the transition out of idle and is waking the task; it alone reads the waker
/// until it hands the state back.
const WAKING: u8 = 8;
/// The consumer's idle states; with `WAKING`, it parked while a producer was still waking it.
const IDLE_BITS: u8 = IDLE | IDLE_SYS;

/// What happened to an accepted user message.
#[derive(Debug)]
pub(crate) struct Accepted<M> {
    /// A message shed by the overflow policy (dead letter).
    pub(crate) shed: Option<M>,
    /// The mailbox closed while we pushed: the caller must drain it with `drain_user`.
    pub(crate) closed: bool,
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
    /// Boxed on the first system message: most actors get few (often only the final stop), and
    /// 16 bytes instead of 40 in every mailbox keep the cell small.
    #[allow(clippy::box_collection, reason = "8 bytes inline instead of 32")]
    sys: Mutex<Option<Box<VecDeque<S>>>>,
    user: UserLane<M>,
    waker: WakerSlot,
}

impl<M, S> Mailbox<M, S> {
    pub(crate) fn new(config: MailboxConfig<M>) -> Self {
        Self {
            state: AtomicU8::new(RUNNING),
            sys_pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sys: Mutex::new(None),
            user: UserLane::new(config),
            waker: WakerSlot::new(),
        }
    }

    /// Producer side: queue a user message. `force_fail` makes a full bounded lane refuse
    /// whatever its overflow policy (used by `send().await`, which then waits for room).
    #[inline]
    pub(crate) fn push_user(&self, msg: M, force_fail: bool) -> Result<Accepted<M>, Refused<M>> {
        if self.state.load(Ordering::Acquire) & CLOSED != 0 {
            return Err(Refused::Closed(msg));
        }
        let shed = match self.user.push(msg, force_fail) {
            Ok(Pushed::Queued) => None,
            Ok(Pushed::Shed(m)) => Some(m),
            Err(m) => return Err(Refused::Full(m)),
        };
        fence(Ordering::SeqCst);
        let state = self.state.load(Ordering::Relaxed);
        if state & CLOSED != 0 {
            return Ok(Accepted { shed, closed: true });
        }
        if state == IDLE {
            self.wake_from(IDLE);
        }
        Ok(Accepted {
            shed,
            closed: false,
        })
    }

    /// Producer side: queue a system message. Returns it if the mailbox is closed.
    pub(crate) fn push_sys(&self, msg: S) -> Result<(), S> {
        {
            let mut sys = self.sys.lock();
            if self.state.load(Ordering::Acquire) & CLOSED != 0 {
                return Err(msg);
            }
            sys.get_or_insert_with(Box::default).push_back(msg);
            self.sys_pending.store(true, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        let state = self.state.load(Ordering::Relaxed);
        if state == IDLE || state == IDLE_SYS {
            self.wake_from(state);
        }
        Ok(())
    }

    /// Producer side: ask the consumer to stop. Taken with [`Mailbox::take_stop`] once the queued
    /// system messages are drained; wakes the consumer like a system message does. False if the
    /// mailbox is closed.
    pub(crate) fn request_stop(&self) -> bool {
        {
            // Under the system lock, like `push_sys`, so a request racing `close` either lands
            // before it or sees `CLOSED`.
            let _sys = self.sys.lock();
            if self.state.load(Ordering::Acquire) & CLOSED != 0 {
                return false;
            }
            self.stop.store(true, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        let state = self.state.load(Ordering::Relaxed);
        if state == IDLE || state == IDLE_SYS {
            self.wake_from(state);
        }
        true
    }

    /// Consumer side: was a stop requested (since the last call)?
    #[inline]
    pub(crate) fn take_stop(&self) -> bool {
        self.stop.load(Ordering::Acquire) && self.stop.swap(false, Ordering::AcqRel)
    }

    /// Producer side: if the state is still `idle`, take `WAKING`, wake the task and hand the
    /// state back: `RUNNING`, or the idle state the consumer parked in meanwhile (then look at
    /// the lanes once more for messages whose producers saw `WAKING` and did not wake).
    // Out of line: a busy actor's producers never get here, and their push stays small.
    #[inline(never)]
    fn wake_from(&self, idle: u8) {
        // Acquire: the consumer's registration (released by its store of `idle`).
        if self
            .state
            .compare_exchange(idle, WAKING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // SAFETY: we hold `WAKING`: the consumer does not write the slot and no other producer
        // can win it until we hand the state back.
        unsafe { self.waker.wake() };
        // Release: our read of the slot happens before the consumer's next write of it.
        if let Err(parked) =
            self.state
                .compare_exchange(WAKING, RUNNING, Ordering::Release, Ordering::Relaxed)
        {
            self.wake_handover(parked);
        }
    }

    /// Producer side, holding `WAKING`, when the consumer parked while we woke it (`parked` is
    /// `WAKING | idle`; the wake was probably what got it polled: waking can take a system call
    /// to unpark a worker). Only we and the consumer write the state while `WAKING` is held, and
    /// the consumer only parks or un-parks.
    #[cold]
    fn wake_handover(&self, mut parked: u8) {
        loop {
            let idle = parked & IDLE_BITS;
            // AcqRel: release our read of the slot to the consumer's next registration. If this
            // fails, the consumer un-parked: it is running, and we hand back `RUNNING` below.
            if self
                .state
                .compare_exchange(parked, idle, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Producers that pushed while the state was `WAKING | idle` did not wake the
                // consumer: by this fence and theirs, either we see their message or they see
                // `idle`.
                fence(Ordering::SeqCst);
                if !self.has_work(idle)
                    || self
                        .state
                        .compare_exchange(idle, WAKING, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                {
                    return;
                }
                // SAFETY: as in `wake_from`: we hold `WAKING` again.
                unsafe { self.waker.wake() };
            }
            match self
                .state
                .compare_exchange(WAKING, RUNNING, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => parked = now,
            }
        }
    }

    /// Whether a consumer parked in `idle` has something to look at.
    #[inline]
    fn has_work(&self, idle: u8) -> bool {
        self.sys_pending.load(Ordering::Acquire)
            || self.stop.load(Ordering::Acquire)
            || (idle == IDLE && !self.user.is_empty())
    }

    /// Consumer side: the next system message, if any.
    #[inline]
    pub(crate) fn pop_sys(&self) -> Option<S> {
        if !self.sys_pending.load(Ordering::Acquire) {
            return None;
        }
        let mut sys = self.sys.lock();
        let queue = sys.as_mut()?;
        let msg = queue.pop_front();
        if queue.is_empty() {
            self.sys_pending.store(false, Ordering::Release);
        }
        msg
    }

    /// Consumer side: the next user message, if any.
    #[inline]
    pub(crate) fn pop_user(&self, cursor: &mut Cursor<M>) -> Option<M> {
        self.user.pop(cursor)
    }

    /// Consumer side: park until a message arrives (`sys_only`: until a system message arrives).
    /// Ready means "look again", not a guarantee that a message is there.
    pub(crate) fn poll_park(&self, cx: &mut Context<'_>, sys_only: bool) -> Poll<()> {
        let idle = if sys_only { IDLE_SYS } else { IDLE };
        // Acquire: a waking producer's read of the slot happens before our write below.
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state == RUNNING {
                // SAFETY: no producer reads the slot in `RUNNING`, which only we leave.
                unsafe { self.waker.register(cx.waker()) };
                // Release publishes the registration to the producer that wins the CAS back; the
                // fence orders this store before the loads below (the store itself needs no
                // `SeqCst`).
                self.state.store(idle, Ordering::Release);
                break;
            }
            if state & CLOSED != 0 {
                return Poll::Pending;
            }
            if state & IDLE_BITS != 0 {
                // Polled while parked (a timer, a join): running again, keeping a producer's
                // `WAKING`. Acquire as above.
                state = self.state.fetch_and(!IDLE_BITS, Ordering::Acquire) & !IDLE_BITS;
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
            match self.state.compare_exchange(
                WAKING,
                WAKING | idle,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        fence(Ordering::SeqCst);
        if self.has_work(idle) {
            // Un-park, whatever happened meanwhile: a producer may hold `WAKING` (it hands back
            // `RUNNING`), or have handed `idle` back to us.
            self.state.fetch_and(!IDLE_BITS, Ordering::Acquire);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Consumer side: refuse all further messages. Call `drain_user` and `drain_sys` afterwards.
    pub(crate) fn close(&self) {
        {
            // Under the system lock, so a concurrent `push_sys` either lands before (and is
            // drained) or sees CLOSED.
            let _sys = self.sys.lock();
            let mut spins = 0u32;
            let mut state = self.state.load(Ordering::Relaxed);
            loop {
                // A producer holding `WAKING` hands the state back once its wake returns (its
                // CAS would not expect `CLOSED`): wait for it. None can take it after `CLOSED`.
                if state & WAKING != 0 {
                    spins += 1;
                    crate::sync::backoff(spins);
                    state = self.state.load(Ordering::Relaxed);
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

    /// Removes every queued user message (consumer at close, or a producer that saw `CLOSED`
    /// after pushing).
    pub(crate) fn drain_user(&self, mut f: impl FnMut(M)) {
        let mut cursor = Cursor::default();
        while let Some(msg) = self.user.pop(&mut cursor) {
            f(msg);
        }
    }

    /// Removes every queued system message.
    pub(crate) fn drain_sys(&self) -> VecDeque<S> {
        let mut sys = self.sys.lock();
        self.sys_pending.store(false, Ordering::Release);
        sys.take().map(|queue| *queue).unwrap_or_default()
    }

    /// Queued user messages.
    pub(crate) fn len(&self) -> usize {
        self.user.len()
    }

    /// Messages replaced by newer ones in a conflating lane.
    pub(crate) fn conflated(&self) -> usize {
        self.user.conflated()
    }

    /// Waits until a bounded lane may have room (or the mailbox closed). Returns at once for the
    /// other lanes. The caller retries its push after this returns.
    pub(crate) async fn wait_for_room(&self) {
        let Some(bounded) = self.user.bounded() else {
            return;
        };
        let notified = bounded.space().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        bounded.waiting().fetch_add(1, Ordering::AcqRel);
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
        assert_eq!(acc.shed, Some(3));
        assert!(matches!(newest.push_user(4, true), Err(Refused::Full(4))));

        let oldest: Mailbox<u32, ()> =
            Mailbox::new(MailboxConfig::bounded(2, Overflow::DropOldest));
        oldest.push_user(1, false).expect("room");
        oldest.push_user(2, false).expect("room");
        let acc = oldest.push_user(3, false).expect("accepted");
        assert_eq!(acc.shed, Some(1));
        let mut c = Cursor::default();
        assert_eq!(oldest.pop_user(&mut c), Some(2));
        assert_eq!(oldest.pop_user(&mut c), Some(3));
        assert_eq!(oldest.len(), 0);
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
    use crate::sync::loom_support::{Task, consumer_task, model};
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
        model(|| {
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
        model(|| {
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

    /// Two producers on different lanes: both messages arrive, each once.
    #[test]
    fn no_lost_wakeup_two_lanes() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let (a, b) = (mb.clone(), mb.clone());
            let t1 = loom::thread::spawn(move || a.push_user(1, false).map(|_| ()).expect("open"));
            let t2 = loom::thread::spawn(move || b.push_sys(2).expect("open"));
            let mut cursor = Cursor::default();
            let task = consumer_task();
            let first = recv(&mb, &mut cursor, &task);
            let second = recv(&mb, &mut cursor, &task);
            let mut got = [first, second];
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

    /// Closing races a push: the message is consumed, handed back, or drained by exactly one
    /// side. Never lost, never counted twice.
    #[test]
    fn close_racing_push_loses_nothing() {
        model(|| {
            let mb = Arc::new(Mailbox::<u32, u32>::new(MailboxConfig::unbounded()));
            let seen = Arc::new(LoomUsize::new(0));
            let (p, ps) = (mb.clone(), seen.clone());
            let producer = loom::thread::spawn(move || match p.push_user(1, false) {
                Err(Refused::Closed(_)) => {
                    ps.fetch_add(1, Ordering::SeqCst);
                }
                Err(Refused::Full(_)) => unreachable!("unbounded"),
                Ok(acc) => {
                    if acc.closed {
                        p.drain_user(|_| {
                            ps.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                }
            });
            mb.close();
            mb.drain_user(|_| {
                seen.fetch_add(1, Ordering::SeqCst);
            });
            producer.join().expect("producer");
            assert_eq!(seen.load(Ordering::SeqCst), 1);
        });
    }
}
