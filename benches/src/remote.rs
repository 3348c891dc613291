//! Remote workloads: small messages one way over one connection between two nodes, for
//! actor-core (remote `tell` through `actor-remote`) and for raw quinn with the same TLS settings
//! (frames of the same size, batched 256 per write: the limit a framework can approach).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actor_core::prelude::*;
use actor_remote::node::{Node, NodeConfig, dev_quic_configs};
use serde::{Deserialize, Serialize};

use crate::{BenchResult, rate, runtime, verify};

/// Payload bytes per message.
pub const PAYLOAD: usize = 100;

/// The payload as most code writes it: serde sees a sequence of `u8`.
#[derive(Serialize, Deserialize)]
struct Payload(Vec<u8>);

/// The same payload marked `serde_bytes`, as the README advises: the same bytes on the wire, one
/// copy to encode and to decode.
#[derive(Serialize, Deserialize)]
struct BytesPayload(#[serde(with = "serde_bytes")] Vec<u8>);

enum SinkMsg {
    Data,
    Count(Reply<u64>),
}

struct Sink {
    count: u64,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    async fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            SinkMsg::Data => self.count += 1,
            SinkMsg::Count(r) => r.send(self.count),
        }
        Ok(())
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A raw quinn server and client on 127.0.0.1 with exactly the node's TLS settings, and the
/// server's address.
fn raw_endpoints() -> BenchResult<(quinn::Endpoint, quinn::Endpoint, SocketAddr)> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (server_cfg, client_cfg) =
        dev_quic_configs(Duration::from_secs(30)).map_err(|e| err(&e))?;
    let server = quinn::Endpoint::server(server_cfg, any_port()).map_err(|e| err(&e))?;
    let mut client = quinn::Endpoint::client(any_port()).map_err(|e| err(&e))?;
    client.set_default_client_config(client_cfg);
    let server_addr = server.local_addr().map_err(|e| err(&e))?;
    Ok((server, client, server_addr))
}

/// An actor system with a node named `name` on 127.0.0.1:0 and a deep outbound queue.
fn node(name: &str) -> BenchResult<(ActorSystem, Node)> {
    let system = ActorSystem::new(SystemConfig::default()).map_err(|e| e.to_string())?;
    let mut config = NodeConfig::new(name, any_port(), b"bench".to_vec());
    config.outbound_queue = 1 << 20;
    // For lane-count experiments: `BENCH_LANES=1 cargo run ... --suite remote`.
    if let Some(lanes) = std::env::var("BENCH_LANES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.lanes = lanes;
    }
    let node = Node::start(&system, config).map_err(|e| e.to_string())?;
    Ok((system, node))
}

/// Messages per second through a remote ref, one connection, `n` messages of [`PAYLOAD`] bytes.
pub fn actor_core_throughput(n: u64) -> BenchResult<f64> {
    throughput_of(n, || Payload(vec![7; PAYLOAD]))
}

/// [`actor_core_throughput`] with the payload marked `serde_bytes`.
pub fn actor_core_throughput_serde_bytes(n: u64) -> BenchResult<f64> {
    throughput_of(n, || BytesPayload(vec![7; PAYLOAD]))
}

/// Messages per second of `n` messages made by `make` through a remote ref, one connection.
fn throughput_of<P>(n: u64, make: fn() -> P) -> BenchResult<f64>
where
    P: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    runtime().block_on(async {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let ((_sys_a, a), (sys_b, b)) = (node("a")?, node("b")?);
        let sink = sys_b
            .spawn(Props::new(|| Sink { count: 0 }).name("sink"))
            .map_err(|e| err(&e))?;
        // The wire type is the payload; the sink counts it.
        let inbox: ActorRef<P> = sink.adapt(|_p: P| SinkMsg::Data);
        b.expose(&inbox);
        a.connect(b.local_addr().map_err(|e| err(&e))?)
            .await
            .map_err(|e| err(&e))?;
        let remote: ActorRef<P> = a.lookup("b", "/user/sink").await.map_err(|e| err(&e))?;
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            match remote.try_tell(make()) {
                Ok(()) => sent += 1,
                // The outbound queue is full: let the writer drain it.
                Err(_) => tokio::task::yield_now().await,
            }
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let got = sink.ask(SinkMsg::Count).await.map_err(|e| err(&e))?;
            if got >= n || Instant::now() > deadline {
                verify("messages received", got, n)?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(rate(n, start.elapsed()))
    })
}

