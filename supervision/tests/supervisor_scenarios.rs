//! The supervision scenarios: crashing rooms under one-for-one, one-for-all, rest-for-one,
//! intensity and backoff, ordered shutdown, start failures, three-level escalation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{ChildFailure, FailureKind, FailurePhase};
use common::*;
use supervision::{Backoff, ChildSpec, Strategy, Supervisor, SupervisorApi, SupervisorMsg};
use tokio::time::Instant;

/// A room that panics on every third message it handles.
struct Room {
    instance: u32,
    handled: u32,
    out: ActorRef<(u32, u32)>,
}
enum RoomMsg {
    Say(u32),
}
impl Actor for Room {
    type Msg = RoomMsg;
    async fn handle(&mut self, msg: RoomMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let RoomMsg::Say(i) = msg;
        self.handled += 1;
        if self.handled == 3 {
            panic!("room instance {} crashed on message {i}", self.instance);
        }
        self.out.tell((self.instance, i));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_room_panicking_every_third_message_keeps_serving() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<(u32, u32)>::new(&sys);
    let out = probe.actor_ref();
    let instances = Arc::new(AtomicU32::new(0));
    let room_props = Props::new(move || Room {
        instance: instances.fetch_add(1, Ordering::SeqCst),
        handled: 0,
        out: out.clone(),
    });
    let sup = sys
        .spawn(
            Supervisor::builder(Strategy::OneForOne)
                .intensity(100, Duration::from_secs(1))
                .child(ChildSpec::new("room", room_props))
                .props()
                .name("rooms"),
        )
        .expect("spawn");
    // Answered once the supervisor has started its children.
    sup.which_children().await.expect("started");
    let room: ActorRef<RoomMsg> = sys.lookup("/user/rooms/room").expect("room");
    // All 30 are queued at once: most arrive while an instance is failing or restarting.
    for i in 0..30 {
        room.tell(RoomMsg::Say(i));
    }
    for i in (0..30).filter(|i| i % 3 != 2) {
        // Message i is handled by instance i / 3, never by a crashed one.
        assert_eq!(probe.expect_msg(T).await, (i / 3, i));
    }
    probe.expect_no_msg(Duration::from_millis(100)).await;
    let stats = room.stats().expect("local");
    assert_eq!((stats.failures, stats.restarts), (10, 10));
    assert_eq!(sys.dead_letter_count(), 0);
}

async fn three_children(
    sys: &ActorSystem,
    strategy: Strategy,
) -> (
    ActorRef<SupervisorMsg>,
    [ActorRef<ProbeMsg>; 3],
    TestProbe<String>,
) {
    let mut events = TestProbe::<String>::new(sys);
    let out = events.actor_ref();
    let sup = sys
        .spawn(
            Supervisor::builder(strategy)
                .child(ChildSpec::new("a", probe("a", &out)))
                .child(ChildSpec::new("b", probe("b", &out)))
                .child(ChildSpec::new("c", probe("c", &out)))
                .props()
                .name("sup"),
        )
        .expect("spawn");
    assert_eq!(
        expect_all(&mut events, 3).await,
        ["started a #0", "started b #0", "started c #0"]
    );
    let refs = ["a", "b", "c"].map(|n| {
        sys.lookup::<ProbeMsg>(&format!("/user/sup/{n}"))
            .expect("child")
    });
    for r in &refs {
        r.tell(ProbeMsg::Work);
    }
    // Every child has handled its work before a test makes one fail: messages to different
    // actors have no order, and an actor woken by another may run before tasks queued earlier.
    for r in &refs {
        assert_eq!(seen(r).await, (0, 1));
    }
    (sup, refs, events)
}

async fn seen(r: &ActorRef<ProbeMsg>) -> (u32, u32) {
    r.ask(ProbeMsg::Seen).await.expect("answer")
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_siblings_and_their_refs_keep_working() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (sup, [a, b, c], mut events) = three_children(&sys, Strategy::OneForAll).await;
    b.tell(ProbeMsg::Fail);
    // A restart runs pre_restart, not the stopped hook: only the new instances report.
    let mut got = expect_all(&mut events, 3).await;
    got.sort();
    assert_eq!(got, ["started a #1", "started b #1", "started c #1"]);
    events.expect_no_msg(Duration::from_millis(100)).await;
    // Same refs, fresh state.
    for r in [&a, &b, &c] {
        assert_eq!(seen(r).await, (1, 0));
    }
    let report = sup.which_children().await.expect("report");
    assert_eq!(
        report.iter().map(|c| c.restarts).collect::<Vec<_>>(),
        [1, 1, 1]
    );
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_only_later_children() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (_sup, [a, b, c], mut events) = three_children(&sys, Strategy::RestForOne).await;
    b.tell(ProbeMsg::Fail);
    let mut got = expect_all(&mut events, 2).await;
    got.sort();
    assert_eq!(got, ["started b #1", "started c #1"]);
    events.expect_no_msg(Duration::from_millis(100)).await;
    assert_eq!(seen(&a).await, (0, 1), "a kept its state");
    assert_eq!(seen(&b).await, (1, 0));
    assert_eq!(seen(&c).await, (1, 0));
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (_sup, [a, b, c], mut events) = three_children(&sys, Strategy::OneForOne).await;
    c.tell(ProbeMsg::Fail);
    assert_eq!(events.expect_msg(T).await, "started c #1");
    events.expect_no_msg(Duration::from_millis(100)).await;
    assert_eq!(
        (seen(&a).await, seen(&b).await, seen(&c).await),
        ((0, 1), (0, 1), (1, 0))
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_failing_on_every_start_trips_the_intensity_and_escalates() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let mut failures = TestProbe::<ChildFailure>::new(&sys);
    let out = events.actor_ref();
    let sup_props = Supervisor::builder(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .child(ChildSpec::new(
            "flaky",
            probe_failing("flaky", &out, Some(1)),
        ))
        .props()
        .name("sup");
    let fref = failures.actor_ref();
    sys.spawn(
        Props::new(move || Reporter {
            child: sup_props.clone(),
            failures: fref.clone(),
            directive: Directive::Stop,
        })
        .name("top"),
    )
    .expect("spawn");
    assert_eq!(events.expect_msg(T).await, "started flaky #0");
    let flaky: ActorRef<ProbeMsg> = sys.lookup("/user/top/sup/flaky").expect("flaky");
    flaky.tell(ProbeMsg::Fail);
    // Three restarts are allowed; each fails in started.
    for i in 1..=3 {
        assert_eq!(
            events.expect_msg(T).await,
            format!("start-failed flaky #{i}")
        );
    }
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.kind, FailureKind::Escalated);
    assert!(
        f.failure.actor.as_str().ends_with("/sup"),
        "{}",
        f.failure.actor
    );
    assert!(
        f.failure.message.contains("flaky cannot start"),
        "{}",
        f.failure.message
    );
    // The supervisor shuts its children down before it stops.
    assert_eq!(events.expect_msg(T).await, "stopped flaky #3");
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_grow_and_are_bounded() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    sys.spawn(
        Supervisor::builder(Strategy::OneForOne)
            .intensity(100, Duration::from_secs(60))
            .backoff(
                Backoff::new(Duration::from_millis(100), Duration::from_millis(400)).jitter(0.0),
            )
            .child(ChildSpec::new(
                "flaky",
                probe_failing("flaky", &out, Some(1)),
            ))
            .props()
            .name("sup"),
    )
    .expect("spawn");
    assert_eq!(events.expect_msg(T).await, "started flaky #0");
    let flaky: ActorRef<ProbeMsg> = sys.lookup("/user/sup/flaky").expect("child");
    let mut last = Instant::now();
    flaky.tell(ProbeMsg::Fail);
    let mut gaps = Vec::new();
    for _ in 0..6 {
        events.expect_msg(T).await;
        let now = Instant::now();
        gaps.push(now - last);
        last = now;
    }
    let ms = |n| Duration::from_millis(n);
    assert_eq!(gaps, [ms(100), ms(200), ms(400), ms(400), ms(400), ms(400)]);
    // While it waits, its ref stays valid and its mailbox keeps messages.
    flaky.tell(ProbeMsg::Work);
    assert!(!flaky.is_terminated());
    assert_eq!(flaky.stats().expect("local").mailbox_depth, 1);
}

#[tokio::test(start_paused = true)]
async fn shutting_the_tree_down_stops_children_in_reverse_start_order() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (_sup, _refs, mut events) = three_children(&sys, Strategy::OneForOne).await;
    let report = sys.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_graceful());
    assert_eq!(
        expect_all(&mut events, 3).await,
        ["stopped c #0", "stopped b #0", "stopped a #0"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start_naming_it() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let mut failures = TestProbe::<ChildFailure>::new(&sys);
    let out = events.actor_ref();
    let sup_props = Supervisor::builder(Strategy::OneForOne)
        .child(ChildSpec::new("a", probe("a", &out)))
        .child(ChildSpec::new("b", probe_failing("b", &out, Some(0))))
        .child(ChildSpec::new("c", probe("c", &out)))
        .props()
        .name("sup");
    let fref = failures.actor_ref();
    sys.spawn(Props::new(move || Reporter {
        child: sup_props.clone(),
        failures: fref.clone(),
        directive: Directive::Stop,
    }))
    .expect("spawn");
    assert_eq!(
        expect_all(&mut events, 3).await,
        ["started a #0", "start-failed b #0", "stopped a #0"]
    );
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.phase, FailurePhase::Start);
    assert!(
        f.failure.message.contains("child \"b\" failed to start"),
        "{}",
        f.failure.message
    );
    assert!(
        f.failure.message.contains("b cannot start"),
        "{}",
        f.failure.message
    );
    events.expect_no_msg(Duration::from_millis(100)).await;
}

/// L1 (intensity 10) > L2 (intensity `l2`) > L3 (intensity 0: any failure escalates) > worker.
async fn three_levels(sys: &ActorSystem, l2: u32) -> TestProbe<String> {
    let mut events = TestProbe::<String>::new(sys);
    let out = events.actor_ref();
    let l3 = Supervisor::builder(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(5))
        .child(ChildSpec::new("worker", probe("worker", &out)))
        .props();
    let l2 = Supervisor::builder(Strategy::OneForOne)
        .intensity(l2, Duration::from_secs(5))
        .child(ChildSpec::new("l3", l3))
        .props();
    sys.spawn(
        Supervisor::builder(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(5))
            .child(ChildSpec::new("l2", l2))
            .props()
            .name("l1"),
    )
    .expect("spawn");
    assert_eq!(events.expect_msg(T).await, "started worker #0");
    events
}

fn restarts(sys: &ActorSystem, path: &str) -> u32 {
    sys.lookup::<SupervisorMsg>(path)
        .expect("supervisor")
        .stats()
        .expect("local")
        .restarts
}

#[tokio::test(start_paused = true)]
async fn escalation_stops_at_the_first_level_whose_intensity_holds() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = three_levels(&sys, 1).await;
    let worker: ActorRef<ProbeMsg> = sys.lookup("/user/l1/l2/l3/worker").expect("worker");
    worker.tell(ProbeMsg::Fail);
    // L3 gives up at once; L2 restarts L3 (its first restart), which starts a fresh worker.
    assert_eq!(
        expect_all(&mut events, 2).await,
        ["stopped worker #0", "started worker #1"]
    );
    assert_eq!(restarts(&sys, "/user/l1/l2/l3"), 1);
    assert_eq!(
        restarts(&sys, "/user/l1/l2"),
        0,
        "L2's intensity held: L1 never heard of it"
    );
    assert_eq!(restarts(&sys, "/user/l1"), 0);

    // A second failure within the window: L2 exceeds its intensity (1) and escalates; L1 restarts
    // L2, which builds a fresh L3 and worker.
    let worker: ActorRef<ProbeMsg> = sys.lookup("/user/l1/l2/l3/worker").expect("worker");
    worker.tell(ProbeMsg::Fail);
    assert_eq!(
        expect_all(&mut events, 2).await,
        ["stopped worker #1", "started worker #2"]
    );
    assert_eq!(restarts(&sys, "/user/l1/l2"), 1);
    assert_eq!(restarts(&sys, "/user/l1"), 0);
    let l1: ActorRef<SupervisorMsg> = sys.lookup("l1").expect("l1");
    assert_eq!(l1.which_children().await.expect("report")[0].restarts, 1);
}
