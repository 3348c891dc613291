//! The QUIC driver: a [`Node`] binds a quinn endpoint, connects to and accepts peers, runs the
//! sans-IO [`Handshake`] over each connection's control stream, then keeps every peer's
//! [`Association`] (heartbeats, failure detection) ticking. It makes no protocol decisions itself.
//!
//! Security today: TLS 1.3 (rustls with ring only) with a generated certificate per node, and the
//! shared cluster secret proven in the handshake. Certificates are not checked in this mode, so a
//! cluster secret is required; mutual TLS with a cluster CA is not built yet. A peer with the wrong
//! secret, codec or protocol version is refused before any message is delivered, and both sides
//! learn why.
//!
//! Messaging: a node [`Node::expose`]s local actors; a peer [`Node::lookup`]s one by path with its
//! message type checked, and gets an ordinary `ActorRef<M>` whose `tell` encodes the message and
//! queues a frame for the connection's writer task, which drains the queue into one write.
//! Delivery is at most once and per-recipient ordered; a message that cannot be queued (peer gone,
//! queue full) is a counted dead letter. Watchers of a remote ref get `Terminated` when the remote
//! actor ends (a `Watch` frame asks the peer, which answers with `Terminated` and the reason), or
//! with `TerminationReason::Unreachable` when its node is lost.
//!
//! Not built yet: remote ask (reply ports that travel), refs inside messages, several lanes,
//! datagrams, reconnecting, mutual TLS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use actor_core::{
    ActorId, ActorPath, ActorRef, ActorSystem, DeadLetterReason, RefTarget, Terminated,
    TerminationReason, TrySendError, Watcher,
};
use parking_lot::Mutex;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::association::{Action, Association, Incarnation, Incarnations, Liveness};
use crate::codec::{Bincode, Codec, CodecError};
use crate::handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo, Progress};
use crate::wire::{Decoded, Frame, FrameDecoder, LookupResult, RejectReason, manifest_id};

const ALPN: &[u8] = b"actor-remote/1";
const SERVER_NAME: &str = "actor-node";

/// Settings of a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's name, unique in the cluster.
    pub name: String,
    /// Where to bind (port 0 for any).
    pub bind: SocketAddr,
    /// The shared cluster secret (required until mutual TLS exists).
    pub secret: Vec<u8>,
    /// Failure detection (default: heartbeat every 1 s, unreachable after 5 s of silence).
    pub liveness: Liveness,
    /// How long a peer may take to complete the handshake.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from a peer.
    pub max_frame: usize,
    /// Frames queued per peer before further sends become dead letters.
    pub outbound_queue: usize,
    /// How long a lookup waits for the peer's answer.
    pub lookup_timeout: Duration,
}

