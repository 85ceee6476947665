//! The hard cap on `method` label values (issue 10.2): with the cap set to
//! 3, an object declaring 10 methods gets labels for the first 3 names the
//! process sees; the rest count as `other`. Its own test binary: the cap
//! and the label table are process-wide.

use std::collections::BTreeSet;
use std::time::Duration;

use versile::object::call_metrics::{method_label_cap, set_method_label_cap};
use versile::ops::install_prometheus;
use versile::{LinkShutdown, LocalObject, ObjectBuilder, Value};

mod support;
use support::calls::connect_plain;
use support::http::method_labels;
use support::servers::serve_plain;

const T: Duration = Duration::from_secs(10);
const CAP: usize = 3;

fn ten_methods() -> LocalObject {
    let mut b = ObjectBuilder::new(());
    for i in 0..10 {
        b = b.method(&format!("cap_m{i}"), |_, _| async move { Ok(Value::None) });
    }
    b.build()
}

#[tokio::test]
async fn declared_methods_beyond_the_cap_count_as_other() {
    assert_eq!(
        method_label_cap(),
        versile::object::call_metrics::DEFAULT_METHOD_LABEL_CAP
    );
    set_method_label_cap(CAP);
    let handle = install_prometheus().unwrap();
    let server = serve_plain(ten_methods).await;
    let (link, gw) = connect_plain(server.local_addr()).await;
    for i in 0..10 {
        gw.call(&format!("cap_m{i}"), ()).await.unwrap();
    }
    for i in 0..100 {
        assert!(gw.call(&format!("cap_undeclared_{i}"), ()).await.is_err());
    }
    let page = handle.render();
    let labels = method_labels(&page, "versile_method_calls_total");
    assert_eq!(
        labels,
        BTreeSet::from(["cap_m0", "cap_m1", "cap_m2", "other"].map(String::from)),
        "{page}"
    );
    assert!(labels.len() <= CAP + 1);
    // The 7 declared methods over the cap answered results; the
    // undeclared names CALL_ERROR.
    assert!(
        page.contains("versile_method_calls_total{method=\"other\",outcome=\"result\"} 7"),
        "{page}"
    );
    assert!(
        page.contains("versile_method_calls_total{method=\"other\",outcome=\"call_error\"} 100"),
        "{page}"
    );
    // The one gateway built declared 7 methods over the cap: each counted.
    assert!(
        page.contains("versile_limits_exceeded_total{limit=\"method_labels\"} 7"),
        "{page}"
    );
    link.shutdown(LinkShutdown::Forced);
    assert!(server.shutdown(T).await);
}
