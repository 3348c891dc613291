//! The hand-off: an actor woken by the actor running on a thread runs right after it, inside the
//! same tokio task, a bounded number of times in a row; stops, kills and shutdowns work as they
//! do for any actor.

use std::sync::Arc;
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{ActorGroup, TerminationReason};
use parking_lot::Mutex;

const T: Duration = Duration::from_secs(10);

/// The tokio task a handler runs in.
fn task_id() -> tokio::task::Id {
    tokio::task::try_id().expect("handlers run inside a tokio task")
}

/// Passes a token on; logs the task of every hop, and tells `out` when the token is spent.
/// `stop_at_end`: the actor that gets the spent token stops itself.
struct Hop {
    next: Option<ActorRef<HopMsg>>,
    log: Arc<Mutex<Vec<tokio::task::Id>>>,
    out: ActorRef<u64>,
    stop_at_end: bool,
    /// CPU time each hop takes (a busy wait: a handler doing work, not one waiting).
    spin: Duration,
}

enum HopMsg {
    Next(ActorRef<HopMsg>),
    Token(u64),
    /// Answered at once: once every actor answered, on a one-thread runtime, all are parked.
    Ready(Reply<()>),
}

impl Actor for Hop {
    type Msg = HopMsg;
    async fn handle(&mut self, msg: HopMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            HopMsg::Next(next) => self.next = Some(next),
            HopMsg::Ready(reply) => reply.send(()),
            HopMsg::Token(left) => {
                self.log.lock().push(task_id());
                let start = std::time::Instant::now();
                while start.elapsed() < self.spin {
                    std::hint::spin_loop();
                }
                if left == 0 {
                    self.out.tell(0);
                    if self.stop_at_end {
                        ctx.stop();
                    }
                } else {
                    match &self.next {
                        Some(next) => next.tell(HopMsg::Token(left - 1)),
                        None => return Err("token before the ring was closed".into()),
                    }
                }
            }
        }
        Ok(())
    }
}

/// A ring of `n` actors, each with a task of its own.
fn ring(
    system: &ActorSystem,
    n: usize,
    log: &Arc<Mutex<Vec<tokio::task::Id>>>,
    out: &ActorRef<u64>,
    stop_at_end: bool,
) -> Vec<ActorRef<HopMsg>> {
    spinning_ring(system, n, log, out, stop_at_end, Duration::ZERO)
}

/// [`ring`] with hops that each take `spin` of CPU time.
fn spinning_ring(
    system: &ActorSystem,
    n: usize,
    log: &Arc<Mutex<Vec<tokio::task::Id>>>,
    out: &ActorRef<u64>,
    stop_at_end: bool,
    spin: Duration,
) -> Vec<ActorRef<HopMsg>> {
    let refs: Vec<_> = (0..n)
        .map(|_| {
            let (log, out) = (log.clone(), out.clone());
            system
                .spawn(Props::new(move || Hop {
                    next: None,
                    log: log.clone(),
                    out: out.clone(),
                    stop_at_end,
                    spin,
                }))
                .expect("spawn")
        })
        .collect();
    for (i, r) in refs.iter().enumerate() {
        r.tell(HopMsg::Next(refs[(i + 1) % n].clone()));
    }
    refs
}

/// Waits until every actor of `refs` handled what it was sent before; on a one-thread runtime
/// each is then parked (it parks before the test's task runs again).
async fn settle(refs: &[ActorRef<HopMsg>]) {
    for r in refs {
        r.ask(HopMsg::Ready).await.expect("ready");
    }
}

/// The lengths of the runs of hops made in the same task, in order.
fn runs(log: &[tokio::task::Id]) -> Vec<usize> {
    let mut runs: Vec<usize> = Vec::new();
    for (i, id) in log.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if i > 0 && log[i - 1] == *id => *run += 1,
            _ => runs.push(1),
        }
    }
    runs
}

/// The shortest run of hops in one task that a chain going on makes: the task's own poll, the
/// first 64 inline polls, then one round of 16 before the first look at the clock.
const SHORTEST_RUN: usize = 1 + 64 + 16;

/// The longest: the task's own poll and 1,024 inline polls.
const LONGEST_RUN: usize = 1 + 1_024;

/// Actors in the ring whose runs are measured: more than a run can hop, so that a turn never
/// ends with the token back at the actor whose task ran it. (With 10 actors, a turn of 150 hops
/// did: that actor's own task was woken next, and two turns logged as one run of 301.)
const RING: usize = LONGEST_RUN + 75;