impl NodeConfig {
    /// A config with defaults for everything but the name, address and secret.
    pub fn new(name: impl Into<String>, bind: SocketAddr, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bind,
            secret: secret.into(),
            liveness: Liveness::default(),
            handshake_timeout: Duration::from_secs(5),
            max_frame: 16 * 1024 * 1024,
            outbound_queue: 64 * 1024,
            lookup_timeout: Duration::from_secs(5),
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

/// A refused connection attempt, kept for operators (and tests).
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The remote address.
    pub addr: SocketAddr,
    /// Why.
    pub error: HandshakeError,
}

/// Decodes a payload and tells it to the exposed actor.
type Deliver = Box<dyn Fn(&[u8]) -> Result<(), CodecError> + Send + Sync>;

/// A local actor reachable from peers.
struct Exposed {
    id: u64,
    path: ActorPath,
    manifest: &'static str,
    manifest_id: u32,
    deliver: Deliver,
    /// Resolves when the actor ends, with its reason.
    ended: Box<dyn Fn() -> Ended + Send + Sync>,
}

/// A local watcher of an actor on the other node.
struct RemoteWatch {
    remote_id: u64,
    proxy_id: ActorId,
    path: ActorPath,
    watcher: Watcher,
}

/// The future of an exposed actor's end, with its reason.
type Ended = std::pin::Pin<Box<dyn std::future::Future<Output = TerminationReason> + Send>>;

/// The sending side of one established connection.
struct Link {
    incarnation: u64,
    tx: mpsc::Sender<Frame>,
    /// False once the peer is lost: sends become dead letters at once.
    alive: std::sync::atomic::AtomicBool,
    /// Tells the writer to stop and count what is still queued.
    shutdown: tokio::sync::Notify,
    /// Watchers of actors on this node: told `Terminated` when the remote actor ends, or
    /// `Unreachable` when the link dies.
    watchers: Mutex<Vec<RemoteWatch>>,
}

struct Shared {
    config: NodeConfig,
    system: ActorSystem,
    incarnation: u64,
    peers: Mutex<HashMap<String, PeerStatus>>,
    links: Mutex<HashMap<String, Arc<Link>>>,
    refusals: Mutex<Vec<Refusal>>,
    incarnations: Mutex<Incarnations>,
    exposed_by_path: Mutex<HashMap<String, Arc<Exposed>>>,
    exposed_by_id: Mutex<HashMap<u64, Arc<Exposed>>>,
    pending_lookups: Mutex<HashMap<u64, oneshot::Sender<LookupResult>>>,
    next_request: AtomicU64,
    /// Frames received that could not be delivered (malformed payload, unknown recipient).
    rejected_frames: AtomicU64,
}

impl Shared {
    /// The peer is gone: mark it, drop its link, and tell the watchers of its actors.
    fn lose(&self, node: &str, incarnation: u64, why: &str) {
        if let Some(p) = self.peers.lock().get_mut(node)
            && p.incarnation == incarnation
        {
            p.state = PeerState::Unreachable;
        }
        let link = {
            let mut links = self.links.lock();
            match links.get(node) {
                Some(l) if l.incarnation == incarnation => links.remove(node),
                _ => None,
            }
        };
        if let Some(link) = link {
            // Under the watchers lock, so a concurrent `watch` either lands in the list taken here
            // or sees the link dead and notifies at once.
            let watchers = {
                let mut w = link.watchers.lock();
                link.alive.store(false, Ordering::Release);
                std::mem::take(&mut *w)
            };
            link.shutdown.notify_one();
            let reason = TerminationReason::Unreachable(Arc::from(format!("node {node}: {why}")));
            for w in watchers {
                w.watcher.notify(Terminated {
                    id: w.proxy_id,
                    path: w.path,
                    reason: reason.clone(),
                });
            }
        }
    }
}

/// A node of the cluster: one QUIC endpoint, its peers and their liveness.
pub struct Node {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Binds the endpoint for `system` and starts accepting peers. Call inside a tokio runtime.
    pub fn start(system: &ActorSystem, config: NodeConfig) -> Result<Node, NodeError> {
        if config.secret.is_empty() {
            return Err(NodeError::Config(
                "a cluster secret is required (mutual TLS is not available yet)".into(),
            ));
        }
        let (server_config, client_config) =
            dev_quic_configs(config.liveness.unreachable_after * 2)?;

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
        let shared = Arc::new(Shared {
            config,
            system: system.clone(),
            incarnation,
            peers: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
            incarnations: Mutex::new(Incarnations::default()),
            exposed_by_path: Mutex::new(HashMap::new()),
            exposed_by_id: Mutex::new(HashMap::new()),
            pending_lookups: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            rejected_frames: AtomicU64::new(0),
        });
        let accept = {
            let (endpoint, shared) = (endpoint.clone(), shared.clone());
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let addr = incoming.remote_address();
                        let Ok(conn) = incoming.await else { return };
                        let Ok((send, recv)) = conn.accept_bi().await else {
                            return;
                        };
                        if let Err(error) = establish(&shared, conn, send, recv).await {
                            tracing::warn!(%addr, %error, "refused a peer");
                            shared.refusals.lock().push(Refusal { addr, error });
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

    /// This process's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// Connects to the node at `addr` and authenticates it.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerInfo, NodeError> {
        let connecting =
            self.endpoint
                .connect(addr, SERVER_NAME)
                .map_err(|e| NodeError::Connect {
                    addr,
                    reason: e.to_string(),
                })?;
        let conn = connecting.await.map_err(|e| NodeError::Connect {
            addr,
            reason: e.to_string(),
        })?;
        let (send, recv) = conn.open_bi().await.map_err(|e| NodeError::Connect {
            addr,
            reason: e.to_string(),
        })?;
        establish(&self.shared, conn, send, recv)
            .await
            .map_err(|error| NodeError::Handshake { addr, error })
    }

    /// The peers and their states.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let mut peers: Vec<PeerStatus> = self.shared.peers.lock().values().cloned().collect();
        peers.sort_by(|a, b| a.node.cmp(&b.node));
        peers
    }

    /// Makes a local actor reachable from peers at its path (e.g. `/user/echo`), for messages of
    /// type `M` (its type name is the manifest peers must ask for).
    pub fn expose<M>(&self, actor: &ActorRef<M>)
    where
        M: DeserializeOwned + Send + 'static,
    {
        let target = actor.clone();
        let exposed = Arc::new(Exposed {
            id: actor.id().as_u64(),
            path: actor.path(),
            manifest: std::any::type_name::<M>(),
            manifest_id: manifest_id(std::any::type_name::<M>()),
            deliver: Box::new(move |bytes| {
                let msg: M = Bincode.decode(bytes)?;
                target.tell(msg);
                Ok(())
            }),
            ended: {
                let actor = actor.clone();
                Box::new(move || {
                    let actor = actor.clone();
                    Box::pin(async move { actor.wait_for_stop().await })
                })
            },
        });
        self.shared
            .exposed_by_path
            .lock()
            .insert(actor.path().as_str().to_owned(), exposed.clone());
        self.shared
            .exposed_by_id
            .lock()
            .insert(actor.id().as_u64(), exposed);
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
                Ok(ActorRef::from_target(Arc::new(RemoteRef::<M> {
                    id: self.shared.system.allocate_id(),
                    remote_id: actor,
                    path: ActorPath::from_string(format!("//{node}{path}")),
                    manifest_id: manifest_id(std::any::type_name::<M>()),
                    link,
                    system: self.shared.system.clone(),
                    _msg: std::marker::PhantomData,
                })))
            }
        }
    }

