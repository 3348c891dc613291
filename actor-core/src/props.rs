//! [`Props`]: how to build an actor (its factory, used again on every restart) and how to run it
//! (name, mailbox, where it runs, stash size).

use std::fmt;
use std::sync::Arc;

use crate::actor::Actor;
use crate::group::ActorGroup;
use crate::mailbox::MailboxConfig;

/// Where an actor's loop runs.
#[derive(Clone, Debug, Default)]
pub(crate) enum Placement {
    /// A tokio task of its own on the system's runtime.
    #[default]
    Task,
    /// A thread of its own, with a single-threaded runtime.
    DedicatedThread,
    /// Inside a group's task.
    Group(ActorGroup),
}

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
    pub(crate) placement: Placement,
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
            placement: Placement::Task,
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
    /// runtime. Replaces an earlier [`Props::group`].
    pub fn dedicated_thread(mut self) -> Self {
        self.placement = Placement::DedicatedThread;
        self
    }

    /// Runs the actor inside `group`'s task instead of a tokio task of its own: messages between
    /// members of one group never go through tokio's scheduler (see [`ActorGroup`] for when that
    /// pays). Replaces an earlier [`Props::dedicated_thread`]. The group applies to this actor
    /// only; its children go where their own props say (a member finds its group with
    /// [`crate::Context::group`], to spawn them next to itself).
    ///
    /// ```
    /// # use actor_core::prelude::*;
    /// # struct Player;
    /// # impl Actor for Player { type Msg = (); async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult { Ok(()) } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let system = ActorSystem::new(SystemConfig::default()).unwrap();
    /// let room = system.group();
    /// let player = system.spawn(Props::new(|| Player).group(&room)).unwrap();
    /// # }
    /// ```
    pub fn group(mut self, group: &ActorGroup) -> Self {
        self.placement = Placement::Group(group.clone());
        self
    }

    /// How many messages the actor may stash (default: [`crate::SystemConfig::stash_capacity`]).
    pub fn stash_capacity(mut self, capacity: usize) -> Self {
        self.stash_capacity = Some(capacity);
        self
    }

    /// Messages handled per activation before the actor yields its worker (default:
    /// [`crate::SystemConfig::throughput`]; at most 65,535: larger values count as that).
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
            placement: self.placement.clone(),
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
            .field("placement", &self.placement)
            .finish()
    }
}
