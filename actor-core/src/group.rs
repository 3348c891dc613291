//! Actor groups: several actors run inside one tokio task, with the group's own ready queue.
//!
//! By default every actor is a tokio task of its own, and every message that wakes an idle actor
//! goes through tokio's scheduler: the run queue, and often a wake-up of the other worker thread.
//! For actors that mostly talk to each other (a room and its player sessions, a match and its
//! players) that is most of the cost of a message. A group polls its members' loops itself, the
//! way `futures::stream::FuturesUnordered` polls its futures: a member woken by another member
//! is queued in the group and polled in the same turn of the group's task, without reaching
//! tokio's run queue or another thread.
//!
//! # How it works
//!
//! Each member is one allocation, a header (its `queued` flag among others) followed by its loop,
//! counted by hand like a tokio task so that every pointer to it is one word (see [`MemberRef`]).
//! The allocation is a slot of the group's slab (`slab.rs`), reused by later members.
//! Its waker queues it on the group's ready queue (once, whatever the number of wakes) and, when
//! it is woken from outside the group's own poll, puts it on the group's remote queue, under a
//! short lock, beside the members that have just been spawned into the group. Only whoever finds
//! both of those queues empty wakes the group's task (until the task takes them, a wake is on its
//! way), so a burst of spawns or of wakes from other threads costs one wake of the task. A wake from a member being polled by
//! the group (the common case: one member telling another) goes on a queue only the polling
//! thread touches, with no lock and no wake of the group's task. The group's task polls ready
//! members until none is left, or until it has polled [`POLL_BUDGET`] of them or finds tokio's
//! cooperative budget spent; then it yields to tokio (waking itself), so a busy group never
//! starves the worker's other tasks.
//!
//! The price: a group's members run one at a time, on whichever worker runs the group's task, so
//! a long handler holds up the whole group. Put actors in a group when they talk to each other
//! more than to the rest of the system, and keep CPU-heavy ones out of it.
//!
//! Nothing else changes for a member: its mailbox, supervision, timers, `ask`, watching, kill and
//! shutdown behave as for any actor. The group's task polls each member under `catch_unwind`, so
//! a panic that escapes an actor's loop (one in the drop of a value its factory captured, say)
//! ends that member only.
//!
//! The task ends when every [`ActorGroup`] handle is dropped and its last member has ended.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, RawWaker, RawWakerVTable, Waker};

use crate::slab::Slab;
use crate::sync::{AtomicBool, AtomicUsize, AtomicWaker, Mutex, Ordering};

/// Members a group polls per turn of its task before it yields to tokio.
///
/// Each yield costs far more than polling a member: tokio queues a task that wakes itself behind
/// its worker's other tasks and notifies a parked worker to share them; that worker often takes
/// the group's task to its own (cold) CPU, and a worker that finds work after searching for it
/// unparks another (an eventfd write, `perf record -e syscalls:sys_enter_write --call-graph
/// dwarf`). At 128 a two-member ping-pong group cost 15,000 eventfd writes a million round trips,
/// one a yield; 1,024 gave 18% more round trips, 29% more ring hops and 18% more `big` messages
/// (`benches/HISTORY.md`, "Session 17"). A turn of 1,024 polls of a few tens of nanoseconds each
/// holds the worker for some tens of microseconds; members that use tokio's channels, sockets or
/// timers end the turn sooner, when tokio's cooperative budget is spent. (tokio's deferred
/// `yield_now` measured no better: as many eventfd writes.)
pub(crate) const POLL_BUDGET: usize = 1024;

#[cfg(not(actor_loom))]
thread_local! {
    /// The group whose task this thread is polling, if any: wakes of its members go on its local
    /// queue.
    static POLLING: Cell<*const GroupShared> = const { Cell::new(std::ptr::null()) };
}

#[cfg(actor_loom)]
loom::thread_local! {
    static POLLING: Cell<*const GroupShared> = Cell::new(std::ptr::null());
}

/// A handle to an actor group: spawn actors into it with [`crate::Props::group`].
///
/// Cheap to clone; every clone names the same group. Create one with
/// [`crate::ActorSystem::group`].
///
/// Memory: a group allocates its members' loops in chunks and reuses the place of an ended
/// member for the next one. A member's place is free once its actor has ended and the group's
/// task has let go of it: the task lets go of ended members in batches (when more than 32 have
/// ended, and more than half of its list), not one by one; refs to an ended actor do not hold
/// its place. The group gives the chunks back when every place is free, or when the group
/// ends; until then it keeps the memory of its largest membership. Spawning and ending players
/// in a long-lived room reuses the same memory; a group that once held 100,000 actors and now
/// holds ten keeps about 18 MB (at about 184 bytes a loop) until those ten end too.
///
/// ```
/// use actor_core::prelude::*;
///
/// struct Session;
/// impl Actor for Session {
///     type Msg = u32;
///     async fn handle(&mut self, _: u32, _: &mut Context<Self>) -> ActorResult { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = ActorSystem::new(SystemConfig::default()).unwrap();
/// // One group per room: the room's sessions wake each other without tokio's scheduler.
/// let room = system.group();
/// let alice = system.spawn(Props::new(|| Session).group(&room)).unwrap();
/// let bob = system.spawn(Props::new(|| Session).group(&room)).unwrap();
/// alice.tell(1);
/// bob.tell(2);
/// assert_eq!(room.len(), 2);
/// # }
/// ```
#[derive(Clone)]
pub struct ActorGroup {
    handle: Arc<GroupHandle>,
}

/// What the clones of one [`ActorGroup`] share (a clone costs one count, as props are cloned
/// with their group on every spawn). It is one of the group's `handles`: when the last one
/// goes, the group's task ends with its last member.
struct GroupHandle {
    shared: Arc<GroupShared>,
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The task may be waiting for this to end.
            self.shared.waker.wake();
        }
    }
}

/// Handles name the same group, whichever way they were made.
impl PartialEq for ActorGroup {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle.shared, &other.handle.shared)
    }
}

