//! A matchmaking server: players queue over TCP with a rating and a region; a matchmaker per
//! region groups them into matches of `match_size` players whose ratings lie within a window that
//! widens the longer they wait; each match is a room actor under a dynamic supervisor, ticking at
//! a fixed rate until the match ends. A room that crashes is restarted by its supervisor without
//! touching any other match.
//!
//! Protocol: one JSON object per line.
//!
//! ```text
//! -> {"op":"queue","player":"p1","rating":1500,"region":"eu"}
//! <- {"op":"queued","player":"p1","region":"eu"}
//! <- {"op":"matched","match":7,"region":"eu","players":["p1","p2","p3","p4"]}
//! <- {"op":"ended","match":7,"region":"eu","ticks":100}
//! <- {"op":"error","reason":"..."}         bad JSON, missing fields, duplicate queueing
//! ```
//! A bad line is answered with an error; the connection stays open.
//!
//! Several nodes ([`MatchServer::start_clustered`]): each region's queue lives on one node (a hash
//! of the region over the nodes that are up); a client connected to any node is queued in its
//! region's queue wherever that is, and hears back through its connection actor's ref, which
//! travels with the request. Matches run on the node that formed them. Duplicate queueing is
//! detected per node that owns the regions involved.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_core::prelude::*;
use actor_remote::node::Node;
use serde::{Deserialize, Serialize};
use serde_json::json;
use supervision::{DynamicMsg, DynamicSupervisor, DynamicSupervisorApi, RestartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cluster::Placement;

/// The path of every node's director.
pub const DIRECTOR_PATH: &str = "/user/matchmaking";

/// Server settings.
#[derive(Clone, Debug)]
pub struct MatchConfig {
    /// Players per match.
    pub match_size: usize,
    /// Rating gap allowed at once.
    pub base_gap: f64,
    /// How much the allowed gap grows per second of waiting (of the longest-waiting player).
    pub gap_growth_per_s: f64,
    /// Room tick rate.
    pub tick: Duration,
    /// Ticks until a match ends.
    pub match_ticks: u64,
    /// How often matchmakers retry forming matches (the window widens with time).
    pub matchmaking_interval: Duration,
    /// Accept `{"op":"crash","match":ID}` (failure injection for tests and demos).
    pub allow_crash: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            match_size: 4,
            base_gap: 100.0,
            gap_growth_per_s: 50.0,
            tick: Duration::from_millis(50),
            match_ticks: 100,
            matchmaking_interval: Duration::from_millis(100),
            allow_crash: false,
        }
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct MatchStats {
    /// Matches formed.
    pub matches: AtomicU64,
    /// Players matched.
    pub players_matched: AtomicU64,
}

/// What a client sends.
#[derive(Deserialize)]
struct Request {
    op: String,
    player: Option<String>,
    rating: Option<f64>,
    region: Option<String>,
    #[serde(rename = "match")]
    match_id: Option<u64>,
}

/// Lines for one client connection.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClientMsg {
    /// A JSON line to write.
    Line(String),
}

/// One client connection's actor: writes what it is told to the socket's writer task (dropping
/// lines for a client that does not read). Its ref is how the client is reached from any node.
struct Connection {
    out: mpsc::Sender<String>,
}

impl Actor for Connection {
    type Msg = ClientMsg;
    async fn handle(&mut self, msg: ClientMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let ClientMsg::Line(line) = msg;
        let _ = self.out.try_send(line);
        Ok(())
    }
}

type Out = ActorRef<ClientMsg>;

/// A running matchmaking server.
pub struct MatchServer {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<MatchStats>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for MatchServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl MatchServer {
    /// Binds `addr` and serves on this node alone until dropped.
    pub async fn start(
        system: &ActorSystem,
        addr: &str,
        config: MatchConfig,
    ) -> std::io::Result<Self> {
        Self::start_with(system, addr, config, Placement::alone()).await
    }

    /// Like [`MatchServer::start`], as one node of a cluster: regions are spread over the nodes
    /// that are up, and this node's director is exposed on `node` (every node must run one).
    pub async fn start_clustered(
        system: &ActorSystem,
        addr: &str,
        config: MatchConfig,
        node: Arc<Node>,
    ) -> std::io::Result<Self> {
        Self::start_with(system, addr, config, Placement::clustered(node)).await
    }

