//! Failure containment: errors and panics are contained, the parent's directive is applied
//! (resume, restart, stop, escalate), restart builds fresh state behind the same ref, children are
//! stopped and timers cancelled on restart, and top-level actors follow the system default.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{ChildFailure, FailureKind, FailurePhase, RestartLimit, TerminationReason};

const T: Duration = Duration::from_secs(2);

/// Counts messages; fails on demand.
struct Worker {
    seen: u32,
    instance: u32,
    events: ActorRef<String>,
}

enum WorkerMsg {
    Work,
    Fail,
    Panic,
    Get(Reply<(u32, u32)>),
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        self.events.tell(format!("started {}", self.instance));
        Ok(())
    }
    async fn handle(&mut self, msg: WorkerMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            WorkerMsg::Work => self.seen += 1,
            WorkerMsg::Fail => return Err("worker refused".into()),
            WorkerMsg::Panic => panic!("worker exploded"),
            WorkerMsg::Get(r) => r.send((self.seen, self.instance)),
        }
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.events.tell(format!("stopped {}", self.instance));
    }
}

fn worker_props(events: ActorRef<String>) -> Props<Worker> {
    let instances = Arc::new(AtomicU32::new(0));
    Props::new(move || Worker {
        seen: 0,
        instance: instances.fetch_add(1, Ordering::SeqCst),
        events: events.clone(),
    })
}

/// A parent whose policy is fixed per test, reporting each failure it sees.
struct Parent {
    directive: Directive,
    child_props: Props<Worker>,
    child: Option<ActorRef<WorkerMsg>>,
    failures: ActorRef<ChildFailure>,
    fail_on_escalation_count: u32,
}

enum ParentMsg {
    Child(Reply<ActorRef<WorkerMsg>>),
    Children(Reply<usize>),
}

impl Actor for Parent {
    type Msg = ParentMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.child = Some(ctx.spawn(self.child_props.clone().name("worker"))?);
        Ok(())
    }
    async fn handle(&mut self, msg: ParentMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ParentMsg::Child(r) => {
                if let Some(c) = &self.child {
                    r.send(c.clone());
                }
            }
            ParentMsg::Children(r) => r.send(ctx.children().len()),
        }
        Ok(())
    }
    fn on_child_failure(&mut self, failure: &ChildFailure, _ctx: &mut Context<Self>) -> Directive {
        self.failures.tell(failure.clone());
        self.fail_on_escalation_count += 1;
        self.directive
    }
}

async fn setup(
    sys: &ActorSystem,
    directive: Directive,
) -> (
    ActorRef<ParentMsg>,
    ActorRef<WorkerMsg>,
    TestProbe<String>,
    TestProbe<ChildFailure>,
) {
    let events = TestProbe::<String>::new(sys);
    let failures = TestProbe::<ChildFailure>::new(sys);
    let props = worker_props(events.actor_ref());
    let fref = failures.actor_ref();
    let parent = sys
        .spawn(
            Props::new(move || Parent {
                directive,
                child_props: props.clone(),
                child: None,
                failures: fref.clone(),
                fail_on_escalation_count: 0,
            })
            .name("parent"),
        )
        .expect("spawn");
    let child = parent.ask(ParentMsg::Child).await.expect("child");
    (parent, child, events, failures)
}

async fn state(w: &ActorRef<WorkerMsg>) -> (u32, u32) {
    w.ask(WorkerMsg::Get).await.expect("answer")
}

#[tokio::test]
async fn resume_keeps_state_and_drops_the_failing_message() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (_p, w, mut events, mut failures) = setup(&sys, Directive::Resume).await;
    assert_eq!(events.expect_msg(T).await, "started 0");
    w.tell(WorkerMsg::Work);
    w.tell(WorkerMsg::Fail);
    w.tell(WorkerMsg::Work);
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.kind, FailureKind::Error);
    assert_eq!(f.failure.phase, FailurePhase::Message);
    assert_eq!(&*f.failure.message, "worker refused");
    assert_eq!(f.failure.actor.as_str(), "/user/parent/worker");
    assert_eq!(state(&w).await, (2, 0), "same instance, state kept");
    events.expect_no_msg(Duration::from_millis(50)).await;
    assert_eq!(w.stats().expect("local").failures, 1);
}

