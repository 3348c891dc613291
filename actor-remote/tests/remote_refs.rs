//! Refs and reply ports inside messages, over real QUIC on 127.0.0.1: remote ask (answer, timeout,
//! dropped port, lost peer), a remote actor telling and watching a local actor whose ref it got
//! in a message, a ref that comes home, and a ref forwarded to a third node.

use std::net::SocketAddr;
use std::time::Duration;

use actor_core::testkit::TestProbe;
use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, AskError, Context, Props, Reply, Signal,
    SystemConfig, TerminationReason,
};
use actor_remote::association::Liveness;
use actor_remote::node::{Node, NodeConfig};
use serde::{Deserialize, Serialize};

mod support;
use support::eventually;

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

fn node_in(system: &ActorSystem, name: &str) -> Node {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut config = NodeConfig::new(name, addr, b"k".to_vec());
    config.liveness = Liveness {
        heartbeat_interval: Duration::from_millis(100),
        unreachable_after: Duration::from_millis(600),
    };
    Node::start(system, config).expect("node starts")
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Event {
    Said(String),
}

#[derive(Serialize, Deserialize)]
enum RoomMsg {
    /// Remember `who`, watch it, and tell it what is said.
    Join {
        who: ActorRef<Event>,
    },
    Say(String),
    Count(Reply<usize>),
    /// Keep the port and never answer.
    Hold(Reply<usize>),
    /// Drop the port unanswered.
    Ignore(Reply<usize>),
    /// Send `who` back inside a message to `back`.
    Return {
        who: ActorRef<Event>,
        back: ActorRef<Returned>,
    },
    /// Forward the port to `to`, which answers it.
    Delegate {
        port: Reply<usize>,
        to: ActorRef<RoomMsg>,
    },
}

#[derive(Serialize, Deserialize)]
enum Returned {
    Ref(ActorRef<Event>),
}

#[derive(Default)]
struct Room {
    members: Vec<ActorRef<Event>>,
    held: Vec<Reply<usize>>,
}

impl Actor for Room {
    type Msg = RoomMsg;
    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Join { who } => {
                ctx.watch(&who);
                self.members.push(who);
            }
            RoomMsg::Say(text) => {
                for m in &self.members {
                    m.tell(Event::Said(text.clone()));
                }
            }
            RoomMsg::Count(port) => port.send(self.members.len()),
            RoomMsg::Hold(port) => self.held.push(port),
            RoomMsg::Ignore(port) => drop(port),
            RoomMsg::Return { who, back } => back.tell(Returned::Ref(who)),
            RoomMsg::Delegate { port, to } => to.tell(RoomMsg::Count(port)),
        }
        Ok(())
    }
    async fn on_signal(&mut self, signal: Signal, _ctx: &mut Context<Self>) -> ActorResult {
        if let Signal::Terminated(t) = signal {
            self.members.retain(|m| m.id() != t.id);
        }
        Ok(())
    }
}

/// Forwards events to a probe.
struct Session {
    out: ActorRef<Event>,
}

impl Actor for Session {
    type Msg = Event;
    async fn handle(&mut self, msg: Event, _ctx: &mut Context<Self>) -> ActorResult {
        self.out.tell(msg);
        Ok(())
    }
}

struct Two {
    sys_a: ActorSystem,
    sys_b: ActorSystem,
    a: Node,
    b: Node,
    /// `/user/room` on beta, looked up from alpha.
    room: ActorRef<RoomMsg>,
}