impl Eq for ActorGroup {}

impl ActorGroup {
    /// Starts a group's task on `handle`.
    pub(crate) fn start(handle: &tokio::runtime::Handle) -> Self {
        let shared = Arc::new(GroupShared::new());
        handle.spawn(GroupTask {
            lists: TaskLists::default(),
            ended: 0,
            shared: shared.clone(),
        });
        tracing::debug!("actor group started");
        Self {
            handle: Arc::new(GroupHandle { shared }),
        }
    }

    /// A new handle to the group whose task is polling on this thread, if any: the group of the
    /// actor whose code runs here, when that actor is a member (see [`crate::Context::group`]).
    pub(crate) fn polling() -> Option<Self> {
        let ptr = POLLING.with(|p| p.get());
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `POLLING` names a group only while its task is being polled on this thread
        // (`PollingGuard`), and that poll holds an `Arc<GroupShared>` whose data `ptr` is
        // (`Arc::as_ptr`): the count is above zero, and the new one is given back by the handle.
        let shared = unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        };
        // The task cannot end while one of its polls runs, so the group is still taking members
        // even if every other handle is gone: this handle keeps it going again.
        shared.handles.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            handle: Arc::new(GroupHandle { shared }),
        })
    }

    /// Actors in the group: an actor counts from its spawn until just after its teardown (so
    /// the count can lag [`crate::ActorRef::wait_for_stop`] by a moment).
    pub fn len(&self) -> usize {
        self.handle.shared.members.load(Ordering::Acquire)
    }

    /// Whether every actor spawned into the group has ended (or none was).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a slot for a member whose loop will be an `F`, before the loop exists, with a
    /// second reference to the member: the actor's kill switch. The actor's cell is made holding
    /// it, so nothing is handed to the cell under its lock afterwards. [`Reserved::join`] then
    /// writes the loop and hands the member to the group's task.
    pub(crate) fn reserve<F>(&self) -> (Reserved<'_, F>, MemberRef)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (member, kill_switch) = MemberRef::reserve::<F>(&self.handle.shared);
        (
            Reserved {
                group: self,
                member,
                _loop: std::marker::PhantomData,
            },
            kill_switch,
        )
    }
}

/// A member's slot taken before its loop exists (see [`ActorGroup::reserve`]).
///
/// Until [`Reserved::join`] writes the loop, the member is not live, not counted in the group,
/// and marked queued: a kill in between (through the kill switch) only sets its `aborted` flag,
/// and no wake queues it; the group's task acts on the flag at the member's first turn, dropping
/// the loop unpolled, as it does for a member aborted later. Dropped without joining (the spawn
/// failed after the slot was taken), the slot goes back with the member's last reference.
pub(crate) struct Reserved<'g, F> {
    group: &'g ActorGroup,
    member: MemberRef,
    _loop: std::marker::PhantomData<fn(F)>,
}

impl<F: Future<Output = ()> + Send + 'static> Reserved<'_, F> {
    /// Writes the loop into the slot and hands the member to the group's task. If that task has
    /// ended, the loop is dropped here (which runs the actor's teardown) and the spawn fails.
    pub(crate) fn join(self, fut: F) -> Result<(), crate::SpawnError> {
        let member = self.member;
        // SAFETY: reserved for an `F` (`ActorGroup::reserve`), and not written yet: `join`
        // takes the reservation by value.
        unsafe { member.fill(fut) };
        match self.group.handle.shared.join(member) {
            Ok(()) => Ok(()),
            Err(member) => {
                // Nobody else polls the member: drop its loop here, which runs the actor's
                // teardown.
                member.end();
                Err(crate::SpawnError::GroupEnded)
            }
        }
    }
}

impl std::fmt::Debug for ActorGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorGroup")
            .field("members", &self.len())
            .finish()
    }
}

/// What the group's task and its members' wakers share.
struct GroupShared {
    /// Members added and not yet ended.
    members: AtomicUsize,
    /// [`GroupHandle`]s alive (not clones of an [`ActorGroup`]: those share one): while there
    /// is one, members may still join.
    handles: AtomicUsize,
    /// Members woken while this group's task is being polled, by code that task runs. Touched
    /// only by the thread whose `POLLING` names this group, and never across a member's poll:
    /// the group's polls are serialized (it is one tokio task), so there is one such thread at
    /// a time, and every access is a single push or pop.
    ///
    /// The entries are borrowed from `TaskLists::all`, which holds every member whose loop has
    /// not ended: only such members are queued here, and `all` lets go of ended members only
    /// while this queue is empty.
    local: UnsafeCell<VecDeque<NonNull<Header>>>,
    /// Members woken from anywhere else.
    remote: Mutex<Remote>,
    /// The group's task.
    waker: AtomicWaker,
    /// The members' memory.
    slab: Slab,
}

// SAFETY: `local` is only accessed as its documentation says (by one thread at a time), and its
// pointers are to `Send + Sync` members; every other field is `Send + Sync`.
unsafe impl Send for GroupShared {}
// SAFETY: as above.
unsafe impl Sync for GroupShared {}

/// The group's queues for other threads. Whoever makes them non-empty wakes the group's task:
/// until the task takes them, a wake is on its way.
struct Remote {
    /// Members woken from other threads.
    ready: Vec<MemberRef>,
    /// Members added and not taken in yet (each is queued: its first poll starts the actor).
    joining: Vec<MemberRef>,
    /// The group's task has ended: nothing will poll the queues again.
    closed: bool,
}

impl GroupShared {
    fn new() -> Self {
        Self {
            members: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            local: UnsafeCell::new(VecDeque::new()),
            remote: Mutex::new(Remote {
                ready: Vec::new(),
                joining: Vec::new(),
                closed: false,
            }),
            waker: AtomicWaker::new(),
            slab: Slab::new(),
        }
    }

