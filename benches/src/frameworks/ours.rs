//! actor-core, through its public API: `tell`, `ask`, default (unbounded) mailboxes.
//!
//! `actor-core-group` runs the workloads whose actors talk to each other (pingpong, ring, big)
//! and spawn with every actor in one [`ActorGroup`]: opt-in placement, reported in a column of
//! its own (not a peer, and not the default `actor-core` the targets are judged on).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::prelude::*;
use actor_core::{ActorGroup, MailboxConfig, Overflow, Props as P};
use tokio::sync::mpsc;

use super::Framework;
use crate::{
    BenchResult, Percentiles, Rng, SpawnStats, histogram, percentiles, rate, rss_bytes,
    run_senders, runtime, verify,
};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "actor-core",
        is_peer: false,
        pingpong: Some(pingpong),
        counting: Some(counting),
        fanout: Some(fanout),
        fanin: Some(fanin),
        ring: Some(ring),
        ask_latency: Some(ask_latency),
        spawn: Some(spawn),
        big: Some(big),
        timer_jitter: Some(timer_jitter),
    }
}

/// `actor-core` with every actor of a workload in one [`ActorGroup`].
pub(crate) fn grouped_framework() -> Framework {
    Framework {
        name: "actor-core-group",
        is_peer: false,
        pingpong: Some(|n| pingpong_in(n, true, None)),
        counting: None,
        fanout: None,
        fanin: None,
        ring: Some(|actors, hops| ring_on(&runtime(), actors, hops, Placement::Group, || {})),
        ask_latency: None,
        spawn: Some(|n| spawn_in(n, true)),
        big: Some(|actors, pings| big_in(actors, pings, true)),
        timer_jitter: None,
    }
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside the runtime")
}

/// A new group if the workload runs grouped.
fn group_if(sys: &ActorSystem, grouped: bool) -> Option<ActorGroup> {
    grouped.then(|| sys.group())
}

/// `props`, in `group` if there is one.
fn placed<A: Actor>(props: P<A>, group: &Option<ActorGroup>) -> P<A> {
    match group {
        Some(g) => props.group(g),
        None => props,
    }
}

// ---------- ping-pong ----------

struct Player {
    peer: Option<ActorRef<Ball>>,
    limit: u64,
    done: Option<mpsc::UnboundedSender<u64>>,
    /// A receive timeout (the `idle_timeout` row), as a player session sets one.
    idle: Option<Duration>,
}

enum Ball {
    Peer(ActorRef<Ball>),
    Hit(u64),
}

impl Actor for Player {
    type Msg = Ball;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        if self.idle.is_some() {
            ctx.set_receive_timeout(self.idle);
        }
        Ok(())
    }
    async fn handle(&mut self, msg: Ball, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Ball::Peer(p) => self.peer = Some(p),
            Ball::Hit(n) => match (&self.done, &self.peer) {
                // The pinger counts round trips.
                (Some(_), Some(peer)) => {
                    if n == self.limit {
                        if let Some(done) = &self.done {
                            let _ = done.send(n);
                        }
                    } else {
                        peer.tell(Ball::Hit(n + 1));
                    }
                }
                (None, Some(peer)) => peer.tell(Ball::Hit(n)),
                _ => return Err("no peer".into()),
            },
        }
        Ok(())
    }
}

fn pingpong(n: u64) -> BenchResult<f64> {
    pingpong_in(n, false, None)
}

/// Ping-pong between two actors that each have a 30 s receive timeout, which every message
/// restarts (a player session's idle timeout): what the timeout adds to every park.
pub fn idle_timeout(n: u64) -> BenchResult<f64> {
    pingpong_in(n, false, Some(Duration::from_secs(30)))
}

fn pingpong_in(n: u64, grouped: bool, idle: Option<Duration>) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let group = group_if(&sys, grouped);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ping = sys
            .spawn(placed(
                P::new(move || Player {
                    peer: None,
                    limit: n,
                    done: Some(tx.clone()),
                    idle,
                }),
                &group,
            ))
            .map_err(|e| e.to_string())?;
        let pong = sys
            .spawn(placed(
                P::new(move || Player {
                    peer: None,
                    limit: 0,
                    done: None,
                    idle,
                }),
                &group,
            ))
            .map_err(|e| e.to_string())?;
        ping.tell(Ball::Peer(pong.clone()));
        pong.tell(Ball::Peer(ping.clone()));
        let start = Instant::now();
        ping.tell(Ball::Hit(0));
        let got = rx.recv().await.ok_or("pinger dropped")?;
        let elapsed = start.elapsed();
        verify("round trips", got, n)?;
        sys.shutdown(Duration::from_secs(5)).await;
        Ok(rate(n, elapsed))
    })
}

