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
    assert_eq!(user_version(&path).await, 3);
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
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!(
            "../webhooks/migrations/sqlite/0001_initial.sql"
        ))
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        let millis = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let secrets = format!(r#"[["{}",null]]"#, sub.signing_secret().expose());
        conn.execute(
            "INSERT INTO subscriptions (id, url, events, labels, secrets, headers, ordered, \
             description, created_at, failing_since, consecutive_exhausted) \
             VALUES (?, 'https://example.com/hooks', '[]', '{}', ?, '[]', 1, 'kept', ?, ?, 1)",
            rusqlite::params![
                sub.id().as_uuid().as_bytes().to_vec(),
                secrets,
                millis(sub.created_at()),
                millis(at(2)),
            ],
        )
        .unwrap();
        for (seq, m) in messages.iter().enumerate() {
            conn.execute(
                "INSERT INTO messages (seq, id, created_at, event_type, labels, body) \
                 VALUES (?, ?, ?, 'a:b', '{}', ?)",
                rusqlite::params![
                    seq as i64 + 1,
                    m.id().as_uuid().as_bytes().to_vec(),
                    millis(m.timestamp()),
                    m.body().to_vec(),
                ],
            )
            .unwrap();
        }
        // Two pending (the second leased by a process that died), one exhausted after an
        // attempt.
        for (pk, id, status, attempts, due, lease) in [
            (1, first, "pending", 0, Some(at(0)), None),
            (2, second, "pending", 0, Some(at(1)), Some(vec![7u8; 16])),
            (3, done, "exhausted", 1, None, None),
        ] {
            conn.execute(
                "INSERT INTO deliveries (pk, id, message, subscription_id, created_at, status, \
                 attempts, next_attempt_at, lease, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rusqlite::params![
                    pk,
                    id.as_uuid().as_bytes().to_vec(),
                    pk,
                    sub.id().as_uuid().as_bytes().to_vec(),
                    millis(at(pk as u64 - 1)),
                    status,
                    attempts,
                    due.map(millis),
                    lease.clone(),
                    lease.map(|_| millis(at(100_000))),
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO attempts (delivery, number, at, latency_ns, status_code, error, \
             response_body) VALUES (3, 1, ?, 1000, 500, 'status', x'')",
            [millis(at(2))],
        )
        .unwrap();
        conn.close().map_err(|(_, e)| e).unwrap();
    }

    let store = open(&path).await;
    assert_eq!(user_version(&path).await, 3);
    assert_eq!(lease_indexes(&path), ["deliveries_leased_by_subscription"]);
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

/// The indexes of `deliveries` whose name says they are of leases.
fn lease_indexes(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' \
             AND name LIKE '%leased%' ORDER BY name",
        )
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap()
}

