//! Wire format properties: every frame round-trips, chunking never matters, and arbitrary or
//! hostile input yields an error, never a panic or an unbounded buffer.

use actor_remote::wire::{Frame, FrameDecoder, Hello, LookupResult, RejectReason, WireError};
use actor_remote::{Bincode, Codec};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-z/0-9:_-]{0,40}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            any::<u16>(),
            text(),
            text(),
            any::<u64>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(p, c, n, i, nonce)| {
                Frame::Hello(Hello {
                    protocol: p,
                    codec: c,
                    node: n,
                    incarnation: i,
                    nonce,
                })
            }),
        bytes().prop_map(|mac| Frame::Auth { mac }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| Frame::Reject(RejectReason::Version { ours: a, theirs: b })),
        Just(Frame::Reject(RejectReason::BadSecret)),
        text().prop_map(|t| Frame::Reject(RejectReason::Protocol(t))),
        any::<u64>().prop_map(|seq| Frame::Heartbeat { seq }),
        any::<u64>().prop_map(|seq| Frame::HeartbeatAck { seq }),
        (any::<u64>(), text(), text()).prop_map(|(request, path, manifest)| Frame::Lookup {
            request,
            path,
            manifest
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(request, actor)| Frame::LookupReply {
            request,
            result: LookupResult::Found { actor }
        }),
        (any::<u64>(), text()).prop_map(|(request, actual)| Frame::LookupReply {
            request,
            result: LookupResult::TypeMismatch { actual }
        }),
        (any::<u64>(), any::<u32>(), bytes()).prop_map(|(recipient, manifest, payload)| {
            Frame::Tell {
                recipient,
                manifest,
                payload,
            }
        }),
        (any::<u64>(), any::<u64>(), text(), bytes()).prop_map(
            |(recipient, reply_to, manifest, payload)| {
                Frame::Ask {
                    recipient,
                    reply_to,
                    manifest,
                    payload,
                }
            }
        ),
        (any::<u64>(), bytes()).prop_map(|(reply_to, payload)| Frame::Reply { reply_to, payload }),
        (any::<u64>(), any::<u64>()).prop_map(|(target, watcher)| Frame::Watch { target, watcher }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(target, watcher)| Frame::Unwatch { target, watcher }),
        (any::<u64>(), text()).prop_map(|(target, reason)| Frame::Terminated { target, reason }),
        Just(Frame::Goodbye),
        Just(Frame::Accept),
    ]
}

/// A message shaped like a game server's: the payload the erased decoding tests feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum GameMsg {
    Join { player: u64, name: String },
    Move(i32, i32, u8),
    Chat(Vec<String>),
    Scores(std::collections::BTreeMap<String, u32>),
    Leave(Option<u64>),
    Blob(Vec<u8>),
    Ping,
}

fn game_msg() -> impl Strategy<Value = GameMsg> {
    prop_oneof![
        (any::<u64>(), ".{0,12}").prop_map(|(player, name)| GameMsg::Join { player, name }),
        (any::<i32>(), any::<i32>(), any::<u8>()).prop_map(|(x, y, f)| GameMsg::Move(x, y, f)),
        proptest::collection::vec(".{0,8}", 0..4).prop_map(GameMsg::Chat),
        proptest::collection::btree_map(".{0,6}", any::<u32>(), 0..4).prop_map(GameMsg::Scores),
        any::<Option<u64>>().prop_map(GameMsg::Leave),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(GameMsg::Blob),
        Just(GameMsg::Ping),
    ]
}

/// Decodes `bytes` the way a message to an exported ref is decoded: type-erased, then the end
/// check, then the value is used.
fn decode_erased_as<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut seen = None;
    Bincode
        .decode_erased(bytes, &mut |de, end| {
            let value: T = erased_serde::deserialize(de)?;
            end()?;
            seen = Some(value);
            Ok(())
        })
        .map_err(|e| e.0)?;
    seen.ok_or_else(|| "nothing decoded".to_owned())
}

