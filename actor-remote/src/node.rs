//! The QUIC driver: a [`Node`] binds a quinn endpoint, connects to and accepts peers, runs the
//! sans-IO [`Handshake`] over each connection's control stream, then keeps every peer's
//! [`Association`] (heartbeats, failure detection) ticking. It makes no protocol decisions itself.
//!
//! Security: TLS 1.3 always (rustls with ring only), either mutual TLS with a cluster CA
//! ([`ClusterTls`]) or development mode (a generated certificate per node and the shared cluster
//! secret proven in the handshake). A peer with a certificate not signed by the CA, the wrong
//! secret, codec or protocol version is refused before any message is delivered, and both sides
//! learn why.
//!
//! Messaging: a node [`Node::expose`]s local actors; a peer [`Node::lookup`]s one by path with its
//! message type checked, and gets an ordinary `ActorRef<M>` whose `tell` encodes the message and
//! queues a frame for one of the connection's lanes (see `streams.rs`), and whose `ask` sends a
//! reply port that travels. Refs and reply ports inside messages are exported and resolved by the
//! link's transport scope (`refs.rs`). Delivery is at most once and per-recipient ordered; a
//! message that cannot be queued (peer gone, queue full) is a counted dead letter. Watchers of a
//! remote ref get `Terminated` when the remote actor ends (a `Watch` frame asks the peer, which
//! answers with `Terminated` and the reason), or with `TerminationReason::Unreachable` when its
//! node is lost; pending asks over a lost link fail with `AskError::Lost`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_core::transport::{ActorExport, Ended, ReplyExport, Transport, WireRef, with_transport};
use actor_core::{
    ActorId, ActorPath, ActorRef, ActorSystem, DeadLetterReason, Terminated, TerminationReason,
    Watcher,
};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use supervision::Backoff;
use tokio::sync::{mpsc, oneshot};

use crate::association::{Action, Association, Incarnation, Incarnations, Liveness};
use crate::codec::{Bincode, Codec, CodecError};
use crate::handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo, Progress};
use crate::refs::{NodeTransport, Remote, RemoteRef, export, fail_replies};
use crate::routes::{Routes, deliver_tell};
use crate::streams::{Lane, accept_streams, lane_writer, large_writer, read_datagrams, writer};
pub use crate::tls::ClusterTls;
pub use crate::tls::dev_quic_configs;
use crate::tls::{SERVER_NAME, cluster_quic_configs, tls_failure};
use crate::wire::{Decoded, Frame, FrameDecoder, LookupResult, RejectReason};

/// Settings of a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's name, unique in the cluster.
    pub name: String,
    /// Where to bind (port 0 for any).
    pub bind: SocketAddr,
    /// The shared cluster secret, proven by both sides in the handshake. Required in development
    /// mode (no [`NodeConfig::tls`]); optional, as a second factor, with mutual TLS (empty: none).
    pub secret: Vec<u8>,
    /// Mutual TLS with a cluster CA (`None`: development mode, generated certificates that are
    /// not checked, so the secret is what admits a peer).
    pub tls: Option<ClusterTls>,
    /// Failure detection (default: heartbeat every 1 s, unreachable after 5 s of silence).
    pub liveness: Liveness,
    /// How long a peer may take to complete the handshake.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from a peer.
    pub max_frame: usize,
    /// Messages queued per peer (over all its lanes) before further sends become dead letters.
    pub outbound_queue: usize,
    /// Ordered lanes for user messages (default 4): one stream each, chosen by a hash of the
    /// recipient, so each recipient's messages stay in order and one stalled lane does not hold
    /// up the others.
    pub lanes: usize,
    /// Messages whose encoding is larger than this (default 64 KiB) travel on a stream of their
    /// own instead of a lane; up to [`NodeConfig::max_frame`].
    pub large_message: usize,
    /// How long a lookup waits for the peer's answer.
    pub lookup_timeout: Duration,
    /// How a lost connection this node dialled is re-established: delays between attempts
    /// (default 200 ms growing to 5 s, 20% jitter); `None` does not reconnect.
    pub reconnect: Option<Backoff>,
}

impl NodeConfig {
    /// A config with defaults for everything but the name, address and secret.
    pub fn new(name: impl Into<String>, bind: SocketAddr, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bind,
            secret: secret.into(),
            tls: None,
            liveness: Liveness::default(),
            handshake_timeout: Duration::from_secs(5),
            max_frame: 16 * 1024 * 1024,
            outbound_queue: 64 * 1024,
            lanes: 4,
            large_message: 64 * 1024,
            lookup_timeout: Duration::from_secs(5),
            reconnect: Some(
                Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).jitter(0.2),
            ),
        }
    }
}

/// Why a node could not start or connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The settings cannot work.
    #[error("invalid node config: {0}")]
    Config(String),
    /// TLS setup failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// Binding the UDP socket failed.
    #[error("binding {addr} failed: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        error: std::io::Error,
    },
    /// The QUIC connection failed.
    #[error("connecting to {addr} failed: {reason}")]
    Connect {
        /// The peer's address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The peer was refused, or refused us.
    #[error("handshake with {addr} failed: {error}")]
    Handshake {
        /// The peer's address.
        addr: SocketAddr,
        /// Why.
        error: HandshakeError,
    },
}