/// A database of schema 2 with deliveries in flight is upgraded to one index of leases
/// (migration 3): the leases of the process before are released on open, the count against
/// `max_in_flight`, the lapse of a lease and `next_due` all hold on it, and its log is kept.
#[tokio::test]
async fn schema_2_with_leases_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.db");
    let sub = subscription().max_in_flight(1);
    let ids = [DeliveryId::new(), DeliveryId::new(), DeliveryId::new()];
    let messages = [message(0), message(1), message(2)];
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!(
            "../webhooks/migrations/sqlite/0001_initial.sql"
        ))
        .unwrap();
        conn.execute_batch(include_str!(
            "../webhooks/migrations/sqlite/0002_many_workers.sql"
        ))
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 2").unwrap();
        let millis = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let secrets = format!(r#"[["{}",null]]"#, sub.signing_secret().expose());
        conn.execute(
            "INSERT INTO subscriptions (id, url, events, labels, secrets, headers, ordered, \
             max_in_flight, created_at) \
             VALUES (?, 'https://example.com/hooks', '[]', '{}', ?, '[]', 0, 1, ?)",
            rusqlite::params![
                sub.id().as_uuid().as_bytes().to_vec(),
                secrets,
                millis(sub.created_at()),
            ],
        )
        .unwrap();
        for (n, (m, id)) in messages.iter().zip(ids).enumerate() {
            let n = n as i64 + 1;
            conn.execute(
                "INSERT INTO messages (seq, id, created_at, event_type, labels, body) \
                 VALUES (?, ?, ?, 'a:b', '{}', ?)",
                rusqlite::params![
                    n,
                    m.id().as_uuid().as_bytes().to_vec(),
                    millis(m.timestamp()),
                    m.body().to_vec(),
                ],
            )
            .unwrap();
            // The first two in flight with a process that died, the third delivered.
            let (status, lease) = match n {
                3 => ("delivered", None),
                _ => ("pending", Some(vec![n as u8; 16])),
            };
            conn.execute(
                "INSERT INTO deliveries (pk, id, message, subscription_id, created_at, status, \
                 attempts, next_attempt_at, lease, lease_until) \
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                rusqlite::params![
                    n,
                    id.as_uuid().as_bytes().to_vec(),
                    n,
                    sub.id().as_uuid().as_bytes().to_vec(),
                    millis(m.timestamp()),
                    status,
                    (status == "pending").then(|| millis(m.timestamp())),
                    lease.clone(),
                    lease.map(|_| millis(at(100_000))),
                ],
            )
            .unwrap();
        }
        conn.close().map_err(|(_, e)| e).unwrap();
    }
    assert_eq!(
        lease_indexes(&path),
        ["deliveries_leased", "deliveries_leased_by_subscription"]
    );

    let store = open(&path).await;
    assert_eq!(user_version(&path).await, 3);
    assert_eq!(lease_indexes(&path), ["deliveries_leased_by_subscription"]);
    let statuses: Vec<DeliveryStatus> = {
        let mut statuses = Vec::new();
        for id in ids {
            statuses.push(store.delivery(id).await.unwrap().unwrap().status);
        }
        statuses
    };
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered
        ],
        "the leases of the process that died are released, the log is kept"
    );
    // `max_in_flight(1)` counts the new lease.
    let held = claim(&store, 10).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].delivery.id, ids[0]);
    assert!(claim(&store, 20).await.is_empty(), "one in flight at most");
    // Its lease lapses (the claims' lease is 30 s): then it is claimed again.
    assert!(claim(&store, 30_000).await.is_empty(), "not lapsed yet");
    let again = claim(&store, 30_010).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, ids[0]);
    assert!(
        record(&store, &again[0], 30_020, Next::Delivered)
            .await
            .applied
    );
    assert_eq!(claim(&store, 30_030).await[0].delivery.id, ids[1]);
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
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {version}"))
        .unwrap();
    conn.close().map_err(|(_, e)| e).unwrap();
}

async fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    conn.close().map_err(|(_, e)| e).unwrap();
    version
}

/// The same random operations on a `MemoryStore` (the reference) and a `SqliteStore` give the
/// same answers and leave the same state: results, claims (deliveries and send slots per
/// subscription), every delivery as shown, the subscriptions and `next_due`, after every step.
#[tokio::test]
async fn behaves_as_the_memory_store() {
    for seed in 1..=6 {
        same_as_memory(seed, 300).await;
    }
}

/// A xorshift generator: the same operations for a seed, every run.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// A result as compared: the value, or the kind of error.
fn outcome<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(StoreError::Backend(error)) => panic!("backend error: {error}"),
        Err(error) => error.to_string(),
    }
}

/// Claims grouped by subscription: delivery ids and send slots, sorted (the two stores may take
/// subscriptions in another order, and number one subscription's slots in another).
type ByClaim = std::collections::BTreeMap<SubscriptionId, (Vec<DeliveryId>, Vec<SystemTime>)>;

