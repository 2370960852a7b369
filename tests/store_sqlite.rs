//! The `Store` conformance suite on `SqliteStore`, each test on a real file in a fresh temp
//! dir; then what only a durable store does: restarts, one process per file, migrations.
// Helpers outside `#[test]` fns unwrap too: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[macro_use]
#[path = "conformance/mod.rs"]
mod conformance;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use webhooks::store::{
    Attempt, AttemptOutcome, Claim, ClaimRequest, DeliveryStatus, Enqueue, Enqueued, Idempotency,
    NewDelivery, Next, Recorded, SqliteStore, Store, StoreError,
};
use webhooks::{DeliveryId, Labels, Message, MessageId, Subscription, SubscriptionId};

// Helpers of their own rather than the conformance suite's, so that these tests do not follow
// its changes.

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).await.unwrap()
}

/// A fixed instant plus `ms` milliseconds.
fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
}

fn subscription() -> Subscription {
    Subscription::new("https://example.com/hooks").unwrap()
}

async fn add_plain(store: &SqliteStore) -> SubscriptionId {
    let sub = subscription();
    store.insert_subscription(&sub).await.unwrap();
    sub.id()
}

fn message(ms: u64) -> Message {
    let id = MessageId::new();
    let body = format!(r#"{{"id":"{id}"}}"#);
    Message::from_parts(id, at(ms), "a:b", Labels::new(), body.into_bytes())
}

/// Enqueues a message created at `at(ms)` to `subs`, at the store's current version.
async fn send(store: &SqliteStore, ms: u64, subs: &[SubscriptionId]) -> (Message, Vec<DeliveryId>) {
    let message = message(ms);
    let deliveries: Vec<NewDelivery> = subs.iter().map(|s| NewDelivery::new(*s, false)).collect();
    let version = store.subscriptions().await.unwrap().version;
    let enqueued = store
        .enqueue(&Enqueue::new(&message, &deliveries, version))
        .await
        .unwrap();
    assert_eq!(enqueued, Enqueued::Stored);
    (message, deliveries.iter().map(|d| d.id).collect())
}

/// Claims everything claimable at `at(now_ms)`.
async fn claim(store: &SqliteStore, now_ms: u64) -> Vec<Claim> {
    let request = ClaimRequest::new(at(now_ms), 1000, 1000, Duration::from_secs(30));
    store.claim(&request).await.unwrap().claims
}

/// Records an attempt at `at(ms)` (a 200 for `Next::Delivered`, a 500 otherwise).
async fn record(store: &SqliteStore, claim: &Claim, ms: u64, next: Next) -> Recorded {
    let status = if next == Next::Delivered { 200 } else { 500 };
    let attempt = Attempt::new(
        claim.delivery.id,
        claim.delivery.attempts + 1,
        at(ms),
        Duration::from_millis(42),
        AttemptOutcome::Answered {
            status,
            body: Default::default(),
        },
    );
    store
        .record_attempt(claim.lease, &attempt, next)
        .await
        .unwrap()
}

conformance_suite!(async {
    let dir = tempfile::tempdir().unwrap();
    (open(&dir.path().join("webhooks.db")).await, dir)
});

/// A restart keeps everything, and work the previous process held is claimable at once.
#[tokio::test]
async fn reopen_keeps_state_and_takes_over_leases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    let store = open(&path).await;
    let sub = subscription().ordered(true).description("kept");
    store.insert_subscription(&sub).await.unwrap();
    let (message, ids) = send(&store, 0, &[sub.id()]).await;
    let held = claim(&store, 0).await;
    assert_eq!(held.len(), 1);
    // The process "dies" holding the lease.
    drop(store);

    let store = open(&path).await;
    assert_eq!(
        store.subscription(sub.id()).await.unwrap().as_ref(),
        Some(&sub)
    );
    let delivery = store.delivery(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        delivery.status,
        DeliveryStatus::Pending,
        "the lease was released on open"
    );
    let again = claim(&store, 1).await;
    assert_eq!(
        again.len(),
        1,
        "claimable at once, long before the lease would lapse"
    );
    assert_eq!(again[0].delivery.id, ids[0]);
    assert_eq!(again[0].message.body(), message.body());
    let late = record(&store, &held[0], 2, Next::Delivered).await;
    assert!(!late.applied, "the dead process's lease is void");
    store.close().await;
}

/// One process per file: a second open is refused, clearly, until the first store is gone.
#[tokio::test]
async fn second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    let first = open(&path).await;
    let error = SqliteStore::open(&path).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("already open"), "{text}");
    assert!(text.contains("webhooks.db.lock"), "{text}");
    drop(first);
    let second = open(&path).await;
    assert!(second.subscriptions().await.unwrap().value.is_empty());
}

/// A file written by a newer version (a higher schema version) is refused, not modified.
#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    open(&path).await.close().await;
    set_user_version(&path, 99).await;
    let error = SqliteStore::open(&path).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("newer"), "{text}");
}

/// An older (here: empty) database is migrated on open.
#[tokio::test]
async fn older_schema_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    set_user_version(&path, 0).await;
    let store = open(&path).await;
    let a = add_plain(&store).await;
    send(&store, 0, &[a]).await;
    assert_eq!(claim(&store, 0).await.len(), 1);
    assert_eq!(user_version(&path).await, 2);
}

