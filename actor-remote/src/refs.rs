//! Refs to actors on other nodes: the typed [`RemoteRef`] a lookup returns, the untyped
//! [`Remote`] target behind refs and reply ports decoded from messages, and the per-link
//! [`NodeTransport`] that exports local refs and reply ports while a message is encoded and
//! resolves them while one is decoded (see `actor_core::transport`).
//!
//! Export ids share the actor system's id counter, so an exported actor, an extra export of the
//! same actor under another message type, and a reply port never collide.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use actor_core::transport::{
    ActorExport, Imported, RemoteSendError, RemoteTarget, ReplyExport, Transport, WireRef,
    with_transport,
};
use actor_core::{
    ActorId, ActorPath, ActorSystem, DeadLetterReason, RefTarget, Terminated, TerminationReason,
    TrySendError, Watcher,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::codec::{Bincode, Codec, CodecError};
use crate::node::{Deliver, Exposed, Link, PendingReply, RemoteWatch, Shared};
use crate::streams::{PushError, lane_of};
use crate::wire::{Frame, manifest_id};

/// The untyped core of every ref to an actor (or reply port) on another node.
pub(crate) struct Remote {
    /// The local proxy's id (what watchers see in `Terminated`).
    id: ActorId,
    wire: WireRef,
    path: ActorPath,
    manifest_id: u32,
    /// The link to the target's node, or why the target is known to be unreachable.
    link: Result<Arc<Link>, TerminationReason>,
    system: ActorSystem,
}

impl Remote {
    pub(crate) fn new(
        system: &ActorSystem,
        wire: WireRef,
        link: Result<Arc<Link>, TerminationReason>,
    ) -> Self {
        Remote {
            id: system.allocate_id(),
            path: ActorPath::from_string(format!("//{}{}", wire.node, wire.path)),
            manifest_id: manifest_id(&wire.manifest),
            wire,
            link,
            system: system.clone(),
        }
    }

    /// Encodes a message with the link's transport current (refs and reply ports inside it are
    /// exported for that peer) and queues it for the link's writer.
    fn push(
        &self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
    ) -> Result<(), RemoteSendError> {
        let link = self
            .link
            .as_ref()
            .map_err(|why| RemoteSendError::Closed(why.to_string()))?;
        if !link.alive.load(Ordering::Acquire) {
            return Err(RemoteSendError::Closed(format!(
                "node {} is unreachable",
                self.wire.node
            )));
        }
        let lane = &link.lanes[lane_of(self.wire.id, link.lanes.len())];
        let pushed = with_transport(&link.scope, || {
            lane.push(self.wire.id, self.manifest_id, link.large_message, encode)
        });
        let unreachable =
            || RemoteSendError::Closed(format!("node {} is unreachable", self.wire.node));
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Full) => Err(RemoteSendError::Full),
            Err(PushError::Closed) => Err(unreachable()),
            Err(PushError::Encode(e)) => {
                tracing::error!(recipient = %self.path, error = %e, "message could not be encoded");
                Err(RemoteSendError::Encode(e.0))
            }
            Err(PushError::Large(frame)) if frame.len() > link.max_frame => {
                tracing::error!(recipient = %self.path, size = frame.len(), max = link.max_frame, "message too large; not sent");
                Err(RemoteSendError::Encode(format!(
                    "a message of {} bytes is over the maximum frame of {} bytes",
                    frame.len(),
                    link.max_frame
                )))
            }
            Err(PushError::Large(frame)) => link.large.try_send(frame).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => RemoteSendError::Full,
                mpsc::error::TrySendError::Closed(_) => unreachable(),
            }),
        }
    }

    fn dead(&self, message_type: &'static str) {
        self.system
            .record_dead_letter(&self.path, message_type, DeadLetterReason::Remote);
    }
}

