//! The seam that lets [`ActorRef`]s and [`Reply`] ports travel inside messages to other nodes.
//!
//! actor-core knows nothing of the network. A transport (actor-remote) implements [`Transport`]
//! and makes it current with [`with_transport`] while it encodes or decodes one message. Inside
//! that scope an `ActorRef<M>` or a `Reply<T>` serializes as a [`WireRef`] (the transport exports
//! the local target under an id on its node), and deserializes into a ref whose sends go back
//! through the transport, or into the original local ref when it points at the decoding node.
//! Outside such a scope they refuse to serialize, with an error that says why.
//!
//! The scope is a thread-local set only for the duration of one encode or decode (as Akka's
//! `currentTransportInformation`), not a registry: several systems and nodes live side by side in
//! one process. The message type of a ref is checked when it is decoded: a ref to an actor that
//! accepts another type is a decoding error, never a misdelivery.
//!
//! ```
//! use actor_core::{ActorRef, Reply};
//! // A message that carries a ref and a reply port can be sent to another node as is:
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum RoomMsg {
//!     Join { session: ActorRef<String> },
//!     Count(Reply<usize>),
//! }
//! // Serializing it without a transport is an error, not a silent copy:
//! let port = Reply::<usize>::from_fn(|_| {});
//! assert!(serde_json::to_string(&RoomMsg::Count(port)).is_err());
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::actor_ref::{ActorRef, RefTarget, TrySendError};
use crate::ask::Reply;
use crate::cell::Watcher;
use crate::dead_letters::DeadLetterReason;
use crate::failure::TerminationReason;
use crate::path::{ActorId, ActorPath};
use crate::system::ActorSystem;

/// Where a ref or a reply port points, as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireRef {
    /// The node that hosts the target.
    pub node: String,
    /// The target's id on that node (an export id, not necessarily the actor's id).
    pub id: u64,
    /// The target's path on that node, for logs and dead letters.
    pub path: String,
    /// The type name of the messages the target accepts.
    pub manifest: String,
}

/// A future that resolves when an exported actor ends.
pub type Ended = Pin<Box<dyn Future<Output = TerminationReason> + Send>>;

/// Checks, after a value was read from a payload, that nothing follows it: called between
/// decoding and acting on the value, so a payload with trailing bytes (a peer with another
/// version of the message type, or a corrupt frame) is rejected rather than half-read.
pub type PayloadEnd<'a> = &'a dyn Fn() -> Result<(), erased_serde::Error>;

/// Decodes one message from an erased deserializer, checks the payload's end, and tells the
/// message to the exported actor.
pub type ErasedDeliver = Box<
    dyn Fn(
            &mut dyn erased_serde::Deserializer<'_>,
            PayloadEnd<'_>,
        ) -> Result<(), erased_serde::Error>
        + Send
        + Sync,
>;

/// A local actor being exported so that peers can send to it.
pub struct ActorExport {
    /// The actor's id.
    pub id: ActorId,
    /// The actor's path.
    pub path: ActorPath,
    /// The type name of the messages it accepts.
    pub manifest: &'static str,
    /// Decodes a message and tells it to the actor.
    pub deliver: ErasedDeliver,
    /// Resolves when the actor ends (call once per watcher).
    pub ended: Box<dyn Fn() -> Ended + Send + Sync>,
    /// The `ActorRef<M>` itself, returned when a ref to it comes back to this node.
    pub local: Arc<dyn Any + Send + Sync>,
}

impl ActorExport {
    /// The export of `actor`.
    pub fn of<M: DeserializeOwned + Send + 'static>(actor: &ActorRef<M>) -> Self {
        let target = actor.clone();
        let watched = actor.clone();
        ActorExport {
            id: actor.id(),
            path: actor.path(),
            manifest: std::any::type_name::<M>(),
            deliver: Box::new(move |de, end| {
                let msg: M = erased_serde::deserialize(de)?;
                end()?;
                target.tell(msg);
                Ok(())
            }),
            ended: Box::new(move || {
                let actor = watched.clone();
                Box::pin(async move { actor.wait_for_stop().await })
            }),
            local: Arc::new(actor.clone()),
        }
    }
}

