//! Many workers, one PostgreSQL queue: three worker processes deliver from one schema, one is
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! killed with SIGKILL mid-run; every delivery completes, and repeats happen only for what the
//! dead worker held (its lease lapsed), and are counted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use webhooks::store::{DeliveryQuery, DeliveryStatus, PostgresStore};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Subscription, WebhookEvent, Webhooks};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
const EVENTS: u32 = 300;
/// Each worker's `max_in_flight` (see tests/bin/worker.rs): the most a dead worker can hold.
const WORKER_IN_FLIGHT: usize = 16;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

/// Kills the worker if the test ends before it does.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_worker(url: &str, schema: &str) -> Worker {
    let mut child = Command::new(WORKER)
        .args(["pg-worker", url, schema])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the worker started");
    Worker(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_one_killed_every_delivery_completes() {
    let Ok(url) = std::env::var("WEBHOOKS_TEST_POSTGRES_URL") else {
        println!("skipped: set WEBHOOKS_TEST_POSTGRES_URL to run the multi-worker test");
        return;
    };
    let schema = format!("multi_worker_{}", std::process::id());
    let receiver = TestReceiver::start().await.unwrap();
    // Slow enough that the killed worker dies with requests in flight.
    receiver.reply(Reply::status(200).delay(Duration::from_millis(50)));

    // This process only sends: the three workers deliver.
    let hooks = Webhooks::builder()
        .store(PostgresStore::connect_with(&url, &schema).await.unwrap())
        .allow_private_networks()
        .send_only()
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();

    let mut workers: Vec<Worker> = (0..3).map(|_| start_worker(&url, &schema)).collect();
    let mut sent = Vec::new();
    for n in 0..EVENTS {
        sent.push(hooks.send(&RandomNumber(n)).await.unwrap().to_string());
    }

    receiver
        .wait_for(60, Duration::from_secs(30))
        .await
        .unwrap();
    let mut victim = workers.remove(0);
    victim.0.kill().unwrap(); // SIGKILL: its leases stay until they lapse
    victim.0.wait().unwrap();

    // Every delivery completes (lapsed leases are claimed by the survivors).
    let open = DeliveryQuery::new()
        .status(DeliveryStatus::Pending)
        .status(DeliveryStatus::InFlight)
        .status(DeliveryStatus::Failed)
        .limit(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hooks.delivery_log(&open).await.unwrap().items.is_empty() {
        assert!(
            Instant::now() < deadline,
            "deliveries still open after 60 s"
        );
        // Progress is made by other processes; this only paces the polling of the store.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = hooks
        .delivery_log(
            &DeliveryQuery::new()
                .status(DeliveryStatus::Delivered)
                .limit(1000),
        )
        .await
        .unwrap();
    assert_eq!(delivered.items.len(), EVENTS as usize);

    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for request in receiver.requests() {
        *arrivals
            .entry(request.webhook_id().unwrap().to_owned())
            .or_default() += 1;
    }
    let missing = sent.iter().filter(|id| !arrivals.contains_key(*id)).count();
    assert_eq!(missing, 0, "every message arrived");
    let repeats: usize = arrivals.values().map(|n| n - 1).sum();
    println!(
        "{EVENTS} messages, {repeats} repeats (in flight at the dead worker when it was killed)"
    );
    assert!(
        repeats <= WORKER_IN_FLIGHT,
        "{repeats} repeats: more than the dead worker could hold"
    );

    for mut worker in workers {
        drop(worker.0.stdin.take()); // EOF: shut down gracefully
        assert!(worker.0.wait().unwrap().success());
    }
    hooks.shutdown().await;
    drop(hooks);
    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
        // The name is ours (a fixed prefix and a pid), not user input.
        let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&pool)
            .await;
    }
}
