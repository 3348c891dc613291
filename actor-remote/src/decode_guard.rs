//! Guards a serde decoding of untrusted bytes: how deep a value may nest, and errors that keep
//! their size when they cross type erasure.
//!
//! * **Depth.** serde decodes nested values by recursion, and bincode sets no limit, so a peer
//!   sending a deeply nested value of a recursive message type (`Node(Box<Option<Tree>>)`)
//!   overflows the decoding thread's stack, which aborts the process: 20 KB of payload was enough
//!   for the type-erased path, 200 KB for the typed one. [`Guarded`] refuses values nested deeper
//!   than [`MAX_DEPTH`] levels (serde_json's limit), with an error.
//! * **Elements.** A sequence of a zero-sized type (`Vec<()>`) announcing 2^60 elements in a
//!   few bytes would make serde loop for ever: a payload may hold one element per byte plus 2^20.
//! * **Error size.** Type-erased decoding (`erased-serde`, used for messages to exported refs and
//!   answers to reply ports) crosses between the erased layer and bincode at every level of a
//!   value's nesting, and converts the error at each crossing through its `Display`. bincode
//!   displays its errors with `Debug`, which quotes and escapes the message it wraps, so every
//!   level doubled the escapes: a 30-byte payload made a 268 MB error message (found by the
//!   `erased_payload` fuzz target). An error [`Guarded`] hands down to bincode is remembered and
//!   taken back as it was when bincode returns it.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// A decoding error shown as its message, without decoration.
#[derive(Debug)]
pub(crate) struct PlainError(pub(crate) String);

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlainError {}

impl de::Error for PlainError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PlainError(msg.to_string())
    }
}

/// Deserializes a `T` from `d` through a guard.
pub(crate) fn guarded_deserialize<'de, T, D, M>(d: D, guard: &Guard<M>) -> Result<T, D::Error>
where
    T: serde::Deserialize<'de>,
    D: Deserializer<'de>,
    M: Errors,
{
    T::deserialize(Guarded { inner: d, guard }).map_err(|e| M::down(guard, e))
}

/// How deep a decoded value may nest, in serde values (an enum, an `Option`, a struct and a
/// sequence each count one level).
pub(crate) const MAX_DEPTH: u32 = 128;

/// What a guarded deserializer's errors are.
pub(crate) trait Errors: Sized {
    /// The error of a guarded deserializer over one whose errors are `E`.
    type Of<E: de::Error>: de::Error;
    /// An error from the inner deserializer, as ours.
    fn up<E: de::Error>(guard: &Guard<Self>, e: E) -> Self::Of<E>;
    /// An error of ours, handed down to the inner deserializer.
    fn down<E: de::Error>(guard: &Guard<Self>, e: Self::Of<E>) -> E;
}

/// The inner deserializer's own errors: for typed decoding, where nothing is erased and only the
/// depth is guarded. Costs nothing.
pub(crate) enum InnerErrors {}

impl Errors for InnerErrors {
    type Of<E: de::Error> = E;

    #[inline(always)]
    fn up<E: de::Error>(_: &Guard<Self>, e: E) -> E {
        e
    }

    #[inline(always)]
    fn down<E: de::Error>(_: &Guard<Self>, e: E) -> E {
        e
    }
}

/// [`PlainError`]s, whose messages cross type erasure unchanged: for type-erased decoding.
pub(crate) enum PlainErrors {}

impl Errors for PlainErrors {
    type Of<E: de::Error> = PlainError;

    /// The message handed down, if this is that error coming back, else the error as the inner
    /// deserializer shows it.
    #[cold]
    #[inline(never)]
    fn up<E: de::Error>(guard: &Guard<Self>, e: E) -> PlainError {
        let shown = e.to_string();
        if let Some(handed) = guard.handed.take() {
            // bincode shows a custom error as `OtherString("<message, escaped>")`; a message
            // shown as is also counts.
            if shown == handed || shown == format!("OtherString({handed:?})") {
                return PlainError(handed);
            }
        }
        // A visitor's own error comes back from bincode the same way, once: show its message.
        match shown
            .strip_prefix("OtherString(\"")
            .and_then(|rest| rest.strip_suffix("\")"))
            .and_then(unescape_debug)
        {
            Some(message) => PlainError(message),
            None => PlainError(shown),
        }
    }