#[tokio::test]
async fn a_token_passed_between_actors_runs_in_the_task_that_woke_them_a_bounded_number_of_times() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let refs = ring(&system, RING, &log, &probe.actor_ref(), false);
    settle(&refs).await;
    refs[0].tell(HopMsg::Token(3_000));
    probe.expect_msg(T).await;
    let log = log.lock().clone();
    assert_eq!(log.len(), 3_001);
    let runs = runs(&log);
    assert!(runs.len() > 2, "runs of hops in one task: {runs:?}");
    // Each actor but the first of a run was handed off: it ran in the task of the actor that
    // woke it. Without the hand-off, every run would be one hop long. A chain of cheap hops
    // keeps going past the first 64 (how far depends on the clock), and never past 1,024; then
    // tokio runs the next.
    assert!(
        runs[..runs.len() - 1]
            .iter()
            .all(|&run| (SHORTEST_RUN..=LONGEST_RUN).contains(&run)),
        "runs of hops in one task: {runs:?}"
    );
    system.shutdown(T).await;
}

/// A chain of handlers that each take 20 us of CPU leaves its task after 64 inline polls and
/// one round of 16 (320 us past the first 64, over the 100 us slice), where cheap ones go on.
#[tokio::test]
async fn a_chain_of_costly_handlers_leaves_its_task_after_the_first_round_past_the_budget() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let refs = spinning_ring(
        &system,
        10,
        &log,
        &probe.actor_ref(),
        false,
        Duration::from_micros(20),
    );
    settle(&refs).await;
    refs[0].tell(HopMsg::Token(400));
    probe.expect_msg(T).await;
    let log = log.lock().clone();
    assert_eq!(log.len(), 401);
    let runs = runs(&log);
    assert_eq!(
        runs,
        vec![
            SHORTEST_RUN,
            SHORTEST_RUN,
            SHORTEST_RUN,
            SHORTEST_RUN,
            401 - 4 * SHORTEST_RUN
        ],
        "runs of hops in one task"
    );
    system.shutdown(T).await;
}

/// Two actors that always have a token for each other still let another task on the same
/// one-thread runtime run.
#[test]
fn actors_that_keep_waking_each_other_let_other_tasks_run() {
    let (done, finished) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let system = ActorSystem::new(SystemConfig::default()).expect("system");
            let probe = TestProbe::new(&system);
            let log = Arc::new(Mutex::new(Vec::new()));
            let refs = ring(&system, 2, &log, &probe.actor_ref(), false);
            refs[0].tell(HopMsg::Token(u64::MAX));
            let other = tokio::spawn(async { 7 });
            assert_eq!(other.await.expect("the other task"), 7);
            for r in &refs {
                r.kill();
            }
            for r in &refs {
                let reason = tokio::time::timeout(T, r.wait_for_stop()).await;
                assert!(
                    matches!(reason, Ok(TerminationReason::Killed)),
                    "{reason:?}"
                );
            }
        });
        done.send(()).expect("the test waits");
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the actors never let the other task run");
    runner.join().expect("runner");
}

/// An actor that stops itself while it runs in another actor's task ends, and its task with it.
#[tokio::test]
async fn an_actor_that_stops_while_handed_off_ends_with_its_task() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let refs = ring(&system, 3, &log, &probe.actor_ref(), true);
    settle(&refs).await;
    let alive = metrics.num_alive_tasks();
    // The token ends at refs[2], which stops: two hand-offs after refs[0]'s own poll.
    refs[0].tell(HopMsg::Token(2));
    probe.expect_msg(T).await;
    let reason = tokio::time::timeout(T, refs[2].wait_for_stop()).await;
    assert!(
        matches!(reason, Ok(TerminationReason::Stopped)),
        "{reason:?}"
    );
    let log = log.lock().clone();
    assert_eq!(runs(&log), vec![3], "the hops ran in one task");
    tokio::time::timeout(T, async {
        while metrics.num_alive_tasks() != alive - 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stopped actor's task ended");
    system.shutdown(T).await;
}

/// Actors killed and stopped while they pass tokens to each other (so while one is claimed by
/// another's task, or polled in it) all end, on a runtime whose other worker drops their tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_killed_while_they_hand_off_to_each_other_all_end() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let probe = TestProbe::new(&system);
    for round in 0..20 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let refs = ring(&system, 16, &log, &probe.actor_ref(), false);
        for r in refs.iter().step_by(4) {
            r.tell(HopMsg::Token(u64::MAX));
        }
        tokio::task::yield_now().await;
        for (i, r) in refs.iter().enumerate() {
            if (i + round) % 2 == 0 {
                r.kill();
            } else {
                r.stop();
            }
        }
        for r in &refs {
            tokio::time::timeout(T, r.wait_for_stop())
                .await
                .unwrap_or_else(|_| panic!("round {round}: {} did not end", r.path()));
        }
    }
    system.shutdown(T).await;
}