/// A database of schema 1, with what the previous release stored in it, is upgraded on open:
/// everything is kept, and the new contract holds on it.
#[tokio::test]
async fn schema_1_with_data_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    let sub = subscription().ordered(true).description("kept");
    let [first, second, done] = [DeliveryId::new(), DeliveryId::new(), DeliveryId::new()];
    let messages = [message(0), message(1), message(2)];
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!(
            "../webhooks/migrations/sqlite/0001_initial.sql"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::raw_sql("PRAGMA user_version = 1")
            .execute(&mut conn)
            .await
            .unwrap();
        let millis = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let secrets = format!(r#"[["{}",null]]"#, sub.signing_secret().expose());
        sqlx::query(
            "INSERT INTO subscriptions (id, url, events, labels, secrets, headers, ordered, \
             description, created_at, failing_since, consecutive_exhausted) \
             VALUES (?, 'https://example.com/hooks', '[]', '{}', ?, '[]', 1, 'kept', ?, ?, 1)",
        )
        .bind(sub.id().as_uuid().as_bytes().to_vec())
        .bind(secrets)
        .bind(millis(sub.created_at()))
        .bind(millis(at(2)))
        .execute(&mut conn)
        .await
        .unwrap();
        for (seq, m) in messages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO messages (seq, id, created_at, event_type, labels, body) \
                 VALUES (?, ?, ?, 'a:b', '{}', ?)",
            )
            .bind(seq as i64 + 1)
            .bind(m.id().as_uuid().as_bytes().to_vec())
            .bind(millis(m.timestamp()))
            .bind(m.body().to_vec())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        // Two pending (the second leased by a process that died), one exhausted after an
        // attempt.
        for (pk, id, status, attempts, due, lease) in [
            (1, first, "pending", 0, Some(at(0)), None),
            (2, second, "pending", 0, Some(at(1)), Some(vec![7u8; 16])),
            (3, done, "exhausted", 1, None, None),
        ] {
            sqlx::query(
                "INSERT INTO deliveries (pk, id, message, subscription_id, created_at, status, \
                 attempts, next_attempt_at, lease, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(pk)
            .bind(id.as_uuid().as_bytes().to_vec())
            .bind(pk)
            .bind(sub.id().as_uuid().as_bytes().to_vec())
            .bind(millis(at(pk as u64 - 1)))
            .bind(status)
            .bind(attempts)
            .bind(due.map(millis))
            .bind(lease.clone())
            .bind(lease.map(|_| millis(at(100_000))))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO attempts (delivery, number, at, latency_ns, status_code, error, \
             response_body) VALUES (3, 1, ?, 1000, 500, 'status', x'')",
        )
        .bind(millis(at(2)))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }

    let store = open(&path).await;
    assert_eq!(user_version(&path).await, 2);
    let subscriptions = store.subscriptions().await.unwrap();
    assert_eq!(subscriptions.value, std::slice::from_ref(&sub));
    let version = subscriptions.version;
    assert_eq!(store.attempts(done).await.unwrap().len(), 1);
    let mut statuses = Vec::new();
    for id in [first, second, done] {
        statuses.push(store.delivery(id).await.unwrap().unwrap().status);
    }
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Pending,
            DeliveryStatus::Exhausted
        ],
        "the lease of the process that died is released"
    );

    // Ordered, and the old messages have no ordering key: one queue, its head only.
    let claims = claim(&store, 10).await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].delivery.id, first);
    assert_eq!(claims[0].message.ordering_key(), None);
    assert_eq!(claims[0].message.body(), messages[0].body());
    assert!(claim(&store, 10).await.is_empty(), "the head is in flight");
    assert!(
        record(&store, &claims[0], 20, Next::Delivered)
            .await
            .applied
    );
    assert_eq!(claim(&store, 30).await[0].delivery.id, second);

    // Enqueues are checked against the version, and idempotent.
    let fresh = message(40);
    let to = [NewDelivery::new(sub.id(), false)];
    let stale = store
        .enqueue(&Enqueue::new(&fresh, &to, version + 1))
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Stale { version: v } if v == version));
    let keyed = Enqueue::new(&fresh, &to, version).idempotency(Idempotency::new("k", at(0)));
    assert_eq!(store.enqueue(&keyed).await.unwrap(), Enqueued::Stored);
    let again = message(41);
    let keyed = Enqueue::new(&again, &to, version).idempotency(Idempotency::new("k", at(0)));
    assert_eq!(
        store.enqueue(&keyed).await.unwrap(),
        Enqueued::Duplicate(fresh.id())
    );
    assert!(store.insert_subscription(&subscription()).await.unwrap() > version);

    // A requeued delivery shows as pending, its attempts kept.
    let requeued = store.redeliver(done, at(50)).await.unwrap();
    assert_eq!(requeued.status, DeliveryStatus::Pending);
    assert_eq!(requeued.attempts, 1);
    store.close().await;
}

/// The directory must exist; the error says which file could not be opened.
#[tokio::test]
async fn missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/webhooks.db");
    let text = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(text.contains("webhooks.db.lock"), "{text}");
}

/// `Webhooks::open` is the one-line durable setup.
#[tokio::test]
async fn webhooks_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    let hooks = webhooks::Webhooks::open(&path).await.unwrap();
    let sub = hooks.subscribe(subscription()).await.unwrap();
    hooks.shutdown().await;
    drop(hooks);
    let store = open(&path).await;
    assert_eq!(
        store.subscription(sub.id()).await.unwrap().as_ref(),
        Some(&sub)
    );
}

/// Times are kept to the millisecond.
#[tokio::test]
async fn times_are_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("webhooks.db")).await;
    let a = add_plain(&store).await;
    send(&store, 0, &[a]).await;
    let c = claim(&store, 0).await.remove(0);
    let retry = at(5_000) + std::time::Duration::from_micros(700);
    record(&store, &c, 1, Next::RetryAt(retry)).await;
    assert_eq!(store.next_due(at(0)).await.unwrap(), Some(at(5_000)));
    assert_eq!(claim(&store, 5_000).await.len(), 1);
}

async fn set_user_version(path: &Path, version: i64) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {version}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

async fn user_version(path: &Path) -> i64 {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let version = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    version
}