#[tokio::test]
async fn restart_builds_fresh_state_behind_the_same_ref() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (_p, w, mut events, mut failures) = setup(&sys, Directive::Restart).await;
    assert_eq!(events.expect_msg(T).await, "started 0");
    w.tell(WorkerMsg::Work);
    w.tell(WorkerMsg::Work);
    w.tell(WorkerMsg::Panic);
    // Sent after the panic, before the restart completes: processed by the new instance.
    w.tell(WorkerMsg::Work);
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.kind, FailureKind::Panic);
    assert_eq!(&*f.failure.message, "worker exploded");
    assert_eq!(f.restart_count, 0);
    assert_eq!(events.expect_msg(T).await, "started 1");
    assert_eq!(
        state(&w).await,
        (1, 1),
        "fresh state from the factory, queued message kept"
    );
    let stats = w.stats().expect("local");
    assert_eq!((stats.failures, stats.restarts), (1, 1));
    // The next failure reports the history.
    w.tell(WorkerMsg::Fail);
    assert_eq!(failures.expect_msg(T).await.restart_count, 1);
}

#[tokio::test]
async fn stop_directive_terminates_with_the_failure() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (p, w, mut events, mut failures) = setup(&sys, Directive::Stop).await;
    events.expect_msg(T).await;
    let mut probe = TestProbe::<()>::new(&sys);
    probe.watch(&w);
    w.tell(WorkerMsg::Fail);
    failures.expect_msg(T).await;
    let t = probe.expect_terminated(&w, T).await;
    match t.reason {
        TerminationReason::Failed(f) => assert_eq!(&*f.message, "worker refused"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(events.expect_msg(T).await, "stopped 0", "stopped hook runs");
    // The parent is unaffected and forgot the child.
    assert_eq!(p.ask(ParentMsg::Children).await, Ok(0));
}

#[tokio::test]
async fn escalate_fails_the_parent_and_grandparent_decides() {
    // Top-level parent escalates; the user guardian restarts it, which stops and respawns the
    // worker (the old worker's stopped hook runs).
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (p, w, mut events, mut failures) = setup(&sys, Directive::Escalate).await;
    assert_eq!(events.expect_msg(T).await, "started 0");
    let mut probe = TestProbe::<()>::new(&sys);
    probe.watch(&w);
    w.tell(WorkerMsg::Fail);
    failures.expect_msg(T).await;
    assert!(probe.expect_terminated(&w, T).await.reason.is_normal());
    assert_eq!(events.expect_msg(T).await, "stopped 0");
    assert_eq!(
        events.expect_msg(T).await,
        "started 1",
        "restarted parent spawned a new worker"
    );
    let parent_stats = p.stats().expect("local");
    assert_eq!((parent_stats.failures, parent_stats.restarts), (1, 1));
    let new_child = p.ask(ParentMsg::Child).await.expect("child");
    assert_ne!(new_child, w);
    assert_eq!(state(&new_child).await, (0, 1));
}

#[tokio::test]
async fn a_panic_never_takes_down_the_worker_or_another_actor() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let events = TestProbe::<String>::new(&sys);
    let bystander = sys.spawn(worker_props(events.actor_ref())).expect("spawn");
    let victim = sys.spawn(worker_props(events.actor_ref())).expect("spawn");
    for _ in 0..20 {
        victim.tell(WorkerMsg::Panic);
        bystander.tell(WorkerMsg::Work);
    }
    assert_eq!(state(&bystander).await.0, 20);
}

#[tokio::test(start_paused = true)]
async fn top_level_default_restarts_up_to_the_limit_then_stops() {
    let limit = RestartLimit {
        max_restarts: 3,
        within: Duration::from_secs(10),
    };
    let sys = ActorSystem::new(SystemConfig {
        default_supervision: limit,
        ..Default::default()
    })
    .expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let w = sys.spawn(worker_props(events.actor_ref())).expect("spawn");
    let mut probe = TestProbe::<()>::new(&sys);
    probe.watch(&w);
    assert_eq!(events.expect_msg(T).await, "started 0");
    for i in 1..=3 {
        w.tell(WorkerMsg::Fail);
        assert_eq!(events.expect_msg(T).await, format!("started {i}"));
    }
    w.tell(WorkerMsg::Fail);
    let t = probe.expect_terminated(&w, T).await;
    assert!(
        matches!(t.reason, TerminationReason::Failed(_)),
        "{:?}",
        t.reason
    );
    assert_eq!(w.stats().expect("local").restarts, 3);
}

