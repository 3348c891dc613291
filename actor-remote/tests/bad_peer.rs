//! A misbehaving peer over real QUIC: the test authenticates with raw quinn and the public
//! sans-IO handshake, then sends bad input. Nothing panics; every rejection is counted; a peer
//! that breaks the protocol is disconnected, while a peer that merely sends a message that does
//! not decode keeps its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, SystemConfig};
use actor_remote::handshake::{Handshake, HandshakeConfig, Progress};
use actor_remote::node::{Node, NodeConfig, PeerState, dev_quic_configs};
use actor_remote::wire::{Frame, FrameDecoder, LookupResult, manifest_id};
use actor_remote::{Bincode, Codec};
use serde::{Deserialize, Serialize};

mod support;
use support::eventually;

#[derive(Serialize, Deserialize)]
enum EchoMsg {
    Text(String),
}

/// Counts the messages it receives.
struct Sink(Arc<AtomicU64>);

impl Actor for Sink {
    type Msg = EchoMsg;
    async fn handle(&mut self, _msg: EchoMsg, _ctx: &mut Context<Self>) -> ActorResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Rogue {
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder<Bincode>,
    _endpoint: quinn::Endpoint,
}

/// A raw QUIC connection to `node` with the node's TLS settings, and its control stream.
async fn dial(
    node: &Node,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
) {
    let (_, client_cfg) = dev_quic_configs(Duration::from_secs(10)).expect("tls");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut endpoint = quinn::Endpoint::client(any).expect("endpoint");
    endpoint.set_default_client_config(client_cfg);
    let conn = endpoint
        .connect(node.local_addr().expect("addr"), "actor-node")
        .expect("connect")
        .await
        .expect("QUIC up");
    let (send, recv) = conn.open_bi().await.expect("control stream");
    (endpoint, conn, send, recv)
}

/// The node closes `conn` (within 10 s) and has counted `rejected` bad frames.
async fn assert_disconnected(conn: &quinn::Connection, node: &Node, rejected: u64) {
    assert!(
        closed_within(conn, Duration::from_secs(10)).await,
        "disconnected"
    );
    assert_eq!(node.stats().rejected_frames, rejected);
}

impl Rogue {
    /// Connects to `node` and passes its handshake honestly (it knows the secret).
    async fn join(node: &Node) -> Rogue {
        let (endpoint, conn, mut send, mut recv) = dial(node).await;
        let config = HandshakeConfig {
            node: "rogue".into(),
            incarnation: 1,
            secret: Some(b"k".to_vec()),
            codec: Bincode.name().into(),
            timeout: Duration::from_secs(5),
        };
        let mut handshake = Handshake::new(config, [7; 16], Instant::now());
        let mut decoder = FrameDecoder::new(Bincode, 1 << 20);
        let mut buf = vec![0u8; 4096];
        'outer: loop {
            let mut out = Vec::new();
            for f in handshake.poll_transmit() {
                f.encode(&Bincode, &mut out).expect("encode");
            }
            send.write_all(&out).await.expect("write");
            let n = recv.read(&mut buf).await.expect("read").expect("open");
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame().expect("valid frames") {
                if let Progress::Established(_) = handshake.handle(frame).expect("accepted") {
                    let mut out = Vec::new();
                    for f in handshake.poll_transmit() {
                        f.encode(&Bincode, &mut out).expect("encode");
                    }
                    send.write_all(&out).await.expect("write");
                    break 'outer;
                }
            }
        }
        Rogue {
            conn,
            send,
            recv,
            decoder,
            _endpoint: endpoint,
        }
    }

    async fn send_frame(&mut self, frame: Frame) {
        let mut out = Vec::new();
        frame.encode(&Bincode, &mut out).expect("encode");
        self.send.write_all(&out).await.expect("write");
    }

    /// The next frame from the node that is not a heartbeat.
    async fn next_frame(&mut self) -> Frame {
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(frame) = self.decoder.next_frame().expect("valid") {
                match frame {
                    Frame::Heartbeat { .. } | Frame::HeartbeatAck { .. } => continue,
                    other => return other,
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.recv.read(&mut buf))
                .await
                .expect("in time")
                .expect("read")
                .expect("open");
            self.decoder.push(&buf[..n]);
        }
    }
}

fn node() -> (ActorSystem, Node) {
    let (system, node, _) = node_with_sink();
    (system, node)
}

/// A node exposing `/user/sink`, and the count of messages the sink has received.
fn node_with_sink() -> (ActorSystem, Node, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let node = Node::start(
        &system,
        NodeConfig::new("alpha", "127.0.0.1:0".parse().expect("addr"), b"k".to_vec()),
    )
    .expect("node");
    let sink = system
        .spawn(Props::new(move || Sink(counter.clone())).name("sink"))
        .expect("spawn");
    node.expose(&sink);
    (system, node, received)
}