/// A reply port exported by this node: its answer comes back at most once, or it fails.
pub trait ReplyExport: Send + 'static {
    /// The type name of the answer.
    fn manifest(&self) -> &'static str;
    /// Decodes the answer (`Option<T>`: `None` when the remote side dropped the port unanswered),
    /// checks the payload's end, and completes the port. On an error the port is failed with it.
    fn deliver(
        self: Box<Self>,
        de: &mut dyn erased_serde::Deserializer<'_>,
        end: PayloadEnd<'_>,
    ) -> Result<(), erased_serde::Error>;
    /// Fails the port: the asker gets [`crate::AskError::Lost`] with this reason.
    fn fail(self: Box<Self>, reason: Arc<str>);
    /// True when the asker has given up, so the export can be forgotten.
    fn is_closed(&self) -> bool;
    /// Drops the port without telling anyone (for a transport that is shutting down: a port
    /// from another node would otherwise send its "dropped" notice while the transport may be in
    /// the middle of encoding).
    fn abandon(self: Box<Self>);
    /// The `Reply<T>` itself, returned when the port comes back to this node.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// Why a transport could not take a message for a remote target. The caller counts it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteSendError {
    /// The queue towards the peer is full.
    #[error("the queue to the peer is full")]
    Full,
    /// The peer is gone (or was never connected), or the target is known to have stopped.
    #[error("the target is unreachable: {0}")]
    Closed(String),
    /// The message could not be encoded.
    #[error("the message could not be encoded: {0}")]
    Encode(String),
}

/// A target on another node, as a transport hands it out.
pub trait RemoteTarget: Send + Sync + 'static {
    /// A local id for the proxy.
    fn id(&self) -> ActorId;
    /// The target's path, naming its node.
    fn path(&self) -> ActorPath;
    /// Where it points, for forwarding the ref to a third node.
    fn wire_ref(&self) -> WireRef;
    /// Encodes and queues one message.
    fn send(&self, msg: &dyn erased_serde::Serialize) -> Result<(), RemoteSendError>;
    /// Registers a watcher: it gets `Terminated` when the target ends or its node is lost.
    fn watch(&self, watcher: Watcher);
    /// Removes a watcher.
    fn unwatch(&self, watcher: ActorId);
    /// The local system, for dead-letter accounting.
    fn system(&self) -> Option<ActorSystem>;
}

/// What a [`WireRef`] resolves to on the decoding node.
pub enum Imported {
    /// An actor exported by this node: the `ActorRef<M>` it was exported from.
    LocalActor(Arc<dyn Any + Send + Sync>),
    /// A reply port exported by this node: the `Reply<T>` itself (taken out of the export table).
    LocalReply(Box<dyn Any + Send>),
    /// A target on another node (or a dead one, whose sends are counted as dead letters).
    Remote(Arc<dyn RemoteTarget>),
}

/// A transport that refs and reply ports can travel through. Implemented by actor-remote.
pub trait Transport: Send + Sync + 'static {
    /// Exports a local actor (idempotent per actor and message type); `make` builds the export
    /// the first time.
    fn export_actor(
        &self,
        id: ActorId,
        manifest: &'static str,
        make: &mut dyn FnMut() -> ActorExport,
    ) -> Result<WireRef, String>;
    /// Exports a one-shot reply port.
    fn export_reply(&self, port: Box<dyn ReplyExport>) -> Result<WireRef, String>;
    /// Resolves a decoded wire ref.
    fn import(&self, wire: &WireRef) -> Result<Imported, String>;
}

thread_local! {
    /// The transport of the innermost scope on this thread; kept after the scope ends so that the
    /// next scope of the same transport (the common case: one link encoding message after
    /// message) costs no reference-count traffic on a shared `Arc`.
    static CACHED: RefCell<Option<Arc<dyn Transport>>> = const { RefCell::new(None) };
    /// Whether a scope is active (the cached transport may be used).
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (one encode or decode) with `transport` current on this thread, restoring the previous
/// one afterwards (also on panic).
pub fn with_transport<R>(transport: &Arc<dyn Transport>, f: impl FnOnce() -> R) -> R {
    struct Restore {
        was_active: bool,
        /// The transport to put back, when this scope replaced another one.
        previous: Option<Option<Arc<dyn Transport>>>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.previous.take() {
                CACHED.with(|c| *c.borrow_mut() = previous);
            }
            ACTIVE.with(|a| a.set(self.was_active));
        }
    }
    let previous = CACHED.with(|c| {
        let mut cached = c.borrow_mut();
        match &*cached {
            Some(current) if Arc::ptr_eq(current, transport) => None,
            _ => Some(cached.replace(transport.clone())),
        }
    });
    let was_active = ACTIVE.with(|a| a.replace(true));
    // Only a nested scope of another transport must put the outer one back.
    let previous = if was_active { previous } else { None };
    let _restore = Restore {
        was_active,
        previous,
    };
    f()
}

