//! What the README promises of a subscription, with two runtimes on one store: on a shared
//! `MemoryStore` and `SqliteStore` (two runtimes in one process) and on one PostgreSQL schema
//! (two `PostgresStore`s, as two processes would have). `many_workers.rs` repeats the ones
//! that matter most with separate worker processes.
//!
//! Every promise is one function, run on each store by `promises!`; each names the README
//! sentence it backs. PostgreSQL needs `WEBHOOKS_TEST_POSTGRES_URL` (skipped without it).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use common::{DEADLINE, RandomNumber, assert_rate, fast_retries};
use serde::Serialize;
use webhooks::store::{DeliveryQuery, DeliveryStatus, Store};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Error, SendOptions, Subscription, WebhookEvent, Webhooks};

/// A runtime that delivers to loopback, retrying fast.
async fn worker(store: impl Store) -> Webhooks {
    worker_with_lease(store, Duration::from_secs(60)).await
}

/// [`worker`] with a lease of its own (and a request timeout that fits in it).
async fn worker_with_lease(store: impl Store, lease: Duration) -> Webhooks {
    Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .retry(fast_retries(500))
        .slow_down_floor(Duration::ZERO)
        .lease(lease)
        .timeout(lease / 2)
        .build()
        .await
        .unwrap()
}

/// A runtime that only sends (a web server in front of the workers).
async fn sender(store: impl Store) -> Webhooks {
    Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .send_only()
        .build()
        .await
        .unwrap()
}

/// Waits until `done` holds for the delivery log, at most [`DEADLINE`].
async fn wait_log(hooks: &Webhooks, query: DeliveryQuery, done: impl Fn(usize) -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let found = hooks.delivery_log(&query).await.unwrap().items.len();
        if done(found) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log did not get there: {found} found"
        );
        // Polled: the work happens in runtimes that tell this one nothing.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn delivered() -> DeliveryQuery {
    DeliveryQuery::new()
        .status(DeliveryStatus::Delivered)
        .limit(1000)
}

// ---------------------------------------------------------------------------------------------
// The promises
// ---------------------------------------------------------------------------------------------

/// "Which events reach it": a send-only runtime started before a subscription existed matches
/// it, and follows its disable, re-enable, change of scope and deletion made by another runtime.
async fn routing_follows_changes_made_elsewhere(a: impl Store, b: impl Store) {
    let receiver = TestReceiver::start().await.unwrap();
    let delivering = worker(a).await;
    let web = sender(b).await; // started before the subscription exists
    let sub = delivering
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();

    let first = web.send(&RandomNumber(1)).await.unwrap();
    assert_eq!(web.deliveries(first).await.unwrap().len(), 1, "matched");
    wait_log(&web, delivered(), |n| n == 1).await;

    // Disabled elsewhere: the new delivery is kept as skipped and listed as undelivered.
    delivering.disable(sub.id()).await.unwrap();
    let second = web.send(&RandomNumber(2)).await.unwrap();
    let undelivered = web.undelivered().await.unwrap();
    let listed: Vec<_> = undelivered.items.iter().map(|d| d.message_id).collect();
    assert_eq!(listed, [second], "the new delivery is listed");
    assert_eq!(undelivered.items[0].status, DeliveryStatus::Skipped);

    // Enabled again, then scoped to another event: the change is seen at once.
    delivering.enable(sub.id()).await.unwrap();
    let third = web.send(&RandomNumber(3)).await.unwrap();
    assert_eq!(web.deliveries(third).await.unwrap().len(), 1);
    // Delivered before the subscription goes: a deletion takes its deliveries with it.
    wait_log(&web, delivered(), |n| n == 2).await;
    let rescoped = delivering
        .subscription(sub.id())
        .await
        .unwrap()
        .events(["bear_attack:*"]);
    delivering.update(rescoped).await.unwrap();
    let fourth = web.send(&RandomNumber(4)).await.unwrap();
    assert!(
        web.deliveries(fourth).await.unwrap().is_empty(),
        "out of scope now"
    );

    delivering.delete(sub.id()).await.unwrap();
    let fifth = web.send(&RandomNumber(5)).await.unwrap();
    assert!(web.deliveries(fifth).await.unwrap().is_empty(), "deleted");

    assert_eq!(receiver.count(), 2, "the first and the third");
    web.shutdown().await;
    delivering.shutdown().await;
}

/// "`update()` changes settings only": a copy read before a disable or a rotation in another
/// runtime, changed and passed back, undoes neither.
async fn stale_update_keeps_state_and_secrets(a: impl Store, b: impl Store) {
    let one = sender(a).await;
    let other = sender(b).await;
    let sub = one
        .subscribe(Subscription::new("https://example.com/hooks").unwrap())
        .await
        .unwrap();
    let copy = one.subscription(sub.id()).await.unwrap();

    other.disable(sub.id()).await.unwrap();
    let back = one
        .update(copy.clone().description("edited"))
        .await
        .unwrap();
    assert!(!back.is_enabled(), "a stale copy does not re-enable");
    assert_eq!(back.description_text(), Some("edited"));

    other.enable(sub.id()).await.unwrap();
    let rotated = other.rotate_secret(sub.id(), None).await.unwrap();
    let back = one.update(copy.description("again")).await.unwrap();
    assert_eq!(
        back.signing_secret(),
        rotated.signing_secret(),
        "a stale copy does not revert the secret"
    );
    assert!(back.is_enabled());
    one.shutdown().await;
    other.shutdown().await;
}

