//! Per-method call metrics (issue 10.2), scraped from `/metrics` of a
//! server built with the production stack: calls by method and outcome,
//! the duration histogram, calls in flight, and labels a peer cannot
//! multiply (undeclared names count as `other`).
//!
//! One Prometheus recorder per process: every test here installs it
//! through [`scrape_addr`] and uses method names of its own.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use versile::object::call_metrics::DEFAULT_METHOD_LABEL_CAP;
use versile::ops::{install_prometheus, MetricsEndpoint};
use versile::server::StackConfig;
use versile::{
    CallError, LinkHandle, LinkShutdown, LocalObject, ObjectBuilder, RemoteObject, Server, Value,
};

mod support;
use support::calls::connect_plain;
use support::http::{http_get_async, method_labels, metric_sum};
use support::servers::serve_stack;

const T: Duration = Duration::from_secs(10);

/// The recorder and a `/metrics` endpoint for this process (each test has
/// its own runtime, so the endpoint runs on a thread of its own).
fn scrape_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let handle = install_prometheus().expect("install recorder");
                let ep = MetricsEndpoint::bind("127.0.0.1:0", handle).await.unwrap();
                tx.send(ep.local_addr()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv_timeout(T).expect("metrics endpoint")
    })
}

async fn scrape() -> String {
    let (code, page) = http_get_async(scrape_addr(), "/metrics").await;
    assert_eq!(code, 200, "{page}");
    page
}

/// Start a server with the production stack (metrics and trace layers)
/// serving `gateway`, and connect to it.
async fn serve(gateway: fn() -> LocalObject) -> (Server, LinkHandle, RemoteObject) {
    scrape_addr();
    let server = serve_stack(&StackConfig::unlimited(), gateway);
    let (link, gw) = connect_plain(server.local_addr()).await;
    (server, link, gw)
}

fn outcomes_gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("cm_ok", |_, call| async move {
            let (v,): (i64,) = call.into_args()?;
            Ok(Value::from(v))
        })
        .method("cm_raise", |_, _| async move {
            Err(CallError::exception(("on purpose",)))
        })
        .method("cm_fail", |_, _| async move {
            Err(CallError::failed("on purpose"))
        })
        .build()
}

#[tokio::test]
async fn calls_are_counted_per_declared_method_and_outcome() {
    let (server, link, gw) = serve(outcomes_gateway).await;
    let before = scrape().await;
    let other_errors = |page: &str| {
        metric_sum(
            page,
            "versile_method_calls_total",
            &["method=\"other\"", "outcome=\"call_error\""],
        )
    };
    for i in 0..3 {
        assert_eq!(gw.call("cm_ok", (i,)).await.unwrap(), Value::from(i));
    }
    assert!(matches!(
        gw.call("cm_raise", ()).await,
        Err(CallError::Exception(_))
    ));
    assert!(matches!(
        gw.call("cm_fail", ()).await,
        Err(CallError::Failed(_))
    ));
    // Wrong arity of a declared method: CALL_ERROR, under its own name.
    assert!(gw.call("cm_ok", ()).await.is_err());
    // Not declared: CALL_ERROR, counted as `other`.
    assert!(gw.call("cm_undeclared", ()).await.is_err());
    assert!(gw.call("cm_undeclared_too", (1, 2)).await.is_err());

    let page = scrape().await;
    let calls = |m: &str, o: &str| {
        metric_sum(
            &page,
            "versile_method_calls_total",
            &[&format!("method=\"{m}\""), &format!("outcome=\"{o}\"")],
        )
    };
    assert_eq!(calls("cm_ok", "result"), 3.0, "{page}");
    assert_eq!(calls("cm_ok", "call_error"), 1.0, "{page}");
    assert_eq!(calls("cm_ok", "exception"), 0.0, "{page}");
    assert_eq!(calls("cm_raise", "exception"), 1.0, "{page}");
    assert_eq!(calls("cm_fail", "call_error"), 1.0, "{page}");
    assert!(
        other_errors(&page) - other_errors(&before) >= 2.0,
        "undeclared names count as other: {page}"
    );
    assert!(!page.contains("cm_undeclared"), "{page}");
    assert_eq!(
        metric_sum(
            &page,
            "versile_method_call_duration_seconds_count",
            &["method=\"cm_ok\""]
        ),
        4.0,
        "{page}"
    );
    // Buckets from install_prometheus (a histogram, not a summary).
    assert!(
        page.contains(
            "versile_method_call_duration_seconds_bucket{method=\"cm_ok\",le=\"0.0005\"}"
        ),
        "{page}"
    );
    assert_eq!(
        metric_sum(
            &page,
            "versile_method_calls_in_flight",
            &["method=\"cm_ok\""]
        ),
        0.0
    );
    link.shutdown(LinkShutdown::Forced);
    assert!(server.shutdown(T).await);
}

