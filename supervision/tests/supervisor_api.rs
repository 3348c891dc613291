//! Run-time control of supervisors (start, terminate, restart, delete, list), restart types on
//! normal stops and failures, the dynamic supervisor, and strategies used by plain actors.

mod common;

use std::time::Duration;

use actor_core::ChildFailure;
use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use common::*;
use supervision::{
    ChildSpec, ChildStatus, DynamicSupervisor, DynamicSupervisorApi, RestartType, Strategy,
    SupervisionStrategy, Supervisor, SupervisorApi, SupervisorError,
};

fn empty_supervisor(sys: &ActorSystem) -> ActorRef<supervision::SupervisorMsg> {
    sys.spawn(Supervisor::builder(Strategy::OneForOne).props().name("sup"))
        .expect("spawn")
}

#[tokio::test(start_paused = true)]
async fn start_terminate_restart_delete_and_list_children() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let sup = empty_supervisor(&sys);
    let path = sup
        .start_child(ChildSpec::new("a", probe("a", &out)))
        .await
        .expect("start a");
    assert_eq!(path.as_str(), "/user/sup/a");
    sup.start_child(ChildSpec::new("b", probe("b", &out)))
        .await
        .expect("start b");
    assert!(matches!(
        sup.start_child(ChildSpec::new("a", probe("a", &out))).await,
        Err(SupervisorError::AlreadyPresent(id)) if id == "a"
    ));
    assert_eq!(
        expect_all(&mut events, 2).await,
        ["started a #0", "started b #0"]
    );

    let report = sup.which_children().await.expect("report");
    assert_eq!(
        report
            .iter()
            .map(|c| (c.id.as_str(), c.status))
            .collect::<Vec<_>>(),
        [("a", ChildStatus::Running), ("b", ChildStatus::Running)]
    );

    sup.terminate_child("a").await.expect("terminate");
    assert_eq!(events.expect_msg(T).await, "stopped a #0");
    assert!(sys.lookup::<ProbeMsg>("/user/sup/a").is_err());
    let report = sup.which_children().await.expect("report");
    assert_eq!(report[0].status, ChildStatus::Stopped);
    assert!(report[0].path.is_none());

    // Restart a stopped child: started again from its spec, found at the same path.
    sup.restart_child("a").await.expect("restart");
    assert_eq!(events.expect_msg(T).await, "started a #1");
    assert!(sys.lookup::<ProbeMsg>("/user/sup/a").is_ok());
    // Restart a running child: in place, same ref.
    let b: ActorRef<ProbeMsg> = sys.lookup("/user/sup/b").expect("b");
    sup.restart_child("b").await.expect("restart");
    assert_eq!(events.expect_msg(T).await, "started b #1");
    assert_eq!(b.ask(ProbeMsg::Seen).await.expect("b answers"), (1, 0));

    assert!(matches!(
        sup.delete_child("b").await,
        Err(SupervisorError::Running(_))
    ));
    sup.terminate_child("b").await.expect("terminate");
    events.expect_msg(T).await;
    sup.delete_child("b").await.expect("delete");
    assert!(matches!(
        sup.delete_child("b").await,
        Err(SupervisorError::NotFound(_))
    ));
    assert!(matches!(
        sup.terminate_child("zz").await,
        Err(SupervisorError::NotFound(_))
    ));
    let ids: Vec<String> = sup
        .which_children()
        .await
        .expect("report")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a"]);

    // A child that cannot start is refused with its name and not kept.
    let err = sup
        .start_child(ChildSpec::new("bad", probe_failing("bad", &out, Some(0))))
        .await;
    match err {
        Err(SupervisorError::StartFailed { id, reason }) => {
            assert_eq!(id, "bad");
            assert!(reason.contains("bad cannot start"), "{reason}");
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    assert_eq!(sup.which_children().await.expect("report").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn restart_types_on_normal_stop_and_on_failure() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let sup = sys
        .spawn(
            Supervisor::builder(Strategy::OneForOne)
                .child(ChildSpec::new("perm", probe("perm", &out)))
                .child(
                    ChildSpec::new("trans", probe("trans", &out)).restart(RestartType::Transient),
                )
                .child(ChildSpec::new("temp", probe("temp", &out)).restart(RestartType::Temporary))
                .child(
                    ChildSpec::new("temp2", probe("temp2", &out)).restart(RestartType::Temporary),
                )
                .props()
                .name("sup"),
        )
        .expect("spawn");
    expect_all(&mut events, 4).await;
    let get = |n: &str| {
        sys.lookup::<ProbeMsg>(&format!("/user/sup/{n}"))
            .expect("child")
    };

    // Normal stops: permanent comes back (a new actor at the same path), transient stays
    // stopped, temporary is removed.
    let perm = get("perm");
    perm.tell(ProbeMsg::StopSelf);
    assert_eq!(
        expect_all(&mut events, 2).await,
        ["stopped perm #0", "started perm #1"]
    );
    assert_ne!(get("perm").id(), perm.id());
    get("trans").tell(ProbeMsg::StopSelf);
    assert_eq!(events.expect_msg(T).await, "stopped trans #0");
    get("temp").tell(ProbeMsg::StopSelf);
    assert_eq!(events.expect_msg(T).await, "stopped temp #0");

    // Failures: transient restarts in place; temporary is stopped and removed.
    let trans_report = || async { sup.which_children().await.expect("report") };
    sup.restart_child("trans").await.expect("start trans again");
    assert_eq!(events.expect_msg(T).await, "started trans #1");
    get("trans").tell(ProbeMsg::Fail);
    assert_eq!(events.expect_msg(T).await, "started trans #2");
    get("temp2").tell(ProbeMsg::Fail);
    assert_eq!(events.expect_msg(T).await, "stopped temp2 #0");
    events.expect_no_msg(Duration::from_millis(100)).await;
    let report = trans_report().await;
    let summary: Vec<_> = report
        .iter()
        .map(|c| (c.id.as_str(), c.status, c.restarts))
        .collect();
    assert_eq!(
        summary,
        [
            ("perm", ChildStatus::Running, 1),
            ("trans", ChildStatus::Running, 2)
        ]
    );
}

struct Room {
    id: u32,
    out: ActorRef<String>,
}
enum RoomMsg {
    Crash,
    End,
    Id(Reply<u32>),
}
impl Actor for Room {
    type Msg = RoomMsg;
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        if self.id == 13 {
            return Err("unlucky room".into());
        }
        self.out.tell(format!("room {} up", self.id));
        Ok(())
    }
    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Crash => panic!("room {} crashed", self.id),
            RoomMsg::End => ctx.stop(),
            RoomMsg::Id(r) => r.send(self.id),
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_supervisor_runs_a_fleet_of_rooms() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let rooms = sys
        .spawn(
            DynamicSupervisor::builder(move |id: u32| {
                let out = out.clone();
                Props::new(move || Room {
                    id,
                    out: out.clone(),
                })
                .name(format!("room-{id}"))
            })
            .intensity(2, Duration::from_secs(10))
            .max_children(3)
            .props()
            .name("rooms"),
        )
        .expect("spawn");
    let r1 = rooms.start_child(1).await.expect("room 1");
    let r2 = rooms.start_child(2).await.expect("room 2");
    assert_eq!(expect_all(&mut events, 2).await, ["room 1 up", "room 2 up"]);
    assert_eq!(r1.path().as_str(), "/user/rooms/room-1");

    match rooms.start_child(13).await {
        Err(SupervisorError::StartFailed { id, reason }) => {
            assert_eq!(id, "/user/rooms/room-13");
            assert!(reason.contains("unlucky room"), "{reason}");
        }
        other => panic!("expected StartFailed, got {:?}", other.map(|r| r.path())),
    }
    rooms.start_child(3).await.expect("room 3");
    events.expect_msg(T).await;
    assert!(matches!(
        rooms.start_child(4).await,
        Err(SupervisorError::TooManyChildren(3))
    ));

    // A crash restarts the room behind the same ref; the others are untouched.
    r1.tell(RoomMsg::Crash);
    assert_eq!(events.expect_msg(T).await, "room 1 up");
    assert_eq!(r1.ask(RoomMsg::Id).await, Ok(1));
    // Per-child intensity: room 1 crashes past its limit and is given up on; the fleet goes on.
    r1.tell(RoomMsg::Crash);
    assert_eq!(events.expect_msg(T).await, "room 1 up");
    let mut watch = TestProbe::<()>::new(&sys);
    watch.watch(&r1);
    r1.tell(RoomMsg::Crash);
    watch.expect_terminated(&r1, T).await;
    assert_eq!(r2.ask(RoomMsg::Id).await, Ok(2));

    // A room that ends its match normally is gone (transient).
    r2.tell(RoomMsg::End);
    r2.wait_for_stop().await;
    let left: Vec<String> = rooms
        .children()
        .await
        .expect("children")
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert_eq!(left, ["/user/rooms/room-3"]);
    let r3 = sys.lookup::<RoomMsg>("/user/rooms/room-3").expect("room 3");
    assert!(rooms.terminate_child(r3.id()).await.expect("answer"));
    assert!(!rooms.terminate_child(r3.id()).await.expect("answer"));
    assert!(rooms.children().await.expect("children").is_empty());
}

#[tokio::test(start_paused = true)]
async fn dynamic_supervisor_restarts_permanent_children_that_end() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let rooms = sys
        .spawn(
            DynamicSupervisor::builder(move |id: u32| {
                let out = out.clone();
                Props::new(move || Room {
                    id,
                    out: out.clone(),
                })
                .name(format!("room-{id}"))
            })
            .restart(RestartType::Permanent)
            .props()
            .name("rooms"),
        )
        .expect("spawn");
    let r5 = rooms.start_child(5).await.expect("room 5");
    events.expect_msg(T).await;
    r5.tell(RoomMsg::End);
    assert_eq!(events.expect_msg(T).await, "room 5 up", "started again");
    let again = sys
        .lookup::<RoomMsg>("/user/rooms/room-5")
        .expect("same path");
    assert_ne!(again.id(), r5.id());
    assert_eq!(rooms.children().await.expect("children"), vec![again]);
}

