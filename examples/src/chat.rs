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
//! Actors: one **session** per connection, one **room** per room, and a **lobby** that owns the
//! rooms (their supervisor) and the authoritative map of who is in which room. A room that crashes
//! is restarted by the lobby with fresh state and rebuilds its membership from the lobby, so its
//! members stay connected and keep talking.
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

use actor_core::prelude::*;
use actor_core::{ActorId, ChildFailure};
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
    /// The lobby actor.
    pub lobby: ActorRef<LobbyMsg>,
    accept: tokio::task::JoinHandle<()>,
}

impl ChatServer {
    /// Binds `addr` (port 0 for any) and serves until dropped.
    pub async fn start(
        system: &ActorSystem,
        addr: &str,
        config: ChatConfig,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(ChatStats::default());
        let lobby = system
            .spawn(Props::new(Lobby::default).name("chat-lobby"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let accept = {
            let (system, lobby, stats) = (system.clone(), lobby.clone(), stats.clone());
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
                    if let Err(e) = connect(&system, &lobby, &stats, &config, stream, guest) {
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

/// Starts the session actor, the reader task and the writer task of one connection.
fn connect(
    system: &ActorSystem,
    lobby: &ActorRef<LobbyMsg>,
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
        let (lobby, stats, config) = (lobby.clone(), stats.clone(), config.clone());
        let out = out_tx.clone();
        system.spawn(Props::new(move || Session {
            nick: format!("guest-{guest}"),
            room: None,
            out: out.clone(),
            lobby: lobby.clone(),
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

/// Messages of a session.
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

struct Session {
    nick: String,
    room: Option<(String, ActorRef<RoomMsg>)>,
    out: mpsc::Sender<String>,
    lobby: ActorRef<LobbyMsg>,
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
                Some((_, room)) => room.tell(RoomMsg::Say {
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
                    if let Some((_, room)) = &self.room {
                        room.tell(RoomMsg::Renamed {
                            session: ctx.id(),
                            old: old.clone(),
                            new: self.nick.clone(),
                        });
                    }
                    self.lobby.tell(LobbyMsg::Nick {
                        session: ctx.id(),
                        nick: self.nick.clone(),
                    });
                    self.reply(format!("you are now {}", self.nick), ctx);
                }
            }
            "join" => {
                if arg.is_empty() || arg.len() > 64 || arg.contains(char::is_whitespace) {
                    self.reply("a room name is 1-64 characters without spaces", ctx);
                } else {
                    let me = ctx.myself().clone();
                    let joined = self
                        .lobby
                        .ask(|reply| LobbyMsg::Join {
                            room: arg.to_owned(),
                            nick: self.nick.clone(),
                            session: me,
                            reply,
                        })
                        .await?;
                    self.room = Some((arg.to_owned(), joined));
                }
            }
            "leave" => match self.room.take() {
                Some(_) => self.lobby.tell(LobbyMsg::Leave { session: ctx.id() }),
                None => self.reply("you are not in a room", ctx),
            },
            "rooms" => {
                let rooms = self.lobby.ask(LobbyMsg::Rooms).await?;
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
                Some((name, room)) => {
                    let name = name.clone();
                    let who = room.ask(RoomMsg::Who).await?;
                    self.reply(format!("in {name}: {}", who.join(", ")), ctx);
                }
                None => self.reply("you are not in a room", ctx),
            },
            "quit" => {
                self.reply("bye", ctx);
                ctx.stop();
            }
            "crash-room" if self.config.allow_crash => match &self.room {
                Some((_, room)) => room.tell(RoomMsg::Crash),
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

    async fn stopped(&mut self, ctx: &mut Context<Self>) {
        if self.room.take().is_some() {
            self.lobby.tell(LobbyMsg::Leave { session: ctx.id() });
        }
    }
}

/// Messages of a room.
pub enum RoomMsg {
    /// Someone joins.
    Join {
        /// The session's id.
        session: ActorId,
        /// Its nickname.
        nick: String,
        /// Its ref.
        session_ref: ActorRef<SessionMsg>,
    },
    /// Someone leaves.
    Leave {
        /// The session's id.
        session: ActorId,
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
        /// The session's id.
        session: ActorId,
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
    members: BTreeMap<ActorId, Member>,
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
                ctx.unwatch(session);
                if let Some(m) = self.members.remove(&session) {
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
            && let Some(m) = self.members.remove(&t.id)
        {
            self.broadcast(&format!("* {} left {}", m.nick, self.name));
        }
        Ok(())
    }
}

/// Messages of the lobby.
pub enum LobbyMsg {
    /// Put a session in a room (creating the room), leaving its previous room.
    Join {
        /// The room.
        room: String,
        /// The session's nickname.
        nick: String,
        /// The session.
        session: ActorRef<SessionMsg>,
        /// The room's ref.
        reply: Reply<ActorRef<RoomMsg>>,
    },
    /// Take a session out of its room.
    Leave {
        /// The session's id.
        session: ActorId,
    },
    /// A session changed nickname.
    Nick {
        /// The session's id.
        session: ActorId,
        /// Its new nickname.
        nick: String,
    },
    /// The rooms and their sizes.
    Rooms(Reply<Vec<(String, usize)>>),
    /// A room (re)started and needs its members.
    Members {
        /// The room.
        room: String,
        /// Its members: session id, nickname, session.
        reply: Reply<Vec<(ActorId, String, ActorRef<SessionMsg>)>>,
    },
}

#[derive(Default)]
struct Lobby {
    rooms: HashMap<String, ActorRef<RoomMsg>>,
    /// Who is where: session -> (room, nick, ref).
    placement: HashMap<ActorId, (String, String, ActorRef<SessionMsg>)>,
}

impl Lobby {
    fn remove(&mut self, session: ActorId) {
        if let Some((room, _, _)) = self.placement.remove(&session)
            && let Some(r) = self.rooms.get(&room)
        {
            r.tell(RoomMsg::Leave { session });
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
                session,
                reply,
            } => {
                let id = session.id();
                self.remove(id);
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
                    .insert(id, (room, nick.clone(), session.clone()));
                room_ref.tell(RoomMsg::Join {
                    session: id,
                    nick,
                    session_ref: session,
                });
                reply.send(room_ref);
            }
            LobbyMsg::Leave { session } => self.remove(session),
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
                    .map(|(id, (_, nick, session))| (*id, nick.clone(), session.clone()))
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
