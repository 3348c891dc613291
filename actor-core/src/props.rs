//! [`Props`]: how to build an actor (its factory, used again on every restart) and how to run it
//! (name, mailbox, dedicated thread, stash size).

use std::fmt;
use std::sync::Arc;

use crate::actor::Actor;
use crate::mailbox::MailboxConfig;

/// The recipe for an actor. The factory builds fresh state at spawn and at every restart, so a
/// restarted actor never sees the state that failed.
///
/// ```
/// # use actor_core::{Actor, ActorResult, Context, MailboxConfig, Overflow, Props};
/// # struct Room { id: u32 }
/// # impl Actor for Room { type Msg = (); async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult { Ok(()) } }
/// let room_id = 7;
/// let props = Props::new(move || Room { id: room_id })
///     .name(format!("room-{room_id}"))
///     .mailbox(MailboxConfig::bounded(10_000, Overflow::DropOldest));
/// ```
pub struct Props<A: Actor> {
    pub(crate) factory: Arc<dyn Fn() -> A + Send + Sync>,
    pub(crate) name: Option<String>,
    pub(crate) mailbox: MailboxConfig<A::Msg>,
    pub(crate) dedicated_thread: bool,
    pub(crate) stash_capacity: Option<usize>,
    pub(crate) throughput: Option<usize>,
}

impl<A: Actor> Props<A> {
    /// Props from a factory of the actor's initial state.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        Self {
            factory: Arc::new(factory),
            name: None,
            mailbox: MailboxConfig::default(),
            dedicated_thread: false,
            stash_capacity: None,
            throughput: None,
        }
    }

    /// Names the actor: its path becomes `<parent path>/<name>` and it can be found with
    /// [`crate::ActorSystem::lookup`]. Names are unique among siblings; no `/`, no leading `$`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The user lane of the actor's mailbox (default: unbounded).
    pub fn mailbox(mut self, config: MailboxConfig<A::Msg>) -> Self {
        self.mailbox = config;
        self
    }

    /// Runs the actor on a thread of its own (with a single-threaded tokio runtime), for actors
    /// that block: CPU-heavy simulation, blocking IO. It never holds up a worker of the shared
    /// runtime.
    pub fn dedicated_thread(mut self) -> Self {
        self.dedicated_thread = true;
        self
    }

    /// How many messages the actor may stash (default: [`crate::SystemConfig::stash_capacity`]).
    pub fn stash_capacity(mut self, capacity: usize) -> Self {
        self.stash_capacity = Some(capacity);
        self
    }

    /// Messages handled per activation before the actor yields its worker (default:
    /// [`crate::SystemConfig::throughput`]).
    pub fn throughput(mut self, messages: usize) -> Self {
        self.throughput = Some(messages.max(1));
        self
    }
}

impl<A: Actor> Clone for Props<A> {
    fn clone(&self) -> Self {
        Self {
            factory: self.factory.clone(),
            name: self.name.clone(),
            mailbox: self.mailbox.clone(),
            dedicated_thread: self.dedicated_thread,
            stash_capacity: self.stash_capacity,
            throughput: self.throughput,
        }
    }
}

impl<A: Actor> fmt::Debug for Props<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Props")
            .field("actor", &std::any::type_name::<A>())
            .field("name", &self.name)
            .field("mailbox", &self.mailbox)
            .field("dedicated_thread", &self.dedicated_thread)
            .finish()
    }
}