/// Two actors bouncing a token on two workers: at every budget's end the next actor is woken
/// through tokio while still claimed, and the other worker often polls it before the claim is
/// let go. Every such poll must lead to another (a lost one leaves the token stuck).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bounced_between_two_actors_on_two_workers_never_gets_stuck() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let refs = ring(&system, 2, &log, &probe.actor_ref(), false);
    for _ in 0..10 {
        refs[0].tell(HopMsg::Token(100_000));
        // Panics if the token got stuck.
        probe.expect_msg(T).await;
        log.lock().clear();
    }
    system.shutdown(T).await;
}

/// Logs `(index, task)` each time it is hit, and tells `out`.
struct Mark {
    index: usize,
    log: Arc<Mutex<Vec<(usize, tokio::task::Id)>>>,
    out: ActorRef<u64>,
}

enum MarkMsg {
    Hit,
    Ready(Reply<()>),
}

impl Actor for Mark {
    type Msg = MarkMsg;
    async fn handle(&mut self, msg: MarkMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            MarkMsg::Hit => {
                self.log.lock().push((self.index, task_id()));
                self.out.tell(0);
            }
            MarkMsg::Ready(reply) => reply.send(()),
        }
        Ok(())
    }
}

/// Hits every target in one handler, and says in which task it ran.
struct Fan {
    targets: Vec<ActorRef<MarkMsg>>,
    task: Arc<Mutex<Option<tokio::task::Id>>>,
}

impl Actor for Fan {
    type Msg = ();
    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> ActorResult {
        *self.task.lock() = Some(task_id());
        for t in &self.targets {
            t.tell(MarkMsg::Hit);
        }
        Ok(())
    }
}

/// One handler wakes nine idle actors: the thread's slot keeps eight of them, which run in the
/// handler's task right after it, oldest first; the ninth pushed the oldest out to tokio, which
/// runs it in its own task afterwards.
#[tokio::test]
async fn one_handler_waking_several_actors_hands_off_eight_oldest_first() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let targets: Vec<_> = (0..9)
        .map(|index| {
            let (log, out) = (log.clone(), probe.actor_ref());
            system
                .spawn(Props::new(move || Mark {
                    index,
                    log: log.clone(),
                    out: out.clone(),
                }))
                .expect("spawn")
        })
        .collect();
    // On this one-thread runtime each target is parked once it has answered.
    for t in &targets {
        t.ask(MarkMsg::Ready).await.expect("ready");
    }
    let task = Arc::new(Mutex::new(None));
    let fan = system
        .spawn(Props::new({
            let (targets, task) = (targets.clone(), task.clone());
            move || Fan {
                targets: targets.clone(),
                task: task.clone(),
            }
        }))
        .expect("spawn");
    fan.tell(());
    for _ in 0..9 {
        probe.expect_msg(T).await;
    }
    let fan_task = task.lock().expect("the fan ran");
    let log = log.lock().clone();
    let order: Vec<usize> = log.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, [1, 2, 3, 4, 5, 6, 7, 8, 0], "{log:?}");
    assert!(
        log[..8].iter().all(|(_, id)| *id == fan_task),
        "the eight kept ran in the fan's task: {log:?} (fan {fan_task:?})"
    );
    assert_ne!(log[8].1, fan_task, "the one pushed out ran in its own task");
    system.shutdown(T).await;
}

/// Tells its target (if any) on every hit; logs where it ran first.
struct Relay {
    index: usize,
    target: ActorRef<MarkMsg>,
    log: Arc<Mutex<Vec<(usize, tokio::task::Id)>>>,
}

impl Actor for Relay {
    type Msg = MarkMsg;
    async fn handle(&mut self, msg: MarkMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            MarkMsg::Hit => {
                self.log.lock().push((self.index, task_id()));
                self.target.tell(MarkMsg::Hit);
            }
            MarkMsg::Ready(reply) => reply.send(()),
        }
        Ok(())
    }
}

/// A [`Relay`] in `group`, telling `target`.
fn relay_in(
    system: &ActorSystem,
    group: &ActorGroup,
    index: usize,
    target: &ActorRef<MarkMsg>,
    log: &Arc<Mutex<Vec<(usize, tokio::task::Id)>>>,
) -> ActorRef<MarkMsg> {
    let (target, log) = (target.clone(), log.clone());
    system
        .spawn(
            Props::new(move || Relay {
                index,
                target: target.clone(),
                log: log.clone(),
            })
            .group(group),
        )
        .expect("spawn")
}

