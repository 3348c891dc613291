//! A lying length inside a small type-erased payload (a message to an exported ref, an answer to
//! a reply port) cannot make the decoder allocate much, while valid payloads of any shape still
//! decode. One test per binary: the allocator below watches the whole process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use actor_remote::{Bincode, Codec};

/// Records the largest allocation made.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Msg {
    Join { player: u64, name: String },
    Blob(Vec<u8>),
    Wide(Vec<u128>),
}

fn decode(bytes: &[u8]) -> Result<Msg, String> {
    let mut seen = None;
    Bincode
        .decode_erased(bytes, &mut |de, end| {
            let msg: Msg = erased_serde::deserialize(de)?;
            end()?;
            seen = Some(msg);
            Ok(())
        })
        .map_err(|e| e.0)?;
    seen.ok_or_else(|| "nothing decoded".to_owned())
}

/// The largest allocation `f` makes.
fn largest_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.store(0, Ordering::SeqCst);
    let out = f();
    (out, LARGEST.load(Ordering::SeqCst))
}

#[test]
fn lying_lengths_in_small_payloads_allocate_little_and_valid_payloads_decode() {
    const SIXTY_MIB: u32 = 60 << 20;
    // Join { player: 5, name: <60 MiB announced> } in 10 bytes: variant 0, player 5, then the
    // length as a varint (252 = a u32 follows), then 3 bytes of the "string".
    let mut join = vec![0u8, 5, 252];
    join.extend_from_slice(&SIXTY_MIB.to_le_bytes());
    join.extend_from_slice(b"abc");
    // Blob(<60 MiB announced>) the same way.
    let mut blob = vec![1u8, 252];
    blob.extend_from_slice(&SIXTY_MIB.to_le_bytes());
    blob.push(7);
    // A string is allocated at its announced length before it is read: only the decode limit
    // (scaled to the payload) bounds it. A `Vec` is grown by serde, which preallocates at most
    // 1 MiB whatever the length says (a constant, the same for typed decoding).
    for (name, payload, bound) in [("string", &join, 8 * 1024), ("bytes", &blob, 1 << 20)] {
        let (result, largest) = largest_during(|| decode(payload));
        assert!(result.is_err(), "{name}: refused");
        assert!(
            largest <= bound,
            "{name}: a {}-byte payload allocated {largest} bytes at once",
            payload.len()
        );
    }

    // Valid payloads near what the limit allows still decode: a long string, and many small
    // u128s (each one byte on the wire, the most a byte can claim of the limit).
    for msg in [
        Msg::Join {
            player: 1,
            name: "x".repeat(200_000),
        },
        Msg::Blob(vec![9; 100_000]),
        Msg::Wide(vec![0; 50_000]),
        Msg::Wide(vec![u128::MAX; 3]),
    ] {
        let mut bytes = Vec::new();
        Bincode.encode(&msg, &mut bytes).expect("encode");
        assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
    }
}
