//! kameo 0.22: one `Message<T>` impl per message type, `tell(..).try_send()` for tells,
//! `ask(..).await` for asks, unbounded mailboxes (kameo's default is bounded to 64, which would
//! make a tell from outside wait; unbounded matches the other frameworks' defaults).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::message::{Context, Message};
use tokio::sync::{mpsc, oneshot};

use super::Framework;
use crate::{
    BenchResult, Percentiles, Rng, SpawnStats, histogram, percentiles, rate, rss_bytes,
    run_senders, runtime, verify,
};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "kameo",
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

fn start<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn_with_mailbox(actor, kameo::mailbox::unbounded())
}

macro_rules! plain_actor {
    ($t:ty) => {
        impl Actor for $t {
            type Args = Self;
            type Error = std::convert::Infallible;
            async fn on_start(args: Self, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
                Ok(args)
            }
        }
    };
}

// ---------- ping-pong ----------

struct Player {
    peer: Option<ActorRef<Player>>,
    limit: u64,
    done: Option<oneshot::Sender<u64>>,
    pinger: bool,
}
plain_actor!(Player);

struct Peer(ActorRef<Player>);
struct Hit(u64);

impl Message<Peer> for Player {
    type Reply = ();
    async fn handle(&mut self, msg: Peer, _ctx: &mut Context<Self, ()>) {
        self.peer = Some(msg.0);
    }
}

impl Message<Hit> for Player {
    type Reply = ();
    async fn handle(&mut self, Hit(n): Hit, _ctx: &mut Context<Self, ()>) {
        let Some(peer) = &self.peer else { return };
        if !self.pinger {
            let _ = peer.tell(Hit(n)).try_send();
        } else if n == self.limit {
            if let Some(d) = self.done.take() {
                let _ = d.send(n);
            }
        } else {
            let _ = peer.tell(Hit(n + 1)).try_send();
        }
    }
}

fn pingpong(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, rx) = oneshot::channel();
        let ping = start(Player {
            peer: None,
            limit: n,
            done: Some(tx),
            pinger: true,
        });
        let pong = start(Player {
            peer: None,
            limit: 0,
            done: None,
            pinger: false,
        });
        ping.tell(Peer(pong.clone())).await.map_err(err)?;
        pong.tell(Peer(ping.clone())).await.map_err(err)?;
        let t0 = Instant::now();
        ping.tell(Hit(0)).await.map_err(err)?;
        let got = rx.await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("round trips", got, n)?;
        ping.kill();
        pong.kill();
        Ok(rate(n, elapsed))
    })
}

// ---------- counting / fan-out / ask ----------

#[derive(Default)]
struct Counter {
    count: u64,
}
plain_actor!(Counter);

struct Inc;
struct Get;

impl Message<Inc> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Inc, _ctx: &mut Context<Self, ()>) {
        self.count += 1;
    }
}

impl Message<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Get, _ctx: &mut Context<Self, u64>) -> u64 {
        self.count
    }
}

fn counting(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let c = start(Counter::default());
        let t0 = Instant::now();
        for _ in 0..n {
            c.tell(Inc).try_send().map_err(err)?;
        }
        let total = c.ask(Get).await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("count", total, n)?;
        c.kill();
        Ok(rate(n, elapsed))
    })
}

fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let c = start(Counter::default());
        let per = n / senders as u64;
        let t0 = Instant::now();
        run_senders(senders, per, &c, |c| {
            c.tell(Inc).try_send().map_err(err)?;
            Ok(())
        })
        .await?;
        let total = c.ask(Get).await.map_err(err)?;
        let elapsed = t0.elapsed();
        verify("count", total, per * senders as u64)?;
        c.kill();
        Ok(rate(per * senders as u64, elapsed))
    })
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let refs: Vec<_> = (0..receivers).map(|_| start(Counter::default())).collect();
        let t0 = Instant::now();
        for i in 0..n {
            refs[(i % receivers as u64) as usize]
                .tell(Inc)
                .try_send()
                .map_err(err)?;
        }
        let mut total = 0;
        for r in &refs {
            total += r.ask(Get).await.map_err(err)?;
        }
        let elapsed = t0.elapsed();
        verify("fan-out total", total, n)?;
        for r in &refs {
            r.kill();
        }
        Ok(rate(n, elapsed))
    })
}

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    // The asker is a task on the runtime, like an actor or a session asking another actor.
    crate::on_worker(async move {
        let c = start(Counter::default());
        let mut h = histogram();
        for i in 0..n {
            c.tell(Inc).try_send().map_err(err)?;
            let t0 = Instant::now();
            let got = c.ask(Get).await.map_err(err)?;
            let _ = h.record(t0.elapsed().as_nanos() as u64);
            verify("ask answer", got, i + 1)?;
        }
        c.kill();
        Ok(percentiles(&h))
    })
}

