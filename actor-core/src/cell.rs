//! The actor cell: the part of an actor shared between its task and everyone holding a ref to it:
//! the mailbox, identity, watchers, statistics and the kill switch.
//!
//! Invariant: an actor terminates exactly once. `CellCore::terminate` records the reason under the
//! watcher lock; a watcher added after that is notified at once, so `Terminated` is delivered to
//! every watcher exactly once whatever the interleaving.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;

use parking_lot::RawMutex;
use parking_lot::lock_api::RawMutex as _;
use tokio::task::{AbortHandle, JoinHandle};

use crate::dead_letters::DeadLetterReason;
use crate::failure::{Directive, Failure, Terminated, TerminationReason};
use crate::group::MemberRef;
use crate::mailbox::{Accepted, Mailbox, MailboxConfig, Refused};
use crate::path::{ActorId, ActorPath};
use crate::system::SystemShared;

/// Messages on the system lane. Never dropped while the actor lives; always handled before user
/// messages.
pub(crate) enum SystemMsg {
    /// Stop gracefully.
    Stop,
    /// Stop gracefully once the mailbox is empty.
    StopWhenIdle,
    /// The parent restarts this (not necessarily failed) child.
    Restart(Failure),
    /// The parent's decision after this actor failed.
    Supervise(Directive),
    /// A child failed and is suspended, waiting for a directive.
    ChildFailed { child: ActorId, failure: Failure },
    /// A child ended.
    ChildTerminated { child: ActorId },
    /// A watched actor ended.
    Terminated(Terminated),
    /// A delayed restart is due.
    RestartNow,
}

/// Type-erased access to an actor's system lane and life (its message type is not known here).
pub(crate) trait SysTarget: Send + Sync + 'static {
    fn send_sys(&self, msg: SystemMsg) -> bool;
    fn core(&self) -> &CellCore;
}

/// Someone to tell when a watched actor ends: an actor (its system lane), or a callback
/// (transports, `wait_for_stop`).
#[derive(Clone)]
pub struct Watcher {
    pub(crate) id: ActorId,
    kind: WatcherKind,
}

#[derive(Clone)]
enum WatcherKind {
    Actor(Arc<dyn SysTarget>),
    Callback(Arc<dyn Fn(Terminated) + Send + Sync>),
}

impl Watcher {
    pub(crate) fn actor(target: Arc<dyn SysTarget>) -> Self {
        Self {
            id: target.core().id,
            kind: WatcherKind::Actor(target),
        }
    }

    /// A watcher that runs `callback` (once) when the watched actor ends. `id` identifies it for
    /// `unwatch`. For transports that relay `Terminated` to other nodes.
    pub fn from_fn(id: ActorId, callback: impl Fn(Terminated) + Send + Sync + 'static) -> Self {
        Self {
            id,
            kind: WatcherKind::Callback(Arc::new(callback)),
        }
    }

    /// The watcher's identity.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Delivers `Terminated` to this watcher.
    pub fn notify(&self, terminated: Terminated) {
        match &self.kind {
            WatcherKind::Actor(target) => {
                target.send_sys(SystemMsg::Terminated(terminated));
            }
            WatcherKind::Callback(f) => f(terminated),
        }
    }
}

/// How an actor's end is recorded and announced, and how its task is aborted, in one word, since
/// every actor has one: the kill switch (a group member's place, there from the cell's making,
/// or the task's abort handle, set once right after the task is spawned, under the life lock, so
/// that a kill racing the spawn is never lost), or, once anything else has to be kept, a box
/// with that and the switch: watchers, waiters, a reason that is not a plain stop or kill (those
/// are recorded in `CellCore::end`), the failure and restart counts. Most actors are never
/// watched and never fail, and keep only the switch. Which of the two the word holds is
/// [`HAS_MORE`] in `CellCore::end`, and which handle the switch holds its [`SWITCH_BITS`]; both
/// are kept in step by [`LifeGuard`]'s methods, the only way in.
///
/// The switch is let go of when the actor ends ([`CellCore::terminate`]): it keeps the task's or
/// the member's memory, which an ended actor's refs should not.
///
/// The cell's size matters beyond its bytes (see [`Cell`]). Until Session 14, 8 of the cell's
/// bytes were padding to keep its 208-byte chunk; the guardian's slot
/// (`CellCore::guardian_slot`) took their place.
union Life {
    switch: ManuallyDrop<KillSwitch>,
    more: ManuallyDrop<Box<LifeMore>>,
}

/// A kill switch in one word (an `Option<Abort>` takes two): which field holds a handle, if
/// any, is kept in `CellCore::end` (see [`SWITCH_BITS`]).
union KillSwitch {
    none: (),
    spawned: ManuallyDrop<JoinHandle<()>>,
    task: ManuallyDrop<AbortHandle>,
    group: ManuallyDrop<MemberRef>,
}

impl Default for KillSwitch {
    fn default() -> Self {
        Self { none: () }
    }
}

impl KillSwitch {
    /// The switch holding `abort`, and its kind (a value of [`SWITCH_BITS`]).
    fn new(abort: Option<Abort>) -> (Self, u8) {
        match abort {
            None => (Self { none: () }, SWITCH_NONE),
            Some(Abort::Spawned(h)) => (
                Self {
                    spawned: ManuallyDrop::new(h),
                },
                SWITCH_SPAWNED,
            ),
            Some(Abort::Task(h)) => (
                Self {
                    task: ManuallyDrop::new(h),
                },
                SWITCH_TASK,
            ),
            Some(Abort::Group(m)) => (
                Self {
                    group: ManuallyDrop::new(m),
                },
                SWITCH_GROUP,
            ),
        }
    }
}

