//! Timers and receive timeouts, on tokio's paused clock: single-shot, fixed-rate without bursts,
//! cancel discards due ticks, replace by key, timers die with the actor, ticks skipped while
//! suspended, idle signal.

use std::time::Duration;

use actor_core::ChildFailure;
use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use tokio::time::Instant;

const T: Duration = Duration::from_secs(10);

struct Ticker {
    out: ActorRef<(String, Duration)>,
    start: Instant,
}

enum TickMsg {
    Tick(&'static str),
    After(&'static str, Duration),
    Every(&'static str, Duration),
    Cancel(&'static str),
    Busy(Duration),
    /// Busy for a while (ticks fall due and queue), then cancel in the same handler.
    BusyThenCancel(Duration, &'static str),
    Has(&'static str, Reply<bool>),
    IdleAfter(Option<Duration>),
    /// Fails the handler: the actor is suspended until its parent decides.
    Fail,
}

impl Actor for Ticker {
    type Msg = TickMsg;
    async fn handle(&mut self, msg: TickMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            TickMsg::Tick(name) => self.out.tell((name.to_owned(), self.start.elapsed())),
            TickMsg::After(name, d) => ctx.send_after(name, d, TickMsg::Tick(name)),
            TickMsg::Every(name, d) => ctx.send_interval(name, d, move || TickMsg::Tick(name)),
            TickMsg::Cancel(name) => {
                ctx.cancel_timer(name);
            }
            // Blocks the actor (simulated work) so that ticks fall due meanwhile.
            TickMsg::Busy(d) => tokio::time::sleep(d).await,
            TickMsg::BusyThenCancel(d, name) => {
                tokio::time::sleep(d).await;
                assert!(ctx.cancel_timer(name));
            }
            TickMsg::Has(name, r) => r.send(ctx.has_timer(name)),
            TickMsg::IdleAfter(d) => ctx.set_receive_timeout(d),
            TickMsg::Fail => return Err("told to fail".into()),
        }
        Ok(())
    }
    async fn on_signal(&mut self, signal: Signal, _ctx: &mut Context<Self>) -> ActorResult {
        if let Signal::ReceiveTimeout = signal {
            self.out.tell(("idle".to_owned(), self.start.elapsed()));
        }
        Ok(())
    }
}

fn ticker(sys: &ActorSystem) -> (ActorRef<TickMsg>, TestProbe<(String, Duration)>) {
    let probe = TestProbe::new(sys);
    let out = probe.actor_ref();
    let start = Instant::now();
    let r = sys
        .spawn(Props::new(move || Ticker {
            out: out.clone(),
            start,
        }))
        .expect("spawn");
    (r, probe)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn send_after_fires_once_at_the_deadline() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::After("a", ms(250)));
    let (name, at) = probe.expect_msg(T).await;
    assert_eq!((name.as_str(), at), ("a", ms(250)));
    probe.expect_no_msg(Duration::from_secs(5)).await;
    assert_eq!(
        t.ask(|r| TickMsg::Has("a", r)).await,
        Ok(false),
        "a fired single-shot timer is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn interval_is_fixed_rate_and_skips_missed_ticks() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::Every("tick", ms(50)));
    for k in 1..=4 {
        let (_, at) = probe.expect_msg(T).await;
        assert_eq!(at, ms(50 * k), "tick {k} at a fixed rate");
    }
    // Busy for 275 ms: five ticks fall due, but at most one waits; no burst afterwards.
    t.tell(TickMsg::Busy(ms(275)));
    let (_, at) = probe.expect_msg(T).await;
    assert_eq!(
        at,
        ms(475),
        "the one queued tick runs when the actor is free"
    );
    let (_, at) = probe.expect_msg(T).await;
    assert_eq!(at, ms(500), "then the schedule resumes on its fixed grid");
    t.tell(TickMsg::Cancel("tick"));
    probe.expect_no_msg(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn cancelling_discards_a_tick_already_queued() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    // Single-shot: fires at 10 ms while the actor is busy until 20 ms, then cancelled.
    t.tell(TickMsg::After("x", ms(10)));
    t.tell(TickMsg::BusyThenCancel(ms(20), "x"));
    // Interval: a tick queues at 50 ms while busy, then the timer is cancelled.
    t.tell(TickMsg::Every("y", ms(50)));
    t.tell(TickMsg::BusyThenCancel(ms(40), "y"));
    probe.expect_no_msg(Duration::from_secs(2)).await;
    assert_eq!(t.ask(|r| TickMsg::Has("y", r)).await, Ok(false));
}

#[tokio::test(start_paused = true)]
async fn timer_ticks_overtake_queued_user_messages() {
    // Ticks come before user messages (documented in docs/semantics.md): a tick that falls due
    // while user messages are queued is handled before them.
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::After("x", ms(10)));
    t.tell(TickMsg::Busy(ms(20)));
    t.tell(TickMsg::Tick("user"));
    assert_eq!(probe.expect_msg(T).await, ("x".to_owned(), ms(20)));
    assert_eq!(probe.expect_msg(T).await.0, "user");
}

#[tokio::test(start_paused = true)]
async fn starting_a_timer_with_a_used_key_replaces_it() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::After("k", ms(100)));
    t.tell(TickMsg::After("k", ms(300)));
    let (_, at) = probe.expect_msg(T).await;
    assert_eq!(at, ms(300));
    probe.expect_no_msg(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn timers_die_with_the_actor() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::Every("e", ms(10)));
    probe.expect_msg(T).await;
    t.stop();
    t.wait_for_stop().await;
    let dead_before = sys.dead_letter_count();
    probe.expect_no_msg(Duration::from_secs(1)).await;
    assert_eq!(
        sys.dead_letter_count(),
        dead_before,
        "no orphan timer keeps sending"
    );
}

#[tokio::test(start_paused = true)]
async fn receive_timeout_signals_each_idle_period_and_resets_on_messages() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::IdleAfter(Some(ms(100))));
    let (name, at) = probe.expect_msg(T).await;
    assert_eq!((name.as_str(), at), ("idle", ms(100)));
    let (_, at) = probe.expect_msg(T).await;
    assert_eq!(at, ms(200));
    // A message at 250 ms resets the idle clock.
    tokio::time::sleep_until(Instant::now() + ms(50)).await;
    t.tell(TickMsg::Tick("m"));
    let (name, _) = probe.expect_msg(T).await;
    assert_eq!(name, "m");
    let (name, at) = probe.expect_msg(T).await;
    assert_eq!((name.as_str(), at), ("idle", ms(350)));
    t.tell(TickMsg::IdleAfter(None));
    probe.expect_no_msg(Duration::from_secs(2)).await;
}

/// Spawns a ticker as its child, resumes it after any failure, and is busy when told.
struct Resumer {
    out: ActorRef<(String, Duration)>,
    start: Instant,
    child: Option<ActorRef<TickMsg>>,
    children: ActorRef<ActorRef<TickMsg>>,
}

enum ResumerMsg {
    Busy(Duration),
}

impl Actor for Resumer {
    type Msg = ResumerMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let (out, start) = (self.out.clone(), self.start);
        let child = ctx.spawn(Props::new(move || Ticker {
            out: out.clone(),
            start,
        }))?;
        self.children.tell(child.clone());
        self.child = Some(child);
        Ok(())
    }
    async fn handle(&mut self, msg: ResumerMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            // While this handler runs, a child's failure waits in the system lane.
            ResumerMsg::Busy(d) => tokio::time::sleep(d).await,
        }
        Ok(())
    }
    fn on_child_failure(&mut self, _f: &ChildFailure, _ctx: &mut Context<Self>) -> Directive {
        Directive::Resume
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_that_fall_due_while_suspended_are_skipped() {
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut probe = TestProbe::new(&sys);
    let mut children = TestProbe::new(&sys);
    let (out, kids) = (probe.actor_ref(), children.actor_ref());
    let start = Instant::now();
    let parent = sys
        .spawn(Props::new(move || Resumer {
            out: out.clone(),
            start,
            child: None,
            children: kids.clone(),
        }))
        .expect("spawn");
    let t = children.expect_msg(T).await;
    t.tell(TickMsg::Every("tick", ms(50)));
    for k in 1..=2 {
        assert_eq!(probe.expect_msg(T).await.1, ms(50 * k));
    }
    // At 100 ms the parent is busy until 625 ms, then the ticker fails: suspended until the
    // parent resumes it, when its busy handler ends.
    parent.tell(ResumerMsg::Busy(ms(525)));
    t.tell(TickMsg::Fail);
    // Ticks due at 150..=600 ms fall while it is suspended: skipped, not burst at 625 ms. The
    // schedule resumes on its grid.
    let (_, at) = probe.expect_msg(T).await;
    assert_eq!(
        at,
        ms(650),
        "the first tick after the resume is on the grid"
    );
    assert_eq!(probe.expect_msg(T).await.1, ms(700));
    t.tell(TickMsg::Cancel("tick"));
    probe.expect_no_msg(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn intervals_below_at_and_beyond_the_wheels_ring_tick_on_their_grids() {
    // The system's timer wheel keeps the next 256 ms in a ring and later deadlines apart; these
    // periods tick side by side, each on its own grid, with no tick early, late or lost.
    const PERIODS: [(&str, u64); 9] = [
        ("1", 1),
        ("7", 7),
        ("63", 63),
        ("64", 64),
        ("255", 255),
        ("256", 256),
        ("257", 257),
        ("1000", 1_000),
        ("3001", 3_001),
    ];
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let mut tickers = Vec::new();
    for (name, period) in PERIODS {
        let (t, probe) = ticker(&sys);
        t.tell(TickMsg::Every(name, ms(period)));
        tickers.push((t, probe, name, period));
    }
    for (_t, mut probe, name, period) in tickers {
        for k in 1..=5 {
            let (got, at) = probe.expect_msg(T).await;
            assert_eq!(got, name);
            assert_eq!(at, ms(period * k), "tick {k} of the {period} ms interval");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_far_receive_timeout_outlives_the_timers_around_it() {
    // The receive timeout and the timers share the actor's arm in the system's timer wheel: when
    // the last timer goes, the arm (a far one, beyond the wheel's 256 ms ring) is taken back, and
    // the next park must arm again for the receive timeout.
    let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
    let (t, mut probe) = ticker(&sys);
    t.tell(TickMsg::IdleAfter(Some(ms(1_000))));
    // The actor parks, armed for 1 s; at 100 ms a timer comes and goes, restarting the idle
    // period too.
    tokio::time::sleep_until(Instant::now() + ms(100)).await;
    t.tell(TickMsg::After("x", ms(5_000)));
    t.tell(TickMsg::Cancel("x"));
    let (name, at) = probe.expect_msg(T).await;
    assert_eq!((name.as_str(), at), ("idle", ms(1_100)));
    // Messages keep restarting the idle period; it fires a period after the last one.
    for _ in 0..3 {
        tokio::time::sleep_until(Instant::now() + ms(600)).await;
        t.tell(TickMsg::Tick("m"));
        assert_eq!(probe.expect_msg(T).await.0, "m");
    }
    let (name, at) = probe.expect_msg(T).await;
    assert_eq!((name.as_str(), at), ("idle", ms(1_100 + 3 * 600 + 1_000)));
}