impl RemoteTarget for Remote {
    fn id(&self) -> ActorId {
        self.id
    }
    fn path(&self) -> ActorPath {
        self.path.clone()
    }
    fn wire_ref(&self) -> WireRef {
        self.wire.clone()
    }
    fn send(&self, msg: &dyn erased_serde::Serialize) -> Result<(), RemoteSendError> {
        self.push(|out| Bincode.encode(msg, out))
    }
    fn watch(&self, watcher: Watcher) {
        let link = match &self.link {
            Ok(link) => link,
            Err(reason) => {
                watcher.notify(Terminated {
                    id: self.id,
                    path: self.path.clone(),
                    reason: reason.clone(),
                });
                return;
            }
        };
        let mut watchers = link.watchers.lock();
        if link.alive.load(Ordering::Acquire) {
            let first = !watchers.iter().any(|w| w.remote_id == self.wire.id);
            watchers.push(RemoteWatch {
                remote_id: self.wire.id,
                proxy_id: self.id,
                path: self.path.clone(),
                watcher,
            });
            drop(watchers);
            if first {
                let frame = Frame::Watch {
                    target: self.wire.id,
                    watcher: self.id.as_u64(),
                };
                let _ = link.tx.try_send(frame);
            }
        } else {
            drop(watchers);
            let reason = TerminationReason::Unreachable(Arc::from(format!(
                "node {}: the connection is gone",
                self.wire.node
            )));
            watcher.notify(Terminated {
                id: self.id,
                path: self.path.clone(),
                reason,
            });
        }
    }
    fn unwatch(&self, watcher: ActorId) {
        if let Ok(link) = &self.link {
            link.watchers
                .lock()
                .retain(|w| !(w.remote_id == self.wire.id && w.watcher.id() == watcher));
        }
    }
    fn system(&self) -> Option<ActorSystem> {
        Some(self.system.clone())
    }
}

/// A ref to an actor on another node, as `Node::lookup` returns it: typed, so a message is
/// encoded directly (no type erasure on the hot path).
pub(crate) struct RemoteRef<M> {
    remote: Remote,
    _msg: std::marker::PhantomData<fn(M)>,
}

impl<M> RemoteRef<M> {
    pub(crate) fn new(remote: Remote) -> Self {
        RemoteRef {
            remote,
            _msg: std::marker::PhantomData,
        }
    }
}

impl<M: Serialize + Send + 'static> RefTarget<M> for RemoteRef<M> {
    fn id(&self) -> ActorId {
        self.remote.id
    }
    fn path(&self) -> ActorPath {
        self.remote.path.clone()
    }
    fn tell(&self, msg: M) {
        if self.remote.push(|out| Bincode.encode(&msg, out)).is_err() {
            self.remote.dead(std::any::type_name::<M>());
        }
    }
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        match self.remote.push(|out| Bincode.encode(&msg, out)) {
            Ok(()) => Ok(()),
            Err(RemoteSendError::Full) => Err(TrySendError::Full(msg)),
            Err(_) => Err(TrySendError::Closed(msg)),
        }
    }
    fn watch(&self, watcher: Watcher) {
        RemoteTarget::watch(&self.remote, watcher)
    }
    fn unwatch(&self, watcher: ActorId) {
        RemoteTarget::unwatch(&self.remote, watcher)
    }
    fn stop(&self) {
        tracing::warn!(recipient = %self.remote.path, "stopping an actor on another node is not supported; ignored");
    }
    fn system(&self) -> Option<ActorSystem> {
        Some(self.remote.system.clone())
    }
    fn wire_ref(&self) -> Option<WireRef> {
        Some(self.remote.wire.clone())
    }
}

/// The transport scope of one link: exports are made for its peer (reply ports fail when that
/// peer is lost), imports resolve against this node.
pub(crate) struct NodeTransport {
    pub(crate) shared: Weak<Shared>,
    /// The link's serial.
    pub(crate) link: u64,
}

impl NodeTransport {
    fn shared(&self) -> Result<Arc<Shared>, String> {
        self.shared
            .upgrade()
            .ok_or_else(|| "the node has shut down".to_owned())
    }
}

impl Transport for NodeTransport {
    fn export_actor(
        &self,
        id: ActorId,
        manifest: &'static str,
        make: &mut dyn FnMut() -> ActorExport,
    ) -> Result<WireRef, String> {
        let shared = self.shared()?;
        let exposed = export(&shared, id, manifest, || {
            let export = make();
            let deliver = export.deliver;
            let erased: Deliver = Arc::new(move |bytes| {
                Bincode.decode_erased(bytes, &mut |de, end| deliver(de, end))
            });
            (export.path, erased, export.ended, export.local)
        });
        Ok(WireRef {
            node: shared.config.name.clone(),
            id: exposed.id,
            path: exposed.path.as_str().to_owned(),
            manifest: manifest.to_owned(),
        })
    }