fn current() -> Result<Arc<dyn Transport>, &'static str> {
    const OUTSIDE: &str =
        "refs and reply ports can only be serialized by a transport (actor-remote)";
    if !ACTIVE.with(|a| a.get()) {
        return Err(OUTSIDE);
    }
    CACHED.with(|c| c.borrow().clone()).ok_or(OUTSIDE)
}

impl<M: DeserializeOwned + Send + 'static> Serialize for ActorRef<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self.remote_wire_ref() {
            Some(wire) => wire,
            None => current()
                .map_err(S::Error::custom)?
                .export_actor(self.id(), std::any::type_name::<M>(), &mut || {
                    ActorExport::of(self)
                })
                .map_err(S::Error::custom)?,
        };
        wire.serialize(serializer)
    }
}

fn check_manifest<E: serde::de::Error>(wire: &WireRef, expected: &str) -> Result<(), E> {
    if wire.manifest == expected {
        Ok(())
    } else {
        Err(E::custom(format!(
            "the ref to {} on {} accepts {}, not {}",
            wire.path, wire.node, wire.manifest, expected
        )))
    }
}

impl<'de, M: Serialize + Send + 'static> Deserialize<'de> for ActorRef<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireRef::deserialize(deserializer)?;
        check_manifest(&wire, std::any::type_name::<M>())?;
        match current()
            .map_err(D::Error::custom)?
            .import(&wire)
            .map_err(D::Error::custom)?
        {
            Imported::LocalActor(local) => local
                .downcast_ref::<ActorRef<M>>()
                .cloned()
                .ok_or_else(|| D::Error::custom("a local ref of another message type")),
            Imported::Remote(target) => Ok(ActorRef::from_target(Arc::new(ImportedRef::<M> {
                target,
                _msg: PhantomData,
            }))),
            Imported::LocalReply(_) => Err(D::Error::custom(
                "a reply port where an actor ref was expected",
            )),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let transport = current().map_err(S::Error::custom)?;
        let port = self
            .take()
            .ok_or_else(|| S::Error::custom("this reply port was already sent"))?;
        transport
            .export_reply(Box::new(port))
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de, T: Serialize + Send + 'static> Deserialize<'de> for Reply<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireRef::deserialize(deserializer)?;
        check_manifest(&wire, std::any::type_name::<T>())?;
        match current()
            .map_err(D::Error::custom)?
            .import(&wire)
            .map_err(D::Error::custom)?
        {
            Imported::LocalReply(port) => port
                .downcast::<Reply<T>>()
                .map(|b| *b)
                .map_err(|_| D::Error::custom("a local reply port of another type")),
            Imported::Remote(target) => Ok(Reply::remote(move |answer: Option<T>| {
                if let Err(e) = target.send(&answer) {
                    tracing::warn!(to = %target.path(), error = %e, "a reply to another node was lost");
                    if let Some(system) = target.system() {
                        system.record_dead_letter(
                            &target.path(),
                            std::any::type_name::<T>(),
                            DeadLetterReason::Remote,
                        );
                    }
                }
            })),
            Imported::LocalActor(_) => Err(D::Error::custom(
                "an actor ref where a reply port was expected",
            )),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> ReplyExport for Reply<T> {
    fn manifest(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn deliver(
        self: Box<Self>,
        de: &mut dyn erased_serde::Deserializer<'_>,
        end: PayloadEnd<'_>,
    ) -> Result<(), erased_serde::Error> {
        let answer = erased_serde::deserialize::<Option<T>>(de).and_then(|a| end().map(|()| a));
        match answer {
            // `None`: the remote side dropped the port unanswered; dropping ours says so.
            Ok(answer) => {
                if let Some(answer) = answer {
                    (*self).send(answer);
                }
                Ok(())
            }
            Err(e) => {
                (*self).fail(Arc::from(format!("the answer could not be decoded: {e}")));
                Err(e)
            }
        }
    }
    fn fail(self: Box<Self>, reason: Arc<str>) {
        (*self).fail(reason)
    }
    fn is_closed(&self) -> bool {
        Reply::is_closed(self)
    }
    fn abandon(self: Box<Self>) {
        self.forget();
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// An `ActorRef<M>` decoded from the wire, pointing at another node.
struct ImportedRef<M> {
    target: Arc<dyn RemoteTarget>,
    _msg: PhantomData<fn(M)>,
}

impl<M: Serialize + Send + 'static> ImportedRef<M> {
    fn dead(&self, error: &RemoteSendError) {
        tracing::debug!(to = %self.target.path(), %error, "remote message not sent");
        if let Some(system) = self.target.system() {
            system.record_dead_letter(
                &self.target.path(),
                std::any::type_name::<M>(),
                DeadLetterReason::Remote,
            );
        }
    }
}

impl<M: Serialize + Send + 'static> RefTarget<M> for ImportedRef<M> {
    fn id(&self) -> ActorId {
        self.target.id()
    }
    fn path(&self) -> ActorPath {
        self.target.path()
    }
    fn tell(&self, msg: M) {
        if let Err(e) = self.target.send(&msg) {
            self.dead(&e);
        }
    }
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        match self.target.send(&msg) {
            Ok(()) => Ok(()),
            Err(RemoteSendError::Full) => Err(TrySendError::Full(msg)),
            Err(_) => Err(TrySendError::Closed(msg)),
        }
    }
    fn watch(&self, watcher: Watcher) {
        self.target.watch(watcher)
    }
    fn unwatch(&self, watcher: ActorId) {
        self.target.unwatch(watcher)
    }
    fn stop(&self) {
        tracing::warn!(recipient = %self.target.path(), "stopping an actor on another node is not supported; ignored");
    }
    fn system(&self) -> Option<ActorSystem> {
        self.target.system()
    }
    fn wire_ref(&self) -> Option<WireRef> {
        Some(self.target.wire_ref())
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::{ActorExport, ReplyExport};
    use crate::{Actor, ActorResult, ActorSystem, Context, Props, Reply, SystemConfig};

    /// Adds what it is told; answers the sum.
    struct Sum(u64);

    enum SumMsg {
        Add(u64),
        Get(Reply<u64>),
    }

    impl<'de> serde::Deserialize<'de> for SumMsg {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            u64::deserialize(d).map(SumMsg::Add)
        }
    }

    impl Actor for Sum {
        type Msg = SumMsg;
        async fn handle(&mut self, msg: SumMsg, _ctx: &mut Context<Self>) -> ActorResult {
            match msg {
                SumMsg::Add(n) => self.0 += n,
                SumMsg::Get(r) => r.send(self.0),
            }
            Ok(())
        }
    }

    fn trailing() -> Result<(), erased_serde::Error> {
        Err(serde::de::Error::custom("1 trailing bytes after the value"))
    }

    fn json(text: &str) -> serde_json::Deserializer<serde_json::de::StrRead<'_>> {
        serde_json::Deserializer::from_str(text)
    }

    #[tokio::test]
    async fn an_exported_actor_is_not_told_a_payload_with_trailing_bytes() {
        let sys = ActorSystem::new(SystemConfig::default()).expect("system");
        let sum = sys.spawn(Props::new(|| Sum(0))).expect("spawn");
        let export = ActorExport::of(&sum);
        let mut de = json("5");
        let rejected = (export.deliver)(
            &mut <dyn erased_serde::Deserializer>::erase(&mut de),
            &trailing,
        );
        assert!(rejected.is_err(), "the end check's error is returned");
        let mut de = json("7");
        (export.deliver)(
            &mut <dyn erased_serde::Deserializer>::erase(&mut de),
            &|| Ok(()),
        )
        .expect("a whole payload is told");
        assert_eq!(
            sum.ask(SumMsg::Get).await.expect("sum"),
            7,
            "only the whole payload arrived"
        );
    }

    #[tokio::test]
    async fn a_reply_port_whose_answer_has_trailing_bytes_fails_the_asker() {
        let (tx, rx) = oneshot::channel();
        let port: Box<dyn ReplyExport> = Box::new(Reply::<u64>::asked(tx, None));
        let mut de = json("3");
        let result = port.deliver(
            &mut <dyn erased_serde::Deserializer>::erase(&mut de),
            &trailing,
        );
        assert!(result.is_err());
        let reason: Arc<str> = rx
            .await
            .expect("answered")
            .expect_err("failed, not answered");
        assert!(reason.contains("trailing"), "{reason}");

        let (tx, rx) = oneshot::channel();
        let port: Box<dyn ReplyExport> = Box::new(Reply::<u64>::asked(tx, None));
        let mut de = json("3");
        port.deliver(
            &mut <dyn erased_serde::Deserializer>::erase(&mut de),
            &|| Ok(()),
        )
        .expect("delivered");
        assert_eq!(rx.await.expect("answered").expect("an answer"), 3);
    }
}