impl LifeMore {
    /// Adds someone to tell at the end. The list starts with room for one (most actors have one
    /// watcher, or one waiter, at a time; a `Vec` would start with room for four).
    fn wait(&mut self, waiting: Waiting) {
        if self.waiting.capacity() == 0 {
            self.waiting.reserve_exact(1);
        }
        self.waiting.push(waiting);
    }
}

/// The part of [`Life`] most actors never use, and the kill switch once it exists.
#[derive(Default)]
struct LifeMore {
    /// The kill switch, moved here from the [`Life`] word when this box is made.
    switch: KillSwitch,
    /// Boxed too: this keeps a `LifeMore` small.
    reason: Option<Box<TerminationReason>>,
    waiting: Vec<Waiting>,
    /// Failures of the actor, and its restarts (see [`ActorStats`](crate::ActorStats)): counted
    /// here rather than in every cell, as most actors never fail.
    failures: u32,
    restarts: u32,
    /// The number the next [`EndWait`] gets (wrapping: a wait still pending 2^32 waits later
    /// would share it, and be told of the end with the other).
    next_waiter: u32,
}

/// How to abort an actor's loop: its own tokio task, or its place in an [`crate::ActorGroup`].
pub(crate) enum Abort {
    /// The task's own `JoinHandle`, kept rather than turned into an `AbortHandle`: that would
    /// take one more count on the task and give the handle's back, two atomic operations on
    /// every spawn, for the same abort. (Dropped as the task ends, the `JoinHandle` takes one
    /// more than an `AbortHandle` would: one fewer over the actor's life, off the spawn.)
    Spawned(JoinHandle<()>),
    /// A task awaited elsewhere (a dedicated thread's).
    Task(AbortHandle),
    Group(MemberRef),
}

impl Abort {
    fn abort(&self) {
        match self {
            Abort::Spawned(h) => h.abort(),
            Abort::Task(h) => h.abort(),
            Abort::Group(m) => m.abort(),
        }
    }
}

/// `CellCore::end`, the low two bits: how the actor ended (read and written under the life lock).
const ALIVE: u8 = 0;
const STOPPED: u8 = 1;
const KILLED: u8 = 2;
/// Ended for the reason in `Life::reason`.
const OTHER: u8 = 3;
/// The two bits of `CellCore::end` above those: which handle the kill switch holds.
const END_BITS: u8 = 0b0011;
const SWITCH_BITS: u8 = 0b1100;
/// The bit of `CellCore::end` that says the [`Life`] word holds the box (`Life::more`) rather
/// than the kill switch alone.
const HAS_MORE: u8 = 0b1_0000;
const SWITCH_NONE: u8 = 0;
const SWITCH_SPAWNED: u8 = 0b0100;
const SWITCH_TASK: u8 = 0b1000;
const SWITCH_GROUP: u8 = 0b1100;

/// What the actors spawned in one place share: their system, their parent and the path their
/// own is made from. One per parent for its anonymous children (kept in its context), one for
/// the anonymous top-level actors (the system keeps it weakly, see
/// [`SystemShared::top_family`]: it holds the system), and one for each named actor, whose path
/// it holds: 8 bytes in each cell for what took 40.
pub(crate) struct Family {
    pub(crate) system: Arc<SystemShared>,
    /// The parent's system target; `None` for top-level actors, whose parent is the user
    /// guardian (the cell's system). Weak, so an actor's cell does not keep its parent's: once
    /// the parent's cell is gone, the parent has ended, and there is no one left to tell.
    parent: Option<Weak<dyn SysTarget>>,
    /// A named actor's path; the parent's path for anonymous actors, to which `/$<id>` is
    /// appended when the path is asked for (an anonymous actor's own path is never stored: that
    /// saves an allocation and its formatting per spawn). See [`CellCore::path`].
    base: ActorPath,
}

impl Family {
    /// The family of the anonymous top-level actors.
    pub(crate) fn top_level(system: Arc<SystemShared>) -> Arc<Self> {
        Arc::new(Self {
            system,
            parent: None,
            base: ActorPath::user_root(),
        })
    }

    /// The family of the anonymous children of the actor with path `path`.
    pub(crate) fn children_of(
        system: Arc<SystemShared>,
        parent: Weak<dyn SysTarget>,
        path: ActorPath,
    ) -> Arc<Self> {
        Arc::new(Self {
            system,
            parent: Some(parent),
            base: path,
        })
    }

    /// The path of a member named `name`.
    pub(crate) fn child_path(&self, name: &str) -> ActorPath {
        self.base.child(name)
    }

    /// The family of a named member, whose path is `path`: the same parent.
    pub(crate) fn named(&self, path: ActorPath) -> Arc<Self> {
        Arc::new(Self {
            system: self.system.clone(),
            parent: self.parent.clone(),
            base: path,
        })
    }
}

/// Someone told when the actor ends.
enum Waiting {
    Watcher(Watcher),
    /// A task in an [`EndWait`], by its number, woken at the end (a waker rather than a
    /// channel: waiting allocates no channel).
    Waiter(u32, std::task::Waker),
}