// ---------- counting / fan-out ----------

/// Counts increments and answers with the count (the counting, fan-out, fan-in and bounded
/// workloads, and the criterion micro-benchmarks in `benches/hot_path.rs`).
#[derive(Default)]
pub struct Counter {
    count: u64,
}

/// A [`Counter`]'s messages.
pub enum CounterMsg {
    /// Add one.
    Inc,
    /// Answer with the count.
    Get(Reply<u64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            CounterMsg::Inc => self.count += 1,
            CounterMsg::Get(r) => r.send(self.count),
        }
        Ok(())
    }
}

/// The counter's total (asked after the sends, so it is the count of every message handled).
pub async fn count_of(counter: &ActorRef<CounterMsg>) -> BenchResult<u64> {
    counter
        .ask_timeout(CounterMsg::Get, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())
}

fn counting(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let c = sys
            .spawn(P::new(Counter::default))
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for _ in 0..n {
            c.tell(CounterMsg::Inc);
        }
        let total = count_of(&c).await?;
        let elapsed = start.elapsed();
        verify("count", total, n)?;
        Ok(rate(n, elapsed))
    })
}

/// A game room: counts its players' inputs while it ticks at 50 Hz (the `ticking_room` row).
struct Room {
    inputs: u64,
}

enum RoomMsg {
    Input,
    Tick,
    Inputs(Reply<u64>),
}

impl Actor for Room {
    type Msg = RoomMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.send_interval("tick", Duration::from_millis(20), || RoomMsg::Tick);
        Ok(())
    }
    async fn handle(&mut self, msg: RoomMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Input => self.inputs += 1,
            RoomMsg::Tick => {}
            RoomMsg::Inputs(r) => r.send(self.inputs),
        }
        Ok(())
    }
}

/// The counting workload into an actor with a timer running (a room ticking at 50 Hz): what an
/// active timer adds to each message.
pub fn ticking_room(n: u64) -> BenchResult<f64> {
    ticking_rooms(n, 0)
}

/// `ticking_room` with `others` more rooms ticking at 50 Hz beside it (a server's other
/// matches): their ticks move the system's timer wheel every millisecond or so, which the busy
/// room's loop must tell apart from its own tick coming due.
pub fn ticking_rooms(n: u64, others: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let crowd = (0..others)
            .map(|_| sys.spawn(P::new(|| Room { inputs: 0 })))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let room = sys
            .spawn(P::new(|| Room { inputs: 0 }))
            .map_err(|e| e.to_string())?;
        // Every room started and ticking: the crowd's ticks spread over the 20 ms period.
        tokio::time::sleep(Duration::from_millis(40)).await;
        let start = Instant::now();
        for _ in 0..n {
            room.tell(RoomMsg::Input);
        }
        let total = room
            .ask_timeout(RoomMsg::Inputs, Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        verify("inputs", total, n)?;
        for r in &crowd {
            verify(
                "the crowd's inputs",
                r.ask_timeout(RoomMsg::Inputs, Duration::from_secs(60))
                    .await
                    .map_err(|e| e.to_string())?,
                0,
            )?;
        }
        Ok(rate(n, elapsed))
    })
}

/// `senders` tasks send `n / senders` increments each to one counter, all at once.
fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let c = sys
            .spawn(P::new(Counter::default))
            .map_err(|e| e.to_string())?;
        let per = n / senders as u64;
        let start = Instant::now();
        run_senders(senders, per, &c, |c| {
            c.tell(CounterMsg::Inc);
            Ok(())
        })
        .await?;
        let total = count_of(&c).await?;
        let elapsed = start.elapsed();
        verify("count", total, per * senders as u64)?;
        Ok(rate(per * senders as u64, elapsed))
    })
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let mut refs = Vec::new();
        for _ in 0..receivers {
            refs.push(
                sys.spawn(P::new(Counter::default))
                    .map_err(|e| e.to_string())?,
            );
        }
        let start = Instant::now();
        for i in 0..n {
            refs[(i % receivers as u64) as usize].tell(CounterMsg::Inc);
        }
        let mut total = 0;
        for r in &refs {
            total += r
                .ask_timeout(CounterMsg::Get, Duration::from_secs(600))
                .await
                .map_err(|e| e.to_string())?;
        }
        let elapsed = start.elapsed();
        verify("fan-out total", total, n)?;
        Ok(rate(n, elapsed))
    })
}

