//! The matchmaking server on two nodes (two actor systems joined over real QUIC on 127.0.0.1),
//! driven by real TCP clients connected to different nodes: players of one region are matched
//! together whichever node they connected to.

use std::sync::Arc;
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};
use actor_remote::node::{Node, NodeConfig};
use examples::matchmaking::{MatchConfig, MatchServer};
use serde_json::json;

mod support;
use support::{JsonClient as Client, join_nodes};

struct MatchNode {
    _system: ActorSystem,
    node: Arc<Node>,
    server: MatchServer,
}

async fn match_node(name: &str) -> MatchNode {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let config = NodeConfig::new(name, "127.0.0.1:0".parse().expect("addr"), b"mm".to_vec());
    let node = Arc::new(Node::start(&system, config).expect("node"));
    let match_config = MatchConfig {
        match_ticks: 5,
        tick: Duration::from_millis(20),
        ..Default::default()
    };
    let server = MatchServer::start_clustered(&system, "127.0.0.1:0", match_config, node.clone())
        .await
        .expect("server");
    MatchNode {
        _system: system,
        node,
        server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_two_nodes_are_matched_together_in_every_region() {
    let (a, b) = (match_node("alpha").await, match_node("beta").await);
    join_nodes(&a.node, &b.node).await;
    // Two regions: with two nodes, the clients of at least one node are queued remotely in each
    // region whose queue lives on the other node.
    for region in ["eu", "us"] {
        let mut clients = Vec::new();
        for i in 0..4 {
            let server = if i % 2 == 0 { &a.server } else { &b.server };
            let mut c = Client::connect(server).await;
            let player = format!("{region}-p{i}");
            let ack = c.queue(&player, 1500.0 + f64::from(i) * 10.0, region).await;
            assert_eq!(
                ack,
                json!({"op": "queued", "player": player, "region": region})
            );
            clients.push(c);
        }
        let mut ids = Vec::new();
        for c in &mut clients {
            let matched = c.recv().await;
            assert_eq!(matched["op"], "matched", "{matched}");
            assert_eq!(matched["region"], region);
            assert_eq!(matched["players"].as_array().map(Vec::len), Some(4));
            ids.push(matched["match"].clone());
        }
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one match: {ids:?}");
        // The match ticks to its end on its node and every client hears it.
        for c in &mut clients {
            let ended = c.recv().await;
            assert_eq!(ended["op"], "ended", "{ended}");
        }
    }
    // A duplicate is refused by the region's owner, whichever node the client is on.
    let mut again = Client::connect(&b.server).await;
    let mut first = Client::connect(&a.server).await;
    assert_eq!(first.queue("dup", 1000.0, "eu").await["op"], "queued");
    let refused = again.queue("dup", 1000.0, "eu").await;
    assert_eq!(refused["op"], "error", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("already queued")),
        "{refused}"
    );
}
