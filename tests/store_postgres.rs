//! The `Store` conformance suite on `PostgresStore`, each test in a fresh schema (dropped at its
//! end); then what only a shared store does: workers in concurrent claims, LISTEN/NOTIFY, the
//! transactional outbox, migrations, and healing after the database drops connections.
//!
//! Needs `WEBHOOKS_TEST_POSTGRES_URL` (say `postgres://postgres@127.0.0.1:5432/test`); without
//! it every test says it was skipped and passes. `database_restart` needs a server of its own,
//! see there. The tests reach the database through sqlx's
//! PostgreSQL driver, which `webhooks`' `postgres` feature enables.
// Helpers outside `#[test]` functions unwrap and print as tests do.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[macro_use]
#[path = "conformance/mod.rs"]
mod conformance;
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::postgres::Schema;
use common::{DEADLINE, RandomNumber};
use conformance::{LEASE_MS, add, add_plain, at, claim, record, request, send, subscription};
use sqlx::Connection;
use webhooks::store::{
    Change, ClaimRequest, DeliveryStatus, Enqueue, Enqueued, Idempotency, NewDelivery, Next,
    PostgresStore, Store, StoreError,
};
use webhooks::testing::TestReceiver;
use webhooks::{
    DeliveryId, DisableReason, Disabled, Message, MessageId, Secret, SubscriptionId, Webhooks,
};

const RESTART_URL_VAR: &str = "WEBHOOKS_TEST_POSTGRES_RESTART_URL";
const RESTART_VAR: &str = "WEBHOOKS_TEST_POSTGRES_RESTART";

/// What this suite's tests name their schemas.
const PREFIX: &str = "webhooks_test_";

/// What only this suite does with a test's schema.
impl Schema {
    /// The URL with the schema as application name: how `kill_connections` finds them.
    fn tagged_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}application_name={}", self.url, self.name)
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.tagged_url(), &self.name)
            .await
            .unwrap()
    }

    /// Terminates every connection of this test's stores, as a database restart would.
    async fn kill_connections(&self) -> i64 {
        let mut conn = self.connection().await;
        sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }
}

/// A store in a fresh schema, or `None` when the tests are skipped.
async fn fresh(test: &str) -> Option<(PostgresStore, Schema)> {
    let schema = Schema::new(test, PREFIX)?;
    Some((schema.store().await, schema))
}

conformance_suite!(match fresh("the conformance test").await {
    Some(made) => std::future::ready(made),
    None => return,
});

/// Two stores on one schema: two workers, as two processes would be.
async fn two_workers(test: &str) -> Option<(PostgresStore, PostgresStore, Schema)> {
    Some(two_workers_in(Schema::new(test, PREFIX)?).await)
}

/// Two stores on `schema`.
async fn two_workers_in(schema: Schema) -> (PostgresStore, PostgresStore, Schema) {
    let a = schema.store().await;
    let b = schema.store().await;
    (a, b, schema)
}

/// Calls `changed` until it resolves with `expected`, at most [`DEADLINE`].
async fn wait_change(store: &PostgresStore, expected: Change) {
    tokio::time::timeout(DEADLINE, async {
        while store.changed().await != expected {}
    })
    .await
    .unwrap_or_else(|_| panic!("no {expected:?} change within {DEADLINE:?}"));
}

/// Waits until `a` has heard everything `b` did so far (notifications arrive in commit order),
/// then takes it all: afterwards, only what `b` does next wakes `a`.
async fn barrier(a: &PostgresStore, b: &PostgresStore) {
    b.insert_subscription(&subscription()).await.unwrap();
    wait_change(a, Change::Subscriptions).await;
    drain_changes(a).await;
}

/// Takes what `changed` holds already, without waiting.
async fn drain_changes(store: &PostgresStore) -> Vec<Change> {
    let mut taken = Vec::new();
    while let Ok(change) = tokio::time::timeout(Duration::ZERO, store.changed()).await {
        taken.push(change);
    }
    taken
}

// ---------------------------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------------------------

/// Two workers claiming at once, in small batches, never get the same delivery, and between
/// them get every one (recording each, which makes room under the per-subscription cap). A
/// claim may come back empty while the other holds every subscription: a worker stops after
/// several empty ones in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_share_a_delivery() {
    let Some((a, b, _schema)) = two_workers("concurrent_claims_never_share_a_delivery").await
    else {
        return;
    };
    let subs = [
        add_plain(&a).await,
        add_plain(&a).await,
        add_plain(&a).await,
    ];
    let mut all = HashSet::new();
    for ms in 0..100 {
        all.extend(send(&a, ms, &subs).await.1);
    }
    let worker = |store: Arc<PostgresStore>| async move {
        let mut got = Vec::new();
        let mut idle = 0;
        while idle < 20 {
            let claims = store.claim(&request(1_000, 7, 3)).await.unwrap().claims;
            idle = if claims.is_empty() { idle + 1 } else { 0 };
            got.extend(claims.iter().map(|c| c.delivery.id));
            for claim in &claims {
                record(&*store, claim, 1_001, Next::Delivered).await;
            }
        }
        got
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (got_a, got_b) = tokio::join!(
        tokio::spawn(worker(a.clone())),
        tokio::spawn(worker(b.clone()))
    );
    let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
    assert!(!got_a.is_empty() && !got_b.is_empty(), "both worked");
    let mut seen = HashSet::new();
    for id in got_a.iter().chain(&got_b) {
        assert!(seen.insert(*id), "{id} was claimed twice");
    }
    assert_eq!(seen, all, "every delivery, once");
}