/// The user guardian keeps its live children in numbered slots and reuses a stopped actor's slot:
/// a top-level actor in a reused slot is still found when it fails (and restarted), and so is
/// its neighbour; shutdown then finds every slot emptied.
#[tokio::test(start_paused = true)]
async fn top_level_actors_in_reused_guardian_slots_are_supervised() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let props = worker_props(events.actor_ref());
    let first = sys.spawn(props.clone()).expect("spawn");
    let second = sys.spawn(props.clone()).expect("spawn");
    for i in 0..2 {
        assert_eq!(events.expect_msg(T).await, format!("started {i}"));
    }
    first.stop();
    first.wait_for_stop().await;
    assert_eq!(events.expect_msg(T).await, "stopped 0");
    // Takes the first one's slot.
    let third = sys.spawn(props).expect("spawn");
    assert_eq!(events.expect_msg(T).await, "started 2");
    third.tell(WorkerMsg::Fail);
    assert_eq!(events.expect_msg(T).await, "started 3");
    second.tell(WorkerMsg::Panic);
    assert_eq!(events.expect_msg(T).await, "started 4");
    assert_eq!(third.stats().expect("local").restarts, 1);
    assert_eq!(second.stats().expect("local").restarts, 1);
    let report = sys.shutdown(T).await;
    assert!(report.is_graceful(), "{report:?}");
    assert_eq!(sys.actor_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_count() {
    let limit = RestartLimit {
        max_restarts: 2,
        within: Duration::from_secs(1),
    };
    let sys = ActorSystem::new(SystemConfig {
        default_supervision: limit,
        ..Default::default()
    })
    .expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let w = sys.spawn(worker_props(events.actor_ref())).expect("spawn");
    events.expect_msg(T).await;
    for i in 1..=6 {
        w.tell(WorkerMsg::Fail);
        assert_eq!(events.expect_msg(T).await, format!("started {i}"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(!w.is_terminated());
}

/// Fails in `started`: a start failure, reported with its phase.
struct BadStart;
impl Actor for BadStart {
    type Msg = ();
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        Err("database unavailable".into())
    }
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

struct Watchful {
    failures: ActorRef<ChildFailure>,
}
impl Actor for Watchful {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.spawn(Props::new(|| BadStart).name("db"))?;
        Ok(())
    }
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    fn on_child_failure(&mut self, f: &ChildFailure, _ctx: &mut Context<Self>) -> Directive {
        self.failures.tell(f.clone());
        Directive::Stop
    }
}

#[tokio::test]
async fn start_failures_are_reported_with_their_phase() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut failures = TestProbe::<ChildFailure>::new(&sys);
    let fref = failures.actor_ref();
    let _p = sys
        .spawn(Props::new(move || Watchful {
            failures: fref.clone(),
        }))
        .expect("spawn");
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.phase, FailurePhase::Start);
    assert_eq!(&*f.failure.message, "database unavailable");
    assert!(f.failure.actor.as_str().ends_with("/db"));
}

/// Restart stops the failed actor's children and cancels its timers.
struct Holder {
    events: ActorRef<String>,
}
enum HolderMsg {
    Tick,
    Fail,
}
impl Actor for Holder {
    type Msg = HolderMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let events = self.events.clone();
        let w = ctx.spawn(worker_props(events).name("inner"))?;
        self.events.tell(format!("child {}", w.id()));
        ctx.send_after("tick", Duration::from_secs(1), HolderMsg::Tick);
        Ok(())
    }
    async fn handle(&mut self, msg: HolderMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            HolderMsg::Tick => {
                self.events.tell("tick".to_owned());
                Ok(())
            }
            HolderMsg::Fail => Err("holder failed".into()),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn restart_stops_children_and_cancels_timers() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let eref = events.actor_ref();
    let h = sys
        .spawn(Props::new(move || Holder {
            events: eref.clone(),
        }))
        .expect("spawn");
    let first_child = events.expect_msg(T).await;
    assert_eq!(events.expect_msg(T).await, "started 0");
    h.tell(HolderMsg::Fail);
    assert_eq!(
        events.expect_msg(T).await,
        "stopped 0",
        "child stopped on parent restart"
    );
    let second_child = events.expect_msg(T).await;
    assert_ne!(
        first_child, second_child,
        "a new child was spawned by the new instance"
    );
    // The new Holder instance built new worker props, so its worker counts from 0 again.
    assert_eq!(events.expect_msg(T).await, "started 0");
    // Only the new instance's timer fires: the old one was cancelled.
    assert_eq!(events.expect_msg(Duration::from_secs(2)).await, "tick");
    events.expect_no_msg(Duration::from_secs(5)).await;
}
