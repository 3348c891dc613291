//! criterion micro-benchmarks of a message payload through actor-remote's codec (bincode 2 behind
//! the decode guard): the same 100 bytes as a plain `Vec<u8>` field, which serde encodes and
//! decodes as a sequence, one byte at a time, and as a `#[serde(with = "serde_bytes")]` field,
//! which is one length and one copy. The remote fan-in benchmark's payload is a plain `Vec<u8>`;
//! this measures what the docs' advice to use `serde_bytes` for byte payloads is worth.
//!
//! ```text
//! cargo bench -p benches --bench codec
//! ```
//!
//! Every iteration checks the decoded length, so a broken codec fails instead of reporting a
//! number.

use std::hint::black_box;

use actor_remote::{Bincode, Codec};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

/// A payload as most code writes it: a sequence of `u8` to serde.
#[derive(Serialize, Deserialize)]
struct Plain(Vec<u8>);

/// The same payload as bytes to serde.
#[derive(Serialize, Deserialize)]
struct Bytes(#[serde(with = "serde_bytes")] Vec<u8>);

/// Encodes `value` (a payload of `len` bytes) over and over, checking the encoding's length
/// each time.
fn encode<T: Serialize>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    (value, len): (&T, usize),
    wire_len: usize,
) {
    group.bench_function(BenchmarkId::new(name, len), |b| {
        let mut out = Vec::with_capacity(wire_len);
        b.iter(|| {
            out.clear();
            Bincode.encode(black_box(value), &mut out).expect("encodes");
            assert_eq!(out.len(), wire_len);
        })
    });
}

fn payload(c: &mut Criterion) {
    let mut group = c.benchmark_group("payload");
    for len in [100usize, 4096] {
        group.throughput(Throughput::Bytes(len as u64));
        let mut plain = Vec::new();
        Bincode
            .encode(&Plain(vec![7; len]), &mut plain)
            .expect("encodes");
        let mut bytes = Vec::new();
        Bincode
            .encode(&Bytes(vec![7; len]), &mut bytes)
            .expect("encodes");
        // Both are one length and the bytes on the wire: only the way through serde differs.
        assert_eq!(plain, bytes);
        group.bench_with_input(BenchmarkId::new("decode_vec_u8", len), &plain, |b, wire| {
            b.iter(|| {
                assert_eq!(
                    Bincode.decode::<Plain>(black_box(wire)).map(|p| p.0.len()),
                    Ok(len)
                )
            })
        });
        // bincode alone with the codec's configuration (its 64 MiB decode limit), without the
        // codec's decode guard: what the guard costs.
        group.bench_with_input(
            BenchmarkId::new("decode_vec_u8_unguarded", len),
            &plain,
            |b, wire| {
                b.iter(|| {
                    let (Plain(v), _) = bincode::serde::decode_from_slice::<Plain, _>(
                        black_box(wire),
                        bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>(),
                    )
                    .expect("decodes");
                    assert_eq!(v.len(), len);
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_serde_bytes", len),
            &bytes,
            |b, wire| {
                b.iter(|| {
                    assert_eq!(
                        Bincode.decode::<Bytes>(black_box(wire)).map(|p| p.0.len()),
                        Ok(len)
                    )
                })
            },
        );
        encode(
            &mut group,
            "encode_vec_u8",
            (&Plain(vec![7; len]), len),
            plain.len(),
        );
        encode(
            &mut group,
            "encode_serde_bytes",
            (&Bytes(vec![7; len]), len),
            bytes.len(),
        );
    }
    group.finish();
}

criterion_group!(benches, payload);
criterion_main!(benches);
