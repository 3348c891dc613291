//! A smoke run of every workload of every framework at tiny sizes: each verifies its own result,
//! so this fails if an implementation is broken (CI does not run the full suite).

use std::time::Duration;

use benches::frameworks;

#[test]
fn every_framework_runs_every_workload_at_tiny_sizes() {
    for fw in frameworks::all() {
        let name = fw.name;
        let check = |bench: &str, r: Result<f64, String>| match r {
            Ok(v) => assert!(v.is_finite() && v > 0.0, "{name} {bench}: {v}"),
            Err(e) => panic!("{name} {bench}: {e}"),
        };
        if let Some(f) = fw.pingpong {
            check("pingpong", f(500));
        }
        if let Some(f) = fw.counting {
            check("counting", f(5_000));
        }
        if let Some(f) = fw.fanout {
            check("fanout", f(5_000, 8));
        }
        if let Some(f) = fw.fanin {
            check("fanin", f(5_000, 4));
        }
        if let Some(f) = fw.ring {
            check("ring", f(20, 500));
        }
        if let Some(f) = fw.ask_latency {
            let p = f(100).unwrap_or_else(|e| panic!("{name} ask_latency: {e}"));
            assert!(
                p.p50 > 0.0 && p.p50 <= p.p99 && p.p99 <= p.p999,
                "{name}: {p:?}"
            );
        }
        if let Some(f) = fw.spawn {
            let s = f(500).unwrap_or_else(|e| panic!("{name} spawn: {e}"));
            assert!(s.spawns_per_s > 0.0 && s.stops_per_s > 0.0, "{name}: {s:?}");
        }
        if let Some(f) = fw.big {
            check("big", f(10, 20));
        }
    }
}

#[test]
fn our_extra_workloads_run() {
    let p = frameworks::ours::priority_latency(20).expect("priority latency");
    assert!(p.p50 > 0.0);
    // 5,000 sends through a 1,024-message lane: the senders wait for room (each count verified).
    let (tell, send) = frameworks::ours::bounded(5_000).expect("bounded mailboxes");
    assert!(tell > 0.0 && send > 0.0);
    // 5,000 position updates over 100 entities (each entity's latest verified).
    let (rate, conflated) = frameworks::ours::conflating(5_000, 100).expect("conflating mailbox");
    assert!(rate > 0.0 && (0.0..=100.0).contains(&conflated));
    let (jitter, cpu) =
        frameworks::ours::timer_jitter(50, Duration::from_millis(20), Duration::from_millis(300))
            .expect("timer jitter");
    assert!(jitter.p99 >= jitter.p50 && cpu >= 0.0);
}

#[test]
fn remote_workloads_run() {
    let ours = benches::remote::actor_core_throughput(2_000).expect("actor-core over QUIC");
    let raw = benches::remote::quinn_raw_throughput(2_000).expect("raw quinn");
    let fanin = benches::remote::actor_core_fanin(2_000, 50).expect("fan-in over QUIC");
    let bytes = benches::remote::actor_core_throughput_serde_bytes(2_000)
        .expect("actor-core over QUIC, serde_bytes payload");
    assert!(ours > 0.0 && raw > 0.0 && fanin > 0.0 && bytes > 0.0);
}
