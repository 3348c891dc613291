//! Limit baseline, not a framework: each "actor" is an OS thread blocking on an unbounded
//! `crossbeam-channel`. Spawning 100,000 threads is not meaningful, so it has no spawn row.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Sender, bounded, unbounded};

use super::Framework;
use crate::{BenchResult, Percentiles, Rng, histogram, percentiles, rate, verify};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "crossbeam",
        is_peer: false,
        pingpong: Some(pingpong),
        counting: Some(counting),
        fanout: Some(fanout),
        fanin: Some(fanin),
        ring: Some(ring),
        ask_latency: Some(ask_latency),
        spawn: None,
        big: Some(big),
        timer_jitter: None,
    }
}

fn pingpong(n: u64) -> BenchResult<f64> {
    let (to_pong, pong_rx) = unbounded::<u64>();
    let (to_ping, ping_rx) = unbounded::<u64>();
    let pong = thread::spawn(move || {
        while let Ok(v) = pong_rx.recv() {
            if to_ping.send(v).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    to_pong.send(0).map_err(|e| e.to_string())?;
    let mut got = 0;
    while let Ok(v) = ping_rx.recv() {
        if v == n {
            got = v;
            break;
        }
        to_pong.send(v + 1).map_err(|e| e.to_string())?;
    }
    let elapsed = t0.elapsed();
    drop(to_pong);
    let _ = pong.join();
    verify("round trips", got, n)?;
    Ok(rate(n, elapsed))
}

enum CounterMsg {
    Inc,
    Get(Sender<u64>),
}

fn counter() -> (Sender<CounterMsg>, thread::JoinHandle<()>) {
    let (tx, rx) = unbounded();
    let h = thread::spawn(move || {
        let mut count = 0;
        while let Ok(m) = rx.recv() {
            match m {
                CounterMsg::Inc => count += 1,
                CounterMsg::Get(r) => {
                    let _ = r.send(count);
                }
            }
        }
    });
    (tx, h)
}

fn get(c: &Sender<CounterMsg>) -> BenchResult<u64> {
    let (tx, rx) = bounded(1);
    c.send(CounterMsg::Get(tx)).map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())
}

fn counting(n: u64) -> BenchResult<f64> {
    let (c, h) = counter();
    let t0 = Instant::now();
    for _ in 0..n {
        c.send(CounterMsg::Inc).map_err(|e| e.to_string())?;
    }
    let total = get(&c)?;
    let elapsed = t0.elapsed();
    drop(c);
    let _ = h.join();
    verify("count", total, n)?;
    Ok(rate(n, elapsed))
}

fn fanin(n: u64, senders: usize) -> BenchResult<f64> {
    let (c, h) = counter();
    let per = n / senders as u64;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|_| {
            let c = c.clone();
            thread::spawn(move || {
                for _ in 0..per {
                    c.send(CounterMsg::Inc).map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "sender panicked".to_string())??;
    }
    let total = get(&c)?;
    let elapsed = t0.elapsed();
    drop(c);
    let _ = h.join();
    verify("count", total, per * senders as u64)?;
    Ok(rate(per * senders as u64, elapsed))
}

fn fanout(n: u64, receivers: usize) -> BenchResult<f64> {
    let counters: Vec<_> = (0..receivers).map(|_| counter()).collect();
    let t0 = Instant::now();
    for i in 0..n {
        counters[(i % receivers as u64) as usize]
            .0
            .send(CounterMsg::Inc)
            .map_err(|e| e.to_string())?;
    }
    let mut total = 0;
    for (c, _) in &counters {
        total += get(c)?;
    }
    let elapsed = t0.elapsed();
    for (c, h) in counters {
        drop(c);
        let _ = h.join();
    }
    verify("fan-out total", total, n)?;
    Ok(rate(n, elapsed))
}

fn ask_latency(n: u64) -> BenchResult<Percentiles> {
    let (c, h) = counter();
    let mut hist = histogram();
    for i in 0..n {
        c.send(CounterMsg::Inc).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let got = get(&c)?;
        let _ = hist.record(t0.elapsed().as_nanos() as u64);
        verify("ask answer", got, i + 1)?;
    }
    drop(c);
    let _ = h.join();
    Ok(percentiles(&hist))
}

fn ring(actors: usize, hops: u64) -> BenchResult<f64> {
    let (done_tx, done_rx) = unbounded::<()>();
    let mut senders = Vec::with_capacity(actors);
    let mut receivers = Vec::with_capacity(actors);
    for _ in 0..actors {
        let (tx, rx) = unbounded::<u64>();
        senders.push(tx);
        receivers.push(rx);
    }
    let mut threads = Vec::with_capacity(actors);
    for (i, rx) in receivers.into_iter().enumerate() {
        let next = senders[(i + 1) % actors].clone();
        let done = done_tx.clone();
        threads.push(thread::spawn(move || {
            while let Ok(left) = rx.recv() {
                if left == u64::MAX {
                    let _ = next.send(u64::MAX);
                    break;
                }
                if left == 0 {
                    let _ = done.send(());
                } else if next.send(left - 1).is_err() {
                    break;
                }
            }
        }));
    }
    let t0 = Instant::now();
    senders[0].send(hops).map_err(|e| e.to_string())?;
    done_rx.recv().map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    // Poison pill around the ring, then join.
    let _ = senders[0].send(u64::MAX);
    drop(senders);
    for t in threads {
        let _ = t.join();
    }
    Ok(rate(hops, elapsed))
}

enum BigMsg {
    Start,
    Ping(usize),
    Pong,
    Quit,
}

fn big(actors: usize, pings: u64) -> BenchResult<f64> {
    let (done_tx, done_rx) = unbounded::<u64>();
    let mut senders = Vec::with_capacity(actors);
    let mut receivers = Vec::with_capacity(actors);
    for _ in 0..actors {
        let (tx, rx) = unbounded::<BigMsg>();
        senders.push(tx);
        receivers.push(rx);
    }
    let peers = Arc::new(senders);
    let mut threads = Vec::with_capacity(actors);
    for (index, rx) in receivers.into_iter().enumerate() {
        let peers = peers.clone();
        let done = done_tx.clone();
        threads.push(thread::spawn(move || {
            let mut rng = Rng(index as u64 * 7919 + 1);
            let (mut left, mut pongs) = (pings, 0u64);
            while let Ok(m) = rx.recv() {
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
                    BigMsg::Quit => break,
                }
            }
        }));
    }
    let t0 = Instant::now();
    for p in peers.iter() {
        p.send(BigMsg::Start).map_err(|e| e.to_string())?;
    }
    let mut total = 0;
    for _ in 0..actors {
        total += done_rx.recv().map_err(|e| e.to_string())?;
    }
    let elapsed = t0.elapsed();
    for p in peers.iter() {
        let _ = p.send(BigMsg::Quit);
    }
    for t in threads {
        let _ = t.join();
    }
    verify("pongs", total, actors as u64 * pings)?;
    Ok(rate(total * 2, elapsed))
}
