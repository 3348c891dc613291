//! Nodes over real QUIC on 127.0.0.1 (port 0): authenticated connects, refusals that name their
//! cause on both sides, and failure detection when a peer disappears.

use std::net::SocketAddr;
use std::time::Duration;

use actor_core::testkit::TestProbe;
use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SystemConfig, TerminationReason,
};
use actor_remote::association::Liveness;
use actor_remote::handshake::HandshakeError;
use actor_remote::node::{Node, NodeConfig, NodeError, PeerState, RemoteError};
use actor_remote::wire::RejectReason;
use serde::{Deserialize, Serialize};

mod support;
use support::eventually;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn node(name: &str, secret: &str) -> Node {
    node_in(&system(), name, secret)
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

fn node_in(system: &ActorSystem, name: &str, secret: &str) -> Node {
    let mut config = NodeConfig::new(name, any_port(), secret.as_bytes());
    config.liveness = Liveness {
        heartbeat_interval: Duration::from_millis(100),
        unreachable_after: Duration::from_millis(600),
    };
    Node::start(system, config).expect("node starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_the_same_secret_connect_and_list_each_other() {
    let a = node("alpha", "s3cret");
    let b = node("beta", "s3cret");
    let peer = a
        .connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    assert_eq!(
        (peer.node.as_str(), peer.incarnation),
        ("beta", b.incarnation())
    );
    let a_peers = a.peers();
    assert_eq!(a_peers.len(), 1);
    assert_eq!(
        (a_peers[0].node.as_str(), a_peers[0].state),
        ("beta", PeerState::Up)
    );
    assert!(
        eventually(Duration::from_secs(5), || b
            .peers()
            .iter()
            .any(|p| p.node == "alpha" && p.state == PeerState::Up))
        .await
    );
    // Heartbeats keep an idle association up well past the unreachable threshold.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(a.peers()[0].state, PeerState::Up);
    assert_eq!(b.peers()[0].state, PeerState::Up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_with_the_cause_on_both_sides() {
    let a = node("alpha", "right");
    let b = node("beta", "wrong");
    let err = a
        .connect(b.local_addr().expect("addr"))
        .await
        .expect_err("refused");
    match &err {
        NodeError::Handshake { error, .. } => assert!(
            matches!(
                error,
                HandshakeError::Refused(RejectReason::BadSecret)
                    | HandshakeError::RejectedByPeer(RejectReason::BadSecret)
            ),
            "{error}"
        ),
        other => panic!("expected a handshake refusal, got {other}"),
    }
    assert!(err.to_string().contains("wrong cluster secret"), "{err}");
    assert!(
        eventually(Duration::from_secs(5), || b
            .refusals()
            .iter()
            .any(|r| r.error.to_string().contains("wrong cluster secret")))
        .await,
        "the accepting side records why: {:?}",
        b.refusals()
    );
    assert!(
        a.peers().is_empty() && b.peers().is_empty(),
        "nobody was admitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_shuts_down_is_declared_unreachable() {
    // Dropping a node closes its connections: this is connection-loss detection. Detection of a
    // silent peer (heartbeats) is tested on simulated time in handshake_assoc.rs.
    let a = node("alpha", "s3cret");
    let b = node("beta", "s3cret");
    a.connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    drop(b);
    assert!(
        eventually(Duration::from_secs(10), || a
            .peers()
            .first()
            .is_some_and(|p| p.state == PeerState::Unreachable))
        .await,
        "{:?}",
        a.peers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_secret_is_refused_at_start() {
    let config = NodeConfig::new("alpha", any_port(), Vec::new());
    match Node::start(&system(), config) {
        Err(NodeError::Config(why)) => assert!(why.contains("secret"), "{why}"),
        Ok(_) => panic!("started without a secret"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum SinkMsg {
    Num(u64),
    Text(String),
}

/// Forwards what it receives to a probe.
struct Sink {
    out: ActorRef<SinkMsg>,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    async fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<Self>) -> ActorResult {
        self.out.tell(msg);
        Ok(())
    }
}

/// Two connected nodes; `beta` exposes a sink at `/user/sink` that forwards to `probe`.
struct Pair {
    sys_a: ActorSystem,
    a: Node,
    b: Node,
    sink: ActorRef<SinkMsg>,
    probe: TestProbe<SinkMsg>,
}

async fn pair() -> Pair {
    let (sys_a, sys_b) = (system(), system());
    let (a, b) = (node_in(&sys_a, "alpha", "k"), node_in(&sys_b, "beta", "k"));
    let probe = TestProbe::<SinkMsg>::new(&sys_b);
    let out = probe.actor_ref();
    let sink = sys_b
        .spawn(Props::new(move || Sink { out: out.clone() }).name("sink"))
        .expect("spawn");
    b.expose(&sink);
    a.connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    Pair {
        sys_a,
        a,
        b,
        sink,
        probe,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ref_is_an_actor_ref_whose_tells_arrive_in_order() {
    let Pair {
        sys_a: _sys_a,
        a,
        b,
        sink: _sink,
        mut probe,
    } = pair().await;

    let remote: ActorRef<SinkMsg> = a.lookup("beta", "/user/sink").await.expect("found");
    assert_eq!(remote.path().as_str(), "//beta/user/sink");
    for i in 0..1_000 {
        remote.tell(SinkMsg::Num(i));
    }
    remote.tell(SinkMsg::Text("done".into()));
    for i in 0..1_000 {
        assert_eq!(
            probe.expect_msg(Duration::from_secs(10)).await,
            SinkMsg::Num(i),
            "per-recipient order"
        );
    }
    assert_eq!(
        probe.expect_msg(Duration::from_secs(10)).await,
        SinkMsg::Text("done".into())
    );
    assert_eq!(b.rejected_frames(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_check_the_message_type_and_the_path() {
    let Pair {
        sys_a: _sys_a,
        a,
        b: _b,
        sink: _sink,
        probe: _probe,
    } = pair().await;
    match a.lookup::<String>("beta", "/user/sink").await {
        Err(RemoteError::TypeMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, "alloc::string::String");
            assert!(actual.ends_with("SinkMsg"), "{actual}");
        }
        other => panic!(
            "expected a type mismatch, got {:?}",
            other.map(|r| r.path())
        ),
    }
    assert!(matches!(
        a.lookup::<SinkMsg>("beta", "/user/nobody").await,
        Err(RemoteError::NotFound { .. })
    ));
    assert!(matches!(
        a.lookup::<SinkMsg>("gamma", "/user/sink").await,
        Err(RemoteError::UnknownPeer(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_a_remote_actor_learn_when_its_node_is_lost_and_later_sends_are_dead_letters() {
    let Pair {
        sys_a,
        a,
        b,
        sink: _sink,
        probe: _probe,
    } = pair().await;
    let remote: ActorRef<SinkMsg> = a.lookup("beta", "/user/sink").await.expect("found");
    let mut watcher = TestProbe::<()>::new(&sys_a);
    watcher.watch(&remote);
    drop(b);
    let t = watcher
        .expect_terminated(&remote, Duration::from_secs(10))
        .await;
    match &t.reason {
        TerminationReason::Unreachable(why) => assert!(why.contains("beta"), "{why}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let before = sys_a.dead_letter_count();
    remote.tell(SinkMsg::Num(1));
    assert_eq!(
        sys_a.dead_letter_count(),
        before + 1,
        "a send to a lost node is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_a_remote_actor_learn_when_it_stops_on_its_node() {
    let Pair {
        sys_a,
        a,
        b: _b,
        sink,
        probe: _probe,
    } = pair().await;
    let remote: ActorRef<SinkMsg> = a.lookup("beta", "/user/sink").await.expect("found");
    let mut watcher = TestProbe::<()>::new(&sys_a);
    watcher.watch(&remote);
    // Whether the Watch frame or the stop comes first does not matter: watching an actor that
    // already ended answers at once.
    sink.stop();
    let t = watcher
        .expect_terminated(&remote, Duration::from_secs(10))
        .await;
    assert!(
        t.reason.is_normal(),
        "a normal stop over there is a normal stop here: {:?}",
        t.reason
    );
    assert_eq!(t.path.as_str(), "//beta/user/sink");
    // The node itself is still up.
    assert_eq!(a.peers()[0].state, PeerState::Up);
}
