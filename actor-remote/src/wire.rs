//! The wire protocol: frames, their encoding, and a streaming decoder for untrusted input.
//!
//! A frame is `[length: u32 LE][kind: u8][body]`, where `length` counts the kind byte and the body,
//! and the body is the kind's struct encoded by the [`Codec`]. User payloads travel as opaque bytes
//! (encoded by the same codec on the sending side) next to the recipient and a type manifest, so
//! the receiver can check the type before decoding.
//!
//! Invariants: decoding never panics on any input; a frame longer than the configured maximum is
//! rejected from its length prefix alone, before its bytes are buffered; an unknown kind or a body
//! that does not decode is an error naming the cause. This module does no IO and reads no clock.

use serde::{Deserialize, Serialize};

use crate::codec::{Codec, CodecError};

/// The protocol version spoken by this build. Peers with another version are refused in the
/// handshake.
pub const PROTOCOL_VERSION: u16 = 1;

/// Size of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Why a peer was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The peers speak different protocol versions.
    Version {
        /// The refusing side's version.
        ours: u16,
        /// The version the peer announced.
        theirs: u16,
    },
    /// The peer did not prove knowledge of the cluster secret.
    BadSecret,
    /// The peers use different codecs.
    Codec {
        /// The refusing side's codec.
        ours: String,
        /// The peer's codec.
        theirs: String,
    },
    /// The peer broke the protocol (unexpected frame, malformed input).
    Protocol(String),
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::Version { ours, theirs } => {
                write!(
                    f,
                    "incompatible protocol version: ours is {ours}, the peer speaks {theirs}"
                )
            }
            RejectReason::BadSecret => f.write_str("wrong cluster secret"),
            RejectReason::Codec { ours, theirs } => {
                write!(
                    f,
                    "incompatible codec: ours is {ours}, the peer uses {theirs}"
                )
            }
            RejectReason::Protocol(why) => write!(f, "protocol violation: {why}"),
        }
    }
}

/// The first frame each side sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol: u16,
    /// The sender's codec name.
    pub codec: String,
    /// The sender's node name.
    pub node: String,
    /// Distinguishes restarts of the same node: a new process, a new incarnation.
    pub incarnation: u64,
    /// A fresh random challenge for the peer's proof of the cluster secret.
    pub nonce: [u8; 16],
}

/// Outcome of a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupResult {
    /// Found; the id to address it by.
    Found {
        /// The actor's id on the answering node.
        actor: u64,
    },
    /// No actor at that path.
    NotFound,
    /// The actor accepts another message type.
    TypeMismatch {
        /// What it accepts.
        actual: String,
    },
}

/// Every frame of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Handshake: who I am, and a challenge.
    Hello(Hello),
    /// Handshake: my proof of the cluster secret over your challenge.
    Auth {
        /// HMAC-SHA256 (empty when no secret is configured).
        mac: Vec<u8>,
    },
    /// Handshake: I verified your proof; once both sides sent it, the association is up.
    Accept,
    /// The handshake failed; the connection closes after this frame.
    Reject(RejectReason),
    /// Liveness probe.
    Heartbeat {
        /// Sequence number, echoed in the ack.
        seq: u64,
    },
    /// Answer to a heartbeat.
    HeartbeatAck {
        /// The heartbeat's sequence number.
        seq: u64,
    },
    /// Find an actor by path and check its message type.
    Lookup {
        /// Correlates the reply.
        request: u64,
        /// The actor's path on the peer.
        path: String,
        /// The message type the asker will send.
        manifest: String,
    },
    /// Answer to a lookup.
    LookupReply {
        /// The lookup's request id.
        request: u64,
        /// What was found.
        result: LookupResult,
    },
    /// A message for an actor. The hot frame: a fixed layout
    /// (`recipient u64 LE`, `manifest u32 LE`, payload) rather than a codec-encoded body.
    Tell {
        /// The recipient's id on the receiving node.
        recipient: u64,
        /// [`manifest_id`] of the message type (the full name is checked once, at lookup).
        manifest: u32,
        /// The encoded message.
        payload: Vec<u8>,
    },
    /// A request whose answer goes back as a [`Frame::Reply`].
    Ask {
        /// The recipient's id on the receiving node.
        recipient: u64,
        /// Correlates the reply.
        reply_to: u64,
        /// The message type.
        manifest: String,
        /// The encoded request.
        payload: Vec<u8>,
    },
    /// The answer to an ask.
    Reply {
        /// The ask's correlation id.
        reply_to: u64,
        /// The encoded answer.
        payload: Vec<u8>,
    },
    /// Watch an actor on the receiving node.
    Watch {
        /// The watched actor.
        target: u64,
        /// The watcher on the sending node.
        watcher: u64,
    },
    /// Stop watching.
    Unwatch {
        /// The watched actor.
        target: u64,
        /// The watcher on the sending node.
        watcher: u64,
    },
    /// A watched actor ended.
    Terminated {
        /// The actor that ended.
        target: u64,
        /// Why, as text.
        reason: String,
    },
    /// An orderly close.
    Goodbye,
}

