//! Limit baseline, not a framework: each "actor" is a tokio task looping over an unbounded
//! `tokio::sync::mpsc` channel, asks carry a `oneshot`. No supervision, no lifecycle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Framework;
use crate::{
    BenchResult, Percentiles, Rng, SpawnStats, histogram, percentiles, rate, rss_bytes,
    run_senders, runtime, verify,
};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "tokio-mpsc",
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

type Tx<T> = mpsc::UnboundedSender<T>;

fn pingpong(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (to_pong, mut pong_rx) = mpsc::unbounded_channel::<u64>();
        let (to_ping, mut ping_rx) = mpsc::unbounded_channel::<u64>();
        tokio::spawn(async move {
            while let Some(v) = pong_rx.recv().await {
                if to_ping.send(v).is_err() {
                    break;
                }
            }
        });
        let (tx, rx) = oneshot::channel();
        let t0 = Instant::now();
        tokio::spawn(async move {
            let _ = to_pong.send(0);
            while let Some(v) = ping_rx.recv().await {
                if v == n {
                    let _ = tx.send(v);
                    break;
                }
                let _ = to_pong.send(v + 1);
            }
        });
        let got = rx.await.map_err(|e| e.to_string())?;
        let elapsed = t0.elapsed();
        verify("round trips", got, n)?;
        Ok(rate(n, elapsed))
    })
}

enum CounterMsg {
    Inc,
    Get(oneshot::Sender<u64>),
}

fn counter() -> Tx<CounterMsg> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut count = 0;
        while let Some(m) = rx.recv().await {
            match m {
                CounterMsg::Inc => count += 1,
                CounterMsg::Get(r) => {
                    let _ = r.send(count);
                }
            }
        }
    });
    tx
}

async fn get(c: &Tx<CounterMsg>) -> BenchResult<u64> {
    let (tx, rx) = oneshot::channel();
    c.send(CounterMsg::Get(tx)).map_err(|_| "counter gone")?;
    rx.await.map_err(|e| e.to_string())
}

fn counting(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let c = counter();
        let t0 = Instant::now();
        for _ in 0..n {
            c.send(CounterMsg::Inc).map_err(|_| "counter gone")?;
        }
        let total = get(&c).await?;
        let elapsed = t0.elapsed();
        verify("count", total, n)?;
        Ok(rate(n, elapsed))
    })
}

fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let c = counter();
        let per = n / senders as u64;
        let t0 = Instant::now();
        run_senders(senders, per, &c, |c| {
            c.send(CounterMsg::Inc).map_err(|_| "counter gone")?;
            Ok(())
        })
        .await?;
        let total = get(&c).await?;
        let elapsed = t0.elapsed();
        verify("count", total, per * senders as u64)?;
        Ok(rate(per * senders as u64, elapsed))
    })
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let refs: Vec<_> = (0..receivers).map(|_| counter()).collect();
        let t0 = Instant::now();
        for i in 0..n {
            refs[(i % receivers as u64) as usize]
                .send(CounterMsg::Inc)
                .map_err(|_| "counter gone")?;
        }
        let mut total = 0;
        for r in &refs {
            total += get(r).await?;
        }
        let elapsed = t0.elapsed();
        verify("fan-out total", total, n)?;
        Ok(rate(n, elapsed))
    })
}

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    // The asker is a task on the runtime, like an actor or a session asking another actor.
    crate::on_worker(async move {
        let c = counter();
        let mut h = histogram();
        for i in 0..n {
            c.send(CounterMsg::Inc).map_err(|_| "counter gone")?;
            let t0 = Instant::now();
            let got = get(&c).await?;
            let _ = h.record(t0.elapsed().as_nanos() as u64);
            verify("ask answer", got, i + 1)?;
        }
        Ok(percentiles(&h))
    })
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    ring_on(&runtime(), actors, hops, || {})
}

