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
//! * **not built yet**: the QUIC driver (quinn, TLS 1.3 with mutual TLS or generated certificates),
//!   the `Node`, remote `ActorRef`s, lanes, datagrams and the multi-process tests. Until then
//!   there is no way to reach an actor on another node.

pub mod association;
mod codec;
pub mod handshake;
pub mod wire;

pub use codec::{Bincode, Codec, CodecError};