/// Resolves with how the actor ended (see [`CellCore::wait_for_end`]). Its task's waker is kept
/// in the actor's life from the first poll until the end, or until the wait is dropped.
pub(crate) struct EndWait<'a> {
    core: &'a CellCore,
    /// Its number among the actor's waiters, once registered.
    id: Option<u32>,
}

impl std::future::Future for EndWait<'_> {
    type Output = TerminationReason;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<TerminationReason> {
        let this = &mut *self;
        let mut life = this.core.life();
        if let Some(reason) = this.core.ended_locked(&life) {
            // The end took the waker out.
            this.id = None;
            return std::task::Poll::Ready(reason);
        }
        let more = life.more();
        let known = this.id.and_then(|id| {
            more.waiting
                .iter_mut()
                .find_map(|w| matches!(w, Waiting::Waiter(i, _) if *i == id).then_some(w))
        });
        match known {
            Some(Waiting::Waiter(_, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
            }
            _ => {
                let id = more.next_waiter;
                more.next_waiter = id.wrapping_add(1);
                more.wait(Waiting::Waiter(id, cx.waker().clone()));
                this.id = Some(id);
            }
        }
        std::task::Poll::Pending
    }
}

impl Drop for EndWait<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut life = self.core.life();
        let left = life.more_mut_if_any().and_then(|more| {
            let at = more
                .waiting
                .iter()
                .position(|w| matches!(w, Waiting::Waiter(i, _) if *i == id))?;
            // `remove`, not `swap_remove`: the watchers are told in the order they came.
            Some(more.waiting.remove(at))
        });
        drop(life);
        drop(left);
    }
}

/// The non-generic half of a cell.
pub(crate) struct CellCore {
    pub(crate) id: ActorId,
    /// Its system, its parent and the base of its path.
    family: Arc<Family>,
    /// Named, and so in the system's registry; its family's base is its path.
    pub(crate) registered: bool,
    /// The lock of `life`: a byte of its own rather than a `Mutex<Life>`, whose lock byte would
    /// take 8 bytes with the padding after it; this one packs with the small fields below.
    life_lock: RawMutex,
    life: LifeCell,
    /// What the actor's stats read of its progress, as of its task's last flush
    /// ([`CellCore::flush_progress`]; written only by that task): user messages handled, in the
    /// low [`PROCESSED_BITS`] bits (wrapping), and in the high 16 bits, messages it had taken
    /// from its mailbox but not handled yet (part of the mailbox depth in its stats; saturating
    /// at 65,535). One word for what took 12 bytes.
    progress: AtomicU64,
    killed: AtomicBool,
    /// `ALIVE`, `STOPPED`, `KILLED` or `OTHER`; only touched under the `life` lock (an atomic
    /// only so that the core stays `Sync` without another lock; it fits in existing padding).
    end: AtomicU8,
    /// A top-level actor's slot among the user guardian's live children (`system::TopLevel`),
    /// written under the guardian's lock when it is spawned, before its task runs.
    guardian_slot: AtomicU32,
}

impl Drop for CellCore {
    fn drop(&mut self) {
        // What the life word holds is told by bits outside it: drop it here.
        let mut life = self.life();
        let switch = life.take_switch();
        let more = life.take_more();
        drop(life);
        drop(switch);
        drop(more);
    }
}

/// A cell's [`Life`], reached only through [`CellCore::life`], which holds `life_lock`.
struct LifeCell(UnsafeCell<Life>);

// SAFETY: the `Life` is only reached through a `LifeGuard`, which holds the core's `life_lock`,
// so one thread at a time touches it; what it holds moves between threads (`Life: Send`,
// checked below).
unsafe impl Sync for LifeCell {}

const _: () = {
    const fn send<T: Send>() {}
    send::<Life>();
};

/// The held life lock of a cell, and access to its [`Life`]. (The token parking_lot's raw lock
/// hands out is a zero-sized marker, taken back at the unlock.)
struct LifeGuard<'a>(
    &'a CellCore,
    ManuallyDrop<<RawMutex as parking_lot::lock_api::RawMutex>::Guard>,
);

