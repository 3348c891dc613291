//! # supervision
//!
//! Erlang/OTP's supervisor patterns and Akka's backoff supervisor, on top of actor-core's failure
//! containment:
//!
//! * [`Strategy`]: one-for-one, one-for-all, rest-for-one;
//! * [`RestartType`]: permanent, transient, temporary; [`Shutdown`] per child;
//! * [`Intensity`]: at most N restarts in T, beyond which the supervisor gives up and the failure
//!   escalates up the tree;
//! * [`Backoff`]: exponential delays with jitter, reset after a stable period;
//! * [`SupervisionStrategy`]: all of the above as the policy of any actor over its children;
//! * [`Supervisor`]: an actor with a declared, ordered list of children ([`ChildSpec`]) plus
//!   children added and removed at run time;
//! * [`DynamicSupervisor`]: many children of one kind (OTP's `simple_one_for_one`), e.g. one per
//!   game room.
//!
//! Decisions are pure functions ([`Decider::decide`]) of the child's end, the time and the
//! history, tested without a runtime.

mod backoff;
mod decider;
mod dynamic;

mod strategy;
mod supervisor;

pub use backoff::Backoff;
pub use decider::{
    ChildExit, ChildHistory, Decider, Decision, Exit, Intensity, RestartHistory, RestartType,
    Strategy,
};

pub use dynamic::{DynamicMsg, DynamicSupervisor, DynamicSupervisorApi, DynamicSupervisorBuilder};
pub use strategy::SupervisionStrategy;
pub use supervisor::{
    ChildReport, ChildSpec, ChildStatus, Shutdown, Supervisor, SupervisorApi, SupervisorBuilder,
    SupervisorError, SupervisorMsg,
};
