//! The streams of one connection beyond the control stream: user messages travel on ordered
//! **lanes** (one unidirectional stream each; the lane is a hash of the recipient, so each
//! recipient's messages stay in order and a stalled lane does not hold up the others), a
//! **large message** gets a stream of its own (so it does not hold up a lane while it crawls),
//! and an **unreliable** message is one QUIC datagram.
//!
//! Every outbound stream has one writer task that writes everything queued as one buffer
//! (writing one frame per call is what makes small messages slow). A lane's queue *is* that
//! buffer: senders encode their frame straight into it under a short lock, and the writer swaps it
//! for an empty one, so a message costs no allocation and no copy between encoding and the write. A stream opens with a header:
//! `[LANE_STREAM, lane]` or `[LARGE_STREAM]`. Anything else, or a frame other than a message on
//! these streams, is a protocol violation that closes the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use actor_core::transport::Transport;
use actor_core::{ActorPath, ActorSystem, DeadLetterReason};
use tokio::sync::{mpsc, watch};

use crate::codec::Bincode;
use crate::handshake::PeerInfo;
use crate::node::{Shared, StreamEnd, Traffic, drain};
use crate::routes::{Routes, deliver_tell};
use crate::wire::{Decoded, Frame, FrameDecoder};

/// First byte of a lane stream (the second is the lane's index).
pub(crate) const LANE_STREAM: u8 = 1;
/// First byte of a stream carrying one large message.
pub(crate) const LARGE_STREAM: u8 = 2;

