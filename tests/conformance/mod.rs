//! The `Store` conformance suite: one set of tests, run against every store by a runner
//! (`store_memory.rs`, `store_sqlite.rs`) that says how to make a fresh one.
//!
//! ```ignore
//! #[macro_use]
//! #[path = "conformance/mod.rs"]
//! mod conformance;
//!
//! // An expression giving a future of `(store, guard)`: the guard (a temp dir, say) lives as
//! // long as the test.
//! conformance_suite!(async { (MemoryStore::new(), ()) });
//! ```
//!
//! Every test calls the `Store` trait directly with explicit times (`at(ms)`): nothing sleeps.
// A test suite: an unwrap is how a test fails (clippy allows it only inside `#[test]` fns).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use webhooks::store::{
    Attempt, AttemptErrorKind, AttemptOutcome, Claim, ClaimRequest, Cursor, Delivery,
    DeliveryQuery, DeliveryStatus, Enqueue, Enqueued, Entity, Health, Idempotency, NewDelivery,
    Next, Recorded, Store, StoreError,
};
use webhooks::{
    DeliveryId, DisableReason, Disabled, Labels, Message, MessageId, RetryPolicy, Secret,
    Subscription, SubscriptionId, Webhooks,
};

/// Expands to one `#[tokio::test]` per conformance test, each on a fresh store made by
/// `$make`: an expression giving a future of `(store, guard)`.
macro_rules! conformance_suite {
    ($make:expr) => {
        conformance_suite!(@tests $make;
            fan_out,
            enqueue_is_checked_and_atomic,
            skipped_deliveries,
            claims_in_batches,
            claims_respect_max_in_flight,
            ordered_by_key,
            rate_limit_slots,
            disabled_in_flight,
            retry_of_disabled_is_skipped,
            versions_guard_enqueues,
            idempotent_enqueue,
            concurrent_idempotent_enqueues,
            claims_exclude,
            claims_take_turns,
            due_times,
            lease_held_then_lapsed,
            lapsed_lease_unclaimed_still_applies,
            retries_reschedule,
            ordered_head_only,
            ordered_follows_send_order,
            ordered_head_lease_lapses,
            ordered_added_later,
            exhaustion_and_health,
            concurrent_records_count_in_order,
            disable_skips_waiting,
            delete_subscription,
            next_due,
            purge_retention,
            purge_many,
            delivery_views,
            attempts_round_trip,
            subscription_round_trip,
            subscription_updates,
            disabled_round_trip,
            rotated_secrets_round_trip,
            concurrent_enqueues,
            redeliver,
            recover,
            query_filters,
            query_pages,
            query_statuses,
            query_subscription_labels,
            message_round_trip,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::conformance::$name(store).await;
            }
        )*

        /// A conformance test written but not listed above would silently run on no store.
        #[test]
        fn every_conformance_test_is_listed() {
            $crate::conformance::assert_all_listed(&[$(stringify!($name)),*]);
        }
    };
}

/// Fails unless `listed` names every conformance test in this file (each `pub async fn` that
/// takes `store: impl Store`), and nothing else.
pub fn assert_all_listed(listed: &[&str]) {
    const MARK: &str = "pub async fn ";
    let source = include_str!("mod.rs");
    let mut written: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix(MARK))
        .filter(|rest| rest.contains("(store: impl Store)"))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    written.sort_unstable();
    let mut listed = listed.to_vec();
    listed.sort_unstable();
    assert_eq!(listed, written, "conformance_suite! must list every test");
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The lease every claim takes.
pub const LEASE: Duration = Duration::from_secs(30);
/// The lease in milliseconds.
pub const LEASE_MS: u64 = 30_000;

/// A fixed instant plus `ms` milliseconds: every time in the suite is whole milliseconds.
pub fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
}

pub fn subscription() -> Subscription {
    Subscription::new("https://example.com/hooks").unwrap()
}

pub async fn add(store: &impl Store, subscription: Subscription) -> SubscriptionId {
    let id = subscription.id();
    store.insert_subscription(&subscription).await.unwrap();
    id
}

pub async fn add_plain(store: &impl Store) -> SubscriptionId {
    add(store, subscription()).await
}