fn decode_game_msg(bytes: &[u8]) -> Option<GameMsg> {
    decode_erased_as(bytes).ok()
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&Bincode, &mut out).expect("encodable");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn frames_round_trip_through_any_chunking(
        frames in proptest::collection::vec(frame(), 1..20),
        chunk in 1usize..64,
    ) {
        let wire = encode_all(&frames);
        let mut decoder = FrameDecoder::new(Bincode, 1 << 20);
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            decoder.push(piece);
            while let Some(f) = decoder.next_frame().expect("valid stream") {
                got.push(f);
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let mut decoder = FrameDecoder::new(Bincode, 4_096);
        decoder.push(&input);
        // Decode until the stream ends, asks for more, or breaks the protocol.
        for _ in 0..input.len() + 1 {
            match decoder.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn erased_payloads_of_any_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Some(msg) = decode_game_msg(&input) {
            // Whatever is accepted is a whole value: it encodes and decodes to itself.
            let mut again = Vec::new();
            Bincode.encode(&msg, &mut again).expect("encodable");
            prop_assert_eq!(decode_game_msg(&again), Some(msg));
        }
    }

    #[test]
    fn corrupted_erased_payloads_never_panic(
        msg in game_msg(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        Bincode.encode(&msg, &mut bytes).expect("encodable");
        prop_assert_eq!(decode_game_msg(&bytes), Some(msg.clone()));
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = decode_game_msg(&bytes);
    }

    #[test]
    fn corrupting_a_valid_stream_never_panics(
        frames in proptest::collection::vec(frame(), 1..5),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut wire = encode_all(&frames);
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] ^= byte;
        }
        let mut decoder = FrameDecoder::new(Bincode, 1 << 16);
        decoder.push(&wire);
        for _ in 0..frames.len() + 2 {
            match decoder.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[test]
fn truncated_frames_wait_for_more_bytes() {
    let wire = encode_all(&[Frame::Tell {
        recipient: 7,
        manifest: 42,
        payload: vec![1, 2, 3],
    }]);
    let mut decoder = FrameDecoder::new(Bincode, 1 << 16);
    for (i, b) in wire.iter().enumerate() {
        assert_eq!(
            decoder.next_frame(),
            Ok(None),
            "complete after {i} of {} bytes?",
            wire.len()
        );
        decoder.push(&[*b]);
    }
    assert!(matches!(
        decoder.next_frame(),
        Ok(Some(Frame::Tell { recipient: 7, .. }))
    ));
}

#[test]
fn oversized_frames_are_refused_from_the_length_prefix() {
    let mut decoder = FrameDecoder::new(Bincode, 1_000);
    decoder.push(&5_000u32.to_le_bytes());
    assert_eq!(
        decoder.next_frame(),
        Err(WireError::Oversized {
            announced: 5_000,
            max: 1_000
        })
    );
    // Nothing of the announced body needs to be buffered to know.
    assert_eq!(decoder.buffered(), 4);
}

#[test]
fn unknown_kinds_empty_and_malformed_bodies_are_named() {
    let mut d = FrameDecoder::new(Bincode, 1_000);
    d.push(&[1, 0, 0, 0, 99]);
    assert_eq!(d.next_frame(), Err(WireError::UnknownKind(99)));

    let mut d = FrameDecoder::new(Bincode, 1_000);
    d.push(&[0, 0, 0, 0]);
    assert_eq!(d.next_frame(), Err(WireError::Empty));

    let mut d = FrameDecoder::new(Bincode, 1_000);
    d.push(&[3, 0, 0, 0, 8, 0xff, 0xff]); // a tell whose body is garbage
    match d.next_frame() {
        Err(WireError::Malformed { kind, .. }) => assert_eq!(kind, "tell"),
        other => panic!("expected a malformed tell, got {other:?}"),
    }

    let mut d = FrameDecoder::new(Bincode, 1_000);
    d.push(&[2, 0, 0, 0, 14, 1]); // goodbye carries no body
    assert!(matches!(
        d.next_frame(),
        Err(WireError::Malformed {
            kind: "goodbye",
            ..
        })
    ));
}

#[test]
fn small_frames_batch_into_one_buffer() {
    let frames: Vec<Frame> = (0..256).map(|seq| Frame::Heartbeat { seq }).collect();
    let wire = encode_all(&frames);
    assert!(
        wire.len() < 256 * 8,
        "heartbeats are a few bytes each: {}",
        wire.len()
    );
    let mut d = FrameDecoder::new(Bincode, 64);
    d.push(&wire);
    let mut n = 0;
    while let Some(Frame::Heartbeat { seq }) = d.next_frame().expect("valid") {
        assert_eq!(seq, n);
        n += 1;
    }
    assert_eq!(n, 256);
}

#[test]
fn the_codec_rejects_trailing_bytes() {
    let mut out = Vec::new();
    Bincode.encode(&42u64, &mut out).expect("encode");
    out.push(0);
    assert!(Bincode.decode::<u64>(&out).is_err());
}

#[test]
fn erased_decoding_reports_bytes_left_after_the_value() {
    let mut out = Vec::new();
    Bincode
        .encode(&(300u64, String::from("room-7")), &mut out)
        .expect("encode");
    let decode = |bytes: &[u8]| {
        let mut seen = None;
        let ended = Bincode.decode_erased(bytes, &mut |de, end| {
            let v: (u64, String) = erased_serde::deserialize(de)?;
            end()?;
            seen = Some(v);
            Ok(())
        });
        (ended, seen)
    };
    let (ended, seen) = decode(&out);
    assert_eq!(ended, Ok(()));
    assert_eq!(seen, Some((300, "room-7".to_owned())));
    out.extend_from_slice(&[1, 2]);
    let (ended, seen) = decode(&out);
    let err = ended.expect_err("trailing bytes");
    assert!(err.0.contains("2 trailing bytes"), "{err}");
    assert_eq!(seen, None, "the value is not acted on");
    // A truncated payload fails while reading.
    let (ended, _) = decode(&out[..3]);
    assert!(ended.is_err());
}

/// A recursive message type, the shape that lets a peer choose how deep a payload nests.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Tree {
    Leaf(u8),
    Node(Box<Option<Tree>>),
}

#[test]
fn erased_decoding_errors_stay_small_however_deep_the_payload_nests() {
    // Node(Some(Node(Some(...)))) six levels down, then variant 9 (no such variant). The error
    // crosses type erasure at each level; bincode's errors quote and escape what they wrap, so
    // without `plain_errors` this message is about 4 MB (and doubles its escapes per level).
    let mut payload = Vec::new();
    for _ in 0..6 {
        payload.extend([1, 1]);
    }
    payload.push(9);
    let err = decode_erased_as::<Tree>(&payload).expect_err("no variant 9");
    assert!(err.len() < 200, "{} bytes: {:.200}", err.len(), err);
    assert_eq!(
        err,
        "invalid value: integer `9`, expected variant index 0 <= i < 2"
    );
    // A valid tree of the same depth decodes.
    let tree = nested_tree(6);
    let mut bytes = Vec::new();
    Bincode.encode(&tree, &mut bytes).expect("encode");
    assert_eq!(decode_erased_as::<Tree>(&bytes), Ok(tree));
}

fn nested_tree(levels: usize) -> Tree {
    let mut tree = Tree::Leaf(3);
    for _ in 0..levels {
        tree = Tree::Node(Box::new(Some(tree)));
    }
    tree
}

#[test]
fn values_nested_deeper_than_the_limit_are_refused_not_a_stack_overflow() {
    // A tree level is two serde levels (the enum and the `Option`), the leaf one: 63 levels
    // nest 127 deep and decode, 64 nest 129 deep and are refused, on both paths.
    for (levels, accepted) in [(63, true), (64, false)] {
        let tree = nested_tree(levels);
        let mut bytes = Vec::new();
        Bincode.encode(&tree, &mut bytes).expect("encode");
        let typed = Bincode.decode::<Tree>(&bytes);
        let erased = decode_erased_as::<Tree>(&bytes);
        if accepted {
            assert_eq!(typed.as_ref(), Ok(&tree));
            assert_eq!(erased.as_ref(), Ok(&tree));
        } else {
            let typed = typed.expect_err("too deep").0;
            assert!(typed.contains("nests deeper than 128"), "{typed}");
            let erased = erased.expect_err("too deep");
            assert!(erased.contains("nests deeper than 128"), "{erased}");
        }
    }
    // 200 KB of `Node(Some(` overflowed the stack of a test thread (2 MiB, like a tokio
    // worker's) on the typed path, 20 KB on the erased one, and aborted the process.
    let mut bytes = Vec::new();
    for _ in 0..100_000 {
        bytes.extend([1, 1]);
    }
    bytes.extend([0, 3]);
    assert!(Bincode.decode::<Tree>(&bytes).is_err());
    assert!(decode_erased_as::<Tree>(&bytes).is_err());
}

/// `n` unit elements, as a sequence of `()`. Its decoder gives up on its own after
/// `Units::BOUND` elements, far beyond what the guard lets through, so that the test below fails
/// (instead of looping for ever) if the guard's element budget is gone.
#[derive(Debug, PartialEq)]
struct Units(usize);

impl Units {
    const BOUND: usize = 1 << 22;
}

impl serde::Serialize for Units {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0))?;
        for _ in 0..self.0 {
            seq.serialize_element(&())?;
        }
        seq.end()
    }
}

