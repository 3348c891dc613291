//! Parent-side control of children: wait for a child's start, shut a child down within a
//! timeout (then kill), and `pre_stop` running while the children still live.

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{StartError, TerminationReason};

const T: Duration = Duration::from_secs(5);

struct Child {
    fail_start: bool,
    hang_on_stop: bool,
    out: ActorRef<String>,
}
impl Actor for Child {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if self.fail_start {
            return Err(format!("{} cannot start", ctx.path().name()).into());
        }
        self.out.tell(format!("started {}", ctx.path().name()));
        Ok(())
    }
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    async fn stopped(&mut self, ctx: &mut Context<Self>) {
        if self.hang_on_stop {
            std::future::pending::<()>().await;
        }
        self.out.tell(format!("stopped {}", ctx.path().name()));
    }
}

struct Parent {
    out: ActorRef<String>,
}
enum ParentMsg {
    Start(&'static str, bool, bool, Reply<Result<(), String>>),
    Shutdown(
        &'static str,
        Option<Duration>,
        Reply<Option<TerminationReason>>,
    ),
}
impl Actor for Parent {
    type Msg = ParentMsg;
    async fn handle(&mut self, msg: ParentMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ParentMsg::Start(name, fail_start, hang_on_stop, r) => {
                let out = self.out.clone();
                let props = Props::new(move || Child {
                    fail_start,
                    hang_on_stop,
                    out: out.clone(),
                })
                .name(name);
                let res = ctx.spawn_and_wait_started(props).await;
                self.out.tell(format!("spawn returned for {name}"));
                r.send(res.map(|_| ()).map_err(|e| e.to_string()));
            }
            ParentMsg::Shutdown(name, timeout, r) => {
                let id = ctx
                    .children()
                    .into_iter()
                    .find(|c| c.path.name() == name)
                    .map(|c| c.id);
                let res = match id {
                    Some(id) => ctx.shutdown_child(id, timeout).await,
                    None => None,
                };
                r.send(res);
            }
        }
        Ok(())
    }
    async fn pre_stop(&mut self, ctx: &mut Context<Self>) {
        // Children still run here; stop them in reverse start order, one at a time.
        let children = ctx.children();
        self.out
            .tell(format!("pre_stop with {} children", children.len()));
        for c in children.into_iter().rev() {
            ctx.shutdown_child(c.id, Some(Duration::from_secs(1))).await;
        }
    }
    fn on_child_failure(
        &mut self,
        _f: &actor_core::ChildFailure,
        _ctx: &mut Context<Self>,
    ) -> Directive {
        Directive::Stop
    }
}

#[tokio::test(start_paused = true)]
async fn spawn_and_wait_started_reports_success_and_start_failures() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let p = sys
        .spawn(Props::new(move || Parent { out: out.clone() }))
        .expect("spawn");
    assert_eq!(
        p.ask(|r| ParentMsg::Start("a", false, false, r)).await,
        Ok(Ok(()))
    );
    assert_eq!(
        probe.expect_msg(T).await,
        "started a",
        "start completed before spawn returned"
    );
    assert_eq!(probe.expect_msg(T).await, "spawn returned for a");
    let err = p
        .ask(|r| ParentMsg::Start("b", true, false, r))
        .await
        .expect("reply");
    let msg = err.expect_err("start failure");
    assert!(
        msg.contains("/user/") && msg.contains("b cannot start"),
        "{msg}"
    );
    assert_eq!(probe.expect_msg(T).await, "spawn returned for b");
}

#[tokio::test(start_paused = true)]
async fn shutdown_child_is_graceful_within_timeout_then_kills() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let p = sys
        .spawn(Props::new(move || Parent { out: out.clone() }))
        .expect("spawn");
    p.ask(|r| ParentMsg::Start("ok", false, false, r))
        .await
        .expect("reply")
        .expect("started");
    p.ask(|r| ParentMsg::Start("stuck", false, true, r))
        .await
        .expect("reply")
        .expect("started");
    for _ in 0..4 {
        probe.expect_msg(T).await;
    }
    let graceful = p
        .ask(|r| ParentMsg::Shutdown("ok", Some(Duration::from_secs(1)), r))
        .await;
    assert!(
        matches!(graceful, Ok(Some(TerminationReason::Stopped))),
        "{graceful:?}"
    );
    assert_eq!(probe.expect_msg(T).await, "stopped ok");
    let t0 = tokio::time::Instant::now();
    let killed = p
        .ask_timeout(
            |r| ParentMsg::Shutdown("stuck", Some(Duration::from_secs(2)), r),
            T,
        )
        .await;
    assert!(
        matches!(killed, Ok(Some(TerminationReason::Killed))),
        "{killed:?}"
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert!(matches!(
        p.ask(|r| ParentMsg::Shutdown("gone", None, r)).await,
        Ok(None)
    ));
}

#[tokio::test(start_paused = true)]
async fn pre_stop_runs_while_children_live_and_can_order_their_shutdown() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let p = sys
        .spawn(Props::new(move || Parent { out: out.clone() }))
        .expect("spawn");
    for name in ["first", "second", "third"] {
        p.ask(|r| ParentMsg::Start(name, false, false, r))
            .await
            .expect("reply")
            .expect("started");
        probe.expect_msg(T).await;
        probe.expect_msg(T).await;
    }
    p.stop();
    p.wait_for_stop().await;
    assert_eq!(probe.expect_msg(T).await, "pre_stop with 3 children");
    assert_eq!(probe.expect_msg(T).await, "stopped third");
    assert_eq!(probe.expect_msg(T).await, "stopped second");
    assert_eq!(probe.expect_msg(T).await, "stopped first");
}

#[tokio::test(start_paused = true)]
async fn system_spawn_and_wait_started_waits_for_started() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let t0 = tokio::time::Instant::now();
    let ok = sys
        .spawn_and_wait_started(
            Props::new(move || Child {
                fail_start: false,
                hang_on_stop: false,
                out: out.clone(),
            })
            .name("slow"),
        )
        .await
        .expect("started");
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(100),
        "returned after started finished"
    );
    assert_eq!(probe.expect_msg(T).await, "started slow");
    assert_eq!(ok.path().as_str(), "/user/slow");
    let out = probe.actor_ref();
    match sys
        .spawn_and_wait_started(
            Props::new(move || Child {
                fail_start: true,
                hang_on_stop: false,
                out: out.clone(),
            })
            .name("bad"),
        )
        .await
    {
        Err(StartError::Failed(f)) => assert!(f.message.contains("bad cannot start")),
        other => panic!(
            "expected a start failure, got {:?}",
            other.map(|r| r.path())
        ),
    }
}
