//! A chat server: a line protocol over TCP that any client can speak (netcat included).
//!
//! ```text
//! /nick NAME    choose a nickname (1-32 characters, no spaces)
//! /join ROOM    join (or create) a room, leaving the current one
//! /leave        leave the current room
//! /rooms        list the rooms and their sizes
//! /who          list the members of the current room
//! /quit         disconnect
//! anything else is said to the current room; every member (the sender too) gets `NICK: TEXT`
//! ```
//! Lines starting with `* ` are from the server (joins, leaves, answers, errors).
//!
//! Actors: one **session** per connection, one **room** per room, and a **lobby** per node that
//! owns that node's rooms (their supervisor) and the authoritative map of who is in them. A room
//! that crashes is restarted by its lobby with fresh state and rebuilds its membership from the
//! lobby, so its members stay connected and keep talking.
//!
//! Several nodes ([`ChatServer::start_clustered`]): every room lives on one node, chosen by a
//! hash of its name over the nodes that are up (so every node picks the same one). A session
//! joins a room through the owning node's lobby, whatever node its client is connected to; its
//! ref travels in the join message, the room's ref comes back in the answer, and from then on
//! the session talks to the room and the room to the session directly, over QUIC when they are
//! on different nodes. A room watches its members, so a member whose node is lost leaves.
//!
//! Slow clients: each session writes through a queue of `outbound_queue` lines. When a client does
//! not read and its queue is full, lines for it are dropped and counted; after `max_dropped`
//! drops the session is disconnected. A room never waits for a slow member.
//!
//! Half-closed clients (`printf ... | nc -q 1`): when a client stops sending, its session lingers
//! for `linger` (250 ms) so that what its last lines caused (the room's echo) still reaches it,
//! then closes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actor_core::ChildFailure;
use actor_core::prelude::*;
use actor_remote::node::Node;

use crate::cluster::Placement;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Lines queued per client before lines for it are dropped.
    pub outbound_queue: usize,
    /// Dropped lines after which a slow client is disconnected.
    pub max_dropped: u64,
    /// Accept the `/crash-room` command (failure injection for tests and demos).
    pub allow_crash: bool,
    /// Longest accepted input line, in bytes.
    pub max_line: usize,
    /// How long a session stays after its client stopped sending.
    pub linger: std::time::Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            outbound_queue: 1024,
            max_dropped: 1000,
            allow_crash: false,
            max_line: 4096,
            linger: std::time::Duration::from_millis(250),
        }
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct ChatStats {
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// Lines dropped for slow clients.
    pub dropped_lines: AtomicU64,
    /// Clients disconnected for being too slow.
    pub slow_disconnects: AtomicU64,
}

/// A running chat server.
pub struct ChatServer {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<ChatStats>,
    /// This node's lobby actor.
    pub lobby: ActorRef<LobbyMsg>,
    accept: tokio::task::JoinHandle<()>,
}

/// The path of every node's lobby.
pub const LOBBY_PATH: &str = "/user/chat-lobby";

impl ChatServer {
    /// Binds `addr` (port 0 for any) and serves on this node alone until dropped.
    pub async fn start(
        system: &ActorSystem,
        addr: &str,
        config: ChatConfig,
    ) -> std::io::Result<Self> {
        Self::start_with(system, addr, config, None).await
    }

    /// Like [`ChatServer::start`], as one node of a cluster: this node's lobby is exposed on
    /// `node`, and rooms are spread over the nodes that are up (connect the nodes with
    /// [`Node::connect`]; every node must run a clustered chat server).
    pub async fn start_clustered(
        system: &ActorSystem,
        addr: &str,
        config: ChatConfig,
        node: Arc<Node>,
    ) -> std::io::Result<Self> {
        Self::start_with(system, addr, config, Some(node)).await
    }