/// Two workers on one ordered subscription: never two of its deliveries leased at once, and
/// they are attempted in send order, retries included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_subscription_is_held_by_one_worker_at_a_time() {
    let Some((a, b, _schema)) =
        two_workers("ordered_subscription_is_held_by_one_worker_at_a_time").await
    else {
        return;
    };
    let ordered = add(&a, subscription().ordered(true)).await;
    let plain = add_plain(&a).await;
    let mut sent = Vec::new();
    for ms in 0..30 {
        let (_, ids) = send(&a, ms, &[ordered, plain]).await;
        sent.push(ids[0]);
    }
    let held = Arc::new(AtomicUsize::new(0));
    let attempted = Arc::new(Mutex::new(Vec::new()));
    let worker = |store: Arc<PostgresStore>,
                  held: Arc<AtomicUsize>,
                  attempted: Arc<Mutex<Vec<DeliveryId>>>| async move {
        let mut idle = 0;
        while idle < 50 {
            let claims = store.claim(&request(1_000, 4, 4)).await.unwrap().claims;
            idle = if claims.is_empty() { idle + 1 } else { 0 };
            for claim in claims {
                if claim.delivery.subscription_id != ordered {
                    record(&*store, &claim, 1_001, Next::Delivered).await;
                    continue;
                }
                let before = held.fetch_add(1, Ordering::SeqCst);
                assert_eq!(
                    before, 0,
                    "two deliveries of the ordered subscription held at once"
                );
                attempted.lock().unwrap().push(claim.delivery.id);
                // Every third first attempt fails and is retried at once: the head stays.
                let next = if claim.delivery.attempts == 0
                    && attempted.lock().unwrap().len().is_multiple_of(3)
                {
                    Next::RetryAt(at(1_000))
                } else {
                    Next::Delivered
                };
                // Released before the lease is: nobody can claim in between.
                held.fetch_sub(1, Ordering::SeqCst);
                record(&*store, &claim, 1_001, next).await;
            }
        }
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (ra, rb) = tokio::join!(
        tokio::spawn(worker(a.clone(), held.clone(), attempted.clone())),
        tokio::spawn(worker(b.clone(), held.clone(), attempted.clone()))
    );
    ra.unwrap();
    rb.unwrap();
    let attempted = attempted.lock().unwrap().clone();
    let mut delivered_order = attempted.clone();
    delivered_order.dedup();
    assert_eq!(
        delivered_order, sent,
        "send order, each retry right after its failure"
    );
    assert!(attempted.len() > sent.len(), "some were retried");
    for id in &sent {
        assert_eq!(
            a.delivery(*id).await.unwrap().unwrap().status,
            DeliveryStatus::Delivered
        );
    }
}

/// The same while a third party keeps requeueing delivered messages of the ordered
/// subscription: each requeue makes an older delivery its head again, so workers with
/// snapshots a moment apart see different heads. Still never two held at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_subscription_stays_single_under_requeues() {
    let Some((a, b, schema)) =
        two_workers("ordered_subscription_stays_single_under_requeues").await
    else {
        return;
    };
    let requeuer = schema.store().await;
    let ordered = add(&a, subscription().ordered(true)).await;
    let mut sent = Vec::new();
    for ms in 0..10 {
        sent.push(send(&a, ms, &[ordered]).await.1[0]);
    }
    let held = Arc::new(AtomicUsize::new(0));
    let requeues_left = Arc::new(AtomicUsize::new(300));
    let worker = |store: Arc<PostgresStore>, held: Arc<AtomicUsize>, left: Arc<AtomicUsize>| async move {
        let mut attempts = 0;
        let mut idle = 0;
        while idle < 50 || left.load(Ordering::SeqCst) > 0 {
            let claims = store.claim(&request(1_000, 4, 4)).await.unwrap().claims;
            idle = if claims.is_empty() { idle + 1 } else { 0 };
            for claim in claims {
                let before = held.fetch_add(1, Ordering::SeqCst);
                assert_eq!(
                    before, 0,
                    "two deliveries of the ordered subscription held at once"
                );
                attempts += 1;
                held.fetch_sub(1, Ordering::SeqCst);
                record(&*store, &claim, 1_001, Next::Delivered).await;
            }
        }
        attempts
    };
    let requeue = async {
        let mut n = 0;
        while requeues_left.load(Ordering::SeqCst) > 0 {
            // Conflicts (in flight) are expected: the point is to race the claims.
            let _ = requeuer.redeliver(sent[n % sent.len()], at(1_000)).await;
            n += 7;
            requeues_left.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (ra, rb, ()) = tokio::join!(
        tokio::spawn(worker(a.clone(), held.clone(), requeues_left.clone())),
        tokio::spawn(worker(b.clone(), held.clone(), requeues_left.clone())),
        requeue
    );
    let attempts = ra.unwrap() + rb.unwrap();
    assert!(
        attempts > sent.len(),
        "requeued ones were attempted again: {attempts}"
    );
}

/// A claim skips a subscription that another claim is working on, rather than counting its
/// leases (or judging its head) from a snapshot that cannot see the other's leases yet. (The
/// race is too narrow to produce on demand, so the claim in progress is played by a
/// transaction holding the subscription's lock, as `PostgresStore::claim` takes it.)
#[tokio::test]
async fn claim_skips_a_subscription_another_claim_holds() {
    let Some((a, schema)) = fresh("claim_skips_a_subscription_another_claim_holds").await else {
        return;
    };
    let ordered = add(&a, subscription().ordered(true)).await;
    let plain = add_plain(&a).await;
    send(&a, 0, &[ordered, plain]).await;
    let mut other = schema.connection().await;
    let mut in_progress = other.begin().await.unwrap();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(\
         hashtextextended('webhooks claim ' || $1 || ' ' || $2::text, 0))",
    )
    .bind(&schema.name)
    .bind(ordered.as_uuid().to_string())
    .execute(&mut *in_progress)
    .await
    .unwrap();
    let claims = claim(&a, 0).await;
    assert_eq!(claims.len(), 1, "only the unordered subscription's");
    assert_eq!(claims[0].delivery.subscription_id, plain);
    in_progress.rollback().await.unwrap();
    let claims = claim(&a, 0).await;
    assert_eq!(
        claims.len(),
        1,
        "the ordered head, once the other claim is over"
    );
    assert_eq!(claims[0].delivery.subscription_id, ordered);

    // The same for an unordered subscription: its leases are counted by one claim at a time.
    send(&a, 1, &[plain]).await;
    let mut in_progress = other.begin().await.unwrap();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(\
         hashtextextended('webhooks claim ' || $1 || ' ' || $2::text, 0))",
    )
    .bind(&schema.name)
    .bind(plain.as_uuid().to_string())
    .execute(&mut *in_progress)
    .await
    .unwrap();
    assert!(claim(&a, 1).await.is_empty(), "held by the other claim");
    in_progress.rollback().await.unwrap();
    assert_eq!(claim(&a, 1).await.len(), 1);
}