/// [`super::ours::ring_on`] for bare tokio tasks: the ring on `rt`, `at_start` called just
/// before the token goes round.
pub fn ring_on(
    rt: &tokio::runtime::Runtime,
    actors: usize,
    hops: u64,
    at_start: impl FnOnce(),
) -> BenchResult<f64> {
    rt.block_on(async {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
        let mut senders = Vec::with_capacity(actors);
        let mut receivers = Vec::with_capacity(actors);
        for _ in 0..actors {
            let (tx, rx) = mpsc::unbounded_channel::<u64>();
            senders.push(tx);
            receivers.push(rx);
        }
        for (i, mut rx) in receivers.into_iter().enumerate() {
            let next = senders[(i + 1) % actors].clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                while let Some(left) = rx.recv().await {
                    if left == 0 {
                        let _ = done.send(());
                    } else if next.send(left - 1).is_err() {
                        break;
                    }
                }
            });
        }
        at_start();
        let t0 = Instant::now();
        senders[0].send(hops).map_err(|_| "ring gone")?;
        done_rx.recv().await.ok_or("ring dropped the token")?;
        Ok(rate(hops, t0.elapsed()))
    })
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    // Spawned from a task on the runtime, as an actor or a session task spawns actors
    // (actix spawns from its own runtime's thread too).
    crate::on_worker(async move {
        let before = rss_bytes();
        let t0 = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            let handle = tokio::spawn(async move {
                let mut state = i as u64;
                while let Some(v) = rx.recv().await {
                    state = v;
                }
                state
            });
            tasks.push((tx, handle));
        }
        let spawned = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let t0 = Instant::now();
        let mut ended = 0u64;
        let handles: Vec<_> = tasks
            .into_iter()
            .map(|(tx, h)| {
                drop(tx);
                h
            })
            .collect();
        for h in handles {
            if h.await.is_ok() {
                ended += 1;
            }
        }
        let stopped = t0.elapsed();
        verify("ended tasks", ended, n as u64)?;
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}

enum BigMsg {
    Start,
    Ping(usize),
    Pong,
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
        let mut senders = Vec::with_capacity(actors);
        let mut receivers = Vec::with_capacity(actors);
        for _ in 0..actors {
            let (tx, rx) = mpsc::unbounded_channel::<BigMsg>();
            senders.push(tx);
            receivers.push(rx);
        }
        let peers = Arc::new(senders);
        for (index, mut rx) in receivers.into_iter().enumerate() {
            let peers = peers.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let mut rng = Rng(index as u64 * 7919 + 1);
                let (mut left, mut pongs) = (pings, 0u64);
                while let Some(m) = rx.recv().await {
                    match m {
                        BigMsg::Start => {
                            let _ = peers[rng.below(peers.len())].send(BigMsg::Ping(index));
                        }
                        BigMsg::Ping(from) => {
                            let _ = peers[from].send(BigMsg::Pong);
                        }
                        BigMsg::Pong => {
                            pongs += 1;
                            left -= 1;
                            if left == 0 {
                                let _ = done.send(pongs);
                            } else {
                                let _ = peers[rng.below(peers.len())].send(BigMsg::Ping(index));
                            }
                        }
                    }
                }
            });
        }
        let t0 = Instant::now();
        for p in peers.iter() {
            p.send(BigMsg::Start).map_err(|_| "pinger gone")?;
        }
        let mut total = 0;
        for _ in 0..actors {
            total += done_rx.recv().await.ok_or("a pinger vanished")?;
        }
        let elapsed = t0.elapsed();
        verify("pongs", total, actors as u64 * pings)?;
        Ok(rate(total * 2, elapsed))
    })
}

/// `actors` tasks, each ticking on its own `tokio::time::interval_at` grid (fixed rate, missed
/// ticks skipped, as ours): lateness of each tick after its grid point, and the CPU share.
fn timer_jitter(actors: usize, period: Duration, run: Duration) -> BenchResult<(Percentiles, f64)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::time::{Instant as TokioInstant, MissedTickBehavior};
    runtime().block_on(async {
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..actors)
            .map(|_| {
                let (measuring, stop) = (Arc::clone(&measuring), Arc::clone(&stop));
                tokio::spawn(async move {
                    let origin = TokioInstant::now();
                    let mut ticks = tokio::time::interval_at(origin + period, period);
                    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
                    let mut lateness_us = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        ticks.tick().await;
                        if measuring.load(Ordering::Relaxed) {
                            let late_ns = origin.elapsed().as_nanos() % period.as_nanos();
                            lateness_us.push((late_ns / 1_000) as u32);
                        }
                    }
                    lateness_us
                })
            })
            .collect();
        // Warm up two periods, then measure.
        tokio::time::sleep(period * 2).await;
        measuring.store(true, Ordering::Relaxed);
        let cpu0 = crate::cpu_time();
        let t0 = Instant::now();
        tokio::time::sleep(run).await;
        measuring.store(false, Ordering::Relaxed);
        let wall = t0.elapsed();
        let cpu = crate::cpu_time().saturating_sub(cpu0);
        stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::with_capacity(tasks.len());
        for t in tasks {
            samples.push(t.await.map_err(|e| e.to_string())?);
        }
        crate::tick_summary(samples, actors, period, wall, cpu)
    })
}