/// Frames per second over raw quinn: `n` frames of a 4-byte length and [`PAYLOAD`] bytes,
/// 256 per write, one unidirectional stream.
pub fn quinn_raw_throughput(n: u64) -> BenchResult<f64> {
    runtime().block_on(async {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let (server, client, server_addr) = raw_endpoints()?;
        let frame_len = 4 + PAYLOAD;
        let receiver = tokio::spawn(async move {
            let conn = server
                .accept()
                .await
                .ok_or("no connection")?
                .await
                .map_err(|e| e.to_string())?;
            let mut recv = conn.accept_uni().await.map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut bytes = 0u64;
            while bytes < n * frame_len as u64 {
                match recv.read(&mut buf).await.map_err(|e| e.to_string())? {
                    Some(k) => bytes += k as u64,
                    None => break,
                }
            }
            Ok::<u64, String>(bytes / frame_len as u64)
        });
        let conn = client
            .connect(server_addr, "actor-node")
            .map_err(|e| err(&e))?
            .await
            .map_err(|e| err(&e))?;
        let mut send = conn.open_uni().await.map_err(|e| err(&e))?;
        let mut batch = Vec::with_capacity(256 * frame_len);
        for _ in 0..256 {
            batch.extend_from_slice(&(PAYLOAD as u32).to_le_bytes());
            batch.extend_from_slice(&[7; PAYLOAD]);
        }
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            let k = (n - sent).min(256);
            send.write_all(&batch[..k as usize * frame_len])
                .await
                .map_err(|e| err(&e))?;
            sent += k;
        }
        let got = receiver.await.map_err(|e| err(&e))??;
        let elapsed = start.elapsed();
        verify("frames received", got, n)?;
        Ok(rate(n, elapsed))
    })
}