/// A worker's lapsed lease is taken over by the other; the first one's late attempt is kept
/// but not applied.
#[tokio::test]
async fn lapsed_lease_is_reclaimed_by_the_other_worker() {
    let Some((a, b, _schema)) = two_workers("lapsed_lease_is_reclaimed_by_the_other_worker").await
    else {
        return;
    };
    let sub = add_plain(&a).await;
    let (_, ids) = send(&a, 0, &[sub]).await;
    let first = claim(&a, 0).await.remove(0);
    assert!(
        claim(&b, LEASE_MS - 1).await.is_empty(),
        "held by the first worker"
    );
    let second = claim(&b, LEASE_MS).await.remove(0);
    assert_eq!(second.delivery.id, ids[0]);
    assert!(
        !record(&a, &first, LEASE_MS + 1, Next::Delivered)
            .await
            .applied
    );
    assert_eq!(
        b.delivery(ids[0]).await.unwrap().unwrap().status,
        DeliveryStatus::InFlight
    );
    assert!(
        record(&b, &second, LEASE_MS + 2, Next::Delivered)
            .await
            .applied
    );
    assert_eq!(a.attempts(ids[0]).await.unwrap().len(), 2);
}

/// An exclusion or a per-subscription cap of one worker does not hold the other back.
#[tokio::test]
async fn claims_honour_exclude_and_caps_across_workers() {
    let Some((a, b, _schema)) = two_workers("claims_honour_exclude_and_caps_across_workers").await
    else {
        return;
    };
    let (s1, s2) = (add_plain(&a).await, add_plain(&a).await);
    for ms in 0..5 {
        send(&a, ms, &[s1, s2]).await;
    }
    let mut req = ClaimRequest::new(at(10), 100, 2, conformance::LEASE);
    req.exclude = vec![s1];
    let from_a = a.claim(&req).await.unwrap().claims;
    assert_eq!(from_a.len(), 2);
    assert!(from_a.iter().all(|c| c.delivery.subscription_id == s2));
    let from_b = b.claim(&request(10, 100, 100)).await.unwrap().claims;
    assert_eq!(from_b.len(), 8, "all of s1's, and what is left of s2's");
}

// ---------------------------------------------------------------------------------------------
// Limits and routing across workers
// ---------------------------------------------------------------------------------------------

/// Enqueues `message` to `subs` as matched against `version`, with an idempotency key if
/// given; returns the result and the delivery ids.
async fn enqueue_at(
    store: &PostgresStore,
    message: &Message,
    subs: &[SubscriptionId],
    version: u64,
    idempotency: Option<Idempotency>,
) -> (Result<Enqueued, StoreError>, Vec<DeliveryId>) {
    let deliveries: Vec<NewDelivery> = subs.iter().map(|s| NewDelivery::new(*s, false)).collect();
    let mut enqueue = Enqueue::new(message, &deliveries, version);
    if let Some(idempotency) = idempotency {
        enqueue = enqueue.idempotency(idempotency);
    }
    let result = store.enqueue(&enqueue).await;
    (result, deliveries.iter().map(|d| d.id).collect())
}

fn manual(ms: u64) -> Disabled {
    Disabled {
        at: at(ms),
        reason: DisableReason::Manual,
    }
}

/// A change through one worker makes the other worker's enqueue, matched against the version
/// before it, fail as stale and store nothing: batched, and with an idempotency key (whose key
/// is not taken). Every kind of change moves the version by one; a change to a subscription
/// that does not exist moves nothing. Claims tell the version too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_makes_the_other_workers_enqueue_stale() {
    let Some((a, b, _schema)) = two_workers("a_change_makes_the_other_workers_enqueue_stale").await
    else {
        return;
    };
    let sub = add_plain(&a).await;
    let before = b.subscriptions().await.unwrap().version;
    let (stored, _) = enqueue_at(&b, &conformance::message(0), &[sub], before, None).await;
    assert_eq!(stored.unwrap(), Enqueued::Stored);

    let current = a.subscription(sub).await.unwrap().unwrap();
    let changed = a
        .update_subscription(&current.description("changed"))
        .await
        .unwrap();
    assert_eq!(changed.version, before + 1);
    for idempotency in [None, Some(Idempotency::new("key", at(0)))] {
        let m = conformance::message(1);
        let (result, ids) = enqueue_at(&b, &m, &[sub], before, idempotency).await;
        match result {
            Err(StoreError::Stale { version }) => assert_eq!(version, changed.version),
            other => panic!("expected stale, got {other:?}"),
        }
        assert!(b.message_deliveries(m.id()).await.unwrap().is_empty());
        assert!(b.delivery(ids[0]).await.unwrap().is_none());
    }
    let (stored, _) = enqueue_at(
        &b,
        &conformance::message(2),
        &[sub],
        changed.version,
        Some(Idempotency::new("key", at(0))),
    )
    .await;
    assert_eq!(stored.unwrap(), Enqueued::Stored, "the key was free");

    let versions = [
        a.disable_subscription(sub, manual(3))
            .await
            .unwrap()
            .version,
        a.enable_subscription(sub).await.unwrap().version,
        a.rotate_secret(sub, &Secret::generate(), at(4), Duration::from_secs(60))
            .await
            .unwrap()
            .version,
        a.insert_subscription(&subscription()).await.unwrap(),
        a.delete_subscription(sub).await.unwrap().unwrap(),
    ];
    let mut last = changed.version;
    for version in versions {
        assert_eq!(version, last + 1);
        last = version;
    }
    assert!(a.delete_subscription(sub).await.unwrap().is_none());
    assert!(a.enable_subscription(sub).await.unwrap_err().is_not_found());
    assert_eq!(b.subscriptions().await.unwrap().version, last);
    assert_eq!(
        b.claim(&request(10, 10, 10))
            .await
            .unwrap()
            .subscriptions_version,
        last
    );
}