    /// Queues a new member for the group's task to take in; gives it back if the task has
    /// ended.
    fn join(&self, member: MemberRef) -> Result<(), MemberRef> {
        let first = {
            let mut remote = self.remote.lock();
            if remote.closed {
                return Err(member);
            }
            remote.joining.push(member);
            remote.joining.len() == 1 && remote.ready.is_empty()
        };
        if first {
            self.waker.wake();
        }
        Ok(())
    }

    /// Polls ready members (local ones first, then those woken from elsewhere) until none is
    /// left (true), or until `budget` polls are done or tokio's cooperative budget of the
    /// group's task is found spent (false: more may be ready; once that budget is spent, tokio's
    /// channels and timers only return `Pending` to the members). Counts the members that ended
    /// in `ended`. Only the group's task calls this, under its `PollingGuard`.
    fn run_ready(&self, mut budget: usize, ended: &mut usize, task: &mut TaskLists) -> bool {
        // Actors with a task of their own that members wake run between two members (the
        // hand-off), not after the turn through tokio.
        let mut turn = crate::handoff::GroupTurn::enter();
        loop {
            let Some(member) = self.pop_local() else {
                // Both queues at once: whoever finds them both empty wakes the task (see
                // `Remote`). They are swapped with the task's emptied ones, so that their
                // capacity is kept: a burst of spawns or wakes does not grow a new `Vec` (under
                // the lock) each time the task has taken the last one.
                {
                    let mut remote = self.remote.lock();
                    std::mem::swap(&mut remote.ready, &mut task.woken);
                    std::mem::swap(&mut remote.joining, &mut task.joining);
                }
                if task.woken.is_empty() && task.joining.is_empty() {
                    self.trim_local();
                    return true;
                }
                for m in task.joining.drain(..) {
                    self.push_local(m.0);
                    task.all.push(m);
                }
                // Ended members are dropped here rather than queued (`local` holds live ones).
                for m in task.woken.iter().filter(|m| m.is_live()) {
                    self.push_local(m.0);
                }
                task.woken.clear();
                task.trim_spares();
                continue;
            };
            // `local` holds live members of `TaskLists::all` (see there), which keeps them.
            if poll_loop(member) {
                *ended += 1;
            }
            turn.run_woken();
            budget -= 1;
            // tokio's budget is read every 16 polls (a thread-local access each time).
            if budget == 0
                || (budget.is_multiple_of(16) && !tokio::task::coop::has_budget_remaining())
            {
                return false;
            }
        }
    }

    /// Whether this thread is polling this group's task right now.
    fn polled_here(&self) -> bool {
        POLLING.with(|p| std::ptr::eq(p.get(), self))
    }

    /// The next member on the local queue (only while `polled_here`).
    fn pop_local(&self) -> Option<NonNull<Header>> {
        // SAFETY: called by the group's task during its poll; see `local`.
        unsafe { (*self.local.get()).pop_front() }
    }

    /// Lets go of the local queue's capacity above [`TaskLists::SPARE_CAPACITY`] (only while
    /// `polled_here` and the queue is empty): every member of a burst of spawns passes through
    /// it, and a group should not keep a peak's worth of queue for good.
    fn trim_local(&self) {
        // SAFETY: called by the group's task during its poll; see `local`.
        let local = unsafe { &mut *self.local.get() };
        if local.capacity() > TaskLists::SPARE_CAPACITY {
            *local = VecDeque::new();
        }
    }

    /// Queues a live member of this group on the local queue (only while `polled_here`).
    fn push_local(&self, member: NonNull<Header>) {
        // SAFETY: called by the group's task during its poll (or by a waker it runs); see
        // `local`.
        unsafe { (*self.local.get()).push_back(member) };
    }
}

/// One actor's loop inside a group: a header (its flags, its group and how to poll and drop its
/// loop) followed in the same allocation by the loop itself.
///
/// One allocation per member, where an `Arc` of the flags and a `Box` of the loop would be two:
/// a member of the spawn benchmark's group is a 184-byte slab slot (a 192-byte chunk when it came
/// from glibc) instead of a 64-byte and a 160-byte chunk. A hand-counted reference rather than
/// `Arc<dyn ...>`, so that every pointer to a member is thin (the group's list of members and the
/// cell's kill switch are one word each); and one count rather than an `Arc`'s two (strong and
/// weak) behind a thin pointer, which spares the 8 bytes of a weak count.
#[repr(C)]
struct Header {
    /// Owned references: the group's `all`, its remote queue, the wakers, the kill switch.
    refs: AtomicUsize,
    /// Set while the member is on a ready queue, so that any number of wakes queue it once.
    queued: AtomicBool,
    aborted: AtomicBool,
    /// The loop has not been dropped. Written only by the group's task; read by wakes on its
    /// thread (kept apart from the loop, so that a wake during the loop's poll never reads what
    /// the poll borrows).
    live: AtomicBool,
    vtable: &'static Vtable,
    group: Arc<GroupShared>,
}

/// What a member's header knows of its loop's type.
struct Vtable {
    /// Polls the loop (only while it is live).
    poll: unsafe fn(NonNull<Header>, &mut TaskContext<'_>) -> Poll<()>,
    /// Drops the loop in place (once, after `live` was cleared).
    drop_loop: unsafe fn(NonNull<Header>),
    /// Frees the member (once its last reference is gone).
    dealloc: unsafe fn(NonNull<Header>),
}

/// A member's allocation: the header first (`repr(C)`), so a pointer to one is a pointer to the
/// other.
#[repr(C)]
struct Member<F> {
    header: Header,
    /// Touched only by the group's task (its polls are serialized), or by `add` before the member
    /// is shared; dropped in place when the actor ends, while the header may live on.
    fut: UnsafeCell<ManuallyDrop<F>>,
}

impl<F: Future<Output = ()> + Send + 'static> Member<F> {
    const VTABLE: Vtable = Vtable {
        poll: Self::poll,
        drop_loop: Self::drop_loop,
        dealloc: Self::dealloc,
    };

