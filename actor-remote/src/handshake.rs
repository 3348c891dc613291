//! The connection handshake, sans IO: both sides send [`Hello`], check the peer's protocol version
//! and codec, then prove knowledge of the cluster secret with an HMAC-SHA256 over the peer's fresh
//! nonce (so a recorded proof cannot be replayed), then send [`Frame::Accept`] once they verified
//! the peer's proof. A side is established only when it verified the peer *and* received the
//! peer's `Accept`, so a refusal by either side fails the handshake on both. A failed check sends a
//! [`Frame::Reject`] naming the cause, so both sides report the same reason. Time is an argument; the randomness (the
//! nonce) is an input. No message is delivered before the handshake completes.

use std::time::{Duration, Instant};

use ring::hmac;

use crate::wire::{Frame, Hello, PROTOCOL_VERSION, RejectReason};

/// This side's identity and credentials.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// This node's name.
    pub node: String,
    /// This process's incarnation.
    pub incarnation: u64,
    /// The shared cluster secret (development mode); `None` when mutual TLS alone authenticates.
    pub secret: Option<Vec<u8>>,
    /// The codec name both sides must share.
    pub codec: String,
    /// How long the peer may take to complete the handshake.
    pub timeout: Duration,
}

/// Who is on the other side, once the handshake succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name.
    pub node: String,
    /// The peer's incarnation.
    pub incarnation: u64,
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// We refused the peer (a `Reject` frame was queued for it).
    #[error("refused the peer: {0}")]
    Refused(RejectReason),
    /// The peer refused us.
    #[error("the peer refused us: {0}")]
    RejectedByPeer(RejectReason),
    /// The peer did not finish in time.
    #[error("handshake timed out after {0:?}")]
    TimedOut(Duration),
    /// The TLS handshake failed (with mutual TLS: a certificate not signed by the cluster CA, or
    /// none at all), before any frame was exchanged.
    #[error("the TLS handshake failed: {0}")]
    Tls(String),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitHello,
    AwaitAuth,
    AwaitAccept,
    Done,
    Failed,
}

/// One side of a handshake.
#[derive(Debug)]
pub struct Handshake {
    config: HandshakeConfig,
    nonce: [u8; 16],
    peer: Option<Hello>,
    state: State,
    deadline: Instant,
    outbox: Vec<Frame>,
}

/// What a handshake step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for more frames.
    Pending,
    /// The peer is authenticated.
    Established(PeerInfo),
}

impl Handshake {
    /// Starts a handshake at `now` with a fresh random `nonce`; the `Hello` is queued for sending.
    pub fn new(config: HandshakeConfig, nonce: [u8; 16], now: Instant) -> Self {
        let hello = Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            codec: config.codec.clone(),
            node: config.node.clone(),
            incarnation: config.incarnation,
            nonce,
        });
        let deadline = now + config.timeout;
        Self {
            config,
            nonce,
            peer: None,
            state: State::AwaitHello,
            deadline,
            outbox: vec![hello],
        }
    }

    /// Frames to send now, in order.
    pub fn poll_transmit(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.outbox)
    }

    /// When [`Handshake::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(
            self.state,
            State::AwaitHello | State::AwaitAuth | State::AwaitAccept
        )
        .then_some(self.deadline)
    }

    /// Fails the handshake if its deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        if self.poll_timeout().is_some_and(|d| now >= d) {
            self.state = State::Failed;
            return Err(HandshakeError::TimedOut(self.config.timeout));
        }
        Ok(())
    }

    fn refuse(&mut self, reason: RejectReason) -> HandshakeError {
        self.state = State::Failed;
        self.outbox.push(Frame::Reject(reason.clone()));
        HandshakeError::Refused(reason)
    }

    /// What a prover signs: a domain tag, the verifier's challenge, and the prover's identity.
    fn proof_message(challenge: &[u8; 16], prover: &str, incarnation: u64) -> Vec<u8> {
        let mut msg = Vec::with_capacity(64 + prover.len());
        msg.extend_from_slice(b"actor-remote handshake v1");
        msg.extend_from_slice(challenge);
        msg.extend_from_slice(&(prover.len() as u64).to_le_bytes());
        msg.extend_from_slice(prover.as_bytes());
        msg.extend_from_slice(&incarnation.to_le_bytes());
        msg
    }

    /// Feeds a frame received from the peer.
    pub fn handle(&mut self, frame: Frame) -> Result<Progress, HandshakeError> {
        match (&self.state, frame) {
            (State::Done | State::Failed, _) => Err(self.refuse(RejectReason::Protocol(
                "frame after the handshake ended".into(),
            ))),
            (_, Frame::Reject(reason)) => {
                self.state = State::Failed;
                Err(HandshakeError::RejectedByPeer(reason))
            }
            (State::AwaitHello, Frame::Hello(hello)) => {
                if hello.protocol != PROTOCOL_VERSION {
                    return Err(self.refuse(RejectReason::Version {
                        ours: PROTOCOL_VERSION,
                        theirs: hello.protocol,
                    }));
                }
                if hello.codec != self.config.codec {
                    return Err(self.refuse(RejectReason::Codec {
                        ours: self.config.codec.clone(),
                        theirs: hello.codec,
                    }));
                }
                let mac = match &self.config.secret {
                    Some(secret) => {
                        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                        let msg = Self::proof_message(
                            &hello.nonce,
                            &self.config.node,
                            self.config.incarnation,
                        );
                        hmac::sign(&key, &msg).as_ref().to_vec()
                    }
                    None => Vec::new(),
                };
                self.outbox.push(Frame::Auth { mac });
                self.peer = Some(hello);
                self.state = State::AwaitAuth;
                Ok(Progress::Pending)
            }
            (State::AwaitAuth, Frame::Auth { mac }) => {
                let Some(peer) = self.peer.clone() else {
                    return Err(self.refuse(RejectReason::Protocol("auth before hello".into())));
                };
                if let Some(secret) = &self.config.secret {
                    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                    let msg = Self::proof_message(&self.nonce, &peer.node, peer.incarnation);
                    // ring compares the tags in constant time.
                    if hmac::verify(&key, &msg, &mac).is_err() {
                        return Err(self.refuse(RejectReason::BadSecret));
                    }
                }
                self.outbox.push(Frame::Accept);
                self.state = State::AwaitAccept;
                Ok(Progress::Pending)
            }
            (State::AwaitAccept, Frame::Accept) => {
                let Some(peer) = self.peer.clone() else {
                    return Err(self.refuse(RejectReason::Protocol("accept before hello".into())));
                };
                self.state = State::Done;
                Ok(Progress::Established(PeerInfo {
                    node: peer.node,
                    incarnation: peer.incarnation,
                }))
            }
            (_, other) => Err(self.refuse(RejectReason::Protocol(format!(
                "unexpected {} frame during the handshake",
                other.kind_name()
            )))),
        }
    }
}
