//! Actor groups: members run inside one tokio task, and everything else (messages from outside,
//! ask, supervision, timers, kill, shutdown) works for them as for any actor.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{ActorGroup, SpawnError, TerminationReason};

const T: Duration = Duration::from_secs(5);

/// Waits until `group` has `n` members left (a member leaves just after its teardown, so the
/// count may lag `wait_for_stop` by a moment).
async fn until_len(group: &ActorGroup, n: usize) {
    tokio::time::timeout(T, async {
        while group.len() != n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the group kept {} members, expected {n}", group.len()));
}

/// How `actor` ended; panics if it has not within `T`.
async fn ended<M: Send + 'static>(actor: &ActorRef<M>) -> TerminationReason {
    tokio::time::timeout(T, actor.wait_for_stop())
        .await
        .unwrap_or_else(|_| panic!("{} did not end", actor.path()))
}

/// A system on the current runtime, and the number of tokio tasks alive before it has any actor.
fn system_counting_tasks() -> (ActorSystem, usize) {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    (system, before)
}

/// Waits until `n` tokio tasks are alive; panics with `what` if that takes longer than `T`.
async fn until_alive_tasks(n: usize, what: &str) {
    let metrics = tokio::runtime::Handle::current().metrics();
    tokio::time::timeout(T, async {
        while metrics.num_alive_tasks() != n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: {} tasks alive, not {n}", metrics.num_alive_tasks()));
}

/// A current-thread runtime with timers, for tests that run their own.
fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The tokio task an actor's handler runs in.
fn task_id() -> tokio::task::Id {
    tokio::task::try_id().expect("handlers run inside a tokio task")
}

/// Passes a token to the next member; reports the task it ran in when the token is spent.
struct Hop {
    next: Option<ActorRef<HopMsg>>,
    out: ActorRef<(u64, tokio::task::Id)>,
}

enum HopMsg {
    Next(ActorRef<HopMsg>),
    Token(u64),
}

impl Actor for Hop {
    type Msg = HopMsg;
    async fn handle(&mut self, msg: HopMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            HopMsg::Next(next) => self.next = Some(next),
            HopMsg::Token(0) => self.out.tell((0, task_id())),
            HopMsg::Token(left) => match &self.next {
                Some(next) => next.tell(HopMsg::Token(left - 1)),
                None => return Err("token before the ring was closed".into()),
            },
        }
        Ok(())
    }
}

fn ring(
    system: &ActorSystem,
    group: Option<&ActorGroup>,
    n: usize,
    out: &ActorRef<(u64, tokio::task::Id)>,
) -> Vec<ActorRef<HopMsg>> {
    let refs: Vec<_> = (0..n)
        .map(|_| {
            let out = out.clone();
            let props = Props::new(move || Hop {
                next: None,
                out: out.clone(),
            });
            let props = match group {
                Some(g) => props.group(g),
                None => props,
            };
            system.spawn(props).expect("spawn")
        })
        .collect();
    for (i, r) in refs.iter().enumerate() {
        r.tell(HopMsg::Next(refs[(i + 1) % n].clone()));
    }
    refs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_inside_a_group_passes_its_token_within_one_task() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let mut probe = TestProbe::new(&system);
    let refs = ring(&system, Some(&group), 100, &probe.actor_ref());
    assert_eq!(group.len(), 100);
    // Every member reports the task it ran in: one token per member, 250 hops each.
    for r in &refs {
        r.tell(HopMsg::Token(250));
    }
    let mut tasks = Vec::new();
    for _ in 0..refs.len() {
        let (left, task) = probe.expect_msg(T).await;
        assert_eq!(left, 0);
        tasks.push(task);
    }
    tasks.dedup();
    assert_eq!(tasks.len(), 1, "members ran in {} tasks", tasks.len());

    // Without the group, the same ring runs in one task per actor.
    let plain = ring(&system, None, 4, &probe.actor_ref());
    for r in &plain {
        r.tell(HopMsg::Token(0));
    }
    let mut plain_tasks = Vec::new();
    for _ in 0..plain.len() {
        plain_tasks.push(probe.expect_msg(T).await.1);
    }
    plain_tasks.sort();
    plain_tasks.dedup();
    assert_eq!(plain_tasks.len(), 4);
    assert!(!plain_tasks.contains(&tasks[0]));

    for r in &refs {
        r.stop();
    }
    for r in &refs {
        assert!(matches!(ended(r).await, TerminationReason::Stopped));
    }
    until_len(&group, 0).await;
}

/// A group whose members always have a message for each other still yields its worker: a task
/// on the same one-thread runtime gets a turn while a token circles the group without end.
#[test]
fn a_busy_group_yields_its_worker_to_other_tasks() {
    let (done, finished) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        one_thread_runtime().block_on(async {
            let system = ActorSystem::new(SystemConfig::default()).expect("system");
            let group = system.group();
            let probe = TestProbe::new(&system);
            let refs = ring(&system, Some(&group), 2, &probe.actor_ref());
            refs[0].tell(HopMsg::Token(u64::MAX));
            let other = tokio::spawn(async { 7 });
            assert_eq!(other.await.expect("the other task"), 7);
            for r in &refs {
                r.stop();
            }
            for r in &refs {
                assert!(matches!(ended(r).await, TerminationReason::Stopped));
            }
        });
        done.send(()).expect("the test waits");
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the group never let the other task run");
    runner.join().expect("runner");
}

/// Answers asks; `Hang` never returns; `Boom` panics. Counts its starts.
struct Worker {
    starts: Arc<AtomicUsize>,
    seen: u32,
}

enum WorkerMsg {
    Count(Reply<u32>),
    Hang,
    Boom,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn handle(&mut self, msg: WorkerMsg, _ctx: &mut Context<Self>) -> ActorResult {
        self.seen += 1;
        match msg {
            WorkerMsg::Count(r) => r.send(self.seen),
            WorkerMsg::Hang => std::future::pending::<()>().await,
            WorkerMsg::Boom => panic!("boom"),
        }
        Ok(())
    }
}

fn worker(system: &ActorSystem, group: &ActorGroup) -> (ActorRef<WorkerMsg>, Arc<AtomicUsize>) {
    let starts = Arc::new(AtomicUsize::new(0));
    let s = starts.clone();
    let r = system
        .spawn(
            Props::new(move || Worker {
                starts: s.clone(),
                seen: 0,
            })
            .group(group),
        )
        .expect("spawn");
    (r, starts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stuck_in_a_handler_is_killed_and_the_group_goes_on() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let (stuck, _) = worker(&system, &group);
    let (other, _) = worker(&system, &group);
    stuck.tell(WorkerMsg::Hang);
    // The hung handler is inside the group's task; the other member still answers.
    assert_eq!(other.ask(WorkerMsg::Count).await.expect("answer"), 1);
    stuck.kill();
    assert!(matches!(ended(&stuck).await, TerminationReason::Killed));
    assert_eq!(other.ask(WorkerMsg::Count).await.expect("answer"), 2);
    until_len(&group, 1).await;
}

/// Counts its starts.
struct Starts(Arc<AtomicUsize>);

impl Actor for Starts {
    type Msg = ();
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// A member killed as soon as it is spawned, before the group's task has taken it in (one
/// thread: the task cannot run in between), ends killed without starting, and the group's other
/// members start and go on.
#[tokio::test(flavor = "current_thread")]
async fn a_member_killed_before_the_group_takes_it_in_never_starts() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let starts = Arc::new(AtomicUsize::new(0));
    let spawn = || {
        let starts = starts.clone();
        system
            .spawn(Props::new(move || Starts(starts.clone())).group(&group))
            .expect("spawn")
    };
    let (killed, kept) = (spawn(), spawn());
    killed.kill();
    assert!(matches!(ended(&killed).await, TerminationReason::Killed));
    kept.tell(());
    until_len(&group, 1).await;
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "only the other member started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_member_is_restarted_by_its_supervisor_inside_the_group() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let (w, starts) = worker(&system, &group);
    assert_eq!(w.ask(WorkerMsg::Count).await.expect("answer"), 1);
    w.tell(WorkerMsg::Boom);
    // Fresh state after the restart: the count starts again.
    assert_eq!(w.ask(WorkerMsg::Count).await.expect("answer"), 1);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(group.len(), 1);
}

/// A value whose drop panics.
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a drop panicked");
    }
}

struct Holder;
enum HolderMsg {
    Hang,
    /// Tells the first channel it is handling this message, then waits for the second.
    WaitFor(
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::oneshot::Receiver<()>,
    ),
    #[allow(dead_code)]
    Bomb(Bomb),
}
impl Actor for Holder {
    type Msg = HolderMsg;
    async fn handle(&mut self, msg: HolderMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            HolderMsg::Hang => std::future::pending::<()>().await,
            HolderMsg::WaitFor(entered, rx) => {
                let _ = entered.send(());
                let _ = rx.await;
            }
            HolderMsg::Bomb(_) => {}
        }
        Ok(())
    }
}

