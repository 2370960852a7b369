//! What the conformance suite cannot aim at: calls that share a round must come out as if
//! each had committed alone, in order.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::StatementStatus;

use super::SqliteStore;
use super::claim::{CLAIM, RELEASE_LAPSED, SLOTS};
use super::row::db;
use super::writer;
use crate::store::{
    Attempt, AttemptOutcome, Claim, ClaimRequest, DeliveryStatus, Enqueue, Enqueued, Entity,
    Idempotency, NewDelivery, Next, Store, StoreError,
};
use crate::{Labels, Message, MessageId, Subscription, SubscriptionId};

fn message() -> Message {
    let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    Message::from_parts(
        MessageId::new(),
        at,
        "a:b",
        Labels::default(),
        b"{}".to_vec(),
    )
}

async fn store() -> (SqliteStore, tempfile::TempDir, SubscriptionId, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("webhooks.db"))
        .await
        .unwrap();
    let sub = Subscription::new("https://example.com/hooks").unwrap();
    let version = store.insert_subscription(&sub).await.unwrap();
    (store, dir, sub.id(), version)
}

/// Enqueues the four jobs at once: they share a round.
async fn enqueue_together(
    store: &SqliteStore,
    jobs: &[Enqueue<'_>],
) -> Vec<Result<Enqueued, StoreError>> {
    let (a, b, c, d) = tokio::join!(
        store.enqueue(&jobs[0]),
        store.enqueue(&jobs[1]),
        store.enqueue(&jobs[2]),
        store.enqueue(&jobs[3]),
    );
    vec![a, b, c, d]
}

fn is_conflict(result: &Result<Enqueued, StoreError>, entity: Entity) -> bool {
    matches!(result, Err(StoreError::Conflict { entity: e, .. }) if *e == entity)
}

/// A delivery id used twice fails the enqueue that comes second, alone; one used twice in
/// one enqueue fails that enqueue.
#[tokio::test]
async fn duplicate_delivery_ids_in_a_round() {
    let (store, _dir, sub, version) = store().await;
    let shared = NewDelivery::new(sub, false);
    let twice = NewDelivery::new(sub, false);
    let deliveries = [
        vec![shared.clone()],
        vec![shared.clone(), NewDelivery::new(sub, false)],
        vec![twice.clone(), twice],
        vec![NewDelivery::new(sub, false)],
    ];
    let messages: Vec<Message> = deliveries.iter().map(|_| message()).collect();
    let jobs: Vec<Enqueue<'_>> = messages
        .iter()
        .zip(&deliveries)
        .map(|(m, d)| Enqueue::new(m, d, version))
        .collect();
    let results = enqueue_together(&store, &jobs).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        is_conflict(&results[1], Entity::Delivery),
        "{:?}",
        results[1]
    );
    assert!(
        is_conflict(&results[2], Entity::Delivery),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_ok(), "{:?}", results[3]);
    for (m, kept) in messages.iter().zip([1, 0, 0, 1]) {
        assert_eq!(store.message_deliveries(m.id()).await.unwrap().len(), kept);
    }
}

/// In one round, a stale enqueue and a duplicate fail or answer alone; a key taken by an
/// earlier job of the round makes a later one a duplicate of it.
#[tokio::test]
async fn stale_and_duplicate_enqueues_in_a_round() {
    let (store, _dir, sub, version) = store().await;
    let since = UNIX_EPOCH;
    let deliveries: Vec<Vec<NewDelivery>> =
        (0..4).map(|_| vec![NewDelivery::new(sub, false)]).collect();
    let messages: Vec<Message> = deliveries.iter().map(|_| message()).collect();
    let jobs = [
        Enqueue::new(&messages[0], &deliveries[0], version)
            .idempotency(Idempotency::new("k", since)),
        Enqueue::new(&messages[1], &deliveries[1], version - 1),
        Enqueue::new(&messages[2], &deliveries[2], version)
            .idempotency(Idempotency::new("k", since)),
        Enqueue::new(&messages[3], &deliveries[3], version),
    ];
    let results = enqueue_together(&store, &jobs).await;
    assert_eq!(results[0].as_ref().unwrap(), &Enqueued::Stored);
    assert!(matches!(results[1], Err(StoreError::Stale { version: v }) if v == version));
    let first = Enqueued::Duplicate(messages[0].id());
    assert_eq!(results[2].as_ref().unwrap(), &first);
    assert_eq!(results[3].as_ref().unwrap(), &Enqueued::Stored);
    for (m, kept) in messages.iter().zip([1, 0, 0, 1]) {
        assert_eq!(store.message_deliveries(m.id()).await.unwrap().len(), kept);
    }
    // Later, in a round of its own: still a duplicate of the first.
    let again = message();
    let job =
        Enqueue::new(&again, &deliveries[0], version).idempotency(Idempotency::new("k", since));
    assert_eq!(store.enqueue(&job).await.unwrap(), first);
}

