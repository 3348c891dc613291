//! The [`Actor`] trait: private state, one message type, an async handler, lifecycle hooks and a
//! supervision hook for the actor's children.

use std::future::Future;

use crate::context::Context;
use crate::failure::{ActorResult, ChildFailure, Directive, Failure, Terminated};

/// Something other than a user message that happened to the actor.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Signal {
    /// An actor this one watches ended (see [`Context::watch`]).
    Terminated(Terminated),
    /// No user message arrived for the receive timeout (see [`Context::set_receive_timeout`]).
    ReceiveTimeout,
}

/// An actor: private state that handles one message at a time.
///
/// Each actor is one tokio task. While `handle` awaits, the actor's mailbox waits: the next message
/// is taken only when the current one is done. Two actors that `ask` each other from inside their
/// handlers therefore deadlock until one ask times out (the timeout turns it into an error, never a
/// hang); reply through a message, or [`Context::pipe`] the ask, instead.
///
/// A handler that returns `Err` or panics is a *failure*: the actor is suspended and its parent's
/// [`Actor::on_child_failure`] decides what happens (resume, restart, stop, escalate).
///
/// ```
/// use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, Reply};
///
/// #[derive(Default)]
/// struct Counter { total: u64 }
///
/// enum CounterMsg { Add(u64), Get(Reply<u64>) }
///
/// impl Actor for Counter {
///     type Msg = CounterMsg;
///     async fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<Self>) -> ActorResult {
///         match msg {
///             CounterMsg::Add(n) => self.total += n,
///             CounterMsg::Get(reply) => reply.send(self.total),
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = ActorSystem::new(Default::default()).unwrap();
/// let counter = system.spawn(Props::new(Counter::default)).unwrap();
/// counter.tell(CounterMsg::Add(2));
/// counter.tell(CounterMsg::Add(3));
/// assert_eq!(counter.ask(CounterMsg::Get).await.unwrap(), 5);
/// # }
/// ```
pub trait Actor: Sized + Send + 'static {
    /// The messages this actor accepts, usually an enum.
    type Msg: Send + 'static;

    /// Handles one message.
    ///
    /// The returned future lives inside the actor's task, unboxed, while it runs, so every actor
    /// of this type carries room for it (an idle actor with small state and a small handler
    /// takes a 256-byte tokio task). A handler that holds a large value across an `.await` (a
    /// big buffer, a large nested future) grows every actor of the type, idle or not; box it
    /// (`Box::pin(fut).await`) to keep it out of the task.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send;

    /// Runs once when the actor starts, before its first message. An `Err` is a start failure,
    /// reported to the parent like any other.
    fn started(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ActorResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs first when a graceful stop begins, while the children are still running. The default
    /// does nothing; a supervisor uses it to stop its children in a chosen order
    /// ([`Context::shutdown_child`]). Not run when the actor is killed.
    fn pre_stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs when the actor stops gracefully, after its children have stopped. Not run when the
    /// actor is killed.
    fn stopped(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs on the failed instance before it is replaced (its children are stopped after this).
    fn pre_restart(
        &mut self,
        failure: &Failure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (failure, ctx);
        async {}
    }

    /// Runs on the fresh instance after a restart, instead of `started`. The default calls
    /// `started`.
    fn post_restart(
        &mut self,
        failure: &Failure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        let _ = failure;
        self.started(ctx)
    }

    /// Handles a [`Signal`]. The default ignores it. An `Err` is a failure.
    fn on_signal(
        &mut self,
        signal: Signal,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        let _ = (signal, ctx);
        async { Ok(()) }
    }

    /// Decides what happens to a failed child. The default applies the system's default policy
    /// (see [`crate::SystemConfig::default_supervision`]: restart, at most 10 times in 10 s, then
    /// stop). Use [`Context::restart_child`] / [`Context::stop_child`] here for strategies that act
    /// on siblings too.
    fn on_child_failure(&mut self, failure: &ChildFailure, ctx: &mut Context<Self>) -> Directive {
        ctx.default_directive(failure)
    }
}
