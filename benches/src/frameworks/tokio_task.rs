//! Limit baseline for `spawn` only, not a framework: each "actor" is a bare tokio task holding a
//! `u64` of state and waiting forever, stopped by aborting it. No mailbox, no channel, no cell,
//! no supervision: what any design that gives each actor a tokio task of its own pays at least to
//! spawn, stop and keep one, on the same runtime and from the same kind of thread as the others.

use std::time::{Duration, Instant};

use super::Framework;
use crate::{BenchResult, SpawnStats, rss_bytes, verify};

pub(crate) fn framework() -> Framework {
    Framework {
        name: "tokio-task",
        is_peer: false,
        pingpong: None,
        counting: None,
        fanout: None,
        fanin: None,
        ring: None,
        ask_latency: None,
        spawn: Some(spawn),
        big: None,
        timer_jitter: None,
    }
}

fn spawn(n: usize) -> BenchResult<SpawnStats> {
    // Spawned from a task on the runtime, as the other frameworks' actors are.
    crate::on_worker(async move {
        let before = rss_bytes();
        let t0 = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            tasks.push(tokio::spawn(async move {
                let state = i as u64;
                std::future::pending::<()>().await;
                state
            }));
        }
        let spawned = t0.elapsed();
        // Let every task be polled once and go idle, as the actors do.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let t0 = Instant::now();
        for t in &tasks {
            t.abort();
        }
        let mut ended = 0u64;
        for t in tasks {
            if t.await.is_err_and(|e| e.is_cancelled()) {
                ended += 1;
            }
        }
        let stopped = t0.elapsed();
        verify("aborted tasks", ended, n as u64)?;
        Ok(SpawnStats::new(n, spawned, stopped, before, after))
    })
}