pub fn message_with(ms: u64, event_type: &'static str, labels: &[(&'static str, &str)]) -> Message {
    let labels: Labels = labels.iter().map(|(n, v)| (*n, v.to_string())).collect();
    let id = MessageId::new();
    let body = format!(r#"{{"id":"{id}","event":"{event_type}","data":{ms}}}"#);
    Message::from_parts(id, at(ms), event_type, labels, body.into_bytes())
}

pub fn message(ms: u64) -> Message {
    message_with(ms, "bear_attack:reported", &[("county", "denver")])
}

/// Enqueues a message created at `at(ms)` to `subs`; returns it and its delivery ids, in order.
pub async fn send(
    store: &impl Store,
    ms: u64,
    subs: &[SubscriptionId],
) -> (Message, Vec<DeliveryId>) {
    send_message(store, message(ms), subs).await
}

pub async fn send_message(
    store: &impl Store,
    message: Message,
    subs: &[SubscriptionId],
) -> (Message, Vec<DeliveryId>) {
    let deliveries: Vec<NewDelivery> = subs.iter().map(|s| NewDelivery::new(*s, false)).collect();
    enqueue(store, &message, &deliveries).await.unwrap();
    (message, deliveries.iter().map(|d| d.id).collect())
}

pub fn request(now_ms: u64, limit: usize, per_subscription: usize) -> ClaimRequest {
    ClaimRequest::new(at(now_ms), limit, per_subscription, LEASE)
}

/// Claims everything claimable at `at(now_ms)`.
pub async fn claim(store: &impl Store, now_ms: u64) -> Vec<Claim> {
    store
        .claim(&request(now_ms, 1000, 1000))
        .await
        .unwrap()
        .claims
}

/// The next attempt of a claimed delivery, made at `at(ms)`, answered with `status`.
pub fn attempt(claim: &Claim, ms: u64, status: u16) -> Attempt {
    Attempt::new(
        claim.delivery.id,
        claim.delivery.attempts + 1,
        at(ms),
        Duration::from_millis(42),
        AttemptOutcome::Answered {
            status,
            body: format!("answer {status}").into_bytes().into(),
        },
    )
}

/// Records an attempt at `at(ms)` (a 200 for `Next::Delivered`, a 500 otherwise).
pub async fn record(store: &impl Store, claim: &Claim, ms: u64, next: Next) -> Recorded {
    let status = if next == Next::Delivered { 200 } else { 500 };
    store
        .record_attempt(claim.lease, &attempt(claim, ms, status), next)
        .await
        .unwrap()
}

pub async fn delivery(store: &impl Store, id: DeliveryId) -> Delivery {
    store
        .delivery(id)
        .await
        .unwrap()
        .expect("the delivery exists")
}

pub async fn status(store: &impl Store, id: DeliveryId) -> DeliveryStatus {
    delivery(store, id).await.status
}

/// A subscription's health as a tuple (`Health` is non-exhaustive).
fn health(recorded: Recorded) -> (Option<SystemTime>, u32) {
    (
        recorded.health.failing_since,
        recorded.health.consecutive_exhausted,
    )
}

fn ids(claims: &[Claim]) -> Vec<DeliveryId> {
    claims.iter().map(|c| c.delivery.id).collect()
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

fn count_for(claims: &[Claim], sub: SubscriptionId) -> usize {
    claims
        .iter()
        .filter(|c| c.delivery.subscription_id == sub)
        .count()
}

fn is_not_found(error: &StoreError, expected: Entity) -> bool {
    matches!(error, StoreError::NotFound { entity, .. } if *entity == expected)
}

fn is_conflict(error: &StoreError, expected: Entity) -> bool {
    matches!(error, StoreError::Conflict { entity, .. } if *entity == expected)
}

/// The subscriptions' version now.
pub async fn version(store: &impl Store) -> u64 {
    store.subscriptions().await.unwrap().version
}

/// Enqueues at the store's current version of the subscriptions.
pub async fn enqueue(
    store: &impl Store,
    message: &Message,
    deliveries: &[NewDelivery],
) -> Result<Enqueued, StoreError> {
    let version = version(store).await;
    store
        .enqueue(&Enqueue::new(message, deliveries, version))
        .await
}

// ---------------------------------------------------------------------------------------------
// Enqueue and claim
// ---------------------------------------------------------------------------------------------

/// One message to several subscriptions: one delivery each, every one claimable with the message.
pub async fn fan_out(store: impl Store) {
    let subs = [
        add_plain(&store).await,
        add_plain(&store).await,
        add_plain(&store).await,
    ];
    let (message, ids_sent) = send(&store, 0, &subs).await;

    let deliveries = store.message_deliveries(message.id()).await.unwrap();
    assert_eq!(
        deliveries.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids_sent,
        "in the order given"
    );
    for (delivery, sub) in deliveries.iter().zip(subs) {
        assert_eq!(delivery.message_id, message.id());
        assert_eq!(delivery.subscription_id, sub);
        assert_eq!(delivery.event_type, "bear_attack:reported");
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 0);
        assert_eq!(delivery.next_attempt_at, Some(at(0)), "due at once");
        assert_eq!(delivery.created_at, at(0));
        assert_eq!(delivery.last_attempt_at, None);
        assert_eq!(
            store.delivery(delivery.id).await.unwrap().as_ref(),
            Some(delivery)
        );
    }

    let claims = claim(&store, 0).await;
    assert_eq!(sorted(&ids(&claims)), sorted(&ids_sent));
    for claim in &claims {
        assert_eq!(claim.delivery.status, DeliveryStatus::InFlight);
        assert_eq!(claim.message.id(), message.id());
        assert_eq!(claim.message.timestamp(), message.timestamp());
        assert_eq!(claim.message.event_type(), message.event_type());
        assert_eq!(claim.message.labels(), message.labels());
        assert_eq!(claim.message.body(), message.body());
        assert_eq!(claim.lease_until, at(0) + LEASE);
    }
    let leases: std::collections::HashSet<_> = claims.iter().map(|c| c.lease).collect();
    assert_eq!(leases.len(), 3, "one lease per delivery");
    assert!(claim(&store, 0).await.is_empty(), "all in flight");

    // A message nobody subscribed to is stored with no deliveries.
    let (lonely, none) = send(&store, 1, &[]).await;
    assert!(none.is_empty());
    assert!(
        store
            .message_deliveries(lonely.id())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A duplicate message is a conflict; an unknown subscription fails the whole enqueue.
pub async fn enqueue_is_checked_and_atomic(store: impl Store) {
    let a = add_plain(&store).await;
    let m = message(0);
    let unknown = SubscriptionId::new();
    let error = enqueue(
        &store,
        &m,
        &[NewDelivery::new(a, false), NewDelivery::new(unknown, false)],
    )
    .await
    .unwrap_err();
    assert!(is_not_found(&error, Entity::Subscription), "{error:?}");
    assert!(store.message_deliveries(m.id()).await.unwrap().is_empty());
    assert!(
        claim(&store, 0).await.is_empty(),
        "nothing of the failed enqueue was kept"
    );

    // Nothing was kept, so the same message goes in now.
    enqueue(&store, &m, &[NewDelivery::new(a, false)])
        .await
        .unwrap();
    let error = enqueue(&store, &m, &[NewDelivery::new(a, false)])
        .await
        .unwrap_err();
    assert!(is_conflict(&error, Entity::Message), "{error:?}");
    assert_eq!(store.message_deliveries(m.id()).await.unwrap().len(), 1);
}

/// Deliveries created skipped (their subscription is disabled) are kept but never claimed.
pub async fn skipped_deliveries(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let m = message(0);
    let skipped = NewDelivery::new(a, true);
    let live = NewDelivery::new(b, false);
    enqueue(&store, &m, &[skipped.clone(), live.clone()])
        .await
        .unwrap();

    let d = delivery(&store, skipped.id).await;
    assert_eq!(d.status, DeliveryStatus::Skipped);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.attempts, 0);

    let claims = claim(&store, 0).await;
    assert_eq!(ids(&claims), [live.id]);
    record(&store, &claims[0], 1, Next::Delivered).await;
    assert_eq!(
        store.next_due(at(2)).await.unwrap(),
        None,
        "a skipped delivery is never due"
    );
    assert!(claim(&store, 1_000_000).await.is_empty());
}

/// `limit` caps a claim; `per_subscription` caps the deliveries of a subscription leased at
/// once, over every claim. Unordered deliveries come oldest due first.
pub async fn claims_in_batches(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let mut all = Vec::new();
    for ms in 0..4 {
        all.extend(send(&store, ms, &[a, b]).await.1);
    }

    let first = store.claim(&request(10, 3, 2)).await.unwrap().claims;
    assert_eq!(first.len(), 3);
    assert!(count_for(&first, a) <= 2 && count_for(&first, b) <= 2);
    let second = store.claim(&request(10, 100, 2)).await.unwrap().claims;
    assert_eq!(second.len(), 1, "each subscription at two leased");
    assert!(
        store
            .claim(&request(10, 100, 2))
            .await
            .unwrap()
            .claims
            .is_empty(),
        "leases count, whichever claim took them"
    );
    // Finishing two of a's makes room for two more of a's, and none of b's.
    let held: Vec<Claim> = first.into_iter().chain(second).collect();
    for c in held.iter().filter(|c| c.delivery.subscription_id == a) {
        record(&store, c, 11, Next::Delivered).await;
    }
    let third = store.claim(&request(12, 100, 2)).await.unwrap().claims;
    assert_eq!(count_for(&third, a), 2);
    assert_eq!(count_for(&third, b), 0);
    for c in held.iter().chain(&third) {
        record(&store, c, 13, Next::Delivered).await;
    }
    let fourth = store.claim(&request(14, 100, 2)).await.unwrap().claims;
    assert_eq!(fourth.len(), 2, "b's last two");

    let claimed: Vec<Claim> = held.into_iter().chain(third).chain(fourth).collect();
    assert_eq!(sorted(&ids(&claimed)), sorted(&all), "each exactly once");
    for sub in [a, b] {
        let due: Vec<SystemTime> = claimed
            .iter()
            .filter(|c| c.delivery.subscription_id == sub)
            .map(|c| c.message.timestamp())
            .collect();
        assert_eq!(due, [at(0), at(1), at(2), at(3)], "oldest due first");
    }
}

/// A subscription's own `max_in_flight` caps its leases, over every claim; the request's
/// default applies to the others.
pub async fn claims_respect_max_in_flight(store: impl Store) {
    let limited = add(&store, subscription().max_in_flight(3)).await;
    let plain = add_plain(&store).await;
    for ms in 0..10 {
        send(&store, ms, &[limited, plain]).await;
    }
    let first = store.claim(&request(10, 100, 5)).await.unwrap().claims;
    assert_eq!(count_for(&first, limited), 3, "its own limit");
    assert_eq!(count_for(&first, plain), 5, "the request's default");
    assert!(
        store
            .claim(&request(10, 100, 5))
            .await
            .unwrap()
            .claims
            .is_empty()
    );
    let of_limited = first
        .iter()
        .find(|c| c.delivery.subscription_id == limited)
        .unwrap();
    record(&store, of_limited, 11, Next::RetryAt(at(1_000_000))).await;
    let more = store.claim(&request(12, 100, 5)).await.unwrap().claims;
    assert_eq!(
        count_for(&more, limited),
        1,
        "one lease given back, one taken"
    );
    assert_eq!(count_for(&more, plain), 0);

    // A lapsed lease no longer counts.
    let lapsed = store
        .claim(&request(12 + LEASE_MS, 100, 5))
        .await
        .unwrap()
        .claims;
    assert_eq!(count_for(&lapsed, limited), 3);
    assert_eq!(count_for(&lapsed, plain), 5);
}

/// An ordered subscription is first in, first out per ordering key: one delivery of a key in
/// flight at a time, in send order, while other keys (and the messages without a key, which
/// share one queue) flow beside it. A failing key holds back only itself.
pub async fn ordered_by_key(store: impl Store) {
    let sub = add(&store, subscription().ordered(true)).await;
    let keyed = |ms: u64, key: Option<&str>| {
        let m = message(ms);
        match key {
            Some(key) => m.with_ordering_key(key).unwrap(),
            None => m,
        }
    };
    let mut sent = Vec::new();
    for (ms, key) in [
        (0, Some("a")),
        (1, Some("b")),
        (2, Some("a")),
        (3, None),
        (4, Some("b")),
        (5, None),
    ] {
        sent.push(send_message(&store, keyed(ms, key), &[sub]).await.1[0]);
    }
    let first = claim(&store, 10).await;
    assert_eq!(
        sorted(&ids(&first)),
        sorted(&[sent[0], sent[1], sent[3]]),
        "the head of each key"
    );
    let key_of = |c: &Claim| c.message.ordering_key().map(str::to_owned);
    assert_eq!(
        first
            .iter()
            .map(key_of)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    assert!(claim(&store, 10).await.is_empty(), "every key in flight");

    // a's head fails and retries later; b's and the keyless one succeed.
    for c in &first {
        let next = if c.delivery.id == sent[0] {
            Next::RetryAt(at(1_000))
        } else {
            Next::Delivered
        };
        record(&store, c, 20, next).await;
    }
    let second = claim(&store, 30).await;
    assert_eq!(
        sorted(&ids(&second)),
        sorted(&[sent[4], sent[5]]),
        "a is held back by its failing head; b and the keyless queue go on"
    );
    for c in &second {
        record(&store, c, 40, Next::Delivered).await;
    }
    assert!(
        claim(&store, 999).await.is_empty(),
        "a's second waits for its first"
    );
    assert_eq!(store.next_due(at(50)).await.unwrap(), Some(at(1_000)));
    let retried = claim(&store, 1_000).await;
    assert_eq!(ids(&retried), [sent[0]]);
    record(&store, &retried[0], 1_001, Next::Delivered).await;
    assert_eq!(
        ids(&claim(&store, 1_002).await),
        [sent[2]],
        "then a's second"
    );
}

/// A rate-limited subscription's claims carry send slots `1/rate` apart across claims, none
/// later than half a lease ahead, so everything claimed can be sent within its lease.
pub async fn rate_limit_slots(store: impl Store) {
    let sub = add(&store, subscription().rate_limit(2)).await;
    for ms in 0..100 {
        send(&store, ms, &[sub]).await;
    }
    let horizon = LEASE / 2;
    let first = claim(&store, 100).await;
    // Slots at 0, 0.5 s, ... up to half the lease (15 s): 31.
    let expected = (horizon.as_millis() / 500 + 1) as usize;
    assert_eq!(first.len(), expected);
    let mut slots: Vec<SystemTime> = first.iter().map(|c| c.not_before.unwrap()).collect();
    slots.sort();
    assert_eq!(slots[0], at(100));
    assert!(*slots.last().unwrap() <= at(100) + horizon);
    assert!(
        claim(&store, 100).await.is_empty(),
        "no slot left within the horizon"
    );

    // Later claims continue after the last slot given, half a second apart.
    let later = claim(&store, 10_100).await;
    assert!(!later.is_empty());
    slots.extend(later.iter().map(|c| c.not_before.unwrap()));
    slots.sort();
    for pair in slots.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]).unwrap() >= Duration::from_millis(500),
            "{pair:?}"
        );
    }
    assert!(*slots.last().unwrap() <= at(10_100) + horizon);
    // Without a rate limit, no slot.
    let plain = add_plain(&store).await;
    send(&store, 200, &[plain]).await;
    let free = claim(&store, 10_200).await;
    assert!(
        free.iter()
            .all(|c| c.delivery.subscription_id != plain || c.not_before.is_none())
    );
}