    /// SAFETY: `ptr` is a live member of this type, polled by its group's task only.
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut TaskContext<'_>) -> Poll<()> {
        // SAFETY: as above; the allocation never moves, so the loop stays pinned.
        unsafe {
            let fut = &mut *(*ptr.cast::<Self>().as_ptr()).fut.get();
            Pin::new_unchecked(&mut **fut).poll(cx)
        }
    }

    /// SAFETY: `ptr` is a member of this type whose loop was live, on the group's task.
    unsafe fn drop_loop(ptr: NonNull<Header>) {
        // SAFETY: as above; `live` is cleared first, so neither this nor `Drop` drops it again.
        unsafe { ManuallyDrop::drop(&mut *(*ptr.cast::<Self>().as_ptr()).fut.get()) }
    }

    /// SAFETY: `ptr` came from `MemberRef::reserve` for this type and has no reference left.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        let member = ptr.cast::<Self>().as_ptr();
        // SAFETY: as above: nothing else reads the member any more. The group is taken out
        // first, so that its slab outlives the slot given back to it.
        unsafe {
            let group = std::ptr::read(&(*member).header.group);
            // Only if nothing ended the loop (the group's task ends every live member first), and
            // it was written (a reservation dropped without joining never was).
            if (*member).header.live.load(Ordering::Relaxed) {
                ManuallyDrop::drop(&mut *(*member).fut.get());
            }
            // The header's other fields need no drop.
            group
                .slab
                .free(ptr.cast(), std::alloc::Layout::new::<Self>());
            drop(group);
        }
    }
}

/// An owned reference to a member of a group: the group's list and queues, and an actor's kill
/// switch, hold these.
pub(crate) struct MemberRef(NonNull<Header>);

// SAFETY: the loop is `Send` (checked in `new`) and only the group's task polls or drops it; the
// header's shared fields are atomics and an `Arc`.
unsafe impl Send for MemberRef {}
// SAFETY: as above.
unsafe impl Sync for MemberRef {}

impl MemberRef {
    /// A member of `group` running `fut`, counted in the group and marked queued (the group's
    /// task polls it once it has joined).
    #[cfg(test)]
    fn new<F: Future<Output = ()> + Send + 'static>(group: &Arc<GroupShared>, fut: F) -> Self {
        let (member, other) = Self::reserve::<F>(group);
        drop(other);
        // SAFETY: just reserved for an `F`.
        unsafe { member.fill(fut) };
        member
    }

    /// A member of `group` whose loop, an `F`, is not written yet: not live, not counted in the
    /// group yet, and marked queued, so that no wake queues it before it joins (see
    /// [`Reserved`]). Two references to it, made with its count (a clone would be one more
    /// read-modify-write on every spawn): one joins the group, the other is the kill switch.
    fn reserve<F: Future<Output = ()> + Send + 'static>(group: &Arc<GroupShared>) -> (Self, Self) {
        let slot = group
            .slab
            .alloc(std::alloc::Layout::new::<Member<F>>())
            .cast::<Member<F>>();
        // SAFETY: the slot is fresh, and laid out for a `Member<F>`; only its header is written
        // (the loop is written by `fill`, and read only once `live` says it is there).
        unsafe {
            std::ptr::addr_of_mut!((*slot.as_ptr()).header).write(Header {
                refs: AtomicUsize::new(2),
                queued: AtomicBool::new(true),
                aborted: AtomicBool::new(false),
                live: AtomicBool::new(false),
                vtable: &Member::<F>::VTABLE,
                group: group.clone(),
            })
        };
        (Self(slot.cast()), Self(slot.cast()))
    }

    /// Writes the loop of a reserved member, marks it live and counts it in its group.
    ///
    /// # Safety
    /// The member was reserved for an `F` ([`MemberRef::reserve`]), its loop was not written
    /// yet, and it has not joined its group (nothing else reads the loop or `live` yet).
    unsafe fn fill<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        let member = self.0.cast::<Member<F>>().as_ptr();
        // SAFETY: as above: the slot is laid out for a `Member<F>` and its loop is unwritten.
        unsafe {
            std::ptr::addr_of_mut!((*member).fut).write(UnsafeCell::new(ManuallyDrop::new(fut)))
        };
        let header = self.header();
        header.live.store(true, Ordering::Relaxed);
        // Counted from here until `end` (which only ends a live member).
        header.group.members.fetch_add(1, Ordering::AcqRel);
    }

    /// A new reference to the member at `ptr`, which must be live (held by someone).
    fn from_ptr(ptr: NonNull<Header>) -> Self {
        // SAFETY: the caller holds a reference, so the header is allocated.
        let refs = unsafe { ptr.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        if refs > isize::MAX as usize {
            // As `Arc` does: a count this high means leaked references.
            std::process::abort();
        }
        Self(ptr)
    }

    fn header(&self) -> &Header {
        // SAFETY: this reference keeps the header allocated.
        unsafe { self.0.as_ref() }
    }

    /// Makes the group drop the member's loop at its next turn, as aborting a tokio task does.
    pub(crate) fn abort(&self) {
        self.header().aborted.store(true, Ordering::Release);
        wake(self.0);
    }

    /// Whether the loop has not ended.
    fn is_live(&self) -> bool {
        self.header().live.load(Ordering::Relaxed)
    }

    /// Drops the loop (running the actor's teardown); see [`end`].
    fn end(&self) -> bool {
        end(self.0)
    }
}

impl Clone for MemberRef {
    fn clone(&self) -> Self {
        Self::from_ptr(self.0)
    }
}

impl Drop for MemberRef {
    fn drop(&mut self) {
        let header = self.header();
        if header.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            let dealloc = header.vtable.dealloc;
            // SAFETY: that was the last reference.
            unsafe { dealloc(self.0) }
        }
    }
}