/// "Exactly once per idempotency key": a repeated key stores nothing, in any runtime.
async fn idempotency_key_stores_once(a: impl Store, b: impl Store) {
    let receiver = TestReceiver::start().await.unwrap();
    let delivering = worker(a).await;
    let web = sender(b).await;
    delivering
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let options = SendOptions::new().idempotency_key("order-42:paid");
    let first = web.send_with(&RandomNumber(42), &options).await.unwrap();
    let again = web.send_with(&RandomNumber(42), &options).await.unwrap();
    let elsewhere = delivering
        .send_with(&RandomNumber(42), &options)
        .await
        .unwrap();
    assert_eq!((again, elsewhere), (first, first));
    let other = web
        .send_with(
            &RandomNumber(43),
            &SendOptions::new().idempotency_key("order-43:paid"),
        )
        .await
        .unwrap();
    assert_ne!(other, first);

    wait_log(&web, delivered(), |n| n == 2).await;
    let ids: Vec<String> = receiver
        .wait_for(2, DEADLINE)
        .await
        .unwrap()
        .iter()
        .map(|r| r.webhook_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "one request per message: {ids:?}");
    assert!(ids.contains(&first.to_string()) && ids.contains(&other.to_string()));

    let error = web
        .send_with(&RandomNumber(1), &SendOptions::new().idempotency_key(""))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidKey { .. }) && error.is_invalid_input());
    web.shutdown().await;
    delivering.shutdown().await;
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "document", action = "uploaded")]
struct Document {
    text: String,
}

/// "A message has a size limit": an oversized event is refused with a typed error before
/// anything is stored.
async fn oversized_event_is_refused(a: impl Store, b: impl Store) {
    let receiver = TestReceiver::start().await.unwrap();
    let delivering = worker(a).await;
    let small = Webhooks::builder()
        .store(b)
        .allow_private_networks()
        .send_only()
        .max_message_size(1024)
        .build()
        .await
        .unwrap();
    delivering
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let big = Document {
        text: "x".repeat(2000),
    };
    let error = small.send(&big).await.unwrap_err();
    assert!(
        matches!(error, Error::MessageTooLarge { size, limit: 1024, .. } if size > 2000),
        "{error:?}"
    );
    assert!(error.is_invalid_input());
    // The default limit is 1 MiB.
    let huge = Document {
        text: "x".repeat(1024 * 1024 + 1),
    };
    let error = delivering.send(&huge).await.unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { limit, .. } if limit == 1024 * 1024));
    let log = small.delivery_log(&DeliveryQuery::new()).await.unwrap();
    assert!(log.items.is_empty(), "nothing stored: {:?}", log.items);

    // What fits goes through.
    small
        .send(&Document {
            text: "fits".into(),
        })
        .await
        .unwrap();
    receiver.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(receiver.count(), 1);
    small.shutdown().await;
    delivering.shutdown().await;
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "order", action = "updated")]
struct OrderUpdated {
    #[webhook(ordering_key)]
    order: String,
    step: u32,
}

/// "In what order": an ordered subscription is first in, first out per ordering key, across
/// two delivering runtimes; a failing key holds back only itself.
async fn ordered_per_key_across_runtimes(a: impl Store, b: impl Store) {
    let receiver = TestReceiver::start().await.unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    receiver.respond_with(move |request| {
        let body = request.json().ok()?;
        (body["data"]["order"] == "stuck" && flag.load(Ordering::SeqCst))
            .then(|| Reply::status(503))
    });
    let one = worker(a).await;
    let two = worker(b).await;
    one.subscribe(Subscription::new(receiver.url()).unwrap().ordered(true))
        .await
        .unwrap();
    for step in 0..5 {
        for order in ["stuck", "flowing", "other"] {
            let event = OrderUpdated {
                order: order.into(),
                step,
            };
            two.send(&event).await.unwrap();
        }
    }
    // Every message of the healthy keys arrives while the stuck key's head keeps failing.
    wait_log(&one, delivered(), |n| n == 10).await;
    let steps = |order: &str, answered_ok: bool| -> Vec<u64> {
        receiver
            .requests()
            .iter()
            .filter_map(|r| r.json().ok().map(|j| (j, r.answered)))
            .filter(|(j, status)| {
                j["data"]["order"] == order && (!answered_ok || *status == Some(200))
            })
            .map(|(j, _)| j["data"]["step"].as_u64().unwrap())
            .collect()
    };
    for order in ["flowing", "other"] {
        assert_eq!(
            steps(order, false),
            [0, 1, 2, 3, 4],
            "{order}: in send order, once each"
        );
    }
    let stuck = steps("stuck", false);
    assert!(!stuck.is_empty());
    assert!(
        stuck.iter().all(|s| *s == 0),
        "only the stuck key's head was tried: {stuck:?}"
    );

    failing.store(false, Ordering::SeqCst);
    wait_log(&one, delivered(), |n| n == 15).await;
    assert_eq!(steps("stuck", true), [0, 1, 2, 3, 4], "then in order");
    one.shutdown().await;
    two.shutdown().await;
}