impl<'de> serde::Deserialize<'de> for Units {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counting;
        impl<'de> serde::de::Visitor<'de> for Counting {
            type Value = Units;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of units")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Units, A::Error> {
                let mut n = 0;
                while seq.next_element::<()>()?.is_some() {
                    n += 1;
                    if n > Units::BOUND {
                        return Err(serde::de::Error::custom(
                            "the test's own bound: the guard let the sequence run on",
                        ));
                    }
                }
                Ok(Units(n))
            }
        }
        d.deserialize_seq(Counting)
    }
}

#[test]
fn a_sequence_of_zero_sized_elements_cannot_announce_more_than_the_payload_holds() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Markers(Units);
    // 2^60 units announced in 9 bytes (253: a u64 length follows); serde would loop for ever.
    let mut lying = vec![253];
    lying.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let typed = Bincode.decode::<Markers>(&lying).expect_err("refused").0;
    assert!(typed.contains("more elements than its payload"), "{typed}");
    let erased = decode_erased_as::<Markers>(&lying).expect_err("refused");
    assert!(
        erased.contains("more elements than its payload"),
        "{erased}"
    );
    // A million of them still decode.
    let many = Markers(Units(1_000_000));
    let mut bytes = Vec::new();
    Bincode.encode(&many, &mut bytes).expect("encode");
    assert_eq!(Bincode.decode::<Markers>(&bytes).as_ref(), Ok(&many));
    assert_eq!(decode_erased_as::<Markers>(&bytes), Ok(many));
}

