//! The connection's message streams over real QUIC on 127.0.0.1: per-recipient order across
//! lanes, large messages on their own stream (and the maximum enforced), unreliable sends as
//! datagrams, and byte payloads marked `serde_bytes` (the README's advice).

use std::net::SocketAddr;
use std::time::Duration;

use actor_core::testkit::TestProbe;
use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SystemConfig, TrySendError,
};
use actor_remote::node::{Node, NodeConfig, UnreliableError};
use serde::{Deserialize, Serialize};

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

fn node_in(system: &ActorSystem, name: &str, tweak: impl FnOnce(&mut NodeConfig)) -> Node {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut config = NodeConfig::new(name, addr, b"k".to_vec());
    tweak(&mut config);
    Node::start(system, config).expect("node starts")
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Msg {
    Seq { from: u32, n: u32 },
    Blob(Vec<u8>),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Forwards to a probe.
struct Fwd(ActorRef<Msg>);

impl Actor for Fwd {
    type Msg = Msg;
    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> ActorResult {
        self.0.tell(msg);
        Ok(())
    }
}

/// alpha and beta connected; beta runs `count` forwarders `/user/f{i}` into one probe.
async fn setup(
    count: usize,
    tweak: impl Fn(&mut NodeConfig),
) -> (ActorSystem, Node, Node, Vec<ActorRef<Msg>>, TestProbe<Msg>) {
    let (sys_a, sys_b) = (system(), system());
    let (a, b) = (
        node_in(&sys_a, "alpha", &tweak),
        node_in(&sys_b, "beta", &tweak),
    );
    let probe = TestProbe::<Msg>::new(&sys_b);
    for i in 0..count {
        let out = probe.actor_ref();
        let f = sys_b
            .spawn(Props::new(move || Fwd(out.clone())).name(format!("f{i}")))
            .expect("spawn");
        b.expose(&f);
    }
    a.connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    let mut refs = Vec::new();
    for i in 0..count {
        refs.push(
            a.lookup("beta", &format!("/user/f{i}"))
                .await
                .expect("found"),
        );
    }
    (sys_a, a, b, refs, probe)
}

/// Messages over 64 KiB take a stream of their own; frames up to 4 MiB are accepted.
fn large_messages_over_64_kib(c: &mut NodeConfig) {
    c.large_message = 64 * 1024;
    c.max_frame = 4 * 1024 * 1024;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_gets_its_messages_in_order_across_the_lanes() {
    let (_sys, _a, _b, refs, mut probe) = setup(16, |c| c.lanes = 4).await;
    let per = 500u32;
    for n in 0..per {
        for (from, r) in refs.iter().enumerate() {
            r.tell(Msg::Seq {
                from: from as u32,
                n,
            });
        }
    }
    let mut next = vec![0u32; refs.len()];
    for _ in 0..per as usize * refs.len() {
        match probe.expect_msg(Duration::from_secs(10)).await {
            Msg::Seq { from, n } => {
                assert_eq!(n, next[from as usize], "recipient {from} out of order");
                next[from as usize] += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_travels_on_its_own_stream_and_small_ones_keep_flowing() {
    let (_sys, a, b, refs, mut probe) = setup(2, large_messages_over_64_kib).await;
    let blob: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    refs[0].tell(Msg::Blob(blob.clone()));
    refs[1].tell(Msg::Seq { from: 1, n: 0 });
    let mut got_blob = false;
    let mut got_small = false;
    for _ in 0..2 {
        match probe.expect_msg(Duration::from_secs(10)).await {
            Msg::Blob(b) => {
                assert_eq!(b, blob, "the large message arrives whole");
                got_blob = true;
            }
            Msg::Seq { .. } => got_small = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_blob && got_small);
    assert_eq!(b.stats().rejected_frames, 0);
    assert!(a.stats().messages_sent >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_maximum_frame_is_refused_and_counted() {
    let (sys_a, _a, _b, refs, mut probe) = setup(1, |c| c.max_frame = 256 * 1024).await;
    let big = Msg::Blob(vec![1; 300 * 1024]);
    match refs[0].try_tell(big.clone()) {
        Err(TrySendError::Closed(back)) => assert_eq!(back, big, "handed back"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let before = sys_a.dead_letter_count();
    refs[0].tell(big);
    assert_eq!(sys_a.dead_letter_count(), before + 1, "counted");
    refs[0].tell(Msg::Seq { from: 0, n: 1 });
    assert_eq!(
        probe.expect_msg(Duration::from_secs(10)).await,
        Msg::Seq { from: 0, n: 1 },
        "the connection is fine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_sends_travel_as_datagrams() {
    let (sys_a, a, _b, refs, mut probe) = setup(1, |_| {}).await;
    // On loopback nothing is lost: every datagram arrives (in any order).
    for n in 0..20 {
        a.tell_unreliable(&refs[0], Msg::Seq { from: 0, n })
            .expect("sent");
    }
    let mut seen = Vec::new();
    for _ in 0..20 {
        match probe.expect_msg(Duration::from_secs(10)).await {
            Msg::Seq { n, .. } => seen.push(n),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    // Too big for one datagram: refused with the sizes, and counted.
    let before = sys_a.dead_letter_count();
    match a.tell_unreliable(&refs[0], Msg::Blob(vec![0; 4000])) {
        Err(UnreliableError::TooLarge { size, max }) => assert!(size > max, "{size} > {max}"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(sys_a.dead_letter_count(), before + 1);
    // A local ref just gets a tell.
    let local = TestProbe::<Msg>::new(&sys_a);
    a.tell_unreliable(&local.actor_ref(), Msg::Seq { from: 9, n: 9 })
        .expect("local");
    let mut local = local;
    assert_eq!(
        local.expect_msg(Duration::from_secs(5)).await,
        Msg::Seq { from: 9, n: 9 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_payloads_marked_serde_bytes_arrive_whole_on_lanes_and_large_streams() {
    let (_sys, _a, b, refs, mut probe) = setup(1, large_messages_over_64_kib).await;
    let large: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let sent = [Vec::new(), vec![7u8; 100], large];
    for bytes in &sent {
        refs[0].tell(Msg::Bytes(bytes.clone()));
    }
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        match probe.expect_msg(Duration::from_secs(10)).await {
            Msg::Bytes(bytes) => got.push(bytes),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The large one takes its own stream and may overtake the others.
    got.sort_by_key(Vec::len);
    assert_eq!(got, sent);
    assert_eq!(b.stats().rejected_frames, 0);
}

#[test]
fn a_serde_bytes_payload_is_the_same_on_the_wire_and_a_lying_length_is_refused() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Plain(Vec<u8>);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Bytes(#[serde(with = "serde_bytes")] Vec<u8>);

    use actor_remote::{Bincode, Codec};
    let (mut plain, mut bytes) = (Vec::new(), Vec::new());
    Bincode
        .encode(&Plain(vec![1, 2, 3]), &mut plain)
        .expect("encodes");
    Bincode
        .encode(&Bytes(vec![1, 2, 3]), &mut bytes)
        .expect("encodes");
    // A sender may switch its field to `serde_bytes` without its peers noticing.
    assert_eq!(plain, bytes);
    assert_eq!(Bincode.decode::<Bytes>(&plain), Ok(Bytes(vec![1, 2, 3])));
    assert_eq!(Bincode.decode::<Plain>(&bytes), Ok(Plain(vec![1, 2, 3])));
    // A payload that claims 2^32 bytes and carries one is refused.
    let lying = [253u8, 0, 0, 0, 0, 1, 0, 0, 0, 7];
    let err = Bincode.decode::<Bytes>(&lying).expect_err("refused");
    assert!(!err.0.is_empty());
}
