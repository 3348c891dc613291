//! The serialization seam: user payloads and frame bodies go through a [`Codec`], so the wire can
//! move from bincode to another serde format (postcard is the maintained alternative) without
//! touching the protocol.

use std::cell::Cell;
use std::marker::PhantomData;

use actor_core::transport::PayloadEnd;

use crate::decode_guard::{Guard, Guarded, InnerErrors, PlainErrors, guarded_deserialize};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Turns serde values into bytes and back. Decoding untrusted bytes must fail with an error,
/// never panic, and never allocate more than a bounded multiple of the input (plus a bounded
/// constant): a length inside a payload is a claim, not a fact.
pub trait Codec: Send + Sync + 'static {
    /// A short name for logs and the handshake (peers must use the same codec).
    fn name(&self) -> &'static str;
    /// Appends the encoding of `value` to `out`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>)
    -> Result<(), CodecError>;
    /// Decodes a whole value from `bytes` (trailing bytes are an error).
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
    /// Hands a type-erased deserializer over `bytes` to `f`, for values whose type only the
    /// receiver of a ref knows (messages to exported refs, answers to reply ports), together
    /// with a check that fails when bytes are left after the value `f` read.
    fn decode_erased(&self, bytes: &[u8], f: ErasedVisit<'_>) -> Result<(), CodecError>;
}

/// A decoding step over a type-erased deserializer and the payload's end check
/// ([`actor_core::transport::PayloadEnd`]).
pub type ErasedVisit<'f> = &'f mut dyn FnMut(
    &mut dyn erased_serde::Deserializer<'_>,
    PayloadEnd<'_>,
) -> Result<(), erased_serde::Error>;

/// bincode 2 (serde path) with its standard configuration: varint integers, little endian, and a
/// 64 MiB decode limit. A lying length inside a body cannot make it allocate much: serde caps
/// pre-allocation, and frames are bounded by the decoder's maximum before their body is decoded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

impl Codec for Bincode {
    fn name(&self) -> &'static str {
        "bincode2"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        // Straight into `out`: no intermediate buffer per value.
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| CodecError(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        // The decoder may not claim more memory than the input could describe.
        let config = bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>();
        // Through the guard: a value may not nest deeper than the stack allows.
        let guard = Guard::<InnerErrors>::for_payload(bytes.len());
        let seed = Whole::<T> {
            guard: &guard,
            _value: PhantomData,
        };
        let (value, used) = bincode::serde::seed_decode_from_slice(seed, bytes, config)
            .map_err(|e| CodecError(message(e)))?;
        if used != bytes.len() {
            return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
        }
        Ok(value)
    }

    fn decode_erased(&self, bytes: &[u8], f: ErasedVisit<'_>) -> Result<(), CodecError> {
        // This decoder reads through a reader that is not a plain slice (so the payload's end
        // stays visible), and then bincode allocates a string or byte string at its announced
        // length before reading it: only the decode limit stands between a lying length and a
        // large allocation. Every primitive claims at most 16 bytes of the limit per byte it
        // reads (a varint `u128`), strings claim their length: so a limit of 16 bytes per payload
        // byte never refuses a valid payload, and the limit is the next step (×8) above that.
        const KIB: usize = 1024;
        let need = bytes.len().saturating_mul(16).saturating_add(64);
        if need <= KIB {
            erased_with_limit::<KIB>(bytes, f)
        } else if need <= 8 * KIB {
            erased_with_limit::<{ 8 * KIB }>(bytes, f)
        } else if need <= 64 * KIB {
            erased_with_limit::<{ 64 * KIB }>(bytes, f)
        } else if need <= 512 * KIB {
            erased_with_limit::<{ 512 * KIB }>(bytes, f)
        } else if need <= 4 * KIB * KIB {
            erased_with_limit::<{ 4 * KIB * KIB }>(bytes, f)
        } else {
            erased_with_limit::<{ 64 * KIB * KIB }>(bytes, f)
        }
    }
}

/// Decodes a `T` through the guard.
struct Whole<'g, T> {
    guard: &'g Guard<InnerErrors>,
    _value: PhantomData<fn() -> T>,
}

impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for Whole<'_, T> {
    type Value = T;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        guarded_deserialize(d, self.guard)
    }
}

/// A bincode error's message: a custom error's own text (bincode shows it wrapped and escaped).
fn message(e: bincode::error::DecodeError) -> String {
    match e {
        bincode::error::DecodeError::OtherString(s) => s,
        other => other.to_string(),
    }
}

/// [`Bincode::decode_erased`] with a decode limit of `LIMIT` bytes.
fn erased_with_limit<const LIMIT: usize>(
    bytes: &[u8],
    f: ErasedVisit<'_>,
) -> Result<(), CodecError> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let rest = Cell::new(bytes);
    let mut decoder =
        bincode::serde::OwnedSerdeDecoder::from_reader(SharedSlice { rest: &rest }, config);
    // Through the guard: a value may not nest deeper than the stack allows, and errors, which
    // cross between the erased layer and bincode at every level of nesting, keep their size.
    let guard = Guard::<PlainErrors>::for_payload(bytes.len());
    let guarded = Guarded {
        inner: decoder.as_deserializer(),
        guard: &guard,
    };
    let mut erased = <dyn erased_serde::Deserializer>::erase(guarded);
    let end = || match rest.get().len() {
        0 => Ok(()),
        n => Err(<erased_serde::Error as serde::de::Error>::custom(
            format_args!("{n} trailing bytes after the value"),
        )),
    };
    f(&mut erased, &end).map_err(|e| CodecError(e.to_string()))
}

/// A slice reader whose unread rest stays visible to the caller while the decoder holds it (so
/// the end of a payload can be checked before the decoded value is acted on).
struct SharedSlice<'a, 'b> {
    rest: &'b Cell<&'a [u8]>,
}

impl bincode::de::read::Reader for SharedSlice<'_, '_> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        let rest = self.rest.get();
        let (head, tail) = rest.split_at_checked(bytes.len()).ok_or_else(|| {
            bincode::error::DecodeError::UnexpectedEnd {
                additional: bytes.len().saturating_sub(rest.len()),
            }
        })?;
        bytes.copy_from_slice(head);
        self.rest.set(tail);
        Ok(())
    }

    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.rest.get().get(..n)
    }

    fn consume(&mut self, n: usize) {
        self.rest.set(self.rest.get().get(n..).unwrap_or_default());
    }
}
