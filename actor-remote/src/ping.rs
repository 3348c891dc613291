//! A health-check actor every node can expose: [`spawn_ping`] starts it at `/user/ping`, and a
//! peer asks it [`PingMsg::Ping`] to learn that the node answers, its name and its incarnation
//! (a changed incarnation means the process restarted). Watching it from another node is the
//! simplest way to be told when that node goes away.
//!
//! ```no_run
//! # async fn demo(node: &actor_remote::node::Node) -> Result<(), Box<dyn std::error::Error>> {
//! use actor_core::ActorRef;
//! use actor_remote::ping::{PingMsg, PING_PATH};
//! let ping: ActorRef<PingMsg> = node.lookup("beta", PING_PATH).await?;
//! let pong = ping.ask(|reply| PingMsg::Ping { reply }).await?;
//! println!("{} (incarnation {}) answered", pong.node, pong.incarnation);
//! # Ok(()) }
//! ```

use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, Reply, SpawnError};
use serde::{Deserialize, Serialize};

use crate::node::Node;

/// Where [`spawn_ping`] puts the ping actor.
pub const PING_PATH: &str = "/user/ping";

/// What the ping actor accepts.
#[derive(Debug, Serialize, Deserialize)]
pub enum PingMsg {
    /// Answer with a [`Pong`].
    Ping {
        /// Where the answer goes.
        reply: Reply<Pong>,
    },
}

/// The answer to a ping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The answering node's name.
    pub node: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Pings it answered so far, this one included.
    pub answered: u64,
}

struct Ping {
    node: String,
    incarnation: u64,
    answered: u64,
}

impl Actor for Ping {
    type Msg = PingMsg;
    async fn handle(&mut self, msg: PingMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let PingMsg::Ping { reply } = msg;
        self.answered += 1;
        reply.send(Pong {
            node: self.node.clone(),
            incarnation: self.incarnation,
            answered: self.answered,
        });
        Ok(())
    }
}

/// Spawns the ping actor at [`PING_PATH`] in `system` and exposes it on `node`.
pub fn spawn_ping(system: &ActorSystem, node: &Node) -> Result<ActorRef<PingMsg>, SpawnError> {
    let (name, incarnation) = (node.name().to_owned(), node.incarnation());
    let ping = system.spawn(
        Props::new(move || Ping {
            node: name.clone(),
            incarnation,
            answered: 0,
        })
        .name("ping"),
    )?;
    node.expose(&ping);
    Ok(ping)
}
