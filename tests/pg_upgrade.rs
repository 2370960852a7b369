//! `PostgresStore`'s migrations upgrade a database in use: a schema built at an older version
//! by hand (version 1: `0001` alone; version 2: `0001` and `0002`), holding subscriptions,
//! messages, pending and finished deliveries and their attempts, is opened by a runtime (which
//! migrates it), its delivery log reads as it was, and its pending deliveries (one with an old
//! failed attempt, one left leased by a worker that died, an ordered subscription's two) are
//! delivered over real HTTP on loopback.
//!
//! Needs `WEBHOOKS_TEST_POSTGRES_URL`; without it each test says it was skipped and passes.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::postgres::Schema;
use webhooks::store::{DeliveryStatus, PostgresStore};
use webhooks::testing::TestReceiver;
use webhooks::{DeliveryId, MessageId, Secret, SubscriptionId, Webhooks};

const V1: &str = include_str!("../webhooks/migrations/postgres/0001_initial.sql");
const V2: &str = include_str!("../webhooks/migrations/postgres/0002_many_workers.sql");
const V3: &str = include_str!("../webhooks/migrations/postgres/0003_lean_queue.sql");

/// The version every store leaves: the number of migrations.
const LATEST: i32 = 4;

/// What the old schema holds.
struct Old {
    plain: SubscriptionId,
    ordered: SubscriptionId,
    /// Delivered, with one attempt (200).
    delivered: (MessageId, DeliveryId),
    /// Exhausted, with two attempts (503).
    exhausted: (MessageId, DeliveryId),
    /// Pending, due, with one failed attempt (500).
    retrying: (MessageId, DeliveryId),
    /// Pending, leased by a worker that died (its lease lapsed long ago).
    orphaned: (MessageId, DeliveryId),
    /// The ordered subscription's two pending deliveries, in send order.
    ordered_pending: [(MessageId, DeliveryId); 2],
}

/// Builds the schema at version `version` (1, 2 or 3) with the rows of [`Old`].
async fn build_old(schema: &Schema, version: i32, url: &str) -> Old {
    let ids = || (MessageId::new(), DeliveryId::new());
    let old = Old {
        plain: SubscriptionId::new(),
        ordered: SubscriptionId::new(),
        delivered: ids(),
        exhausted: ids(),
        retrying: ids(),
        orphaned: ids(),
        ordered_pending: [ids(), ids()],
    };
    let secret = Secret::generate().expose();
    let t = 1_700_000_000_000_i64; // long ago: every due time has passed
    let mut sql = format!(
        "CREATE SCHEMA \"{name}\"; SET search_path TO \"{name}\"; {V1}; ",
        name = schema.name
    );
    if version >= 2 {
        sql.push_str(V2);
        sql.push_str("; ");
    }
    if version >= 3 {
        sql.push_str(V3);
        sql.push_str("; ");
    }
    sql.push_str(&format!(
        "INSERT INTO schema_version (version) VALUES ({version}); \
         INSERT INTO subscriptions (id, url, events, labels, secrets, headers, ordered, \
             created_at) VALUES \
             ('{plain}', '{url}', '[]', '{{}}', '[[\"{secret}\", null]]', '[]', false, {t}), \
             ('{ordered}', '{url}', '[]', '{{}}', '[[\"{secret}\", null]]', '[]', true, {t}); ",
        plain = old.plain.as_uuid(),
        ordered = old.ordered.as_uuid(),
    ));
    if version >= 2 {
        // Version 2 keeps a row of claim state per subscription (0002 wrote them for the
        // subscriptions it found; these came after).
        sql.push_str(
            "INSERT INTO subscription_flow (subscription_id) SELECT id FROM subscriptions; ",
        );
    }
    // Messages, then deliveries: (message, delivery, subscription, status, attempts,
    // next_attempt_at, last_attempt_at, lease, lease_until), at increasing times.
    let rows = [
        (
            old.delivered,
            old.plain,
            "delivered",
            1,
            "NULL",
            t + 1,
            "NULL",
            "NULL",
        ),
        (
            old.exhausted,
            old.plain,
            "exhausted",
            2,
            "NULL",
            t + 2,
            "NULL",
            "NULL",
        ),
        (
            old.retrying,
            old.plain,
            "pending",
            1,
            "1700000000100",
            t + 3,
            "NULL",
            "NULL",
        ),
        (
            old.orphaned,
            old.plain,
            "pending",
            0,
            "1700000000004",
            0,
            "gen_random_uuid()",
            "1700000000050",
        ),
        (
            old.ordered_pending[0],
            old.ordered,
            "pending",
            0,
            "1700000000005",
            0,
            "NULL",
            "NULL",
        ),
        (
            old.ordered_pending[1],
            old.ordered,
            "pending",
            0,
            "1700000000006",
            0,
            "NULL",
            "NULL",
        ),
    ];
    for (n, ((message, delivery), sub, status, attempts, next, last, lease, until)) in
        rows.iter().enumerate()
    {
        let created = t + i64::try_from(n).unwrap();
        let last = if *last == 0 {
            "NULL".to_owned()
        } else {
            last.to_string()
        };
        sql.push_str(&format!(
            "INSERT INTO messages (id, created_at, event_type, labels, body) VALUES \
                 ('{m}', {created}, 'random:number', '{{\"n\": \"{n}\"}}', \
                  convert_to('{{\"n\": {n}}}', 'UTF8')); \
             INSERT INTO deliveries (id, message, subscription_id, created_at, status, \
                 attempts, next_attempt_at, last_attempt_at, lease, lease_until) \
             SELECT '{d}', seq, '{s}', {created}, '{status}', {attempts}, {next}, {last}, \
                 {lease}, {until} FROM messages WHERE id = '{m}'; ",
            m = message.as_uuid(),
            d = delivery.as_uuid(),
            s = sub.as_uuid(),
        ));
    }
    // Attempts: the delivered one's success, the exhausted one's two failures, the retrying
    // one's failure.
    for (delivery, number, code) in [
        (old.delivered.1, 1, 200),
        (old.exhausted.1, 1, 503),
        (old.exhausted.1, 2, 503),
        (old.retrying.1, 1, 500),
    ] {
        sql.push_str(&format!(
            "INSERT INTO attempts (delivery, number, at, latency_ns, status_code, response_body) \
             SELECT pk, {number}, {t} + 10 * {number}, 1000000, {code}, '\\x6f6b' \
             FROM deliveries WHERE id = '{d}'; ",
            d = delivery.as_uuid(),
        ));
    }
    schema.execute(&sql).await;
    old
}

