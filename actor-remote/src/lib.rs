//! # actor-remote
//!
//! Actor systems on several nodes. This crate is being built in layers:
//!
//! * **built**: the sans-IO protocol core: [`wire`] (frames, the streaming decoder for untrusted
//!   input, the [`Codec`] seam with bincode 2), [`handshake`] (protocol version, codec and
//!   cluster-secret checks with a rejection that names the cause on both sides) and
//!   [`association`] (heartbeat failure detection and incarnations). None of these modules does
//!   IO, reads a clock or imports tokio or quinn (a test enforces it); they are tested on a
//!   simulated network.
//! * **built**: [`node`], the QUIC driver: a `Node` binds a quinn endpoint (TLS 1.3, rustls with
//!   ring, generated certificates, authentication by the cluster secret in the handshake),
//!   connects and accepts peers, refuses bad ones with the cause on both sides, and tracks every
//!   peer's liveness.
//!   Local actors are exposed by path; a peer looks one up with its message type checked and gets
//!   an ordinary `ActorRef<M>` whose `tell` travels over QUIC (batched by one writer per
//!   connection; what cannot be sent is a counted dead letter; watchers learn when the remote
//!   actor stops, or when its node is lost).
//! * **not built yet**: mutual TLS with a cluster CA, remote ask (reply ports that travel),
//!   refs inside messages, several lanes, large-message streams, datagrams,
//!   reconnecting, the multi-process test and the remote benchmarks.

pub mod association;
mod codec;
pub mod handshake;
pub mod node;
pub mod ping;
mod refs;
mod streams;
mod tls;
pub mod wire;

pub use codec::{Bincode, Codec, CodecError, ErasedVisit};