/// The lane of `recipient` among `lanes` (a multiplicative hash: consecutive ids spread).
pub(crate) fn lane_of(recipient: u64, lanes: usize) -> usize {
    (recipient.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % lanes.max(1)
}

/// One lane's queue: frames encoded back to back, ready to write.
pub(crate) struct Lane {
    state: Mutex<LaneState>,
    wake: tokio::sync::Notify,
    /// Messages it holds before refusing more.
    limit: u64,
}

struct LaneState {
    buf: Vec<u8>,
    /// Messages in `buf`.
    tells: u64,
    /// Set when the link died: pushes are refused.
    closed: bool,
}

/// Why a push was refused.
pub(crate) enum PushError {
    Full,
    Closed,
    /// The encoder failed (nothing was queued).
    Encode(crate::codec::CodecError),
    /// The payload is over the lane's limit: here is the whole encoded frame, for the large
    /// message stream.
    Large(Vec<u8>),
}

impl Lane {
    pub(crate) fn new(limit: usize) -> Self {
        Lane {
            state: Mutex::new(LaneState {
                buf: Vec::new(),
                tells: 0,
                closed: false,
            }),
            wake: tokio::sync::Notify::new(),
            limit: limit.max(1) as u64,
        }
    }

    /// Encodes a `Tell` into the lane's buffer (`encode` writes the payload) and wakes the writer
    /// if the buffer was empty. A payload over `large` bytes is handed back encoded.
    pub(crate) fn push(
        &self,
        recipient: u64,
        manifest: u32,
        large: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::codec::CodecError>,
    ) -> Result<(), PushError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        if st.tells >= self.limit {
            return Err(PushError::Full);
        }
        let start = st.buf.len();
        let len = crate::wire::encode_tell_with(recipient, manifest, &mut st.buf, encode)
            .map_err(PushError::Encode)?;
        if len > large {
            return Err(PushError::Large(st.buf.split_off(start)));
        }
        st.tells += 1;
        let first = st.tells == 1;
        drop(st);
        if first {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// A lane's writer: opens its stream on the first message, then writes whatever the senders
/// encoded since the last write, one buffer per write. When the link dies it closes the lane and
/// counts what did not go out (at most once: a batch whose write failed counts as lost).
pub(crate) async fn lane_writer(
    conn: quinn::Connection,
    index: u8,
    lane: Arc<Lane>,
    mut shutdown: watch::Receiver<bool>,
    system: ActorSystem,
    node: String,
    traffic: Arc<Traffic>,
) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut send: Option<quinn::SendStream> = None;
    let mut unsent = 0u64;
    loop {
        tokio::select! {
            _ = lane.wake.notified() => {}
            _ = shutdown.wait_for(|down| *down) => break,
        }
        let tells = {
            let mut st = lane.state.lock();
            std::mem::swap(&mut st.buf, &mut batch);
            std::mem::take(&mut st.tells)
        };
        if batch.is_empty() {
            continue;
        }
        if send.is_none() {
            match conn.open_uni().await {
                Ok(mut s) => {
                    if s.write_all(&[LANE_STREAM, index]).await.is_err() {
                        unsent = tells;
                        break;
                    }
                    send = Some(s);
                }
                Err(_) => {
                    unsent = tells;
                    break;
                }
            }
        }
        let Some(stream) = send.as_mut() else { break };
        if stream.write_all(&batch).await.is_err() {
            unsent = tells;
            break;
        }
        traffic.sent.fetch_add(tells, Ordering::Relaxed);
        batch.clear();
        if batch.capacity() > 4 * 1024 * 1024 {
            // One burst should not pin its peak size for the link's lifetime.
            batch = Vec::with_capacity(64 * 1024);
        }
    }
    let queued = {
        let mut st = lane.state.lock();
        st.closed = true;
        st.buf = Vec::new();
        std::mem::take(&mut st.tells)
    };
    count_lost(&system, &node, queued + unsent);
}

/// The control stream's writer: drains everything queued (heartbeats, lookups, watches; never
/// user messages, which travel on lanes) and writes it as one buffer, until the link dies.
pub(crate) async fn writer(
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<Frame>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut out = Vec::with_capacity(4 * 1024);
    loop {
        let first = tokio::select! {
            f = rx.recv() => f,
            _ = shutdown.wait_for(|down| *down) => None,
        };
        let Some(first) = first else { break };
        out.clear();
        let mut next = Some(first);
        while let Some(frame) = next {
            if let Err(e) = frame.encode(&Bincode, &mut out) {
                tracing::error!(error = %e, "could not encode a control frame; dropped");
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
    }
    rx.close();
}

fn count_lost(system: &ActorSystem, node: &str, lost: u64) {
    let path = ActorPath::from_string(format!("//{node}"));
    for _ in 0..lost {
        system.record_dead_letter(&path, "remote message", DeadLetterReason::Remote);
    }
    if lost > 0 {
        tracing::warn!(%node, lost, "messages to a lost node counted as dead letters");
    }
}

/// Writes each large message on a stream of its own, one after the other.
pub(crate) async fn large_writer(
    conn: quinn::Connection,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut shutdown: watch::Receiver<bool>,
    system: ActorSystem,
    node: String,
    traffic: Arc<Traffic>,
) {
    let mut out = Vec::new();
    let mut lost = 0u64;
    loop {
        let frame = tokio::select! {
            f = rx.recv() => f,
            _ = shutdown.wait_for(|down| *down) => None,
        };
        let Some(frame) = frame else { break };
        out.clear();
        out.push(LARGE_STREAM);
        out.extend_from_slice(&frame);
        drop(frame);
        let sent = async {
            let mut send = conn.open_uni().await.ok()?;
            send.write_all(&out).await.ok()?;
            send.finish().ok()
        }
        .await;
        match sent {
            Some(()) => {
                traffic.sent.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                lost += 1;
                break;
            }
        }
    }
    rx.close();
    while rx.try_recv().is_ok() {
        lost += 1;
    }
    count_lost(&system, &node, lost);
}

/// Accepts the peer's lanes and large-message streams and reads each in a task of its own,
/// until the connection ends.
pub(crate) async fn accept_streams(
    shared: Arc<Shared>,
    peer: PeerInfo,
    conn: quinn::Connection,
    scope: Arc<dyn Transport>,
) {
    while let Ok(recv) = conn.accept_uni().await {
        tokio::spawn(read_stream(
            shared.clone(),
            peer.clone(),
            conn.clone(),
            scope.clone(),
            recv,
        ));
    }
}

/// Closes the connection for a protocol violation, counting it.
fn violation(shared: &Shared, peer: &PeerInfo, conn: &quinn::Connection, why: &str) {
    shared.count_rejected();
    tracing::warn!(node = %peer.node, %why, "protocol violation on a stream; closing the connection");
    conn.close(2u32.into(), why.as_bytes());
}

async fn read_stream(
    shared: Arc<Shared>,
    peer: PeerInfo,
    conn: quinn::Connection,
    scope: Arc<dyn Transport>,
    mut recv: quinn::RecvStream,
) {
    let max_frame = shared.config.max_frame;
    let mut kind = [0u8; 1];
    if recv.read_exact(&mut kind).await.is_err() {
        return;
    }
    match kind[0] {
        LANE_STREAM => {
            let mut lane = [0u8; 1];
            if recv.read_exact(&mut lane).await.is_err() {
                return;
            }
            let mut decoder = FrameDecoder::new(Bincode, max_frame);
            let mut buf = vec![0u8; 64 * 1024];
            let mut routes = Routes::new();
            while let Ok(Some(n)) = recv.read(&mut buf).await {
                decoder.push(&buf[..n]);
                let drained = drain(&mut decoder, &shared, &mut routes, &peer, &scope, |other| {
                    Err(StreamEnd::Violation(format!(
                        "a {} frame on lane {}",
                        other.kind_name(),
                        lane[0]
                    )))
                });
                if let Err(end) = drained {
                    return violation(&shared, &peer, &conn, &end.into_reason());
                }
            }
        }
        LARGE_STREAM => {
            // The length prefix and kind byte come on top of the maximum frame body.
            let bytes = match recv.read_to_end(max_frame + 8).await {
                Ok(bytes) => bytes,
                Err(quinn::ReadToEndError::TooLong) => {
                    return violation(&shared, &peer, &conn, "a large message over max_frame");
                }
                Err(_) => return,
            };
            deliver_one(
                &shared,
                &mut Routes::new(),
                &peer,
                &conn,
                &scope,
                &bytes,
                "large message stream",
            );
        }
        other => violation(
            &shared,
            &peer,
            &conn,
            &format!("unknown stream kind {other}"),
        ),
    }
}

/// Decodes `bytes` as exactly one message frame and delivers it.
fn deliver_one(
    shared: &Shared,
    routes: &mut Routes,
    peer: &PeerInfo,
    conn: &quinn::Connection,
    scope: &Arc<dyn Transport>,
    bytes: &[u8],
    what: &str,
) {
    let mut decoder = FrameDecoder::new(Bincode, shared.config.max_frame);
    decoder.push(bytes);
    let complete = match decoder.next_decoded() {
        Ok(Some(Decoded::Tell {
            recipient,
            manifest,
            payload,
        })) => {
            routes.refresh(shared);
            deliver_tell(shared, routes, peer, scope, recipient, manifest, payload);
            shared.traffic.received.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(Some(Decoded::Frame(other))) => {
            return violation(
                shared,
                peer,
                conn,
                &format!("a {} frame in a {what}", other.kind_name()),
            );
        }
        Ok(None) => false,
        Err(e) => return violation(shared, peer, conn, &e.to_string()),
    };
    if !complete || decoder.buffered() > 0 {
        violation(
            shared,
            peer,
            conn,
            &format!("a {what} that is not exactly one message"),
        );
    }
}

/// Reads the peer's datagrams (unreliable messages) until the connection ends.
pub(crate) async fn read_datagrams(
    shared: Arc<Shared>,
    peer: PeerInfo,
    conn: quinn::Connection,
    scope: Arc<dyn Transport>,
) {
    let mut routes = Routes::new();
    while let Ok(datagram) = conn.read_datagram().await {
        deliver_one(
            &shared,
            &mut routes,
            &peer,
            &conn,
            &scope,
            &datagram,
            "datagram",
        );
    }
}