// ---------- ring ----------

struct Node {
    next: Option<ActorRef<RingMsg>>,
    done: mpsc::UnboundedSender<()>,
}

enum RingMsg {
    Next(ActorRef<RingMsg>),
    Token(u64),
}

impl Actor for Node {
    type Msg = RingMsg;
    async fn handle(&mut self, msg: RingMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RingMsg::Next(n) => self.next = Some(n),
            RingMsg::Token(0) => {
                let _ = self.done.send(());
            }
            RingMsg::Token(left) => match &self.next {
                Some(next) => next.tell(RingMsg::Token(left - 1)),
                None => return Err("ring not closed".into()),
            },
        }
        Ok(())
    }
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    ring_on(&runtime(), actors, hops, Placement::Tasks, || {})
}

/// The ring with every other actor in one group and the rest on tasks of their own (a room in a
/// group beside players' sessions on tasks): every hop crosses between the two (ours only).
pub fn mixed_ring(actors: usize, hops: u64) -> BenchResult<f64> {
    ring_on(&runtime(), actors, hops, Placement::Mixed, || {})
}

/// Where the ring's actors run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// A tokio task each.
    Tasks,
    /// All in one group.
    Group,
    /// The even-numbered ones in one group, the others a tokio task each.
    Mixed,
}

/// The ring workload on `rt`, with the actors placed as `placement` says; `at_start` runs on the
/// runtime right before the token is sent (`sched_probe` reads tokio's counters there).
pub fn ring_on(
    rt: &tokio::runtime::Runtime,
    actors: usize,
    hops: u64,
    placement: Placement,
    at_start: impl FnOnce(),
) -> BenchResult<f64> {
    rt.block_on(async {
        let sys = system();
        let group = group_if(&sys, placement != Placement::Tasks);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut nodes = Vec::with_capacity(actors);
        for i in 0..actors {
            let tx = tx.clone();
            let in_group =
                placement == Placement::Group || (placement == Placement::Mixed && i % 2 == 0);
            nodes.push(
                sys.spawn(placed(
                    P::new(move || Node {
                        next: None,
                        done: tx.clone(),
                    }),
                    if in_group { &group } else { &None },
                ))
                .map_err(|e| e.to_string())?,
            );
        }
        for i in 0..actors {
            nodes[i].tell(RingMsg::Next(nodes[(i + 1) % actors].clone()));
        }
        // Let the wiring settle before timing.
        tokio::time::sleep(Duration::from_millis(20)).await;
        at_start();
        let start = Instant::now();
        nodes[0].tell(RingMsg::Token(hops));
        rx.recv().await.ok_or("ring dropped the token")?;
        let elapsed = start.elapsed();
        Ok(rate(hops, elapsed))
    })
}

// ---------- ask latency ----------

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    // The asker is a task on the runtime, like an actor or a session asking another actor.
    crate::on_worker(async move {
        let sys = system();
        let c = sys
            .spawn(P::new(Counter::default))
            .map_err(|e| e.to_string())?;
        let mut h = histogram();
        for i in 0..n {
            c.tell(CounterMsg::Inc);
            let start = Instant::now();
            let got = c.ask(CounterMsg::Get).await.map_err(|e| e.to_string())?;
            let _ = h.record(start.elapsed().as_nanos() as u64);
            verify("ask answer", got, i + 1)?;
        }
        Ok(percentiles(&h))
    })
}

// ---------- spawn ----------

struct Idle {
    _state: u64,
}

impl Actor for Idle {
    type Msg = u64;
    async fn handle(&mut self, msg: u64, _ctx: &mut Context<Self>) -> ActorResult {
        self._state = msg;
        Ok(())
    }
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    spawn_in(n, false)
}