/// A delivery in flight when its subscription is disabled: delivered if its attempt succeeds,
/// skipped otherwise; a lapsed lease leaves it skipped, never pending with nobody to claim it.
pub async fn disabled_in_flight(store: impl Store) {
    let a = add_plain(&store).await;
    let mut sent = Vec::new();
    for ms in 0..3 {
        sent.push(send(&store, ms, &[a]).await.1[0]);
    }
    let held = claim(&store, 5).await;
    assert_eq!(held.len(), 3);
    let disabled = Disabled {
        at: at(6),
        reason: DisableReason::Manual,
    };
    store.disable_subscription(a, disabled).await.unwrap();
    for id in &sent {
        assert_eq!(status(&store, *id).await, DeliveryStatus::Skipped);
    }
    let by_id = |id: DeliveryId| held.iter().find(|c| c.delivery.id == id).unwrap();
    assert!(
        record(&store, by_id(sent[0]), 7, Next::Delivered)
            .await
            .applied
    );
    assert!(
        record(&store, by_id(sent[1]), 7, Next::RetryAt(at(100)))
            .await
            .applied
    );
    assert_eq!(status(&store, sent[0]).await, DeliveryStatus::Delivered);
    let d = delivery(&store, sent[1]).await;
    assert_eq!(d.status, DeliveryStatus::Skipped, "not retried");
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.attempts, 1);
    // The third's worker died: its lease lapses, it stays skipped and is never claimed.
    assert!(claim(&store, 5 + LEASE_MS + 1).await.is_empty());
    assert_eq!(status(&store, sent[2]).await, DeliveryStatus::Skipped);
    let undelivered = store
        .query_deliveries(&DeliveryQuery::undelivered())
        .await
        .unwrap();
    assert_eq!(
        sorted(&undelivered.items.iter().map(|d| d.id).collect::<Vec<_>>()),
        sorted(&[sent[1], sent[2]])
    );

    // Enabled again: new messages flow; the skipped ones wait for `recover`.
    store.enable_subscription(a).await.unwrap();
    let (_, fresh) = send(&store, 200, &[a]).await;
    assert_eq!(ids(&claim(&store, 200 + LEASE_MS + 1).await), fresh);
    assert_eq!(store.recover(a, at(0), at(100), at(300)).await.unwrap(), 2);
}

/// A retry recorded after the subscription was disabled (the worker decided before it heard of
/// the disable) is stored skipped.
pub async fn retry_of_disabled_is_skipped(store: impl Store) {
    let a = add_plain(&store).await;
    let (_, sent) = send(&store, 0, &[a]).await;
    let c = claim(&store, 0).await.remove(0);
    store
        .disable_subscription(
            a,
            Disabled {
                at: at(1),
                reason: DisableReason::Gone,
            },
        )
        .await
        .unwrap();
    store.enable_subscription(a).await.unwrap();
    store
        .disable_subscription(
            a,
            Disabled {
                at: at(2),
                reason: DisableReason::Manual,
            },
        )
        .await
        .unwrap();
    record(&store, &c, 3, Next::RetryAt(at(10))).await;
    assert_eq!(status(&store, sent[0]).await, DeliveryStatus::Skipped);
    assert_eq!(store.next_due(at(4)).await.unwrap(), None);
}

/// Every change to subscriptions moves the version; an enqueue matched against an older one
/// is refused and stores nothing; claims say the version they saw.
pub async fn versions_guard_enqueues(store: impl Store) {
    let v0 = version(&store).await;
    let a = add_plain(&store).await;
    let mut versions = vec![v0, version(&store).await];
    let changed = store
        .update_subscription(
            &store
                .subscription(a)
                .await
                .unwrap()
                .unwrap()
                .description("x"),
        )
        .await
        .unwrap();
    versions.push(changed.version);
    let disabled = Disabled {
        at: at(1),
        reason: DisableReason::Manual,
    };
    versions.push(
        store
            .disable_subscription(a, disabled)
            .await
            .unwrap()
            .version,
    );
    versions.push(store.enable_subscription(a).await.unwrap().version);
    versions.push(
        store
            .rotate_secret(a, &Secret::generate(), at(2), Duration::from_secs(1))
            .await
            .unwrap()
            .version,
    );
    let b = add_plain(&store).await;
    versions.push(version(&store).await);
    versions.push(store.delete_subscription(b).await.unwrap().unwrap());
    for pair in versions.windows(2) {
        assert!(
            pair[1] > pair[0],
            "every change moves the version: {versions:?}"
        );
    }
    let current = *versions.last().unwrap();
    assert_eq!(version(&store).await, current);

    let m = message(10);
    let deliveries = [NewDelivery::new(a, false)];
    let error = store
        .enqueue(&Enqueue::new(&m, &deliveries, versions[2]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Stale { version } if version == current),
        "{error:?}"
    );
    assert!(store.message_deliveries(m.id()).await.unwrap().is_empty());
    assert!(claim(&store, 10).await.is_empty(), "nothing stored");
    assert_eq!(
        store
            .enqueue(&Enqueue::new(&m, &deliveries, current))
            .await
            .unwrap(),
        Enqueued::Stored
    );
    let claimed = store.claim(&request(10, 10, 10)).await.unwrap();
    assert_eq!(claimed.claims.len(), 1);
    assert_eq!(claimed.subscriptions_version, current);
}

/// A message enqueued with an idempotency key seen within its window stores nothing and names
/// the first message; outside the window, or after the key was purged, it is stored.
pub async fn idempotent_enqueue(store: impl Store) {
    let a = add_plain(&store).await;
    let v = version(&store).await;
    let first = message(100);
    let d1 = [NewDelivery::new(a, false)];
    let key = |since_ms: u64| Idempotency::new("order-42:paid", at(since_ms));
    let stored = store
        .enqueue(&Enqueue::new(&first, &d1, v).idempotency(key(0)))
        .await
        .unwrap();
    assert_eq!(stored, Enqueued::Stored);

    let again = message(200);
    let d2 = [NewDelivery::new(a, false)];
    assert_eq!(
        store
            .enqueue(&Enqueue::new(&again, &d2, v).idempotency(key(50)))
            .await
            .unwrap(),
        Enqueued::Duplicate(first.id())
    );
    assert!(
        store
            .message_deliveries(again.id())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        claim(&store, 300).await.len(),
        1,
        "one delivery, of the first"
    );

    // Another key is another message.
    let other = message(210);
    let d3 = [NewDelivery::new(a, false)];
    assert_eq!(
        store
            .enqueue(
                &Enqueue::new(&other, &d3, v).idempotency(Idempotency::new("order-43:paid", at(0)))
            )
            .await
            .unwrap(),
        Enqueued::Stored
    );

    // The window no longer covers the first message: the key is taken anew.
    let later = message(400);
    let d4 = [NewDelivery::new(a, false)];
    assert_eq!(
        store
            .enqueue(&Enqueue::new(&later, &d4, v).idempotency(key(101)))
            .await
            .unwrap(),
        Enqueued::Stored
    );
    let latest = message(500);
    let d5 = [NewDelivery::new(a, false)];
    assert_eq!(
        store
            .enqueue(&Enqueue::new(&latest, &d5, v).idempotency(key(0)))
            .await
            .unwrap(),
        Enqueued::Duplicate(later.id()),
        "the key now names the later message"
    );

    // Purged keys are forgotten.
    store.purge(at(1_000)).await.unwrap();
    let after = message(600);
    let d6 = [NewDelivery::new(a, false)];
    assert_eq!(
        store
            .enqueue(&Enqueue::new(&after, &d6, v).idempotency(key(0)))
            .await
            .unwrap(),
        Enqueued::Stored
    );
}