/// Opens the old schema with runtimes (two stores connecting at once: one migrates), checks
/// the log, and waits for the pending deliveries over HTTP.
async fn upgrade_and_deliver(test: &str, version: i32) {
    let Some(schema) = Schema::new(test, "webhooks_upgrade_") else {
        return;
    };
    let receiver = TestReceiver::start().await.unwrap();
    let old = build_old(&schema, version, &receiver.url()).await;

    let (a, b) = tokio::join!(
        PostgresStore::connect_with(&schema.url, &schema.name),
        PostgresStore::connect_with(&schema.url, &schema.name),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(schema.version().await, LATEST);
    drop(b);

    // The log as it was, before anything is delivered.
    let hooks = Webhooks::builder()
        .allow_private_networks()
        .store(a)
        .build()
        .await
        .unwrap();
    let subscriptions: HashSet<SubscriptionId> = hooks
        .subscriptions()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(subscriptions, HashSet::from([old.plain, old.ordered]));
    let delivered = hooks.delivery(old.delivered.1).await.unwrap().unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.message_id, old.delivered.0);
    assert_eq!(delivered.attempts, 1);
    let attempts = hooks.attempts(old.delivered.1).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
    assert_eq!(&attempts[0].response_body[..], b"ok");
    let exhausted = hooks.delivery(old.exhausted.1).await.unwrap().unwrap();
    assert_eq!(exhausted.status, DeliveryStatus::Exhausted);
    let codes: Vec<_> = hooks
        .attempts(old.exhausted.1)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.number, a.status_code))
        .collect();
    assert_eq!(codes, [(1, Some(503)), (2, Some(503))]);
    let message = hooks.message(old.delivered.0).await.unwrap().unwrap();
    assert_eq!(message.event_type(), "random:number");
    assert_eq!(message.body().as_ref(), b"{\"n\": 0}");

    // The four pending deliveries arrive (the orphaned lease lapsed long ago), the ordered
    // subscription's in send order.
    let requests = receiver.wait_for(4, Duration::from_secs(30)).await.unwrap();
    let arrived: Vec<String> = requests
        .iter()
        .filter_map(|r| r.webhook_id().map(str::to_owned))
        .collect();
    let expected: HashSet<String> = [
        old.retrying.0,
        old.orphaned.0,
        old.ordered_pending[0].0,
        old.ordered_pending[1].0,
    ]
    .iter()
    .map(|m| m.to_string())
    .collect();
    assert_eq!(arrived.iter().cloned().collect::<HashSet<_>>(), expected);
    let position = |m: MessageId| arrived.iter().position(|id| *id == m.to_string());
    assert!(position(old.ordered_pending[0].0) < position(old.ordered_pending[1].0));

    // Recorded: delivered, the retrying one after its old failure.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (_, delivery) in [
        old.retrying,
        old.orphaned,
        old.ordered_pending[0],
        old.ordered_pending[1],
    ] {
        loop {
            let now = hooks.delivery(delivery).await.unwrap().unwrap();
            if now.status == DeliveryStatus::Delivered {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{now:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let codes: Vec<_> = hooks
        .attempts(old.retrying.1)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.number, a.status_code))
        .collect();
    assert_eq!(codes, [(1, Some(500)), (2, Some(200))]);

    // What version 3 deletes itself (no foreign keys): deleting a subscription takes its
    // deliveries and their attempts; purging takes delivered messages' deliveries.
    hooks.delete(old.plain).await.unwrap();
    assert!(hooks.delivery(old.exhausted.1).await.unwrap().is_none());
    assert!(hooks.attempts(old.exhausted.1).await.unwrap().is_empty());
    assert!(
        hooks
            .delivery(old.ordered_pending[0].1)
            .await
            .unwrap()
            .is_some()
    );
    hooks.purge(Duration::ZERO).await.unwrap();
    assert!(
        hooks
            .delivery(old.ordered_pending[0].1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        hooks
            .message(old.ordered_pending[0].0)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(receiver.count(), 4, "nothing sent twice");
    hooks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_with_data_upgrades_and_delivers() {
    upgrade_and_deliver("version_1_with_data_upgrades_and_delivers", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_with_data_upgrades_and_delivers() {
    upgrade_and_deliver("version_2_with_data_upgrades_and_delivers", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_with_data_upgrades_and_delivers() {
    upgrade_and_deliver("version_3_with_data_upgrades_and_delivers", 3).await;
}
