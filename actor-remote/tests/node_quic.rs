//! Nodes over real QUIC on 127.0.0.1 (port 0): authenticated connects, refusals that name their
//! cause on both sides, and failure detection when a peer disappears.

use std::net::SocketAddr;
use std::time::Duration;

use actor_remote::association::Liveness;
use actor_remote::handshake::HandshakeError;
use actor_remote::node::{Node, NodeConfig, NodeError, PeerState};
use actor_remote::wire::RejectReason;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn node(name: &str, secret: &str) -> Node {
    let mut config = NodeConfig::new(name, any_port(), secret.as_bytes());
    config.liveness = Liveness {
        heartbeat_interval: Duration::from_millis(100),
        unreachable_after: Duration::from_millis(600),
    };
    Node::start(config).expect("node starts")
}

/// Polls `f` until it holds, for at most `limit` (a bound on a wait, not a timing assertion).
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
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
    match Node::start(config) {
        Err(NodeError::Config(why)) => assert!(why.contains("secret"), "{why}"),
        Ok(_) => panic!("started without a secret"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}