async fn closed_within(conn: &quinn::Connection, limit: Duration) -> bool {
    tokio::time::timeout(limit, conn.closed()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_frame_kind_disconnects_the_peer_and_is_counted() {
    let (_system, node) = node();
    let mut rogue = Rogue::join(&node).await;
    // [length = 1][kind = 0xEE]: no such kind.
    rogue
        .send
        .write_all(&[1, 0, 0, 0, 0xEE])
        .await
        .expect("write");
    assert_disconnected(&rogue.conn, &node, 1).await;
    // The node closes the connection first, then marks the peer.
    assert!(
        eventually(Duration::from_secs(5), || node.peers()[0].state
            == PeerState::Unreachable)
        .await,
        "{:?}",
        node.peers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_length_prefix_disconnects_the_peer_before_buffering() {
    let (_system, node) = node();
    let mut rogue = Rogue::join(&node).await;
    rogue
        .send
        .write_all(&u32::MAX.to_le_bytes())
        .await
        .expect("write");
    assert_disconnected(&rogue.conn, &node, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_does_not_decode_is_rejected_and_the_peer_stays() {
    let (_system, node, received) = node_with_sink();
    let mut rogue = Rogue::join(&node).await;
    rogue
        .send_frame(Frame::Lookup {
            request: 1,
            path: "/user/sink".into(),
            manifest: std::any::type_name::<EchoMsg>().into(),
        })
        .await;
    let sink = match rogue.next_frame().await {
        Frame::LookupReply {
            result: LookupResult::Found { actor },
            ..
        } => actor,
        other => panic!("expected the sink, got {other:?}"),
    };
    // The right manifest, a payload that is not an EchoMsg; then the wrong manifest.
    let manifest = manifest_id(std::any::type_name::<EchoMsg>());
    rogue
        .send_frame(Frame::Tell {
            recipient: sink,
            manifest,
            payload: vec![0xFF; 9],
        })
        .await;
    rogue
        .send_frame(Frame::Tell {
            recipient: sink,
            manifest: manifest ^ 1,
            payload: vec![0],
        })
        .await;
    // A valid EchoMsg followed by a byte: rejected whole, not delivered half-read.
    let mut valid = Vec::new();
    Bincode
        .encode(&EchoMsg::Text("hi".into()), &mut valid)
        .expect("encode");
    let mut trailing = valid.clone();
    trailing.push(0);
    rogue
        .send_frame(Frame::Tell {
            recipient: sink,
            manifest,
            payload: trailing,
        })
        .await;
    // Then the same message without the byte, which is delivered. Frames on the control stream
    // are handled in order, so once it has arrived the three before it have been judged.
    rogue
        .send_frame(Frame::Tell {
            recipient: sink,
            manifest,
            payload: valid,
        })
        .await;
    assert!(
        eventually(Duration::from_secs(5), || received.load(Ordering::SeqCst)
            == 1)
        .await,
        "the valid message arrives"
    );
    assert_eq!(node.stats().rejected_frames, 3, "{:?}", node.stats());
    assert_eq!(received.load(Ordering::SeqCst), 1, "nothing else delivered");
    // Still connected: a lookup is still answered.
    rogue
        .send_frame(Frame::Lookup {
            request: 2,
            path: "/user/nobody".into(),
            manifest: "x".into(),
        })
        .await;
    assert!(matches!(
        rogue.next_frame().await,
        Frame::LookupReply {
            request: 2,
            result: LookupResult::NotFound
        }
    ));
    assert_eq!(node.peers()[0].state, PeerState::Up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stream_kind_disconnects_the_peer() {
    let (_system, node) = node();
    let rogue = Rogue::join(&node).await;
    let mut uni = rogue.conn.open_uni().await.expect("uni");
    uni.write_all(&[9, 9, 9]).await.expect("write");
    let _ = uni.finish();
    assert_disconnected(&rogue.conn, &node, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_frame_on_a_lane_disconnects_the_peer() {
    let (_system, node) = node();
    let rogue = Rogue::join(&node).await;
    let mut uni = rogue.conn.open_uni().await.expect("uni");
    let mut bytes = vec![1u8, 0]; // lane 0
    Frame::Heartbeat { seq: 1 }
        .encode(&Bincode, &mut bytes)
        .expect("encode");
    uni.write_all(&bytes).await.expect("write");
    assert_disconnected(&rogue.conn, &node, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_speaking_another_protocol_version_is_refused_with_the_cause_on_both_sides() {
    use actor_remote::handshake::HandshakeError;
    use actor_remote::wire::{Hello, PROTOCOL_VERSION, RejectReason};
    let (_system, node) = node();
    let (_endpoint, _conn, mut send, mut recv) = dial(&node).await;
    let mut out = Vec::new();
    Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION + 1,
        codec: Bincode.name().into(),
        node: "future".into(),
        incarnation: 1,
        nonce: [1; 16],
    })
    .encode(&Bincode, &mut out)
    .expect("encode");
    send.write_all(&out).await.expect("write");
    // Our side of the story: the node's Hello, then a Reject naming the version.
    let mut decoder = FrameDecoder::new(Bincode, 1 << 20);
    let mut buf = vec![0u8; 4096];
    let reject = loop {
        if let Some(frame) = decoder.next_frame().expect("valid") {
            match frame {
                Frame::Reject(reason) => break reason,
                _ => continue,
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), recv.read(&mut buf))
            .await
            .expect("in time")
            .expect("read")
            .expect("a Reject before the stream ends");
        decoder.push(&buf[..n]);
    };
    assert_eq!(
        reject,
        RejectReason::Version {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION + 1
        }
    );
    assert!(reject.to_string().contains("incompatible protocol version"));
    // The node's side: the refusal is recorded with the same cause, and nobody was admitted.
    let recorded = eventually(Duration::from_secs(5), || {
        node.refusals().iter().any(|r| {
            matches!(
                &r.error,
                HandshakeError::Refused(RejectReason::Version { .. })
            )
        })
    })
    .await;
    assert!(recorded, "{:?}", node.refusals());
    assert!(node.peers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_frame_after_the_handshake_disconnects_the_peer() {
    let (_system, node) = node();
    let mut rogue = Rogue::join(&node).await;
    rogue.send_frame(Frame::Accept).await;
    assert_disconnected(&rogue.conn, &node, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goodbye_ends_the_association_without_counting_a_violation() {
    let (_system, node) = node();
    let mut rogue = Rogue::join(&node).await;
    rogue.send_frame(Frame::Goodbye).await;
    assert!(
        closed_within(&rogue.conn, Duration::from_secs(10)).await,
        "closed"
    );
    assert_eq!(node.stats().rejected_frames, 0);
}