impl LifeGuard<'_> {
    fn word(&self) -> &Life {
        // SAFETY: this guard holds the lock.
        unsafe { &*self.0.life.0.get() }
    }

    fn word_mut(&mut self) -> &mut Life {
        // SAFETY: this guard holds the lock, and is borrowed mutably.
        unsafe { &mut *self.0.life.0.get() }
    }

    /// `CellCore::end`, all of it (written only under the life lock, so a load and a store).
    fn bits(&self) -> u8 {
        self.0.end.load(Ordering::Relaxed)
    }

    fn set_bits(&self, bits: u8) {
        self.0.end.store(bits, Ordering::Relaxed);
    }

    /// How the actor ended (`ALIVE` if it has not).
    fn end(&self) -> u8 {
        self.bits() & END_BITS
    }

    /// Records how the actor ended, keeping the other bits.
    fn set_end(&self, end: u8) {
        self.set_bits(self.bits() & !END_BITS | end);
    }

    fn switch_kind(&self) -> u8 {
        self.bits() & SWITCH_BITS
    }

    /// The boxed rest of the life, if it was ever needed.
    fn more_if_any(&self) -> Option<&LifeMore> {
        // SAFETY: `HAS_MORE` says the word holds the box.
        (self.bits() & HAS_MORE != 0).then(|| unsafe { &**self.word().more })
    }

    /// See [`LifeGuard::more_if_any`].
    fn more_mut_if_any(&mut self) -> Option<&mut LifeMore> {
        if self.bits() & HAS_MORE == 0 {
            return None;
        }
        // SAFETY: `HAS_MORE` says the word holds the box.
        Some(unsafe { &mut **self.word_mut().more })
    }

    /// The boxed rest of the life, made on first use (the kill switch moves into it).
    fn more(&mut self) -> &mut LifeMore {
        if self.bits() & HAS_MORE == 0 {
            // SAFETY: without `HAS_MORE` the word holds the switch; it is moved out once, as
            // the word is overwritten with the box that now holds it.
            let switch = unsafe { ManuallyDrop::take(&mut self.word_mut().switch) };
            self.word_mut().more = ManuallyDrop::new(Box::new(LifeMore {
                switch,
                ..LifeMore::default()
            }));
            self.set_bits(self.bits() | HAS_MORE);
        }
        // SAFETY: the word holds the box now.
        unsafe { &mut self.word_mut().more }
    }

    fn switch(&self) -> &KillSwitch {
        match self.more_if_any() {
            Some(more) => &more.switch,
            // SAFETY: without `HAS_MORE` the word holds the switch.
            None => unsafe { &self.word().switch },
        }
    }

    fn switch_mut(&mut self) -> &mut KillSwitch {
        if self.bits() & HAS_MORE != 0 {
            return &mut self.more().switch;
        }
        // SAFETY: without `HAS_MORE` the word holds the switch.
        unsafe { &mut self.word_mut().switch }
    }

    /// Takes the kill switch out (there is none after this).
    fn take_switch(&mut self) -> Option<Abort> {
        let kind = self.switch_kind();
        if kind == SWITCH_NONE {
            return None;
        }
        self.set_bits(self.bits() & !SWITCH_BITS);
        let switch = std::mem::take(self.switch_mut());
        // SAFETY: `kind` named the field that holds a handle; it is moved out once, as the kind
        // now says there is none.
        Some(unsafe {
            match kind {
                SWITCH_SPAWNED => Abort::Spawned(ManuallyDrop::into_inner(switch.spawned)),
                SWITCH_TASK => Abort::Task(ManuallyDrop::into_inner(switch.task)),
                _ => Abort::Group(ManuallyDrop::into_inner(switch.group)),
            }
        })
    }

    /// Puts `abort` in as the kill switch, letting go of one already there.
    fn put_switch(&mut self, abort: Abort) -> Option<Abort> {
        let old = self.take_switch();
        let (switch, kind) = KillSwitch::new(Some(abort));
        *self.switch_mut() = switch;
        self.set_bits(self.bits() | kind);
        old
    }

    /// Takes the box out, if there is one, leaving its kill switch in the word. For the cell's
    /// drop, so that what the box holds is dropped after the lock is let go of.
    fn take_more(&mut self) -> Option<Box<LifeMore>> {
        if self.bits() & HAS_MORE == 0 {
            return None;
        }
        // SAFETY: `HAS_MORE` says the word holds the box; it is moved out once, as the word is
        // overwritten with the switch and the bit cleared.
        let mut more = unsafe { ManuallyDrop::take(&mut self.word_mut().more) };
        self.word_mut().switch = ManuallyDrop::new(std::mem::take(&mut more.switch));
        self.set_bits(self.bits() & !HAS_MORE);
        Some(more)
    }

    /// Aborts the actor's loop through its kill switch, if it has one.
    fn abort(&self) {
        let switch = self.switch();
        // SAFETY: the kind names the field that holds a handle.
        unsafe {
            match self.switch_kind() {
                SWITCH_SPAWNED => switch.spawned.abort(),
                SWITCH_TASK => switch.task.abort(),
                SWITCH_GROUP => switch.group.abort(),
                _ => {}
            }
        }
    }
}

impl Drop for LifeGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard took the lock in `CellCore::life`, and lets go of it once, with
        // the token the lock gave (taken out here, never used again).
        unsafe { self.0.life_lock.unlock(ManuallyDrop::take(&mut self.1)) };
    }
}

/// Bits of `CellCore::progress` that count handled messages: 2^48 messages, about nine years at
/// a million a second, before the count wraps.
const PROCESSED_BITS: u32 = 48;
const PROCESSED_MASK: u64 = (1 << PROCESSED_BITS) - 1;

impl CellCore {
    /// The actor's task brings its stats up to date: `handled` more messages handled, and
    /// `batched` taken from the mailbox but not handled yet. Only that task writes the word: a
    /// load and a store, no read-modify-write.
    #[inline]
    pub(crate) fn flush_progress(&self, handled: u64, batched: usize) {
        let now = self.progress.load(Ordering::Relaxed);
        let processed = now.wrapping_add(handled) & PROCESSED_MASK;
        let batched = batched.min(usize::from(u16::MAX)) as u64;
        self.progress
            .store(processed | batched << PROCESSED_BITS, Ordering::Relaxed);
    }

    /// Messages handled (modulo 2^48) and messages taken but not handled yet, as of the actor's
    /// last flush.
    pub(crate) fn progress(&self) -> (u64, usize) {
        let now = self.progress.load(Ordering::Relaxed);
        (now & PROCESSED_MASK, (now >> PROCESSED_BITS) as usize)
    }

    /// The actor's system.
    #[inline]
    pub(crate) fn system(&self) -> &Arc<SystemShared> {
        &self.family.system
    }