/// A plain actor (not a Supervisor) using a strategy over its own children.
struct Match {
    policy: SupervisionStrategy,
    out: ActorRef<String>,
}
impl Actor for Match {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for name in ["p1", "p2", "p3"] {
            ctx.spawn(probe(name, &self.out).name(name))?;
        }
        Ok(())
    }
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
        self.policy.on_child_failure(failure, ctx)
    }
}

#[tokio::test(start_paused = true)]
async fn any_actor_can_use_a_strategy_over_its_children() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let policy = SupervisionStrategy::one_for_all().intensity(1, Duration::from_secs(5));
    let mut failures = TestProbe::<ChildFailure>::new(&sys);
    let fref = failures.actor_ref();
    let match_props = Props::new(move || Match {
        policy: policy.clone(),
        out: out.clone(),
    })
    .name("match");
    sys.spawn(
        Props::new(move || Reporter {
            child: match_props.clone(),
            failures: fref.clone(),
            directive: Directive::Stop,
        })
        .name("top"),
    )
    .expect("spawn");
    expect_all(&mut events, 3).await;
    let p2: ActorRef<ProbeMsg> = sys.lookup("/user/top/match/p2").expect("p2");
    p2.tell(ProbeMsg::Fail);
    let mut got = expect_all(&mut events, 3).await;
    got.sort();
    assert_eq!(got, ["started p1 #1", "started p2 #1", "started p3 #1"]);
    // Intensity 1: the second failure escalates the match to its parent.
    p2.tell(ProbeMsg::Fail);
    let f = failures.expect_msg(T).await;
    assert_eq!(f.failure.actor.as_str(), "/user/top/match");
    assert!(
        f.failure.message.contains("p2 failed"),
        "{}",
        f.failure.message
    );
}

