//! An actor group's slab: the memory of its members, carved from chunks and reused as members
//! come and go.
//!
//! Every member of a group is one allocation (its header and its loop, see `group.rs`). Taking
//! each from the global allocator costs a `malloc` and a `free` per actor, and glibc grows a
//! worker thread's arena one page per `mprotect` call, so a burst of spawns on a worker makes
//! one system call per twenty-odd members (`benches/HISTORY.md`, "Session 19"). The slab asks
//! the allocator for chunks instead, each twice the size of the last up to [`MAX_CHUNK_BYTES`],
//! cuts them into slots of the member's layout, and keeps the slots of ended members on a free
//! list (threaded through the free slots themselves) for the group's next members.
//!
//! Slots are grouped by layout, so a group may hold actors of several types; each layout has its
//! own chunks and free list. The memory goes back to the allocator when the group's last slot is
//! freed (every member has ended and the group's task has let go of it), or when the group
//! itself is dropped: a group that peaked at many members and shrank to a few keeps its peak's
//! memory until then, and reuses it for new members.

use std::alloc::Layout;
use std::ptr::NonNull;

use crate::sync::Mutex;

/// The largest chunk the slab asks for: about 350 members of 184 bytes.
pub(crate) const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Slots in a layout's first chunk.
const FIRST_CHUNK_SLOTS: usize = 8;

/// Memory for the members of one group.
pub(crate) struct Slab {
    inner: Mutex<Classes>,
}

/// The slab's state, under its lock.
struct Classes {
    /// One per member layout seen (usually one or two: a group's actors are of few types).
    classes: Vec<Class>,
    /// Slots handed out and not freed.
    live: usize,
}

// SAFETY: the pointers are to memory the slab owns, handed out to one owner at a time; the
// slab itself is only touched under its lock.
unsafe impl Send for Classes {}

/// The slots of one layout.
struct Class {
    layout: Layout,
    /// The first free slot; each free slot holds the address of the next.
    free: Option<NonNull<u8>>,
    /// Every chunk taken from the allocator, with its layout; slots are carved from the last.
    chunks: Vec<(NonNull<u8>, Layout)>,
    /// Slots of the last chunk not yet carved.
    uncarved: usize,
    /// Slots in every chunk so far (the next chunk has as many, up to the limit).
    slots: usize,
}

impl Slab {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Classes {
                classes: Vec::new(),
                live: 0,
            }),
        }
    }

    /// A slot for a value of `layout`, uninitialized. `layout` must not be zero-sized, and its
    /// alignment must be at least that of a pointer (a free slot holds one).
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        debug_assert!(layout.size() >= size_of::<usize>());
        debug_assert!(layout.align() >= align_of::<usize>());
        let layout = layout.pad_to_align();
        let mut inner = self.inner.lock();
        inner.live += 1;
        let class = match inner.classes.iter().position(|c| c.layout == layout) {
            Some(i) => &mut inner.classes[i],
            None => {
                inner.classes.push(Class {
                    layout,
                    free: None,
                    chunks: Vec::new(),
                    uncarved: 0,
                    slots: 0,
                });
                let last = inner.classes.len() - 1;
                &mut inner.classes[last]
            }
        };
        class.alloc()
    }

    /// Chunks held from the allocator, over every layout.
    #[cfg(all(test, not(actor_loom)))]
    pub(crate) fn chunks(&self) -> usize {
        self.inner
            .lock()
            .classes
            .iter()
            .map(|c| c.chunks.len())
            .sum()
    }

    /// Gives a slot back.
    ///
    /// # Safety
    /// `ptr` came from this slab's [`Slab::alloc`] with `layout`, its value has been dropped, and
    /// it is not used again.
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        let layout = layout.pad_to_align();
        let mut inner = self.inner.lock();
        inner.live -= 1;
        if inner.live == 0 {
            // Nothing is in use: every chunk goes back (a group that has emptied may stay
            // empty for long, or for good).
            for class in inner.classes.drain(..) {
                class.release();
            }
            return;
        }
        if let Some(class) = inner.classes.iter_mut().find(|c| c.layout == layout) {
            // SAFETY: the slot is this class's and unused (the caller's promise); it is big and
            // aligned enough for a pointer (`alloc`'s).
            unsafe { ptr.cast::<Option<NonNull<u8>>>().write(class.free) };
            class.free = Some(ptr);
        } else {
            debug_assert!(false, "a slot freed with a layout the slab never gave out");
        }
    }
}

impl Class {
    fn alloc(&mut self) -> NonNull<u8> {
        if let Some(slot) = self.free {
            // SAFETY: a free slot holds the address of the next one (`Slab::free`).
            self.free = unsafe { slot.cast::<Option<NonNull<u8>>>().read() };
            return slot;
        }
        if self.uncarved == 0 {
            self.grow();
        }
        let (chunk, chunk_layout) = *self.chunks.last().expect("grow adds a chunk");
        let index = chunk_layout.size() / self.layout.size() - self.uncarved;
        self.uncarved -= 1;
        // SAFETY: `index` is below the chunk's number of slots, so the slot is inside it.
        unsafe { chunk.add(index * self.layout.size()) }
    }