    /// Frames from peers that could not be delivered (malformed payload, unknown recipient).
    pub fn rejected_frames(&self) -> u64 {
        self.shared.rejected_frames.load(Ordering::Relaxed)
    }

    /// Connection attempts this node refused, with the reason.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.shared.refusals.lock().clone()
    }

    /// Closes every connection and the endpoint.
    pub fn shutdown(&self) {
        self.accept.abort();
        self.endpoint.close(0u32.into(), b"node shutting down");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The QUIC configurations of development mode: TLS 1.3 with ring, a generated certificate, no
/// certificate check (peers prove the cluster secret in the handshake instead), and the given
/// idle timeout. Public so benchmarks can measure raw quinn with exactly the node's settings.
pub fn dev_quic_configs(
    idle_timeout: Duration,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NodeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NodeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NodeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SecretAuthenticated(provider)))
        .with_no_client_auth();
    client.alpn_protocols = vec![ALPN.to_vec()];

    let mut transport = quinn::TransportConfig::default();
    let idle = idle_timeout;
    transport.max_idle_timeout(Some(
        idle.try_into()
            .map_err(|_| NodeError::Config("idle timeout too large".into()))?,
    ));
    let transport = Arc::new(transport);
    let quic_server =
        QuicServerConfig::try_from(server).map_err(|e| NodeError::Tls(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_server));
    server_config.transport_config(transport.clone());
    let quic_client =
        QuicClientConfig::try_from(client).map_err(|e| NodeError::Tls(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(quic_client));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
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
        secret: Some(shared.config.secret.clone()),
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
        if flush(&mut send, handshake.poll_transmit()).await.is_err() {
            break Err(HandshakeError::Refused(RejectReason::Protocol(
                "the peer closed the stream".into(),
            )));
        }
        let read = tokio::select! {
            r = recv.read(&mut buf) => r,
            _ = tokio::time::sleep_until(deadline) => {
                break handshake.handle_timeout(Instant::now()).and(Err(HandshakeError::TimedOut(shared.config.handshake_timeout)));
            }
        };
        match read {
            Ok(Some(n)) => decoder.push(&buf[..n]),
            _ => {
                break Err(HandshakeError::Refused(RejectReason::Protocol(
                    "the peer closed the stream".into(),
                )));
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
    let link = Arc::new(Link {
        incarnation: peer.incarnation,
        tx: tx.clone(),
        alive: std::sync::atomic::AtomicBool::new(true),
        shutdown: tokio::sync::Notify::new(),
        watchers: Mutex::new(Vec::new()),
    });
    shared.links.lock().insert(peer.node.clone(), link.clone());
    tokio::spawn(writer(
        send,
        rx,
        link,
        shared.system.clone(),
        peer.node.clone(),
    ));
    tokio::spawn(associate(
        shared.clone(),
        peer.clone(),
        conn,
        tx,
        recv,
        decoder,
    ));
    Ok(peer)
}

/// The connection's only writer: drains everything queued and writes it as one buffer (writing
/// one frame per call is what makes small messages slow). When the link dies it closes the queue
/// and counts every message that did not go out as a dead letter (at most once: a batch whose
/// write failed counts as lost).
async fn writer(
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<Frame>,
    link: Arc<Link>,
    system: ActorSystem,
    node: String,
) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut batch_tells = 0u64;
    loop {
        let first = tokio::select! {
            f = rx.recv() => f,
            _ = link.shutdown.notified() => None,
        };
        let Some(first) = first else { break };
        out.clear();
        batch_tells = 0;
        let mut next = Some(first);
        while let Some(frame) = next {
            if matches!(frame, Frame::Tell { .. }) {
                batch_tells += 1;
            }
            if let Err(e) = frame.encode(&Bincode, &mut out) {
                tracing::error!(error = %e, "could not encode a frame; dropped");
            }
            next = if out.len() < 256 * 1024 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if send.write_all(&out).await.is_err() {
            break;
        }
        batch_tells = 0;
    }
    rx.close();
    let mut lost = batch_tells;
    while let Ok(frame) = rx.try_recv() {
        if matches!(frame, Frame::Tell { .. }) {
            lost += 1;
        }
    }
    let path = ActorPath::from_string(format!("//{node}"));
    for _ in 0..lost {
        system.record_dead_letter(&path, "remote message", DeadLetterReason::Remote);
    }
    if lost > 0 {
        tracing::warn!(%node, lost, "messages to a lost node counted as dead letters");
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
    tx: mpsc::Sender<Frame>,
    mut recv: quinn::RecvStream,
    mut decoder: FrameDecoder<Bincode>,
) {
    let mut assoc = Association::new(shared.config.liveness, Instant::now());
    let mut buf = vec![0u8; 64 * 1024];
    let set_state = |state: PeerState| {
        if let Some(p) = shared.peers.lock().get_mut(&peer.node)
            && p.incarnation == peer.incarnation
        {
            p.state = state;
        }
    };
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
                            tracing::warn!(node = %peer.node, ?silent_for, "peer unreachable");
                            set_state(PeerState::Unreachable);
                        }
                    }
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
        loop {
            match decoder.next_decoded() {
                Ok(Some(Decoded::Tell {
                    recipient,
                    manifest,
                    payload,
                })) => deliver_tell(&shared, &peer, recipient, manifest, payload),
                Ok(Some(Decoded::Frame(frame))) => on_frame(&shared, &peer, &tx, frame),
                Ok(None) => break,
                Err(e) => {
                    shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node = %peer.node, error = %e, "protocol violation; closing the connection");
                    conn.close(2u32.into(), e.to_string().as_bytes());
                    shared.lose(
                        &peer.node,
                        peer.incarnation,
                        &format!("protocol violation: {e}"),
                    );
                    return;
                }
            }
        }
    };
    tracing::warn!(node = %peer.node, %why, "peer lost");
    shared.lose(&peer.node, peer.incarnation, &why);
}

