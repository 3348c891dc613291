//! A supervised game lobby in one process: the demo behind the README's run command.
//!
//! A lobby actor owns eight room actors. Each room ticks at 20 Hz with a fixed-rate timer and
//! keeps a score per player. Simulated players send moves from plain tokio tasks. Now and then a
//! player sends a "cheat" that makes its room panic: the lobby's supervision restarts that room
//! with fresh state behind the same `ActorRef`, and the other rooms never notice. At the end the
//! demo prints each room's statistics and the system's dead-letter count, then shuts down
//! gracefully.
//!
//! Run: `cargo run --release -p actor-core --example rooms`

use std::time::Duration;

use actor_core::prelude::*;
use actor_core::{ChildFailure, MailboxConfig, Overflow};

struct Room {
    id: u32,
    ticks: u64,
    moves: u64,
}

enum RoomMsg {
    Tick,
    Move { player: u32 },
    Cheat,
    Report(Reply<(u32, u64, u64)>),
}

impl Actor for Room {
    type Msg = RoomMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.send_interval("tick", Duration::from_millis(50), || RoomMsg::Tick);
        Ok(())
    }

    async fn handle(&mut self, msg: RoomMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RoomMsg::Tick => self.ticks += 1,
            RoomMsg::Move { player } => {
                self.moves += 1;
                if player == u32::MAX {
                    return Err("invalid player".into());
                }
            }
            RoomMsg::Cheat => panic!("room {}: impossible move detected", self.id),
            RoomMsg::Report(r) => r.send((self.id, self.ticks, self.moves)),
        }
        Ok(())
    }
}

struct Lobby {
    rooms: Vec<ActorRef<RoomMsg>>,
}

enum LobbyMsg {
    Rooms(Reply<Vec<ActorRef<RoomMsg>>>),
}

impl Actor for Lobby {
    type Msg = LobbyMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for id in 0..8 {
            let props = Props::new(move || Room {
                id,
                ticks: 0,
                moves: 0,
            })
            .name(format!("room-{id}"))
            .mailbox(MailboxConfig::bounded(10_000, Overflow::DropOldest));
            self.rooms.push(ctx.spawn(props)?);
        }
        Ok(())
    }

    async fn handle(&mut self, msg: LobbyMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let LobbyMsg::Rooms(r) = msg;
        r.send(self.rooms.clone());
        Ok(())
    }

    fn on_child_failure(&mut self, failure: &ChildFailure, _ctx: &mut Context<Self>) -> Directive {
        println!("  lobby: {} -> restart", failure.failure);
        Directive::Restart
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = ActorSystem::with_runtime(SystemConfig {
        name: "lobby-demo".into(),
        ..Default::default()
    })?;
    let system = rt.system().clone();
    rt.block_on(async {
        // Silence the default panic message for the planned crashes; failures are still logged
        // by the lobby above.
        std::panic::set_hook(Box::new(|_| {}));
        let lobby = system.spawn(Props::new(|| Lobby { rooms: Vec::new() }).name("lobby"))?;
        let rooms = lobby.ask(LobbyMsg::Rooms).await?;
        println!("lobby up with {} rooms: {}", rooms.len(), rooms[0].path());

        let players: Vec<_> = (0..64u32)
            .map(|p| {
                let room = rooms[(p % 8) as usize].clone();
                tokio::spawn(async move {
                    for i in 0..2_000u32 {
                        room.tell(RoomMsg::Move { player: p });
                        if p == 3 && i % 700 == 699 {
                            room.tell(RoomMsg::Cheat);
                        }
                        if i % 100 == 0 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                })
            })
            .collect();
        for p in players {
            p.await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;

        println!(
            "\n{:<28} {:>6} {:>8} {:>9} {:>9}",
            "room", "ticks", "moves", "failures", "restarts"
        );
        for room in &rooms {
            let (id, ticks, moves) = room.ask(RoomMsg::Report).await?;
            let stats = room.stats().ok_or("local room")?;
            println!(
                "{:<28} {:>6} {:>8} {:>9} {:>9}",
                format!("{} (#{id})", stats.path),
                ticks,
                moves,
                stats.failures,
                stats.restarts
            );
        }
        println!(
            "\nactors alive: {}, dead letters: {}",
            system.actor_count(),
            system.dead_letter_count()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let report = rt.shutdown(Duration::from_secs(5));
    println!("shutdown graceful: {}", report.is_graceful());
    Ok(())
}