/// A peer sending thousands of distinct method names adds no label value.
#[tokio::test]
async fn distinct_undeclared_names_add_no_label_values() {
    fn gateway() -> LocalObject {
        ObjectBuilder::new(())
            .method("cm_flood_ok", |_, _| async move { Ok(Value::None) })
            .build()
    }
    let (server, link, gw) = serve(gateway).await;
    gw.call("cm_flood_ok", ()).await.unwrap();
    let before = method_labels(&scrape().await, "versile_method_calls_total");
    for i in 0..2000 {
        let name = format!("cm_attack_{i}");
        assert!(gw.call(&name, ()).await.is_err());
    }
    let page = scrape().await;
    let after = method_labels(&page, "versile_method_calls_total");
    assert!(after.contains("other"), "{after:?}");
    assert!(after.contains("cm_flood_ok"), "{after:?}");
    // Other tests may declare their own names meanwhile, but none of the
    // attacker's got a label, and the total stays under the cap + 1.
    assert!(
        after.iter().all(|m| !m.starts_with("cm_attack_")),
        "{after:?}"
    );
    assert!(after.len() <= DEFAULT_METHOD_LABEL_CAP + 1);
    assert!(after.len() <= before.len() + 4, "{before:?} -> {after:?}");
    assert!(!page.contains("cm_attack_"));
    let histogram = method_labels(&page, "versile_method_call_duration_seconds_bucket");
    assert!(histogram.contains("other"), "{page}");
    assert!(histogram.is_subset(&after), "{histogram:?} vs {after:?}");
    link.shutdown(LinkShutdown::Forced);
    assert!(server.shutdown(T).await);
}

/// The per-method and per-link in-flight gauges while a call runs; a call
/// abandoned by a forced close counts as `cancelled`.
#[tokio::test]
async fn calls_in_flight_and_cancelled_calls() {
    static GATE: OnceLock<(mpsc::UnboundedSender<()>, Arc<Notify>)> = OnceLock::new();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    GATE.set((started_tx, Arc::new(Notify::new()))).unwrap();
    fn gateway() -> LocalObject {
        ObjectBuilder::new(())
            .method("cm_hold", |_, _| async move {
                let (started, release) = GATE.get().unwrap();
                let _ = started.send(());
                release.notified().await;
                Ok(Value::None)
            })
            .build()
    }
    let (server, link, gw) = serve(gateway).await;
    let held = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.call("cm_hold", ()).await })
    };
    tokio::time::timeout(T, started.recv()).await.unwrap();
    let page = scrape().await;
    assert_eq!(
        metric_sum(
            &page,
            "versile_method_calls_in_flight",
            &["method=\"cm_hold\""]
        ),
        1.0,
        "{page}"
    );
    assert!(
        metric_sum(&page, "versile_calls_in_flight", &[]) >= 1.0,
        "{page}"
    );

    // Force the link down under the running call.
    server.stop(versile::StopLinks::Force);
    let r = tokio::time::timeout(T, held).await.unwrap().unwrap();
    assert!(r.is_err(), "a forced close fails the call");
    server.drained().await;
    // The aborted call task is dropped by the runtime soon after.
    let cancelled = |page: &str| {
        metric_sum(
            page,
            "versile_method_calls_total",
            &["method=\"cm_hold\"", "outcome=\"cancelled\""],
        )
    };
    let deadline = tokio::time::Instant::now() + T;
    let mut page = scrape().await;
    while cancelled(&page) < 1.0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        page = scrape().await;
    }
    assert_eq!(cancelled(&page), 1.0, "{page}");
    assert_eq!(
        metric_sum(
            &page,
            "versile_method_calls_in_flight",
            &["method=\"cm_hold\""]
        ),
        0.0,
        "{page}"
    );
    drop(link);
}