#[derive(Serialize, Deserialize)]
struct AuthBody {
    mac: Vec<u8>,
}
#[derive(Serialize, Deserialize)]
struct SeqBody {
    seq: u64,
}
#[derive(Serialize, Deserialize)]
struct LookupBody {
    request: u64,
    path: String,
    manifest: String,
}
#[derive(Serialize, Deserialize)]
struct LookupReplyBody {
    request: u64,
    result: LookupResult,
}
#[derive(Serialize, Deserialize)]
struct AskBody {
    recipient: u64,
    reply_to: u64,
    manifest: String,
    payload: Vec<u8>,
}
#[derive(Serialize, Deserialize)]
struct ReplyBody {
    reply_to: u64,
    payload: Vec<u8>,
}
#[derive(Serialize, Deserialize)]
struct WatchBody {
    target: u64,
    watcher: u64,
}
#[derive(Serialize, Deserialize)]
struct TerminatedBody {
    target: u64,
    reason: String,
}

mod kind {
    pub(super) const HELLO: u8 = 1;
    pub(super) const AUTH: u8 = 2;
    pub(super) const REJECT: u8 = 3;
    pub(super) const HEARTBEAT: u8 = 4;
    pub(super) const HEARTBEAT_ACK: u8 = 5;
    pub(super) const LOOKUP: u8 = 6;
    pub(super) const LOOKUP_REPLY: u8 = 7;
    pub(super) const TELL: u8 = 8;
    pub(super) const ASK: u8 = 9;
    pub(super) const REPLY: u8 = 10;
    pub(super) const WATCH: u8 = 11;
    pub(super) const UNWATCH: u8 = 12;
    pub(super) const TERMINATED: u8 = 13;
    pub(super) const GOODBYE: u8 = 14;
    pub(super) const ACCEPT: u8 = 15;
}

/// Why input could not be decoded into frames. Every variant is a protocol violation by the
/// peer: count it, log it, and close the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The length prefix announces more than the maximum frame size.
    #[error("frame of {announced} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The announced length.
        announced: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame with length zero (no kind byte).
    #[error("empty frame")]
    Empty,
    /// A kind byte this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The body does not decode as the kind's structure.
    #[error("malformed {kind} frame: {error}")]
    Malformed {
        /// The frame kind's name.
        kind: &'static str,
        /// The codec's complaint.
        error: CodecError,
    },
}