/// Why a remote lookup failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No connection to a node of that name.
    #[error("not connected to node {0}")]
    UnknownPeer(String),
    /// The peer has no exposed actor at that path.
    #[error("node {node} exposes no actor at {path}")]
    NotFound {
        /// The peer.
        node: String,
        /// The path.
        path: String,
    },
    /// The actor accepts another message type.
    #[error("{path} on {node} accepts {actual}, not {expected}")]
    TypeMismatch {
        /// The peer.
        node: String,
        /// The path.
        path: String,
        /// What the asker would send.
        expected: String,
        /// What the actor accepts.
        actual: String,
    },
    /// The peer did not answer in time.
    #[error("lookup on {0} timed out")]
    Timeout(String),
    /// The connection was lost meanwhile.
    #[error("the connection to {0} was lost")]
    Disconnected(String),
}

/// Why an unreliable send was not made (the message is counted as a dead letter).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnreliableError {
    /// No connection to the actor's node.
    #[error("not connected to node {0}")]
    NotConnected(String),
    /// The encoded message does not fit in one datagram on this connection.
    #[error("a message of {size} bytes does not fit in a datagram (at most {max} bytes here)")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The largest datagram the connection carries now.
        max: usize,
    },
    /// The message could not be encoded.
    #[error("the message could not be encoded: {0}")]
    Encode(String),
    /// The connection does not carry datagrams (the peer disabled them).
    #[error("the connection to node {0} does not carry datagrams")]
    Unsupported(String),
}

/// A peer's state as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Connected and heard from recently.
    Up,
    /// Declared unreachable (silent too long, or the connection was lost).
    Unreachable,
}

/// One peer of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's node name.
    pub node: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its state.
    pub state: PeerState,
}

/// How many refusals [`Node::refusals`] keeps (the oldest go first).
const MAX_REFUSALS: usize = 256;

/// A refused connection attempt, kept for operators (and tests).
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The remote address.
    pub addr: SocketAddr,
    /// Why.
    pub error: HandshakeError,
}

/// Decodes a payload and tells it to the exposed actor.
pub(crate) type Deliver = Arc<dyn Fn(&[u8]) -> Result<(), CodecError> + Send + Sync>;

/// A local actor reachable from peers (exposed by path, or exported because a ref to it travelled
/// in a message).
pub(crate) struct Exposed {
    /// Its id on the wire.
    pub(crate) id: u64,
    pub(crate) path: ActorPath,
    pub(crate) manifest: &'static str,
    pub(crate) manifest_id: u32,
    pub(crate) deliver: Deliver,
    /// Resolves when the actor ends, with its reason.
    pub(crate) ended: Box<dyn Fn() -> Ended + Send + Sync>,
    /// The `ActorRef<M>`, for refs to it that come back to this node.
    pub(crate) local: Arc<dyn std::any::Any + Send + Sync>,
}

/// A reply port exported to a peer, waiting for its answer.
pub(crate) struct PendingReply {
    /// The link the request went over: the port fails if it is lost.
    pub(crate) link: u64,
    pub(crate) manifest_id: u32,
    pub(crate) port: Box<dyn ReplyExport>,
}

/// The exported reply ports, pruned of abandoned ones as the table grows.
pub(crate) struct Replies {
    pub(crate) map: HashMap<u64, PendingReply>,
    pub(crate) next_prune: usize,
}

/// The last [`EndedExports::CAPACITY`] exports that ended, with their wire reasons.
#[derive(Default)]
pub(crate) struct EndedExports {
    reasons: HashMap<u64, String>,
    order: std::collections::VecDeque<u64>,
}

impl EndedExports {
    const CAPACITY: usize = 4096;

    pub(crate) fn record(&mut self, id: u64, reason: &TerminationReason) {
        if self.order.len() == Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.reasons.remove(&old);
        }
        self.order.push_back(id);
        self.reasons.insert(id, wire_reason(reason));
    }

    fn get(&self, id: u64) -> Option<&str> {
        self.reasons.get(&id).map(String::as_str)
    }
}

/// A local watcher of an actor on the other node.
pub(crate) struct RemoteWatch {
    pub(crate) remote_id: u64,
    pub(crate) proxy_id: ActorId,
    pub(crate) path: ActorPath,
    pub(crate) watcher: Watcher,
}

