//! Behaviors as state: a Loading -> Ready phase machine that stashes during loading, bounded
//! stash, and pipe (a future's result delivered as a message without blocking the mailbox).

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use actor_core::{DeadLetterReason, StashError};

const T: Duration = Duration::from_secs(5);

/// A game room that loads its map before it accepts players. While loading it stashes player
/// messages; once loaded it unstashes them, in arrival order, ahead of newer mail.
enum Phase {
    Loading,
    Ready { map: String },
}

struct Room {
    phase: Phase,
    out: ActorRef<String>,
}

enum RoomMsg {
    Loaded(String),
    Join(String),
    Ping(Reply<&'static str>),
}

impl Actor for Room {
    type Msg = RoomMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        // Loading takes 1 s of (simulated) IO; the mailbox stays responsive meanwhile.
        ctx.pipe(
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "dust2".to_owned()
            },
            RoomMsg::Loaded,
        );
        Ok(())
    }
    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        match (&self.phase, msg) {
            (_, RoomMsg::Ping(r)) => r.send(match self.phase {
                Phase::Loading => "loading",
                Phase::Ready { .. } => "ready",
            }),
            (Phase::Loading, RoomMsg::Loaded(map)) => {
                self.phase = Phase::Ready { map };
                ctx.unstash_all();
            }
            (Phase::Loading, join @ RoomMsg::Join(_)) => {
                if let Err(StashError(RoomMsg::Join(who))) = ctx.stash(join) {
                    self.out.tell(format!("rejected {who}: room busy"));
                }
            }
            (Phase::Ready { map }, RoomMsg::Join(who)) => {
                self.out.tell(format!("{who} joined {map}"))
            }
            (Phase::Ready { .. }, RoomMsg::Loaded(_)) => return Err("loaded twice".into()),
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn loading_stashes_then_ready_replays_in_order() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let room = sys
        .spawn(
            Props::new(move || Room {
                phase: Phase::Loading,
                out: out.clone(),
            })
            .stash_capacity(2),
        )
        .expect("spawn");
    room.tell(RoomMsg::Join("ann".into()));
    room.tell(RoomMsg::Join("bob".into()));
    room.tell(RoomMsg::Join("cid".into()));
    // The mailbox is not blocked by loading (pipe): asks are answered at once.
    let t0 = tokio::time::Instant::now();
    assert_eq!(room.ask(RoomMsg::Ping).await, Ok("loading"));
    assert!(t0.elapsed() < Duration::from_millis(10));
    assert_eq!(
        probe.expect_msg(T).await,
        "rejected cid: room busy",
        "stash is bounded"
    );
    room.tell(RoomMsg::Join("dan".into()));
    assert_eq!(probe.expect_msg(T).await, "rejected dan: room busy");
    assert_eq!(probe.expect_msg(T).await, "ann joined dust2");
    assert_eq!(probe.expect_msg(T).await, "bob joined dust2");
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    room.tell(RoomMsg::Join("eve".into()));
    assert_eq!(probe.expect_msg(T).await, "eve joined dust2");
    assert_eq!(room.ask(RoomMsg::Ping).await, Ok("ready"));
}

#[tokio::test(start_paused = true)]
async fn stashed_messages_are_dead_letters_when_the_actor_stops() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let probe = TestProbe::<String>::new(&sys);
    let out = probe.actor_ref();
    let room = sys
        .spawn(Props::new(move || Room {
            phase: Phase::Loading,
            out: out.clone(),
        }))
        .expect("spawn");
    let mut dead = sys.subscribe_dead_letters();
    room.tell(RoomMsg::Join("ann".into()));
    room.ask(RoomMsg::Ping).await.expect("ping");
    room.stop();
    room.wait_for_stop().await;
    let dl = dead.recv().await.expect("dead letter");
    assert_eq!(dl.reason, DeadLetterReason::Stashed);
    assert_eq!(dl.recipient, room.path());
}

/// Pipe results are delivered even while other messages flow, and aborted when the actor stops.
struct Piper {
    out: ActorRef<u32>,
}
enum PipeMsg {
    Start(u32, Duration),
    Done(u32),
}
impl Actor for Piper {
    type Msg = PipeMsg;
    async fn handle(&mut self, msg: PipeMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            PipeMsg::Start(n, d) => ctx.pipe(
                async move {
                    tokio::time::sleep(d).await;
                    n
                },
                PipeMsg::Done,
            ),
            PipeMsg::Done(n) => self.out.tell(n),
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn pipe_delivers_results_in_completion_order_and_dies_with_the_actor() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::<u32>::new(&sys);
    let out = probe.actor_ref();
    let p = sys
        .spawn(Props::new(move || Piper { out: out.clone() }))
        .expect("spawn");
    p.tell(PipeMsg::Start(1, Duration::from_millis(300)));
    p.tell(PipeMsg::Start(2, Duration::from_millis(100)));
    assert_eq!(probe.expect_msg(T).await, 2);
    assert_eq!(probe.expect_msg(T).await, 1);
    p.tell(PipeMsg::Start(3, Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = sys.dead_letter_count();
    p.stop();
    p.wait_for_stop().await;
    probe.expect_no_msg(Duration::from_secs(2)).await;
    assert_eq!(
        sys.dead_letter_count(),
        before,
        "the pipe was aborted, not delivered to a dead actor"
    );
}
