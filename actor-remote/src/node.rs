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
//! Not built yet: remote actor refs and message delivery (the control stream carries only the
//! handshake and heartbeats), lanes, datagrams, reconnecting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::association::{Action, Association, Incarnation, Incarnations, Liveness};
use crate::codec::{Bincode, Codec};
use crate::handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo, Progress};
use crate::wire::{Frame, FrameDecoder, RejectReason};

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

struct Shared {
    config: NodeConfig,
    incarnation: u64,
    peers: Mutex<HashMap<String, PeerStatus>>,
    refusals: Mutex<Vec<Refusal>>,
    incarnations: Mutex<Incarnations>,
}

/// A node of the cluster: one QUIC endpoint, its peers and their liveness.
pub struct Node {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Binds the endpoint and starts accepting peers. Call inside a tokio runtime.
    pub fn start(config: NodeConfig) -> Result<Node, NodeError> {
        if config.secret.is_empty() {
            return Err(NodeError::Config(
                "a cluster secret is required (mutual TLS is not available yet)".into(),
            ));
        }
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
        let idle = config.liveness.unreachable_after * 2;
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
            incarnation,
            peers: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
            incarnations: Mutex::new(Incarnations::default()),
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
    tokio::spawn(associate(
        shared.clone(),
        peer.clone(),
        conn,
        send,
        recv,
        decoder,
    ));
    Ok(peer)
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

/// Keeps one established peer's association: answers heartbeats, sends them when idle, and marks
/// the peer unreachable when it goes silent or the connection ends.
async fn associate(
    shared: Arc<Shared>,
    peer: PeerInfo,
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut decoder: FrameDecoder<Bincode>,
) {
    let mut assoc = Association::new(shared.config.liveness, Instant::now());
    let mut buf = vec![0u8; 16 * 1024];
    let set_state = |state: PeerState| {
        if let Some(p) = shared.peers.lock().get_mut(&peer.node)
            && p.incarnation == peer.incarnation
        {
            p.state = state;
        }
    };
    loop {
        let wake = tokio::time::Instant::from_std(assoc.poll_timeout());
        let read = tokio::select! {
            r = recv.read(&mut buf) => r,
            _ = tokio::time::sleep_until(wake) => {
                let mut out = Vec::new();
                for action in assoc.handle_timeout(Instant::now()) {
                    match action {
                        Action::SendHeartbeat(seq) => out.push(Frame::Heartbeat { seq }),
                        Action::Unreachable { silent_for } => {
                            tracing::warn!(node = %peer.node, ?silent_for, "peer unreachable");
                            set_state(PeerState::Unreachable);
                        }
                    }
                }
                if !out.is_empty() {
                    if flush(&mut send, out).await.is_err() {
                        break;
                    }
                    assoc.on_sent(Instant::now());
                }
                continue;
            }
        };
        let Ok(Some(n)) = read else { break };
        decoder.push(&buf[..n]);
        assoc.on_received(Instant::now());
        set_state(PeerState::Up);
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Heartbeat { seq })) => {
                    if flush(&mut send, vec![Frame::HeartbeatAck { seq }])
                        .await
                        .is_err()
                    {
                        break;
                    }
                    assoc.on_sent(Instant::now());
                }
                Ok(Some(Frame::Goodbye)) => {
                    set_state(PeerState::Unreachable);
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(node = %peer.node, error = %e, "protocol violation; closing the connection");
                    conn.close(2u32.into(), e.to_string().as_bytes());
                    set_state(PeerState::Unreachable);
                    return;
                }
            }
        }
    }
    tracing::warn!(node = %peer.node, "connection lost");
    set_state(PeerState::Unreachable);
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