/// A child whose stopped hook never returns.
struct Stuck {
    out: ActorRef<String>,
}
impl Actor for Stuck {
    type Msg = ();
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.out.tell("stuck stopping".into());
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn per_child_shutdown_timeout_then_kill_or_kill_at_once() {
    use supervision::Shutdown;
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut events = TestProbe::<String>::new(&sys);
    let out = events.actor_ref();
    let stuck_out = out.clone();
    let sup = sys
        .spawn_and_wait_started(
            Supervisor::builder(Strategy::OneForOne)
                .child(ChildSpec::new("killed", probe("killed", &out)).shutdown(Shutdown::Kill))
                .child(
                    ChildSpec::new(
                        "stuck",
                        Props::new(move || Stuck {
                            out: stuck_out.clone(),
                        }),
                    )
                    .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
                )
                .props()
                .name("sup"),
        )
        .await
        .expect("started");
    assert_eq!(events.expect_msg(T).await, "started killed #0");
    let killed: ActorRef<ProbeMsg> = sys.lookup("/user/sup/killed").expect("child");
    let stuck: ActorRef<()> = sys.lookup("/user/sup/stuck").expect("child");

    // Kill at once: the stopped hook does not run.
    sup.terminate_child("killed").await.expect("terminate");
    assert!(matches!(
        killed.wait_for_stop().await,
        actor_core::TerminationReason::Killed
    ));
    events.expect_no_msg(Duration::from_millis(100)).await;

    // Graceful within 2 s: the hook starts, hangs, and the child is killed at the deadline.
    let t0 = tokio::time::Instant::now();
    sup.terminate_child("stuck").await.expect("terminate");
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(events.expect_msg(T).await, "stuck stopping");
    assert!(matches!(
        stuck.wait_for_stop().await,
        actor_core::TerminationReason::Killed
    ));
    let report = sup.which_children().await.expect("report");
    assert!(report.iter().all(|c| c.status == ChildStatus::Stopped));
}