    async fn start_with(
        system: &ActorSystem,
        addr: &str,
        config: MatchConfig,
        placement: Placement,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(MatchStats::default());
        let (cfg, st, pl) = (config.clone(), stats.clone(), placement.clone());
        let rooms = system
            .spawn(
                DynamicSupervisor::builder(|args: RoomArgs| {
                    let name = format!("match-{}", args.id);
                    Props::new(move || MatchRoom {
                        args: args.clone(),
                        ticks: 0,
                    })
                    .name(name)
                })
                .restart(RestartType::Transient)
                .intensity(3, Duration::from_secs(10))
                .props()
                .name("matches"),
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let director = system
            .spawn(
                Props::new(move || Director {
                    config: cfg.clone(),
                    placement: pl.clone(),
                    directors: HashMap::new(),
                    rooms: rooms.clone(),
                    regions: HashMap::new(),
                    queued: HashSet::new(),
                    stats: st.clone(),
                    next_match: 0,
                })
                .name("matchmaking"),
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Some(node) = placement.node() {
            node.expose(&director);
        }
        let system = system.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (read, mut write) = stream.into_split();
                let (tx, mut rx) = mpsc::channel::<String>(256);
                tokio::spawn(async move {
                    while let Some(line) = rx.recv().await {
                        if write.write_all(line.as_bytes()).await.is_err()
                            || write.write_all(b"\n").await.is_err()
                        {
                            break;
                        }
                    }
                });
                let client = match system.spawn(Props::new(move || Connection { out: tx.clone() }))
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a connection actor");
                        continue;
                    }
                };
                let director = director.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        director.tell(DirectorMsg::Line(line, client.clone()));
                    }
                    // Lines already queued for the client still go out.
                    client.stop_when_idle();
                });
            }
        });
        tracing::info!(%local_addr, "matchmaking server listening");
        Ok(Self {
            local_addr,
            stats,
            accept,
        })
    }
}

fn error(out: &Out, reason: impl Into<String>) {
    out.tell(ClientMsg::Line(
        json!({"op": "error", "reason": reason.into()}).to_string(),
    ));
}

/// A waiting player.
#[derive(Clone)]
struct Waiting {
    player: String,
    rating: f64,
    since: Instant,
    out: Out,
}

/// Arguments of a match room.
#[derive(Clone)]
pub struct RoomArgs {
    id: u64,
    region: String,
    players: Vec<Waiting>,
    tick: Duration,
    match_ticks: u64,
}

/// Messages of a match room.
pub enum RoomMsg {
    /// A game tick.
    Tick,
    /// Failure injection.
    Crash,
    /// Ticks so far.
    Ticks(Reply<u64>),
}

struct MatchRoom {
    args: RoomArgs,
    ticks: u64,
}

impl Actor for MatchRoom {
    type Msg = RoomMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.send_interval("tick", self.args.tick, || RoomMsg::Tick);
        Ok(())
    }

    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Tick => {
                self.ticks += 1;
                if self.ticks >= self.args.match_ticks {
                    let line = json!({"op": "ended", "match": self.args.id, "region": self.args.region, "ticks": self.ticks})
                        .to_string();
                    for p in &self.args.players {
                        p.out.tell(ClientMsg::Line(line.clone()));
                    }
                    ctx.stop();
                }
            }
            RoomMsg::Crash => panic!("match {} crashed (injected)", self.args.id),
            RoomMsg::Ticks(r) => r.send(self.ticks),
        }
        Ok(())
    }
}

/// Messages of the director.
#[derive(Debug, Serialize, Deserialize)]
pub enum DirectorMsg {
    /// A line from a client of this node, with the client's connection.
    Line(String, ActorRef<ClientMsg>),
    /// Queue a player here (this node owns the region), for a client of any node.
    Queue {
        /// The player.
        player: String,
        /// Its rating.
        rating: f64,
        /// The region.
        region: String,
        /// The client's connection.
        client: ActorRef<ClientMsg>,
    },
    /// Retry forming matches in every region.
    Match,
}

/// Owns the queues (one per region), forms matches and starts their rooms.
struct Director {
    config: MatchConfig,
    placement: Placement,
    /// Other nodes' directors, looked up on first use.
    directors: HashMap<String, ActorRef<DirectorMsg>>,
    rooms: ActorRef<DynamicMsg<RoomMsg, RoomArgs>>,
    regions: HashMap<String, Vec<Waiting>>,
    queued: HashSet<String>,
    stats: Arc<MatchStats>,
    next_match: u64,
}

impl Director {
    /// Forms as many matches as the region's queue allows: players sorted by rating, the first
    /// window of `match_size` whose spread fits the gap allowed for its longest-waiting player.
    fn form(&mut self, region: &str, now: Instant) -> Vec<Vec<Waiting>> {
        let size = self.config.match_size.max(1);
        let Some(queue) = self.regions.get_mut(region) else {
            return Vec::new();
        };
        queue.sort_by(|a, b| a.rating.total_cmp(&b.rating));
        let mut formed = Vec::new();
        let mut i = 0;
        while i + size <= queue.len() {
            let window = &queue[i..i + size];
            let spread = window[size - 1].rating - window[0].rating;
            let waited = window
                .iter()
                .map(|w| now.saturating_duration_since(w.since))
                .max()
                .unwrap_or_default();
            let allowed =
                self.config.base_gap + self.config.gap_growth_per_s * waited.as_secs_f64();
            if spread <= allowed {
                formed.push(queue.drain(i..i + size).collect());
            } else {
                i += 1;
            }
        }
        formed
    }