/// "How many at once": `max_in_flight` holds over two delivering runtimes, measured at the
/// receiver.
async fn max_in_flight_across_runtimes(a: impl Store, b: impl Store) {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(200).delay(Duration::from_millis(50)));
    let one = worker(a).await;
    let two = worker(b).await;
    one.subscribe(Subscription::new(receiver.url()).unwrap().max_in_flight(3))
        .await
        .unwrap();
    for n in 0..30 {
        two.send(&RandomNumber(n)).await.unwrap();
    }
    wait_log(&one, delivered(), |n| n == 30).await;
    let peak = receiver.peak_concurrency();
    println!("peak concurrency {peak} (limit 3)");
    assert!(peak <= 3, "{peak} requests at once; the limit is 3");
    assert!(peak >= 2, "the two runtimes did work side by side: {peak}");
    one.shutdown().await;
    two.shutdown().await;
}

/// "How fast": `rate_limit(n)` holds over two delivering runtimes, measured from the
/// receiver's arrival times; nothing is sent twice.
async fn rate_limit_across_runtimes(a: impl Store, b: impl Store) {
    const RATE: u32 = 20;
    const EVENTS: u32 = 40;
    let receiver = TestReceiver::start().await.unwrap();
    let one = worker(a).await;
    let two = worker(b).await;
    one.subscribe(Subscription::new(receiver.url()).unwrap().rate_limit(RATE))
        .await
        .unwrap();
    let since = SystemTime::now();
    for n in 0..EVENTS {
        two.send(&RandomNumber(n)).await.unwrap();
    }
    let requests = receiver.wait_for(EVENTS as usize, DEADLINE).await.unwrap();
    let times: Vec<SystemTime> = requests.iter().map(|r| r.at).collect();
    assert_rate(since, &times, RATE);
    let mut ids: Vec<&str> = requests.iter().map(|r| r.webhook_id().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS as usize, "each once");
    one.shutdown().await;
    two.shutdown().await;
}

/// "Exactly once per message id": a rate-limited backlog that takes longer to send than a
/// lease is sent once per message, over two delivering runtimes (claims hand out only what can
/// be sent within the lease).
async fn rate_limited_backlog_outlasting_the_lease_is_sent_once(a: impl Store, b: impl Store) {
    const RATE: u32 = 10;
    const EVENTS: u32 = 35; // 3.4 s of slots against a 2 s lease
    let receiver = TestReceiver::start().await.unwrap();
    let lease = Duration::from_secs(2);
    let one = worker_with_lease(a, lease).await;
    let two = worker_with_lease(b, lease).await;
    one.subscribe(Subscription::new(receiver.url()).unwrap().rate_limit(RATE))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for n in 0..EVENTS {
        sent.push(two.send(&RandomNumber(n)).await.unwrap().to_string());
    }
    wait_log(&one, delivered(), |n| n == EVENTS as usize).await;
    let mut arrived: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.webhook_id().unwrap().to_owned())
        .collect();
    arrived.sort();
    sent.sort();
    assert_eq!(arrived, sent, "every message once, none twice");
    one.shutdown().await;
    two.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// On each store
// ---------------------------------------------------------------------------------------------

/// One `#[tokio::test]` per promise and store; `$pair` gives a future of
/// `Option<(store_a, store_b, guard)>` (`None`: skipped).
macro_rules! promises {
    ($module:ident, $pair:expr) => {
        mod $module {
            use super::*;
            promises!(@each $pair;
                routing_follows_changes_made_elsewhere,
                stale_update_keeps_state_and_secrets,
                idempotency_key_stores_once,
                oversized_event_is_refused,
                ordered_per_key_across_runtimes,
                max_in_flight_across_runtimes,
                rate_limit_across_runtimes,
                rate_limited_backlog_outlasting_the_lease_is_sent_once,
            );
        }
    };
    (@each $pair:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((a, b, _guard)) = $pair.await else {
                    return;
                };
                super::$name(a, b).await;
            }
        )*
    };
}

promises!(memory, async {
    let store = Arc::new(webhooks::store::MemoryStore::new());
    Some((store.clone(), store, ()))
});

promises!(sqlite, async {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        webhooks::store::SqliteStore::open(dir.path().join("webhooks.db"))
            .await
            .unwrap(),
    );
    Some((store.clone(), store, dir))
});

promises!(postgres, async {
    let schema = common::postgres::Schema::new("the PostgreSQL promises", "promises_")?;
    let a = webhooks::store::PostgresStore::connect_with(&schema.url, &schema.name)
        .await
        .unwrap();
    let b = webhooks::store::PostgresStore::connect_with(&schema.url, &schema.name)
        .await
        .unwrap();
    Some((a, b, schema))
});