/// The sending side of one established connection.
pub(crate) struct Link {
    node: String,
    /// The user-message lanes' queues.
    pub(crate) lanes: Vec<Arc<Lane>>,
    /// The queue of messages too large for a lane.
    pub(crate) large: mpsc::Sender<Vec<u8>>,
    /// Encodings above this go to `large`; above `max_frame` they are refused.
    pub(crate) large_message: usize,
    pub(crate) max_frame: usize,
    /// Unique per link in this node (reply ports fail with the link they were sent over).
    pub(crate) serial: u64,
    conn: quinn::Connection,
    pub(crate) tx: mpsc::Sender<Frame>,
    /// False once the peer is lost: sends become dead letters at once.
    pub(crate) alive: std::sync::atomic::AtomicBool,
    /// Tells the writers to stop and count what is still queued.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Watchers of actors on this node: told `Terminated` when the remote actor ends, or
    /// `Unreachable` when the link dies.
    pub(crate) watchers: Mutex<Vec<RemoteWatch>>,
    /// The transport scope messages to this peer are encoded in.
    pub(crate) scope: Arc<dyn Transport>,
}

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    endpoint: quinn::Endpoint,
    /// Set by `shutdown`: no more reconnecting.
    closed: std::sync::atomic::AtomicBool,
    /// The address this node dialled each peer at, for reconnecting.
    dialed: Mutex<HashMap<String, SocketAddr>>,
    pub(crate) system: ActorSystem,
    pub(crate) runtime: tokio::runtime::Handle,
    incarnation: u64,
    peers: Mutex<HashMap<String, PeerStatus>>,
    pub(crate) links: Mutex<HashMap<String, Arc<Link>>>,
    refusals: Mutex<Vec<Refusal>>,
    incarnations: Mutex<Incarnations>,
    pub(crate) exposed_by_path: Mutex<HashMap<String, Arc<Exposed>>>,
    pub(crate) exposed_by_id: Mutex<HashMap<u64, Arc<Exposed>>>,
    /// Exports ended so far (each one removed from `exposed_by_id`): a reader's
    /// [`Routes`](crate::routes::Routes) forgets its routes when this moves.
    pub(crate) exports_ended: AtomicU64,
    pub(crate) export_index: Mutex<HashMap<(ActorId, &'static str), u64>>,
    pub(crate) replies: Mutex<Replies>,
    /// How recently ended exports ended, so a late `Watch` learns the real reason (bounded).
    pub(crate) ended: Mutex<EndedExports>,
    pending_lookups: Mutex<HashMap<u64, oneshot::Sender<LookupResult>>>,
    next_request: AtomicU64,
    /// Frames received that could not be delivered (malformed payload, unknown recipient).
    rejected_frames: AtomicU64,
    /// Messages written to and read from peers.
    pub(crate) traffic: Arc<Traffic>,
}

/// Message counters of a node (added to once per batch, not per message).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
}

/// What a node has moved so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStats {
    /// User messages (tells, asks and replies) written to peers.
    pub messages_sent: u64,
    /// User messages read from peers.
    pub messages_received: u64,
    /// Frames from peers that were rejected (malformed, wrong type).
    pub rejected_frames: u64,
}

impl Shared {
    /// Counts a frame from a peer that was rejected.
    pub(crate) fn count_rejected(&self) {
        self.rejected_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// The link is gone: mark its peer, drop the link, fail what waits on it, tell the watchers
    /// of the peer's actors, and start reconnecting if this node dialled it. A link that was
    /// already replaced (the peer reconnected) only ends itself.
    fn lose(self: &Arc<Self>, lost: &Arc<Link>, incarnation: u64, why: &str) {
        let node = lost.node.as_str();
        let current = {
            let mut links = self.links.lock();
            let current = links.get(node).is_some_and(|l| Arc::ptr_eq(l, lost));
            if current {
                links.remove(node);
            }
            current
        };
        if current
            && let Some(p) = self.peers.lock().get_mut(node)
            && p.incarnation == incarnation
        {
            p.state = PeerState::Unreachable;
        }
        // Once per link. Under the watchers lock, so a concurrent `watch` either lands in the
        // list taken here or sees the link dead and notifies at once.
        let watchers = {
            let mut w = lost.watchers.lock();
            if !lost.alive.swap(false, Ordering::AcqRel) {
                return;
            }
            std::mem::take(&mut *w)
        };
        lost.shutdown.send_replace(true);
        lost.conn.close(0u32.into(), why.as_bytes());
        fail_replies(self, lost.serial, node, why);
        {
            let reason = TerminationReason::Unreachable(Arc::from(format!("node {node}: {why}")));
            for w in watchers {
                w.watcher.notify(Terminated {
                    id: w.proxy_id,
                    path: w.path,
                    reason: reason.clone(),
                });
            }
            let addr = self.dialed.lock().get(node).copied();
            if let (true, Some(addr), Some(backoff)) = (current, addr, self.config.reconnect)
                && !self.closed.load(Ordering::Acquire)
            {
                self.runtime
                    .spawn(redial(Arc::downgrade(self), node.to_owned(), addr, backoff));
            }
        }
    }
}

/// Re-establishes a lost connection this node had dialled, with growing, jittered delays, until
/// it succeeds, the peer connects back by itself, or the node shuts down.
async fn redial(shared: std::sync::Weak<Shared>, node: String, addr: SocketAddr, backoff: Backoff) {
    let mut attempt = 0u32;
    loop {
        let mut sample = [0u8; 8];
        let random =
            match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut sample) {
                Ok(()) => (u64::from_le_bytes(sample) >> 11) as f64 / (1u64 << 53) as f64,
                Err(_) => 0.5,
            };
        tokio::time::sleep(backoff.delay(attempt, random)).await;
        attempt = attempt.saturating_add(1);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.closed.load(Ordering::Acquire) || shared.links.lock().contains_key(&node) {
            return;
        }
        match dial(&shared, addr).await {
            Ok(peer) => {
                tracing::info!(%node, %addr, attempt, incarnation = peer.incarnation, "reconnected");
                return;
            }
            Err(error) => tracing::debug!(%node, %addr, attempt, %error, "reconnect failed"),
        }
    }
}