    async fn start_matches(&mut self, region: &str, ctx: &mut Context<Self>) -> ActorResult {
        for players in self.form(region, Instant::now()) {
            self.next_match += 1;
            let id = self.next_match;
            for p in &players {
                self.queued.remove(&p.player);
            }
            let names: Vec<&str> = players.iter().map(|p| p.player.as_str()).collect();
            let line = json!({"op": "matched", "match": id, "region": region, "players": names})
                .to_string();
            let args = RoomArgs {
                id,
                region: region.to_owned(),
                players: players.clone(),
                tick: self.config.tick,
                match_ticks: self.config.match_ticks,
            };
            // Start the room without waiting on it: the supervisor answers through a pipe.
            let rooms = self.rooms.clone();
            ctx.pipe(async move { rooms.start_child(args).await.is_ok() }, |_| {
                DirectorMsg::Match
            });
            for p in &players {
                p.out.tell(ClientMsg::Line(line.clone()));
            }
            self.stats.matches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .players_matched
                .fetch_add(players.len() as u64, Ordering::Relaxed);
            tracing::info!(
                match_id = id,
                region,
                players = players.len(),
                "match formed"
            );
        }
        Ok(())
    }
}

impl Director {
    /// Queues a player in a region this node owns, and tries to form matches.
    async fn enqueue(
        &mut self,
        player: String,
        rating: f64,
        region: String,
        out: Out,
        ctx: &mut Context<Self>,
    ) -> ActorResult {
        if !self.queued.insert(player.clone()) {
            error(&out, format!("player {player} is already queued"));
            return Ok(());
        }
        out.tell(ClientMsg::Line(
            json!({"op": "queued", "player": player, "region": region}).to_string(),
        ));
        self.regions
            .entry(region.clone())
            .or_default()
            .push(Waiting {
                player,
                rating,
                since: Instant::now(),
                out,
            });
        self.start_matches(&region, ctx).await
    }

    /// Sends `msg` to the director of `node` (looked up once, again if its ref went dead).
    async fn forward(
        &mut self,
        node: &str,
        msg: DirectorMsg,
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        let mut msg = msg;
        for _ in 0..2 {
            let director = match self.directors.get(node) {
                Some(d) => d.clone(),
                None => {
                    let d = self
                        .placement
                        .resolve(node, DIRECTOR_PATH, ctx.myself())
                        .await
                        .map_err(|e| format!("the region's node {node} is unreachable: {e}"))?;
                    self.directors.insert(node.to_owned(), d.clone());
                    d
                }
            };
            match director.try_tell(msg) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // A ref through a lost connection: look the director up again.
                    self.directors.remove(node);
                    msg = e.into_inner();
                }
            }
        }
        Err(format!("the region's node {node} is unreachable"))
    }
}

impl Actor for Director {
    type Msg = DirectorMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.send_interval("match", self.config.matchmaking_interval, || {
            DirectorMsg::Match
        });
        Ok(())
    }

    async fn handle(&mut self, msg: DirectorMsg, ctx: &mut Context<Self>) -> ActorResult {
        let (line, out) = match msg {
            DirectorMsg::Match => {
                let regions: Vec<String> = self.regions.keys().cloned().collect();
                for r in regions {
                    self.start_matches(&r, ctx).await?;
                }
                return Ok(());
            }
            DirectorMsg::Queue {
                player,
                rating,
                region,
                client,
            } => return self.enqueue(player, rating, region, client, ctx).await,
            DirectorMsg::Line(line, out) => (line, out),
        };
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                error(&out, format!("bad JSON: {e}"));
                return Ok(());
            }
        };
        match req.op.as_str() {
            "queue" => {
                let (Some(player), Some(rating), Some(region)) =
                    (req.player, req.rating, req.region)
                else {
                    error(&out, "queue needs \"player\", \"rating\" and \"region\"");
                    return Ok(());
                };
                if !rating.is_finite() || player.is_empty() || region.is_empty() {
                    error(
                        &out,
                        "player and region must be non-empty and rating a number",
                    );
                    return Ok(());
                }
                let owner = self.placement.owner(&region);
                if owner == self.placement.name() {
                    return self.enqueue(player, rating, region, out, ctx).await;
                }
                let queue = DirectorMsg::Queue {
                    player,
                    rating,
                    region,
                    client: out.clone(),
                };
                if let Err(why) = self.forward(&owner, queue, ctx).await {
                    error(&out, why);
                }
            }
            "crash" if self.config.allow_crash => match req.match_id {
                Some(id) => match ctx
                    .system()
                    .lookup::<RoomMsg>(&format!("/user/matches/match-{id}"))
                {
                    Ok(room) => room.tell(RoomMsg::Crash),
                    Err(e) => error(&out, e.to_string()),
                },
                None => error(&out, "crash needs \"match\""),
            },
            other => error(&out, format!("unknown op {other:?}")),
        }
        Ok(())
    }
}
