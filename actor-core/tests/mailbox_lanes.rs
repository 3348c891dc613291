//! Mailbox lanes seen through actors: system lane first, bounded with overflow policies and
//! waiting senders, priority classes, conflating, FIFO per sender, and the throughput budget.

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{DeadLetterReason, MailboxConfig, Overflow, TrySendError};
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(2);

/// Records every value it handles; `Gate` blocks it until released, so tests can fill its mailbox.
struct Recorder {
    out: ActorRef<u64>,
}

enum Rec {
    Gate(oneshot::Receiver<()>),
    Val(u64),
    Keyed(u64, u64),
}

impl Actor for Recorder {
    type Msg = Rec;
    async fn handle(&mut self, msg: Rec, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Rec::Gate(rx) => {
                let _ = rx.await;
            }
            Rec::Val(v) => self.out.tell(v),
            Rec::Keyed(k, v) => self.out.tell(k * 1000 + v),
        }
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.out.tell(u64::MAX);
    }
}

fn recorder(sys: &ActorSystem, mailbox: MailboxConfig<Rec>) -> (ActorRef<Rec>, TestProbe<u64>) {
    let probe = TestProbe::<u64>::new(sys);
    let out = probe.actor_ref();
    let r = sys
        .spawn(Props::new(move || Recorder { out: out.clone() }).mailbox(mailbox))
        .expect("spawn");
    (r, probe)
}

/// Blocks the actor; returns the release handle once it is inside the gate.
async fn gate(r: &ActorRef<Rec>) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel();
    r.tell(Rec::Gate(rx));
    // Let the actor take the gate message.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    tx
}

async fn drain(probe: &mut TestProbe<u64>, n: usize) -> Vec<u64> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(probe.expect_msg(T).await);
    }
    v
}

#[tokio::test(start_paused = true)]
async fn stop_overtakes_queued_user_messages_which_become_dead_letters() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (r, mut probe) = recorder(&sys, MailboxConfig::unbounded());
    let release = gate(&r).await;
    for i in 0..5 {
        r.tell(Rec::Val(i));
    }
    r.stop();
    let before = sys.dead_letter_count();
    let _ = release.send(());
    assert!(r.wait_for_stop().await.is_normal());
    assert_eq!(
        probe.expect_msg(T).await,
        u64::MAX,
        "stopped hook ran before any queued message"
    );
    probe.expect_no_msg(Duration::from_millis(100)).await;
    assert_eq!(sys.dead_letter_count() - before, 5);
}

#[tokio::test(start_paused = true)]
async fn bounded_fail_hands_back_and_tell_counts() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (r, mut probe) = recorder(&sys, MailboxConfig::bounded(2, Overflow::Fail));
    let release = gate(&r).await;
    r.tell(Rec::Val(1));
    r.tell(Rec::Val(2));
    assert!(matches!(
        r.try_tell(Rec::Val(3)),
        Err(TrySendError::Full(Rec::Val(3)))
    ));
    let mut dead = sys.subscribe_dead_letters();
    r.tell(Rec::Val(4));
    let dl = dead.recv().await.expect("dead letter");
    assert_eq!(dl.reason, DeadLetterReason::MailboxFull);
    assert_eq!(dl.recipient, r.path());
    assert!(dl.message_type.ends_with("Rec"), "{}", dl.message_type);
    let _ = release.send(());
    assert_eq!(drain(&mut probe, 2).await, vec![1, 2]);
    probe.expect_no_msg(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn bounded_drop_newest_and_drop_oldest() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (newest, mut pn) = recorder(&sys, MailboxConfig::bounded(3, Overflow::DropNewest));
    let (oldest, mut po) = recorder(&sys, MailboxConfig::bounded(3, Overflow::DropOldest));
    let rn = gate(&newest).await;
    let ro = gate(&oldest).await;
    let before = sys.dead_letter_count();
    for i in 1..=6 {
        assert!(
            newest.try_tell(Rec::Val(i)).is_ok(),
            "shedding policies accept the send"
        );
        oldest.tell(Rec::Val(i));
    }
    assert_eq!(sys.dead_letter_count() - before, 6, "3 shed by each");
    let _ = rn.send(());
    let _ = ro.send(());
    assert_eq!(drain(&mut pn, 3).await, vec![1, 2, 3]);
    assert_eq!(drain(&mut po, 3).await, vec![4, 5, 6]);
}

