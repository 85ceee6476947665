//! A tracing span per served call (issue 10.2): `call` spans with the
//! method label, link id, peer address, outcome and duration, children of
//! the connection's span, which records the link's call count and rate at
//! close. Captured by a subscriber layer that keeps span fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use versile::server::StackConfig;
use versile::{
    CallError, LinkHandle, LinkShutdown, LocalObject, ObjectBuilder, RemoteObject, Server, Value,
};

mod support;
use support::calls::connect_plain;
use support::servers::serve_stack;

const T: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
struct Captured {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

/// Keeps every span's fields (as recorded) by span id, in creation order.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Id, Captured)>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);
impl Visit for Fields<'_> {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_owned(), format!("{v:?}"));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().to_owned(), v.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut c = Captured {
            name: attrs.metadata().name(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.metadata().name()),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut c.fields));
        self.0.lock().unwrap().push((id.clone(), c));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, c)) = spans.iter_mut().rev().find(|(i, _)| i == id) {
            values.record(&mut Fields(&mut c.fields));
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, c)) = spans.iter_mut().rev().find(|(i, _)| *i == id) {
            c.closed = true;
        }
    }
}

fn gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("sp_ok", |_, _| async move { Ok(Value::from(1)) })
        .method("sp_raise", |_, _| async move {
            Err(CallError::exception(("no",)))
        })
        .build()
}

/// The production stack (its trace layer opens the connection span)
/// serving [`gateway`] on loopback, and a PLAIN link to it.
async fn serve_and_connect() -> (Server, LinkHandle, RemoteObject) {
    let server = serve_stack(&StackConfig::unlimited(), gateway);
    let (link, gw) = connect_plain(server.local_addr()).await;
    (server, link, gw)
}

// current_thread: every task runs on this thread, under the default
// subscriber set below.
#[tokio::test(flavor = "current_thread")]
async fn each_call_has_a_span_under_its_connection() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    let _default = tracing::subscriber::set_default(subscriber);

    let (server, link, gw) = serve_and_connect().await;
    gw.call("sp_ok", ()).await.unwrap();
    assert!(gw.call("sp_raise", ()).await.is_err());
    assert!(gw.call("sp_not_declared", ()).await.is_err());
    let client_addr = link.context().local_addr().expect("client address");
    link.shutdown(LinkShutdown::Graceful);
    tokio::time::timeout(T, link.closed()).await.unwrap();
    assert!(server.shutdown(T).await);

    let spans = capture.0.lock().unwrap().clone();
    let calls: Vec<&Captured> = spans
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c.name == "call" && c.fields.contains_key("method"))
        .collect();
    let by_method = |m: &str| {
        calls
            .iter()
            .find(|c| c.fields.get("method").map(String::as_str) == Some(m))
            .unwrap_or_else(|| panic!("no call span for {m}: {spans:#?}"))
    };
    for (method, outcome) in [
        ("sp_ok", "result"),
        ("sp_raise", "exception"),
        ("other", "call_error"),
    ] {
        let c = by_method(method);
        assert_eq!(c.parent, Some("connection"), "{c:?}");
        assert_eq!(c.fields["outcome"], outcome, "{c:?}");
        assert!(c.fields["duration_us"].parse::<u64>().is_ok(), "{c:?}");
        assert_eq!(c.fields["peer"], client_addr.to_string(), "{c:?}");
        assert!(c.fields["link"].parse::<u64>().is_ok(), "{c:?}");
        assert!(c.closed, "{c:?}");
    }
    assert_eq!(
        calls.len(),
        3,
        "the undeclared name is not a span field: {calls:#?}"
    );
    // The server's connection span: calls counted and a rate at close.
    let conn = spans
        .iter()
        .map(|(_, c)| c)
        .find(|c| c.name == "connection" && c.fields.contains_key("calls"))
        .unwrap_or_else(|| panic!("no connection span with calls: {spans:#?}"));
    // The three calls we made (and the server's none).
    assert_eq!(conn.fields["calls"], "3", "{conn:?}");
    assert!(
        conn.fields["calls_per_sec"].parse::<f64>().unwrap() > 0.0,
        "{conn:?}"
    );
}

/// Off by default (the filter is WARN): no call span is created at all.
#[tokio::test(flavor = "current_thread")]
async fn no_call_spans_when_the_level_is_off() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    let _default = tracing::subscriber::set_default(subscriber);
    let (server, link, gw) = serve_and_connect().await;
    gw.call("sp_ok", ()).await.unwrap();
    link.shutdown(LinkShutdown::Forced);
    assert!(server.shutdown(T).await);
    let spans = capture.0.lock().unwrap().clone();
    assert!(
        spans.iter().any(|(_, c)| c.name == "connection"),
        "{spans:#?}"
    );
    assert!(!spans.iter().any(|(_, c)| c.name == "call"), "{spans:#?}");
}