impl Frame {
    /// The frame kind's name (logs and errors).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Auth { .. } => "auth",
            Frame::Accept => "accept",
            Frame::Reject(_) => "reject",
            Frame::Heartbeat { .. } => "heartbeat",
            Frame::HeartbeatAck { .. } => "heartbeat-ack",
            Frame::Lookup { .. } => "lookup",
            Frame::LookupReply { .. } => "lookup-reply",
            Frame::Tell { .. } => "tell",
            Frame::Ask { .. } => "ask",
            Frame::Reply { .. } => "reply",
            Frame::Watch { .. } => "watch",
            Frame::Unwatch { .. } => "unwatch",
            Frame::Terminated { .. } => "terminated",
            Frame::Goodbye => "goodbye",
        }
    }

    /// Appends this frame, length prefix included, to `out` (so many small frames can be
    /// batched into one write).
    pub fn encode<C: Codec>(&self, codec: &C, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        out.extend_from_slice(&[0; LENGTH_PREFIX]);
        match self {
            Frame::Hello(h) => {
                out.push(kind::HELLO);
                codec.encode(h, out)?;
            }
            Frame::Auth { mac } => {
                out.push(kind::AUTH);
                codec.encode(&AuthBody { mac: mac.clone() }, out)?;
            }
            Frame::Reject(r) => {
                out.push(kind::REJECT);
                codec.encode(r, out)?;
            }
            Frame::Heartbeat { seq } => {
                out.push(kind::HEARTBEAT);
                codec.encode(&SeqBody { seq: *seq }, out)?;
            }
            Frame::HeartbeatAck { seq } => {
                out.push(kind::HEARTBEAT_ACK);
                codec.encode(&SeqBody { seq: *seq }, out)?;
            }
            Frame::Lookup {
                request,
                path,
                manifest,
            } => {
                out.push(kind::LOOKUP);
                let body = LookupBody {
                    request: *request,
                    path: path.clone(),
                    manifest: manifest.clone(),
                };
                codec.encode(&body, out)?;
            }
            Frame::LookupReply { request, result } => {
                out.push(kind::LOOKUP_REPLY);
                codec.encode(
                    &LookupReplyBody {
                        request: *request,
                        result: result.clone(),
                    },
                    out,
                )?;
            }
            Frame::Tell {
                recipient,
                manifest,
                payload,
            } => {
                out.push(kind::TELL);
                encode_tell_body(*recipient, *manifest, payload, out);
            }
            Frame::Ask {
                recipient,
                reply_to,
                manifest,
                payload,
            } => {
                out.push(kind::ASK);
                let body = AskBody {
                    recipient: *recipient,
                    reply_to: *reply_to,
                    manifest: manifest.clone(),
                    payload: payload.clone(),
                };
                codec.encode(&body, out)?;
            }
            Frame::Reply { reply_to, payload } => {
                out.push(kind::REPLY);
                codec.encode(
                    &ReplyBody {
                        reply_to: *reply_to,
                        payload: payload.clone(),
                    },
                    out,
                )?;
            }
            Frame::Watch { target, watcher } => {
                out.push(kind::WATCH);
                codec.encode(
                    &WatchBody {
                        target: *target,
                        watcher: *watcher,
                    },
                    out,
                )?;
            }
            Frame::Unwatch { target, watcher } => {
                out.push(kind::UNWATCH);
                codec.encode(
                    &WatchBody {
                        target: *target,
                        watcher: *watcher,
                    },
                    out,
                )?;
            }
            Frame::Terminated { target, reason } => {
                out.push(kind::TERMINATED);
                codec.encode(
                    &TerminatedBody {
                        target: *target,
                        reason: reason.clone(),
                    },
                    out,
                )?;
            }
            Frame::Goodbye => out.push(kind::GOODBYE),
            Frame::Accept => out.push(kind::ACCEPT),
        }
        patch_length(out, start)
    }

    /// Decodes one frame body (kind byte and body, without the length prefix).
    pub fn decode_body<C: Codec>(codec: &C, bytes: &[u8]) -> Result<Frame, WireError> {
        let (&k, body) = bytes.split_first().ok_or(WireError::Empty)?;
        let malformed =
            |kind: &'static str| move |error: CodecError| WireError::Malformed { kind, error };
        Ok(match k {
            kind::HELLO => Frame::Hello(codec.decode(body).map_err(malformed("hello"))?),
            kind::AUTH => {
                let b: AuthBody = codec.decode(body).map_err(malformed("auth"))?;
                Frame::Auth { mac: b.mac }
            }
            kind::REJECT => Frame::Reject(codec.decode(body).map_err(malformed("reject"))?),
            kind::HEARTBEAT => {
                let b: SeqBody = codec.decode(body).map_err(malformed("heartbeat"))?;
                Frame::Heartbeat { seq: b.seq }
            }
            kind::HEARTBEAT_ACK => {
                let b: SeqBody = codec.decode(body).map_err(malformed("heartbeat-ack"))?;
                Frame::HeartbeatAck { seq: b.seq }
            }
            kind::LOOKUP => {
                let b: LookupBody = codec.decode(body).map_err(malformed("lookup"))?;
                Frame::Lookup {
                    request: b.request,
                    path: b.path,
                    manifest: b.manifest,
                }
            }
            kind::LOOKUP_REPLY => {
                let b: LookupReplyBody = codec.decode(body).map_err(malformed("lookup-reply"))?;
                Frame::LookupReply {
                    request: b.request,
                    result: b.result,
                }
            }
            kind::TELL => {
                let (recipient, manifest, payload) = decode_tell_body(body)?;
                Frame::Tell {
                    recipient,
                    manifest,
                    payload: payload.to_vec(),
                }
            }
            kind::ASK => {
                let b: AskBody = codec.decode(body).map_err(malformed("ask"))?;
                Frame::Ask {
                    recipient: b.recipient,
                    reply_to: b.reply_to,
                    manifest: b.manifest,
                    payload: b.payload,
                }
            }
            kind::REPLY => {
                let b: ReplyBody = codec.decode(body).map_err(malformed("reply"))?;
                Frame::Reply {
                    reply_to: b.reply_to,
                    payload: b.payload,
                }
            }
            kind::WATCH => {
                let b: WatchBody = codec.decode(body).map_err(malformed("watch"))?;
                Frame::Watch {
                    target: b.target,
                    watcher: b.watcher,
                }
            }
            kind::UNWATCH => {
                let b: WatchBody = codec.decode(body).map_err(malformed("unwatch"))?;
                Frame::Unwatch {
                    target: b.target,
                    watcher: b.watcher,
                }
            }
            kind::TERMINATED => {
                let b: TerminatedBody = codec.decode(body).map_err(malformed("terminated"))?;
                Frame::Terminated {
                    target: b.target,
                    reason: b.reason,
                }
            }
            kind::GOODBYE if body.is_empty() => Frame::Goodbye,
            kind::ACCEPT if body.is_empty() => Frame::Accept,
            kind::ACCEPT => {
                return Err(WireError::Malformed {
                    kind: "accept",
                    error: CodecError(format!("{} unexpected bytes", body.len())),
                });
            }
            kind::GOODBYE => {
                return Err(WireError::Malformed {
                    kind: "goodbye",
                    error: CodecError(format!("{} unexpected bytes", body.len())),
                });
            }
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

/// A stable 32-bit id of a message type name (FNV-1a), carried by every `Tell` frame so the
/// receiver can check the type without a string per message.
pub fn manifest_id(type_name: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in type_name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

const TELL_HEADER: usize = 12;

/// Appends a `Tell` frame whose payload `encode` writes in place (no buffer of its own), and
/// returns the payload's length. On error `out` is left as it was.
pub fn encode_tell_with(
    recipient: u64,
    manifest: u32,
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<usize, CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX]);
    out.push(kind::TELL);
    encode_tell_body(recipient, manifest, &[], out);
    let payload_start = out.len();
    if let Err(e) = encode(out) {
        out.truncate(start);
        return Err(e);
    }
    if let Err(e) = patch_length(out, start) {
        out.truncate(start);
        return Err(e);
    }
    Ok(out.len() - payload_start)
}

/// Writes the length prefix of the frame that starts at `start` and runs to the end of `out`.
fn patch_length(out: &mut [u8], start: usize) -> Result<(), CodecError> {
    let len = out.len() - start - LENGTH_PREFIX;
    let len32 =
        u32::try_from(len).map_err(|_| CodecError(format!("frame of {len} bytes is too large")))?;
    out[start..start + LENGTH_PREFIX].copy_from_slice(&len32.to_le_bytes());
    Ok(())
}

fn encode_tell_body(recipient: u64, manifest: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&recipient.to_le_bytes());
    out.extend_from_slice(&manifest.to_le_bytes());
    out.extend_from_slice(payload);
}

fn decode_tell_body(body: &[u8]) -> Result<(u64, u32, &[u8]), WireError> {
    let malformed = |why: &str| WireError::Malformed {
        kind: "tell",
        error: CodecError(why.into()),
    };
    let header = body
        .get(..TELL_HEADER)
        .ok_or_else(|| malformed("shorter than its 12-byte header"))?;
    let mut recipient = [0u8; 8];
    recipient.copy_from_slice(&header[..8]);
    let mut manifest = [0u8; 4];
    manifest.copy_from_slice(&header[8..]);
    Ok((
        u64::from_le_bytes(recipient),
        u32::from_le_bytes(manifest),
        &body[TELL_HEADER..],
    ))
}

/// A decoded frame, with `Tell` payloads borrowed from the decoder's buffer (no copy on the hot
/// path).
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A message for an actor.
    Tell {
        /// The recipient's id.
        recipient: u64,
        /// [`manifest_id`] of the message type.
        manifest: u32,
        /// The encoded message.
        payload: &'a [u8],
    },
    /// Any other frame.
    Frame(Frame),
}

