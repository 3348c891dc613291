//! Actors shared by the supervision tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_core::prelude::*;

pub const T: Duration = Duration::from_secs(30);

/// A child that reports its lifecycle as strings: "started NAME #INSTANCE", "stopped NAME #I".
pub struct Probe {
    pub name: &'static str,
    pub instance: u32,
    pub seen: u32,
    pub out: ActorRef<String>,
    /// Fail `started` for every instance at or after this one.
    pub fail_start_from: Option<u32>,
}

pub enum ProbeMsg {
    Work,
    Fail,
    StopSelf,
    Seen(Reply<(u32, u32)>),
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    async fn started(&mut self, _ctx: &mut Context<Self>) -> ActorResult {
        if self.fail_start_from.is_some_and(|n| self.instance >= n) {
            self.out
                .tell(format!("start-failed {} #{}", self.name, self.instance));
            return Err(format!("{} cannot start", self.name).into());
        }
        self.out
            .tell(format!("started {} #{}", self.name, self.instance));
        Ok(())
    }
    async fn handle(&mut self, msg: ProbeMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ProbeMsg::Work => self.seen += 1,
            ProbeMsg::Fail => return Err(format!("{} failed", self.name).into()),
            ProbeMsg::StopSelf => ctx.stop(),
            ProbeMsg::Seen(r) => r.send((self.instance, self.seen)),
        }
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.out
            .tell(format!("stopped {} #{}", self.name, self.instance));
    }
}

/// Props whose instances count up from 0 across restarts.
pub fn probe(name: &'static str, out: &ActorRef<String>) -> Props<Probe> {
    probe_failing(name, out, None)
}

pub fn probe_failing(
    name: &'static str,
    out: &ActorRef<String>,
    fail_start_from: Option<u32>,
) -> Props<Probe> {
    let counter = Arc::new(AtomicU32::new(0));
    let out = out.clone();
    Props::new(move || Probe {
        name,
        instance: counter.fetch_add(1, Ordering::SeqCst),
        seen: 0,
        out: out.clone(),
        fail_start_from,
    })
}

/// A parent that supervises one child with a fixed directive and reports the failures it sees.
pub struct Reporter<A: Actor> {
    pub child: Props<A>,
    pub failures: ActorRef<actor_core::ChildFailure>,
    pub directive: Directive,
}

impl<A: Actor> Actor for Reporter<A> {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.spawn(self.child.clone())?;
        Ok(())
    }
    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    fn on_child_failure(
        &mut self,
        f: &actor_core::ChildFailure,
        _ctx: &mut Context<Self>,
    ) -> Directive {
        self.failures.tell(f.clone());
        self.directive
    }
}

pub async fn expect_all(
    probe: &mut actor_core::testkit::TestProbe<String>,
    n: usize,
) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(probe.expect_msg(T).await);
    }
    v
}
