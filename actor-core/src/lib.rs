//! # actor-core
//!
//! Typed actors for game servers, in the lineage of Erlang/OTP and Akka, on tokio's
//! work-stealing runtime.
//!
//! * An [`Actor`] owns private state and handles one message type, one message at a time.
//! * An [`ActorRef<M>`] is typed by the messages it accepts, cheap to clone, `Send + Sync`, and
//!   stays valid across restarts. [`ActorRef::tell`] never blocks; [`ActorRef::ask`] returns the
//!   answer or an [`AskError`] that keeps delivery failures apart from the actor's own answer.
//! * Mailboxes have a system lane that is always served first and a user lane chosen at spawn
//!   ([`MailboxConfig`]): unbounded, bounded with an [`Overflow`] policy, priority classes, or
//!   conflating.
//! * Failures (an `Err` or a panic) are contained: the actor is suspended and its parent decides
//!   ([`Directive`]): resume, restart with fresh state, stop, or escalate.
//! * Every undeliverable message is a counted [`DeadLetter`].
//!
//! See `docs/semantics.md` in the repository for the delivery, ordering and lifecycle contract.
//!
//! ```
//! use actor_core::prelude::*;
//!
//! struct Greeter;
//! enum Greet { Hello(String, Reply<String>) }
//!
//! impl Actor for Greeter {
//!     type Msg = Greet;
//!     async fn handle(&mut self, msg: Greet, _ctx: &mut Context<Self>) -> ActorResult {
//!         let Greet::Hello(name, reply) = msg;
//!         reply.send(format!("hello, {name}"));
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let system = ActorSystem::new(SystemConfig::default()).unwrap();
//! let greeter = system.spawn(Props::new(|| Greeter).name("greeter")).unwrap();
//! let answer = greeter.ask(|r| Greet::Hello("ada".into(), r)).await.unwrap();
//! assert_eq!(answer, "hello, ada");
//! # }
//! ```

mod actor;
mod actor_ref;
mod ask;
mod cell;
mod context;
mod dead_letters;
mod failure;
mod group;
mod handoff;
mod mailbox;
mod path;
mod props;
mod runner;
mod slab;
mod slim_deque;
mod sync;
mod system;
pub mod testkit;
mod timer;
pub mod transport;
mod yielding;

pub use actor::{Actor, Signal};
pub use actor_ref::{
    ActorRef, ActorStats, DEFAULT_ASK_TIMEOUT, RefTarget, SendError, TrySendError,
};
pub use ask::{AskError, Reply};
pub use cell::Watcher;
pub use context::{ChildInfo, Context, StartError, StashError};
pub use dead_letters::{DeadLetter, DeadLetterReason, DeadLetterSubscription};
pub use failure::{
    ActorError, ActorResult, ChildFailure, Directive, Failure, FailureKind, FailurePhase,
    RestartLimit, SupervisionPolicy, Terminated, TerminationReason,
};
pub use group::ActorGroup;
pub use mailbox::{MailboxConfig, Overflow};
pub use path::{ActorId, ActorPath};
pub use props::Props;
pub use system::{
    ActorSystem, LookupError, ShutdownReport, SpawnError, SystemConfig, SystemError, SystemRuntime,
};
pub use timer::TimerKey;

/// The names nearly every program uses: `use actor_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Actor, ActorRef, ActorResult, ActorSystem, Context, Directive, Props, Reply, Signal,
        SystemConfig,
    };
}
