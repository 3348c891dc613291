//! Where a received message goes: to an exposed actor, to a reply port that waits for it, or to
//! the dead letters.
//!
//! Every reader of a peer's streams keeps a [`Routes`] table of the exposed actors it has
//! delivered to (their message type's id and their decode-and-tell function), so that a message
//! to an actor it has seen before costs one lookup in a table only that reader touches: no lock
//! of the node's export table and no reference count on the way. With messages spread over
//! thousands of recipients (the remote fan-in benchmark sends round robin to 10,000), the node's
//! table and each export's count were a cache miss and a contended cache line per message.
//!
//! The node counts the exports that have ended ([`Shared::exports_ended`]); a reader that finds
//! the count moved since its last batch forgets its whole table and fills it again from the
//! node's. A message that races its recipient's end reaches the ended actor's ref and becomes a
//! dead letter there, as it did when each message took its own reference. A table keeps the refs
//! of the actors it names, so an ended actor's memory is released at its reader's next batch (or
//! when the connection ends). A table holds at most [`MAX_ROUTES`] routes (32,768 slots, about
//! 1 MiB); past that it starts over, so a peer that writes to many more actors than that costs a
//! lookup in the node's table for each new one, not memory without bound.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actor_core::transport::{Transport, with_transport};
use actor_core::{ActorPath, DeadLetterReason};
use rustc_hash::FxHashMap;

use crate::codec::{Bincode, Codec};
use crate::handshake::PeerInfo;
use crate::node::{Deliver, Shared};

/// Routes one reader keeps before it starts its table over. A lane of a connection carries the
/// messages of a quarter of the recipients (with the default four lanes), so 16,384 routes a
/// reader serve 65,536 recipients per peer without a miss.
pub(crate) const MAX_ROUTES: usize = 16 * 1024;

/// One reader's table of the exposed actors it delivers to, by wire id.
pub(crate) struct Routes {
    /// [`Shared::exports_ended`] when the table was last checked.
    ended: u64,
    /// Fx hashing: only ids the node exported are inserted (its own, sequential), so a peer's
    /// choice of recipient cannot lengthen a probe.
    by_id: FxHashMap<u64, Route>,
}

/// What a reader needs of an exposed actor to deliver to it.
struct Route {
    manifest_id: u32,
    deliver: Deliver,
}

impl Routes {
    /// An empty table (it allocates on its first route).
    pub(crate) fn new() -> Self {
        Self {
            ended: 0,
            by_id: FxHashMap::default(),
        }
    }

    /// Forgets every route if an export has ended since the last check; call it once per batch
    /// of received messages.
    pub(crate) fn refresh(&mut self, shared: &Shared) {
        let ended = shared.exports_ended.load(Ordering::Acquire);
        if ended != self.ended {
            self.by_id.clear();
            self.ended = ended;
        }
    }

    /// The route to the actor exposed as `recipient`, from this table or else from the node's
    /// (then kept here); `None` if no actor is exposed under that id.
    fn get(&mut self, shared: &Shared, recipient: u64) -> Option<&Route> {
        if self.by_id.len() >= MAX_ROUTES && !self.by_id.contains_key(&recipient) {
            self.by_id.clear();
        }
        match self.by_id.entry(recipient) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(v) => {
                let route = {
                    let exposed = shared.exposed_by_id.lock();
                    let e = exposed.get(&recipient)?;
                    Route {
                        manifest_id: e.manifest_id,
                        deliver: e.deliver.clone(),
                    }
                };
                Some(v.insert(route))
            }
        }
    }
}

/// Delivers one received message to its exposed recipient or to a waiting reply port, decoding
/// the payload in place with this peer's transport scope current (refs inside it resolve).
/// Anything else is counted: a payload that does not decode or a recipient of another type as a
/// rejected frame, a recipient that is gone as a dead letter.
pub(crate) fn deliver_tell(
    shared: &Shared,
    routes: &mut Routes,
    peer: &PeerInfo,
    scope: &Arc<dyn Transport>,
    recipient: u64,
    manifest: u32,
    payload: &[u8],
) {
    let reject = |what: &str, error: &dyn std::fmt::Display| {
        shared.count_rejected();
        tracing::warn!(node = %peer.node, recipient, %error, "{what} rejected");
    };
    match routes.get(shared, recipient) {
        Some(route) if route.manifest_id == manifest => {
            if let Err(err) = with_transport(scope, || (route.deliver)(payload)) {
                reject("malformed payload", &err);
            }
        }
        Some(_) => {
            let expects = shared.exposed_by_id.lock().get(&recipient).map_or_else(
                || "an actor that has since ended".to_owned(),
                |e| format!("{} expects {}", e.path, e.manifest),
            );
            reject("message of the wrong type", &expects);
        }
        None => deliver_reply(shared, peer, scope, recipient, manifest, payload, &reject),
    }
}