/// A claim waiting with a round (served first in the writer thread's turn) gets its own
/// answer: its deliveries with their send slots, and the version; the round's jobs theirs.
#[tokio::test]
async fn claim_sharing_a_round() {
    let (store, _dir, _, _) = store().await;
    let limited = Subscription::new("https://example.com/slow")
        .unwrap()
        .rate_limit(2);
    let version = store.insert_subscription(&limited).await.unwrap();
    let deliveries: Vec<Vec<NewDelivery>> = (0..3)
        .map(|_| vec![NewDelivery::new(limited.id(), false)])
        .collect();
    let messages: Vec<Message> = deliveries.iter().map(|_| message()).collect();
    for (m, d) in messages.iter().zip(&deliveries).take(2) {
        store.enqueue(&Enqueue::new(m, d, version)).await.unwrap();
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let request = ClaimRequest::new(now, 10, 10, Duration::from_secs(30));
    // Joined at once: the claim is served with the round's read.
    let third = Enqueue::new(&messages[2], &deliveries[2], version);
    let (claimed, stored) = tokio::join!(store.claim(&request), store.enqueue(&third));
    let claimed = claimed.unwrap();
    assert_eq!(stored.unwrap(), Enqueued::Stored);
    assert_eq!(claimed.subscriptions_version, version);
    let slots: Vec<Option<SystemTime>> = claimed.claims.iter().map(|c| c.not_before).collect();
    let half = Duration::from_millis(500);
    assert_eq!(slots, [Some(now), Some(now + half)]);
    // The next claim's slots follow on.
    let claimed = store.claim(&request).await.unwrap();
    assert_eq!(claimed.claims.len(), 1);
    assert_eq!(claimed.claims[0].not_before, Some(now + 2 * half));
}

/// Attempts recorded in one round see the health the ones before them left, and a lease
/// recorded twice applies once.
#[tokio::test]
async fn records_in_a_round_apply_in_order() {
    let (store, _dir, sub, version) = store().await;
    for _ in 0..2 {
        let m = message();
        let deliveries = [NewDelivery::new(sub, false)];
        store
            .enqueue(&Enqueue::new(&m, &deliveries, version))
            .await
            .unwrap();
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let claims = store
        .claim(&ClaimRequest::new(now, 10, 10, Duration::from_secs(30)))
        .await
        .unwrap()
        .claims;
    assert_eq!(claims.len(), 2);
    let attempt = |c: &Claim| {
        Attempt::new(
            c.delivery.id,
            1,
            now,
            Duration::ZERO,
            AttemptOutcome::Answered {
                status: 500,
                body: Default::default(),
            },
        )
    };
    let (first, second) = (attempt(&claims[0]), attempt(&claims[1]));
    let (a, b, again) = tokio::join!(
        store.record_attempt(claims[0].lease, &first, Next::Exhausted),
        store.record_attempt(claims[1].lease, &second, Next::Exhausted),
        store.record_attempt(claims[1].lease, &second, Next::Delivered),
    );
    let (a, b, again) = (a.unwrap(), b.unwrap(), again.unwrap());
    assert!(a.applied && b.applied && !again.applied);
    assert_eq!(a.health.consecutive_exhausted, 1);
    assert_eq!(b.health.consecutive_exhausted, 2);
    assert_eq!(again.health.consecutive_exhausted, 2);
    assert_eq!(
        store.attempts(claims[1].delivery.id).await.unwrap().len(),
        2
    );
    let d = store
        .delivery(claims[1].delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Exhausted);
}

/// The statements of the hot path are prepared once per connection and stay prepared: none is
/// prepared again as the values bound to it change (SQLite re-prepares a statement when a
/// bound value may change its plan, say against a partial index's condition).
#[tokio::test]
async fn hot_statements_are_prepared_once() {
    let (store, _dir, sub, version) = store().await;
    let keyed = Subscription::new("https://example.com/keyed")
        .unwrap()
        .ordered(true);
    let version = store
        .insert_subscription(&keyed)
        .await
        .unwrap()
        .max(version);
    let start = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    for i in 0..6u64 {
        let now = start + Duration::from_secs(i);
        let m = message().with_ordering_key(format!("k{}", i % 2)).unwrap();
        let deliveries = [
            NewDelivery::new(sub, false),
            NewDelivery::new(keyed.id(), false),
        ];
        let job = Enqueue::new(&m, &deliveries, version)
            .idempotency(Idempotency::new(format!("key {i}"), start));
        store.enqueue(&job).await.unwrap();
        let claims = store
            .claim(&ClaimRequest::new(now, 10, 10, Duration::from_secs(30)))
            .await
            .unwrap()
            .claims;
        assert!(!claims.is_empty());
        for claim in &claims {
            let attempt = Attempt::new(
                claim.delivery.id,
                claim.delivery.attempts + 1,
                now,
                Duration::from_millis(i),
                AttemptOutcome::Answered {
                    status: 500,
                    body: Default::default(),
                },
            );
            let next = if i % 2 == 0 {
                Next::RetryAt(now + Duration::from_secs(1))
            } else {
                Next::Delivered
            };
            store
                .record_attempt(claim.lease, &attempt, next)
                .await
                .unwrap();
        }
    }
    let statements = [
        CLAIM,
        SLOTS,
        RELEASE_LAPSED,
        writer::LAST_SEQ,
        writer::MESSAGE_EXISTS,
        writer::SUBSCRIPTION_DISABLED,
        writer::DELIVERY_EXISTS,
        writer::TARGET,
        writer::VERSION,
        writer::KEY,
        writer::INSERT_MESSAGE,
        writer::INSERT_DELIVERY,
        writer::INSERT_ATTEMPT,
        writer::UPDATE_DELIVERY,
        writer::UPDATE_HEALTH,
        writer::UPSERT_KEY,
    ];
    let counts = store
        .inner
        .write(move |writer| {
            let mut counts = Vec::new();
            for sql in statements {
                let statement = writer.conn.prepare_cached(sql).map_err(db)?;
                counts.push((
                    statement.get_status(StatementStatus::VmStep) > 0,
                    statement.get_status(StatementStatus::RePrepare),
                ));
            }
            Ok(counts)
        })
        .await
        .unwrap();
    for (sql, (ran, reprepared)) in statements.iter().zip(counts) {
        assert!(ran, "not run, or not kept prepared: {sql}");
        assert_eq!(reprepared, 0, "prepared again: {sql}");
    }
}
