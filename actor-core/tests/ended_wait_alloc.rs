//! Waiting for an actor that has already ended (the second half of a shutdown that stopped many
//! actors, then waits for each) answers at once without allocating. One test per binary: the
//! allocator below counts the allocations of the thread that asks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use actor_core::{
    Actor, ActorResult, ActorSystem, Context, Props, SystemConfig, TerminationReason,
};

/// Counts the allocations made on the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Idle;

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

#[test]
fn waiting_for_an_ended_actor_answers_at_once_and_allocates_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sys = ActorSystem::new(SystemConfig::default()).expect("system");
        let a = sys.spawn(Props::new(|| Idle)).expect("spawn");
        a.stop();
        // Alive until its task runs: this wait registers a waiter and is woken by the end.
        assert!(matches!(
            a.wait_for_stop().await,
            TerminationReason::Stopped
        ));
        let before = ALLOCATIONS.with(Cell::get);
        let again = a.wait_for_stop().await;
        let allocated = ALLOCATIONS.with(Cell::get) - before;
        assert!(matches!(again, TerminationReason::Stopped), "{again:?}");
        assert_eq!(
            allocated, 0,
            "waiting for an ended actor allocated {allocated} times"
        );
    });
}