/// Concurrent enqueues with one key store one message.
pub async fn concurrent_idempotent_enqueues(store: impl Store) {
    let store = Arc::new(store);
    let a = add_plain(&*store).await;
    let v = version(&*store).await;
    let mut tasks = Vec::new();
    for n in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let m = message(n);
            let d = [NewDelivery::new(a, false)];
            let result = store
                .enqueue(&Enqueue::new(&m, &d, v).idempotency(Idempotency::new("same", at(0))))
                .await
                .unwrap();
            (m.id(), result)
        }));
    }
    let mut stored = Vec::new();
    let mut named = std::collections::HashSet::new();
    for task in tasks {
        let (id, result) = task.await.unwrap();
        match result {
            Enqueued::Stored => stored.push(id),
            Enqueued::Duplicate(first) => {
                named.insert(first);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one stored");
    assert!(
        named.iter().all(|id| *id == stored[0]),
        "the others name it"
    );
    assert_eq!(claim(&*store, 100).await.len(), 1);
}

/// Subscriptions in `exclude` are left alone.
pub async fn claims_exclude(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    send(&store, 0, &[a, b]).await;
    let mut req = request(0, 100, 100);
    req.exclude = vec![a];
    let claims = store.claim(&req).await.unwrap().claims;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].delivery.subscription_id, b);
    let claims = claim(&store, 0).await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].delivery.subscription_id, a);
}

/// Small claims take subscriptions in turn, so that a busy one cannot starve the others.
pub async fn claims_take_turns(store: impl Store) {
    let subs = [
        add_plain(&store).await,
        add_plain(&store).await,
        add_plain(&store).await,
    ];
    for ms in 0..2 {
        send(&store, ms, &subs).await;
    }
    let mut served = Vec::new();
    for _ in 0..3 {
        let claims = store.claim(&request(0, 1, 1)).await.unwrap().claims;
        assert_eq!(claims.len(), 1);
        served.push(claims[0].delivery.subscription_id);
    }
    assert_eq!(
        sorted(&served),
        sorted(&subs),
        "each subscription got a turn"
    );
}

/// A delivery is claimable from its due time on, not before.
pub async fn due_times(store: impl Store) {
    let a = add_plain(&store).await;
    send(&store, 100, &[a]).await;
    assert!(claim(&store, 99).await.is_empty());
    assert_eq!(store.next_due(at(50)).await.unwrap(), Some(at(100)));
    assert_eq!(
        store.next_due(at(200)).await.unwrap(),
        Some(at(200)),
        "overdue: now"
    );
    assert_eq!(claim(&store, 100).await.len(), 1);
}

/// A held lease keeps a delivery from other claims; a lapsed one makes it claimable again,
/// and the old holder's attempt is then kept but not applied.
pub async fn lease_held_then_lapsed(store: impl Store) {
    let a = add_plain(&store).await;
    send(&store, 0, &[a]).await;
    let old = claim(&store, 0).await.remove(0);
    assert!(
        claim(&store, LEASE_MS - 1).await.is_empty(),
        "the lease holds"
    );
    assert_eq!(
        store.next_due(at(1)).await.unwrap(),
        Some(at(0) + LEASE),
        "when it lapses"
    );

    let new = claim(&store, LEASE_MS).await.remove(0);
    assert_eq!(new.delivery.id, old.delivery.id);
    assert_ne!(new.lease, old.lease);
    assert_eq!(new.delivery.status, DeliveryStatus::InFlight);

    let late = record(&store, &old, LEASE_MS + 1, Next::Delivered).await;
    assert!(!late.applied, "the lease was lost");
    assert_eq!(late.health, Health::default());
    let d = delivery(&store, old.delivery.id).await;
    assert_eq!(d.status, DeliveryStatus::InFlight, "left to the new holder");
    assert_eq!(d.attempts, 0);
    assert_eq!(d.last_attempt_at, None);
    assert_eq!(
        store.attempts(old.delivery.id).await.unwrap().len(),
        1,
        "the attempt is kept"
    );

    let recorded = record(&store, &new, LEASE_MS + 2, Next::RetryAt(at(1_000_000))).await;
    assert!(recorded.applied);
    assert_eq!(
        status(&store, new.delivery.id).await,
        DeliveryStatus::Failed
    );
}

/// A lease that lapsed while nobody claimed the delivery is still its holder's.
pub async fn lapsed_lease_unclaimed_still_applies(store: impl Store) {
    let a = add_plain(&store).await;
    send(&store, 0, &[a]).await;
    let slow = claim(&store, 0).await.remove(0);
    let recorded = record(&store, &slow, 10 * LEASE_MS, Next::Delivered).await;
    assert!(recorded.applied);
    assert_eq!(
        status(&store, slow.delivery.id).await,
        DeliveryStatus::Delivered
    );
}

/// A failed attempt reschedules the delivery: not claimable before the retry time, claimable
/// from it, its attempts counted.
pub async fn retries_reschedule(store: impl Store) {
    let a = add_plain(&store).await;
    let (_, ids) = send(&store, 0, &[a]).await;
    let first = claim(&store, 0).await.remove(0);
    let recorded = record(&store, &first, 10, Next::RetryAt(at(5_000))).await;
    assert!(recorded.applied);
    assert_eq!(health(recorded), (Some(at(10)), 0));

    let d = delivery(&store, ids[0]).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at, Some(at(5_000)));
    assert_eq!(d.last_attempt_at, Some(at(10)));

    assert!(claim(&store, 4_999).await.is_empty());
    assert_eq!(store.next_due(at(1_000)).await.unwrap(), Some(at(5_000)));
    let second = claim(&store, 5_000).await.remove(0);
    assert_eq!(second.delivery.attempts, 1);
    assert_eq!(second.delivery.status, DeliveryStatus::InFlight);

    let recorded = record(&store, &second, 5_010, Next::RetryAt(at(9_000))).await;
    assert_eq!(
        recorded.health.failing_since,
        Some(at(10)),
        "failing since the first failure"
    );
    let third = claim(&store, 9_000).await.remove(0);
    assert_eq!(third.delivery.attempts, 2);
    let recorded = record(&store, &third, 9_010, Next::Delivered).await;
    assert_eq!(
        recorded.health,
        Health::default(),
        "a success resets the health"
    );

    let d = delivery(&store, ids[0]).await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.last_attempt_at, Some(at(9_010)));
    assert!(claim(&store, 1_000_000).await.is_empty());
    assert_eq!(store.next_due(at(10_000)).await.unwrap(), None);
}

/// An ordered subscription has at most its oldest unfinished delivery in flight: a failing head
/// holds back the rest until it is delivered or exhausted.
pub async fn ordered_head_only(store: impl Store) {
    let o = add(&store, subscription().ordered(true)).await;
    let mut ids = Vec::new();
    for ms in 0..3 {
        ids.push(send(&store, ms, &[o]).await.1[0]);
    }

    let head = claim(&store, 10).await;
    assert_eq!(self::ids(&head), [ids[0]], "only the head");
    let head = head.into_iter().next().unwrap();
    assert!(claim(&store, 10).await.is_empty(), "never two in flight");
    assert_eq!(
        store.next_due(at(10)).await.unwrap(),
        Some(at(10) + LEASE),
        "the rest wait for the head, not for their due time"
    );

    record(&store, &head, 20, Next::RetryAt(at(1_000))).await;
    assert!(
        claim(&store, 500).await.is_empty(),
        "a failing head holds back the others"
    );
    assert_eq!(store.next_due(at(500)).await.unwrap(), Some(at(1_000)));

    let head = claim(&store, 1_000).await;
    assert_eq!(self::ids(&head), [ids[0]], "the head again");
    record(&store, &head[0], 1_010, Next::Exhausted).await;

    let second = claim(&store, 1_010).await;
    assert_eq!(
        self::ids(&second),
        [ids[1]],
        "an exhausted head lets the next go"
    );
    assert!(claim(&store, 1_010).await.is_empty());
    record(&store, &second[0], 1_020, Next::Delivered).await;

    let third = claim(&store, 1_020).await;
    assert_eq!(self::ids(&third), [ids[2]]);
}

/// Ordered means send order, whatever the messages' timestamps.
pub async fn ordered_follows_send_order(store: impl Store) {
    let o = add(&store, subscription().ordered(true)).await;
    let (_, first) = send(&store, 50, &[o]).await;
    let (_, second) = send(&store, 0, &[o]).await;
    assert!(
        claim(&store, 10).await.is_empty(),
        "the head (sent first) is not due yet"
    );
    assert_eq!(store.next_due(at(10)).await.unwrap(), Some(at(50)));
    let head = claim(&store, 50).await;
    assert_eq!(ids(&head), first);
    record(&store, &head[0], 60, Next::Delivered).await;
    assert_eq!(ids(&claim(&store, 60).await), second);
}

/// An ordered head whose lease lapsed is claimable again, still alone.
pub async fn ordered_head_lease_lapses(store: impl Store) {
    let o = add(&store, subscription().ordered(true)).await;
    let (_, first) = send(&store, 0, &[o]).await;
    send(&store, 1, &[o]).await;
    assert_eq!(ids(&claim(&store, 1).await), first);
    assert_eq!(
        ids(&claim(&store, 1 + LEASE_MS).await),
        first,
        "the head again, alone"
    );
}

