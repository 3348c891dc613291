//! A line-protocol chat client for the tests: a real TCP connection to a real server.

#![allow(dead_code)]

use std::time::Duration;

use examples::chat::ChatServer;
use examples::matchmaking::MatchServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub(crate) const T: Duration = Duration::from_secs(10);

pub(crate) struct Client {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Client {
    pub(crate) async fn connect(server: &ChatServer) -> Self {
        Self::connect_to(server.local_addr).await
    }
    pub(crate) async fn connect_to(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, write) = stream.into_split();
        let mut c = Self {
            lines: BufReader::new(read).lines(),
            write,
        };
        assert!(c.line().await.starts_with("* welcome"));
        c
    }
    pub(crate) async fn send(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write");
    }
    pub(crate) async fn line(&mut self) -> String {
        tokio::time::timeout(T, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("not closed")
    }
    /// Sends a command and waits for the server's answer to it.
    pub(crate) async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }
    pub(crate) async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(T, self.lines.next_line()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}

/// A matchmaking client: one JSON object per line.
pub(crate) struct JsonClient {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl JsonClient {
    pub(crate) async fn connect(server: &MatchServer) -> Self {
        let (read, write) = TcpStream::connect(server.local_addr)
            .await
            .expect("connect")
            .into_split();
        Self {
            lines: BufReader::new(read).lines(),
            write,
        }
    }
    pub(crate) async fn send(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write");
    }
    pub(crate) async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(T, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("open");
        serde_json::from_str(&line).expect("the server sends JSON")
    }
    pub(crate) async fn queue(&mut self, player: &str, rating: f64, region: &str) -> Value {
        self.send(
            &json!({"op": "queue", "player": player, "rating": rating, "region": region})
                .to_string(),
        )
        .await;
        self.recv().await
    }
}

/// Connects node `a` to node `b` and waits until both see each other (at most 5 s).
pub(crate) async fn join_nodes(a: &actor_remote::node::Node, b: &actor_remote::node::Node) {
    a.connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    for _ in 0..250 {
        if !b.peers().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never saw {}", b.name(), a.name());
}