    /// Takes the life lock.
    fn life(&self) -> LifeGuard<'_> {
        let token = self.life_lock.lock();
        LifeGuard(self, ManuallyDrop::new(token))
    }

    /// Counts a failure of the actor.
    pub(crate) fn count_failure(&self) {
        let mut life = self.life();
        let more = life.more();
        more.failures = more.failures.saturating_add(1);
    }

    /// Counts a restart of the actor; returns how many there were.
    pub(crate) fn count_restart(&self) -> u32 {
        let mut life = self.life();
        let more = life.more();
        more.restarts = more.restarts.saturating_add(1);
        more.restarts
    }

    /// Failures and restarts counted so far.
    pub(crate) fn failures_and_restarts(&self) -> (u32, u32) {
        self.life()
            .more_if_any()
            .map_or((0, 0), |m| (m.failures, m.restarts))
    }

    /// Its slot among the user guardian's live children, given under the guardian's lock.
    pub(crate) fn set_guardian_slot(&self, slot: u32) {
        self.guardian_slot.store(slot, Ordering::Relaxed);
    }

    /// The actor's path (built on each call for an anonymous actor).
    pub(crate) fn path(&self) -> ActorPath {
        if self.registered {
            self.family.base.clone()
        } else {
            self.family.base.anonymous_child(self.id.0)
        }
    }

    /// The actor's path for logs, without building it.
    pub(crate) fn display_path(&self) -> impl std::fmt::Display + '_ {
        PathDisplay(self)
    }

    /// A named actor's path (its registry key).
    pub(crate) fn registered_path(&self) -> Option<&ActorPath> {
        self.registered.then_some(&self.family.base)
    }

    /// Drops a user value (a message, the actor's state) at teardown, containing a panic in its
    /// `Drop`: the teardown goes on, so the actor still terminates and every other message is
    /// still counted.
    pub(crate) fn drop_contained<T>(&self, value: T) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value))).is_err() {
            tracing::error!(
                actor = %self.display_path(),
                what = std::any::type_name::<T>(),
                "a drop panicked during the actor's teardown"
            );
        }
    }

    /// Counts a dead letter of `message_type` (the cell's message type: see
    /// [`Cell::dead_letter`], which supplies it, so the core does not store it).
    pub(crate) fn dead_letter(&self, reason: DeadLetterReason, message_type: &'static str) {
        self.system().dead_letters.record_with(
            self.display_path(),
            || self.path(),
            message_type,
            reason,
        );
    }

    /// Adds a watcher, or notifies it at once if the actor already ended.
    pub(crate) fn add_watcher(&self, watcher: Watcher) {
        let mut life = self.life();
        match self.ended_locked(&life) {
            Some(reason) => {
                drop(life);
                watcher.notify(self.terminated(reason));
            }
            None => life.more().wait(Waiting::Watcher(watcher)),
        }
    }

    pub(crate) fn remove_watcher(&self, id: ActorId) {
        if let Some(more) = self.life().more_mut_if_any() {
            more.waiting
                .retain(|w| !matches!(w, Waiting::Watcher(w) if w.id == id));
        }
    }

    /// How the actor ended (`Ok`) if it has, else a future that resolves when it does. Waiting
    /// on ended actors (a shutdown's second half) allocates nothing; on a live one, no channel
    /// (the waiting task's waker is kept in the actor's life; the spawn workload's stops, each
    /// waited on, went from 1.90M to 1.97M-1.99M a second, "Session 31").
    pub(crate) fn wait_for_end(&self) -> Result<TerminationReason, EndWait<'_>> {
        let life = self.life();
        match self.ended_locked(&life) {
            Some(reason) => Ok(reason),
            None => Err(EndWait {
                core: self,
                id: None,
            }),
        }
    }

    pub(crate) fn ended(&self) -> Option<TerminationReason> {
        let life = self.life();
        self.ended_locked(&life)
    }

    /// How the actor ended, if it did; `life` is the held lock.
    fn ended_locked(&self, life: &LifeGuard<'_>) -> Option<TerminationReason> {
        match life.end() {
            ALIVE => None,
            STOPPED => Some(TerminationReason::Stopped),
            KILLED => Some(TerminationReason::Killed),
            _ => life
                .more_if_any()
                .and_then(|m| m.reason.as_deref().cloned()),
        }
    }

    fn terminated(&self, reason: TerminationReason) -> Terminated {
        Terminated {
            id: self.id,
            path: self.path(),
            reason,
        }
    }

    /// Tells the parent (the user guardian for a top-level actor) `msg`; `false` if it could not
    /// be delivered (the parent has ended).
    pub(crate) fn tell_parent(&self, msg: SystemMsg) -> bool {
        match &self.family.parent {
            Some(parent) => parent.upgrade().is_some_and(|target| target.send_sys(msg)),
            None => {
                self.system()
                    .guardian_receive(msg, self.guardian_slot.load(Ordering::Relaxed));
                true
            }
        }
    }

    /// Records the end and tells everyone waiting for it. Idempotent.
    ///
    /// Lets go of the kill switch too (the loop is being dropped: there is nothing left to
    /// abort), so that an ended actor whose refs are still held does not keep its tokio task's
    /// or its group member's memory.
    pub(crate) fn terminate(&self, reason: TerminationReason) {
        let (mut waiting, abort) = {
            let mut life = self.life();
            if life.end() != ALIVE {
                return;
            }
            // Bookkeeping before the end is recorded: whoever learns of the end (a waiter, a
            // watcher, or `ended` finding it recorded, on any thread) may at once spawn an actor
            // with the same name (a supervisor restarting a child) or count the live actors.
            // Under the lock, as every reader of `end` takes it. (Taken after it: the registry's
            // lock and the system's kill log, whose holders never take an actor's lock.)
            self.system().actor_ended(self, &reason);
            let end = match &reason {
                TerminationReason::Stopped => STOPPED,
                TerminationReason::Killed => KILLED,
                other => {
                    life.more().reason = Some(Box::new(other.clone()));
                    OTHER
                }
            };
            life.set_end(end);
            let waiting = life
                .more_mut_if_any()
                .map(|m| std::mem::take(&mut m.waiting))
                .unwrap_or_default();
            (waiting, life.take_switch())
        };
        // Outside the lock: the last reference to a member gives its memory back to its group.
        drop(abort);
        match &reason {
            TerminationReason::Stopped => {
                tracing::debug!(actor = %self.display_path(), "actor stopped")
            }
            other => {
                tracing::info!(actor = %self.display_path(), reason = %other, "actor terminated")
            }
        }
        // Watchers before waiters: whoever waited for the end sees the watchers told.
        waiting.retain(|w| match w {
            Waiting::Watcher(w) => {
                w.notify(self.terminated(reason.clone()));
                false
            }
            Waiting::Waiter(..) => true,
        });
        for w in waiting {
            if let Waiting::Waiter(_, waker) = w {
                waker.wake();
            }
        }
    }

    /// Whether the actor is a member of an [`crate::ActorGroup`] (its kill switch is its place in
    /// the group; set from the cell's making, let go of as it ends).
    pub(crate) fn is_group_member(&self) -> bool {
        self.life().switch_kind() == SWITCH_GROUP
    }

    pub(crate) fn set_abort(&self, handle: Abort) {
        let mut life = self.life();
        if life.end() != ALIVE {
            // The actor ended before its spawn got here (a start that failed at once): nothing
            // to abort, and keeping the handle would keep the task's or member's memory.
            drop(life);
            drop(handle);
            return;
        }
        let killed = self.killed.load(Ordering::SeqCst);
        if killed {
            handle.abort();
        }
        let old = life.put_switch(handle);
        drop(life);
        drop(old);
    }

    /// Aborts the actor's task: its state is dropped at its next await point without running the
    /// stopped hook; teardown (children, watchers, dead letters) still happens.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.life().abort();
    }
}

