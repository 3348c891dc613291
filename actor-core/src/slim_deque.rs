//! A FIFO ring buffer in 20 bytes: a `std::collections::VecDeque` takes 32.
//!
//! Every actor's mailbox holds one (the user lane, `sync::Deque`) and every actor loop another
//! (the consumer's batch, `mailbox::Cursor`), so their width is paid per actor, idle or not
//! (`benches/HISTORY.md`, "Session 30"). It keeps what the mailbox uses of a `VecDeque`: push at
//! the back, pop at the front, swap (how the consumer takes a whole queue), append and drain;
//! with 32-bit head, length and capacity, packed to a 4-byte alignment.
//!
//! The head, length and capacity stay beside the pointer, not in the heap block: a first version
//! kept them in a header in front of the slots (8 bytes wide), and a sender then read that
//! header on every push. Blocks of 128 KiB and more are mapped by glibc on page boundaries, so
//! the headers of many large queues fell into the same cache set and evicted each other: fan-out
//! (one sender, 64 queues of thousands of messages) lost 24% (`cachegrind`: 0.7 more L1 read
//! misses a message).
//!
//! Growth doubles the capacity (from 4 slots) with `realloc`, which glibc does without copying
//! for mapped blocks, then moves the shorter run of a wrapped queue, as `VecDeque` does. A
//! queue holds at most 2^31 values; one more is handed back ([`SlimDeque::push_back`]).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error, realloc};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A FIFO queue of `T` (see the module doc).
#[repr(C, packed(4))]
pub(crate) struct SlimDeque<T> {
    /// The slots; dangling while `cap` is 0 (and for zero-sized values).
    buf: NonNull<T>,
    /// The slot of the oldest value.
    head: u32,
    /// Values queued.
    len: u32,
    /// Slots in `buf`: 0 or a power of two.
    cap: u32,
    _owns: PhantomData<T>,
}

// SAFETY: the deque owns its values, like a `Vec<T>`.
unsafe impl<T: Send> Send for SlimDeque<T> {}
// SAFETY: `&SlimDeque<T>` only reads lengths, as `&Vec<T>` can.
unsafe impl<T: Sync> Sync for SlimDeque<T> {}

