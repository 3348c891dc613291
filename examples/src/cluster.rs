//! Where things live when the servers run on several nodes: each key (a chat room, a matchmaking
//! region) belongs to one node, chosen by a hash of the key over the nodes that are up, so every
//! node picks the same owner without asking anyone. When a node goes away its keys move to the
//! others (their state starts afresh there).

use std::sync::Arc;

use actor_core::ActorRef;
use actor_remote::node::{Node, PeerState};
use serde::Serialize;

/// This node's view of the cluster (or of itself alone).
#[derive(Clone)]
pub struct Placement {
    name: String,
    node: Option<Arc<Node>>,
}

impl Placement {
    /// A single node: everything is local.
    pub fn alone() -> Self {
        Self {
            name: "local".into(),
            node: None,
        }
    }

    /// One node of a cluster.
    pub fn clustered(node: Arc<Node>) -> Self {
        Self {
            name: node.name().to_owned(),
            node: Some(node),
        }
    }

    /// This node's name (`local` when alone).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node, when clustered.
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The nodes that are up, this one included, sorted by name.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes = vec![self.name.clone()];
        if let Some(node) = &self.node {
            nodes.extend(
                node.peers()
                    .into_iter()
                    .filter(|p| p.state == PeerState::Up)
                    .map(|p| p.node),
            );
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The node that owns `key`.
    pub fn owner(&self, key: &str) -> String {
        let mut nodes = self.nodes();
        let i = (fnv1a(key) % nodes.len() as u64) as usize;
        nodes.swap_remove(i)
    }

    /// True when this node owns `key`.
    pub fn owns(&self, key: &str) -> bool {
        self.owner(key) == self.name
    }

    /// The actor at `path` on `node`: `local` itself when `node` is this one.
    pub async fn resolve<M: Serialize + Send + 'static>(
        &self,
        node: &str,
        path: &str,
        local: &ActorRef<M>,
    ) -> Result<ActorRef<M>, String> {
        match &self.node {
            Some(n) if node != self.name => {
                n.lookup::<M>(node, path).await.map_err(|e| e.to_string())
            }
            _ => Ok(local.clone()),
        }
    }
}

/// FNV-1a, 64 bits: stable across processes and builds (unlike `std`'s hasher).
pub fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
