//! ActorRef: tell, ask (default and per-call timeouts, typed errors), late replies, adapters.

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::{AskError, DeadLetterReason, TrySendError};

#[derive(Default)]
struct Counter {
    total: i64,
}

enum CounterMsg {
    Add(i64),
    Get(Reply<i64>),
    /// The actor's own answer can be an error: it is kept apart from delivery errors.
    Withdraw(i64, Reply<Result<i64, String>>),
    /// Never answers within a reasonable time.
    Slow(Duration, Reply<i64>),
    /// Drops the reply port without answering.
    Ignore(Reply<i64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            CounterMsg::Add(n) => self.total += n,
            CounterMsg::Get(r) => r.send(self.total),
            CounterMsg::Withdraw(n, r) => {
                if n > self.total {
                    r.send(Err(format!("insufficient: {} < {n}", self.total)));
                } else {
                    self.total -= n;
                    r.send(Ok(self.total));
                }
            }
            CounterMsg::Slow(d, r) => {
                tokio::time::sleep(d).await;
                r.send(self.total);
            }
            CounterMsg::Ignore(_r) => {}
        }
        Ok(())
    }
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

#[test]
fn actor_ref_is_send_sync_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<ActorRef<CounterMsg>>();
    assert_send_sync_clone::<ActorRef<String>>();
    assert_send_sync_clone::<ActorSystem>();
    fn assert_send<T: Send>() {}
    assert_send::<Reply<String>>();
}

#[tokio::test]
async fn tell_then_ask_sees_all_tells_in_order() {
    let sys = system();
    let c = sys.spawn(Props::new(Counter::default)).expect("spawn");
    for i in 1..=100 {
        c.tell(CounterMsg::Add(i));
    }
    assert_eq!(c.ask(CounterMsg::Get).await, Ok(5050));
}

#[tokio::test]
async fn actor_error_is_apart_from_delivery_error() {
    let sys = system();
    let c = sys.spawn(Props::new(Counter::default)).expect("spawn");
    c.tell(CounterMsg::Add(10));
    let own = c.ask(|r| CounterMsg::Withdraw(50, r)).await;
    assert_eq!(own, Ok(Err("insufficient: 10 < 50".to_owned())));
    assert_eq!(c.ask(|r| CounterMsg::Withdraw(4, r)).await, Ok(Ok(6)));
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_per_call_and_by_default_and_late_reply_is_dead_letter() {
    let sys = ActorSystem::new(SystemConfig {
        ask_timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .expect("runtime");
    let mut dead = sys.subscribe_dead_letters();
    let c = sys
        .spawn(Props::new(Counter::default).name("slow"))
        .expect("spawn");

    let start = tokio::time::Instant::now();
    let err = c.ask(|r| CounterMsg::Slow(Duration::from_secs(1), r)).await;
    assert_eq!(
        err,
        Err(AskError::Timeout {
            actor: c.path(),
            timeout: Duration::from_millis(200)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_millis(200));

    // The slow handler eventually replies: to nobody. It is counted, not delivered elsewhere.
    let before = sys.dead_letter_count();
    let next = c.ask_timeout(CounterMsg::Get, Duration::from_secs(5)).await;
    assert_eq!(
        next,
        Ok(0),
        "the next ask gets its own answer, not the stale one"
    );
    assert_eq!(sys.dead_letter_count(), before + 1);
    let dl = dead.recv().await.expect("event");
    assert_eq!(dl.reason, DeadLetterReason::ReplyAfterTimeout);
    assert_eq!(dl.message_type, "i64");

    let err = c
        .ask_timeout(
            |r| CounterMsg::Slow(Duration::from_secs(10), r),
            Duration::from_secs(3),
        )
        .await;
    assert!(
        matches!(err, Err(AskError::Timeout { timeout, .. }) if timeout == Duration::from_secs(3))
    );
}

#[tokio::test]
async fn ask_a_stopped_actor_or_dropped_port() {
    let sys = system();
    let c = sys
        .spawn(Props::new(Counter::default).name("c"))
        .expect("spawn");
    assert_eq!(
        c.ask(CounterMsg::Ignore).await,
        Err(AskError::NoReply(c.path()))
    );
    c.stop();
    c.wait_for_stop().await;
    assert_eq!(
        c.ask(CounterMsg::Get).await,
        Err(AskError::Stopped(c.path()))
    );
    let e = c.ask(CounterMsg::Get).await.expect_err("stopped");
    assert!(
        e.to_string().contains("/user/c"),
        "error names the actor: {e}"
    );
}

#[tokio::test]
async fn try_tell_hands_message_back_when_stopped() {
    let sys = system();
    let c = sys.spawn(Props::new(Counter::default)).expect("spawn");
    c.stop();
    c.wait_for_stop().await;
    match c.try_tell(CounterMsg::Add(7)) {
        Err(TrySendError::Closed(CounterMsg::Add(7))) => {}
        _ => panic!("expected the message back"),
    }
    let before = sys.dead_letter_count();
    c.tell(CounterMsg::Add(1));
    assert_eq!(
        sys.dead_letter_count(),
        before + 1,
        "tell to a stopped actor is a dead letter"
    );
}

#[tokio::test]
async fn adapters_map_into_the_target_and_share_its_identity() {
    let sys = system();
    let c = sys.spawn(Props::new(Counter::default)).expect("spawn");
    let deposits: ActorRef<u32> = c.adapt(|n: u32| CounterMsg::Add(i64::from(n)));
    deposits.tell(40);
    deposits.tell(2);
    assert_eq!(deposits.path(), c.path());
    assert_eq!(c.ask(CounterMsg::Get).await, Ok(42));
    // Asking through an adapter of a reply-carrying type works too.
    let getter: ActorRef<Reply<i64>> = c.adapt(CounterMsg::Get);
    assert_eq!(getter.ask(|r| r).await, Ok(42));
    c.stop();
    assert!(deposits.wait_for_stop().await.is_normal());
    assert!(matches!(deposits.try_tell(1), Err(TrySendError::Closed(1))));
}

#[tokio::test]
async fn refs_compare_by_identity_and_stay_valid_across_clones() {
    let sys = system();
    let a = sys.spawn(Props::new(Counter::default)).expect("spawn");
    let b = sys.spawn(Props::new(Counter::default)).expect("spawn");
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    let set: std::collections::HashSet<_> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
}