/// Dials `addr`, runs the handshake, and remembers the address for reconnecting.
async fn dial(shared: &Arc<Shared>, addr: SocketAddr) -> Result<PeerInfo, NodeError> {
    let failed = |e: &quinn::ConnectionError| match tls_failure(e) {
        Some(cause) => NodeError::Handshake {
            addr,
            error: HandshakeError::Tls(cause),
        },
        None => NodeError::Connect {
            addr,
            reason: e.to_string(),
        },
    };
    let connecting =
        shared
            .endpoint
            .connect(addr, SERVER_NAME)
            .map_err(|e| NodeError::Connect {
                addr,
                reason: e.to_string(),
            })?;
    let conn = connecting.await.map_err(|e| failed(&e))?;
    let (send, recv) = conn.open_bi().await.map_err(|e| failed(&e))?;
    let peer = establish(shared, conn, send, recv)
        .await
        .map_err(|error| NodeError::Handshake { addr, error })?;
    shared.dialed.lock().insert(peer.node.clone(), addr);
    Ok(peer)
}

/// A node of the cluster: one QUIC endpoint, its peers and their liveness.
///
/// ```
/// use actor_core::{ActorSystem, SystemConfig};
/// use actor_remote::node::{Node, NodeConfig, PeerState};
/// use actor_remote::ping::{PING_PATH, PingMsg, spawn_ping};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let any = "127.0.0.1:0".parse()?;
/// let (sys_a, sys_b) = (ActorSystem::new(SystemConfig::default())?, ActorSystem::new(SystemConfig::default())?);
/// let alpha = Node::start(&sys_a, NodeConfig::new("alpha", any, "secret"))?;
/// let beta = Node::start(&sys_b, NodeConfig::new("beta", any, "secret"))?;
/// spawn_ping(&sys_b, &beta)?;
///
/// let peer = alpha.connect(beta.local_addr()?).await?;
/// assert_eq!(peer.node, "beta");
/// assert_eq!(alpha.peers()[0].state, PeerState::Up);
/// let ping = alpha.lookup::<PingMsg>("beta", PING_PATH).await?;
/// let pong = ping.ask(|reply| PingMsg::Ping { reply }).await?;
/// assert_eq!(pong.incarnation, beta.incarnation());
/// # Ok(()) }
/// ```
pub struct Node {
    endpoint: quinn::Endpoint,
    pub(crate) shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Binds the endpoint for `system` and starts accepting peers. Call inside a tokio runtime.
    pub fn start(system: &ActorSystem, config: NodeConfig) -> Result<Node, NodeError> {
        let idle = config.liveness.unreachable_after * 2;
        let (server_config, client_config) = match &config.tls {
            Some(files) => cluster_quic_configs(files, idle)?,
            None if config.secret.is_empty() => {
                return Err(NodeError::Config(
                    "a cluster secret is required in development mode (without NodeConfig::tls, \
                     certificates are not checked)"
                        .into(),
                ));
            }
            None => dev_quic_configs(idle)?,
        };

        let mut endpoint =
            quinn::Endpoint::server(server_config, config.bind).map_err(|error| {
                NodeError::Bind {
                    addr: config.bind,
                    error,
                }
            })?;
        endpoint.set_default_client_config(client_config);

        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            NodeError::Config("Node::start must be called inside a tokio runtime".into())
        })?;
        let shared = Arc::new(Shared {
            config,
            endpoint: endpoint.clone(),
            closed: std::sync::atomic::AtomicBool::new(false),
            dialed: Mutex::new(HashMap::new()),
            system: system.clone(),
            runtime,
            incarnation,
            peers: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
            incarnations: Mutex::new(Incarnations::default()),
            exposed_by_path: Mutex::new(HashMap::new()),
            exposed_by_id: Mutex::new(HashMap::new()),
            exports_ended: AtomicU64::new(0),
            export_index: Mutex::new(HashMap::new()),
            ended: Mutex::new(EndedExports::default()),
            replies: Mutex::new(Replies {
                map: HashMap::new(),
                next_prune: 1024,
            }),
            pending_lookups: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            rejected_frames: AtomicU64::new(0),
            traffic: Arc::new(Traffic::default()),
        });
        let accept = {
            let (endpoint, shared) = (endpoint.clone(), shared.clone());
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let addr = incoming.remote_address();
                        let refuse = |error: HandshakeError| {
                            tracing::warn!(%addr, %error, "refused a peer");
                            let mut refusals = shared.refusals.lock();
                            if refusals.len() == MAX_REFUSALS {
                                refusals.remove(0);
                            }
                            refusals.push(Refusal { addr, error });
                        };
                        let conn = match incoming.await {
                            Ok(conn) => conn,
                            Err(e) => {
                                if let Some(cause) = tls_failure(&e) {
                                    refuse(HandshakeError::Tls(cause));
                                }
                                return;
                            }
                        };
                        let (send, recv) = match conn.accept_bi().await {
                            Ok(streams) => streams,
                            Err(e) => {
                                if let Some(cause) = tls_failure(&e) {
                                    refuse(HandshakeError::Tls(cause));
                                }
                                return;
                            }
                        };
                        if let Err(error) = establish(&shared, conn, send, recv).await {
                            refuse(error);
                        }
                    });
                }
            })
        };
        tracing::info!(node = %shared.config.name, addr = ?endpoint.local_addr().ok(), "node started");
        Ok(Node {
            endpoint,
            shared,
            accept,
        })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// This process's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// Connects to the node at `addr` and authenticates it. If the connection is later lost,
    /// this node re-dials the address with [`NodeConfig::reconnect`]'s backoff.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerInfo, NodeError> {
        dial(&self.shared, addr).await
    }

    /// The peers and their states.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let mut peers: Vec<PeerStatus> = self.shared.peers.lock().values().cloned().collect();
        peers.sort_by(|a, b| a.node.cmp(&b.node));
        peers
    }

    /// Makes a local actor reachable from peers at its path (e.g. `/user/echo`), for messages of
    /// type `M` (its type name is the manifest peers must ask for). The actor stays reachable
    /// until it stops.
    pub fn expose<M>(&self, actor: &ActorRef<M>)
    where
        M: DeserializeOwned + Send + 'static,
    {
        let target = actor.clone();
        let exposed = export(&self.shared, actor.id(), std::any::type_name::<M>(), || {
            let parts = ActorExport::of(actor);
            // Typed decoding: no type erasure for messages to exposed actors.
            let deliver: Deliver = Arc::new(move |bytes| {
                let msg: M = Bincode.decode(bytes)?;
                target.tell(msg);
                Ok(())
            });
            (parts.path, deliver, parts.ended, parts.local)
        });
        self.shared
            .exposed_by_path
            .lock()
            .insert(actor.path().as_str().to_owned(), exposed);
    }

    /// Finds the actor exposed at `path` on the connected node `node`, checking that it accepts
    /// `M`, and returns a ref to it. Tells through the ref travel over QUIC.
    pub async fn lookup<M>(&self, node: &str, path: &str) -> Result<ActorRef<M>, RemoteError>
    where
        M: Serialize + Send + 'static,
    {
        let link = self
            .shared
            .links
            .lock()
            .get(node)
            .cloned()
            .ok_or_else(|| RemoteError::UnknownPeer(node.into()))?;
        let request = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending_lookups.lock().insert(request, tx);
        let manifest = std::any::type_name::<M>().to_owned();
        let frame = Frame::Lookup {
            request,
            path: path.into(),
            manifest: manifest.clone(),
        };
        if link.tx.try_send(frame).is_err() {
            self.shared.pending_lookups.lock().remove(&request);
            return Err(RemoteError::Disconnected(node.into()));
        }
        let answer = tokio::time::timeout(self.shared.config.lookup_timeout, rx).await;
        self.shared.pending_lookups.lock().remove(&request);
        match answer {
            Err(_) => Err(RemoteError::Timeout(node.into())),
            Ok(Err(_)) => Err(RemoteError::Disconnected(node.into())),
            Ok(Ok(LookupResult::NotFound)) => Err(RemoteError::NotFound {
                node: node.into(),
                path: path.into(),
            }),
            Ok(Ok(LookupResult::TypeMismatch { actual })) => Err(RemoteError::TypeMismatch {
                node: node.into(),
                path: path.into(),
                expected: manifest,
                actual,
            }),
            Ok(Ok(LookupResult::Found { actor })) => {
                let wire = WireRef {
                    node: node.to_owned(),
                    id: actor,
                    path: path.to_owned(),
                    manifest,
                };
                let remote = Remote::new(&self.shared.system, wire, Ok(link));
                Ok(ActorRef::from_target(Arc::new(RemoteRef::<M>::new(remote))))
            }
        }
    }

    /// Frames from peers that could not be delivered (malformed payload, unknown recipient).
    pub fn rejected_frames(&self) -> u64 {
        self.shared.rejected_frames.load(Ordering::Relaxed)
    }

    /// Sends `msg` to `to` as one QUIC datagram: no retransmission, no ordering, no congestion
    /// queueing; for game-state snapshots that would be stale by the time a retransmission
    /// arrived. Loss in the network is silent (nobody can count it); every failure this node can
    /// see is returned and counted as a dead letter. A local `to` gets a plain `tell`.
    ///
    /// ```no_run
    /// # async fn demo(node: &actor_remote::node::Node) -> Result<(), Box<dyn std::error::Error>> {
    /// # use actor_core::ActorRef;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Snapshot { tick: u64, x: f32, y: f32 }
    /// let view: ActorRef<Snapshot> = node.lookup("beta", "/user/view").await?;
    /// node.tell_unreliable(&view, Snapshot { tick: 7, x: 1.0, y: 2.0 })?;
    /// # Ok(()) }
    /// ```
    pub fn tell_unreliable<M>(&self, to: &ActorRef<M>, msg: M) -> Result<(), UnreliableError>
    where
        M: Serialize + Send + 'static,
    {
        let Some(wire) = to.remote_wire_ref() else {
            to.tell(msg);
            return Ok(());
        };
        let result = self.datagram(&wire, &msg);
        if let Err(e) = &result {
            tracing::debug!(to = %to.path(), error = %e, "unreliable send not made");
            self.shared.system.record_dead_letter(
                &to.path(),
                std::any::type_name::<M>(),
                DeadLetterReason::Remote,
            );
        }
        result
    }

    fn datagram<M: Serialize>(&self, wire: &WireRef, msg: &M) -> Result<(), UnreliableError> {
        let link = self
            .shared
            .links
            .lock()
            .get(&wire.node)
            .cloned()
            .ok_or_else(|| UnreliableError::NotConnected(wire.node.clone()))?;
        let mut payload = Vec::new();
        with_transport(&link.scope, || Bincode.encode(msg, &mut payload))
            .map_err(|e| UnreliableError::Encode(e.0))?;
        let mut bytes = Vec::with_capacity(payload.len() + 32);
        Frame::Tell {
            recipient: wire.id,
            manifest: crate::wire::manifest_id(&wire.manifest),
            payload,
        }
        .encode(&Bincode, &mut bytes)
        .map_err(|e| UnreliableError::Encode(e.to_string()))?;
        let max = link
            .conn
            .max_datagram_size()
            .ok_or_else(|| UnreliableError::Unsupported(wire.node.clone()))?;
        if bytes.len() > max {
            return Err(UnreliableError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        match link.conn.send_datagram(bytes.into()) {
            Ok(()) => {
                self.shared.traffic.sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(quinn::SendDatagramError::TooLarge) => {
                Err(UnreliableError::TooLarge { size: 0, max })
            }
            Err(quinn::SendDatagramError::ConnectionLost(_)) => {
                Err(UnreliableError::NotConnected(wire.node.clone()))
            }
            Err(_) => Err(UnreliableError::Unsupported(wire.node.clone())),
        }
    }

    /// Messages moved so far.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            messages_sent: self.shared.traffic.sent.load(Ordering::Relaxed),
            messages_received: self.shared.traffic.received.load(Ordering::Relaxed),
            rejected_frames: self.shared.rejected_frames.load(Ordering::Relaxed),
        }
    }

    /// Connection attempts this node refused, with the reason.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.shared.refusals.lock().clone()
    }

    /// Closes every connection and the endpoint.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.accept.abort();
        self.endpoint.close(0u32.into(), b"node shutting down");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs the handshake on a fresh control stream, registers the peer, and starts its association.
