//! Every restart, give-up and escalation is logged with the child's path, the error and the
//! restart count.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actor_core::prelude::*;
use actor_core::testkit::TestProbe;
use common::*;
use parking_lot::Mutex;
use supervision::{ChildSpec, RestartType, Strategy, Supervisor, SupervisorApi};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn restarts_give_ups_and_escalations_are_logged() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("rt");
    rt.block_on(async {
        let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
        let mut events = TestProbe::<String>::new(&sys);
        let out = events.actor_ref();
        let sup = sys
            .spawn(
                Supervisor::builder(Strategy::OneForOne)
                    .intensity(1, Duration::from_secs(5))
                    .child(ChildSpec::new("worker", probe("worker", &out)))
                    .child(
                        ChildSpec::new("temp", probe("temp", &out)).restart(RestartType::Temporary),
                    )
                    .props()
                    .name("sup"),
            )
            .expect("spawn");
        sup.which_children().await.expect("started");
        expect_all(&mut events, 2).await;

        sys.lookup::<ProbeMsg>("/user/sup/temp")
            .expect("temp")
            .tell(ProbeMsg::Fail);
        events.expect_msg(T).await;
        let worker: ActorRef<ProbeMsg> = sys.lookup("/user/sup/worker").expect("worker");
        worker.tell(ProbeMsg::Fail);
        assert_eq!(events.expect_msg(T).await, "started worker #1");
        worker.tell(ProbeMsg::Fail);
        events.expect_msg(T).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    let lines = buffer.lines();
    let find = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        find(&[
            "restarting child",
            "/user/sup/worker",
            "worker failed",
            "restarts=1"
        ]),
        "restart not logged: {lines:#?}"
    );
    assert!(
        find(&["child not restarted", "/user/sup/temp", "temp failed"]),
        "give-up not logged: {lines:#?}"
    );
    assert!(
        find(&[
            "restart intensity exceeded",
            "/user/sup/worker",
            "worker failed",
            "restarts=1"
        ]),
        "escalation not logged: {lines:#?}"
    );
}
