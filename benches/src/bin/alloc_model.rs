//! The allocation pattern of spawning idle actors, without the actors: how much resident memory
//! glibc's allocator uses per actor for a given set of allocation sizes.
//!
//! Each of `N` rounds allocates, and keeps, blocks of the given sizes in order (the factory
//! closure, the path string, the cell, each 8-byte aligned), then the task: 128-byte aligned, as
//! tokio aligns its task cells on x86-64. Resident memory before and after, divided by `N`, is the
//! cost per actor, including the `Vec` that keeps the pointers (32 bytes per round).
//!
//! ```sh
//! cargo run --release -p benches --bin alloc_model -- 24 29 232 384
//! ```

use std::alloc::{Layout, alloc};

const ROUNDS: usize = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("usage: alloc_model FACTORY PATH CELL [MORE...] TASK (bytes): {e}"))?;
    let Some((&task, small)) = sizes.split_last() else {
        return Err("usage: alloc_model FACTORY PATH CELL [MORE...] TASK (bytes)".into());
    };
    let small_sizes = small.to_vec();
    let small = small_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .map(|n| Layout::from_size_align(n, 8))
        .collect::<Result<Vec<_>, _>>()?;
    let task = Layout::from_size_align(task.max(1), 128)?;
    let before = benches::rss_bytes();
    let mut kept: Vec<*mut u8> = Vec::with_capacity(4 * ROUNDS);
    for _ in 0..ROUNDS {
        for layout in &small {
            // SAFETY: the layouts have non-zero sizes; the blocks are kept (never freed) on
            // purpose, as live actors keep theirs.
            kept.push(unsafe { alloc(*layout) });
        }
        // SAFETY: as above.
        let t = unsafe { alloc(task) };
        if !t.is_null() {
            // Touch the block, as a spawned task's header and future are written.
            // SAFETY: `t` points to `task.size()` writable bytes.
            unsafe { std::ptr::write_bytes(t, 1, task.size()) };
        }
        kept.push(t);
    }
    let after = benches::rss_bytes();
    if kept.iter().any(|p| p.is_null()) {
        return Err("allocation failed".into());
    }
    println!(
        "8-aligned {small_sizes:?} B, task {} B (128-aligned): {} B per actor",
        task.size(),
        after.saturating_sub(before) / ROUNDS as u64
    );
    Ok(())
}