impl<T> Default for SlimDeque<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for SlimDeque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlimDeque")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> SlimDeque<T> {
    /// The first block, in slots.
    const MIN_CAP: u32 = 4;
    /// The largest block, in slots.
    const MAX_CAP: u32 = 1 << 31;

    /// An empty deque, with no block.
    pub(crate) const fn new() -> Self {
        Self {
            buf: NonNull::dangling(),
            head: 0,
            len: 0,
            cap: 0,
            _owns: PhantomData,
        }
    }

    /// Values queued.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing is queued.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots in the block (0 with no block).
    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// The slot at index `i`.
    ///
    /// # Safety
    ///
    /// `i` is less than the capacity.
    #[inline(always)]
    unsafe fn slot(&self, i: u32) -> *mut T {
        let buf = self.buf;
        // SAFETY: per the contract, the slot lies inside the block.
        unsafe { buf.as_ptr().add(i as usize) }
    }

    /// Queues `value` at the back; hands it back if the deque already holds 2^31 values.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) -> Result<(), T> {
        if self.len == self.cap && !self.grow() {
            return Err(value);
        }
        // `head < cap` and `len < cap`, both at most 2^31: the sum fits and, wrapped once, is
        // a slot.
        let mut i = self.head + self.len;
        if i >= self.cap {
            i -= self.cap;
        }
        // SAFETY: `i < cap`, and the slot is free.
        unsafe { self.slot(i).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Takes the oldest value.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: `head < cap` holds a value when `len > 0`.
        let value = unsafe { self.slot(self.head).read() };
        self.len -= 1;
        // Emptied, the deque starts again at its first slot: a queue that holds one message at a
        // time keeps using one cache line.
        self.head = if self.len == 0 || self.head + 1 == self.cap {
            0
        } else {
            self.head + 1
        };
        Some(value)
    }

    /// Removes every value, oldest first, as an iterator; whatever the iterator does not yield is
    /// dropped with it.
    pub(crate) fn drain(&mut self) -> Drain<'_, T> {
        Drain(self)
    }

    /// Moves every value of `other` to the back of this deque, oldest first. Values that do not
    /// fit (past 2^31) stay in `other`.
    pub(crate) fn append(&mut self, other: &mut Self) {
        while let Some(v) = other.pop_front() {
            if let Err(v) = self.push_back(v) {
                // Put it back in front, where it was (it just left, so it fits).
                other.head = if other.head == 0 {
                    other.cap - 1
                } else {
                    other.head - 1
                };
                // SAFETY: the slot it left is free and in the block.
                unsafe { other.slot(other.head).write(v) };
                other.len += 1;
                return;
            }
        }
    }

    /// The layout of a block of `cap` slots.
    fn layout(cap: u32) -> Layout {
        // At most 2^31 slots of a size that fits in memory; past `isize::MAX` bytes, the push
        // fails as an allocation failure would.
        Layout::array::<T>(cap as usize).unwrap_or_else(|_| handle_alloc_error(Layout::new::<T>()))
    }

    /// Doubles the capacity (or makes the first block); false at [`Self::MAX_CAP`].
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> bool {
        let old_cap = self.cap;
        if old_cap == Self::MAX_CAP {
            return false;
        }
        let cap = if old_cap == 0 {
            Self::MIN_CAP
        } else {
            old_cap * 2
        };
        let layout = Self::layout(cap);
        if layout.size() != 0 {
            let raw = if old_cap == 0 {
                // SAFETY: the layout is not zero-sized.
                unsafe { alloc(layout) }
            } else {
                let buf = self.buf;
                // SAFETY: `buf` was allocated with `layout(old_cap)`, of the same alignment,
                // and the new size is not zero.
                unsafe { realloc(buf.as_ptr().cast(), Self::layout(old_cap), layout.size()) }
            };
            let Some(new) = NonNull::new(raw.cast::<T>()) else {
                handle_alloc_error(layout)
            };
            self.buf = new;
        }
        self.cap = cap;
        // If the values wrapped around the old end (`head..old_cap`, then `0..tail`), move the
        // shorter run: `tail` slots to `old_cap..`, or the `old_cap - head` slots of the first
        // run to the block's end, which starts past `old_cap`. Either way the runs do not
        // overlap.
        let (head, len) = (self.head, self.len);
        if head + len > old_cap {
            let first = old_cap - head;
            let tail = len - first;
            // SAFETY: the slots named above, all inside the new block.
            unsafe {
                if tail <= first {
                    std::ptr::copy_nonoverlapping(self.slot(0), self.slot(old_cap), tail as usize);
                } else {
                    let new_head = cap - first;
                    std::ptr::copy_nonoverlapping(
                        self.slot(head),
                        self.slot(new_head),
                        first as usize,
                    );
                    self.head = new_head;
                }
            }
        }
        true
    }
}

impl<T> Drop for SlimDeque<T> {
    fn drop(&mut self) {
        // Drop the values, oldest first; should one panic, the rest and the block leak, as a
        // panicking drop elsewhere would leave them.
        while self.pop_front().is_some() {}
        let layout = Self::layout(self.cap);
        if self.cap != 0 && layout.size() != 0 {
            let buf = self.buf;
            // SAFETY: the block was allocated with this layout and holds no value now.
            unsafe { dealloc(buf.as_ptr().cast(), layout) };
        }
    }
}

/// The iterator of [`SlimDeque::drain`].
pub(crate) struct Drain<'a, T>(&'a mut SlimDeque<T>);

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Drain<'_, T> {}

