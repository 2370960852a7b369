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
use std::time::{Duration, Instant};

use common::{DEADLINE, RandomNumber};
use conformance::{LEASE_MS, add, add_plain, at, claim, record, request, send, subscription};
use sqlx::Connection;
use webhooks::store::{Change, ClaimRequest, DeliveryStatus, Next, PostgresStore, Store};
use webhooks::testing::TestReceiver;
use webhooks::{DeliveryId, Webhooks};

const URL_VAR: &str = "WEBHOOKS_TEST_POSTGRES_URL";
const RESTART_URL_VAR: &str = "WEBHOOKS_TEST_POSTGRES_RESTART_URL";
const RESTART_VAR: &str = "WEBHOOKS_TEST_POSTGRES_RESTART";

/// A schema of its own for one test, dropped (with everything in it) when the test ends.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// A fresh schema name, or `None` (and a line saying so) without a database to test on.
    fn new(test: &str) -> Option<Schema> {
        let Ok(url) = std::env::var(URL_VAR) else {
            println!("skipped {test}: {URL_VAR} is not set");
            return None;
        };
        Some(Schema::at(url))
    }

    /// A fresh schema name on the database at `url`.
    fn at(url: String) -> Schema {
        let name = format!("webhooks_test_{}", DeliveryId::new().as_uuid().simple());
        Schema { url, name }
    }

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

    async fn connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    async fn execute(&self, sql: String) {
        let mut conn = self.connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
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

impl Drop for Schema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop cannot await: a thread of its own, with a runtime of its own.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(_))) {
            eprintln!("could not drop schema {}: {done:?}", self.name);
        }
    }
}

/// A store in a fresh schema, or `None` when the tests are skipped.
async fn fresh(test: &str) -> Option<(PostgresStore, Schema)> {
    let schema = Schema::new(test)?;
    Some((schema.store().await, schema))
}

conformance_suite!(match fresh("the conformance test").await {
    Some(made) => std::future::ready(made),
    None => return,
});

/// Two stores on one schema: two workers, as two processes would be.
async fn two_workers(test: &str) -> Option<(PostgresStore, PostgresStore, Schema)> {
    Some(two_workers_in(Schema::new(test)?).await)
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
/// them get every one.
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
        loop {
            let claims = store.claim(&request(1_000, 7, 3)).await.unwrap();
            if claims.is_empty() {
                return got;
            }
            got.extend(claims.iter().map(|c| c.delivery.id));
        }
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
            let claims = store.claim(&request(1_000, 4, 4)).await.unwrap();
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
            let claims = store.claim(&request(1_000, 4, 4)).await.unwrap();
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

/// A claim skips an ordered subscription that another claim is working on, rather than
/// judging its head from a snapshot that cannot see the other's lease yet. (The race is too
/// narrow to produce on demand, so the claim in progress is played by a transaction holding
/// the subscription's lock, as `PostgresStore::claim` takes it.)
#[tokio::test]
async fn ordered_claim_skips_a_subscription_another_claim_holds() {
    let Some((a, schema)) = fresh("ordered_claim_skips_a_subscription_another_claim_holds").await
    else {
        return;
    };
    let ordered = add(&a, subscription().ordered(true)).await;
    let plain = add_plain(&a).await;
    send(&a, 0, &[ordered, plain]).await;
    let mut other = schema.connection().await;
    let mut in_progress = other.begin().await.unwrap();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(\
         hashtextextended('webhooks ordered ' || $1 || ' ' || $2::text, 0))",
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
    let from_a = a.claim(&req).await.unwrap();
    assert_eq!(from_a.len(), 2);
    assert!(from_a.iter().all(|c| c.delivery.subscription_id == s2));
    let from_b = b.claim(&request(10, 100, 100)).await.unwrap();
    assert_eq!(from_b.len(), 8, "all of s1's, and what is left of s2's");
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
    let (a, b, _schema) = two_workers_in(Schema::at(url)).await;
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
    let Some(schema) = Schema::new("send_in_tx_commits_and_rolls_back_with_the_transaction") else {
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
    let Some(schema) = Schema::new("two_runtimes_share_the_work") else {
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
    let Some(schema) = Schema::new("send_in_tx_needs_a_postgres_store") else {
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
    let Some(schema) = Schema::new("newer_schema_is_refused") else {
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

/// An older (here: empty) schema is migrated on connect; stores connecting at once migrate it
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_schema_is_migrated() {
    let Some(schema) = Schema::new("older_schema_is_migrated") else {
        return;
    };
    schema
        .execute(format!("CREATE SCHEMA \"{}\"", schema.name))
        .await;
    let (a, b) = tokio::join!(schema.store(), schema.store());
    let sub = add_plain(&a).await;
    send(&b, 0, &[sub]).await;
    assert_eq!(claim(&a, 0).await.len(), 1);
    let mut conn = schema.connection().await;
    let version: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{}\".schema_version",
        schema.name
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(version, 1);
}

/// An invalid schema name is refused before anything is created.
#[tokio::test]
async fn invalid_schema_name_is_refused() {
    let Some(schema) = Schema::new("invalid_schema_name_is_refused") else {
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