fn by_subscription(claims: &[Claim]) -> ByClaim {
    let mut by = ByClaim::new();
    for claim in claims {
        let entry = by.entry(claim.delivery.subscription_id).or_default();
        entry.0.push(claim.delivery.id);
        entry.1.extend(claim.not_before);
    }
    for entry in by.values_mut() {
        entry.0.sort();
        entry.1.sort();
    }
    by
}

async fn same_as_memory(seed: u64, steps: usize) {
    use webhooks::store::MemoryStore;
    use webhooks::{DisableReason, Disabled, Secret};

    let mut rng = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().unwrap();
    let sql = open(&dir.path().join("webhooks.db")).await;
    let mem = MemoryStore::new();
    let (mut now, mut subs, mut deliveries) = (0, Vec::new(), Vec::new());
    // Claims not recorded yet: the delivery, its attempts, its lease in each store.
    let mut held: Vec<(DeliveryId, u32, Claim, Claim)> = Vec::new();
    for step in 0..steps {
        let op = rng.below(100);
        let context = format!("seed {seed}, step {step}, operation {op}");
        let pick = |rng: &mut Random, subs: &[SubscriptionId]| subs[rng.below(subs.len())];
        if op < 8 || subs.is_empty() {
            let mut s = subscription().ordered(rng.chance(40));
            if rng.chance(40) {
                s = s.max_in_flight(1 + rng.below(3));
            }
            if rng.chance(30) {
                s = s.rate_limit(1 + rng.below(3) as u32);
            }
            let (a, b) = (
                mem.insert_subscription(&s).await,
                sql.insert_subscription(&s).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
            subs.push(s.id());
        } else if op < 12 {
            // Settings only: the secret and the disable given are not written.
            let Some(stored) = mem.subscription(pick(&mut rng, &subs)).await.unwrap() else {
                continue;
            };
            let mut s = stored.ordered(rng.chance(50)).secret(Secret::generate());
            if rng.chance(50) {
                s = s
                    .max_in_flight(1 + rng.below(3))
                    .rate_limit(1 + rng.below(3) as u32);
            }
            let (a, b) = (
                mem.update_subscription(&s).await,
                sql.update_subscription(&s).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 15 {
            let id = pick(&mut rng, &subs);
            let (a, b) = (
                mem.enable_subscription(id).await,
                sql.enable_subscription(id).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 18 {
            let id = pick(&mut rng, &subs);
            let disabled = Disabled {
                at: at(now),
                reason: DisableReason::Manual,
            };
            let a = mem.disable_subscription(id, disabled.clone()).await;
            let b = sql.disable_subscription(id, disabled).await;
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 20 {
            let (id, secret) = (pick(&mut rng, &subs), Secret::generate());
            let overlap = Duration::from_secs(1);
            let a = mem.rotate_secret(id, &secret, at(now), overlap).await;
            let b = sql.rotate_secret(id, &secret, at(now), overlap).await;
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 21 {
            let id = pick(&mut rng, &subs);
            let (a, b) = (
                mem.delete_subscription(id).await,
                sql.delete_subscription(id).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 50 {
            let mut to: Vec<SubscriptionId> = Vec::new();
            for _ in 0..=rng.below(3) {
                let s = pick(&mut rng, &subs);
                if !to.contains(&s) {
                    to.push(s);
                }
            }
            let new: Vec<NewDelivery> = to
                .iter()
                .map(|s| NewDelivery::new(*s, rng.chance(5)))
                .collect();
            let mut m = message(now);
            if let Some(key) = ["x", "y", ""].get(rng.below(4)).filter(|k| !k.is_empty()) {
                m = m.with_ordering_key(*key).unwrap();
            }
            let version = mem.subscriptions().await.unwrap().version;
            let version = if rng.chance(10) { version - 1 } else { version };
            let mut enqueue = Enqueue::new(&m, &new, version);
            if rng.chance(30) {
                let since = at(now.saturating_sub(rng.below(5000) as u64));
                enqueue =
                    enqueue.idempotency(Idempotency::new(format!("k{}", rng.below(3)), since));
            }
            let (a, b) = (mem.enqueue(&enqueue).await, sql.enqueue(&enqueue).await);
            assert_eq!(outcome(&a), outcome(&b), "{context}");
            if matches!(a, Ok(Enqueued::Stored)) {
                deliveries.extend(new.iter().map(|d| d.id));
            }
        } else if op < 68 {
            let lease = Duration::from_millis(2000 + rng.below(20_000) as u64);
            let mut request = ClaimRequest::new(at(now), 1000, 1 + rng.below(4), lease);
            if rng.chance(20) {
                request.exclude.push(pick(&mut rng, &subs));
            }
            let (a, b) = (
                mem.claim(&request).await.unwrap(),
                sql.claim(&request).await.unwrap(),
            );
            assert_eq!(
                a.subscriptions_version, b.subscriptions_version,
                "{context}"
            );
            assert_eq!(
                by_subscription(&a.claims),
                by_subscription(&b.claims),
                "{context}"
            );
            for claim in a.claims {
                let other = b.claims.iter().find(|c| c.delivery.id == claim.delivery.id);
                let other = other.unwrap().clone();
                assert_eq!(claim.delivery, other.delivery, "{context}");
                assert_eq!(claim.message.ordering_key(), other.message.ordering_key());
                assert_eq!(claim.lease_until, other.lease_until, "{context}");
                held.push((claim.delivery.id, claim.delivery.attempts, claim, other));
            }
        } else if op < 85 {
            if held.is_empty() {
                continue;
            }
            let (id, attempts, a, b) = held.swap_remove(rng.below(held.len()));
            let next = match rng.below(4) {
                0 => Next::Delivered,
                1 => Next::RetryAt(at(now + rng.below(3000) as u64)),
                2 => Next::Exhausted,
                _ => Next::Skipped,
            };
            let outcome_of = AttemptOutcome::Answered {
                status: 500,
                body: Default::default(),
            };
            let attempt = Attempt::new(id, attempts + 1, at(now), Duration::ZERO, outcome_of);
            let (a, b) = (
                mem.record_attempt(a.lease, &attempt, next).await,
                sql.record_attempt(b.lease, &attempt, next).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 89 {
            if deliveries.is_empty() {
                continue;
            }
            let id = deliveries[rng.below(deliveries.len())];
            let (a, b) = (
                mem.redeliver(id, at(now)).await,
                sql.redeliver(id, at(now)).await,
            );
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 91 {
            // Not while a claim of the subscription is held: MemoryStore requeues some of its
            // deliveries before refusing one in flight (or whose lease lapsed), SqliteStore none.
            let id = pick(&mut rng, &subs);
            let busy = held.iter().any(|(.., c)| c.delivery.subscription_id == id);
            if busy {
                continue;
            }
            let a = mem.recover(id, at(0), at(now + 1), at(now)).await;
            let b = sql.recover(id, at(0), at(now + 1), at(now)).await;
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else if op < 92 {
            let before = at(now.saturating_sub(3000));
            let (a, b) = (mem.purge(before).await, sql.purge(before).await);
            assert_eq!(outcome(&a), outcome(&b), "{context}");
        } else {
            now += rng.below(3000) as u64;
        }

        let (a, b) = (
            mem.subscriptions().await.unwrap(),
            sql.subscriptions().await.unwrap(),
        );
        assert_eq!(a, b, "{context}");
        for id in &deliveries {
            let (a, b) = (mem.delivery(*id).await, sql.delivery(*id).await);
            assert_eq!(outcome(&a), outcome(&b), "{context}: delivery {id}");
        }
        let (a, b) = (mem.next_due(at(now)).await, sql.next_due(at(now)).await);
        assert_eq!(outcome(&a), outcome(&b), "{context}: next_due");
    }
}