// ---------- ring ----------

struct Node {
    next: Option<ActorRef<Node>>,
    done: mpsc::UnboundedSender<()>,
}
plain_actor!(Node);

struct Next(ActorRef<Node>);
struct Token(u64);

impl Message<Next> for Node {
    type Reply = ();
    async fn handle(&mut self, msg: Next, _ctx: &mut Context<Self, ()>) {
        self.next = Some(msg.0);
    }
}

impl Message<Token> for Node {
    type Reply = ();
    async fn handle(&mut self, Token(left): Token, _ctx: &mut Context<Self, ()>) {
        if left == 0 {
            let _ = self.done.send(());
        } else if let Some(next) = &self.next {
            let _ = next.tell(Token(left - 1)).try_send();
        }
    }
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let nodes: Vec<_> = (0..actors)
            .map(|_| {
                start(Node {
                    next: None,
                    done: tx.clone(),
                })
            })
            .collect();
        for i in 0..actors {
            nodes[i]
                .tell(Next(nodes[(i + 1) % actors].clone()))
                .await
                .map_err(err)?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        nodes[0].tell(Token(hops)).await.map_err(err)?;
        rx.recv().await.ok_or("ring dropped the token")?;
        let elapsed = t0.elapsed();
        for n in &nodes {
            n.kill();
        }
        Ok(rate(hops, elapsed))
    })
}

// ---------- spawn ----------

struct Idle {
    state: u64,
}
plain_actor!(Idle);

impl Message<u64> for Idle {
    type Reply = ();
    async fn handle(&mut self, msg: u64, _ctx: &mut Context<Self, ()>) {
        self.state = msg;
    }
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    // Spawned from a task on the runtime, as an actor or a session task spawns actors
    // (actix spawns from its own runtime's thread too).
    crate::on_worker(async move {
        let before = rss_bytes();
        let t0 = Instant::now();
        let refs: Vec<_> = (0..n).map(|i| start(Idle { state: i as u64 })).collect();
        let spawned = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let t0 = Instant::now();
        for r in &refs {
            r.stop_gracefully().await.map_err(err)?;
        }
        for r in &refs {
            r.wait_for_shutdown().await;
        }
        let stopped = t0.elapsed();
        let alive = refs.iter().filter(|r| r.is_alive()).count() as u64;
        verify("alive after stop", alive, 0)?;
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}

// ---------- big ----------

struct Pinger {
    index: usize,
    peers: Arc<Vec<ActorRef<Pinger>>>,
    pings_left: u64,
    rng: Rng,
    done: mpsc::UnboundedSender<u64>,
    pongs: u64,
}
plain_actor!(Pinger);

struct Peers(Arc<Vec<ActorRef<Pinger>>>);
struct Start;
struct Ping(usize);
struct Pong;

impl Pinger {
    fn ping_someone(&mut self) {
        let to = self.rng.below(self.peers.len());
        let _ = self.peers[to].tell(Ping(self.index)).try_send();
    }
}

impl Message<Peers> for Pinger {
    type Reply = ();
    async fn handle(&mut self, msg: Peers, _ctx: &mut Context<Self, ()>) {
        self.peers = msg.0;
    }
}

impl Message<Start> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _: Start, _ctx: &mut Context<Self, ()>) {
        self.ping_someone();
    }
}

impl Message<Ping> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Ping(from): Ping, _ctx: &mut Context<Self, ()>) {
        let _ = self.peers[from].tell(Pong).try_send();
    }
}

impl Message<Pong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _: Pong, _ctx: &mut Context<Self, ()>) {
        self.pongs += 1;
        self.pings_left -= 1;
        if self.pings_left == 0 {
            let _ = self.done.send(self.pongs);
        } else {
            self.ping_someone();
        }
    }
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let refs: Vec<_> = (0..actors)
            .map(|index| {
                start(Pinger {
                    index,
                    peers: Arc::new(Vec::new()),
                    pings_left: pings,
                    rng: Rng(index as u64 * 7919 + 1),
                    done: tx.clone(),
                    pongs: 0,
                })
            })
            .collect();
        let all = Arc::new(refs.clone());
        for r in &refs {
            r.tell(Peers(all.clone())).await.map_err(err)?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        for r in &refs {
            r.tell(Start).await.map_err(err)?;
        }
        let mut total = 0;
        for _ in 0..actors {
            total += rx.recv().await.ok_or("a pinger vanished")?;
        }
        let elapsed = t0.elapsed();
        verify("pongs", total, actors as u64 * pings)?;
        for r in &refs {
            r.kill();
        }
        Ok(rate(total * 2, elapsed))
    })
}