async fn establish(
    shared: &Arc<Shared>,
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<PeerInfo, HandshakeError> {
    let addr = conn.remote_address();
    let config = HandshakeConfig {
        node: shared.config.name.clone(),
        incarnation: shared.incarnation,
        secret: (!shared.config.secret.is_empty()).then(|| shared.config.secret.clone()),
        codec: Bincode.name().into(),
        timeout: shared.config.handshake_timeout,
    };
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(|_| {
        HandshakeError::Refused(RejectReason::Protocol("no randomness for a nonce".into()))
    })?;
    let mut handshake = Handshake::new(config, nonce, Instant::now());
    let mut decoder = FrameDecoder::new(Bincode, shared.config.max_frame);
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::from_std(Instant::now() + shared.config.handshake_timeout);
    let outcome: Result<PeerInfo, HandshakeError> = loop {
        // In TLS 1.3 the server checks the client's certificate after the client considers the
        // TLS handshake done: a refusal then arrives here, as a connection closed with an alert.
        if let Err(e) = flush(&mut send, handshake.poll_transmit()).await {
            break Err(stream_ended(match &e {
                quinn::WriteError::ConnectionLost(e) => Some(e),
                _ => None,
            }));
        }
        let read = tokio::select! {
            r = recv.read(&mut buf) => r,
            _ = tokio::time::sleep_until(deadline) => {
                break handshake.handle_timeout(Instant::now()).and(Err(HandshakeError::TimedOut(shared.config.handshake_timeout)));
            }
        };
        match read {
            Ok(Some(n)) => decoder.push(&buf[..n]),
            Ok(None) => break Err(stream_ended(None)),
            Err(e) => {
                break Err(stream_ended(match &e {
                    quinn::ReadError::ConnectionLost(e) => Some(e),
                    _ => None,
                }));
            }
        }
        let mut done = None;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => match handshake.handle(frame) {
                    Ok(Progress::Pending) => {}
                    Ok(Progress::Established(peer)) => {
                        done = Some(Ok(peer));
                        break;
                    }
                    Err(e) => {
                        done = Some(Err(e));
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    handshake.poll_transmit();
                    let reason = RejectReason::Protocol(e.to_string());
                    let _ = flush(&mut send, vec![Frame::Reject(reason.clone())]).await;
                    done = Some(Err(HandshakeError::Refused(reason)));
                    break;
                }
            }
        }
        if let Some(result) = done {
            // Deliver the last frames (our Accept, or a Reject naming the cause).
            let _ = flush(&mut send, handshake.poll_transmit()).await;
            break result;
        }
    };
    let peer = match outcome {
        Ok(peer) => peer,
        Err(e) => {
            // Give the peer a moment to read the Reject before the connection closes.
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(50)).await;
            conn.close(1u32.into(), e.to_string().as_bytes());
            return Err(e);
        }
    };
    let seen = shared
        .incarnations
        .lock()
        .observe(&peer.node, peer.incarnation);
    if let Incarnation::Stale { newest } = seen {
        let e = HandshakeError::Refused(RejectReason::Protocol(format!(
            "stale incarnation {} of {} (newest seen: {newest})",
            peer.incarnation, peer.node
        )));
        conn.close(1u32.into(), e.to_string().as_bytes());
        return Err(e);
    }
    if let Incarnation::Restarted { previous } = seen {
        tracing::info!(node = %peer.node, previous, current = peer.incarnation, "peer restarted: a new incarnation");
    }
    shared.peers.lock().insert(
        peer.node.clone(),
        PeerStatus {
            node: peer.node.clone(),
            addr,
            incarnation: peer.incarnation,
            state: PeerState::Up,
        },
    );
    tracing::info!(node = %peer.node, %addr, "peer up");
    let (tx, rx) = mpsc::channel(shared.config.outbound_queue.max(1));
    let lane_count = shared.config.lanes.clamp(1, 64);
    let per_lane = (shared.config.outbound_queue / lane_count).max(1);
    let lanes: Vec<Arc<Lane>> = (0..lane_count)
        .map(|_| Arc::new(Lane::new(per_lane)))
        .collect();
    let (large_tx, large_rx) = mpsc::channel(per_lane);
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let serial = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let scope: Arc<dyn Transport> = Arc::new(NodeTransport {
        shared: Arc::downgrade(shared),
        link: serial,
    });
    let link = Arc::new(Link {
        serial,
        conn: conn.clone(),
        scope: scope.clone(),
        node: peer.node.clone(),
        tx: tx.clone(),
        lanes: lanes.clone(),
        large: large_tx,
        large_message: shared.config.large_message,
        max_frame: shared.config.max_frame,
        alive: std::sync::atomic::AtomicBool::new(true),
        shutdown,
        watchers: Mutex::new(Vec::new()),
    });
    let replaced = shared.links.lock().insert(peer.node.clone(), link.clone());
    if let Some(old) = replaced {
        // Both sides dialled at once, or the peer came back before its old connection timed
        // out: the newest connection wins and refs through the old one are dead.
        shared.lose(&old, 0, "replaced by a newer connection");
    }
    tokio::spawn(writer(send, rx, shutdown_rx.clone()));
    for (i, lane) in lanes.into_iter().enumerate() {
        tokio::spawn(lane_writer(
            conn.clone(),
            i as u8,
            lane,
            shutdown_rx.clone(),
            shared.system.clone(),
            peer.node.clone(),
            shared.traffic.clone(),
        ));
    }
    tokio::spawn(large_writer(
        conn.clone(),
        large_rx,
        shutdown_rx.clone(),
        shared.system.clone(),
        peer.node.clone(),
        shared.traffic.clone(),
    ));
    tokio::spawn(accept_streams(
        shared.clone(),
        peer.clone(),
        conn.clone(),
        scope.clone(),
    ));
    tokio::spawn(read_datagrams(
        shared.clone(),
        peer.clone(),
        conn.clone(),
        scope.clone(),
    ));
    tokio::spawn(associate(
        shared.clone(),
        peer.clone(),
        conn,
        link,
        recv,
        decoder,
    ));
    Ok(peer)
}