    fn export_reply(&self, port: Box<dyn ReplyExport>) -> Result<WireRef, String> {
        let shared = match self.shared() {
            Ok(shared) => shared,
            Err(e) => {
                // Called while a lane is locked for encoding: a notice sent from here could need
                // that same lane. The node is gone anyway.
                port.abandon();
                return Err(e);
            }
        };
        let id = shared.system.allocate_id().as_u64();
        let manifest = port.manifest();
        {
            let mut replies = shared.replies.lock();
            if replies.map.len() >= replies.next_prune {
                // Forget the ports whose askers gave up (timed out) meanwhile.
                replies.map.retain(|_, p| !p.port.is_closed());
                replies.next_prune = (replies.map.len() * 2).max(1024);
            }
            replies.map.insert(
                id,
                PendingReply {
                    link: self.link,
                    manifest_id: manifest_id(manifest),
                    port,
                },
            );
        }
        Ok(WireRef {
            node: shared.config.name.clone(),
            id,
            path: format!("/temp/reply-{id}"),
            manifest: manifest.to_owned(),
        })
    }

    fn import(&self, wire: &WireRef) -> Result<Imported, String> {
        let shared = self.shared()?;
        let target = if wire.node == shared.config.name {
            if let Some(e) = shared.exposed_by_id.lock().get(&wire.id) {
                return Ok(Imported::LocalActor(e.local.clone()));
            }
            if let Some(p) = shared.replies.lock().map.remove(&wire.id) {
                return Ok(Imported::LocalReply(p.port.into_any()));
            }
            Err(TerminationReason::Stopped)
        } else {
            shared.links.lock().get(&wire.node).cloned().ok_or_else(|| {
                TerminationReason::Unreachable(Arc::from(format!(
                    "not connected to node {}",
                    wire.node
                )))
            })
        };
        Ok(Imported::Remote(Arc::new(Remote::new(
            &shared.system,
            wire.clone(),
            target,
        ))))
    }
}

/// The parts of an export: path, deliver, the end future's factory, the local ref.
type ExportParts = (
    ActorPath,
    Deliver,
    Box<dyn Fn() -> actor_core::transport::Ended + Send + Sync>,
    Arc<dyn std::any::Any + Send + Sync>,
);

/// Exports a local actor once per message type, and forgets the export when the actor ends.
pub(crate) fn export(
    shared: &Arc<Shared>,
    id: ActorId,
    manifest: &'static str,
    make: impl FnOnce() -> ExportParts,
) -> Arc<Exposed> {
    let exposed = {
        let mut index = shared.export_index.lock();
        let mut by_id = shared.exposed_by_id.lock();
        if let Some(e) = index.get(&(id, manifest)).and_then(|w| by_id.get(w)) {
            return e.clone();
        }
        let (path, deliver, ended, local) = make();
        let wire_id = if by_id.contains_key(&id.as_u64()) {
            shared.system.allocate_id().as_u64()
        } else {
            id.as_u64()
        };
        let exposed = Arc::new(Exposed {
            id: wire_id,
            path,
            manifest,
            manifest_id: manifest_id(manifest),
            deliver,
            ended,
            local,
        });
        index.insert((id, manifest), wire_id);
        by_id.insert(wire_id, exposed.clone());
        exposed
    };
    let ended = (exposed.ended)();
    let weak = Arc::downgrade(shared);
    let wire_id = exposed.id;
    shared.runtime.spawn(async move {
        let reason = ended.await;
        if let Some(shared) = weak.upgrade() {
            shared.ended.lock().record(wire_id, &reason);
            shared.export_index.lock().remove(&(id, manifest));
            shared.exposed_by_id.lock().remove(&wire_id);
            // Readers drop their routes to it (see `routes.rs`).
            shared.exports_ended.fetch_add(1, Ordering::Release);
            let mut by_path = shared.exposed_by_path.lock();
            by_path.retain(|_, e| e.id != wire_id);
        }
    });
    exposed
}

/// Fails every reply port exported over link `link` to `node` (the link is gone).
pub(crate) fn fail_replies(shared: &Shared, link: u64, node: &str, why: &str) {
    let failed: Vec<PendingReply> = {
        let mut replies = shared.replies.lock();
        let ids: Vec<u64> = replies
            .map
            .iter()
            .filter(|(_, p)| p.link == link)
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| replies.map.remove(id)).collect()
    };
    if failed.is_empty() {
        return;
    }
    tracing::debug!(%node, asks = failed.len(), "failing asks to a lost node");
    let reason: Arc<str> = Arc::from(format!("the connection to node {node} was lost ({why})"));
    for p in failed {
        p.port.fail(reason.clone());
    }
}
