//! ractor 0.16 with its default features: `cast` for tells, `call` for asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};

use super::Framework;
use crate::{
    BenchResult, Percentiles, Rng, SpawnStats, histogram, percentiles, rate, rss_bytes,
    run_senders, runtime, verify,
};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "ractor",
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

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn ask(c: &ActorRef<CounterMsg>) -> BenchResult<u64> {
    match c
        .call(CounterMsg::Get, Some(Duration::from_secs(600)))
        .await
        .map_err(err)?
    {
        CallResult::Success(v) => Ok(v),
        _ => Err("call failed".into()),
    }
}

// ---------- ping-pong ----------

struct Player;

struct PlayerState {
    peer: Option<ActorRef<Ball>>,
    limit: u64,
    done: Option<oneshot::Sender<u64>>,
    pinger: bool,
}

enum Ball {
    Peer(ActorRef<Ball>),
    Hit(u64),
}

impl Actor for Player {
    type Msg = Ball;
    type State = PlayerState;
    type Arguments = PlayerState;
    async fn pre_start(
        &self,
        _me: ActorRef<Ball>,
        args: PlayerState,
    ) -> Result<PlayerState, ActorProcessingErr> {
        Ok(args)
    }
    async fn handle(
        &self,
        _me: ActorRef<Ball>,
        msg: Ball,
        s: &mut PlayerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Ball::Peer(p) => s.peer = Some(p),
            Ball::Hit(n) => {
                let peer = s.peer.as_ref().ok_or("no peer")?;
                if !s.pinger {
                    peer.cast(Ball::Hit(n))?;
                } else if n == s.limit {
                    if let Some(d) = s.done.take() {
                        let _ = d.send(n);
                    }
                } else {
                    peer.cast(Ball::Hit(n + 1))?;
                }
            }
        }
        Ok(())
    }
}

fn pingpong(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, rx) = oneshot::channel();
        let (ping, _) = Actor::spawn(
            None,
            Player,
            PlayerState {
                peer: None,
                limit: n,
                done: Some(tx),
                pinger: true,
            },
        )
        .await
        .map_err(err)?;
        let (pong, _) = Actor::spawn(
            None,
            Player,
            PlayerState {
                peer: None,
                limit: 0,
                done: None,
                pinger: false,
            },
        )
        .await
        .map_err(err)?;
        ping.cast(Ball::Peer(pong.clone())).map_err(err)?;
        pong.cast(Ball::Peer(ping.clone())).map_err(err)?;
        let start = Instant::now();
        ping.cast(Ball::Hit(0)).map_err(err)?;
        let got = rx.await.map_err(err)?;
        let elapsed = start.elapsed();
        verify("round trips", got, n)?;
        ping.stop(None);
        pong.stop(None);
        Ok(rate(n, elapsed))
    })
}

// ---------- counting / fan-out / ask ----------

struct Counter;

enum CounterMsg {
    Inc,
    Get(RpcReplyPort<u64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _me: ActorRef<CounterMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(
        &self,
        _me: ActorRef<CounterMsg>,
        msg: CounterMsg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Inc => *count += 1,
            CounterMsg::Get(r) => {
                let _ = r.send(*count);
            }
        }
        Ok(())
    }
}

fn counting(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (c, _) = Actor::spawn(None, Counter, ()).await.map_err(err)?;
        let start = Instant::now();
        for _ in 0..n {
            c.cast(CounterMsg::Inc).map_err(err)?;
        }
        let total = ask(&c).await?;
        let elapsed = start.elapsed();
        verify("count", total, n)?;
        c.stop(None);
        Ok(rate(n, elapsed))
    })
}

fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let (c, _) = Actor::spawn(None, Counter, ()).await.map_err(err)?;
        let per = n / senders as u64;
        let start = Instant::now();
        run_senders(senders, per, &c, |c| {
            c.cast(CounterMsg::Inc).map_err(err)?;
            Ok(())
        })
        .await?;
        let total = ask(&c).await?;
        let elapsed = start.elapsed();
        verify("count", total, per * senders as u64)?;
        c.stop(None);
        Ok(rate(per * senders as u64, elapsed))
    })
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let mut refs = Vec::new();
        for _ in 0..receivers {
            refs.push(Actor::spawn(None, Counter, ()).await.map_err(err)?.0);
        }
        let start = Instant::now();
        for i in 0..n {
            refs[(i % receivers as u64) as usize]
                .cast(CounterMsg::Inc)
                .map_err(err)?;
        }
        let mut total = 0;
        for r in &refs {
            total += ask(r).await?;
        }
        let elapsed = start.elapsed();
        verify("fan-out total", total, n)?;
        for r in &refs {
            r.stop(None);
        }
        Ok(rate(n, elapsed))
    })
}

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    // The asker is a task on the runtime, like an actor or a session asking another actor.
    crate::on_worker(async move {
        let (c, _) = Actor::spawn(None, Counter, ()).await.map_err(err)?;
        let mut h = histogram();
        for i in 0..n {
            c.cast(CounterMsg::Inc).map_err(err)?;
            let start = Instant::now();
            let got = ask(&c).await?;
            let _ = h.record(start.elapsed().as_nanos() as u64);
            verify("ask answer", got, i + 1)?;
        }
        c.stop(None);
        Ok(percentiles(&h))
    })
}