    /// The inner deserializer's custom error with the message, which is remembered.
    #[cold]
    #[inline(never)]
    fn down<E: de::Error>(guard: &Guard<Self>, e: PlainError) -> E {
        let inner = E::custom(&e.0);
        guard.handed.set(Some(e.0));
        inner
    }
}

/// The string whose `Debug` escaping (without the quotes) is `escaped`, if it is one.
fn unescape_debug(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            c @ ('\\' | '"' | '\'') => c,
            'u' => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// The state of one guarded decoding: the current depth, and the message of the error last
/// handed down to the inner deserializer (with [`PlainErrors`]).
pub(crate) struct Guard<M> {
    depth: Cell<u32>,
    /// Sequence and map elements the payload may still hold.
    elements: Cell<u64>,
    handed: Cell<Option<String>>,
    _errors: PhantomData<M>,
}

/// Elements of zero-sized types a payload may hold beyond one per byte.
const ZERO_SIZED_ELEMENTS: u64 = 1 << 20;

impl<M> Guard<M> {
    /// The guard for decoding a payload of `len` bytes. Every element of a sequence or map
    /// takes at least one byte, unless its type is zero-sized (`Vec<()>`): such a sequence
    /// announcing 2^60 elements in a few bytes would loop for ever, so a payload holds at most
    /// one element per byte plus 2^20.
    pub(crate) fn for_payload(len: usize) -> Self {
        Guard {
            depth: Cell::new(0),
            elements: Cell::new((len as u64).saturating_add(ZERO_SIZED_ELEMENTS)),
            handed: Cell::new(None),
            _errors: PhantomData,
        }
    }

    /// Counts one more element read; an error once the payload cannot hold it.
    fn element<E: de::Error>(&self) -> Result<(), E> {
        match self.elements.get().checked_sub(1) {
            Some(left) => {
                self.elements.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "the value has more elements than its payload can hold",
            )),
        }
    }
}

/// A deserializer that counts nesting, with the errors `M` says, over one that does not count.
pub(crate) struct Guarded<'h, D, M> {
    pub(crate) inner: D,
    pub(crate) guard: &'h Guard<M>,
}

/// Values that nest: counted, and their visitor wrapped so what they contain is guarded too.
macro_rules! nesting {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
            let guard = self.guard;
            let depth = guard.depth.get();
            if depth >= MAX_DEPTH {
                return Err(de::Error::custom(format_args!(
                    "the value nests deeper than {MAX_DEPTH} levels"
                )));
            }
            guard.depth.set(depth + 1);
            let result = self.inner
                .$method($($arg,)* Wrap { inner: visitor, guard })
                .map_err(|e| M::up(guard, e));
            guard.depth.set(depth);
            result
        }
    )*};
}

/// Values that do not nest: handed to the visitor as they are (its error, if it refuses one,
/// comes back shown once by bincode, and is carried as is from there).
macro_rules! flat {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
            let guard = self.guard;
            self.inner.$method($($arg,)* visitor).map_err(|e| M::up(guard, e))
        }
    )*};
}

impl<'de, D: Deserializer<'de>, M: Errors> Deserializer<'de> for Guarded<'_, D, M> {
    type Error = M::Of<D::Error>;