/// Splits a byte stream into frames. Feed it whatever the transport delivered; it buffers partial
/// frames and never holds more than one maximum-size frame.
#[derive(Debug)]
pub struct FrameDecoder<C> {
    codec: C,
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

impl<C: Codec> FrameDecoder<C> {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(codec: C, max_frame: usize) -> Self {
        Self {
            codec,
            buf: Vec::new(),
            start: 0,
            max_frame,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the protocol violation.
    /// After an error the stream is unusable (the connection should be closed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        Ok(self.next_decoded()?.map(|d| match d {
            Decoded::Tell {
                recipient,
                manifest,
                payload,
            } => Frame::Tell {
                recipient,
                manifest,
                payload: payload.to_vec(),
            },
            Decoded::Frame(f) => f,
        }))
    }

    /// Like [`FrameDecoder::next_frame`], but a `Tell`'s payload is borrowed from the buffer.
    pub fn next_decoded(&mut self) -> Result<Option<Decoded<'_>>, WireError> {
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; LENGTH_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > self.max_frame {
            return Err(WireError::Oversized {
                announced: len,
                max: self.max_frame,
            });
        }
        let body_start = self.start + LENGTH_PREFIX;
        if self.buf.len() < body_start + len {
            return Ok(None);
        }
        self.start = body_start + len;
        let body = &self.buf[body_start..body_start + len];
        if body.first() == Some(&kind::TELL) {
            let (recipient, manifest, payload) = decode_tell_body(&body[1..])?;
            return Ok(Some(Decoded::Tell {
                recipient,
                manifest,
                payload,
            }));
        }
        Frame::decode_body(&self.codec, body).map(|f| Some(Decoded::Frame(f)))
    }

    /// Bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}