    async fn start_with(
        system: &ActorSystem,
        addr: &str,
        config: ChatConfig,
        node: Option<Arc<Node>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(ChatStats::default());
        let lobby = system
            .spawn(Props::new(Lobby::default).name("chat-lobby"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Some(node) = &node {
            node.expose(&lobby);
        }
        let directory = Directory {
            placement: node.map_or_else(Placement::alone, Placement::clustered),
            local: lobby.clone(),
        };
        let accept = {
            let (system, directory, stats) = (system.clone(), directory.clone(), stats.clone());
            tokio::spawn(async move {
                let mut guest = 0u64;
                loop {
                    let (stream, peer) = match listener.accept().await {
                        Ok(conn) => conn,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            continue;
                        }
                    };
                    guest += 1;
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = connect(&system, &directory, &stats, &config, stream, guest) {
                        tracing::warn!(%peer, error = %e, "could not start a session");
                    }
                }
            })
        };
        tracing::info!(%local_addr, "chat server listening");
        Ok(Self {
            local_addr,
            stats,
            lobby,
            accept,
        })
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Where rooms live: this node's lobby, and on a cluster the lobbies of the other nodes.
#[derive(Clone)]
struct Directory {
    placement: Placement,
    local: ActorRef<LobbyMsg>,
}

impl Directory {
    /// The lobby of `node`.
    async fn lobby(&self, node: &str) -> Result<ActorRef<LobbyMsg>, String> {
        self.placement.resolve(node, LOBBY_PATH, &self.local).await
    }
}

/// Starts the session actor, the reader task and the writer task of one connection.
fn connect(
    system: &ActorSystem,
    directory: &Directory,
    stats: &Arc<ChatStats>,
    config: &ChatConfig,
    stream: TcpStream,
    guest: u64,
) -> Result<(), actor_core::SpawnError> {
    let (read, mut write) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(config.outbound_queue.max(1));
    let writer = tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err()
                || write.write_all(b"\n").await.is_err()
            {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    let session = {
        let (directory, stats, config) = (directory.clone(), stats.clone(), config.clone());
        let out = out_tx.clone();
        system.spawn(Props::new(move || Session {
            nick: format!("guest-{guest}"),
            key: String::new(),
            room: None,
            out: out.clone(),
            directory: directory.clone(),
            stats: stats.clone(),
            config: config.clone(),
            dropped: 0,
        }))?
    };
    let max_line = config.max_line;
    tokio::spawn({
        let session = session.clone();
        async move {
            let mut lines = BufReader::new(read);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match (&mut lines)
                    .take(max_line as u64 + 1)
                    .read_until(b'\n', &mut buf)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.len() > max_line {
                            session.tell(SessionMsg::Input(String::from("/__too_long")));
                            // Skip the rest of the over-long line.
                            let mut rest = Vec::new();
                            if lines.read_until(b'\n', &mut rest).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        let text = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned();
                        session.tell(SessionMsg::Input(text));
                    }
                }
            }
            session.tell(SessionMsg::InputClosed);
            drop(writer);
        }
    });
    let _ = out_tx.try_send(format!(
        "* welcome, you are guest-{guest}. Commands: /nick NAME, /join ROOM, /leave, /rooms, /who, /quit"
    ));
    Ok(())
}

/// A member of a room, as the room sees it.
#[derive(Clone)]
struct Member {
    nick: String,
    session: ActorRef<SessionMsg>,
}

/// A session's name in the whole cluster: its node and its actor id there.
pub type SessionKey = String;

/// Messages of a session.
#[derive(Debug, Serialize, Deserialize)]
pub enum SessionMsg {
    /// A line typed by the client.
    Input(String),
    /// A line to send to the client.
    Deliver(String),
    /// The client stopped sending. Sent on the user lane, after the lines it sent before (`stop`
    /// would travel on the system lane and overtake them); the session lingers, then closes.
    InputClosed,
    /// Close the session.
    Closed,
}

/// The room a session is in: its name, the room, and the lobby that placed the session there.
struct InRoom {
    name: String,
    room: ActorRef<RoomMsg>,
    lobby: ActorRef<LobbyMsg>,
}

struct Session {
    nick: String,
    key: SessionKey,
    room: Option<InRoom>,
    out: mpsc::Sender<String>,
    directory: Directory,
    stats: Arc<ChatStats>,
    config: ChatConfig,
    dropped: u64,
}

impl Session {
    /// Queues a line for the client; a slow client loses lines, then its connection.
    fn send(&mut self, line: String, ctx: &mut Context<Self>) {
        match self.out.try_send(line) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                self.stats.dropped_lines.fetch_add(1, Ordering::Relaxed);
                if self.dropped == self.config.max_dropped {
                    self.stats.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(nick = %self.nick, dropped = self.dropped, "disconnecting a slow client");
                    ctx.stop();
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    fn reply(&mut self, line: impl Into<String>, ctx: &mut Context<Self>) {
        self.send(format!("* {}", line.into()), ctx);
    }
}

impl Actor for Session {
    type Msg = SessionMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.key = format!("{}/{}", self.directory.placement.name(), ctx.id());
        Ok(())
    }

    async fn handle(&mut self, msg: SessionMsg, ctx: &mut Context<Self>) -> ActorResult {
        let line = match msg {
            SessionMsg::Deliver(line) => {
                self.send(line, ctx);
                return Ok(());
            }
            SessionMsg::InputClosed => {
                ctx.send_after("linger", self.config.linger, SessionMsg::Closed);
                return Ok(());
            }
            SessionMsg::Closed => {
                ctx.stop();
                return Ok(());
            }
            SessionMsg::Input(line) => line,
        };
        let (cmd, arg) = match line.strip_prefix('/') {
            Some(rest) => {
                let mut parts = rest.splitn(2, ' ');
                (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or("").trim(),
                )
            }
            None => ("", line.as_str()),
        };
        match cmd {
            "" if arg.is_empty() => {}
            "" => match &self.room {
                Some(InRoom { room, .. }) => room.tell(RoomMsg::Say {
                    nick: self.nick.clone(),
                    text: arg.to_owned(),
                }),
                None => self.reply("join a room first: /join NAME", ctx),
            },
            "nick" => {
                if arg.is_empty() || arg.len() > 32 || arg.contains(char::is_whitespace) {
                    self.reply("a nickname is 1-32 characters without spaces", ctx);
                } else {
                    let old = std::mem::replace(&mut self.nick, arg.to_owned());
                    if let Some(InRoom { room, lobby, .. }) = &self.room {
                        room.tell(RoomMsg::Renamed {
                            session: self.key.clone(),
                            old: old.clone(),
                            new: self.nick.clone(),
                        });
                        lobby.tell(LobbyMsg::Nick {
                            session: self.key.clone(),
                            nick: self.nick.clone(),
                        });
                    }
                    self.reply(format!("you are now {}", self.nick), ctx);
                }
            }
            "join" => {
                if arg.is_empty() || arg.len() > 64 || arg.contains(char::is_whitespace) {
                    self.reply("a room name is 1-64 characters without spaces", ctx);
                } else {
                    self.join(arg, ctx).await;
                }
            }
            "leave" => match self.room.take() {
                Some(InRoom { lobby, .. }) => lobby.tell(LobbyMsg::Leave {
                    session: self.key.clone(),
                }),
                None => self.reply("you are not in a room", ctx),
            },
            "rooms" => {
                // Every node's lobby knows its own rooms.
                let mut rooms = BTreeMap::new();
                for node in self.directory.placement.nodes() {
                    let Ok(lobby) = self.directory.lobby(&node).await else {
                        continue;
                    };
                    if let Ok(list) = lobby.ask(LobbyMsg::Rooms).await {
                        rooms.extend(list);
                    }
                }
                let list: Vec<String> = rooms
                    .iter()
                    .map(|(name, n)| format!("{name} ({n})"))
                    .collect();
                self.reply(
                    format!(
                        "rooms: {}",
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    ),
                    ctx,
                );
            }
            "who" => match &self.room {
                Some(InRoom { name, room, .. }) => {
                    let name = name.clone();
                    match room.ask(RoomMsg::Who).await {
                        Ok(who) => self.reply(format!("in {name}: {}", who.join(", ")), ctx),
                        Err(e) => self.reply(format!("room {name} did not answer: {e}"), ctx),
                    }
                }
                None => self.reply("you are not in a room", ctx),
            },
            "quit" => {
                self.reply("bye", ctx);
                ctx.stop();
            }
            "crash-room" if self.config.allow_crash => match &self.room {
                Some(InRoom { room, .. }) => room.tell(RoomMsg::Crash),
                None => self.reply("you are not in a room", ctx),
            },
            "__too_long" => self.reply(
                format!("line too long (max {} bytes)", self.config.max_line),
                ctx,
            ),
            other => self.reply(format!("unknown command /{other}"), ctx),
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(InRoom { lobby, .. }) = self.room.take() {
            lobby.tell(LobbyMsg::Leave {
                session: self.key.clone(),
            });
        }
    }
}

impl Session {
    /// Joins `room` through the lobby of the node that hosts it, leaving the current room.
    async fn join(&mut self, room: &str, ctx: &mut Context<Self>) {
        let owner = self.directory.placement.owner(room);
        let lobby = match self.directory.lobby(&owner).await {
            Ok(lobby) => lobby,
            Err(e) => {
                self.reply(
                    format!("room {room} lives on node {owner}, which is unreachable: {e}"),
                    ctx,
                );
                return;
            }
        };
        if let Some(InRoom { lobby: old, .. }) = self.room.take() {
            old.tell(LobbyMsg::Leave {
                session: self.key.clone(),
            });
        }
        let me = ctx.myself().clone();
        let joined = lobby
            .ask(|reply| LobbyMsg::Join {
                room: room.to_owned(),
                nick: self.nick.clone(),
                key: self.key.clone(),
                session: me,
                reply,
            })
            .await;
        match joined {
            Ok(joined) => {
                self.room = Some(InRoom {
                    name: room.to_owned(),
                    room: joined,
                    lobby,
                })
            }
            Err(e) => self.reply(format!("could not join {room}: {e}"), ctx),
        }
    }
}

/// Messages of a room.
#[derive(Debug, Serialize, Deserialize)]
pub enum RoomMsg {
    /// Someone joins.
    Join {
        /// The session's key.
        session: SessionKey,
        /// Its nickname.
        nick: String,
        /// Its ref.
        session_ref: ActorRef<SessionMsg>,
    },
    /// Someone leaves.
    Leave {
        /// The session's key.
        session: SessionKey,
    },
    /// Someone speaks.
    Say {
        /// The speaker.
        nick: String,
        /// What was said.
        text: String,
    },
    /// Someone changed nickname.
    Renamed {
        /// The session's key.
        session: SessionKey,
        /// The old nickname.
        old: String,
        /// The new nickname.
        new: String,
    },
    /// The members' nicknames.
    Who(Reply<Vec<String>>),
    /// Failure injection.
    Crash,
}

struct Room {
    name: String,
    lobby: ActorRef<LobbyMsg>,
    members: BTreeMap<SessionKey, Member>,
}

impl Room {
    fn broadcast(&self, line: &str) {
        for m in self.members.values() {
            m.session.tell(SessionMsg::Deliver(line.to_owned()));
        }
    }
}

impl Actor for Room {
    type Msg = RoomMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        // Fresh state after a (re)start: membership comes from the lobby, which owns it. Asked
        // before any queued message is handled, so nothing said during a restart goes unheard.
        // (The lobby never asks a room, so this ask cannot deadlock.)
        let members = self
            .lobby
            .ask(|reply| LobbyMsg::Members {
                room: self.name.clone(),
                reply,
            })
            .await?;
        for (id, nick, session) in members {
            ctx.watch(&session);
            self.members.insert(id, Member { nick, session });
        }
        Ok(())
    }

    async fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Join {
                session,
                nick,
                session_ref,
            } => {
                ctx.watch(&session_ref);
                self.members.insert(
                    session,
                    Member {
                        nick: nick.clone(),
                        session: session_ref,
                    },
                );
                self.broadcast(&format!("* {nick} joined {}", self.name));
            }
            RoomMsg::Leave { session } => {
                if let Some(m) = self.members.remove(&session) {
                    ctx.unwatch(m.session.id());
                    self.broadcast(&format!("* {} left {}", m.nick, self.name));
                    m.session
                        .tell(SessionMsg::Deliver(format!("* you left {}", self.name)));
                }
            }
            RoomMsg::Say { nick, text } => self.broadcast(&format!("{nick}: {text}")),
            RoomMsg::Renamed { session, old, new } => {
                if let Some(m) = self.members.get_mut(&session) {
                    m.nick = new.clone();
                    self.broadcast(&format!("* {old} is now known as {new}"));
                }
            }
            RoomMsg::Who(reply) => {
                reply.send(self.members.values().map(|m| m.nick.clone()).collect())
            }
            RoomMsg::Crash => panic!("room {} crashed (injected)", self.name),
        }
        Ok(())
    }

    async fn on_signal(&mut self, signal: Signal, _ctx: &mut Context<Self>) -> ActorResult {
        if let Signal::Terminated(t) = signal
            && let Some(key) = self
                .members
                .iter()
                .find(|(_, m)| m.session.id() == t.id)
                .map(|(k, _)| k.clone())
            && let Some(m) = self.members.remove(&key)
        {
            self.broadcast(&format!("* {} left {}", m.nick, self.name));
        }
        Ok(())
    }
}

/// Messages of the lobby.
#[derive(Debug, Serialize, Deserialize)]
pub enum LobbyMsg {
    /// Put a session in a room (creating the room), leaving its previous room.
    Join {
        /// The room.
        room: String,
        /// The session's nickname.
        nick: String,
        /// The session's key.
        key: SessionKey,
        /// The session.
        session: ActorRef<SessionMsg>,
        /// The room's ref.
        reply: Reply<ActorRef<RoomMsg>>,
    },
    /// Take a session out of its room.
    Leave {
        /// The session's key.
        session: SessionKey,
    },
    /// A session changed nickname.
    Nick {
        /// The session's key.
        session: SessionKey,
        /// Its new nickname.
        nick: String,
    },
    /// The rooms and their sizes.
    Rooms(Reply<Vec<(String, usize)>>),
    /// A room (re)started and needs its members.
    Members {
        /// The room.
        room: String,
        /// Its members: session key, nickname, session.
        reply: Reply<Vec<(SessionKey, String, ActorRef<SessionMsg>)>>,
    },
}

#[derive(Default)]
struct Lobby {
    rooms: HashMap<String, ActorRef<RoomMsg>>,
    /// Who is where: session -> (room, nick, ref).
    placement: HashMap<SessionKey, (String, String, ActorRef<SessionMsg>)>,
}

impl Lobby {
    fn remove(&mut self, session: &SessionKey) {
        if let Some((room, _, _)) = self.placement.remove(session)
            && let Some(r) = self.rooms.get(&room)
        {
            r.tell(RoomMsg::Leave {
                session: session.clone(),
            });
        }
    }
}

impl Actor for Lobby {
    type Msg = LobbyMsg;

