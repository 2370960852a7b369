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
    Attempt, AttemptErrorKind, Claim, ClaimRequest, Cursor, Delivery, DeliveryQuery,
    DeliveryStatus, Health, NewDelivery, Next, Recorded, Store, StoreError,
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
    };
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
    store.enqueue(&message, &deliveries).await.unwrap();
    (message, deliveries.iter().map(|d| d.id).collect())
}

pub fn request(now_ms: u64, limit: usize, per_subscription: usize) -> ClaimRequest {
    ClaimRequest::new(at(now_ms), limit, per_subscription, LEASE)
}

/// Claims everything claimable at `at(now_ms)`.
pub async fn claim(store: &impl Store, now_ms: u64) -> Vec<Claim> {
    store.claim(&request(now_ms, 1000, 1000)).await.unwrap()
}

/// The next attempt of a claimed delivery, made at `at(ms)`, answered with `status`.
pub fn attempt(claim: &Claim, ms: u64, status: u16) -> Attempt {
    let failed = !(200..300).contains(&status);
    Attempt::new(
        claim.delivery.id,
        claim.delivery.attempts + 1,
        at(ms),
        Duration::from_millis(42),
        Some(status),
        failed.then_some(AttemptErrorKind::Status),
        None,
        format!("answer {status}").into_bytes().into(),
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

fn is_not_found(error: &StoreError, expected: &str) -> bool {
    matches!(error, StoreError::NotFound { what, .. } if *what == expected)
}

fn is_conflict(error: &StoreError, expected: &str) -> bool {
    matches!(error, StoreError::Conflict { what, .. } if *what == expected)
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
    let error = store
        .enqueue(
            &m,
            &[NewDelivery::new(a, false), NewDelivery::new(unknown, false)],
        )
        .await
        .unwrap_err();
    assert!(is_not_found(&error, "subscription"), "{error:?}");
    assert!(store.message_deliveries(m.id()).await.unwrap().is_empty());
    assert!(
        claim(&store, 0).await.is_empty(),
        "nothing of the failed enqueue was kept"
    );

    // Nothing was kept, so the same message goes in now.
    store
        .enqueue(&m, &[NewDelivery::new(a, false)])
        .await
        .unwrap();
    let error = store
        .enqueue(&m, &[NewDelivery::new(a, false)])
        .await
        .unwrap_err();
    assert!(is_conflict(&error, "message"), "{error:?}");
    assert_eq!(store.message_deliveries(m.id()).await.unwrap().len(), 1);
}

/// Deliveries created skipped (their subscription is disabled) are kept but never claimed.
pub async fn skipped_deliveries(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let m = message(0);
    let skipped = NewDelivery::new(a, true);
    let live = NewDelivery::new(b, false);
    store
        .enqueue(&m, &[skipped.clone(), live.clone()])
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

/// `limit` caps a claim, `per_subscription` caps each subscription's share of it; unordered
/// deliveries come oldest due first.
pub async fn claims_in_batches(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let mut all = Vec::new();
    for ms in 0..4 {
        all.extend(send(&store, ms, &[a, b]).await.1);
    }

    let first = store.claim(&request(10, 3, 2)).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(count_for(&first, a) <= 2 && count_for(&first, b) <= 2);
    let second = store.claim(&request(10, 100, 2)).await.unwrap();
    assert_eq!(second.len(), 4, "two more of each");
    assert!(count_for(&second, a) == 2 && count_for(&second, b) == 2);
    let third = store.claim(&request(10, 100, 2)).await.unwrap();
    assert_eq!(third.len(), 1);
    assert!(store.claim(&request(10, 100, 2)).await.unwrap().is_empty());

    let claimed: Vec<Claim> = first.into_iter().chain(second).chain(third).collect();
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

/// Subscriptions in `exclude` are left alone.
pub async fn claims_exclude(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    send(&store, 0, &[a, b]).await;
    let mut req = request(0, 100, 100);
    req.exclude = vec![a];
    let claims = store.claim(&req).await.unwrap();
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
        let claims = store.claim(&request(0, 1, 1)).await.unwrap();
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

/// Disabling a subscription skips its waiting deliveries; those in flight are left to their
/// attempt.
pub async fn disable_skips_waiting(store: impl Store) {
    let a = add_plain(&store).await;
    let mut ids = Vec::new();
    for ms in 0..3 {
        ids.push(send(&store, ms, &[a]).await.1[0]);
    }
    let held = store.claim(&request(5, 1, 1)).await.unwrap().remove(0);
    assert_eq!(held.delivery.id, ids[0]);

    let disabled = Disabled {
        at: at(50),
        reason: DisableReason::Manual,
    };
    let sub = store
        .disable_subscription(a, disabled.clone())
        .await
        .unwrap();
    assert_eq!(sub.disabled(), Some(&disabled));
    assert!(!sub.is_enabled());
    assert_eq!(store.subscription(a).await.unwrap().as_ref(), Some(&sub));

    assert_eq!(
        status(&store, ids[0]).await,
        DeliveryStatus::InFlight,
        "in flight: left"
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
    store.enqueue(&m, std::slice::from_ref(&new)).await.unwrap();
    assert_eq!(status(&store, new.id).await, DeliveryStatus::Skipped);
    assert!(claim(&store, 1_000_000).await.is_empty());

    let error = store
        .disable_subscription(SubscriptionId::new(), disabled)
        .await
        .unwrap_err();
    assert!(is_not_found(&error, "subscription"), "{error:?}");
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

    assert!(store.delete_subscription(a).await.unwrap());
    assert!(store.subscription(a).await.unwrap().is_none());
    let left: Vec<SubscriptionId> = store
        .subscriptions()
        .await
        .unwrap()
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
    assert!(is_not_found(&error, "delivery"), "{error:?}");
    assert!(!store.delete_subscription(a).await.unwrap(), "already gone");
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
    store
        .enqueue(&skipped, &[NewDelivery::new(a, true)])
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
        Some(503),
        Some(AttemptErrorKind::Status),
        Some("service unavailable".into()),
        b"try later \xff\x00 binary".to_vec().into(),
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
        None,
        Some(AttemptErrorKind::Timeout),
        Some("no answer within 15 s".into()),
        Vec::new().into(),
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
        Some(204),
        None,
        None,
        Vec::new().into(),
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
            None,
            Some(kind),
            None,
            Vec::new().into(),
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
                None,
                None,
                None,
                Vec::new().into(),
            ),
            Next::Delivered,
        )
        .await
        .unwrap_err();
    assert!(is_not_found(&error, "delivery"), "{error:?}");
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
    assert_eq!(listed, all, "every one, oldest first");

    let error = store.insert_subscription(&all[0]).await.unwrap_err();
    assert!(is_conflict(&error, "subscription"), "{error:?}");
    assert!(
        store
            .subscription(SubscriptionId::new())
            .await
            .unwrap()
            .is_none()
    );
}

/// Updates replace every field.
pub async fn subscription_updates(store: impl Store) {
    let sub = subscription().label("county", "denver");
    store.insert_subscription(&sub).await.unwrap();
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
    store.update_subscription(&changed).await.unwrap();
    assert_same(
        &store.subscription(sub.id()).await.unwrap().unwrap(),
        &changed,
    );

    let error = store
        .update_subscription(&subscription())
        .await
        .unwrap_err();
    assert!(is_not_found(&error, "subscription"), "{error:?}");
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
            .unwrap();
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
    store
        .enqueue(&duplicate, &[NewDelivery::new(a, false)])
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
            (n, m.id(), store.enqueue(&m, &deliveries).await)
        }));
    }
    for task in tasks {
        let (n, id, result) = task.await.unwrap();
        match n {
            32 => assert!(is_conflict(&result.unwrap_err(), "message")),
            48 => {
                assert!(is_not_found(&result.unwrap_err(), "subscription"));
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
    assert!(is_conflict(&error, "in-flight delivery"), "{error:?}");
    record(&store, &c, 5, Next::Delivered).await;

    let again = store.redeliver(ids[0], at(5_000)).await.unwrap();
    assert_eq!(again.id, ids[0]);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.next_attempt_at, Some(at(5_000)));
    assert_eq!(
        again.status,
        DeliveryStatus::Failed,
        "pending, after an attempt"
    );
    assert_eq!(delivery(&store, ids[0]).await, again);
    assert!(claim(&store, 4_999).await.is_empty());
    let c = claim(&store, 5_000).await.remove(0);
    assert_eq!(c.delivery.attempts, 1);

    let error = store.redeliver(DeliveryId::new(), at(0)).await.unwrap_err();
    assert!(is_not_found(&error, "delivery"), "{error:?}");
}

/// `recover` requeues a subscription's exhausted and skipped deliveries created in a window.
pub async fn recover(store: impl Store) {
    let (a, b) = (add_plain(&store).await, add_plain(&store).await);
    let mut ids = Vec::new();
    for ms in 0..4 {
        ids.push(send(&store, ms, &[a]).await.1[0]);
    }
    let skipped = NewDelivery::new(a, true);
    store
        .enqueue(&message(4), std::slice::from_ref(&skipped))
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
    assert!(is_not_found(&error, "subscription"), "{error:?}");
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
    store
        .enqueue(&message(8), std::slice::from_ref(&skipped))
        .await
        .unwrap();
    for c in store.claim(&request(10, 6, 10)).await.unwrap() {
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