/// A holder whose factory owns a bomb: the loop drops the factory after its teardown, so the
/// panic escapes the actor's loop.
fn holder_with_a_bomb_in_its_factory(
    system: &ActorSystem,
    group: &ActorGroup,
) -> ActorRef<HolderMsg> {
    let bomb = Bomb;
    system
        .spawn(
            Props::new(move || {
                let _armed = &bomb;
                Holder
            })
            .group(group),
        )
        .expect("spawn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_escaping_a_members_loop_ends_that_member_only() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let (other, _) = worker(&system, &group);

    // Killed: the group drops the loop, and the factory's drop panics.
    let killed = holder_with_a_bomb_in_its_factory(&system, &group);
    killed.tell(HolderMsg::Hang);
    assert_eq!(other.ask(WorkerMsg::Count).await.expect("answer"), 1);
    killed.kill();
    assert!(matches!(ended(&killed).await, TerminationReason::Killed));
    until_len(&group, 1).await;
    assert_eq!(other.ask(WorkerMsg::Count).await.expect("answer"), 2);

    // Stopped: the loop ends itself, and the factory's drop panics inside the group's poll.
    let stopped = holder_with_a_bomb_in_its_factory(&system, &group);
    stopped.stop();
    assert!(matches!(ended(&stopped).await, TerminationReason::Stopped));
    until_len(&group, 1).await;
    assert_eq!(other.ask(WorkerMsg::Count).await.expect("answer"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_whose_drop_panics_does_not_stop_the_teardown() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    for group in [None, Some(system.group())] {
        let props = Props::new(|| Holder);
        let props = match &group {
            Some(g) => props.group(g),
            None => props,
        };
        let dead_before = system.dead_letter_count();
        let holder = system.spawn(props).expect("spawn");
        let (release, rx) = tokio::sync::oneshot::channel();
        let (entered, inside) = tokio::sync::oneshot::channel();
        holder.tell(HolderMsg::WaitFor(entered, rx));
        inside.await.expect("the holder handles WaitFor");
        holder.tell(HolderMsg::Bomb(Bomb));
        holder.tell(HolderMsg::Bomb(Bomb));
        holder.stop();
        release.send(()).expect("the holder waits");
        // Both bombs are dropped (each drop panics) and counted; the actor still ends.
        assert!(matches!(ended(&holder).await, TerminationReason::Stopped));
        assert_eq!(system.dead_letter_count() - dead_before, 2);
        assert_eq!(system.actor_count(), 0);
    }
}

struct Ticker {
    out: ActorRef<u32>,
    ticks: u32,
}
impl Actor for Ticker {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.send_interval("tick", Duration::from_millis(20), || ());
        Ok(())
    }
    async fn handle(&mut self, _: (), ctx: &mut Context<Self>) -> ActorResult {
        self.ticks += 1;
        self.out.tell(self.ticks);
        if self.ticks == 5 {
            ctx.stop();
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn timers_tick_for_members_on_the_paused_clock() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let mut probe = TestProbe::new(&system);
    let out = probe.actor_ref();
    let start = tokio::time::Instant::now();
    let t = system
        .spawn(
            Props::new(move || Ticker {
                out: out.clone(),
                ticks: 0,
            })
            .group(&group),
        )
        .expect("spawn");
    for i in 1..=5 {
        assert_eq!(probe.expect_msg(T).await, i);
    }
    assert!(matches!(ended(&t).await, TerminationReason::Stopped));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    until_len(&group, 0).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_members_and_kills_a_stuck_one_at_the_deadline() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let (w, _) = worker(&system, &group);
    let (stuck, _) = worker(&system, &group);
    stuck.tell(WorkerMsg::Hang);
    assert_eq!(w.ask(WorkerMsg::Count).await.expect("answer"), 1);
    let report = system.shutdown(Duration::from_millis(200)).await;
    assert!(report.unresponsive.is_empty(), "{report:?}");
    assert!(matches!(ended(&w).await, TerminationReason::Stopped));
    assert!(matches!(ended(&stuck).await, TerminationReason::Killed));
    until_len(&group, 0).await;
    assert_eq!(system.actor_count(), 0);
}

#[test]
fn spawning_into_a_group_whose_runtime_has_shut_down_is_an_error() {
    let gone = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let group = gone.block_on(async {
        ActorSystem::new(SystemConfig::default())
            .expect("system")
            .group()
    });
    drop(gone);

    one_thread_runtime().block_on(async {
        let system = ActorSystem::new(SystemConfig::default()).expect("system");
        let starts = Arc::new(AtomicUsize::new(0));
        let err = system
            .spawn(
                Props::new(move || Worker {
                    starts: starts.clone(),
                    seen: 0,
                })
                .group(&group),
            )
            .expect_err("the group has ended");
        assert!(matches!(err, SpawnError::GroupEnded), "{err}");
        // The refused actor was torn down: nothing is left running or counted.
        assert_eq!(system.actor_count(), 0);
        assert!(group.is_empty());
    });
}

/// Counts its drops.
struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn members_not_yet_taken_in_when_the_runtime_shuts_down_are_torn_down() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = one_thread_runtime();
    let group = rt.block_on(async {
        let system = ActorSystem::new(SystemConfig::default()).expect("system");
        let group = system.group();
        for _ in 0..3 {
            let guard = Dropped(dropped.clone());
            let starts = Arc::new(AtomicUsize::new(0));
            system
                .spawn(
                    Props::new(move || {
                        let _held = &guard;
                        Worker {
                            starts: starts.clone(),
                            seen: 0,
                        }
                    })
                    .group(&group),
                )
                .expect("spawn");
        }
        // No await: the group's task has not run, so the three are still waiting to join.
        group
    });
    assert_eq!(group.len(), 3);
    drop(rt);
    // The group's task was dropped with the runtime, and with it the loops of the three (their
    // factories hold the guards): nothing is left behind.
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
    assert!(group.is_empty());
}

#[test]
fn the_group_task_ends_with_its_last_handle_and_its_last_member() {
    one_thread_runtime().block_on(async {
        let (system, before) = system_counting_tasks();
        let metrics = tokio::runtime::Handle::current().metrics();
        let group = system.group();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            metrics.num_alive_tasks(),
            before + 1,
            "no member yet: a handle keeps it"
        );
        let (member, _) = worker(&system, &group);
        // A clone dropped leaves the group open; the member keeps the task after the last handle.
        drop(group.clone());
        let len = group.len();
        drop(group);
        assert_eq!(len, 1);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(metrics.num_alive_tasks(), before + 1, "a member is left");
        member.stop();
        ended(&member).await;
        until_alive_tasks(
            before,
            "the group's task ended after its last handle and member",
        )
        .await;
    });
}

/// Adds what it is told; answers with the sum.
#[derive(Default)]
struct Sum {
    total: u64,
}
enum SumMsg {
    Add(u64),
    Get(Reply<u64>),
}
impl Actor for Sum {
    type Msg = SumMsg;
    async fn handle(&mut self, msg: SumMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            SumMsg::Add(n) => self.total += n,
            SumMsg::Get(r) => r.send(self.total),
        }
        Ok(())
    }
}

/// Forwards what it is told to the sum (a wake inside the group for every message).
struct Forward {
    to: ActorRef<SumMsg>,
}
impl Actor for Forward {
    type Msg = u64;
    async fn handle(&mut self, n: u64, _ctx: &mut Context<Self>) -> ActorResult {
        self.to.tell(SumMsg::Add(n));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_and_go_while_tasks_on_other_workers_tell_them() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let sum = system
        .spawn(Props::new(Sum::default).group(&group))
        .expect("spawn");
    let mut expected = 0;
    for round in 0..10u64 {
        let members: Vec<_> = (0..100)
            .map(|_| {
                let to = sum.clone();
                system
                    .spawn(Props::new(move || Forward { to: to.clone() }).group(&group))
                    .expect("spawn")
            })
            .collect();
        // Four tasks on the runtime's workers tell every member, racing the group's own wakes.
        let senders: Vec<_> = (0..4u64)
            .map(|t| {
                let members = members.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        for m in &members {
                            m.tell(round * 1_000 + t * 100 + i);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.expect("sender");
        }
        expected += 100
            * (0..4u64)
                .flat_map(|t| (0..50u64).map(move |i| round * 1_000 + t * 100 + i))
                .sum::<u64>();
        // `stop_when_idle`: each member handles every message told so far, then stops.
        for m in &members {
            m.stop_when_idle();
        }
        for m in &members {
            assert!(matches!(ended(m).await, TerminationReason::Stopped));
        }
        until_len(&group, 1).await;
    }
    // The sum may still have a backlog of the last round's forwards: a timeout well above the
    // default, so that a slow host (or valgrind) is not taken for a lost message.
    let total = sum
        .ask_timeout(SumMsg::Get, Duration::from_secs(60))
        .await
        .expect("answer");
    assert_eq!(total, expected);
}

/// Spawns its children into a group and waits for each to start.
struct Room {
    group: ActorGroup,
}
enum RoomMsg {
    Join(Reply<ActorRef<WorkerMsg>>),
}
impl Actor for Room {
    type Msg = RoomMsg;
    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        let RoomMsg::Join(r) = msg;
        let props = Props::new(|| Worker {
            starts: Arc::new(AtomicUsize::new(0)),
            seen: 0,
        })
        .group(&self.group);
        r.send(ctx.spawn_and_wait_started(props).await?);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_spawns_its_children_into_a_group_and_supervises_them() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let room = system
        .spawn(Props::new({
            let group = group.clone();
            move || Room {
                group: group.clone(),
            }
        }))
        .expect("spawn");
    let a = room.ask(RoomMsg::Join).await.expect("joined");
    let b = room.ask(RoomMsg::Join).await.expect("joined");
    assert_eq!(group.len(), 2);
    assert_eq!(a.ask(WorkerMsg::Count).await.expect("answer"), 1);
    // The room restarts a child that panics (the default policy): fresh state.
    a.tell(WorkerMsg::Boom);
    assert_eq!(a.ask(WorkerMsg::Count).await.expect("answer"), 1);
    assert_eq!(b.ask(WorkerMsg::Count).await.expect("answer"), 1);
    // Stopping the room stops its children first, grouped or not.
    room.stop();
    assert!(matches!(ended(&room).await, TerminationReason::Stopped));
    assert!(matches!(ended(&a).await, TerminationReason::Stopped));
    assert!(matches!(ended(&b).await, TerminationReason::Stopped));
    until_len(&group, 0).await;
}

/// Reports the group it runs in; spawns a child next to itself.
struct Host;
enum HostMsg {
    WhereAmI(Reply<Option<ActorGroup>>),
    SpawnNext(Reply<ActorRef<HostMsg>>),
}
impl Actor for Host {
    type Msg = HostMsg;
    async fn handle(&mut self, msg: HostMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            HostMsg::WhereAmI(r) => r.send(ctx.group()),
            HostMsg::SpawnNext(r) => {
                let mut props = Props::new(|| Host);
                if let Some(group) = ctx.group() {
                    props = props.group(&group);
                }
                r.send(ctx.spawn(props)?);
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_finds_its_group_in_its_context_and_spawns_next_to_itself() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let group = system.group();
    let other = system.group();
    let host = system
        .spawn(Props::new(|| Host).group(&group))
        .expect("spawn");
    let found = host.ask(HostMsg::WhereAmI).await.expect("answer");
    assert!(
        found.as_ref() == Some(&group),
        "a member's context names its group"
    );
    assert!(found.as_ref() != Some(&other));
    let child = host.ask(HostMsg::SpawnNext).await.expect("spawned");
    assert_eq!(group.len(), 2);
    let found = child.ask(HostMsg::WhereAmI).await.expect("answer");
    assert!(
        found.as_ref() == Some(&group),
        "the child runs in its parent's group"
    );
    // An actor with a task or a thread of its own is in no group, and neither are its children.
    for props in [Props::new(|| Host), Props::new(|| Host).dedicated_thread()] {
        let alone = system.spawn(props).expect("spawn");
        assert!(
            alone
                .ask(HostMsg::WhereAmI)
                .await
                .expect("answer")
                .is_none()
        );
        let child = alone.ask(HostMsg::SpawnNext).await.expect("spawned");
        assert!(
            child
                .ask(HostMsg::WhereAmI)
                .await
                .expect("answer")
                .is_none()
        );
    }
    assert_eq!(group.len(), 2);
    assert!(other.is_empty());
}

#[test]
fn a_group_whose_handles_are_gone_takes_the_children_of_its_members_and_ends_after_them() {
    one_thread_runtime().block_on(async {
        let (system, before) = system_counting_tasks();
        let group = system.group();
        let host = system
            .spawn(Props::new(|| Host).group(&group))
            .expect("spawn");
        // Only the members are left to spawn into it.
        let len = group.len();
        drop(group);
        assert_eq!(len, 1);
        let child = host.ask(HostMsg::SpawnNext).await.expect("spawned");
        let grandchild = child.ask(HostMsg::SpawnNext).await.expect("spawned");
        let found = grandchild.ask(HostMsg::WhereAmI).await.expect("answer");
        let group = found.expect("the grandchild runs in the group");
        assert_eq!(group.len(), 3);
        drop(group);
        // Three members, one tokio task.
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before + 1
        );
        host.stop();
        for actor in [&host, &child, &grandchild] {
            assert!(matches!(ended(actor).await, TerminationReason::Stopped));
        }
        until_alive_tasks(
            before,
            "the group's task ended with its last member, its handles all gone",
        )
        .await;
    });
}