    async fn handle(&mut self, msg: LobbyMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            LobbyMsg::Join {
                room,
                nick,
                key,
                session,
                reply,
            } => {
                self.remove(&key);
                let room_ref = match self.rooms.get(&room) {
                    Some(r) => r.clone(),
                    None => {
                        let (name, lobby) = (room.clone(), ctx.myself().clone());
                        let r = ctx.spawn(
                            Props::new(move || Room {
                                name: name.clone(),
                                lobby: lobby.clone(),
                                members: BTreeMap::new(),
                            })
                            .name(format!("room-{room}")),
                        )?;
                        self.rooms.insert(room.clone(), r.clone());
                        r
                    }
                };
                self.placement
                    .insert(key.clone(), (room, nick.clone(), session.clone()));
                room_ref.tell(RoomMsg::Join {
                    session: key,
                    nick,
                    session_ref: session,
                });
                reply.send(room_ref);
            }
            LobbyMsg::Leave { session } => self.remove(&session),
            LobbyMsg::Nick { session, nick } => {
                if let Some(p) = self.placement.get_mut(&session) {
                    p.1 = nick;
                }
            }
            LobbyMsg::Rooms(reply) => {
                let mut sizes: BTreeMap<&str, usize> =
                    self.rooms.keys().map(|r| (r.as_str(), 0)).collect();
                for (room, _, _) in self.placement.values() {
                    *sizes.entry(room.as_str()).or_default() += 1;
                }
                reply.send(sizes.into_iter().map(|(r, n)| (r.to_owned(), n)).collect());
            }
            LobbyMsg::Members { room, reply } => reply.send(
                self.placement
                    .iter()
                    .filter(|(_, (r, _, _))| *r == room)
                    .map(|(key, (_, nick, session))| (key.clone(), nick.clone(), session.clone()))
                    .collect(),
            ),
        }
        Ok(())
    }

    fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
        tracing::warn!(room = %failure.failure.actor, error = %failure.failure.message, "room crashed; restarting it");
        ctx.default_directive(failure)
    }
}