/// Why the control stream ended during the handshake: a TLS refusal if the connection closed
/// with a TLS alert, else the peer hung up.
fn stream_ended(lost: Option<&quinn::ConnectionError>) -> HandshakeError {
    match lost.and_then(tls_failure) {
        Some(cause) => HandshakeError::Tls(cause),
        None => {
            HandshakeError::Refused(RejectReason::Protocol("the peer closed the stream".into()))
        }
    }
}

async fn flush(send: &mut quinn::SendStream, frames: Vec<Frame>) -> Result<(), quinn::WriteError> {
    if frames.is_empty() {
        return Ok(());
    }
    let mut out = Vec::new();
    for f in &frames {
        // Control frames always encode; a failure here is a bug, logged rather than sent.
        if let Err(e) = f.encode(&Bincode, &mut out) {
            tracing::error!(error = %e, "could not encode a control frame");
        }
    }
    send.write_all(&out).await
}

/// Reads one established peer's frames and keeps its association: answers heartbeats and
/// lookups, delivers tells, sends heartbeats when idle, and declares the peer unreachable when it
/// goes silent or the connection ends.
async fn associate(
    shared: Arc<Shared>,
    peer: PeerInfo,
    conn: quinn::Connection,
    link: Arc<Link>,
    mut recv: quinn::RecvStream,
    mut decoder: FrameDecoder<Bincode>,
) {
    let (tx, scope) = (link.tx.clone(), link.scope.clone());
    let mut assoc = Association::new(shared.config.liveness, Instant::now());
    let mut buf = vec![0u8; 64 * 1024];
    let mut routes = Routes::new();
    let set_state = |state: PeerState| {
        if let Some(p) = shared.peers.lock().get_mut(&peer.node)
            && p.incarnation == peer.incarnation
        {
            p.state = state;
        }
    };
    let mut unreachable = None;
    let why = loop {
        let wake = tokio::time::Instant::from_std(assoc.poll_timeout());
        let read = tokio::select! {
            r = recv.read(&mut buf) => r,
            _ = tokio::time::sleep_until(wake) => {
                for action in assoc.handle_timeout(Instant::now()) {
                    match action {
                        // A full queue means the line is busy: no heartbeat needed.
                        Action::SendHeartbeat(seq) => {
                            let _ = tx.try_send(Frame::Heartbeat { seq });
                            assoc.on_sent(Instant::now());
                        }
                        Action::Unreachable { silent_for } => {
                            unreachable = Some(format!("silent for {silent_for:?}"));
                        }
                    }
                }
                if let Some(why) = unreachable.take() {
                    // Declared unreachable: close the connection (reconnecting starts afresh).
                    conn.close(3u32.into(), b"unreachable: heartbeats stopped");
                    break why;
                }
                continue;
            }
        };
        let n = match read {
            Ok(Some(n)) => n,
            Ok(None) => break "the peer closed the connection".to_owned(),
            Err(e) => break format!("connection lost: {e}"),
        };
        decoder.push(&buf[..n]);
        assoc.on_received(Instant::now());
        set_state(PeerState::Up);
        let drained = drain(&mut decoder, &shared, &mut routes, &peer, &scope, |frame| {
            on_frame(&shared, &peer, &tx, frame)
        });
        match drained {
            Ok(()) => {}
            Err(StreamEnd::Goodbye) => {
                conn.close(0u32.into(), b"goodbye");
                shared.lose(&link, peer.incarnation, "the peer said goodbye");
                return;
            }
            Err(StreamEnd::Violation(e)) => {
                shared.count_rejected();
                tracing::warn!(node = %peer.node, error = %e, "protocol violation; closing the connection");
                conn.close(2u32.into(), e.as_bytes());
                shared.lose(&link, peer.incarnation, &format!("protocol violation: {e}"));
                return;
            }
        }
    };
    tracing::warn!(node = %peer.node, %why, "peer lost");
    shared.lose(&link, peer.incarnation, &why);
}

