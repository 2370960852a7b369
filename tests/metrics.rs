//! What the runtime reports through the `metrics` facade (feature `metrics`), read back from a
//! recorder installed for this test binary alone: messages and deliveries stored, attempts by
//! outcome with their durations, claims, and the queue's depth sampled from the store.

mod common;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use webhooks::metrics as names;
use webhooks::store::SqliteStore;
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Notification, RetryPolicy, Subscription, Webhooks};

use common::{DEADLINE, RandomNumber, builder, wait_for};

type Snapshot = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

fn find<'a>(
    snapshot: &'a Snapshot,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let matches = key.kind() == kind
            && key.key().name() == name
            && labels.iter().all(|(n, v)| {
                key.key()
                    .labels()
                    .any(|label| label.key() == *n && label.value() == *v)
            });
        matches.then_some(value)
    })
}

fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(snapshot, MetricKind::Counter, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

fn histogram_count(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> usize {
    match find(snapshot, MetricKind::Histogram, name, labels) {
        Some(DebugValue::Histogram(values)) => values.len(),
        _ => 0,
    }
}

// One test: the recorder is global to the binary, and a snapshot drains what it reads.
#[tokio::test]
async fn the_runtime_reports_what_it_does() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    // Three events; the first attempt of one fails, so one retry.
    let receiver = TestReceiver::start().await.unwrap();
    receiver.script([Reply::status(500)]);
    let hooks = builder().build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let mut notifications = hooks.notifications();
    for n in 0..3 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    let mut delivered = 0;
    while delivered < 3 {
        wait_for(&mut notifications, |n| {
            matches!(n, Notification::Delivered { .. }).then_some(())
        })
        .await;
        delivered += 1;
    }
    hooks.shutdown().await;

    // A snapshot takes what was recorded since the previous one: one for all the checks.
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(counter(&snapshot, names::MESSAGES_SENT, &[]), 3);
    assert_eq!(counter(&snapshot, names::DELIVERIES_CREATED, &[]), 3);
    assert_eq!(
        counter(&snapshot, names::ATTEMPTS, &[("outcome", "delivered")]),
        3
    );
    assert_eq!(
        counter(&snapshot, names::ATTEMPTS, &[("outcome", "retry")]),
        1
    );
    assert_eq!(
        counter(&snapshot, names::CLAIMED, &[]),
        4,
        "three first attempts, one retry"
    );
    assert_eq!(
        histogram_count(
            &snapshot,
            names::ATTEMPT_DURATION,
            &[("outcome", "delivered")]
        ),
        3
    );
    assert_eq!(
        counter(&snapshot, names::STORE_ERRORS, &[("operation", "claim")]),
        0
    );

    // The queue's depth, sampled from the store when a dispatcher starts: five deliveries left
    // by a send-only runtime, failing with a long retry, stay unfinished.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.db");
    let failing = TestReceiver::start().await.unwrap();
    failing.respond_with(|_| Some(Reply::status(503)));
    let sender = Webhooks::builder()
        .store(SqliteStore::open(&path).await.unwrap())
        .allow_private_networks()
        .send_only()
        .build()
        .await
        .unwrap();
    sender
        .subscribe(Subscription::new(failing.url()).unwrap())
        .await
        .unwrap();
    for n in 0..5 {
        sender.send(&RandomNumber(n)).await.unwrap();
    }
    sender.shutdown().await;
    drop(sender);
    let worker = Webhooks::builder()
        .store(SqliteStore::open(&path).await.unwrap())
        .allow_private_networks()
        .retry(RetryPolicy::schedule(vec![Duration::from_secs(3600)]))
        .build()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let snapshot = snapshotter.snapshot().into_vec();
        if let Some(DebugValue::Gauge(depth)) =
            find(&snapshot, MetricKind::Gauge, names::QUEUE_DEPTH, &[])
            && depth.into_inner() == 5.0
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue depth reaches 5"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
}
