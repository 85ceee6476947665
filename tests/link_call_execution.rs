//! Where incoming calls run (`CallLimits::execution`): inside the link
//! task for their first poll (the default), or each in its own task.

use std::time::Duration;

use versile::runtime::{CallExecution, CallLimits};
use versile::{Client, ClientConfig, LinkOptions, LinkShutdown, ObjectBuilder, StopLinks, Value};

mod support;
use support::servers::serve_plain_on;

/// A gateway whose `task()` answers with the id of the task it runs in,
/// and whose `later()` awaits before answering the same.
fn gateway() -> versile::LocalObject {
    let id = || {
        Value::String(
            tokio::task::try_id()
                .map(|i| i.to_string())
                .unwrap_or_default(),
        )
    };
    ObjectBuilder::new(())
        .method("task", move |_, _| async move { Ok(id()) })
        .method("later", move |_, _| async move {
            tokio::task::yield_now().await;
            Ok(id())
        })
        .build()
}

/// Task ids seen by two `task()` calls and two `later()` calls.
async fn task_ids(execution: CallExecution) -> [Value; 4] {
    let options = LinkOptions {
        calls: CallLimits {
            execution,
            ..CallLimits::default()
        },
        ..LinkOptions::default()
    };
    let server = serve_plain_on("127.0.0.1:0", gateway, options).await;
    let run = async {
        let client = Client::new(ClientConfig::insecure());
        let (link, gw) = client
            .connect(&server.local_addr().to_string())
            .await
            .expect("connect");
        let mut ids = Vec::new();
        for method in ["task", "task", "later", "later"] {
            ids.push(gw.call(method, ()).await.expect("call"));
        }
        drop(gw);
        link.shutdown(LinkShutdown::Forced);
        ids
    };
    let ids = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("calls finish");
    server.stop(StopLinks::Force);
    let _ = server.shutdown(Duration::from_secs(2)).await;
    ids.try_into().expect("four answers")
}

#[tokio::test]
async fn a_call_that_completes_at_once_runs_in_the_link_task() {
    let [a, b, c, d] = task_ids(CallExecution::InlineFirstPoll).await;
    assert_ne!(a, Value::String(String::new()), "runs inside a task");
    assert_eq!(a, b, "both quick calls ran in the link's own task");
    // A call that waits goes on in a task of its own.
    assert_ne!(c, a);
    assert_ne!(d, a);
    assert_ne!(c, d);
}

#[tokio::test]
async fn with_call_execution_task_every_call_has_its_own_task() {
    let [a, b, c, d] = task_ids(CallExecution::Task).await;
    assert_ne!(a, Value::String(String::new()), "runs inside a task");
    assert_ne!(a, b, "each call in a task of its own");
    assert_ne!(c, d);
}