/// A change waiting for an enqueue under way (here, `send_in_tx`'s open transaction) goes
/// before the enqueues that come after it: those wait, then find the version moved. (Row share
/// locks alone would let them through, and a change could wait for good under steady sends.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_change_goes_before_later_enqueues() {
    let Some(schema) = Schema::new("a_waiting_change_goes_before_later_enqueues", PREFIX) else {
        return;
    };
    let (a, b) = (
        Arc::new(schema.store().await),
        Arc::new(schema.store().await),
    );
    let hooks = Webhooks::builder()
        .store(schema.store().await)
        .poll_interval(Duration::from_secs(3_600))
        .build()
        .await
        .unwrap();
    let sub = hooks
        .subscribe(webhooks::Subscription::new("https://example.com/hooks").unwrap())
        .await
        .unwrap();
    let pool = a.pool().clone();
    let mut tx = pool.begin().await.unwrap();
    hooks.send_in_tx(&mut tx, &RandomNumber(1)).await.unwrap();

    let id = sub.id();
    let change = tokio::spawn({
        let a = a.clone();
        async move { a.update_subscription(&sub.description("changed")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let version = b.subscriptions().await.unwrap().version;
    let later = tokio::spawn({
        let b = b.clone();
        async move {
            enqueue_at(&b, &conformance::message(0), &[id], version, None)
                .await
                .0
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !change.is_finished(),
        "the change waits for the transaction"
    );
    assert!(
        !later.is_finished(),
        "the later enqueue waits behind the change"
    );
    tx.commit().await.unwrap();
    let changed = change.await.unwrap().unwrap();
    match later.await.unwrap() {
        Err(StoreError::Stale { version }) => assert_eq!(version, changed.version),
        other => panic!("expected stale, got {other:?}"),
    }
    hooks.shutdown().await;
}

/// A disable through one worker while the other enqueues, from several tasks at once (so in
/// group commits): no delivery of the subscription is left pending. Those committed before
/// the disable are skipped by it; those matched before it and committed after are refused as
/// stale, and matched again as the runtime does, skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_through_one_worker_misses_no_enqueue_of_the_other() {
    const SENDERS: usize = 4;
    const EACH: usize = 100;
    let Some((a, b, _schema)) =
        two_workers("disable_through_one_worker_misses_no_enqueue_of_the_other").await
    else {
        return;
    };
    let target = add_plain(&a).await;
    let other = add_plain(&a).await;
    let b = Arc::new(b);
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = |b: Arc<PostgresStore>, sent: Arc<AtomicUsize>, first: usize| async move {
        let mut stored = Vec::new();
        let mut stale = 0;
        let mut copy = b.subscriptions().await.unwrap();
        for n in first..first + EACH {
            let m = conformance::message(n as u64);
            loop {
                let deliveries: Vec<NewDelivery> = copy
                    .value
                    .iter()
                    .map(|s| NewDelivery::new(s.id(), !s.is_enabled()))
                    .collect();
                match b
                    .enqueue(&Enqueue::new(&m, &deliveries, copy.version))
                    .await
                {
                    Ok(Enqueued::Stored) => {
                        stored.extend(deliveries.iter().map(|d| (d.subscription_id, d.id)));
                        break;
                    }
                    Err(StoreError::Stale { .. }) => {
                        stale += 1;
                        copy = b.subscriptions().await.unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
            sent.fetch_add(1, Ordering::SeqCst);
        }
        (stored, stale)
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| tokio::spawn(sender(b.clone(), sent.clone(), n * EACH)))
        .collect();
    while sent.load(Ordering::SeqCst) < SENDERS * EACH / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.disable_subscription(target, manual(0)).await.unwrap();
    let at_disable = sent.load(Ordering::SeqCst);

    let mut stored = Vec::new();
    let mut stale = 0;
    for sender in senders {
        let (s, n) = sender.await.unwrap();
        stored.extend(s);
        stale += n;
    }
    println!("{at_disable} sent when disabled; {stale} enqueues were stale");
    assert!(at_disable < SENDERS * EACH, "the disable raced the sends");
    assert_eq!(
        stored.len(),
        2 * SENDERS * EACH,
        "every message, both subscriptions"
    );
    for (sub, id) in stored {
        let status = b.delivery(id).await.unwrap().unwrap().status;
        if sub == target {
            assert_eq!(
                status,
                DeliveryStatus::Skipped,
                "{id} of the disabled subscription"
            );
        } else {
            assert_eq!(sub, other);
            assert_eq!(status, DeliveryStatus::Pending);
        }
    }
}

/// Two workers claiming at once never hold more of a subscription's deliveries between them
/// than its `max_in_flight`, or, without one, than the request's `per_subscription`: both are
/// counted over every worker's leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_exceed_max_in_flight() {
    let Some((a, b, _schema)) = two_workers("two_workers_never_exceed_max_in_flight").await else {
        return;
    };
    let capped = add(&a, subscription().max_in_flight(3)).await;
    let plain = add_plain(&a).await;
    for ms in 0..40 {
        send(&a, ms, &[capped, plain]).await;
    }
    // Held now, and at most, per subscription (capped, plain).
    let held = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let peak = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let limits = [3, 2];
    let worker = |store: Arc<PostgresStore>,
                  held: Arc<[AtomicUsize; 2]>,
                  peak: Arc<[AtomicUsize; 2]>| async move {
        let mut done = 0;
        let mut idle = 0;
        while idle < 20 {
            let claims = store.claim(&request(1_000, 4, 2)).await.unwrap().claims;
            idle = if claims.is_empty() { idle + 1 } else { 0 };
            let which =
                |c: &webhooks::store::Claim| usize::from(c.delivery.subscription_id != capped);
            for c in &claims {
                let now = held[which(c)].fetch_add(1, Ordering::SeqCst) + 1;
                assert!(
                    now <= limits[which(c)],
                    "{now} of one subscription held at once"
                );
                peak[which(c)].fetch_max(now, Ordering::SeqCst);
            }
            // Held a moment, so that the other worker claims meanwhile.
            tokio::time::sleep(Duration::from_millis(2)).await;
            for c in &claims {
                // Released before the lease is: never more than the store holds.
                held[which(c)].fetch_sub(1, Ordering::SeqCst);
                record(&*store, c, 1_001, Next::Delivered).await;
                done += 1;
            }
        }
        done
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (da, db) = tokio::join!(
        tokio::spawn(worker(a.clone(), held.clone(), peak.clone())),
        tokio::spawn(worker(b.clone(), held.clone(), peak.clone()))
    );
    let (da, db) = (da.unwrap(), db.unwrap());
    assert_eq!(da + db, 80, "every delivery");
    assert!(da > 0 && db > 0, "both worked: {da} and {db}");
    assert_eq!(peak[0].load(Ordering::SeqCst), 3, "up to max_in_flight");
    assert_eq!(peak[1].load(Ordering::SeqCst), 2, "up to per_subscription");
}

/// Two workers on one ordered subscription with ordering keys: each key's deliveries are
/// attempted one at a time in send order, while different keys go in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_keys_are_held_one_at_a_time_across_workers() {
    let Some((a, b, _schema)) =
        two_workers("ordering_keys_are_held_one_at_a_time_across_workers").await
    else {
        return;
    };
    const KEYS: usize = 4;
    let ordered = add(&a, subscription().ordered(true)).await;
    let version = a.subscriptions().await.unwrap().version;
    let mut sent: Vec<Vec<DeliveryId>> = vec![Vec::new(); KEYS];
    for n in 0..40 {
        let key = n % KEYS;
        let m = conformance::message(n as u64)
            .with_ordering_key(format!("key-{key}"))
            .unwrap();
        let (result, ids) = enqueue_at(&a, &m, &[ordered], version, None).await;
        assert_eq!(result.unwrap(), Enqueued::Stored);
        sent[key].push(ids[0]);
    }
    let held: Arc<Vec<AtomicUsize>> = Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    let keys_held = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let attempted = Arc::new(Mutex::new(vec![Vec::new(); KEYS]));
    let worker = |store: Arc<PostgresStore>| {
        let (held, keys_held, peak, attempted) = (
            held.clone(),
            keys_held.clone(),
            peak.clone(),
            attempted.clone(),
        );
        async move {
            let mut idle = 0;
            while idle < 20 {
                let claims = store.claim(&request(1_000, 3, 10)).await.unwrap().claims;
                idle = if claims.is_empty() { idle + 1 } else { 0 };
                let key = |c: &webhooks::store::Claim| -> usize {
                    c.message.ordering_key().unwrap()[4..].parse().unwrap()
                };
                for c in &claims {
                    let before = held[key(c)].fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "two deliveries of one key held at once");
                    let now = keys_held.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    attempted.lock().unwrap()[key(c)].push(c.delivery.id);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                for c in &claims {
                    held[key(c)].fetch_sub(1, Ordering::SeqCst);
                    keys_held.fetch_sub(1, Ordering::SeqCst);
                    record(&*store, c, 1_001, Next::Delivered).await;
                }
            }
        }
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (ra, rb) = tokio::join!(tokio::spawn(worker(a.clone())), tokio::spawn(worker(b)));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(*attempted.lock().unwrap(), sent, "each key in send order");
    assert!(
        peak.load(Ordering::SeqCst) > 1,
        "different keys were held at once"
    );
}

/// Two workers claiming a rate-limited subscription at once get send slots `1/rate` apart
/// between them, from the claim's time on, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_slots_of_two_workers_are_spaced() {
    let Some((a, b, _schema)) = two_workers("rate_slots_of_two_workers_are_spaced").await else {
        return;
    };
    // 20 a second: 50 ms apart; a 30 s lease gives slots up to 15 s ahead, 301 of them.
    let sub = add(&a, subscription().rate_limit(20)).await;
    for ms in 0..100 {
        send(&a, ms, &[sub]).await;
    }
    let worker = |store: Arc<PostgresStore>| async move {
        let mut slots = Vec::new();
        let mut idle = 0;
        while idle < 20 {
            let claims = store.claim(&request(1_000, 7, 1_000)).await.unwrap().claims;
            idle = if claims.is_empty() { idle + 1 } else { 0 };
            slots.extend(claims.iter().map(|c| c.not_before.expect("a send slot")));
        }
        slots
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (sa, sb) = tokio::join!(tokio::spawn(worker(a.clone())), tokio::spawn(worker(b)));
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert!(!sa.is_empty() && !sb.is_empty(), "both claimed");
    let mut slots: Vec<SystemTime> = sa.into_iter().chain(sb).collect();
    slots.sort();
    let expected: Vec<SystemTime> = (0..100)
        .map(|n| at(1_000) + Duration::from_millis(50) * n)
        .collect();
    assert_eq!(slots, expected, "50 ms apart, none given twice");

    // The next claim goes on from the last slot given.
    send(&*a, 200, &[sub]).await;
    let claims = claim(&*a, 1_000).await;
    assert_eq!(claims[0].not_before, Some(at(1_000 + 100 * 50)));
}

/// Send slots stop half a lease after the claim (so every delivery claimed is sent before its
/// lease lapses), and claims later on go on from the next free one: the numbers of the
/// runtime's `Slots`.
#[tokio::test]
async fn rate_slots_stop_at_half_a_lease() {
    let Some((store, _schema)) = fresh("rate_slots_stop_at_half_a_lease").await else {
        return;
    };
    // 2 a second: 500 ms apart. A 2 s lease: slots up to 1 s ahead.
    let sub = add(&store, subscription().rate_limit(2)).await;
    for ms in 0..5 {
        send(&store, ms, &[sub]).await;
    }
    let lease = Duration::from_secs(2);
    let slots = |claimed: webhooks::store::Claimed| -> Vec<Option<SystemTime>> {
        claimed.claims.iter().map(|c| c.not_before).collect()
    };
    let first = store
        .claim(&ClaimRequest::new(at(10), 100, 100, lease))
        .await
        .unwrap();
    assert_eq!(slots(first), [Some(at(10)), Some(at(510)), Some(at(1_010))]);
    let none = store
        .claim(&ClaimRequest::new(at(10), 100, 100, lease))
        .await
        .unwrap();
    assert!(none.claims.is_empty(), "no slot left within the horizon");
    let later = store
        .claim(&ClaimRequest::new(at(1_010), 100, 100, lease))
        .await
        .unwrap();
    assert_eq!(slots(later), [Some(at(1_510)), Some(at(2_010))]);
}

/// Two workers enqueueing messages with one idempotency key at once store exactly one; the
/// other is told the first one's id and stores nothing. A key older than the window is taken
/// anew, and `purge` forgets keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_enqueues_of_two_workers_store_one() {
    let Some((a, b, _schema)) = two_workers("idempotent_enqueues_of_two_workers_store_one").await
    else {
        return;
    };
    let sub = add_plain(&a).await;
    let version = a.subscriptions().await.unwrap().version;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let send_keyed = |store: Arc<PostgresStore>, ms: u64, key: String, since: u64| async move {
        let m = conformance::message(ms);
        let result = enqueue_at(
            &store,
            &m,
            &[sub],
            version,
            Some(Idempotency::new(key, at(since))),
        )
        .await
        .0
        .unwrap();
        (m.id(), result)
    };
    for round in 0..50 {
        let key = format!("order-{round}");
        let (ra, rb) = tokio::join!(
            tokio::spawn(send_keyed(a.clone(), round, key.clone(), 0)),
            tokio::spawn(send_keyed(b.clone(), round, key, 0))
        );
        let ((ida, ra), (idb, rb)) = (ra.unwrap(), rb.unwrap());
        let (first, duplicate) = match (ra, rb) {
            (Enqueued::Stored, Enqueued::Duplicate(first)) => (ida, (idb, first)),
            (Enqueued::Duplicate(first), Enqueued::Stored) => (idb, (ida, first)),
            other => panic!("round {round}: {other:?}"),
        };
        assert_eq!(duplicate.1, first, "the duplicate names the stored one");
        assert_eq!(a.message_deliveries(first).await.unwrap().len(), 1);
        assert!(a.message_deliveries(duplicate.0).await.unwrap().is_empty());
    }
    // Stored at at(0); a window starting after that has forgotten it.
    let (_, again) = send_keyed(a.clone(), 10_000, "order-0".to_owned(), 5_000).await;
    assert_eq!(again, Enqueued::Stored);
    let (first, duplicate) = send_keyed(b.clone(), 10_001, "order-0".to_owned(), 5_000).await;
    assert!(matches!(duplicate, Enqueued::Duplicate(id) if id != first));
    // Purged keys are free again, whatever the window.
    a.purge(at(5_000)).await.unwrap();
    let (_, after_purge) = send_keyed(b.clone(), 10_002, "order-1".to_owned(), 0).await;
    assert_eq!(after_purge, Enqueued::Stored);
}

/// `send_in_tx` in a transaction, when another process changed the subscriptions without this
/// runtime hearing of it: the store says stale without failing a statement, the runtime
/// matches again within the same transaction, which goes on and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_tx_matches_again_when_stale() {
    let Some(schema) = Schema::new("send_in_tx_matches_again_when_stale", PREFIX) else {
        return;
    };
    let store = schema.store().await;
    let pool = store.pool().clone();
    schema
        .execute(format!(
            "CREATE TABLE \"{}\".numbers (value integer NOT NULL)",
            schema.name
        ))
        .await;
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .poll_interval(Duration::from_secs(3_600))
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(webhooks::Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    // Let the dispatcher settle (it claims once, then waits), then change the version behind
    // its back: no notification, so its copy is stale.
    tokio::time::sleep(Duration::from_millis(200)).await;
    schema
        .execute(format!(
            "UPDATE \"{}\".subscriptions_version SET version = version + 1",
            schema.name
        ))
        .await;
    let insert = format!(
        "INSERT INTO \"{}\".numbers (value) VALUES ($1)",
        schema.name
    );
    let mut tx = pool.begin().await.unwrap();
    let sent = hooks.send_in_tx(&mut tx, &RandomNumber(5)).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(5)
        .execute(&mut *tx)
        .await
        .expect("the transaction is still usable");
    tx.commit().await.unwrap();
    assert_eq!(hooks.deliveries(sent).await.unwrap().len(), 1);
    receiver.wait_for(1, DEADLINE).await.unwrap();
    hooks.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// LISTEN/NOTIFY
// ---------------------------------------------------------------------------------------------

/// Another worker's enqueue wakes an idle one at once; what a store did itself does not wake
/// it; subscription changes are told apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_resolves_after_another_stores_enqueue() {
    let Some((a, b, _schema)) = two_workers("changed_resolves_after_another_stores_enqueue").await
    else {
        return;
    };
    let a = Arc::new(a);
    let sub = add_plain(&b).await;
    wait_change(&a, Change::Subscriptions).await;
    assert!(drain_changes(&a).await.is_empty());

    // The wake latency: from the start of the sender's enqueue (one statement, its commit
    // included) and from its return.
    let mut from_start = Vec::new();
    let mut from_return = Vec::new();
    for ms in 0..20 {
        let waiter = tokio::spawn({
            let a = a.clone();
            async move {
                let change = a.changed().await;
                (change, Instant::now())
            }
        });
        // The waiter is parked, or its wake-up is kept for it: either way nothing is lost.
        let start = Instant::now();
        send(&b, ms, &[sub]).await;
        let returned = Instant::now();
        let (change, woke) = tokio::time::timeout(DEADLINE, waiter)
            .await
            .expect("woken within the deadline")
            .unwrap();
        assert_eq!(change, Change::Work);
        from_start.push(woke.saturating_duration_since(start));
        from_return.push(woke.saturating_duration_since(returned));
    }
    from_start.sort();
    from_return.sort();
    println!(
        "wake latency: median {:?} from the start of the enqueue (max {:?}); \
         median {:?} after it returned (max {:?})",
        from_start[10], from_start[19], from_return[10], from_return[19]
    );

    // Its own enqueue does not wake `a`; `b`'s subscription change, sent after it, does.
    send(&*a, 100, &[sub]).await;
    b.insert_subscription(&subscription()).await.unwrap();
    wait_change(&a, Change::Subscriptions).await;
    assert!(
        drain_changes(&a).await.is_empty(),
        "a's own enqueue, notified before b's change, was ignored"
    );

    // A retry, a redelivery and a recovery by `b` are work for `a`.
    let c = claim(&b, 200).await;
    assert!(!c.is_empty());
    for c in &c {
        record(&b, c, 201, Next::RetryAt(at(5_000))).await;
    }
    wait_change(&a, Change::Work).await;
    let id = c[0].delivery.id;
    for c in &claim(&b, 5_000).await {
        record(&b, c, 5_001, Next::Exhausted).await;
    }
    barrier(&a, &b).await;
    b.redeliver(id, at(6_000)).await.unwrap();
    wait_change(&a, Change::Work).await;
    barrier(&a, &b).await;
    assert_eq!(
        b.recover(sub, at(0), at(1_000), at(7_000)).await.unwrap(),
        20
    );
    wait_change(&a, Change::Work).await;
}

/// After the database drops every connection (as a restart does), the LISTEN connection comes
/// back by itself and says so, notifications arrive again, and the pools work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_and_pool_heal_after_connections_are_killed() {
    let Some((a, b, schema)) =
        two_workers("listener_and_pool_heal_after_connections_are_killed").await
    else {
        return;
    };
    let sub = add_plain(&a).await;
    wait_change(&b, Change::Subscriptions).await;
    drain_changes(&a).await;
    drain_changes(&b).await;

    let killed = schema.kill_connections().await;
    assert!(
        killed >= 2,
        "both stores' LISTEN connections at least, got {killed}"
    );

    // Reconnected: everything may have changed meanwhile, so both kinds are raised.
    wait_change(&a, Change::Subscriptions).await;
    wait_change(&a, Change::Work).await;
    wait_change(&b, Change::Subscriptions).await;
    wait_change(&b, Change::Work).await;

    // Notifications flow again, and both pools replaced their dead connections.
    send(&b, 0, &[sub]).await;
    wait_change(&a, Change::Work).await;
    assert_eq!(claim(&a, 0).await.len(), 1);
}

/// A real database restart, on a server of its own: `WEBHOOKS_TEST_POSTGRES_RESTART_URL` (say
/// `postgres://postgres@127.0.0.1:5433/test`) and `WEBHOOKS_TEST_POSTGRES_RESTART`, a shell
/// command that restarts exactly that server (say `pg_ctlcluster --skip-systemctl-redirect 15
/// restart restart`); `.ci/postgres-restartable.sh` makes one. Not the server of the other tests:
/// the restart would break their connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart() {
    let (Ok(url), Ok(command)) = (std::env::var(RESTART_URL_VAR), std::env::var(RESTART_VAR))
    else {
        println!("skipped database_restart: {RESTART_URL_VAR} or {RESTART_VAR} is not set");
        return;
    };
    let (a, b, _schema) = two_workers_in(Schema::at(url, PREFIX)).await;
    let sub = add_plain(&a).await;
    wait_change(&b, Change::Subscriptions).await;
    drain_changes(&a).await;
    drain_changes(&b).await;

    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &command])
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "the restart command failed: {status}");

    wait_change(&a, Change::Subscriptions).await;
    wait_change(&a, Change::Work).await;
    send(&b, 0, &[sub]).await;
    wait_change(&a, Change::Work).await;
    assert_eq!(claim(&a, 0).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The transactional outbox
// ---------------------------------------------------------------------------------------------

/// `send_in_tx` commits with the application's transaction (and the receiver gets it, woken by
/// NOTIFY rather than a poll), and vanishes with its rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_tx_commits_and_rolls_back_with_the_transaction() {
    let Some(schema) = Schema::new(
        "send_in_tx_commits_and_rolls_back_with_the_transaction",
        PREFIX,
    ) else {
        return;
    };
    let store = schema.store().await;
    let pool = store.pool().clone();
    schema
        .execute(format!(
            "CREATE TABLE \"{}\".numbers (value integer NOT NULL)",
            schema.name
        ))
        .await;
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        // Only a notification can wake the dispatcher within the test's deadline.
        .poll_interval(Duration::from_secs(3_600))
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(webhooks::Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let insert = format!(
        "INSERT INTO \"{}\".numbers (value) VALUES ($1)",
        schema.name
    );
    let numbers = format!("SELECT count(*) FROM \"{}\".numbers", schema.name);

    // Rolled back: neither the application's row nor the message exists.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .bind(1)
        .execute(&mut *tx)
        .await
        .unwrap();
    let gone = hooks.send_in_tx(&mut tx, &RandomNumber(1)).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(hooks.deliveries(gone).await.unwrap().is_empty());

    // Committed: both exist, and the message is delivered.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(863)
        .execute(&mut *tx)
        .await
        .unwrap();
    let sent = hooks.send_in_tx(&mut tx, &RandomNumber(863)).await.unwrap();
    assert!(
        hooks.deliveries(sent).await.unwrap().is_empty(),
        "invisible before the commit"
    );
    assert_eq!(receiver.count(), 0);
    tx.commit().await.unwrap();
    let requests = receiver.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(requests[0].webhook_id(), Some(sent.to_string().as_str()));
    assert_eq!(requests[0].json().unwrap()["data"], 863);
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(numbers))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the committed row");

    // The rolled-back one never arrives: the delivered one is the only request, and the
    // delivery is recorded.
    let deliveries = hooks.deliveries(sent).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    let delivered = tokio::time::timeout(DEADLINE, async {
        loop {
            let status = hooks
                .delivery(deliveries[0].id)
                .await
                .unwrap()
                .unwrap()
                .status;
            if status == DeliveryStatus::Delivered {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "recorded delivered");
    assert_eq!(receiver.count(), 1);
    hooks.shutdown().await;
}

/// Two runtimes on one schema, as two processes would run: a subscription made on one is
/// picked up by the other (LISTEN/NOTIFY), and every message is delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_the_work() {
    let Some(schema) = Schema::new("two_runtimes_share_the_work", PREFIX) else {
        return;
    };
    let receiver = TestReceiver::start().await.unwrap();
    let runtime = |store: PostgresStore| {
        Webhooks::builder()
            .store(store)
            .allow_private_networks()
            .poll_interval(Duration::from_secs(3_600))
            .build()
    };
    let first = runtime(schema.store().await).await.unwrap();
    let second = runtime(schema.store().await).await.unwrap();
    second
        .subscribe(webhooks::Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();

    // The first runtime learns of the subscription from the notification.
    let mut matched = Vec::new();
    let learned = tokio::time::timeout(DEADLINE, async {
        loop {
            let id = first.send(&RandomNumber(0)).await.unwrap();
            if !first.deliveries(id).await.unwrap().is_empty() {
                return id;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first runtime reloaded its subscriptions");
    matched.push(learned);
    for n in 1..40 {
        let from = if n % 2 == 0 { &first } else { &second };
        matched.push(from.send(&RandomNumber(n)).await.unwrap());
    }
    let requests = receiver.wait_for(matched.len(), DEADLINE).await.unwrap();
    let ids: HashSet<String> = requests
        .iter()
        .filter_map(|r| r.webhook_id().map(str::to_owned))
        .collect();
    let expected: HashSet<String> = matched.iter().map(|id| id.to_string()).collect();
    assert_eq!(ids, expected);
    for id in &matched {
        let deliveries = first.deliveries(*id).await.unwrap();
        let done = tokio::time::timeout(DEADLINE, async {
            loop {
                let d = first.delivery(deliveries[0].id).await.unwrap().unwrap();
                if d.status == DeliveryStatus::Delivered {
                    return d.attempts;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("recorded delivered");
        assert_eq!(done, 1, "one request per message");
    }
    first.shutdown().await;
    second.shutdown().await;
}

/// `send_in_tx` needs a `PostgresStore`: another store is a clear error.
#[tokio::test]
async fn send_in_tx_needs_a_postgres_store() {
    let Some(schema) = Schema::new("send_in_tx_needs_a_postgres_store", PREFIX) else {
        return;
    };
    let pool = schema.store().await.pool().clone();
    let hooks = Webhooks::builder()
        .store(webhooks::store::MemoryStore::new())
        .build()
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let error = hooks
        .send_in_tx(&mut tx, &RandomNumber(1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("PostgresStore"), "{error}");
    hooks.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// A schema written by a newer version is refused, clearly, and left alone.
#[tokio::test]
async fn newer_schema_is_refused() {
    let Some(schema) = Schema::new("newer_schema_is_refused", PREFIX) else {
        return;
    };
    drop(schema.store().await);
    schema
        .execute(format!(
            "UPDATE \"{}\".schema_version SET version = 99",
            schema.name
        ))
        .await;
    let error = PostgresStore::connect_with(&schema.url, &schema.name)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("newer"), "{text}");
}

/// The schema version a store leaves: the number of migrations.
const SCHEMA_VERSION: i32 = 4;

/// An older (here: empty) schema is migrated on connect; stores connecting at once migrate it
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_schema_is_migrated() {
    let Some(schema) = Schema::new("older_schema_is_migrated", PREFIX) else {
        return;
    };
    schema
        .execute(format!("CREATE SCHEMA \"{}\"", schema.name))
        .await;
    let (a, b) = tokio::join!(schema.store(), schema.store());
    let sub = add_plain(&a).await;
    send(&b, 0, &[sub]).await;
    assert_eq!(claim(&a, 0).await.len(), 1);
    assert_eq!(schema.version().await, SCHEMA_VERSION);
}

/// A schema of version 1 holding data (a rate-limited subscription, a message, a pending
/// delivery) is migrated on connect, by stores connecting at once, and its data serves on: the
/// delivery is claimed, with a send slot; the subscriptions' version starts there and moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_schema_with_data_is_migrated() {
    let Some(schema) = Schema::new("version_1_schema_with_data_is_migrated", PREFIX) else {
        return;
    };
    let (sub, message, delivery) = (SubscriptionId::new(), MessageId::new(), DeliveryId::new());
    let secret = Secret::generate().expose();
    let created = 1_800_000_000_000_i64; // at(0)
    schema
        .execute(format!(
            "CREATE SCHEMA \"{name}\"; SET search_path TO \"{name}\"; {v1}; \
             INSERT INTO schema_version (version) VALUES (1); \
             INSERT INTO subscriptions (id, url, events, labels, secrets, headers, ordered, \
                 rate_limit, created_at) \
             VALUES ('{sub}', 'https://example.com/hooks', '[]', '{{}}', \
                 '[[\"{secret}\", null]]', '[]', false, 4, {created}); \
             INSERT INTO messages (id, created_at, event_type, labels, body) \
             VALUES ('{message}', {created}, 'bear_attack:reported', '{{}}', '\\x7b7d'); \
             INSERT INTO deliveries (id, message, subscription_id, created_at, status, \
                 next_attempt_at) \
             SELECT '{delivery}', seq, '{sub}', {created}, 'pending', {created} FROM messages",
            name = schema.name,
            v1 = include_str!("../webhooks/migrations/postgres/0001_initial.sql"),
            sub = sub.as_uuid(),
            message = message.as_uuid(),
            delivery = delivery.as_uuid(),
        ))
        .await;
    let (a, b) = tokio::join!(schema.store(), schema.store());
    assert_eq!(schema.version().await, SCHEMA_VERSION);

    let listed = a.subscriptions().await.unwrap();
    let ids: Vec<SubscriptionId> = listed.value.iter().map(|s| s.id()).collect();
    assert_eq!(ids, [sub]);
    assert_eq!(listed.value[0].rate_limit_per_second(), Some(4));
    assert_eq!(
        b.delivery(delivery).await.unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    let claimed = b.claim(&request(0, 10, 10)).await.unwrap();
    assert_eq!(claimed.subscriptions_version, listed.version);
    assert_eq!(claimed.claims.len(), 1);
    let c = &claimed.claims[0];
    assert_eq!(c.delivery.id, delivery);
    assert_eq!(c.message.id(), message);
    assert_eq!(c.message.ordering_key(), None);
    assert_eq!(c.not_before, Some(at(0)), "its first send slot");
    assert!(record(&a, c, 1, Next::Delivered).await.applied);

    // Changes move the version on from there, and enqueues are checked against it.
    let version = a.insert_subscription(&subscription()).await.unwrap();
    assert_eq!(version, listed.version + 1);
    let stale = b
        .enqueue(&Enqueue::new(&conformance::message(2), &[], listed.version))
        .await
        .unwrap_err();
    assert!(stale.is_stale(), "{stale:?}");
}

/// An invalid schema name is refused before anything is created.
#[tokio::test]
async fn invalid_schema_name_is_refused() {
    let Some(schema) = Schema::new("invalid_schema_name_is_refused", PREFIX) else {
        return;
    };
    let long = "x".repeat(64);
    for name in ["", long.as_str()] {
        let error = PostgresStore::connect_with(&schema.url, name)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("invalid schema name"), "{error}");
    }
}

/// The store vacuums its queue tables itself once it has finished enough deliveries (10,000):
/// claims read the front of the queue's indexes, where finished deliveries leave dead entries,
/// and autovacuum looks at a table at most once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_vacuums_its_queue() {
    let Some((store, schema)) = fresh("the_store_vacuums_its_queue").await else {
        return;
    };
    let store = Arc::new(store);
    let mut subs = Vec::new();
    for _ in 0..100 {
        subs.push(add_plain(&*store).await);
    }
    for ms in 0..100 {
        send(&*store, ms, &subs).await;
    }
    let mut conn = schema.connection().await;
    let vacuums = "SELECT vacuum_count FROM pg_stat_user_tables \
         WHERE schemaname = $1 AND relname = 'queue'";
    let before: i64 = sqlx::query_scalar(vacuums)
        .bind(&schema.name)
        .fetch_one(&mut conn)
        .await
        .unwrap();

    // 10,000 deliveries claimed and recorded, the records concurrent (group-committed).
    let mut finished = 0;
    while finished < 10_000 {
        let claims = claim(&*store, 1_000).await;
        assert!(
            !claims.is_empty(),
            "{finished} finished, none left to claim"
        );
        let mut records = tokio::task::JoinSet::new();
        for c in claims {
            let store = store.clone();
            records.spawn(async move { record(&*store, &c, 1_000, Next::Delivered).await });
        }
        while let Some(recorded) = records.join_next().await {
            assert!(recorded.unwrap().applied);
            finished += 1;
        }
    }

    let deadline = Instant::now() + DEADLINE;
    loop {
        let now: i64 = sqlx::query_scalar(vacuums)
            .bind(&schema.name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if now > before {
            break;
        }
        assert!(Instant::now() < deadline, "the queue was not vacuumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