/// Handles one frame from an established peer.
fn on_frame(shared: &Shared, peer: &PeerInfo, tx: &mpsc::Sender<Frame>, frame: Frame) {
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
        Frame::Tell {
            recipient,
            manifest,
            payload,
        } => deliver_tell(shared, peer, recipient, manifest, &payload),
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
                    let _ = tx.try_send(Frame::Terminated {
                        target,
                        reason: "no such actor".into(),
                    });
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
        other => {
            tracing::debug!(node = %peer.node, kind = other.kind_name(), "frame not handled yet; ignored");
        }
    }
}

/// A termination reason as sent in a `Terminated` frame ("stopped" and "killed" arrive as the same
/// variants on the other side).
fn wire_reason(reason: &TerminationReason) -> String {
    match reason {
        TerminationReason::Stopped => "stopped".into(),
        TerminationReason::Killed => "killed".into(),
        other => other.to_string(),
    }
}

/// Delivers one received message to its exposed recipient, decoding the payload in place.
fn deliver_tell(shared: &Shared, peer: &PeerInfo, recipient: u64, manifest: u32, payload: &[u8]) {
    let exposed = shared.exposed_by_id.lock().get(&recipient).cloned();
    match exposed {
        Some(e) if e.manifest_id == manifest => {
            if let Err(err) = (e.deliver)(payload) {
                shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %peer.node, recipient = %e.path, error = %err, "malformed payload rejected");
            }
        }
        Some(e) => {
            shared.rejected_frames.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %peer.node, recipient = %e.path, manifest, "message of the wrong type rejected");
        }
        None => shared.system.record_dead_letter(
            &ActorPath::from_string(format!("//{}/#{recipient}", shared.config.name)),
            "remote message",
            DeadLetterReason::Stopped,
        ),
    }
}

