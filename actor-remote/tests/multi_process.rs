//! Two nodes in two OS processes on 127.0.0.1: this test process is `alpha`, and
//! `actor-remote-test-node` (built with this crate) is `beta`. Asks travel both ways; killing
//! beta's process makes alpha's watcher of beta's actor see `Terminated` within the configured
//! detection time; starting beta again on the same address makes alpha reconnect to the new
//! incarnation.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use actor_core::testkit::TestProbe;
use actor_core::{ActorRef, ActorSystem, SystemConfig, TerminationReason};
use actor_remote::association::Liveness;
use actor_remote::node::{Node, NodeConfig, PeerState};
use actor_remote::ping::{PING_PATH, PingMsg, spawn_ping};
use supervision::Backoff;

mod support;
use support::eventually;

const HEARTBEAT: Duration = Duration::from_millis(200);
const UNREACHABLE: Duration = Duration::from_millis(1_000);

/// A beta process; killed when dropped.
struct Beta {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Beta {
    fn start(bind: &str) -> (Beta, SocketAddr, u64) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_actor-remote-test-node"))
            .args([
                "--name",
                "beta",
                "--bind",
                bind,
                "--secret",
                "multi-process",
            ])
            .args(["--heartbeat-ms", &HEARTBEAT.as_millis().to_string()])
            .args(["--unreachable-ms", &UNREACHABLE.as_millis().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the fixture starts");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut beta = Beta { child, lines };
        let first = beta.line("LISTENING");
        let mut parts = first.split_whitespace().skip(1);
        let addr = parts
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address");
        let incarnation = parts
            .next()
            .and_then(|i| i.parse().ok())
            .expect("an incarnation");
        (beta, addr, incarnation)
    }

    /// The next line starting with `prefix` (waits at most 20 s: a bound, not a timing check).
    fn line(&mut self, prefix: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no {prefix} line from beta: {e}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Beta {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(node: &Node) -> (ActorRef<PingMsg>, actor_remote::ping::Pong) {
    let ping: ActorRef<PingMsg> = node.lookup("beta", PING_PATH).await.expect("found");
    let pong = ping
        .ask(|reply| PingMsg::Ping { reply })
        .await
        .expect("beta answers");
    (ping, pong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_talk_detect_a_killed_peer_and_reconnect_to_its_new_incarnation() {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let mut config = NodeConfig::new(
        "alpha",
        "127.0.0.1:0".parse().expect("addr"),
        b"multi-process".to_vec(),
    );
    config.liveness = Liveness {
        heartbeat_interval: HEARTBEAT,
        unreachable_after: UNREACHABLE,
    };
    config.reconnect =
        Some(Backoff::new(Duration::from_millis(100), Duration::from_millis(500)).jitter(0.2));
    let alpha = Node::start(&system, config).expect("alpha starts");
    spawn_ping(&system, &alpha).expect("ping");

    // First incarnation of beta.
    let (mut beta, beta_addr, first) = Beta::start("127.0.0.1:0");
    alpha.connect(beta_addr).await.expect("alpha connects");
    // alpha -> beta: an ask.
    let (beta_ping, pong) = ping(&alpha).await;
    assert_eq!((pong.node.as_str(), pong.incarnation), ("beta", first));
    // beta -> alpha: beta asked alpha's ping and printed the answer.
    let line = beta.line("PONG");
    assert_eq!(line, format!("PONG alpha {}", alpha.incarnation()));

    // Kill beta's process: no goodbye, no connection close. alpha's watcher hears of it within
    // the configured detection time, plus one second of slack for a loaded CI machine (the exact
    // timing is tested on simulated time in handshake_assoc.rs).
    let mut watcher = TestProbe::<()>::new(&system);
    watcher.watch(&beta_ping);
    beta.kill();
    let end = watcher
        .expect_terminated(&beta_ping, UNREACHABLE + Duration::from_secs(1))
        .await;
    match &end.reason {
        TerminationReason::Unreachable(why) => assert!(why.contains("beta"), "{why}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(alpha.peers()[0].state, PeerState::Unreachable);

    // Start beta again on the same address: alpha re-dials it and meets the new incarnation.
    let (mut beta, again_addr, second) = Beta::start(&beta_addr.to_string());
    assert_eq!(again_addr, beta_addr);
    assert_ne!(first, second, "a restarted process is a new incarnation");
    let reconnected = eventually(Duration::from_secs(10), || {
        alpha
            .peers()
            .iter()
            .any(|p| p.node == "beta" && p.incarnation == second && p.state == PeerState::Up)
    })
    .await;
    assert!(reconnected, "alpha reconnected: {:?}", alpha.peers());
    let (_, pong) = ping(&alpha).await;
    assert_eq!(pong.incarnation, second);
    assert_eq!(
        beta.line("PONG"),
        format!("PONG alpha {}", alpha.incarnation())
    );
}