#[tokio::test(start_paused = true)]
async fn send_waits_for_room_whatever_the_policy() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (r, mut probe) = recorder(&sys, MailboxConfig::bounded(1, Overflow::DropNewest));
    let release = gate(&r).await;
    r.send(Rec::Val(1)).await.expect("room");
    let blocked = tokio::time::timeout(Duration::from_secs(1), r.send(Rec::Val(2))).await;
    assert!(blocked.is_err(), "send waits while full");
    let sender = {
        let r = r.clone();
        tokio::spawn(async move { r.send(Rec::Val(3)).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _ = release.send(());
    assert!(sender.await.expect("join"));
    assert_eq!(drain(&mut probe, 2).await, vec![1, 3]);
    // Send to a stopped actor hands the message back.
    r.stop();
    r.wait_for_stop().await;
    assert!(matches!(
        r.send(Rec::Val(9)).await,
        Err(actor_core::SendError(Rec::Val(9)))
    ));
}

#[tokio::test(start_paused = true)]
async fn priority_classes_strict_top_then_weighted() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    // class = value / 100 (0 = gate and top class), weights 2:1 for classes 1 and 2.
    let cfg = MailboxConfig::priority(
        |m: &Rec| match m {
            Rec::Val(v) => (*v / 100) as usize,
            _ => 0,
        },
        &[2, 1],
    );
    let (r, mut probe) = recorder(&sys, cfg);
    let release = gate(&r).await;
    for i in 0..4 {
        r.tell(Rec::Val(200 + i));
    }
    for i in 0..4 {
        r.tell(Rec::Val(100 + i));
    }
    r.tell(Rec::Val(7));
    let _ = release.send(());
    let got = drain(&mut probe, 9).await;
    assert_eq!(got, vec![7, 100, 101, 200, 102, 103, 201, 202, 203]);
}

#[tokio::test(start_paused = true)]
async fn conflating_latest_per_key_wins_and_is_counted() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let cfg = MailboxConfig::conflating(|m: &Rec| match m {
        Rec::Keyed(k, _) => Some(*k),
        _ => None,
    });
    let (r, mut probe) = recorder(&sys, cfg);
    let release = gate(&r).await;
    let before = sys.dead_letter_count();
    for v in 0..10 {
        r.tell(Rec::Keyed(1, v));
        r.tell(Rec::Keyed(2, v));
    }
    r.tell(Rec::Val(5));
    assert_eq!(r.stats().expect("local").conflated, 18);
    let _ = release.send(());
    assert_eq!(drain(&mut probe, 3).await, vec![1009, 2009, 5]);
    assert_eq!(
        sys.dead_letter_count(),
        before,
        "conflation is not a dead letter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_per_sender_with_concurrent_senders() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (r, mut probe) = recorder(&sys, MailboxConfig::unbounded());
    let senders: Vec<_> = (0..4u64)
        .map(|s| {
            let r = r.clone();
            tokio::spawn(async move {
                for i in 0..2_000u64 {
                    r.tell(Rec::Val(s * 1_000_000 + i));
                }
            })
        })
        .collect();
    for s in senders {
        s.await.expect("sender");
    }
    let mut last = [None::<u64>; 4];
    for _ in 0..8_000 {
        let v = probe.expect_msg(T).await;
        let (s, i) = ((v / 1_000_000) as usize, v % 1_000_000);
        if let Some(prev) = last[s] {
            assert!(i == prev + 1, "sender {s}: {i} after {prev}");
        }
        last[s] = Some(i);
    }
    assert_eq!(last, [Some(1999); 4]);
}

/// Handles `Spin` messages; answers `Count`.
struct Spinner;
enum Spin {
    Work,
    Ping(Reply<()>),
}
impl Actor for Spinner {
    type Msg = Spin;
    async fn handle(&mut self, msg: Spin, _ctx: &mut Context<Self>) -> ActorResult {
        if let Spin::Ping(r) = msg {
            r.send(());
        }
        Ok(())
    }
}

/// Stops itself at the third message it handles.
struct StopsAtThree(u32);
impl Actor for StopsAtThree {
    type Msg = ();
    async fn handle(&mut self, _msg: (), ctx: &mut Context<Self>) -> ActorResult {
        self.0 += 1;
        if self.0 == 3 {
            ctx.stop();
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_processed_count_is_exact_when_an_actor_stops_mid_batch() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let a = sys.spawn(Props::new(|| StopsAtThree(0))).expect("spawn");
    for _ in 0..10 {
        a.tell(());
    }
    a.wait_for_stop().await;
    // The stop overtook the queued messages: three were handled, in one activation.
    assert_eq!(a.stats().expect("local").processed, 3);
}

#[tokio::test]
async fn throughput_budget_lets_other_actors_run() {
    // On a single-threaded runtime, a flooded actor must yield after its budget so that another
    // actor is served before the flood is drained.
    let sys = ActorSystem::new(SystemConfig {
        throughput: 32,
        ..Default::default()
    })
    .expect("rt");
    let busy = sys.spawn(Props::new(|| Spinner)).expect("spawn");
    let other = sys.spawn(Props::new(|| Spinner)).expect("spawn");
    for _ in 0..50_000 {
        busy.tell(Spin::Work);
    }
    other.ask(Spin::Ping).await.expect("pong");
    let processed = busy.stats().expect("local").processed;
    assert!(
        processed < 50_000,
        "other actor waited for the whole flood ({processed})"
    );
    assert!(
        processed >= 32,
        "the count is brought up to date when the budget is spent: {processed}"
    );
    assert_eq!(
        processed % 32,
        0,
        "yields on budget boundaries: {processed}"
    );
    busy.ask(Spin::Ping).await.expect("pong");
    assert_eq!(busy.stats().expect("local").processed, 50_001);
}

#[tokio::test(start_paused = true)]
async fn stop_when_idle_handles_everything_queued_first() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (r, mut probe) = recorder(&sys, MailboxConfig::unbounded());
    let release = gate(&r).await;
    for i in 0..5 {
        r.tell(Rec::Val(i));
    }
    r.stop_when_idle();
    let before = sys.dead_letter_count();
    let _ = release.send(());
    assert_eq!(
        drain(&mut probe, 5).await,
        vec![0, 1, 2, 3, 4],
        "queued messages first"
    );
    assert_eq!(probe.expect_msg(T).await, u64::MAX, "then the stopped hook");
    assert!(r.wait_for_stop().await.is_normal());
    assert_eq!(sys.dead_letter_count(), before, "nothing lost");
}