#[test]
fn tell_payloads_are_borrowed_from_the_buffer_and_manifest_ids_are_stable() {
    use actor_remote::wire::{Decoded, manifest_id};
    let wire = encode_all(&[Frame::Tell {
        recipient: 9,
        manifest: manifest_id("game::Move"),
        payload: vec![5; 100],
    }]);
    assert_eq!(
        wire.len(),
        4 + 1 + 12 + 100,
        "fixed layout: prefix, kind, header, payload"
    );
    let mut d = FrameDecoder::new(Bincode, 1 << 10);
    d.push(&wire);
    match d.next_decoded().expect("valid") {
        Some(Decoded::Tell {
            recipient: 9,
            manifest,
            payload,
        }) => {
            assert_eq!(manifest, manifest_id("game::Move"));
            assert_eq!(payload, &[5u8; 100][..]);
        }
        other => panic!("expected a tell, got {other:?}"),
    }
    assert_ne!(manifest_id("game::Move"), manifest_id("game::Chat"));
    assert_eq!(manifest_id(""), 0x811c_9dc5, "FNV-1a offset basis");
}

proptest! {
    /// A tell encoded in place (the lanes' path) is byte for byte the `Frame::Tell` encoding, and
    /// a failing payload encoder leaves the buffer as it was.
    #[test]
    fn tells_encoded_in_place_match_frame_encoding(
        recipient in any::<u64>(),
        manifest in any::<u32>(),
        payload in bytes(),
        prefix in bytes(),
    ) {
        let mut in_place = prefix.clone();
        let len = actor_remote::wire::encode_tell_with(recipient, manifest, &mut in_place, |out| {
            out.extend_from_slice(&payload);
            Ok(())
        })
        .expect("encodes");
        prop_assert_eq!(len, payload.len());
        let mut framed = prefix.clone();
        Frame::Tell { recipient, manifest, payload: payload.clone() }
            .encode(&Bincode, &mut framed)
            .expect("encodes");
        prop_assert_eq!(&in_place, &framed);

        let mut failed = prefix.clone();
        let err = actor_remote::wire::encode_tell_with(recipient, manifest, &mut failed, |out| {
            out.extend_from_slice(&payload);
            Err(actor_remote::CodecError("no".into()))
        });
        prop_assert!(err.is_err());
        prop_assert_eq!(&failed, &prefix);
    }
}