/// A ref to an actor on another node.
struct RemoteRef<M> {
    id: ActorId,
    remote_id: u64,
    path: ActorPath,
    manifest_id: u32,
    link: Arc<Link>,
    system: ActorSystem,
    _msg: std::marker::PhantomData<fn(M)>,
}

impl<M: Serialize + Send + 'static> RemoteRef<M> {
    fn frame(&self, msg: &M) -> Result<Frame, CodecError> {
        let mut payload = Vec::new();
        Bincode.encode(msg, &mut payload)?;
        Ok(Frame::Tell {
            recipient: self.remote_id,
            manifest: self.manifest_id,
            payload,
        })
    }

    fn dead(&self) {
        self.system.record_dead_letter(
            &self.path,
            std::any::type_name::<M>(),
            DeadLetterReason::Remote,
        );
    }
}

impl<M: Serialize + Send + 'static> RefTarget<M> for RemoteRef<M> {
    fn id(&self) -> ActorId {
        self.id
    }
    fn path(&self) -> ActorPath {
        self.path.clone()
    }
    fn tell(&self, msg: M) {
        if !self.link.alive.load(Ordering::Acquire) {
            self.dead();
            return;
        }
        match self.frame(&msg) {
            Ok(frame) => {
                if self.link.tx.try_send(frame).is_err() {
                    self.dead();
                }
            }
            Err(e) => {
                tracing::error!(recipient = %self.path, error = %e, "message could not be encoded");
                self.dead();
            }
        }
    }
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        if !self.link.alive.load(Ordering::Acquire) {
            return Err(TrySendError::Closed(msg));
        }
        let Ok(frame) = self.frame(&msg) else {
            return Err(TrySendError::Closed(msg));
        };
        match self.link.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(TrySendError::Full(msg)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TrySendError::Closed(msg)),
        }
    }
    fn watch(&self, watcher: Watcher) {
        let mut watchers = self.link.watchers.lock();
        if self.link.alive.load(Ordering::Acquire) {
            let first = !watchers.iter().any(|w| w.remote_id == self.remote_id);
            watchers.push(RemoteWatch {
                remote_id: self.remote_id,
                proxy_id: self.id,
                path: self.path.clone(),
                watcher,
            });
            drop(watchers);
            if first {
                let frame = Frame::Watch {
                    target: self.remote_id,
                    watcher: self.id.as_u64(),
                };
                let _ = self.link.tx.try_send(frame);
            }
        } else {
            drop(watchers);
            let reason = TerminationReason::Unreachable(Arc::from("the connection is gone"));
            watcher.notify(Terminated {
                id: self.id,
                path: self.path.clone(),
                reason,
            });
        }
    }
    fn unwatch(&self, watcher: ActorId) {
        self.link
            .watchers
            .lock()
            .retain(|w| !(w.remote_id == self.remote_id && w.watcher.id() == watcher));
    }
    fn stop(&self) {
        tracing::warn!(recipient = %self.path, "stopping a remote actor is not supported yet; ignored");
    }
    fn system(&self) -> Option<ActorSystem> {
        Some(self.system.clone())
    }
}

/// Development mode: the server certificate is generated per node and not checked; the peer is
/// authenticated by the cluster secret in the handshake instead. Signatures are still verified,
/// so the TLS session itself is sound.
#[derive(Debug)]
struct SecretAuthenticated(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SecretAuthenticated {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