/// Delivers a message to the reply port exported as `recipient`, or counts a dead letter.
fn deliver_reply(
    shared: &Shared,
    peer: &PeerInfo,
    scope: &Arc<dyn Transport>,
    recipient: u64,
    manifest: u32,
    payload: &[u8],
    reject: &dyn Fn(&str, &dyn std::fmt::Display),
) {
    let reply = shared.replies.lock().map.remove(&recipient);
    match reply {
        Some(p) if p.manifest_id == manifest => {
            let mut port = Some(p.port);
            let decoded = with_transport(scope, || {
                Bincode.decode_erased(payload, &mut |de, end| match port.take() {
                    Some(port) => port.deliver(de, end),
                    None => Ok(()),
                })
            });
            if let Err(err) = decoded {
                reject("malformed reply", &err);
            }
        }
        Some(p) => {
            reject(
                "reply of the wrong type",
                &format_args!("manifest {manifest}"),
            );
            p.port.fail(Arc::from(format!(
                "node {} answered with the wrong type",
                peer.node
            )));
        }
        None => shared.system.record_dead_letter(
            &ActorPath::from_string(format!("//{}/#{recipient}", shared.config.name)),
            "remote message",
            DeadLetterReason::Stopped,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actor_core::prelude::*;

    use super::*;
    use crate::node::{Node, NodeConfig};

    struct Sink;

    impl Actor for Sink {
        type Msg = u32;
        async fn handle(&mut self, _: u32, _: &mut Context<Self>) -> ActorResult {
            Ok(())
        }
    }

    /// The wire id the node exposes `path` under.
    fn wire_id(shared: &Shared, path: &str) -> u64 {
        shared.exposed_by_path.lock().get(path).expect("exposed").id
    }

    /// A system with a node (on 127.0.0.1, port 0) exposing a `Sink` under each of `names`,
    /// with their wire ids.
    fn node_exposing(names: &[&str]) -> (ActorSystem, Node, Vec<(ActorRef<u32>, u64)>) {
        let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
        let config = NodeConfig::new("n", "127.0.0.1:0".parse().expect("address"), b"k".to_vec());
        let node = Node::start(&system, config).expect("node starts");
        let sinks = names
            .iter()
            .map(|name| {
                let sink = system
                    .spawn(Props::new(|| Sink).name(*name))
                    .expect("spawn");
                node.expose(&sink);
                let id = wire_id(&node.shared, &format!("/user/{name}"));
                (sink, id)
            })
            .collect();
        (system, node, sinks)
    }

    #[tokio::test]
    async fn a_readers_table_starts_over_when_it_is_full() {
        let (_system, node, sinks) = node_exposing(&["sink"]);
        let shared = node.shared.clone();
        let sink_id = sinks[0].1;
        let exposed = shared.exposed_by_id.lock()[&sink_id].clone();
        // The same export under many more wire ids than a table holds (ids no real export uses).
        let ids: Vec<u64> = (0..MAX_ROUTES as u64 + 1).map(|i| (1 << 62) + i).collect();
        shared
            .exposed_by_id
            .lock()
            .extend(ids.iter().map(|&id| (id, exposed.clone())));

        let mut routes = Routes::new();
        for &id in &ids[..MAX_ROUTES] {
            assert!(routes.get(&shared, id).is_some());
        }
        assert_eq!(routes.by_id.len(), MAX_ROUTES);
        assert!(routes.get(&shared, ids[MAX_ROUTES]).is_some());
        assert_eq!(routes.by_id.len(), 1, "started over with the new route");
        assert!(routes.get(&shared, sink_id).is_some());
    }

    #[tokio::test]
    async fn a_reader_keeps_its_routes_until_an_export_ends_then_fills_them_again() {
        let (_system, node, sinks) = node_exposing(&["kept", "ending"]);
        let shared = node.shared.clone();
        let [(_kept, kept_id), (ending, ending_id)] = [sinks[0].clone(), sinks[1].clone()];

        let mut routes = Routes::new();
        routes.refresh(&shared);
        assert!(routes.get(&shared, kept_id).is_some());
        assert!(routes.get(&shared, ending_id).is_some());
        assert!(routes.get(&shared, 1 << 60).is_none(), "no such export");
        assert_eq!(routes.by_id.len(), 2, "only exports are kept");

        // A known route is served from the reader's own table: the node's is not read again.
        let taken = shared
            .exposed_by_id
            .lock()
            .remove(&kept_id)
            .expect("exported");
        assert!(routes.get(&shared, kept_id).is_some());
        shared.exposed_by_id.lock().insert(kept_id, taken);

        // The node counts the ended export once the actor has stopped ...
        ending.stop();
        ending.wait_for_stop().await;
        let counted = async {
            while shared.exports_ended.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), counted)
            .await
            .expect("the node forgets the export");
        // ... and at its next batch the reader lets go of every route (and the refs they hold),
        // then takes the live ones from the node again.
        routes.refresh(&shared);
        assert!(routes.by_id.is_empty());
        assert!(routes.get(&shared, ending_id).is_none(), "ended");
        assert!(routes.get(&shared, kept_id).is_some(), "still exposed");
    }
}
