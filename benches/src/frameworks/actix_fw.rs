//! actix 0.13: `Handler<M>` per message, `do_send` for tells, `send(..).await` for asks, actors on
//! the default `System` arbiter (actix runs each arbiter on one thread; that is its normal setup).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::Framework;
use crate::{
    BenchResult, Percentiles, Rng, SpawnStats, histogram, percentiles, rate, rss_bytes, verify,
};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "actix",
        is_peer: true,
        pingpong: Some(pingpong),
        counting: Some(counting),
        fanout: Some(fanout),
        fanin: Some(fanin),
        ring: Some(ring),
        ask_latency: Some(ask_latency),
        spawn: Some(spawn),
        big: Some(big),
        timer_jitter: None,
    }
}

fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

fn run<T>(f: impl std::future::Future<Output = BenchResult<T>>) -> BenchResult<T> {
    System::new().block_on(f)
}

// ---------- ping-pong ----------

struct Player {
    peer: Option<Addr<Player>>,
    limit: u64,
    done: Option<oneshot::Sender<u64>>,
    pinger: bool,
}

impl Actor for Player {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Peer(Addr<Player>);

#[derive(Message)]
#[rtype(result = "()")]
struct Hit(u64);

impl Handler<Peer> for Player {
    type Result = ();
    fn handle(&mut self, msg: Peer, _ctx: &mut Context<Self>) {
        self.peer = Some(msg.0);
    }
}

impl Handler<Hit> for Player {
    type Result = ();
    fn handle(&mut self, Hit(n): Hit, _ctx: &mut Context<Self>) {
        let Some(peer) = &self.peer else { return };
        if !self.pinger {
            peer.do_send(Hit(n));
        } else if n == self.limit {
            if let Some(d) = self.done.take() {
                let _ = d.send(n);
            }
        } else {
            peer.do_send(Hit(n + 1));
        }
    }
}

fn pingpong(n: u64) -> BenchResult<f64> {
    run(async move {
        let (tx, rx) = oneshot::channel();
        let ping = Player {
            peer: None,
            limit: n,
            done: Some(tx),
            pinger: true,
        }
        .start();
        let pong = Player {
            peer: None,
            limit: 0,
            done: None,
            pinger: false,
        }
        .start();
        ping.do_send(Peer(pong.clone()));
        pong.do_send(Peer(ping.clone()));
        let t0 = Instant::now();
        ping.do_send(Hit(0));
        let got = rx.await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("round trips", got, n)?;
        Ok(rate(n, elapsed))
    })
}

// ---------- counting / fan-out / ask ----------

#[derive(Default)]
struct Counter {
    count: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Inc;

#[derive(Message)]
#[rtype(result = "u64")]
struct Get;

impl Handler<Inc> for Counter {
    type Result = ();
    fn handle(&mut self, _: Inc, _ctx: &mut Context<Self>) {
        self.count += 1;
    }
}

impl Handler<Get> for Counter {
    type Result = u64;
    fn handle(&mut self, _: Get, _ctx: &mut Context<Self>) -> u64 {
        self.count
    }
}

fn counting(n: u64) -> BenchResult<f64> {
    run(async move {
        let c = Counter::default().start();
        let t0 = Instant::now();
        for _ in 0..n {
            c.do_send(Inc);
        }
        let total = c.send(Get).await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("count", total, n)?;
        Ok(rate(n, elapsed))
    })
}

/// The senders are futures on the system's thread (actix runs its actors and their senders on
/// one thread unless arbiters are added), spawned together.
fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    run(async move {
        let c = Counter::default().start();
        let per = n / senders as u64;
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..senders)
            .map(|_| {
                let c = c.clone();
                actix::spawn(async move {
                    for _ in 0..per {
                        c.do_send(Inc);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(err)?;
        }
        let total = c.send(Get).await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("count", total, per * senders as u64)?;
        Ok(rate(per * senders as u64, elapsed))
    })
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    run(async move {
        let refs: Vec<_> = (0..receivers).map(|_| Counter::default().start()).collect();
        let t0 = Instant::now();
        for i in 0..n {
            refs[(i % receivers as u64) as usize].do_send(Inc);
        }
        let mut total = 0;
        for r in &refs {
            total += r.send(Get).await.map_err(err)?;
        }
        let elapsed = t0.elapsed();
        verify("fan-out total", total, n)?;
        Ok(rate(n, elapsed))
    })
}

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    run(async move {
        let c = Counter::default().start();
        let mut h = histogram();
        for i in 0..n {
            c.do_send(Inc);
            let t0 = Instant::now();
            let got = c.send(Get).await.map_err(err)?;
            let _ = h.record(t0.elapsed().as_nanos() as u64);
            verify("ask answer", got, i + 1)?;
        }
        Ok(percentiles(&h))
    })
}

// ---------- ring ----------

struct Node {
    next: Option<Addr<Node>>,
    done: mpsc::UnboundedSender<()>,
}

impl Actor for Node {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Next(Addr<Node>);

#[derive(Message)]
#[rtype(result = "()")]
struct Token(u64);

impl Handler<Next> for Node {
    type Result = ();
    fn handle(&mut self, msg: Next, _ctx: &mut Context<Self>) {
        self.next = Some(msg.0);
    }
}

impl Handler<Token> for Node {
    type Result = ();
    fn handle(&mut self, Token(left): Token, _ctx: &mut Context<Self>) {
        if left == 0 {
            let _ = self.done.send(());
        } else if let Some(next) = &self.next {
            next.do_send(Token(left - 1));
        }
    }
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    run(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let nodes: Vec<_> = (0..actors)
            .map(|_| {
                Node {
                    next: None,
                    done: tx.clone(),
                }
                .start()
            })
            .collect();
        for i in 0..actors {
            nodes[i].do_send(Next(nodes[(i + 1) % actors].clone()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        nodes[0].do_send(Token(hops));
        rx.recv().await.ok_or("ring dropped the token")?;
        Ok(rate(hops, t0.elapsed()))
    })
}

// ---------- spawn ----------

struct Idle {
    state: u64,
    ended: mpsc::UnboundedSender<()>,
}

impl Actor for Idle {
    type Context = Context<Self>;
    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.ended.send(());
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Set(u64);

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Set> for Idle {
    type Result = ();
    fn handle(&mut self, Set(v): Set, _ctx: &mut Context<Self>) {
        self.state = v;
    }
}

impl Handler<Stop> for Idle {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    run(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let before = rss_bytes();
        let t0 = Instant::now();
        let refs: Vec<_> = (0..n)
            .map(|i| {
                Idle {
                    state: i as u64,
                    ended: tx.clone(),
                }
                .start()
            })
            .collect();
        let spawned = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let t0 = Instant::now();
        for r in &refs {
            r.do_send(Stop);
        }
        let mut ended = 0u64;
        while ended < n as u64 {
            rx.recv().await.ok_or("stop notifications ended early")?;
            ended += 1;
        }
        let stopped = t0.elapsed();
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}

// ---------- big ----------

struct Pinger {
    index: usize,
    peers: Arc<Vec<Addr<Pinger>>>,
    pings_left: u64,
    rng: Rng,
    done: mpsc::UnboundedSender<u64>,
    pongs: u64,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Peers(Arc<Vec<Addr<Pinger>>>);

#[derive(Message)]
#[rtype(result = "()")]
enum BigMsg {
    Start,
    Ping(usize),
    Pong,
}

impl Handler<Peers> for Pinger {
    type Result = ();
    fn handle(&mut self, msg: Peers, _ctx: &mut Context<Self>) {
        self.peers = msg.0;
    }
}

impl Pinger {
    fn ping_someone(&mut self) {
        let to = self.rng.below(self.peers.len());
        self.peers[to].do_send(BigMsg::Ping(self.index));
    }
}

impl Handler<BigMsg> for Pinger {
    type Result = ();
    fn handle(&mut self, msg: BigMsg, _ctx: &mut Context<Self>) {
        match msg {
            BigMsg::Start => self.ping_someone(),
            BigMsg::Ping(from) => self.peers[from].do_send(BigMsg::Pong),
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
    }
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    run(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let refs: Vec<_> = (0..actors)
            .map(|index| {
                Pinger {
                    index,
                    peers: Arc::new(Vec::new()),
                    pings_left: pings,
                    rng: Rng(index as u64 * 7919 + 1),
                    done: tx.clone(),
                    pongs: 0,
                }
                .start()
            })
            .collect();
        let all = Arc::new(refs.clone());
        for r in &refs {
            r.do_send(Peers(all.clone()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        for r in &refs {
            r.do_send(BigMsg::Start);
        }
        let mut total = 0;
        for _ in 0..actors {
            total += rx.recv().await.ok_or("a pinger vanished")?;
        }
        let elapsed = t0.elapsed();
        verify("pongs", total, actors as u64 * pings)?;
        Ok(rate(total * 2, elapsed))
    })
}
