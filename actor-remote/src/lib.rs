//! # actor-remote
//!
//! Actor systems on several nodes over QUIC (quinn): an `ActorRef<M>` to an actor on another
//! node is used exactly like a local one (tell, ask with a timeout, watch), and refs and reply
//! ports inside messages travel. See the README's "Two nodes" example and `docs/semantics.md`
//! (section 13) for the delivery guarantees.
//!
//! * [`node`]: a `Node` binds a quinn endpoint, connects to and accepts peers (TLS 1.3 with
//!   rustls and ring: mutual TLS with a cluster CA, or generated certificates plus a shared
//!   secret), refuses bad ones with the cause named on both sides, tracks every peer's liveness,
//!   re-dials lost peers with backoff, exposes local actors by path and looks remote ones up with
//!   their message type checked. User messages travel on ordered lanes (per-recipient order),
//!   large ones on streams of their own, unreliable ones as datagrams; what cannot be delivered
//!   is a counted dead letter.
//! * The sans-IO protocol core: [`wire`] (frames, the streaming decoder for untrusted input, the
//!   [`Codec`] seam with bincode 2), [`handshake`] (protocol version, codec and cluster-secret
//!   checks) and [`association`] (heartbeat failure detection and incarnations). None of these
//!   modules does IO, reads a clock or imports tokio or quinn (a test enforces it); they are
//!   tested on a simulated network, fuzzed and property-tested. Every payload is decoded through
//!   a guard: exactly one value (bytes after it are refused), nested at most 128 serde levels,
//!   with allocation bounded by the payload's size.
//! * [`ping`]: a health-check actor a node can expose.

pub mod association;
mod codec;
mod decode_guard;
pub mod handshake;
pub mod node;
pub mod ping;
mod refs;
mod routes;
mod streams;
mod tls;
pub mod wire;

pub use codec::{Bincode, Codec, CodecError, ErasedVisit};

/// The README's examples (they use actor-core, supervision and this crate), compiled and run as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