fn spawn_in(n: usize, grouped: bool) -> BenchResult<SpawnStats> {
    // Spawned from a task on the runtime, as an actor or a session task spawns actors
    // (actix spawns from its own runtime's thread too).
    crate::on_worker(async move {
        let sys = system();
        let group = group_if(&sys, grouped);
        let before = rss_bytes();
        let start = Instant::now();
        let mut refs = Vec::with_capacity(n);
        for i in 0..n {
            refs.push(
                sys.spawn(placed(P::new(move || Idle { _state: i as u64 }), &group))
                    .map_err(|e| e.to_string())?,
            );
        }
        let spawned = start.elapsed();
        // Let every actor start and go idle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        verify("live actors", sys.actor_count() as u64, n as u64)?;
        let after = rss_bytes();
        let start = Instant::now();
        for r in &refs {
            r.stop();
        }
        for r in &refs {
            r.wait_for_stop().await;
        }
        let stopped = start.elapsed();
        verify("live actors after stop", sys.actor_count() as u64, 0)?;
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}

// ---------- big ----------

struct Pinger {
    index: usize,
    peers: Arc<Vec<ActorRef<BigMsg>>>,
    pings_left: u64,
    rng: Rng,
    done: mpsc::UnboundedSender<u64>,
    pongs: u64,
}

enum BigMsg {
    Peers(Arc<Vec<ActorRef<BigMsg>>>),
    Start,
    Ping(usize),
    Pong,
}

impl Pinger {
    fn ping_someone(&mut self) {
        let to = self.rng.below(self.peers.len());
        self.peers[to].tell(BigMsg::Ping(self.index));
    }
}

impl Actor for Pinger {
    type Msg = BigMsg;
    async fn handle(&mut self, msg: BigMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            BigMsg::Peers(p) => self.peers = p,
            BigMsg::Start => self.ping_someone(),
            BigMsg::Ping(from) => self.peers[from].tell(BigMsg::Pong),
            BigMsg::Pong => {
                self.pongs += 1;
                self.pings_left -= 1;
                if self.pings_left == 0 {
                    let _ = self.done.send(self.pongs);
                } else {
                    self.ping_someone();
                }
            }
        }
        Ok(())
    }
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    big_in(actors, pings, false)
}

fn big_in(actors: usize, pings: u64, grouped: bool) -> BenchResult<f64> {
    runtime().block_on(async {
        let sys = system();
        let group = group_if(&sys, grouped);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut refs = Vec::with_capacity(actors);
        for index in 0..actors {
            let tx = tx.clone();
            refs.push(
                sys.spawn(placed(
                    P::new(move || Pinger {
                        index,
                        peers: Arc::new(Vec::new()),
                        pings_left: pings,
                        rng: Rng(index as u64 * 7919 + 1),
                        done: tx.clone(),
                        pongs: 0,
                    })
                    .mailbox(MailboxConfig::unbounded()),
                    &group,
                ))
                .map_err(|e| e.to_string())?,
            );
        }
        let all = Arc::new(refs.clone());
        for r in &refs {
            r.tell(BigMsg::Peers(all.clone()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let start = Instant::now();
        for r in &refs {
            r.tell(BigMsg::Start);
        }
        let mut total = 0;
        for _ in 0..actors {
            total += rx.recv().await.ok_or("a pinger vanished")?;
        }
        let elapsed = start.elapsed();
        verify("pongs", total, actors as u64 * pings)?;
        // The Arc<Vec<ActorRef>> cycle is broken by shutdown.
        sys.shutdown(Duration::from_secs(5)).await;
        Ok(rate(total * 2, elapsed))
    })
}

// ---------- bounded mailboxes (ours only) ----------

/// The counting workload on a bounded mailbox: `(tell rate, send rate)`. The tell rate uses a
/// capacity of `n + 1` (the lane never refuses: the cost of a bounded push); the send rate uses a
/// capacity of 1,024 and `send().await`, so the sender waits for room (backpressure).
pub fn bounded(n: u64) -> BenchResult<(f64, f64)> {
    runtime().block_on(async {
        let sys = system();
        // Room for the `n` tells and the count's ask after them: the actor may not have taken
        // one message yet when the ask comes (a lane of exactly `n` then refuses it as full).
        let capacity = usize::try_from(n + 1).map_err(|e| e.to_string())?;
        let c = sys
            .spawn(
                P::new(Counter::default).mailbox(MailboxConfig::bounded(capacity, Overflow::Fail)),
            )
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for _ in 0..n {
            c.try_tell(CounterMsg::Inc).map_err(|e| e.to_string())?;
        }
        let total = count_of(&c).await?;
        let tell = rate(n, start.elapsed());
        verify("count (tell)", total, n)?;

        let c = sys
            .spawn(P::new(Counter::default).mailbox(MailboxConfig::bounded(1_024, Overflow::Fail)))
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for _ in 0..n {
            c.send(CounterMsg::Inc).await.map_err(|e| e.to_string())?;
        }
        // The lane may still be full here: the count's request waits for room like the sends
        // (an ask refuses a full mailbox at once).
        let (reply, answer) = Reply::channel(&sys);
        c.send(CounterMsg::Get(reply))
            .await
            .map_err(|_| "the counter stopped".to_string())?;
        let total = tokio::time::timeout(Duration::from_secs(600), answer)
            .await
            .map_err(|_| "no count within 600 s".to_string())?
            .map_err(|_| "the count's reply port was dropped".to_string())?;
        let send = rate(n, start.elapsed());
        verify("count (send)", total, n)?;
        Ok((tell, send))
    })
}

// ---------- conflating mailboxes (ours only) ----------

/// A position update for one of `entities` entities, or the final report.
enum Track {
    Position { entity: u64, seq: u64 },
    Report(Reply<(Vec<u64>, u64)>),
}

/// Keeps the latest update per entity, as a room keeps its players' positions.
struct Tracker {
    latest: Vec<u64>,
    handled: u64,
}

impl Actor for Tracker {
    type Msg = Track;
    async fn handle(&mut self, msg: Track, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Track::Position { entity, seq } => {
                if let Some(slot) = usize::try_from(entity)
                    .ok()
                    .and_then(|e| self.latest.get_mut(e))
                {
                    *slot = seq;
                }
                self.handled += 1;
            }
            Track::Report(r) => r.send((std::mem::take(&mut self.latest), self.handled)),
        }
        Ok(())
    }
}

/// A conflating mailbox: one sender tells `n` position updates, round robin over `entities`
/// entities (update `i` is entity `i % entities`, sequence number `i + 1`), to one actor that keeps
/// the latest per entity; then asks for them. Verifies that every entity ends at its last update
/// and that every update was handled or conflated (replaced in the queue by a newer one).
/// `(updates per second, share of updates conflated in percent)`.
pub fn conflating(n: u64, entities: u64) -> BenchResult<(f64, f64)> {
    runtime().block_on(async {
        let sys = system();
        let slots = usize::try_from(entities).map_err(|e| e.to_string())?;
        let tracker = sys
            .spawn(
                P::new(move || Tracker {
                    latest: vec![0; slots],
                    handled: 0,
                })
                .mailbox(MailboxConfig::conflating(|m: &Track| match m {
                    Track::Position { entity, .. } => Some(*entity),
                    Track::Report(_) => None,
                })),
            )
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for i in 0..n {
            tracker.tell(Track::Position {
                entity: i % entities,
                seq: i + 1,
            });
        }
        let (latest, handled) = tracker
            .ask_timeout(Track::Report, Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        verify("entities reported", latest.len() as u64, entities)?;
        for (entity, &seq) in (0..entities).zip(&latest) {
            // The last update of `entity` is the largest i < n with i % entities == entity.
            let expected = if entity < n {
                (n - 1 - entity) / entities * entities + entity + 1
            } else {
                0
            };
            verify("latest position", seq, expected)?;
        }
        let conflated = tracker.stats().map_or(0, |s| s.conflated) as u64;
        verify("handled + conflated", handled + conflated, n)?;
        Ok((rate(n, elapsed), conflated as f64 * 100.0 / n as f64))
    })
}

// ---------- priority latency (ours only) ----------

enum Prio {
    Urgent(Instant),
    Bulk,
    Report(Reply<(hdrhistogram::Histogram<u64>, u64)>),
}

struct Flooded {
    latencies: hdrhistogram::Histogram<u64>,
    bulk: u64,
}

impl Actor for Flooded {
    type Msg = Prio;
    async fn handle(&mut self, msg: Prio, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Prio::Urgent(sent) => {
                let _ = self.latencies.record(sent.elapsed().as_nanos() as u64);
            }
            Prio::Bulk => self.bulk += 1,
            Prio::Report(r) => r.send((self.latencies.clone(), self.bulk)),
        }
        Ok(())
    }
}

/// Latency of top-class messages to an actor flooded with low-class ones: `probes` urgent
/// messages, one per millisecond, while another task keeps the bulk class full.
pub fn priority_latency(probes: u64) -> BenchResult<Percentiles> {
    runtime().block_on(async {
        let sys = system();
        // Urgent probes are class 0; bulk and the final report are class 1, so the report is
        // handled after every bulk message sent before it.
        let cfg =
            MailboxConfig::priority(|m: &Prio| usize::from(!matches!(m, Prio::Urgent(_))), &[1]);
        let actor = sys
            .spawn(
                P::new(|| Flooded {
                    latencies: histogram(),
                    bulk: 0,
                })
                .mailbox(cfg),
            )
            .map_err(|e| e.to_string())?;
        let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flood = {
            let (actor, flooding) = (actor.clone(), flooding.clone());
            tokio::spawn(async move {
                let mut sent = 0u64;
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    // Keep about 10,000 bulk messages queued ahead of every probe.
                    if actor.stats().map_or(0, |s| s.mailbox_depth) < 10_000 {
                        for _ in 0..1_000 {
                            actor.tell(Prio::Bulk);
                        }
                        sent += 1_000;
                    }
                    tokio::task::yield_now().await;
                }
                sent
            })
        };
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for _ in 0..probes {
            tick.tick().await;
            actor.tell(Prio::Urgent(Instant::now()));
        }
        flooding.store(false, std::sync::atomic::Ordering::Relaxed);
        let bulk_sent = flood.await.map_err(|e| e.to_string())?;
        let (h, bulk) = actor
            .ask_timeout(Prio::Report, Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        verify("urgent messages handled", h.len(), probes)?;
        verify("bulk messages handled", bulk, bulk_sent)?;
        Ok(percentiles(&h))
    })
}

// ---------- timer jitter (ours only) ----------

struct Ticking {
    period: Duration,
    origin: Option<Instant>,
    lateness_us: Vec<u32>,
}

enum TickMsg {
    Tick,
    Samples(Reply<Vec<u32>>),
}

impl Actor for Ticking {
    type Msg = TickMsg;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.origin = Some(Instant::now());
        ctx.send_interval("tick", self.period, || TickMsg::Tick);
        Ok(())
    }
    async fn handle(&mut self, msg: TickMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            TickMsg::Tick => {
                let origin = self.origin.ok_or("not started")?;
                // Lateness against the fixed-rate grid origin + k * period.
                let since = origin.elapsed().as_nanos();
                let period = self.period.as_nanos();
                let late_ns = since % period;
                self.lateness_us.push((late_ns / 1_000) as u32);
            }
            TickMsg::Samples(r) => r.send(std::mem::take(&mut self.lateness_us)),
        }
        Ok(())
    }
}

/// Timer jitter and CPU share: `actors` actors ticking every `period` for `run`.
pub fn timer_jitter(
    actors: usize,
    period: Duration,
    run: Duration,
) -> BenchResult<(Percentiles, f64)> {
    runtime().block_on(async {
        let sys = system();
        let mut refs = Vec::with_capacity(actors);
        for _ in 0..actors {
            refs.push(
                sys.spawn(P::new(move || Ticking {
                    period,
                    origin: None,
                    lateness_us: Vec::new(),
                }))
                .map_err(|e| e.to_string())?,
            );
        }
        // Warm up one period, then measure.
        tokio::time::sleep(period * 2).await;
        for r in &refs {
            r.ask(TickMsg::Samples).await.map_err(|e| e.to_string())?;
        }
        let cpu0 = crate::cpu_time();
        let t0 = Instant::now();
        tokio::time::sleep(run).await;
        let wall = t0.elapsed();
        let cpu = crate::cpu_time().saturating_sub(cpu0);
        let mut samples = Vec::with_capacity(refs.len());
        for r in &refs {
            samples.push(r.ask(TickMsg::Samples).await.map_err(|e| e.to_string())?);
        }
        sys.shutdown(Duration::from_secs(5)).await;
        crate::tick_summary(samples, actors, period, wall, cpu)
    })
}