/// An ordered subscription added after claims that saw none is still served head first, alone
/// (a store may take a shorter path while no ordered subscription exists).
pub async fn ordered_added_later(store: impl Store) {
    let a = add_plain(&store).await;
    send(&store, 0, &[a]).await;
    assert_eq!(claim(&store, 0).await.len(), 1);

    let o = add(&store, subscription().ordered(true)).await;
    let (_, first) = send(&store, 10, &[o, a]).await;
    send(&store, 11, &[o, a]).await;
    let claims = claim(&store, 20).await;
    let of_o: Vec<DeliveryId> = claims
        .iter()
        .filter(|c| c.delivery.subscription_id == o)
        .map(|c| c.delivery.id)
        .collect();
    assert_eq!(of_o, first[..1], "the ordered head only");
    assert_eq!(count_for(&claims, a), 2, "the unordered ones all");
    assert!(
        claim(&store, 30).await.is_empty(),
        "nothing more while the head is in flight"
    );
}

/// Attempts recorded at the same time on one subscription each see the health that follows
/// their own: as if recorded one after another.
pub async fn concurrent_records_count_in_order(store: impl Store) {
    let a = add_plain(&store).await;
    for ms in 0..4 {
        send(&store, ms, &[a]).await;
    }
    let claims = claim(&store, 10).await;
    assert_eq!(claims.len(), 4);
    let (r0, r1, r2, r3) = tokio::join!(
        record(&store, &claims[0], 20, Next::Exhausted),
        record(&store, &claims[1], 20, Next::Exhausted),
        record(&store, &claims[2], 20, Next::Exhausted),
        record(&store, &claims[3], 20, Next::Exhausted),
    );
    let mut counts: Vec<u32> = [r0, r1, r2, r3]
        .into_iter()
        .map(|r| {
            assert!(r.applied);
            assert_eq!(r.health.failing_since, Some(at(20)));
            r.health.consecutive_exhausted
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3, 4]);
}

/// Exhausted deliveries are final and counted, in a row, by the subscription's health.
pub async fn exhaustion_and_health(store: impl Store) {
    let a = add_plain(&store).await;
    let (_, one) = send(&store, 0, &[a]).await;
    send(&store, 1, &[a]).await;
    let claims = claim(&store, 1).await;
    assert_eq!(claims.len(), 2);

    let r = record(&store, &claims[0], 10, Next::Exhausted).await;
    assert_eq!(health(r), (Some(at(10)), 1));
    let r = record(&store, &claims[1], 20, Next::Exhausted).await;
    assert_eq!(health(r), (Some(at(10)), 2));
    let d = delivery(&store, one[0]).await;
    assert_eq!(d.status, DeliveryStatus::Exhausted);
    assert_eq!(d.next_attempt_at, None);
    assert!(
        claim(&store, 1_000_000).await.is_empty(),
        "exhausted is final"
    );

    // Skipped changes nothing; a lost lease changes nothing; a success resets.
    send(&store, 30, &[a]).await;
    let c = claim(&store, 30).await.remove(0);
    let r = record(&store, &c, 40, Next::Skipped).await;
    assert_eq!(health(r), (Some(at(10)), 2));
    assert_eq!(status(&store, c.delivery.id).await, DeliveryStatus::Skipped);

    send(&store, 50, &[a]).await;
    let c = claim(&store, 50).await.remove(0);
    let r = record(&store, &c, 60, Next::Delivered).await;
    assert!(r.applied);
    assert_eq!(r.health, Health::default());
}

/// Disabling a subscription skips its unfinished deliveries, those in flight included: their
/// attempt is still recorded, and only a success changes that.
pub async fn disable_skips_waiting(store: impl Store) {
    let a = add_plain(&store).await;
    let mut ids = Vec::new();
    for ms in 0..3 {
        ids.push(send(&store, ms, &[a]).await.1[0]);
    }
    let held = store
        .claim(&request(5, 1, 1))
        .await
        .unwrap()
        .claims
        .remove(0);
    assert_eq!(held.delivery.id, ids[0]);

    let disabled = Disabled {
        at: at(50),
        reason: DisableReason::Manual,
    };
    let before = version(&store).await;
    let changed = store
        .disable_subscription(a, disabled.clone())
        .await
        .unwrap();
    assert!(changed.version > before, "a disable is a change");
    let sub = changed.value;
    assert_eq!(sub.disabled(), Some(&disabled));
    assert!(!sub.is_enabled());
    assert_eq!(store.subscription(a).await.unwrap().as_ref(), Some(&sub));

    assert_eq!(
        status(&store, ids[0]).await,
        DeliveryStatus::Skipped,
        "in flight: skipped already"
    );
    for id in &ids[1..] {
        let d = delivery(&store, *id).await;
        assert_eq!(d.status, DeliveryStatus::Skipped);
        assert_eq!(d.next_attempt_at, None);
    }
    let r = record(&store, &held, 60, Next::Skipped).await;
    assert!(r.applied);
    assert_eq!(status(&store, ids[0]).await, DeliveryStatus::Skipped);

    // New messages to a disabled subscription are created skipped, and nothing is claimed.
    let m = message(70);
    let new = NewDelivery::new(a, true);
    enqueue(&store, &m, std::slice::from_ref(&new))
        .await
        .unwrap();
    assert_eq!(status(&store, new.id).await, DeliveryStatus::Skipped);
    assert!(claim(&store, 1_000_000).await.is_empty());

    let error = store
        .disable_subscription(SubscriptionId::new(), disabled)
        .await
        .unwrap_err();
    assert!(is_not_found(&error, Entity::Subscription), "{error:?}");
}

/// Deleting a subscription deletes its deliveries and their attempts; messages stay.
pub async fn delete_subscription(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let (m, ids) = send(&store, 0, &[a, b]).await;
    let claims = claim(&store, 0).await;
    let of_a = claims
        .iter()
        .find(|c| c.delivery.subscription_id == a)
        .unwrap()
        .clone();
    record(&store, &of_a, 10, Next::RetryAt(at(100))).await;
    let of_a = claim(&store, 100).await.remove(0);

    let before = version(&store).await;
    assert!(store.delete_subscription(a).await.unwrap() > Some(before));
    assert!(store.subscription(a).await.unwrap().is_none());
    let left: Vec<SubscriptionId> = store
        .subscriptions()
        .await
        .unwrap()
        .value
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(left, [b]);
    assert!(store.delivery(ids[0]).await.unwrap().is_none());
    assert!(store.attempts(ids[0]).await.unwrap().is_empty());
    let remaining: Vec<DeliveryId> = store
        .message_deliveries(m.id())
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(remaining, [ids[1]]);

    // Its worker's late attempt finds nothing to record.
    let error = store
        .record_attempt(of_a.lease, &attempt(&of_a, 110, 200), Next::Delivered)
        .await
        .unwrap_err();
    assert!(is_not_found(&error, Entity::Delivery), "{error:?}");
    assert_eq!(
        store.delete_subscription(a).await.unwrap(),
        None,
        "already gone"
    );
    assert!(
        claim(&store, 1_000_000)
            .await
            .iter()
            .all(|c| c.delivery.subscription_id != a)
    );
}

/// `next_due`: the earliest retry or lease lapse, never before `now`; `None` when idle.
pub async fn next_due(store: impl Store) {
    assert_eq!(store.next_due(at(0)).await.unwrap(), None, "empty");
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    send(&store, 300, &[a]).await;
    send(&store, 200, &[b]).await;
    assert_eq!(store.next_due(at(0)).await.unwrap(), Some(at(200)));
    let c = claim(&store, 200).await.remove(0);
    assert_eq!(c.delivery.subscription_id, b);
    assert_eq!(store.next_due(at(250)).await.unwrap(), Some(at(300)));
    let _ = claim(&store, 300).await;
    assert_eq!(
        store.next_due(at(300)).await.unwrap(),
        Some(at(200) + LEASE),
        "a lease lapsing"
    );
    record(&store, &c, 310, Next::RetryAt(at(20_000))).await;
    assert_eq!(
        store.next_due(at(310)).await.unwrap(),
        Some(at(20_000)),
        "a retry"
    );
}

