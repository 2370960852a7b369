//! The `Store` conformance suite on `SqliteStore`, each test on a real file in a fresh temp
//! dir; then what only a durable store does: restarts, one process per file, migrations.
// Helpers outside `#[test]` fns unwrap too: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[macro_use]
#[path = "conformance/mod.rs"]
mod conformance;

use std::path::Path;

use conformance::{add_plain, at, claim, send, subscription};
use webhooks::store::{DeliveryStatus, SqliteStore, Store};

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).await.unwrap()
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
    let late = conformance::record(&store, &held[0], 2, webhooks::store::Next::Delivered).await;
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
    assert!(second.subscriptions().await.unwrap().is_empty());
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
    assert_eq!(user_version(&path).await, 1);
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
    conformance::record(&store, &c, 1, webhooks::store::Next::RetryAt(retry)).await;
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