impl<T> Drop for Drain<'_, T> {
    fn drop(&mut self) {
        while self.0.pop_front().is_some() {}
    }
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use std::collections::VecDeque;
    use std::rc::Rc;

    use super::SlimDeque;

    #[test]
    fn is_20_bytes_and_has_no_block_until_the_first_push() {
        assert_eq!(size_of::<SlimDeque<u64>>(), 20);
        assert_eq!(size_of::<SlimDeque<[u8; 100]>>(), 20);
        let mut q = SlimDeque::<u64>::new();
        assert_eq!((q.len(), q.capacity()), (0, 0));
        assert_eq!(q.pop_front(), None);
        q.push_back(1).expect("room");
        assert_eq!((q.len(), q.capacity()), (1, 4));
    }

    #[test]
    fn hands_back_a_value_past_two_to_the_31() {
        // Zero-sized values take no memory, so the deque can be filled to its limit by hand.
        let mut q = SlimDeque::<()>::new();
        q.len = SlimDeque::<()>::MAX_CAP;
        q.cap = SlimDeque::<()>::MAX_CAP;
        assert_eq!(q.push_back(()), Err(()));
        assert_eq!(q.len(), 1 << 31);
        let mut other = SlimDeque::new();
        for _ in 0..3 {
            other.push_back(()).expect("room");
        }
        q.append(&mut other);
        assert_eq!((q.len(), other.len()), (1 << 31, 3));
        // Emptied without dropping 2^31 values one by one (they are `()`s).
        q.len = 0;
    }

    /// A pseudo-random mix of pushes, pops, drains and appends, checked step by step against
    /// `VecDeque` (a xorshift sequence, so a failure repeats).
    fn against_vecdeque<T: Clone + PartialEq + std::fmt::Debug>(make: impl Fn(u64) -> T) {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut slim = SlimDeque::new();
        let mut model = VecDeque::new();
        let mut other = SlimDeque::new();
        let mut other_model = VecDeque::new();
        for step in 0..20_000u64 {
            match next() % 16 {
                0..=7 => {
                    slim.push_back(make(step)).expect("room");
                    model.push_back(make(step));
                }
                8..=12 => assert_eq!(slim.pop_front(), model.pop_front(), "step {step}"),
                13 => {
                    let n = (next() % 8) as usize;
                    for _ in 0..n {
                        other.push_back(make(step)).expect("room");
                        other_model.push_back(make(step));
                    }
                    slim.append(&mut other);
                    model.append(&mut other_model);
                    assert!(other.is_empty());
                }
                14 => {
                    // A partial drain: the rest is dropped with the iterator.
                    let take = (next() % 4) as usize;
                    let got: Vec<T> = slim.drain().take(take).collect();
                    let want: Vec<T> = model.drain(..).take(take).collect();
                    assert_eq!(got, want, "step {step}");
                }
                _ => {
                    // As the mailbox's `take_all` does with the consumer's batch.
                    std::mem::swap(&mut slim, &mut other);
                    std::mem::swap(&mut model, &mut other_model);
                }
            }
            assert_eq!(slim.len(), model.len(), "step {step}");
            assert_eq!(other.len(), other_model.len(), "step {step}");
            assert!(slim.capacity() >= slim.len());
        }
        let rest: Vec<T> = slim.drain().collect();
        assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn behaves_as_a_vecdeque() {
        against_vecdeque(|i| i);
        against_vecdeque(|i| i as u8);
        against_vecdeque(|i| [i; 5]);
        against_vecdeque(|i| format!("m{i}"));
        against_vecdeque(|_| ());
    }

    #[test]
    fn keeps_the_order_across_growth_with_a_wrapped_head() {
        let mut q = SlimDeque::new();
        for i in 0..3 {
            q.push_back(i).expect("room");
        }
        assert_eq!(q.pop_front(), Some(0));
        assert_eq!(q.pop_front(), Some(1));
        // head is 2 of 4: these wrap, then the fifth value grows the block.
        for i in 3..8 {
            q.push_back(i).expect("room");
        }
        assert_eq!(q.capacity(), 8);
        assert_eq!(q.drain().collect::<Vec<_>>(), (2..8).collect::<Vec<_>>());
    }

    #[test]
    fn drops_every_value_once() {
        let token = Rc::new(());
        {
            let mut q = SlimDeque::new();
            for _ in 0..37 {
                q.push_back(Rc::clone(&token)).expect("room");
            }
            for _ in 0..5 {
                q.pop_front();
            }
            assert_eq!(Rc::strong_count(&token), 1 + 32);
            // Three taken; the drain drops the other 29 as it goes.
            let taken: Vec<_> = q.drain().take(3).collect();
            assert_eq!(Rc::strong_count(&token), 1 + 3);
            drop(taken);
            q.push_back(Rc::clone(&token)).expect("room");
            assert_eq!(Rc::strong_count(&token), 2);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn aligns_slots_for_wide_values() {
        #[repr(align(64))]
        #[derive(Clone, Copy, PartialEq, Debug)]
        struct Wide(u64);
        let mut q = SlimDeque::new();
        for i in 0..9 {
            q.push_back(Wide(i)).expect("room");
        }
        let buf = q.buf;
        assert_eq!(buf.as_ptr() as usize % 64, 0);
        for i in 0..9 {
            let front = q.pop_front().expect("queued");
            assert_eq!(front, Wide(i));
        }
    }
}
