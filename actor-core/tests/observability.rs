//! Tracing: spawn, failure (with path and error), restart, stop and dead letters are events;
//! the per-message hot path emits nothing above `trace`.

use std::sync::Arc;
use std::time::Duration;

use actor_core::prelude::*;
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(tracing::Level, String)>>>);

struct Fields(String);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        self.0.lock().push((*event.metadata().level(), f.0));
    }
}

impl Captured {
    fn take(&self) -> Vec<(tracing::Level, String)> {
        std::mem::take(&mut *self.0.lock())
    }
}

struct Echo;
enum EchoMsg {
    Hit,
    Fail,
    Ping(Reply<()>),
}
impl Actor for Echo {
    type Msg = EchoMsg;
    async fn handle(&mut self, msg: EchoMsg, _ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            EchoMsg::Hit => Ok(()),
            EchoMsg::Fail => Err("bad input from client".into()),
            EchoMsg::Ping(r) => {
                r.send(());
                Ok(())
            }
        }
    }
}

/// Runs `test` on a one-thread runtime with `layer` taking everything at `debug` and above.
fn traced<L>(layer: L, test: impl std::future::Future<Output = ()>)
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let subscriber =
        Registry::default().with(layer.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
    let _guard = tracing::subscriber::set_default(subscriber);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt")
        .block_on(test);
}

#[test]
fn lifecycle_is_traced_and_the_hot_path_is_quiet() {
    let captured = Captured::default();
    traced(captured.clone(), async {
        let sys = ActorSystem::new(SystemConfig::default()).expect("rt");
        let echo = sys.spawn(Props::new(|| Echo).name("echo")).expect("spawn");
        echo.ask(EchoMsg::Ping).await.expect("pong");
        let spawn_events = captured.take();
        assert!(
            spawn_events
                .iter()
                .any(|(_, f)| f.contains("actor spawned") && f.contains("/user/echo")),
            "{spawn_events:?}"
        );

        // 10,000 messages: no event at debug or above.
        for _ in 0..10_000 {
            echo.tell(EchoMsg::Hit);
        }
        echo.ask(EchoMsg::Ping).await.expect("pong");
        let hot = captured.take();
        assert!(
            hot.is_empty(),
            "hot path emitted {} events: {:?}",
            hot.len(),
            hot.first()
        );

        echo.tell(EchoMsg::Fail);
        echo.ask(EchoMsg::Ping)
            .await
            .expect("restarted and answering");
        let failure = captured.take();
        let has = |level: tracing::Level, needles: &[&str]| {
            failure
                .iter()
                .any(|(l, f)| *l == level && needles.iter().all(|n| f.contains(n)))
        };
        assert!(
            has(
                tracing::Level::ERROR,
                &["actor failed", "/user/echo", "bad input from client"]
            ),
            "{failure:?}"
        );
        assert!(
            has(
                tracing::Level::INFO,
                &["actor restarted", "/user/echo", "restarts=1"]
            ),
            "{failure:?}"
        );

        echo.stop();
        echo.wait_for_stop().await;
        echo.tell(EchoMsg::Hit);
        let end = captured.take();
        assert!(
            end.iter()
                .any(|(_, f)| f.contains("actor stopped") && f.contains("/user/echo")),
            "{end:?}"
        );
        assert!(
            end.iter()
                .any(|(_, f)| f.contains("dead letter") && f.contains("recipient stopped")),
            "{end:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
}

/// Events keep, beside their own fields, the fields of the span they were emitted in.
#[derive(Clone, Default)]
struct InSpan(Arc<Mutex<Vec<String>>>);

impl<S> Layer<S> for InSpan
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        let mut f = Fields(String::new());
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: LayerContext<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(f) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(f);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        let span = ctx
            .event_span(event)
            .map(|s| {
                let fields = s
                    .extensions()
                    .get::<Fields>()
                    .map(|f| f.0.clone())
                    .unwrap_or_default();
                format!("{}{{{fields}}}", s.name())
            })
            .unwrap_or_default();
        self.0.lock().push(format!("{} in {span}", f.0));
    }
}

/// Logs each message it handles.
struct Chatty;

impl Actor for Chatty {
    type Msg = u32;
    async fn handle(&mut self, msg: u32, _ctx: &mut Context<Self>) -> ActorResult {
        tracing::info!(msg, "handled");
        Ok(())
    }
}

/// With `debug` spans on, an actor's code runs in an `actor` span that names the actor's path,
/// whether the actor is a task of its own or a group's member.
#[test]
fn an_actors_events_carry_its_path_in_and_out_of_groups() {
    let captured = InSpan::default();
    traced(captured.clone(), async {
        let sys = ActorSystem::new(SystemConfig::default()).expect("system");
        let solo = sys
            .spawn(Props::new(|| Chatty).name("solo"))
            .expect("spawn");
        let group = sys.group();
        let member = sys
            .spawn(Props::new(|| Chatty).group(&group))
            .expect("spawn into the group");
        solo.tell(1);
        member.tell(2);
        // A stop overtakes queued messages: let both be handled first (bounded, no sleep).
        for _ in 0..10_000 {
            if captured
                .0
                .lock()
                .iter()
                .filter(|e| e.contains("handled"))
                .count()
                == 2
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        solo.stop();
        member.stop();
        solo.wait_for_stop().await;
        member.wait_for_stop().await;
        let events = captured.0.lock().clone();
        for (msg, path) in [(1, "/user/solo".to_owned()), (2, member.path().to_string())] {
            let expected = format!("msg={msg}  in actor{{path={path} }}");
            assert!(
                events
                    .iter()
                    .any(|e| e.contains("handled") && e.ends_with(&expected)),
                "no event ending in {expected:?}: {events:?}"
            );
        }
    });
}
