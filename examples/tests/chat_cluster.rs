//! The chat server on two nodes (two actor systems joined over real QUIC on 127.0.0.1), driven by
//! real TCP clients connected to different nodes: they meet in one room, whichever node hosts it.

use std::sync::Arc;
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};
use actor_remote::association::Liveness;
use actor_remote::node::{Node, NodeConfig};
use examples::chat::{ChatConfig, ChatServer};

mod support;
use support::{Client, join_nodes};

struct ChatNode {
    _system: ActorSystem,
    node: Arc<Node>,
    server: ChatServer,
}

async fn chat_node(name: &str) -> ChatNode {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut config = NodeConfig::new(name, "127.0.0.1:0".parse().expect("addr"), b"chat".to_vec());
    config.liveness = Liveness {
        heartbeat_interval: Duration::from_millis(100),
        unreachable_after: Duration::from_millis(600),
    };
    let node = Arc::new(Node::start(&system, config).expect("node"));
    let server =
        ChatServer::start_clustered(&system, "127.0.0.1:0", ChatConfig::default(), node.clone())
            .await
            .expect("chat");
    ChatNode {
        _system: system,
        node,
        server,
    }
}

/// Two chat nodes connected to each other (both see the other as up).
async fn cluster() -> (ChatNode, ChatNode) {
    let (a, b) = (chat_node("alpha").await, chat_node("beta").await);
    join_nodes(&a.node, &b.node).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_nodes_meet_in_one_room_and_hear_each_other() {
    let (a, b) = cluster().await;
    let mut ada = Client::connect(&a.server).await;
    let mut bob = Client::connect(&b.server).await;
    assert_eq!(ada.cmd("/nick ada").await, "* you are now ada");
    assert_eq!(bob.cmd("/nick bob").await, "* you are now bob");
    // Two rooms: with two nodes, at least one of them is hosted on the other client's node,
    // so both clients talk across the nodes in at least one room (in practice, in both).
    for room in ["general", "random"] {
        assert_eq!(
            ada.cmd(&format!("/join {room}")).await,
            format!("* ada joined {room}")
        );
        assert_eq!(
            bob.cmd(&format!("/join {room}")).await,
            format!("* bob joined {room}")
        );
        assert_eq!(ada.line().await, format!("* bob joined {room}"));
        ada.send("hello bob").await;
        assert_eq!(ada.line().await, "ada: hello bob");
        assert_eq!(bob.line().await, "ada: hello bob");
        bob.send("hi ada").await;
        assert_eq!(bob.line().await, "bob: hi ada");
        assert_eq!(ada.line().await, "bob: hi ada");
        assert_eq!(ada.cmd("/who").await, format!("* in {room}: ada, bob"));
        if room == "general" {
            // Leaving for the next room: both hear ada go (she hears her own "you left").
            assert_eq!(bob.cmd("/leave").await, "* you left general");
            assert_eq!(ada.line().await, "* bob left general");
            assert_eq!(ada.cmd("/leave").await, "* you left general");
        }
    }
    // Both nodes list every room of the cluster.
    assert_eq!(ada.cmd("/rooms").await, "* rooms: general (0), random (2)");
    assert_eq!(bob.cmd("/rooms").await, "* rooms: general (0), random (2)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_node_goes_away_leaves_the_room_on_the_other_node() {
    let (a, b) = cluster().await;
    // Find a room hosted on alpha, then put a client of each node in it.
    let mut ada = Client::connect(&a.server).await;
    let mut bob = Client::connect(&b.server).await;
    assert_eq!(ada.cmd("/nick ada").await, "* you are now ada");
    assert_eq!(bob.cmd("/nick bob").await, "* you are now bob");
    let room = (0..64)
        .map(|i| format!("room{i}"))
        // alpha < beta, so index 0 of the sorted nodes is alpha.
        .find(|r| examples::cluster::fnv1a(r).is_multiple_of(2))
        .expect("some room is hosted on alpha");
    assert_eq!(
        ada.cmd(&format!("/join {room}")).await,
        format!("* ada joined {room}")
    );
    assert_eq!(
        bob.cmd(&format!("/join {room}")).await,
        format!("* bob joined {room}")
    );
    assert_eq!(ada.line().await, format!("* bob joined {room}"));
    // beta's node goes away: the room on alpha sees bob's session end with its node and tells
    // ada.
    b.node.shutdown();
    assert_eq!(ada.line().await, format!("* bob left {room}"));
    assert_eq!(ada.cmd("/who").await, format!("* in {room}: ada"));
    drop(bob);
}
