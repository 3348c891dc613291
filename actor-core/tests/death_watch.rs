//! Death watch: Terminated with the reason for every way of ending, watching the dead, unwatch,
//! and awaiting an actor's end from non-actor code.

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{Terminated, TerminationReason};

const T: Duration = Duration::from_secs(2);

struct Target;
enum TargetMsg {
    Fail,
    Hang,
}
impl Actor for Target {
    type Msg = TargetMsg;
    async fn handle(&mut self, msg: TargetMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            TargetMsg::Fail => Err("boom".into()),
            TargetMsg::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

/// Watches whatever it is told to and reports `Terminated` signals.
struct Watcher {
    out: ActorRef<Terminated>,
}
enum WatcherMsg {
    Watch(ActorRef<TargetMsg>, Reply<()>),
    Unwatch(ActorRef<TargetMsg>, Reply<()>),
}
impl Actor for Watcher {
    type Msg = WatcherMsg;
    async fn handle(&mut self, msg: WatcherMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            WatcherMsg::Watch(r, reply) => {
                ctx.watch(&r);
                reply.send(());
            }
            WatcherMsg::Unwatch(r, reply) => {
                ctx.unwatch(r.id());
                reply.send(());
            }
        }
        Ok(())
    }
    async fn on_signal(&mut self, signal: Signal, _ctx: &mut Context<Self>) -> ActorResult {
        if let Signal::Terminated(t) = signal {
            self.out.tell(t);
        }
        Ok(())
    }
}

fn setup(sys: &ActorSystem) -> (ActorRef<WatcherMsg>, TestProbe<Terminated>) {
    let probe = TestProbe::<Terminated>::new(sys);
    let out = probe.actor_ref();
    let w = sys
        .spawn(Props::new(move || Watcher { out: out.clone() }))
        .expect("spawn");
    (w, probe)
}

fn config_stop_on_failure() -> SystemConfig {
    SystemConfig {
        default_supervision: actor_core::RestartLimit {
            max_restarts: 0,
            within: Duration::from_secs(1),
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn terminated_carries_the_reason_for_stop_failure_and_kill() {
    let sys = ActorSystem::new(config_stop_on_failure()).expect("rt");
    let (w, mut probe) = setup(&sys);
    let a = sys.spawn(Props::new(|| Target).name("a")).expect("spawn");
    let b = sys.spawn(Props::new(|| Target).name("b")).expect("spawn");
    let c = sys.spawn(Props::new(|| Target).name("c")).expect("spawn");
    for r in [&a, &b, &c] {
        w.ask(|reply| WatcherMsg::Watch(r.clone(), reply))
            .await
            .expect("watch");
    }
    a.stop();
    let t = probe.expect_msg(T).await;
    assert_eq!((t.id, t.path.as_str()), (a.id(), "/user/a"));
    assert!(t.reason.is_normal());

    b.tell(TargetMsg::Fail);
    let t = probe.expect_msg(T).await;
    assert_eq!(t.id, b.id());
    assert!(
        matches!(&t.reason, TerminationReason::Failed(f) if &*f.message == "boom"),
        "{:?}",
        t.reason
    );

    c.tell(TargetMsg::Hang);
    c.kill();
    let t = probe.expect_msg(T).await;
    assert_eq!(t.id, c.id());
    assert!(matches!(t.reason, TerminationReason::Killed));
    probe.expect_no_msg(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn watching_a_dead_actor_signals_at_once() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (w, mut probe) = setup(&sys);
    let a = sys.spawn(Props::new(|| Target)).expect("spawn");
    a.stop();
    assert!(a.wait_for_stop().await.is_normal());
    w.ask(|reply| WatcherMsg::Watch(a.clone(), reply))
        .await
        .expect("watch");
    assert_eq!(probe.expect_msg(T).await.id, a.id());
}

#[tokio::test]
async fn unwatch_suppresses_terminated() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (w, mut probe) = setup(&sys);
    let a = sys.spawn(Props::new(|| Target)).expect("spawn");
    let b = sys.spawn(Props::new(|| Target)).expect("spawn");
    w.ask(|reply| WatcherMsg::Watch(a.clone(), reply))
        .await
        .expect("watch");
    w.ask(|reply| WatcherMsg::Watch(b.clone(), reply))
        .await
        .expect("watch");
    w.ask(|reply| WatcherMsg::Unwatch(a.clone(), reply))
        .await
        .expect("unwatch");
    a.stop();
    b.stop();
    assert_eq!(probe.expect_msg(T).await.id, b.id(), "only b is reported");
    probe.expect_no_msg(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn non_actor_code_awaits_the_end() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let a = sys.spawn(Props::new(|| Target)).expect("spawn");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.wait_for_stop().await })
    };
    assert!(!a.is_terminated());
    a.kill();
    assert!(matches!(
        waiter.await.expect("join"),
        TerminationReason::Killed
    ));
    assert!(a.is_terminated());
    // Awaiting after the fact returns at once.
    assert!(matches!(a.wait_for_stop().await, TerminationReason::Killed));
}

#[tokio::test]
async fn a_stopped_watcher_is_not_notified_and_leaves_no_trace() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (w, mut probe) = setup(&sys);
    let a = sys.spawn(Props::new(|| Target)).expect("spawn");
    w.ask(|reply| WatcherMsg::Watch(a.clone(), reply))
        .await
        .expect("watch");
    w.stop();
    w.wait_for_stop().await;
    a.stop();
    a.wait_for_stop().await;
    probe.expect_no_msg(Duration::from_millis(100)).await;
}