/// Counts into a shared total (so 10,000 of them need no asks to be read).
struct Counting {
    total: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Actor for Counting {
    type Msg = Payload;
    async fn handle(&mut self, _msg: Payload, _ctx: &mut Context<Self>) -> ActorResult {
        self.total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Messages per second to `receivers` remote actors round robin (every message to a different
/// actor than the previous one), `n` messages of [`PAYLOAD`] bytes over one connection.
pub fn actor_core_fanin(n: u64, receivers: usize) -> BenchResult<f64> {
    runtime().block_on(async {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let ((_sys_a, a), (sys_b, b)) = (node("a")?, node("b")?);
        let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        for i in 0..receivers {
            let total = total.clone();
            let r = sys_b
                .spawn(
                    Props::new(move || Counting {
                        total: total.clone(),
                    })
                    .name(format!("r{i}")),
                )
                .map_err(|e| err(&e))?;
            b.expose(&r);
        }
        a.connect(b.local_addr().map_err(|e| err(&e))?)
            .await
            .map_err(|e| err(&e))?;
        let mut refs: Vec<ActorRef<Payload>> = Vec::with_capacity(receivers);
        for i in 0..receivers {
            refs.push(
                a.lookup("b", &format!("/user/r{i}"))
                    .await
                    .map_err(|e| err(&e))?,
            );
        }
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < n {
            match refs[(sent % receivers as u64) as usize].try_tell(Payload(vec![7; PAYLOAD])) {
                Ok(()) => sent += 1,
                Err(_) => tokio::task::yield_now().await,
            }
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while total.load(std::sync::atomic::Ordering::Relaxed) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = start.elapsed();
        verify(
            "messages received",
            total.load(std::sync::atomic::Ordering::Relaxed),
            n,
        )?;
        Ok(rate(n, elapsed))
    })
}

/// Requests of the round-trip workload: the payload comes back through the reply port.
#[derive(Serialize, Deserialize)]
enum EchoMsg {
    Echo {
        payload: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
}

struct Echo;

impl Actor for Echo {
    type Msg = EchoMsg;
    async fn handle(&mut self, msg: EchoMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let EchoMsg::Echo { payload, reply } = msg;
        reply.send(payload);
        Ok(())
    }
}

/// Paces a fixed request rate: waits until `at`, sleeping while far away and yielding near it
/// (tokio's timer has a 1 ms granularity, too coarse for 100 us spacing).
async fn pace(at: Instant) {
    loop {
        let now = Instant::now();
        if now >= at {
            return;
        }
        if at - now > Duration::from_millis(2) {
            tokio::time::sleep(at - now - Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Round trips of a [`PAYLOAD`]-byte request between two actors on two nodes: closed loop (one
/// request at a time, `n` of them) when `rate` is `None`, else `n` requests at `rate` per second,
/// each timed from its scheduled send time (so scheduling gaps show up instead of hiding).
pub fn actor_core_rtt(n: u64, rate: Option<f64>) -> BenchResult<crate::Percentiles> {
    runtime().block_on(async {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let ((_sys_a, a), (sys_b, b)) = (node("a")?, node("b")?);
        let echo = sys_b
            .spawn(Props::new(|| Echo).name("echo"))
            .map_err(|e| err(&e))?;
        b.expose(&echo);
        a.connect(b.local_addr().map_err(|e| err(&e))?)
            .await
            .map_err(|e| err(&e))?;
        let remote: ActorRef<EchoMsg> = a.lookup("b", "/user/echo").await.map_err(|e| err(&e))?;
        let ask = |remote: ActorRef<EchoMsg>| async move {
            let back = remote
                .ask(|reply| EchoMsg::Echo {
                    payload: vec![7; PAYLOAD],
                    reply,
                })
                .await
                .map_err(|e| e.to_string())?;
            verify("echoed bytes", back.len() as u64, PAYLOAD as u64)
        };
        // Warm up the connection and both ends.
        for _ in 0..1_000 {
            ask(remote.clone()).await?;
        }
        let mut h = crate::histogram();
        match rate {
            None => {
                for _ in 0..n {
                    let start = Instant::now();
                    ask(remote.clone()).await?;
                    h.record(start.elapsed().as_nanos() as u64)
                        .map_err(|e| err(&e))?;
                }
            }
            Some(rate) => {
                let spacing = Duration::from_secs_f64(1.0 / rate);
                let start = Instant::now();
                let mut pending = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let at = start + spacing * i as u32;
                    pace(at).await;
                    let remote = remote.clone();
                    pending.push(tokio::spawn(async move {
                        ask(remote).await.map(|()| at.elapsed())
                    }));
                }
                for p in pending {
                    let took = p.await.map_err(|e| err(&e))??;
                    h.record(took.as_nanos() as u64).map_err(|e| err(&e))?;
                }
            }
        }
        verify("round trips", h.len(), n)?;
        Ok(crate::percentiles(&h))
    })
}

/// The same round trips over raw quinn with the node's TLS settings: one bidirectional stream,
/// each request a 4-byte sequence number plus [`PAYLOAD`] bytes echoed back by the server.
pub fn quinn_raw_rtt(n: u64, rate: Option<f64>) -> BenchResult<crate::Percentiles> {
    runtime().block_on(async {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let (server, client, server_addr) = raw_endpoints()?;
        let frame_len = 4 + PAYLOAD;
        tokio::spawn(async move {
            let conn = server
                .accept()
                .await
                .ok_or("no connection")?
                .await
                .map_err(|e| e.to_string())?;
            let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
            let mut frame = vec![0u8; frame_len];
            while recv.read_exact(&mut frame).await.is_ok() {
                send.write_all(&frame).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
        let conn = client
            .connect(server_addr, "actor-node")
            .map_err(|e| err(&e))?
            .await
            .map_err(|e| err(&e))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| err(&e))?;
        let frame = |seq: u32| {
            let mut f = seq.to_le_bytes().to_vec();
            f.extend_from_slice(&[7; PAYLOAD]);
            f
        };
        let mut back = vec![0u8; frame_len];
        for i in 0..1_000u32 {
            send.write_all(&frame(i)).await.map_err(|e| err(&e))?;
            recv.read_exact(&mut back).await.map_err(|e| err(&e))?;
        }
        let mut h = crate::histogram();
        match rate {
            None => {
                for i in 0..n as u32 {
                    let start = Instant::now();
                    send.write_all(&frame(i)).await.map_err(|e| err(&e))?;
                    recv.read_exact(&mut back).await.map_err(|e| err(&e))?;
                    verify(
                        "echoed sequence",
                        u32::from_le_bytes([back[0], back[1], back[2], back[3]]) as u64,
                        i as u64,
                    )?;
                    h.record(start.elapsed().as_nanos() as u64)
                        .map_err(|e| err(&e))?;
                }
            }
            Some(rate) => {
                let spacing = Duration::from_secs_f64(1.0 / rate);
                let start = Instant::now();
                let writer = tokio::spawn(async move {
                    for i in 0..n as u32 {
                        pace(start + spacing * i).await;
                        send.write_all(&frame(i)).await.map_err(|e| e.to_string())?;
                    }
                    Ok::<quinn::SendStream, String>(send)
                });
                for i in 0..n as u32 {
                    recv.read_exact(&mut back).await.map_err(|e| err(&e))?;
                    let seq = u32::from_le_bytes([back[0], back[1], back[2], back[3]]);
                    verify("echoed sequence", seq as u64, i as u64)?;
                    let took = (start + spacing * seq).elapsed();
                    h.record(took.as_nanos() as u64).map_err(|e| err(&e))?;
                }
                writer.await.map_err(|e| err(&e))??;
            }
        }
        verify("round trips", h.len(), n)?;
        Ok(crate::percentiles(&h))
    })
}