/// A group's member that wakes an idle actor with a task of its own hands it off: the actor runs
/// in the group's task, right after that member and before the next one.
#[tokio::test]
async fn an_actor_woken_by_a_group_member_runs_in_the_groups_task_before_the_next_member() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mark = |index: usize| {
        let (log, out) = (log.clone(), probe.actor_ref());
        Props::new(move || Mark {
            index,
            log: log.clone(),
            out: out.clone(),
        })
    };
    let target = system.spawn(mark(1)).expect("spawn");
    let group = system.group();
    let first = relay_in(&system, &group, 0, &target, &log);
    let second = system.spawn(mark(2).group(&group)).expect("spawn");
    // On this one-thread runtime each is parked once it has answered.
    for r in [&target, &first, &second] {
        r.ask(MarkMsg::Ready).await.expect("ready");
    }
    // Both members are ready when the group's task next runs.
    first.tell(MarkMsg::Hit);
    second.tell(MarkMsg::Hit);
    for _ in 0..2 {
        probe.expect_msg(T).await;
    }
    let log = log.lock().clone();
    let order: Vec<usize> = log.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        order,
        [0, 1, 2],
        "the target runs between the members: {log:?}"
    );
    assert!(
        log.iter().all(|(_, id)| *id == log[0].1),
        "all in the group's task: {log:?}"
    );
    system.shutdown(T).await;
}

/// A group's turn polls at most 64 woken actors with tasks of their own; the ones woken after
/// that run in their own tasks.
#[tokio::test]
async fn a_groups_turn_hands_off_at_most_64_actors() {
    const N: usize = 70;
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let log = Arc::new(Mutex::new(Vec::new()));
    let group = system.group();
    let mut members = Vec::new();
    for index in 0..N {
        let (log, out) = (log.clone(), probe.actor_ref());
        let target = system
            .spawn(Props::new(move || Mark {
                index,
                log: log.clone(),
                out: out.clone(),
            }))
            .expect("spawn");
        target.ask(MarkMsg::Ready).await.expect("ready");
        // The members' own hits are not logged here.
        let member = relay_in(&system, &group, index, &target, &Arc::default());
        member.ask(MarkMsg::Ready).await.expect("ready");
        members.push(member);
    }
    let group_task = Arc::new(Mutex::new(None));
    let first = system
        .spawn(
            Props::new({
                let task = group_task.clone();
                move || Fan {
                    targets: Vec::new(),
                    task: task.clone(),
                }
            })
            .group(&group),
        )
        .expect("spawn");
    first.tell(());
    for m in &members {
        m.tell(MarkMsg::Hit);
    }
    for _ in 0..N {
        probe.expect_msg(T).await;
    }
    let group_task = group_task.lock().expect("the group ran");
    let log = log.lock().clone();
    let in_group: Vec<usize> = log
        .iter()
        .filter(|(_, id)| *id == group_task)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        in_group,
        (0..64).collect::<Vec<_>>(),
        "the first 64 ran in the group's task: {log:?}"
    );
    system.shutdown(T).await;
}

/// Says whether `Context::group` names a group when it is hit.
struct GroupCheck {
    seen: Arc<Mutex<Vec<(bool, tokio::task::Id)>>>,
    out: ActorRef<u64>,
}

impl Actor for GroupCheck {
    type Msg = MarkMsg;
    async fn handle(&mut self, msg: MarkMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            MarkMsg::Hit => {
                self.seen.lock().push((ctx.group().is_some(), task_id()));
                self.out.tell(0);
            }
            MarkMsg::Ready(reply) => reply.send(()),
        }
        Ok(())
    }
}

/// An actor with a task of its own that runs inside a group's task (handed off by a member) is
/// still not in the group: `Context::group` is `None` for it.
#[tokio::test]
async fn an_actor_handed_off_by_a_member_is_not_in_the_group() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut probe = TestProbe::new(&system);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let target = system
        .spawn(Props::new({
            let (seen, out) = (seen.clone(), probe.actor_ref());
            move || GroupCheck {
                seen: seen.clone(),
                out: out.clone(),
            }
        }))
        .expect("spawn");
    target.ask(MarkMsg::Ready).await.expect("ready");
    let group = system.group();
    let log = Arc::new(Mutex::new(Vec::new()));
    let member = relay_in(&system, &group, 0, &target, &log);
    member.ask(MarkMsg::Ready).await.expect("ready");
    member.tell(MarkMsg::Hit);
    probe.expect_msg(T).await;
    let member_task = log.lock()[0].1;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, member_task, "handed off into the group's task");
    assert!(!seen[0].0, "Context::group names a group for a non-member");
    system.shutdown(T).await;
}