// ---------- ring ----------

struct Node;

struct NodeState {
    next: Option<ActorRef<RingMsg>>,
    done: mpsc::UnboundedSender<()>,
}

enum RingMsg {
    Next(ActorRef<RingMsg>),
    Token(u64),
}

impl Actor for Node {
    type Msg = RingMsg;
    type State = NodeState;
    type Arguments = NodeState;
    async fn pre_start(
        &self,
        _me: ActorRef<RingMsg>,
        args: NodeState,
    ) -> Result<NodeState, ActorProcessingErr> {
        Ok(args)
    }
    async fn handle(
        &self,
        _me: ActorRef<RingMsg>,
        msg: RingMsg,
        s: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RingMsg::Next(n) => s.next = Some(n),
            RingMsg::Token(0) => {
                let _ = s.done.send(());
            }
            RingMsg::Token(left) => s
                .next
                .as_ref()
                .ok_or("ring not closed")?
                .cast(RingMsg::Token(left - 1))?,
        }
        Ok(())
    }
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut nodes = Vec::with_capacity(actors);
        for _ in 0..actors {
            nodes.push(
                Actor::spawn(
                    None,
                    Node,
                    NodeState {
                        next: None,
                        done: tx.clone(),
                    },
                )
                .await
                .map_err(err)?
                .0,
            );
        }
        for i in 0..actors {
            nodes[i]
                .cast(RingMsg::Next(nodes[(i + 1) % actors].clone()))
                .map_err(err)?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let start = Instant::now();
        nodes[0].cast(RingMsg::Token(hops)).map_err(err)?;
        rx.recv().await.ok_or("ring dropped the token")?;
        let elapsed = start.elapsed();
        for n in &nodes {
            n.stop(None);
        }
        Ok(rate(hops, elapsed))
    })
}

// ---------- spawn ----------

struct Idle;

impl Actor for Idle {
    type Msg = u64;
    type State = u64;
    type Arguments = u64;
    async fn pre_start(&self, _me: ActorRef<u64>, args: u64) -> Result<u64, ActorProcessingErr> {
        Ok(args)
    }
    async fn handle(
        &self,
        _me: ActorRef<u64>,
        msg: u64,
        s: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        *s = msg;
        Ok(())
    }
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    // Spawned from a task on the runtime, as an actor or a session task spawns actors
    // (actix spawns from its own runtime's thread too).
    crate::on_worker(async move {
        let before = rss_bytes();
        let start = Instant::now();
        let mut actors = Vec::with_capacity(n);
        for i in 0..n {
            actors.push(Actor::spawn(None, Idle, i as u64).await.map_err(err)?);
        }
        let spawned = start.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let start = Instant::now();
        for (r, _) in &actors {
            r.stop(None);
        }
        let mut ended = 0u64;
        for (_, h) in actors {
            if h.await.is_ok() {
                ended += 1;
            }
        }
        let stopped = start.elapsed();
        verify("stopped actors", ended, n as u64)?;
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}

// ---------- big ----------

struct Pinger;

struct PingerState {
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

impl PingerState {
    fn ping_someone(&mut self) -> Result<(), ActorProcessingErr> {
        let to = self.rng.below(self.peers.len());
        self.peers[to].cast(BigMsg::Ping(self.index))?;
        Ok(())
    }
}

impl Actor for Pinger {
    type Msg = BigMsg;
    type State = PingerState;
    type Arguments = PingerState;
    async fn pre_start(
        &self,
        _me: ActorRef<BigMsg>,
        args: PingerState,
    ) -> Result<PingerState, ActorProcessingErr> {
        Ok(args)
    }
    async fn handle(
        &self,
        _me: ActorRef<BigMsg>,
        msg: BigMsg,
        s: &mut PingerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BigMsg::Peers(p) => s.peers = p,
            BigMsg::Start => s.ping_someone()?,
            BigMsg::Ping(from) => s.peers[from].cast(BigMsg::Pong)?,
            BigMsg::Pong => {
                s.pongs += 1;
                s.pings_left -= 1;
                if s.pings_left == 0 {
                    let _ = s.done.send(s.pongs);
                } else {
                    s.ping_someone()?;
                }
            }
        }
        Ok(())
    }
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut refs = Vec::with_capacity(actors);
        for index in 0..actors {
            let state = PingerState {
                index,
                peers: Arc::new(Vec::new()),
                pings_left: pings,
                rng: Rng(index as u64 * 7919 + 1),
                done: tx.clone(),
                pongs: 0,
            };
            refs.push(Actor::spawn(None, Pinger, state).await.map_err(err)?.0);
        }
        let all = Arc::new(refs.clone());
        for r in &refs {
            r.cast(BigMsg::Peers(all.clone())).map_err(err)?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let start = Instant::now();
        for r in &refs {
            r.cast(BigMsg::Start).map_err(err)?;
        }
        let mut total = 0;
        for _ in 0..actors {
            total += rx.recv().await.ok_or("a pinger vanished")?;
        }
        let elapsed = start.elapsed();
        verify("pongs", total, actors as u64 * pings)?;
        for r in &refs {
            r.stop(None);
        }
        Ok(rate(total * 2, elapsed))
    })
}