/// Delivers every complete message buffered in `decoder`, hands any other frame to `on_frame`,
/// and counts the messages. Stops at the first frame that does not decode or that `on_frame`
/// refuses. Shared by the control stream and the lanes.
pub(crate) fn drain(
    decoder: &mut FrameDecoder<Bincode>,
    shared: &Shared,
    routes: &mut Routes,
    peer: &PeerInfo,
    scope: &Arc<dyn Transport>,
    mut on_frame: impl FnMut(Frame) -> Result<(), StreamEnd>,
) -> Result<(), StreamEnd> {
    let mut tells = 0u64;
    routes.refresh(shared);
    let outcome = loop {
        match decoder.next_decoded() {
            Ok(Some(Decoded::Tell {
                recipient,
                manifest,
                payload,
            })) => {
                tells += 1;
                deliver_tell(shared, routes, peer, scope, recipient, manifest, payload);
            }
            Ok(Some(Decoded::Frame(frame))) => {
                if let Err(end) = on_frame(frame) {
                    break Err(end);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(StreamEnd::Violation(e.to_string())),
        }
    };
    shared.traffic.received.fetch_add(tells, Ordering::Relaxed);
    outcome
}

/// Why a stream stops being read.
pub(crate) enum StreamEnd {
    /// The peer leaves gracefully.
    Goodbye,
    /// The peer broke the protocol.
    Violation(String),
}

impl StreamEnd {
    /// Why, in words.
    pub(crate) fn into_reason(self) -> String {
        match self {
            StreamEnd::Goodbye => "the peer said goodbye".into(),
            StreamEnd::Violation(why) => why,
        }
    }
}

/// Handles one frame from an established peer.
fn on_frame(
    shared: &Shared,
    peer: &PeerInfo,
    tx: &mpsc::Sender<Frame>,
    frame: Frame,
) -> Result<(), StreamEnd> {
    match frame {
        Frame::Heartbeat { seq } => {
            let _ = tx.try_send(Frame::HeartbeatAck { seq });
        }
        Frame::Lookup {
            request,
            path,
            manifest,
        } => {
            let result = match shared.exposed_by_path.lock().get(&path) {
                None => LookupResult::NotFound,
                Some(e) if e.manifest != manifest => LookupResult::TypeMismatch {
                    actual: e.manifest.to_owned(),
                },
                Some(e) => LookupResult::Found { actor: e.id },
            };
            let _ = tx.try_send(Frame::LookupReply { request, result });
        }
        Frame::LookupReply { request, result } => {
            if let Some(waiting) = shared.pending_lookups.lock().remove(&request) {
                let _ = waiting.send(result);
            }
        }
        Frame::Watch { target, .. } => {
            // The peer watches one of our exposed actors: answer with Terminated when it ends.
            let exposed = shared.exposed_by_id.lock().get(&target).cloned();
            let tx = tx.clone();
            match exposed {
                Some(e) => {
                    let ended = (e.ended)();
                    tokio::spawn(async move {
                        let reason = ended.await;
                        let _ = tx.try_send(Frame::Terminated {
                            target,
                            reason: wire_reason(&reason),
                        });
                    });
                }
                None => {
                    let reason = shared
                        .ended
                        .lock()
                        .get(target)
                        .unwrap_or("no such actor")
                        .to_owned();
                    let _ = tx.try_send(Frame::Terminated { target, reason });
                }
            }
        }
        Frame::Terminated { target, reason } => {
            let link = shared.links.lock().get(&peer.node).cloned();
            if let Some(link) = link {
                let ended: Vec<RemoteWatch> = {
                    let mut ws = link.watchers.lock();
                    let (ended, kept): (Vec<_>, Vec<_>) =
                        ws.drain(..).partition(|w| w.remote_id == target);
                    *ws = kept;
                    ended
                };
                let reason = match reason.as_str() {
                    "stopped" => TerminationReason::Stopped,
                    "killed" => TerminationReason::Killed,
                    other => TerminationReason::Remote(Arc::from(other)),
                };
                for w in ended {
                    w.watcher.notify(Terminated {
                        id: w.proxy_id,
                        path: w.path,
                        reason: reason.clone(),
                    });
                }
            }
        }
        Frame::HeartbeatAck { .. } => {}
        // Watches are answered when the actor ends whoever still watches; nothing to undo.
        Frame::Unwatch { .. } => {}
        Frame::Goodbye => return Err(StreamEnd::Goodbye),
        // Handshake frames after the handshake, and the reserved request kinds (asks travel as
        // tells carrying a reply port).
        other => {
            return Err(StreamEnd::Violation(format!(
                "unexpected {} frame on an established connection",
                other.kind_name()
            )));
        }
    }
    Ok(())
}

/// A termination reason as sent in a `Terminated` frame ("stopped" and "killed" arrive as the same
/// variants on the other side).
pub(crate) fn wire_reason(reason: &TerminationReason) -> String {
    match reason {
        TerminationReason::Stopped => "stopped".into(),
        TerminationReason::Killed => "killed".into(),
        other => other.to_string(),
    }
}