/// Writes an actor's path as `CellCore::path` would build it.
struct PathDisplay<'a>(&'a CellCore);

impl std::fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.0;
        if core.registered {
            write!(f, "{}", core.family.base)
        } else {
            write!(f, "{}/${}", core.family.base, core.id.0)
        }
    }
}

/// One actor's shared state, typed by its message.
///
/// Its size decides how glibc packs it with the actor's 128-byte-aligned 256-byte tokio task
/// (`alloc_model -- 24 <cell> 256`, `benches/src/bin/alloc_model.rs`): cell allocations of 104
/// bytes or less cost 470 B per idle actor (the cell fits the gap glibc leaves before each
/// aligned task), 120-136 bytes and 192-200 bytes 536 B, 144-184 bytes 613-664 B. The cell of an
/// actor with `u64` messages has 88 bytes of fields, a 104-byte allocation with its `Arc` counts
/// (`benches/HISTORY.md`, "Session 30" and "Session 31", lists the steps from 184). Measured,
/// `harness --only spawn`: 483 B per idle actor, against 555 B at 112 bytes of fields (kept then
/// in a 208-byte chunk by a fill).
pub(crate) struct Cell<M> {
    pub(crate) core: CellCore,
    pub(crate) mailbox: Mailbox<M, SystemMsg>,
}

impl<M: Send + 'static> Cell<M> {
    /// `family`: the parent and the base of the path (the actor's own path for a named,
    /// `registered`, actor); `abort`: the kill switch when it exists before the cell (a group
    /// member's, see `ActorGroup::reserve`), else `None` and handed over later with
    /// [`CellCore::set_abort`].
    pub(crate) fn new(
        id: ActorId,
        family: Arc<Family>,
        mailbox: MailboxConfig<M>,
        registered: bool,
        abort: Option<Abort>,
    ) -> Self {
        let (switch, switch_kind) = KillSwitch::new(abort);
        Self {
            core: CellCore {
                id,
                family,
                registered,
                life_lock: RawMutex::INIT,
                life: LifeCell(UnsafeCell::new(Life {
                    switch: ManuallyDrop::new(switch),
                })),
                progress: AtomicU64::new(0),
                killed: AtomicBool::new(false),
                end: AtomicU8::new(ALIVE | switch_kind),
                guardian_slot: AtomicU32::new(u32::MAX),
            },
            mailbox: Mailbox::new(mailbox),
        }
    }

    /// Counts a dead letter of this cell's message type.
    pub(crate) fn dead_letter(&self, reason: DeadLetterReason) {
        self.core.dead_letter(reason, std::any::type_name::<M>());
    }

    /// Fire-and-forget: anything that cannot be queued is a dead letter.
    #[inline]
    pub(crate) fn tell(&self, msg: M) {
        // Every message is bound and dropped in its own arm (after it is counted, as before): with
        // `_` patterns the whole result outlived the match and was dropped through a call to its
        // drop glue on every send, 12 instructions even for `Queued` ("Session 27").
        match self.mailbox.push_user(msg, false) {
            Ok(Accepted::Queued) => {}
            Ok(Accepted::Shed(m)) => {
                self.dead_letter(DeadLetterReason::Shed);
                drop(m);
            }
            Ok(Accepted::Closed) => self.drain_dead(),
            Err(Refused::Full(m)) => {
                self.dead_letter(DeadLetterReason::MailboxFull);
                drop(m);
            }
            Err(Refused::Closed(m)) => {
                self.dead_letter(DeadLetterReason::Stopped);
                drop(m);
            }
        }
    }

    /// Queues `msg` or hands it back (`force_fail`: refuse on a full bounded lane whatever its
    /// policy).
    #[inline]
    pub(crate) fn try_tell(&self, msg: M, force_fail: bool) -> Result<(), Refused<M>> {
        // Bound and dropped in its arm, as in `tell`.
        match self.mailbox.push_user(msg, force_fail)? {
            Accepted::Queued => {}
            Accepted::Shed(m) => {
                self.dead_letter(DeadLetterReason::Shed);
                drop(m);
            }
            Accepted::Closed => self.drain_dead(),
        }
        Ok(())
    }

    /// Drains a closed mailbox, counting every message as a dead letter.
    pub(crate) fn drain_dead(&self) {
        self.mailbox.drain_user(|msg| {
            self.core.drop_contained(msg);
            self.dead_letter(DeadLetterReason::Stopped);
        });
    }
}

