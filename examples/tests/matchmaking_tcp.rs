//! The matchmaking server driven through real TCP connections on 127.0.0.1.

use std::time::Duration;

use actor_core::{ActorRef, ActorSystem, SystemConfig};
use examples::matchmaking::{MatchConfig, MatchServer, RoomMsg};
use serde_json::json;

mod support;
use support::JsonClient as Client;

async fn start(config: MatchConfig) -> (ActorSystem, MatchServer) {
    let system = ActorSystem::new(SystemConfig::default()).expect("rt");
    let server = MatchServer::start(&system, "127.0.0.1:0", config)
        .await
        .expect("bind");
    (system, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_close_players_are_matched_and_the_match_ticks_to_its_end() {
    let config = MatchConfig {
        match_ticks: 10,
        tick: Duration::from_millis(20),
        ..Default::default()
    };
    let (_sys, server) = start(config).await;
    let mut clients = Vec::new();
    for (i, rating) in [1500.0, 1520.0, 1480.0, 1510.0].into_iter().enumerate() {
        let mut c = Client::connect(&server).await;
        let ack = c.queue(&format!("p{i}"), rating, "eu").await;
        assert_eq!(
            ack,
            json!({"op": "queued", "player": format!("p{i}"), "region": "eu"})
        );
        clients.push(c);
    }
    let mut match_id = None;
    for c in &mut clients {
        let m = c.recv().await;
        assert_eq!(m["op"], "matched");
        assert_eq!(m["region"], "eu");
        let mut players: Vec<String> = m["players"]
            .as_array()
            .expect("players")
            .iter()
            .map(|p| p.as_str().unwrap_or("").to_owned())
            .collect();
        players.sort();
        assert_eq!(players, ["p0", "p1", "p2", "p3"]);
        assert!(
            match_id.is_none() || match_id == Some(m["match"].clone()),
            "one match for all four"
        );
        match_id = Some(m["match"].clone());
    }
    for c in &mut clients {
        let end = c.recv().await;
        assert_eq!(end["op"], "ended");
        assert_eq!(end["ticks"], 10);
    }
    assert_eq!(
        server
            .stats
            .matches
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_the_connection_stays() {
    let (_sys, server) = start(MatchConfig::default()).await;
    let mut c = Client::connect(&server).await;
    c.send("{not json").await;
    let e = c.recv().await;
    assert_eq!(e["op"], "error");
    assert!(
        e["reason"].as_str().unwrap_or("").starts_with("bad JSON"),
        "{e}"
    );
    c.send(r#"{"op":"queue","player":"x"}"#).await;
    assert!(
        c.recv().await["reason"]
            .as_str()
            .unwrap_or("")
            .contains("needs")
    );
    c.send(r#"{"op":"dance"}"#).await;
    assert_eq!(c.recv().await["reason"], "unknown op \"dance\"");
    assert_eq!(c.queue("same", 1000.0, "us").await["op"], "queued");
    let dup = c.queue("same", 1000.0, "us").await;
    assert_eq!(
        dup,
        json!({"op": "error", "reason": "player same is already queued"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_never_mix_and_distant_ratings_wait_until_the_window_widens() {
    let config = MatchConfig {
        match_size: 2,
        base_gap: 50.0,
        gap_growth_per_s: 1_000.0,
        ..Default::default()
    };
    let (_sys, server) = start(config).await;
    let mut eu = Client::connect(&server).await;
    let mut us = Client::connect(&server).await;
    eu.queue("eu-1", 1500.0, "eu").await;
    us.queue("us-1", 1500.0, "us").await;
    // Same rating, other region: no match. Then a distant rating in the same region: a match only
    // after the window has widened (gap 400 needs (400 - 50) / 1000 s = 350 ms of waiting).
    let mut eu2 = Client::connect(&server).await;
    let started = tokio::time::Instant::now();
    eu2.queue("eu-2", 1900.0, "eu").await;
    let m = eu.recv().await;
    let waited = started.elapsed();
    assert_eq!(m["op"], "matched");
    assert_eq!(m["region"], "eu");
    assert!(
        waited >= Duration::from_millis(250),
        "matched before the window widened: {waited:?}"
    );
    assert_eq!(eu2.recv().await["match"], m["match"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), us.recv())
            .await
            .is_err(),
        "the lone us player stays queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_match_is_restarted_without_affecting_another() {
    let config = MatchConfig {
        match_size: 2,
        match_ticks: 1_000_000,
        allow_crash: true,
        ..Default::default()
    };
    let (sys, server) = start(config).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.queue("a1", 1000.0, "eu").await;
    a.queue("a2", 1000.0, "eu").await;
    b.queue("b1", 2000.0, "eu").await;
    b.queue("b2", 2000.0, "eu").await;
    let ma = a.recv().await["match"].as_u64().expect("match id");
    a.recv().await;
    let mb = b.recv().await["match"].as_u64().expect("match id");
    assert_ne!(ma, mb);
    let (ra, rb): (ActorRef<RoomMsg>, ActorRef<RoomMsg>) =
        (room(&sys, ma).await, room(&sys, mb).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rb.ask(RoomMsg::Ticks).await.expect("ticks");
    a.send(&json!({"op": "crash", "match": ma}).to_string())
        .await;
    // Waited for, not slept on: the panic's report (a symbolized backtrace when RUST_BACKTRACE
    // is set, as in CI) can take longer than any fixed pause.
    tokio::time::timeout(Duration::from_secs(10), async {
        while ra.stats().expect("local").restarts == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the crashed match is restarted within 10 s");
    assert_eq!(
        ra.stats().expect("local").restarts,
        1,
        "the crashed match was restarted once"
    );
    assert!(!ra.is_terminated());
    assert_eq!(
        rb.stats().expect("local").restarts,
        0,
        "the other match was untouched"
    );
    // It keeps ticking (one tick is 50 ms; waited for, like the restart).
    tokio::time::timeout(Duration::from_secs(10), async {
        while rb.ask(RoomMsg::Ticks).await.expect("ticks") <= before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the other match kept ticking");
}

/// The room of a match, once its supervisor has started it.
async fn room(sys: &ActorSystem, id: u64) -> ActorRef<RoomMsg> {
    for _ in 0..100 {
        if let Ok(r) = sys.lookup::<RoomMsg>(&format!("/user/matches/match-{id}")) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("room {id} never appeared");
}
