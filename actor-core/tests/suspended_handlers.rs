//! Handlers that await: the actor's task keeps a suspended handler's future between polls (it
//! borrows the actor's state and context while it is kept), so order, state, the throughput
//! budget, panics after a suspension and a kill in the middle of one must all still hold.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::{DeadLetterReason, TerminationReason};
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(5);

type Log = Arc<Mutex<Vec<&'static str>>>;

/// Writes its name to the log when dropped.
struct DropMark(Log, &'static str);

impl Drop for DropMark {
    fn drop(&mut self) {
        if let Ok(mut log) = self.0.lock() {
            log.push(self.1);
        }
    }
}

struct Suspender {
    seen: Vec<u32>,
    log: Log,
    _state: DropMark,
}

enum Msg {
    /// Records `n` after yielding `yields` times.
    Work {
        n: u32,
        yields: u32,
    },
    /// Records `n` once `rx` fires (pending until another task sends).
    Wait {
        n: u32,
        rx: oneshot::Receiver<()>,
    },
    /// Suspends once, then panics.
    PanicLater,
    /// Tells `started`, then never finishes; holds a mark that is dropped with the handler's
    /// future.
    Hang(oneshot::Sender<()>),
    Get(Reply<Vec<u32>>),
}

impl Actor for Suspender {
    type Msg = Msg;
    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Msg::Work { n, yields } => {
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                self.seen.push(n);
            }
            Msg::Wait { n, rx } => {
                rx.await.map_err(|e| e.to_string())?;
                self.seen.push(n);
            }
            Msg::PanicLater => {
                tokio::task::yield_now().await;
                panic!("panicked after a suspension");
            }
            Msg::Hang(started) => {
                let _mark = DropMark(self.log.clone(), "handler");
                let _ = started.send(());
                std::future::pending::<()>().await;
            }
            Msg::Get(reply) => reply.send(self.seen.clone()),
        }
        Ok(())
    }
}

fn props(log: &Log) -> Props<Suspender> {
    let log = log.clone();
    Props::new(move || Suspender {
        seen: Vec::new(),
        log: log.clone(),
        _state: DropMark(log.clone(), "state"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_handlers_keep_order_state_and_the_throughput_budget() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("system");
    let log = Log::default();
    // A budget of 3: the task yields its worker after every third message, also right after a
    // handler that was suspended.
    let a = sys.spawn(props(&log).throughput(3)).expect("spawn");
    let mut gates = Vec::new();
    for n in 0..200 {
        if n % 10 == 0 {
            let (tx, rx) = oneshot::channel();
            gates.push(tx);
            a.tell(Msg::Wait { n, rx });
        } else {
            a.tell(Msg::Work { n, yields: n % 4 });
        }
    }
    // Released from another task, in order: each `Wait` is pending until its gate opens.
    tokio::spawn(async move {
        for tx in gates {
            tokio::task::yield_now().await;
            let _ = tx.send(());
        }
    });
    let seen = a.ask_timeout(Msg::Get, T).await.expect("ask");
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    let stats = a.stats().expect("stats");
    // 200 messages and the `Get`. The count is brought up to date when the actor pauses, so
    // while it may still be running it can lag by up to its budget (3), the `Get` included.
    assert!(stats.processed >= 201 - 3, "{}", stats.processed);
    assert_eq!(stats.failures, 0);
    a.stop();
    a.wait_for_stop().await;
    assert_eq!(
        a.stats().expect("stats").processed,
        201,
        "exact once it has ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_after_a_suspension_is_contained_and_the_actor_restarts() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("system");
    let log = Log::default();
    let a = sys.spawn(props(&log)).expect("spawn");
    a.tell(Msg::Work { n: 1, yields: 2 });
    a.tell(Msg::PanicLater);
    a.tell(Msg::Work { n: 2, yields: 1 });
    // The system default restarts a failed top-level actor: fresh state, same ref.
    let seen = a.ask_timeout(Msg::Get, T).await.expect("ask");
    assert_eq!(seen, vec![2]);
    let stats = a.stats().expect("stats");
    assert_eq!((stats.failures, stats.restarts), (1, 1));
    assert_eq!(
        *log.lock().expect("log"),
        vec!["state"],
        "the old state is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_handler_drops_the_handlers_future_before_the_state() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("system");
    let log = Log::default();
    let a = sys.spawn(props(&log)).expect("spawn");
    let (started, hanging) = oneshot::channel();
    let mut dead = sys.subscribe_dead_letters();
    a.tell(Msg::Hang(started));
    // Queued behind the hanging handler: a dead letter at the kill.
    a.tell(Msg::Work { n: 1, yields: 0 });
    tokio::time::timeout(T, hanging)
        .await
        .expect("the hanging handler runs")
        .expect("started");
    a.kill();
    assert!(matches!(
        tokio::time::timeout(T, a.wait_for_stop())
            .await
            .expect("ends"),
        TerminationReason::Killed
    ));
    assert_eq!(*log.lock().expect("log"), vec!["handler", "state"]);
    let letter = tokio::time::timeout(T, dead.recv())
        .await
        .expect("dead letter in time")
        .expect("dead letter");
    assert_eq!(letter.recipient, a.path());
    assert_eq!(letter.reason, DeadLetterReason::Stopped);
}

/// A handler's future that is ready at once and panics when dropped.
struct PanicsOnDrop(Arc<AtomicU32>);

impl Future for PanicsOnDrop {
    type Output = ActorResult;
    fn poll(self: Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> Poll<ActorResult> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a handler's future panicked in drop");
    }
}

struct Fragile {
    drops: Arc<AtomicU32>,
}

impl Actor for Fragile {
    type Msg = ();
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        _msg: (),
        _ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        PanicsOnDrop(self.drops.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_future_that_panics_in_drop_is_dropped_once_and_ends_the_actor() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("system");
    let drops = Arc::new(AtomicU32::new(0));
    let a = sys
        .spawn(Props::new({
            let drops = drops.clone();
            move || Fragile {
                drops: drops.clone(),
            }
        }))
        .expect("spawn");
    a.tell(());
    // The panic escapes the task (it is not the handler's): the task ends and the teardown
    // runs, as for a kill.
    assert!(matches!(
        tokio::time::timeout(T, a.wait_for_stop())
            .await
            .expect("ends"),
        TerminationReason::Killed
    ));
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
}

/// `handle` written by hand: it panics before it returns a future on `true`.
struct Eager {
    seen: u32,
}

impl Actor for Eager {
    type Msg = (bool, Option<Reply<u32>>);
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        (panic, reply): (bool, Option<Reply<u32>>),
        _ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        assert!(!panic, "handle panicked before returning its future");
        self.seen += 1;
        if let Some(reply) = reply {
            reply.send(self.seen);
        }
        std::future::ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_that_panics_before_returning_its_future_is_a_contained_failure() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("system");
    let a = sys.spawn(Props::new(|| Eager { seen: 0 })).expect("spawn");
    a.tell((false, None));
    a.tell((true, None));
    // Restarted by the system default (fresh state), not killed.
    let seen = a
        .ask_timeout(|reply| (false, Some(reply)), T)
        .await
        .expect("ask");
    assert_eq!(seen, 1);
    let stats = a.stats().expect("stats");
    assert_eq!((stats.failures, stats.restarts), (1, 1));
}