/// Drops the member's loop (running the actor's teardown), containing a panic in it; false if
/// it had already ended. Only the group's task calls this (or `add`, before the member is
/// shared); `ptr` must be held by someone.
fn end(ptr: NonNull<Header>) -> bool {
    // SAFETY: held by the caller.
    let header = unsafe { ptr.as_ref() };
    if !header.live.load(Ordering::Relaxed) {
        return false;
    }
    // Cleared first: a wake on this thread while the loop is dropped does not queue it.
    header.live.store(false, Ordering::Relaxed);
    let drop_loop = header.vtable.drop_loop;
    // SAFETY: the loop was live; `live` now says it is not, so nothing drops it again.
    if std::panic::catch_unwind(AssertUnwindSafe(|| unsafe { drop_loop(ptr) })).is_err() {
        tracing::error!("an actor's loop panicked while being dropped in its group");
    }
    header.group.members.fetch_sub(1, Ordering::AcqRel);
    true
}

/// Polls the member's loop once; true when the member ended in this call. Only the group's
/// task calls this; `ptr` must be held by someone (`all`).
fn poll_loop(ptr: NonNull<Header>) -> bool {
    // SAFETY: held by the caller.
    let header = unsafe { ptr.as_ref() };
    // Cleared first, with a read-modify-write: a wake from another thread swaps the same flag,
    // so either that swap comes later and sees it cleared (and queues the member again), or this
    // one reads from it and sees everything the waker did before waking (a plain store would
    // need a `SeqCst` fence on both sides for that).
    header.queued.swap(false, Ordering::AcqRel);
    if header.aborted.load(Ordering::Acquire) {
        return end(ptr);
    }
    if !header.live.load(Ordering::Relaxed) {
        return false;
    }
    // A waker borrowed for the poll: no reference is taken unless someone clones it.
    // SAFETY: the vtable's functions take `ptr` as a member, which it is.
    let waker = ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(ptr.as_ptr().cast(), &WAKER_VTABLE))
    });
    let mut cx = TaskContext::from_waker(&waker);
    let poll = header.vtable.poll;
    // SAFETY: the loop is live, and this is the group's task.
    match std::panic::catch_unwind(AssertUnwindSafe(|| unsafe { poll(ptr, &mut cx) })) {
        Ok(Poll::Pending) => false,
        Ok(Poll::Ready(())) => end(ptr),
        Err(_) => {
            // The loop's own state was dropped while unwinding (its teardown ran then).
            tracing::error!("an actor's loop panicked in its group; the member is removed");
            end(ptr)
        }
    }
}

/// Queues the member at `ptr` (held by the caller) on its group's ready queue, once.
fn wake(ptr: NonNull<Header>) {
    // SAFETY: held by the caller.
    let header = unsafe { ptr.as_ref() };
    let group = &header.group;
    if group.polled_here() {
        // One member waking another inside the group's turn: no read-modify-write. A wake from
        // another thread racing this one may queue the member twice, which costs one spurious
        // poll.
        if header.queued.load(Ordering::Relaxed) || !header.live.load(Ordering::Relaxed) {
            return;
        }
        header.queued.store(true, Ordering::Relaxed);
        group.push_local(ptr);
    } else {
        if header.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let member = MemberRef::from_ptr(ptr);
        let first = {
            let mut remote = group.remote.lock();
            if remote.closed {
                return;
            }
            remote.ready.push(member);
            remote.ready.len() == 1 && remote.joining.is_empty()
        };
        if first {
            group.waker.wake();
        }
    }
}

/// A member's waker: its data pointer is the member's header, and a clone is a reference.
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_waker, wake_waker, wake_waker_by_ref, drop_waker);

unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: a waker's data is a held member.
    let member = MemberRef::from_ptr(unsafe { NonNull::new_unchecked(data.cast_mut().cast()) });
    std::mem::forget(member);
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn wake_waker(data: *const ()) {
    // SAFETY: as in `clone_waker`; this waker owned a reference.
    let member = MemberRef(unsafe { NonNull::new_unchecked(data.cast_mut().cast()) });
    wake(member.0);
}

unsafe fn wake_waker_by_ref(data: *const ()) {
    // SAFETY: as in `clone_waker`.
    wake(unsafe { NonNull::new_unchecked(data.cast_mut().cast()) });
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: as in `clone_waker`; this waker owned a reference.
    drop(MemberRef(unsafe {
        NonNull::new_unchecked(data.cast_mut().cast())
    }));
}

/// The group's tokio task: takes in new members, then polls the ready ones.
struct GroupTask {
    lists: TaskLists,
    /// Members of `lists.all` that have ended.
    ended: usize,
    shared: Arc<GroupShared>,
}

/// The group's task's own lists of members.
#[derive(Default)]
struct TaskLists {
    /// Every member taken in, so that the group's end drops their loops; ended ones are removed
    /// in batches.
    all: Vec<MemberRef>,
    /// Empty between turns: swapped with `Remote::ready`, to keep its capacity.
    woken: Vec<MemberRef>,
    /// Empty between turns: swapped with `Remote::joining`, to keep its capacity.
    joining: Vec<MemberRef>,
}

impl TaskLists {
    /// Capacity the spare lists keep: enough for the bursts of a busy group, without holding
    /// on to a peak's worth (a burst of 100,000 spawns) for good.
    const SPARE_CAPACITY: usize = 1024;

    /// Lets go of a spare list's capacity above `SPARE_CAPACITY` (the lists are empty).
    fn trim_spares(&mut self) {
        for spare in [&mut self.woken, &mut self.joining] {
            if spare.capacity() > Self::SPARE_CAPACITY {
                *spare = Vec::new();
            }
        }
    }
}

/// Names the group being polled on this thread, until dropped.
struct PollingGuard(*const GroupShared);

impl PollingGuard {
    fn enter(group: &GroupShared) -> Self {
        Self(POLLING.with(|p| p.replace(group)))
    }
}

impl Drop for PollingGuard {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(self.0));
    }
}