impl<M: Send + 'static> SysTarget for Cell<M> {
    fn send_sys(&self, msg: SystemMsg) -> bool {
        match msg {
            // A flag, not a queued message: stopping allocates nothing. The loop takes it once
            // the queued system messages are handled.
            SystemMsg::Stop => self.mailbox.request_stop(),
            msg => self.mailbox.push_sys(msg).is_ok(),
        }
    }

    fn core(&self) -> &CellCore {
        &self.core
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use super::*;

    /// An anonymous actor's path is built from its parent's, the same way for `path` and for
    /// logs; a named actor's is stored.
    #[tokio::test]
    async fn paths_are_built_the_same_for_refs_and_logs() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let lobby = ActorPath::user_root().child("lobby");
        // The family of the lobby's anonymous children (the lobby is a stand-in: no cell).
        let lobby_cell: Weak<dyn SysTarget> = Weak::<Cell<u64>>::new();
        let family = Family::children_of(system.shared().clone(), lobby_cell, lobby.clone());
        let cell = |registered: bool, family: Arc<Family>| {
            Cell::<u64>::new(
                ActorId(42),
                family,
                MailboxConfig::default(),
                registered,
                None,
            )
        };
        let anonymous = cell(false, family.clone());
        assert_eq!(anonymous.core.path().as_str(), "/user/lobby/$42");
        assert_eq!(anonymous.core.display_path().to_string(), "/user/lobby/$42");
        assert_eq!(anonymous.core.registered_path(), None);
        let named = cell(true, family.named(family.child_path("room-7")));
        assert_eq!(named.core.path().as_str(), "/user/lobby/room-7");
        assert_eq!(named.core.display_path().to_string(), "/user/lobby/room-7");
        assert_eq!(
            named.core.registered_path().map(ActorPath::as_str),
            Some("/user/lobby/room-7")
        );
    }

    /// An ended actor's cell lets go of its kill switch (the task's `JoinHandle` here), so a
    /// ref kept to it does not keep the task's memory; and a kill switch handed over after the
    /// end is not kept either.
    #[tokio::test]
    async fn an_ended_actor_lets_go_of_its_kill_switch() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let actor = system.spawn(crate::Props::new(|| Idle)).expect("spawn");
        let cell = actor.cell().expect("a local ref").clone();
        assert_ne!(
            cell.core.life().switch_kind(),
            SWITCH_NONE,
            "set at the spawn"
        );
        actor.stop();
        actor.wait_for_stop().await;
        assert!(
            cell.core.life().switch_kind() == SWITCH_NONE,
            "let go of at the end, while the ref is still held"
        );
        let late = tokio::spawn(async {});
        cell.core.set_abort(Abort::Spawned(late));
        assert_eq!(
            cell.core.life().switch_kind(),
            SWITCH_NONE,
            "not kept after the end"
        );
        // Killing an ended actor finds nothing to abort.
        actor.kill();
    }

    /// An actor that never finishes handling a message.
    struct Stuck;

    impl crate::Actor for Stuck {
        type Msg = ();
        async fn handle(&mut self, _: (), _: &mut crate::Context<Self>) -> crate::ActorResult {
            std::future::pending().await
        }
    }

    /// Once the life's box exists (a waiter here), the kill switch lives in it: a kill still
    /// aborts the task, the waiter is told, and the end lets go of the switch.
    #[tokio::test(start_paused = true)]
    async fn a_waited_on_actor_is_killed_through_the_switch_in_its_box() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let actor = system.spawn(crate::Props::new(|| Stuck)).expect("spawn");
        let cell = actor.cell().expect("a local ref").clone();
        let Err(mut ended) = cell.core.wait_for_end() else {
            panic!("the actor has not ended");
        };
        assert!(
            poll_once(&mut ended).await.is_pending(),
            "registered at the first poll"
        );
        {
            let life = cell.core.life();
            assert!(life.more_if_any().is_some(), "the waiter is in the box");
            assert_eq!(life.switch_kind(), SWITCH_SPAWNED, "the switch moved along");
        }
        actor.tell(());
        tokio::task::yield_now().await;
        actor.kill();
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), ended)
            .await
            .expect("the kill aborts the stuck task, and the waiter is told");
        assert!(matches!(reason, TerminationReason::Killed), "{reason}");
        assert_eq!(cell.core.life().switch_kind(), SWITCH_NONE, "let go of");
        assert!(cell.core.life().more_if_any().is_some(), "the box stays");
        system.shutdown(std::time::Duration::from_secs(5)).await;
    }

    /// Polls `fut` once.
    async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx)))
            .await
    }

    /// A wait keeps its task's waker once however often it is polled, takes it back when
    /// dropped, and every wait still pending is told of the end.
    #[tokio::test(start_paused = true)]
    async fn waits_register_once_and_leave_when_dropped() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let actor = system.spawn(crate::Props::new(|| Idle)).expect("spawn");
        let cell = actor.cell().expect("a local ref").clone();
        let waiters = || {
            cell.core.life().more_if_any().map_or(0, |m| {
                m.waiting
                    .iter()
                    .filter(|w| matches!(w, Waiting::Waiter(..)))
                    .count()
            })
        };
        let Err(mut first) = cell.core.wait_for_end() else {
            panic!("the actor has not ended");
        };
        assert_eq!(waiters(), 0, "nothing kept before the first poll");
        assert!(poll_once(&mut first).await.is_pending());
        assert!(poll_once(&mut first).await.is_pending());
        assert_eq!(waiters(), 1, "kept once");
        let Err(mut second) = cell.core.wait_for_end() else {
            panic!("the actor has not ended");
        };
        assert!(poll_once(&mut second).await.is_pending());
        assert_eq!(waiters(), 2);
        drop(second);
        assert_eq!(waiters(), 1, "a dropped wait takes its waker back");
        let other = tokio::spawn({
            let actor = actor.clone();
            async move { actor.wait_for_stop().await }
        });
        while waiters() < 2 {
            tokio::task::yield_now().await;
        }
        actor.stop();
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), first)
            .await
            .expect("told");
        assert!(matches!(reason, TerminationReason::Stopped), "{reason}");
        let reason = tokio::time::timeout(std::time::Duration::from_secs(5), other)
            .await
            .expect("told")
            .expect("the other task");
        assert!(matches!(reason, TerminationReason::Stopped), "{reason}");
        assert_eq!(waiters(), 0, "the end took every waker");
        system.shutdown(std::time::Duration::from_secs(5)).await;
    }

    /// The anonymous top-level actors' family holds the system, which holds it only weakly:
    /// once the system's handle, its actors and their refs are gone, both are freed (a strong
    /// hold both ways would be a cycle that kept them forever).
    #[tokio::test(start_paused = true)]
    async fn a_system_is_freed_once_its_handle_and_actors_are_gone() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let shared = Arc::downgrade(system.shared());
        let actor = system.spawn(crate::Props::new(|| Idle)).expect("spawn");
        let family = Arc::downgrade(&actor.cell().expect("a local ref").core.family);
        assert!(
            Arc::ptr_eq(
                &family.upgrade().expect("held"),
                &system.shared().top_family()
            ),
            "the system hands out the family its actor holds"
        );
        system.shutdown(std::time::Duration::from_secs(5)).await;
        drop((actor, system));
        for _ in 0..100 {
            if shared.strong_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(shared.strong_count(), 0, "the system is freed");
        assert_eq!(family.strong_count(), 0, "so is the family");
    }

    /// A parent that spawns a child on request and hands out the child's ref.
    struct Spawner {
        children: tokio::sync::mpsc::UnboundedSender<crate::ActorRef<u64>>,
    }

    struct Idle;

    impl crate::Actor for Idle {
        type Msg = u64;
        async fn handle(&mut self, _: u64, _: &mut crate::Context<Self>) -> crate::ActorResult {
            Ok(())
        }
    }

    impl crate::Actor for Spawner {
        type Msg = ();
        async fn handle(&mut self, _: (), ctx: &mut crate::Context<Self>) -> crate::ActorResult {
            let child = ctx.spawn(crate::Props::new(|| Idle))?;
            let _ = self.children.send(child);
            Ok(())
        }
    }

    /// A child holds its parent's cell only weakly, through the family its parent's anonymous
    /// children share: refs kept to ended children do not keep their parents' cells, and a
    /// second child costs no second family.
    #[tokio::test]
    async fn children_hold_their_parent_weakly_through_one_family() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let parent = system
            .spawn(crate::Props::new(move || Spawner {
                children: tx.clone(),
            }))
            .expect("spawn");
        let parent_cell = parent.cell().expect("a local ref").clone();
        let (strong, weak) = (
            Arc::strong_count(&parent_cell),
            Arc::weak_count(&parent_cell),
        );
        parent.tell(());
        let first = rx.recv().await.expect("the first child's ref");
        parent.tell(());
        let second = rx.recv().await.expect("the second child's ref");
        assert_eq!(
            Arc::strong_count(&parent_cell),
            strong,
            "a child holds its parent strongly"
        );
        assert_eq!(
            Arc::weak_count(&parent_cell),
            weak + 1,
            "the parent's anonymous children share one family"
        );
        for child in [&first, &second] {
            child.stop();
            child.wait_for_stop().await;
        }
        assert_eq!(Arc::strong_count(&parent_cell), strong);
        drop((first, second));
        system.shutdown(std::time::Duration::from_secs(5)).await;
    }
}