/// Retention deletes old messages whose deliveries were all delivered, and nothing else.
pub async fn purge_retention(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let (delivered, delivered_ids) = send(&store, 0, &[a]).await;
    let (exhausted, _) = send(&store, 1, &[a]).await;
    let (pending, _) = send(&store, 2, &[a]).await;
    let (empty, _) = send(&store, 3, &[]).await;
    let skipped = message(4);
    enqueue(&store, &skipped, &[NewDelivery::new(a, true)])
        .await
        .unwrap();
    let (mixed, _) = send(&store, 5, &[a, b]).await;
    let (recent, _) = send(&store, 1_000, &[a]).await;

    for c in claim(&store, 2_000).await {
        let id = c.message.id();
        if id == delivered.id()
            || id == recent.id()
            || (id == mixed.id() && c.delivery.subscription_id == a)
        {
            record(&store, &c, 2_001, Next::Delivered).await;
        } else if id == exhausted.id() {
            record(&store, &c, 2_001, Next::Exhausted).await;
        } else {
            record(&store, &c, 2_001, Next::RetryAt(at(1_000_000))).await;
        }
    }
    assert_eq!(pending.timestamp(), at(2));

    assert_eq!(
        store.purge(at(1_000)).await.unwrap(),
        2,
        "the delivered one and the empty one"
    );
    assert!(
        store
            .message_deliveries(delivered.id())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delivery(delivered_ids[0]).await.unwrap().is_none());
    assert!(store.attempts(delivered_ids[0]).await.unwrap().is_empty());
    for kept in [&exhausted, &pending, &skipped, &mixed, &recent] {
        assert!(
            !store
                .message_deliveries(kept.id())
                .await
                .unwrap()
                .is_empty(),
            "kept"
        );
    }
    let _ = empty;
    assert_eq!(store.purge(at(1_000)).await.unwrap(), 0, "again: nothing");
    assert_eq!(
        store.purge(at(1_001)).await.unwrap(),
        1,
        "strictly older than the cutoff"
    );
    assert!(
        store
            .message_deliveries(recent.id())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Retention over more messages than a store may delete at once, kept ones interleaved.
pub async fn purge_many(store: impl Store) {
    let a = add_plain(&store).await;
    let mut kept = Vec::new();
    for ms in 0..1_200 {
        if ms % 100 == 0 {
            kept.push(send(&store, ms, &[a]).await.0);
        } else {
            send(&store, ms, &[]).await;
        }
    }
    assert_eq!(store.purge(at(2_000)).await.unwrap(), 1_188);
    for message in &kept {
        assert_eq!(
            store.message_deliveries(message.id()).await.unwrap().len(),
            1
        );
    }
    assert_eq!(store.purge(at(2_000)).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// The status shown: pending, in flight while leased, failed while retrying, then final.
pub async fn delivery_views(store: impl Store) {
    let a = add_plain(&store).await;
    let (m, ids) = send(&store, 0, &[a]).await;
    let id = ids[0];
    assert_eq!(status(&store, id).await, DeliveryStatus::Pending);
    let c = claim(&store, 0).await.remove(0);
    assert_eq!(status(&store, id).await, DeliveryStatus::InFlight);
    assert_eq!(
        store.message_deliveries(m.id()).await.unwrap()[0].status,
        DeliveryStatus::InFlight
    );
    record(&store, &c, 5, Next::RetryAt(at(100))).await;
    let d = delivery(&store, id).await;
    assert_eq!(
        (d.status, d.attempts, d.last_attempt_at),
        (DeliveryStatus::Failed, 1, Some(at(5)))
    );
    let c = claim(&store, 100).await.remove(0);
    record(&store, &c, 105, Next::Delivered).await;
    let d = delivery(&store, id).await;
    assert_eq!(
        (d.status, d.attempts, d.last_attempt_at),
        (DeliveryStatus::Delivered, 2, Some(at(105)))
    );
    assert_eq!(d.created_at, at(0));

    assert!(store.delivery(DeliveryId::new()).await.unwrap().is_none());
    assert!(store.attempts(DeliveryId::new()).await.unwrap().is_empty());
    assert!(
        store
            .message_deliveries(MessageId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Attempts come back exactly as recorded, first first.
pub async fn attempts_round_trip(store: impl Store) {
    let a = add_plain(&store).await;
    let (_, ids) = send(&store, 0, &[a]).await;
    let c = claim(&store, 0).await.remove(0);
    let first = Attempt::new(
        ids[0],
        1,
        at(1),
        Duration::new(1, 234_567_891),
        AttemptOutcome::Answered {
            status: 503,
            body: b"try later \xff\x00 binary".to_vec().into(),
        },
    );
    store
        .record_attempt(c.lease, &first, Next::RetryAt(at(10)))
        .await
        .unwrap();
    let c = claim(&store, 10).await.remove(0);
    let second = Attempt::new(
        ids[0],
        2,
        at(11),
        Duration::from_secs(15),
        AttemptOutcome::Failed {
            kind: AttemptErrorKind::Timeout,
            message: "no answer within 15 s".into(),
        },
    );
    store
        .record_attempt(c.lease, &second, Next::RetryAt(at(20)))
        .await
        .unwrap();
    let c = claim(&store, 20).await.remove(0);
    let third = Attempt::new(
        ids[0],
        3,
        at(21),
        Duration::ZERO,
        AttemptOutcome::Answered {
            status: 204,
            body: Vec::new().into(),
        },
    );
    store
        .record_attempt(c.lease, &third, Next::Delivered)
        .await
        .unwrap();

    assert_eq!(
        store.attempts(ids[0]).await.unwrap(),
        [first, second, third]
    );
    for kind in [
        AttemptErrorKind::Connect,
        AttemptErrorKind::Blocked,
        AttemptErrorKind::Request,
    ] {
        // Every kind survives: recorded on a lost lease, which keeps the attempt.
        let lost = Attempt::new(
            ids[0],
            9,
            at(30),
            Duration::ZERO,
            AttemptOutcome::Failed {
                kind,
                message: format!("lost: {kind}"),
            },
        );
        let r = store
            .record_attempt(c.lease, &lost, Next::Delivered)
            .await
            .unwrap();
        assert!(!r.applied);
        assert_eq!(store.attempts(ids[0]).await.unwrap().last(), Some(&lost));
    }
    assert_eq!(
        delivery(&store, ids[0]).await.attempts,
        3,
        "lost-lease attempts do not count"
    );

    let error = store
        .record_attempt(
            c.lease,
            &Attempt::new(
                DeliveryId::new(),
                1,
                at(0),
                Duration::ZERO,
                AttemptOutcome::Answered {
                    status: 200,
                    body: Vec::new().into(),
                },
            ),
            Next::Delivered,
        )
        .await
        .unwrap_err();
    assert!(is_not_found(&error, Entity::Delivery), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------------

fn assert_same(back: &Subscription, sub: &Subscription) {
    // Field by field first, so that a failure names the field.
    assert_eq!(back.id(), sub.id());
    assert_eq!(back.url(), sub.url());
    assert_eq!(back.event_patterns(), sub.event_patterns());
    assert_eq!(back.labels(), sub.labels());
    assert_eq!(back.signing_secret(), sub.signing_secret());
    assert_eq!(back.headers(), sub.headers());
    assert_eq!(back.is_ordered(), sub.is_ordered());
    assert_eq!(back.rate_limit_per_second(), sub.rate_limit_per_second());
    assert_eq!(back.max_in_flight_limit(), sub.max_in_flight_limit());
    assert_eq!(back.retry_policy(), sub.retry_policy());
    assert_eq!(back.description_text(), sub.description_text());
    assert_eq!(back.created_at(), sub.created_at());
    assert_eq!(back.disabled(), sub.disabled());
    assert_eq!(back, sub);
}

/// Every field of a subscription survives the store.
pub async fn subscription_round_trip(store: impl Store) {
    let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
    let full = Subscription::new("https://hooks.example.com:8443/in?tenant=7#frag")
        .unwrap()
        .events(["bear_attack:*", "random_number:generate"])
        .label("county", "denver")
        .label("account", "42")
        .secret(secret)
        .header("X-Customer", "42")
        .header("x-trace", "a \"quoted\" value")
        .ordered(true)
        .rate_limit(7)
        .max_in_flight(3)
        .retry(
            RetryPolicy::exponential(Duration::from_millis(1_500), Duration::new(60, 5), 9)
                .jitter(0.35),
        )
        .description("Denver's bear desk — ünïcode");
    let minimal = subscription();
    let scheduled = subscription().retry(
        RetryPolicy::schedule([Duration::new(1, 500), Duration::from_secs(3_600)])
            .jitter(1.0 / 3.0),
    );
    let never = subscription().retry(RetryPolicy::never());
    let default_retry = subscription().retry(RetryPolicy::default());

    let all = [full, minimal, scheduled, never, default_retry];
    for sub in &all {
        store.insert_subscription(sub).await.unwrap();
    }
    for sub in &all {
        let back = store.subscription(sub.id()).await.unwrap().expect("stored");
        assert_same(&back, sub);
    }
    let listed = store.subscriptions().await.unwrap();
    assert_eq!(listed.value, all, "every one, oldest first");

    let error = store.insert_subscription(&all[0]).await.unwrap_err();
    assert!(is_conflict(&error, Entity::Subscription), "{error:?}");
    assert!(
        store
            .subscription(SubscriptionId::new())
            .await
            .unwrap()
            .is_none()
    );
}

/// Updates replace every setting, and nothing else: not the enabled state, not the secrets.
pub async fn subscription_updates(store: impl Store) {
    let sub = subscription().label("county", "denver");
    let v1 = store.insert_subscription(&sub).await.unwrap();
    let changed = store
        .subscription(sub.id())
        .await
        .unwrap()
        .unwrap()
        .events(["random_number:*"])
        .label("county", "boulder")
        .header("x-new", "1")
        .ordered(true)
        .rate_limit(2)
        .max_in_flight(9)
        .retry(RetryPolicy::never())
        .description("changed");
    let stored = store.update_subscription(&changed).await.unwrap();
    assert!(stored.version > v1, "an update is a change");
    assert_same(&stored.value, &changed);
    assert_same(
        &store.subscription(sub.id()).await.unwrap().unwrap(),
        &changed,
    );

    // A copy read before a disable and a rotation, passed back: neither is undone.
    let stale_copy = stored.value.clone();
    let disabled = Disabled {
        at: at(9),
        reason: DisableReason::Manual,
    };
    store
        .disable_subscription(sub.id(), disabled.clone())
        .await
        .unwrap();
    let new_secret = Secret::generate();
    store
        .rotate_secret(sub.id(), &new_secret, at(10), Duration::from_secs(60))
        .await
        .unwrap();
    let back = store
        .update_subscription(&stale_copy.clone().description("edited"))
        .await
        .unwrap()
        .value;
    assert_eq!(back.description_text(), Some("edited"));
    assert_eq!(back.disabled(), Some(&disabled), "still disabled");
    assert_eq!(back.signing_secret(), &new_secret, "still rotated");
    assert_eq!(
        store.subscription(sub.id()).await.unwrap().as_ref(),
        Some(&back)
    );

    let error = store
        .update_subscription(&subscription())
        .await
        .unwrap_err();
    assert!(is_not_found(&error, Entity::Subscription), "{error:?}");
}

/// Every disable reason survives the store.
pub async fn disabled_round_trip(store: impl Store) {
    let id = add_plain(&store).await;
    for reason in [
        DisableReason::Manual,
        DisableReason::Gone,
        DisableReason::FailingSince(at(5)),
        DisableReason::ConsecutiveExhausted(4),
    ] {
        let disabled = Disabled { at: at(9), reason };
        let returned = store
            .disable_subscription(id, disabled.clone())
            .await
            .unwrap()
            .value;
        assert_eq!(returned.disabled(), Some(&disabled));
        let back = store.subscription(id).await.unwrap().unwrap();
        assert_same(&back, &returned);
        // Updating a disabled subscription with its stored value keeps it disabled.
        store
            .update_subscription(&back.clone().description("still disabled"))
            .await
            .unwrap();
        assert_eq!(
            store.subscription(id).await.unwrap().unwrap().disabled(),
            Some(&disabled)
        );
    }
}

/// Rotated secrets (with their expiry) and enabling again survive the store, through the
/// runtime's own calls.
pub async fn rotated_secrets_round_trip(store: impl Store) {
    let hooks = Webhooks::builder().store(store).build().await.unwrap();
    let sub = hooks.subscribe(subscription()).await.unwrap();
    let old = sub.signing_secret().clone();
    let new = Secret::generate();
    let rotated = hooks
        .rotate_secret(sub.id(), Some(new.clone()))
        .await
        .unwrap();
    let stored = hooks.subscription(sub.id()).await.unwrap();
    assert_same(&stored, &rotated);
    assert_eq!(stored.signing_secret(), &new);
    let now = SystemTime::now();
    let active: Vec<Secret> = stored.active_secrets(now).cloned().collect();
    assert_eq!(active, [new.clone(), old], "both sign during the overlap");
    let later: Vec<Secret> = stored
        .active_secrets(now + Duration::from_secs(25 * 3_600))
        .cloned()
        .collect();
    assert_eq!(later, [new], "the old one expires");

    let disabled = hooks.disable(sub.id()).await.unwrap();
    assert_same(&hooks.subscription(sub.id()).await.unwrap(), &disabled);
    let enabled = hooks.enable(sub.id()).await.unwrap();
    let stored = hooks.subscription(sub.id()).await.unwrap();
    assert!(stored.is_enabled());
    assert_same(&stored, &enabled);
    hooks.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// Concurrent enqueues each succeed or fail on their own (a store that commits them together
/// must not let one bad message fail the others).
pub async fn concurrent_enqueues(store: impl Store) {
    let store = Arc::new(store);
    let a = add_plain(&*store).await;
    let duplicate = message(0);
    enqueue(&*store, &duplicate, &[NewDelivery::new(a, false)])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for n in 1..=64u64 {
        let store = store.clone();
        let m = if n == 32 {
            duplicate.clone()
        } else {
            message(n)
        };
        let subs = if n == 48 {
            vec![a, SubscriptionId::new()]
        } else {
            vec![a]
        };
        tasks.push(tokio::spawn(async move {
            let deliveries: Vec<NewDelivery> =
                subs.iter().map(|s| NewDelivery::new(*s, false)).collect();
            (n, m.id(), enqueue(&*store, &m, &deliveries).await)
        }));
    }
    for task in tasks {
        let (n, id, result) = task.await.unwrap();
        match n {
            32 => assert!(is_conflict(&result.unwrap_err(), Entity::Message)),
            48 => {
                assert!(is_not_found(&result.unwrap_err(), Entity::Subscription));
                assert!(store.message_deliveries(id).await.unwrap().is_empty());
            }
            _ => {
                result.unwrap();
                assert_eq!(store.message_deliveries(id).await.unwrap().len(), 1);
            }
        }
    }
    assert_eq!(
        claim(&*store, 1_000).await.len(),
        63,
        "the first, and 62 of the 64"
    );
}

// ---------------------------------------------------------------------------------------------
// Redelivery and recovery
// ---------------------------------------------------------------------------------------------

/// `redeliver` makes any delivery due again, keeping its attempt count; not one in flight.
pub async fn redeliver(store: impl Store) {
    let a = add_plain(&store).await;
    let (_, ids) = send(&store, 0, &[a]).await;
    let c = claim(&store, 0).await.remove(0);
    let error = store.redeliver(ids[0], at(1)).await.unwrap_err();
    assert!(is_conflict(&error, Entity::Delivery), "{error:?}");
    record(&store, &c, 5, Next::Delivered).await;

    let again = store.redeliver(ids[0], at(5_000)).await.unwrap();
    assert_eq!(again.id, ids[0]);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.next_attempt_at, Some(at(5_000)));
    assert_eq!(
        again.status,
        DeliveryStatus::Pending,
        "requeued by hand: pending, not failed (it had been delivered)"
    );
    let pending = store
        .query_deliveries(&DeliveryQuery::new().status(DeliveryStatus::Pending))
        .await
        .unwrap();
    assert_eq!(
        pending.items,
        std::slice::from_ref(&again),
        "the log's filter agrees"
    );
    assert_eq!(delivery(&store, ids[0]).await, again);
    assert!(claim(&store, 4_999).await.is_empty());
    let c = claim(&store, 5_000).await.remove(0);
    assert_eq!(c.delivery.attempts, 1);

    let error = store.redeliver(DeliveryId::new(), at(0)).await.unwrap_err();
    assert!(is_not_found(&error, Entity::Delivery), "{error:?}");
}

/// `recover` requeues a subscription's exhausted and skipped deliveries created in a window.
pub async fn recover(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let mut ids = Vec::new();
    for ms in 0..4 {
        ids.push(send(&store, ms, &[a]).await.1[0]);
    }
    let skipped = NewDelivery::new(a, true);
    enqueue(&store, &message(4), std::slice::from_ref(&skipped))
        .await
        .unwrap();
    let (_, other) = send(&store, 1, &[b]).await;
    for c in claim(&store, 10).await {
        let next = if c.delivery.id == ids[2] {
            Next::Delivered
        } else if c.delivery.id == ids[3] {
            Next::Skipped
        } else {
            Next::Exhausted
        };
        record(&store, &c, 11, next).await;
    }

    // [1, 4): ids[1] (exhausted) and ids[3] (skipped); not ids[0] (before), ids[2]
    // (delivered), the skipped one at 4 (after), nor b's.
    assert_eq!(store.recover(a, at(1), at(4), at(100)).await.unwrap(), 2);
    let claims = claim(&store, 100).await;
    assert_eq!(sorted(&self::ids(&claims)), sorted(&[ids[1], ids[3]]));
    assert_eq!(status(&store, other[0]).await, DeliveryStatus::Exhausted);
    assert_eq!(status(&store, skipped.id).await, DeliveryStatus::Skipped);

    let error = store
        .recover(SubscriptionId::new(), at(0), at(1), at(2))
        .await
        .unwrap_err();
    assert!(is_not_found(&error, Entity::Subscription), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// The delivery log
// ---------------------------------------------------------------------------------------------

async fn query(store: &impl Store, query: DeliveryQuery) -> Vec<DeliveryId> {
    store
        .query_deliveries(&query)
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| d.id)
        .collect()
}

/// Filters: subscription, event type, label, time window, and all of them together.
pub async fn query_filters(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let mut numbers = Vec::new();
    for ms in 0..5 {
        let m = message_with(ms, "random_number:generate", &[]);
        numbers.push(send_message(&store, m, &[a]).await.1[0]);
    }
    let denver = send_message(
        &store,
        message_with(5, "bear_attack:reported", &[("county", "denver")]),
        &[a, b],
    )
    .await
    .1;
    let boulder = send_message(
        &store,
        message_with(
            6,
            "bear_attack:reported",
            &[("county", "boulder"), ("x", "y")],
        ),
        &[a, b],
    )
    .await
    .1;

    let all = store.query_deliveries(&DeliveryQuery::new()).await.unwrap();
    assert_eq!(all.items.len(), 9);
    assert!(all.next.is_none());
    assert!(
        all.items
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
        "newest first"
    );
    assert_eq!(all.items[8].id, numbers[0]);

    assert_eq!(
        sorted(&query(&store, DeliveryQuery::new().subscription(b)).await),
        sorted(&[denver[1], boulder[1]])
    );
    let bears = query(
        &store,
        DeliveryQuery::new().event_type("bear_attack:reported"),
    )
    .await;
    assert_eq!(
        sorted(&bears),
        sorted(&[denver[0], denver[1], boulder[0], boulder[1]])
    );
    assert_eq!(
        sorted(&query(&store, DeliveryQuery::new().label("county", "denver")).await),
        sorted(&denver)
    );
    assert!(
        query(&store, DeliveryQuery::new().label("county", "aspen"))
            .await
            .is_empty()
    );
    assert_eq!(
        query(&store, DeliveryQuery::new().between(at(1), at(3))).await,
        [numbers[2], numbers[1]]
    );
    let both = DeliveryQuery::new()
        .subscription(a)
        .event_type("bear_attack:reported")
        .label("x", "y");
    assert_eq!(query(&store, both).await, [boulder[0]]);
}

/// Pages of `limit`, newest first, cursor to cursor: everything exactly once.
pub async fn query_pages(store: impl Store) {
    let a = add_plain(&store).await;
    for ms in 0..9 {
        send(&store, ms, &[a]).await;
    }
    let all = query(&store, DeliveryQuery::new()).await;
    for limit in [1, 3, 4, 9, 10] {
        let mut seen = Vec::new();
        let mut q = DeliveryQuery::new().limit(limit);
        loop {
            let page = store.query_deliveries(&q).await.unwrap();
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|d| d.id));
            match page.next {
                Some(cursor) => {
                    assert_eq!(Some(cursor), page.items.last().map(Cursor::after));
                    q = q.after(cursor);
                }
                None => break,
            }
        }
        assert_eq!(seen, all, "limit {limit}");
    }
}

/// Status filters see what the views show: in flight (leased) and failed (retrying) included.
pub async fn query_statuses(store: impl Store) {
    let a = add_plain(&store).await;
    let mut ids = Vec::new();
    for ms in 0..8 {
        ids.push(send(&store, ms, &[a]).await.1[0]);
    }
    let skipped = NewDelivery::new(a, true);
    enqueue(&store, &message(8), std::slice::from_ref(&skipped))
        .await
        .unwrap();
    for c in store.claim(&request(10, 6, 10)).await.unwrap().claims {
        let next = match ids.iter().position(|id| *id == c.delivery.id) {
            Some(0) => Next::Delivered,
            Some(1) => Next::Exhausted,
            Some(2) => Next::RetryAt(at(1_000_000)),
            Some(3) => Next::Skipped,
            _ => continue, // 4 and 5 stay in flight
        };
        record(&store, &c, 11, next).await;
    }
    let by = |status: DeliveryStatus| DeliveryQuery::new().status(status);
    assert_eq!(query(&store, by(DeliveryStatus::Delivered)).await, [ids[0]]);
    assert_eq!(query(&store, by(DeliveryStatus::Exhausted)).await, [ids[1]]);
    assert_eq!(query(&store, by(DeliveryStatus::Failed)).await, [ids[2]]);
    assert_eq!(
        query(&store, by(DeliveryStatus::Skipped)).await,
        [skipped.id, ids[3]]
    );
    assert_eq!(
        query(&store, by(DeliveryStatus::InFlight)).await,
        [ids[5], ids[4]]
    );
    assert_eq!(
        query(&store, by(DeliveryStatus::Pending)).await,
        [ids[7], ids[6]]
    );
    assert_eq!(
        query(&store, DeliveryQuery::undelivered()).await,
        [skipped.id, ids[3], ids[1]]
    );
}

/// Subscription labels filter by the subscription a delivery went to, not by the message: a
/// subscription without labels, or with only some of them, that received the same messages is
/// left out; pages follow the cursor within the filter; labels are read as stored now.
pub async fn query_subscription_labels(store: impl Store) {
    let both = add(
        &store,
        subscription().label("tenant", "alice").label("team", "ops"),
    )
    .await;
    let only = subscription().label("tenant", "alice");
    let only_id = add(&store, only.clone()).await;
    let bob = add(
        &store,
        subscription().label("tenant", "bob").label("team", "ops"),
    )
    .await;
    let internal = add_plain(&store).await;

    let mut to_both = Vec::new();
    let mut to_only = Vec::new();
    for ms in 0..5 {
        let m = message_with(ms, "bear_attack:reported", &[("tenant", "alice")]);
        let ids = send_message(&store, m, &[internal, both, only_id, bob])
            .await
            .1;
        to_both.push(ids[1]);
        to_only.push(ids[2]);
    }
    // The message's labels play no part: a message labelled for bob still counts for alice's
    // subscription that received it.
    let m = message_with(5, "bear_attack:reported", &[("tenant", "bob")]);
    let ids = send_message(&store, m, &[both, internal]).await.1;
    to_both.push(ids[0]);
    to_both.reverse(); // newest first
    to_only.reverse();

    let alice_ops = || {
        DeliveryQuery::new()
            .subscription_label("tenant", "alice")
            .subscription_label("team", "ops")
    };
    assert_eq!(
        query(&store, alice_ops()).await,
        to_both,
        "only the subscription with both labels, newest first"
    );
    let alice = query(
        &store,
        DeliveryQuery::new().subscription_label("tenant", "alice"),
    )
    .await;
    assert_eq!(
        sorted(&alice),
        sorted(&[to_both.clone(), to_only.clone()].concat())
    );
    assert!(
        query(
            &store,
            DeliveryQuery::new()
                .subscription_label("tenant", "alice")
                .subscription_label("tenant", "bob")
        )
        .await
        .is_empty(),
        "every label must hold"
    );
    assert!(
        query(
            &store,
            DeliveryQuery::new().subscription_label("tenant", "carol")
        )
        .await
        .is_empty()
    );
    assert_eq!(
        query(&store, alice_ops().label("tenant", "bob")).await,
        [to_both[0]],
        "with the message's label too"
    );
    assert_eq!(
        query(&store, alice_ops().subscription(bob)).await,
        Vec::<DeliveryId>::new(),
        "with another subscription: nothing"
    );

    // Pages of 2, cursor to cursor: every delivery to the subscription exactly once.
    let mut seen = Vec::new();
    let mut q = alice_ops().limit(2);
    loop {
        let page = store.query_deliveries(&q).await.unwrap();
        assert!(page.items.len() <= 2);
        assert!(page.items.iter().all(|d| d.subscription_id == both));
        seen.extend(page.items.iter().map(|d| d.id));
        match page.next {
            Some(cursor) => q = q.after(cursor),
            None => break,
        }
    }
    assert_eq!(seen, to_both);

    // The subscription's labels as stored now: given the second label, the other one matches.
    store
        .update_subscription(&only.label("team", "ops"))
        .await
        .unwrap();
    assert_eq!(
        sorted(&query(&store, alice_ops()).await),
        sorted(&[to_both, to_only].concat())
    );
}

/// A message comes back as stored: event name, labels, ordering key, body; `None` for an
/// unknown one and once purged.
pub async fn message_round_trip(store: impl Store) {
    let a = add_plain(&store).await;
    let keyed = message_with(
        0,
        "bear_attack:reported",
        &[("county", "denver"), ("tenant", "alice")],
    )
    .with_ordering_key("bear-7")
    .unwrap();
    let ids = send_message(&store, keyed.clone(), &[a]).await.1;
    let (plain, _) =
        send_message(&store, message_with(1, "random_number:generate", &[]), &[]).await;

    let stored = store.message(keyed.id()).await.unwrap().expect("stored");
    assert_eq!(stored.id(), keyed.id());
    assert_eq!(stored.timestamp(), at(0));
    assert_eq!(stored.event_type(), "bear_attack:reported");
    assert_eq!(stored.labels(), keyed.labels());
    assert_eq!(
        stored.labels().iter().collect::<Vec<_>>(),
        [("county", "denver"), ("tenant", "alice")],
        "in their order"
    );
    assert_eq!(stored.ordering_key(), Some("bear-7"));
    assert_eq!(stored.body(), keyed.body());

    let stored = store.message(plain.id()).await.unwrap().expect("stored");
    assert_eq!(
        (
            stored.event_type(),
            stored.labels().is_empty(),
            stored.ordering_key()
        ),
        ("random_number:generate", true, None)
    );
    assert_eq!(stored.body(), plain.body());

    assert!(store.message(MessageId::new()).await.unwrap().is_none());

    // Delivered, then past retention: purged with its deliveries.
    let c = claim(&store, 10).await.remove(0);
    assert_eq!(c.delivery.id, ids[0]);
    record(&store, &c, 11, Next::Delivered).await;
    assert_eq!(store.purge(at(1_000)).await.unwrap(), 2);
    assert!(store.message(keyed.id()).await.unwrap().is_none());
    assert!(store.message(plain.id()).await.unwrap().is_none());
}