impl Future for GroupTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        // Borrowed field by field, not through a clone of `shared`: a count taken and given back
        // on every poll would be two read-modify-writes on the line spawners count on.
        let GroupTask {
            lists,
            ended,
            shared,
        } = &mut *self;
        shared.waker.register(cx.waker());
        let _polling = PollingGuard::enter(shared);
        let drained = shared.run_ready(POLL_BUDGET, ended, lists);
        if !drained {
            // More may be ready: come back after tokio's other tasks had a turn.
            cx.waker().wake_by_ref();
        }
        // Only while `local` is empty: it borrows from `all`.
        if drained && *ended > 32 && *ended * 2 > lists.all.len() {
            lists.all.retain(|m| m.is_live());
            *ended = 0;
        }
        // No handle can appear once none is left (a new one is a clone of another, or made by a
        // member during one of this task's polls), nor a member without a handle.
        if shared.handles.load(Ordering::Acquire) == 0
            && shared.members.load(Ordering::Acquire) == 0
        {
            tracing::debug!("actor group ended");
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for GroupTask {
    fn drop(&mut self) {
        // No more polls: wakes from now on are dropped, and the queues let go of the members
        // (each holds the group, so they would keep each other alive).
        let (woken, joining) = {
            let mut remote = self.shared.remote.lock();
            remote.closed = true;
            let woken = std::mem::take(&mut remote.ready);
            (woken, std::mem::take(&mut remote.joining))
        };
        drop(woken);
        // Members added but not taken in yet are ended below, with the others.
        self.lists.all.extend(joining);
        // SAFETY: the group's task is being dropped, so no poll of it runs; its members' wakers
        // no longer see it as polled (the guard is gone), so nothing else touches `local`. Its
        // entries are borrowed: nothing to release.
        unsafe { (*self.shared.local.get()).clear() };
        // Members still running (the runtime is shutting down) are dropped as aborted tasks are.
        for m in self.lists.all.drain(..) {
            m.end();
        }
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    //! A member's hand-counted references: every reference and waker clone is given back, the
    //! member (and with it its hold on the group) is freed with the last one, and its loop is
    //! dropped exactly once, by `end` or by the last reference.
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;

    /// Counts its drops.
    struct Dropped(Arc<StdAtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A loop that keeps a clone of its waker in `slot` and ends at its second poll.
    fn loop_keeping_its_waker(
        slot: Arc<Mutex<Option<Waker>>>,
        drops: Arc<StdAtomicUsize>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let guard = Dropped(drops);
        let mut polls = 0;
        std::future::poll_fn(move |cx| {
            let _keep = &guard;
            polls += 1;
            *slot.lock() = Some(cx.waker().clone());
            if polls == 2 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    #[test]
    fn a_member_is_freed_with_its_last_reference_and_its_loop_dropped_once() {
        let shared = Arc::new(GroupShared::new());
        let drops = Arc::new(StdAtomicUsize::new(0));
        let slot = Arc::new(Mutex::new(None));
        let member = MemberRef::new(&shared, loop_keeping_its_waker(slot.clone(), drops.clone()));
        assert_eq!(Arc::strong_count(&shared), 2, "the member holds its group");
        assert_eq!(shared.members.load(Ordering::SeqCst), 1);

        assert!(!poll_loop(member.0), "the first poll is pending");
        assert_eq!(
            member.header().refs.load(Ordering::SeqCst),
            2,
            "the kept waker"
        );
        // Woken from outside the group's turn: queued on the remote queue, with a reference.
        let waker = slot.lock().take().expect("the loop kept its waker");
        let second = waker.clone();
        waker.wake();
        second.wake_by_ref();
        let woken = std::mem::take(&mut shared.remote.lock().ready);
        assert_eq!(woken.len(), 1, "two wakes queue the member once");
        assert_eq!(member.header().refs.load(Ordering::SeqCst), 3);
        drop(woken);
        drop(second);
        assert_eq!(member.header().refs.load(Ordering::SeqCst), 1);

        assert!(poll_loop(member.0), "the second poll ends the member");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the loop is dropped when it ends"
        );
        assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        assert!(!member.end(), "an ended member ends once");
        // The waker the last poll kept still holds the member.
        let kept = slot.lock().take().expect("kept again");
        drop(member);
        assert_eq!(Arc::strong_count(&shared), 2, "a waker keeps the member");
        drop(kept);
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "the last reference frees the member"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "and does not drop the loop again"
        );
    }

    #[test]
    fn a_freed_members_memory_is_reused_and_given_back_when_the_group_empties() {
        let shared = Arc::new(GroupShared::new());
        let drops = Arc::new(StdAtomicUsize::new(0));
        let member = || {
            MemberRef::new(
                &shared,
                loop_keeping_its_waker(Arc::new(Mutex::new(None)), drops.clone()),
            )
        };
        let (first, second) = (member(), member());
        assert_eq!(shared.slab.chunks(), 1);
        let freed = first.0;
        assert!(first.end());
        drop(first);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let third = member();
        assert_eq!(third.0, freed, "the ended member's slot is reused");
        assert!(second.end() && third.end());
        drop(second);
        assert_eq!(shared.slab.chunks(), 1, "a member still holds its slot");
        drop(third);
        assert_eq!(
            shared.slab.chunks(),
            0,
            "the last member's end gives the memory back"
        );
        assert_eq!(Arc::strong_count(&shared), 1);
        // A member of another type gets a slot of its own size, from the same slab.
        let other = MemberRef::new(&shared, std::future::ready(()));
        assert_eq!(shared.slab.chunks(), 1);
        assert!(other.end());
    }

    /// A loop that counts its polls and its drop, and stays pending.
    fn counted_loop(
        polls: Arc<StdAtomicUsize>,
        drops: Arc<StdAtomicUsize>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let guard = Dropped(drops);
        std::future::poll_fn(move |_| {
            let _keep = &guard;
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        })
    }

    /// A group, and a loop's poll and drop counters.
    fn counters() -> (Arc<GroupShared>, Arc<StdAtomicUsize>, Arc<StdAtomicUsize>) {
        (
            Arc::new(GroupShared::new()),
            Arc::new(StdAtomicUsize::new(0)),
            Arc::new(StdAtomicUsize::new(0)),
        )
    }

    /// A slot reserved for a `counted_loop` (the member and its kill switch), and the loop.
    fn reserve_counted(
        shared: &Arc<GroupShared>,
        polls: &Arc<StdAtomicUsize>,
        drops: &Arc<StdAtomicUsize>,
    ) -> (
        MemberRef,
        MemberRef,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let fut = counted_loop(polls.clone(), drops.clone());
        fn reserve_for<F: Future<Output = ()> + Send + 'static>(
            shared: &Arc<GroupShared>,
            _: &F,
        ) -> (MemberRef, MemberRef) {
            MemberRef::reserve::<F>(shared)
        }
        let (member, kill_switch) = reserve_for(shared, &fut);
        (member, kill_switch, fut)
    }

    /// A member killed through its kill switch before its loop is written (a kill racing the
    /// spawn) is not queued by the kill, and the group's task drops its loop unpolled once it
    /// joins.
    #[test]
    fn a_member_killed_before_it_joins_is_dropped_unpolled() {
        let (shared, polls, drops) = counters();
        let (member, kill_switch, fut) = reserve_counted(&shared, &polls, &drops);
        assert_eq!(shared.members.load(Ordering::SeqCst), 0, "not counted yet");
        kill_switch.abort();
        assert!(
            shared.remote.lock().ready.is_empty(),
            "the kill queues nothing before the loop exists"
        );
        // SAFETY: reserved for this type above, not written yet.
        unsafe { member.fill(fut) };
        assert_eq!(shared.members.load(Ordering::SeqCst), 1);
        assert!(shared.join(member).is_ok());
        let mut lists = TaskLists::default();
        let mut ended = 0;
        {
            let _polling = PollingGuard::enter(&shared);
            assert!(shared.run_ready(usize::MAX, &mut ended, &mut lists));
        }
        assert_eq!(ended, 1);
        assert_eq!(polls.load(Ordering::SeqCst), 0, "never polled");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once");
        assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        drop(lists);
        drop(kill_switch);
        assert_eq!(shared.slab.chunks(), 0, "the slot went back");
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    /// A slot reserved for a spawn that then failed goes back with the member's last reference,
    /// and nothing reads the loop that was never written.
    #[test]
    fn a_reservation_never_joined_gives_its_slot_back() {
        let (shared, polls, drops) = counters();
        let (member, kill_switch, fut) = reserve_counted(&shared, &polls, &drops);
        assert!(!member.end(), "there is no loop to end");
        drop(member);
        assert_eq!(shared.slab.chunks(), 1, "the kill switch holds the slot");
        drop(kill_switch);
        assert_eq!(shared.slab.chunks(), 0);
        assert_eq!(Arc::strong_count(&shared), 1);
        assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "the unwritten loop is not dropped"
        );
        drop(fut);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    struct Idle;

    impl crate::Actor for Idle {
        type Msg = u64;
        async fn handle(&mut self, _: u64, _: &mut crate::Context<Self>) -> crate::ActorResult {
            Ok(())
        }
    }

    /// Ended members give their memory back to the group's slab while refs to them are still
    /// held (their cells let go of their kill switches when they end).
    #[tokio::test(flavor = "current_thread")]
    async fn ended_members_memory_goes_back_while_refs_to_them_remain() {
        let system = crate::ActorSystem::new(crate::SystemConfig::default()).expect("system");
        let group = system.group();
        // More than the 32 ended members the group's task lets go of in one batch.
        let refs: Vec<_> = (0..40)
            .map(|_| {
                system
                    .spawn(crate::Props::new(|| Idle).group(&group))
                    .expect("spawn")
            })
            .collect();
        let slab = &group.handle.shared.slab;
        assert_eq!(
            slab.chunks(),
            4,
            "8, 8 and 16 slots, then 32 for the last 8"
        );
        for r in &refs {
            r.stop();
        }
        for r in &refs {
            r.wait_for_stop().await;
        }
        for _ in 0..1_000 {
            if slab.chunks() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(slab.chunks(), 0, "every member's slot went back");
        assert!(group.is_empty());
        drop(refs);
    }

    #[test]
    fn the_task_keeps_the_capacity_of_its_spare_lists_and_local_queue_up_to_a_bound() {
        let shared = Arc::new(GroupShared::new());
        let mut lists = TaskLists::default();
        let joined = |n: usize| {
            let members: Vec<MemberRef> = (0..n)
                .map(|_| MemberRef::new(&shared, std::future::pending::<()>()))
                .collect();
            for m in &members {
                assert!(shared.join(m.clone()).is_ok());
            }
            members
        };
        let _polling = PollingGuard::enter(&shared);
        let small = joined(100);
        shared.run_ready(usize::MAX, &mut 0, &mut lists);
        assert_eq!(lists.all.len(), 100);
        assert!(lists.joining.is_empty());
        let kept = shared.remote.lock().joining.capacity();
        assert!(kept >= 100, "the emptied list went back with its capacity");
        let big = joined(TaskLists::SPARE_CAPACITY * 2);
        shared.run_ready(usize::MAX, &mut 0, &mut lists);
        assert_eq!(lists.all.len(), 100 + TaskLists::SPARE_CAPACITY * 2);
        // Wherever the two spare lists are now, neither keeps the peak's capacity, nor does the
        // local queue every joining member passed through.
        let capacities = [
            lists.joining.capacity(),
            shared.remote.lock().joining.capacity(),
            // SAFETY: this thread is polling the group (`_polling`), and nothing else is.
            unsafe { (*shared.local.get()).capacity() },
        ];
        assert!(
            capacities.iter().all(|&c| c <= TaskLists::SPARE_CAPACITY),
            "a peak's capacity is let go: {capacities:?}"
        );
        for m in small.iter().chain(&big) {
            assert!(m.end());
        }
        drop(_polling);
        lists.all.clear();
    }

    /// A group and a member of it whose loop counts its drops.
    fn group_of_one() -> (Arc<GroupShared>, Arc<StdAtomicUsize>, MemberRef) {
        let shared = Arc::new(GroupShared::new());
        let drops = Arc::new(StdAtomicUsize::new(0));
        let member = MemberRef::new(
            &shared,
            loop_keeping_its_waker(Arc::new(Mutex::new(None)), drops.clone()),
        );
        (shared, drops, member)
    }

    #[test]
    fn a_member_that_never_ended_drops_its_loop_with_its_last_reference() {
        let (shared, drops, member) = group_of_one();
        let other = member.clone();
        drop(member);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(other);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn an_aborted_member_ends_at_its_next_poll() {
        let (_shared, drops, member) = group_of_one();
        member.abort();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "nothing is dropped off the group's task"
        );
        assert!(poll_loop(member.0));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(!member.is_live());
    }
}

#[cfg(all(test, actor_loom))]
mod loom_tests {
    //! The group's wake protocol under loom: a member woken from another thread while the group's
    //! task runs its turn, or between turns, is polled again (loom reports a deadlock otherwise).
    //! Run with `RUSTFLAGS="--cfg actor_loom" cargo test -p actor-core --release --lib loom_tests`.
    use super::*;
    use crate::sync::loom_support::{consumer_task, model};
    use std::future::poll_fn;
    use std::task::Waker;

    /// What a member waits for: a flag another thread sets, and the waker to wake then.
    struct Event {
        set: AtomicBool,
        waker: Mutex<Option<Waker>>,
    }

    impl Event {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                set: AtomicBool::new(false),
                waker: Mutex::new(None),
            })
        }

        /// Sets the flag, then wakes whoever registered (as a mailbox producer or a timer does).
        fn fire(&self) {
            self.set.store(true, Ordering::SeqCst);
            if let Some(w) = self.waker.lock().take() {
                w.wake();
            }
        }

        /// A member's loop: ready once the event fired, registering its waker before it looks.
        fn wait(self: Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
            poll_fn(move |cx| {
                *self.waker.lock() = Some(cx.waker().clone());
                if self.set.load(Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        }
    }

    /// The group's task, as tokio would run it: turns until every member ended, waiting for its
    /// waker between turns (a turn cut short by the budget goes again at once). `members` are
    /// taken in at the first turn; `joining` join from other threads.
    fn run_group(
        shared: &Arc<GroupShared>,
        members: &[MemberRef],
        joining: &[MemberRef],
        budget: usize,
    ) {
        let task = consumer_task();
        let mut first = members.to_vec();
        let mut lists = TaskLists::default();
        loop {
            shared.waker.register(&task.waker);
            let drained = {
                let _polling = PollingGuard::enter(shared);
                for m in &first {
                    shared.push_local(m.0);
                }
                first.clear();
                shared.run_ready(budget, &mut 0, &mut lists)
            };
            if members.iter().chain(joining).all(|m| !m.is_live()) {
                return;
            }
            if drained {
                task.notify.0.wait();
            }
        }
    }

    #[test]
    fn a_member_woken_from_another_thread_is_polled_again() {
        model(|| {
            let shared = Arc::new(GroupShared::new());
            let event = Event::new();
            let member = MemberRef::new(&shared, event.clone().wait());
            let producer = loom::thread::spawn(move || event.fire());
            run_group(&shared, &[member], &[], POLL_BUDGET);
            producer.join().expect("producer");
            assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        });
    }

    /// Two members woken by two threads, with a budget of one poll per turn, so the turns that
    /// yield and the remote queue's hand-over to the local one are explored too.
    #[test]
    fn two_members_woken_from_two_threads_with_a_budget_of_one() {
        model(|| {
            let shared = Arc::new(GroupShared::new());
            let (a, b) = (Event::new(), Event::new());
            let members = [
                MemberRef::new(&shared, a.clone().wait()),
                MemberRef::new(&shared, b.clone().wait()),
            ];
            let ta = loom::thread::spawn(move || a.fire());
            let tb = loom::thread::spawn(move || b.fire());
            run_group(&shared, &members, &[], 1);
            ta.join().expect("a");
            tb.join().expect("b");
        });
    }

    /// A member joins from one thread while another wakes a member already in: whichever of them
    /// finds the group's two queues empty wakes its task, and both members run (a join that
    /// neither woke the task nor was seen in its turn would deadlock here).
    #[test]
    fn a_member_joins_while_another_is_woken_from_a_third_thread() {
        model(|| {
            let shared = Arc::new(GroupShared::new());
            let (a, b) = (Event::new(), Event::new());
            b.fire();
            let member = MemberRef::new(&shared, a.clone().wait());
            let joiner = MemberRef::new(&shared, b.wait());
            let tj = {
                let (shared, joiner) = (shared.clone(), joiner.clone());
                loom::thread::spawn(move || assert!(shared.join(joiner).is_ok()))
            };
            let ta = loom::thread::spawn(move || a.fire());
            run_group(
                &shared,
                std::slice::from_ref(&member),
                std::slice::from_ref(&joiner),
                POLL_BUDGET,
            );
            tj.join().expect("joiner");
            ta.join().expect("waker");
            assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        });
    }

    /// A kill from another thread ends a member that nothing else would wake.
    #[test]
    fn a_member_killed_from_another_thread_ends() {
        model(|| {
            let shared = Arc::new(GroupShared::new());
            let never = Event::new();
            let member = MemberRef::new(&shared, never.wait());
            let killer = {
                let member = member.clone();
                loom::thread::spawn(move || member.abort())
            };
            run_group(&shared, std::slice::from_ref(&member), &[], POLL_BUDGET);
            killer.join().expect("killer");
            assert_eq!(shared.members.load(Ordering::SeqCst), 0);
        });
    }
}