    /// Takes a new chunk from the allocator: as many slots as every chunk so far, at least
    /// `FIRST_CHUNK_SLOTS`, at most what fits in `MAX_CHUNK_BYTES` (and at least one).
    fn grow(&mut self) {
        let size = self.layout.size();
        let slots = self
            .slots
            .max(FIRST_CHUNK_SLOTS)
            .min((MAX_CHUNK_BYTES / size).max(1));
        let chunk_layout = Layout::from_size_align(size * slots, self.layout.align())
            .unwrap_or_else(|_| panic!("a member of {size} bytes is too large for a chunk"));
        // SAFETY: the layout is not zero-sized (a slot holds at least a pointer).
        let chunk = NonNull::new(unsafe { std::alloc::alloc(chunk_layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(chunk_layout));
        self.chunks.push((chunk, chunk_layout));
        self.uncarved = slots;
        self.slots += slots;
    }

    /// Gives every chunk back to the allocator (no slot may be in use).
    fn release(self) {
        for (chunk, layout) in self.chunks {
            // SAFETY: allocated in `grow` with this layout, and no slot of it is in use.
            unsafe { std::alloc::dealloc(chunk.as_ptr(), layout) };
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        let mut inner = self.inner.lock();
        // A slot still in use would be freed into a dropped slab: members hold their group
        // (and so its slab) until their memory is given back.
        debug_assert_eq!(inner.live, 0, "a group's slab dropped with members in it");
        for class in std::mem::take(&mut inner.classes) {
            class.release();
        }
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    //! Slots are distinct, aligned and reused; chunks grow and are given back when the last slot
    //! is freed. (Run under Miri or a sanitizer, these also check that no slot is out of bounds
    //! or used after its chunk is gone.)
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("a valid layout")
    }

    fn chunks_per_layout(slab: &Slab) -> Vec<usize> {
        let inner = slab.inner.lock();
        inner.classes.iter().map(|c| c.chunks.len()).collect()
    }

    #[test]
    fn slots_are_distinct_aligned_and_writable() {
        let slab = Slab::new();
        let l = layout(184, 8);
        let mut slots: Vec<NonNull<u8>> = (0..1000).map(|_| slab.alloc(l)).collect();
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(s.as_ptr() as usize % 8, 0);
            // SAFETY: a fresh slot of 184 bytes.
            unsafe { std::ptr::write_bytes(s.as_ptr(), i as u8, 184) };
        }
        for (i, s) in slots.iter().enumerate() {
            // SAFETY: written above, not freed.
            let bytes = unsafe { std::slice::from_raw_parts(s.as_ptr(), 184) };
            assert!(
                bytes.iter().all(|&b| b == i as u8),
                "slot {i} was overwritten"
            );
        }
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 1000);
        // 8 + 8 + 16 + 32 + ... doubling, each at most 64 KiB / 184 = 356 slots.
        let expected = {
            let (mut total, mut n) = (0, 0);
            while total < 1000 {
                total += total.clamp(8, 356);
                n += 1;
            }
            n
        };
        assert_eq!(chunks_per_layout(&slab), vec![expected]);
        for s in slots {
            // SAFETY: from `alloc` with `l`, not used again.
            unsafe { slab.free(s, l) };
        }
        assert!(chunks_per_layout(&slab).is_empty(), "every chunk went back");
    }

    #[test]
    fn freed_slots_are_reused_before_new_ones_are_carved() {
        let slab = Slab::new();
        let l = layout(64, 16);
        let keep = slab.alloc(l);
        let a = slab.alloc(l);
        let b = slab.alloc(l);
        // SAFETY: from `alloc` with `l`, not used again.
        unsafe {
            slab.free(a, l);
            slab.free(b, l);
        }
        // Last freed, first reused.
        assert_eq!(slab.alloc(l), b);
        assert_eq!(slab.alloc(l), a);
        assert_eq!(keep.as_ptr() as usize % 16, 0);
        assert_eq!(chunks_per_layout(&slab), vec![1]);
        // SAFETY: from `alloc` with `l`, not used again.
        unsafe {
            slab.free(a, l);
            slab.free(b, l);
        }
        assert_eq!(chunks_per_layout(&slab), vec![1], "a slot is still in use");
        // SAFETY: as above.
        unsafe { slab.free(keep, l) };
        assert!(chunks_per_layout(&slab).is_empty());
    }

    #[test]
    fn layouts_get_their_own_slots() {
        let slab = Slab::new();
        let small = layout(32, 8);
        let big = layout(256, 128);
        let s = slab.alloc(small);
        let b = slab.alloc(big);
        assert_eq!(b.as_ptr() as usize % 128, 0);
        // SAFETY: from `alloc` with its layout, not used again.
        unsafe { slab.free(s, small) };
        // The free small slot is not handed out for the big layout.
        let b2 = slab.alloc(big);
        assert_ne!(b2, s);
        assert_eq!(b2.as_ptr() as usize % 128, 0);
        assert_eq!(chunks_per_layout(&slab), vec![1, 1]);
        // SAFETY: as above.
        unsafe {
            slab.free(b, big);
            slab.free(b2, big);
        }
        assert!(chunks_per_layout(&slab).is_empty());
    }

    #[test]
    fn a_slot_larger_than_a_chunk_gets_a_chunk_of_its_own() {
        let slab = Slab::new();
        let l = layout(MAX_CHUNK_BYTES + 8, 8);
        let a = slab.alloc(l);
        let b = slab.alloc(l);
        assert_ne!(a, b);
        assert_eq!(chunks_per_layout(&slab), vec![2]);
        // SAFETY: from `alloc` with `l`, not used again.
        unsafe {
            slab.free(a, l);
            slab.free(b, l);
        }
    }
}