    nesting! {
        deserialize_any();
        deserialize_option();
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    flat! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor, seed or access handed to the inner deserializer: what it is given to read further
/// is guarded again.
struct Wrap<'h, V, M> {
    inner: V,
    guard: &'h Guard<M>,
}

macro_rules! forward_visit {
    ($($method:ident($($ty:ty)?);)*) => {$(
        fn $method<E: de::Error>(self $(, v: $ty)?) -> Result<Self::Value, E> {
            // The visitor's own errors are made ours, so their messages are handed down as is.
            let guard = self.guard;
            self.inner.$method::<M::Of<E>>($(forward_visit!(@arg v $ty))?).map_err(|e| M::down(guard, e))
        }
    )*};
    (@arg $v:ident $ty:ty) => { $v };
}

impl<'de, V: Visitor<'de>, M: Errors> Visitor<'de> for Wrap<'_, V, M> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
        visit_none();
        visit_unit();
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let guard = self.guard;
        self.inner
            .visit_some(Guarded { inner: d, guard })
            .map_err(|e| M::down(guard, e))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let guard = self.guard;
        self.inner
            .visit_newtype_struct(Guarded { inner: d, guard })
            .map_err(|e| M::down(guard, e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let guard = self.guard;
        self.inner
            .visit_seq(Wrap { inner: seq, guard })
            .map_err(|e| M::down(guard, e))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let guard = self.guard;
        self.inner
            .visit_map(Wrap { inner: map, guard })
            .map_err(|e| M::down(guard, e))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let guard = self.guard;
        self.inner
            .visit_enum(Wrap { inner: data, guard })
            .map_err(|e| M::down(guard, e))
    }
}

impl<'de, T: DeserializeSeed<'de>, M: Errors> DeserializeSeed<'de> for Wrap<'_, T, M> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let guard = self.guard;
        self.inner
            .deserialize(Guarded { inner: d, guard })
            .map_err(|e| M::down(guard, e))
    }
}

/// Wraps a seed for the inner deserializer.
fn seed<T, M>(inner: T, guard: &Guard<M>) -> Wrap<'_, T, M> {
    Wrap { inner, guard }
}

impl<'de, A: SeqAccess<'de>, M: Errors> SeqAccess<'de> for Wrap<'_, A, M> {
    type Error = M::Of<A::Error>;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let guard = self.guard;
        guard.element()?;
        self.inner
            .next_element_seed(seed(s, guard))
            .map_err(|e| M::up(guard, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>, M: Errors> MapAccess<'de> for Wrap<'_, A, M> {
    type Error = M::Of<A::Error>;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        s: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let guard = self.guard;
        guard.element()?;
        self.inner
            .next_key_seed(seed(s, guard))
            .map_err(|e| M::up(guard, e))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, Self::Error> {
        let guard = self.guard;
        self.inner
            .next_value_seed(seed(s, guard))
            .map_err(|e| M::up(guard, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'h, A: EnumAccess<'de>, M: Errors> EnumAccess<'de> for Wrap<'h, A, M> {
    type Error = M::Of<A::Error>;
    type Variant = Wrap<'h, A::Variant, M>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        let guard = self.guard;
        self.inner
            .variant_seed(seed(s, guard))
            .map(|(value, inner)| (value, Wrap { inner, guard }))
            .map_err(|e| M::up(guard, e))
    }
}

impl<'de, A: de::VariantAccess<'de>, M: Errors> de::VariantAccess<'de> for Wrap<'_, A, M> {
    type Error = M::Of<A::Error>;

    fn unit_variant(self) -> Result<(), Self::Error> {
        let guard = self.guard;
        self.inner.unit_variant().map_err(|e| M::up(guard, e))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, Self::Error> {
        let guard = self.guard;
        self.inner
            .newtype_variant_seed(seed(s, guard))
            .map_err(|e| M::up(guard, e))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Self::Error> {
        let guard = self.guard;
        self.inner
            .tuple_variant(len, Wrap { inner: v, guard })
            .map_err(|e| M::up(guard, e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        let guard = self.guard;
        self.inner
            .struct_variant(fields, Wrap { inner: v, guard })
            .map_err(|e| M::up(guard, e))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn unescaping_inverts_debug(s in any::<String>()) {
            let shown = format!("{s:?}");
            let inner = &shown[1..shown.len() - 1];
            prop_assert_eq!(super::unescape_debug(inner), Some(s));
        }
    }
}