async fn two() -> Two {
    let (sys_a, sys_b) = (system(), system());
    let (a, b) = (node_in(&sys_a, "alpha"), node_in(&sys_b, "beta"));
    let room = sys_b
        .spawn(Props::new(Room::default).name("room"))
        .expect("spawn");
    b.expose(&room);
    a.connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    let room = a.lookup("beta", "/user/room").await.expect("found");
    Two {
        sys_a,
        sys_b,
        a,
        b,
        room,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_across_nodes_returns_the_answer() {
    let t = two().await;
    assert_eq!(t.room.ask(RoomMsg::Count).await, Ok(0));
    // Many asks in flight at once all get their own answer.
    let asks: Vec<_> = (0..100)
        .map(|_| {
            let room = t.room.clone();
            tokio::spawn(async move { room.ask(RoomMsg::Count).await })
        })
        .collect();
    for ask in asks {
        assert_eq!(ask.await.expect("joins"), Ok(0));
    }
    // 101 requests went out and 101 answers came back (counted per batch, so poll briefly).
    let counted = eventually(Duration::from_secs(2), || {
        let (a, b) = (t.a.stats(), t.b.stats());
        a.messages_sent == 101 && a.messages_received == 101 && b.messages_received == 101
    })
    .await;
    assert!(counted, "{:?} {:?}", t.a.stats(), t.b.stats());
    drop((t.a, t.b, t.sys_a, t.sys_b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ask_times_out_or_reports_a_dropped_port() {
    let t = two().await;
    let err = t
        .room
        .ask_timeout(RoomMsg::Hold, Duration::from_millis(300))
        .await
        .expect_err("never answered");
    assert!(matches!(err, AskError::Timeout { .. }), "{err}");
    // A port dropped unanswered over there is reported at once, not at the timeout.
    let err = t
        .room
        .ask_timeout(RoomMsg::Ignore, Duration::from_secs(30))
        .await
        .expect_err("dropped");
    assert!(matches!(err, AskError::NoReply(_)), "{err}");
    drop((t.a, t.b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_ask_fails_with_a_clear_error_when_the_peer_is_lost() {
    let t = two().await;
    let mut ask = Box::pin(t.room.ask_timeout(RoomMsg::Hold, Duration::from_secs(30)));
    // Its first poll sends the request (a task spawned for the ask might not run before the node
    // is dropped: then the request is refused, not lost).
    std::future::poll_fn(|cx| {
        assert!(ask.as_mut().poll(cx).is_pending(), "held, not answered");
        std::task::Poll::Ready(())
    })
    .await;
    // Let the request arrive (the count goes after it on the same link), then lose the node.
    assert_eq!(t.room.ask(RoomMsg::Count).await, Ok(0));
    drop(t.b);
    let err = ask.await.expect_err("lost");
    match &err {
        AskError::Lost { reason, .. } => {
            assert!(reason.contains("node beta"), "{reason}")
        }
        other => panic!("expected Lost, got {other}"),
    }
    drop(t.a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_actor_tells_and_watches_a_local_actor_whose_ref_it_received() {
    let t = two().await;
    let mut probe = TestProbe::<Event>::new(&t.sys_a);
    let out = probe.actor_ref();
    let session = t
        .sys_a
        .spawn(Props::new(move || Session { out: out.clone() }).name("session"))
        .expect("spawn");
    t.room.tell(RoomMsg::Join {
        who: session.clone(),
    });
    t.room.tell(RoomMsg::Say("hello".into()));
    assert_eq!(
        probe.expect_msg(Duration::from_secs(5)).await,
        Event::Said("hello".into())
    );
    assert_eq!(t.room.ask(RoomMsg::Count).await, Ok(1));
    // The room watches the session across the nodes: stopping it removes the member.
    session.stop();
    let mut left = false;
    for _ in 0..100 {
        if t.room.ask(RoomMsg::Count).await == Ok(0) {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left, "the room saw the remote member stop");
    drop((t.a, t.b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_that_comes_home_is_the_local_ref_again() {
    let t = two().await;
    let mut events = TestProbe::<Event>::new(&t.sys_a);
    let mut returned = TestProbe::<Returned>::new(&t.sys_a);
    let original = events.actor_ref();
    t.room.tell(RoomMsg::Return {
        who: original.clone(),
        back: returned.actor_ref(),
    });
    let Returned::Ref(home) = returned.expect_msg(Duration::from_secs(5)).await;
    assert_eq!(home, original, "the same actor, not a proxy through beta");
    home.tell(Event::Said("direct".into()));
    assert_eq!(
        events.expect_msg(Duration::from_secs(5)).await,
        Event::Said("direct".into())
    );
    drop((t.a, t.b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_and_reply_ports_forwarded_to_a_third_node_still_work() {
    // alpha asks beta's room, which delegates the port to gamma's room; gamma answers alpha
    // directly. alpha's session ref also travels alpha -> beta -> gamma and gets gamma's events.
    let t = two().await;
    let sys_c = system();
    let c = node_in(&sys_c, "gamma");
    let room_c = sys_c
        .spawn(Props::new(Room::default).name("room"))
        .expect("spawn");
    c.expose(&room_c);
    let c_addr = c.local_addr().expect("addr");
    t.a.connect(c_addr).await.expect("alpha-gamma");
    t.b.connect(c_addr).await.expect("beta-gamma");
    let room_c_from_b: ActorRef<RoomMsg> = t.b.lookup("gamma", "/user/room").await.expect("found");
    let room_c_from_a: ActorRef<RoomMsg> = t.a.lookup("gamma", "/user/room").await.expect("found");
    // Give gamma a member so its count is distinguishable from beta's.
    let mut probe = TestProbe::<Event>::new(&t.sys_a);
    room_c_from_a.tell(RoomMsg::Join {
        who: probe.actor_ref(),
    });
    // Same sender, same recipient: the ask is handled after the join. (The delegated ask below
    // comes from beta, which is not ordered with alpha's join.)
    assert_eq!(room_c_from_a.ask(RoomMsg::Count).await, Ok(1));
    let answer = t
        .room
        .ask(|port| RoomMsg::Delegate {
            port,
            to: room_c_from_b.clone(),
        })
        .await;
    assert_eq!(answer, Ok(1), "gamma's count, answered straight to alpha");
    room_c_from_a.tell(RoomMsg::Say("from gamma".into()));
    assert_eq!(
        probe.expect_msg(Duration::from_secs(5)).await,
        Event::Said("from gamma".into())
    );
    drop((t.a, t.b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_to_an_actor_that_stopped_is_dead_when_it_comes_back() {
    let t = two().await;
    let mut returned = TestProbe::<Returned>::new(&t.sys_a);
    let events = TestProbe::<Event>::new(&t.sys_a);
    let gone = t
        .sys_a
        .spawn(Props::new({
            let out = events.actor_ref();
            move || Session { out: out.clone() }
        }))
        .expect("spawn");
    // beta holds a ref to `gone` (exported by alpha); it stops; beta sends the ref back.
    t.room.tell(RoomMsg::Join { who: gone.clone() });
    assert_eq!(t.room.ask(RoomMsg::Count).await, Ok(1));
    gone.stop();
    let _ = gone.wait_for_stop().await;
    t.room.tell(RoomMsg::Return {
        who: gone.clone(),
        back: returned.actor_ref(),
    });
    let Returned::Ref(back) = returned.expect_msg(Duration::from_secs(5)).await;
    let before = t.sys_a.dead_letter_count();
    back.tell(Event::Said("to nobody".into()));
    assert_eq!(t.sys_a.dead_letter_count(), before + 1, "counted");
    let mut watcher = TestProbe::<()>::new(&t.sys_a);
    watcher.watch(&back);
    let end = watcher
        .expect_terminated(&back, Duration::from_secs(5))
        .await;
    assert!(
        matches!(end.reason, TerminationReason::Stopped),
        "{:?}",
        end.reason
    );
    drop((t.a, t.b, t.sys_b));
}
