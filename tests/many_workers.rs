//! What a subscription promises, with worker processes sharing one PostgreSQL schema: a
//! send-only process (a web server's) started before the subscription existed, two delivering
//! worker processes, and this test process changing subscriptions in between. `promises.rs`
//! covers the same promises with runtimes in one process, on every store.
//!
//! Needs `WEBHOOKS_TEST_POSTGRES_URL`; without it every test says it was skipped.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::assert_rate;
use common::postgres::Schema;
use webhooks::store::{DeliveryQuery, DeliveryStatus, PostgresStore};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Subscription, Webhooks};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
const DEADLINE: Duration = Duration::from_secs(30);

/// A child process of tests/bin/worker.rs, killed if the test ends first.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Process {
    fn start(mode: &str, url: &str, schema: &str) -> Process {
        let mut child = Command::new(WORKER)
            .args([mode, url, schema])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut process = Process {
            child,
            stdin,
            stdout,
        };
        assert_eq!(process.line(), "ready", "{mode} started");
        process
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Has the sender process send `RandomNumber(n)` (keys: `-` for none); its message id.
    fn send(&mut self, n: u32, ordering_key: &str, idempotency_key: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{n} {ordering_key} {idempotency_key}").unwrap();
        stdin.flush().unwrap();
        let reply = self.line();
        assert!(reply.starts_with("msg_"), "the sender answered {reply:?}");
        reply
    }

    /// Closes stdin (a graceful stop) and waits for the exit.
    fn stop(mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The schema prefix of this file's tests.
const PREFIX: &str = "many_";

/// What the processes of a test share.
impl Schema {
    /// A runtime in this process that does not deliver: it changes subscriptions and reads
    /// the log.
    async fn control(&self) -> Webhooks {
        Webhooks::builder()
            .store(
                PostgresStore::connect_with(&self.url, &self.name)
                    .await
                    .unwrap(),
            )
            .allow_private_networks()
            .send_only()
            .build()
            .await
            .unwrap()
    }

    fn process(&self, mode: &str) -> Process {
        Process::start(mode, &self.url, &self.name)
    }
}

/// Waits until `count` deliveries are delivered, at most [`DEADLINE`].
async fn wait_delivered(control: &Webhooks, count: usize) {
    let query = DeliveryQuery::new()
        .status(DeliveryStatus::Delivered)
        .limit(1000);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = control.delivery_log(&query).await.unwrap().items.len();
        if found >= count {
            assert_eq!(found, count, "more delivered than sent");
            return;
        }
        assert!(Instant::now() < deadline, "{found} of {count} delivered");
        // Other processes do the work; this only paces the polling of the store.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A send-only process started before the subscription existed matches it; after another
/// process disabled it, the new delivery is listed by `undelivered()`; a repeated idempotency
/// key from two processes stores one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_only_process_follows_subscriptions_made_elsewhere() {
    let Some(schema) = Schema::new(
        "send_only_process_follows_subscriptions_made_elsewhere",
        PREFIX,
    ) else {
        return;
    };
    let receiver = TestReceiver::start().await.unwrap();
    let control = schema.control().await;
    let mut web = schema.process("pg-sender"); // before the subscription exists
    let worker = schema.process("pg-worker");

    let sub = control
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let first = web.send(1, "-", "-");
    receiver.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(receiver.requests()[0].webhook_id(), Some(first.as_str()));
    wait_delivered(&control, 1).await;

    control.disable(sub.id()).await.unwrap();
    let second = web.send(2, "-", "-");
    let undelivered = control.undelivered().await.unwrap();
    let listed: Vec<String> = undelivered
        .items
        .iter()
        .map(|d| d.message_id.to_string())
        .collect();
    assert_eq!(listed, [second], "listed as undelivered (skipped)");

    control.enable(sub.id()).await.unwrap();
    let keyed = web.send(3, "-", "order-42:paid");
    let again = web.send(3, "-", "order-42:paid");
    let here = control
        .send_with(
            &RandomNumberHere(3),
            &webhooks::SendOptions::new().idempotency_key("order-42:paid"),
        )
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        (again.as_str(), here.as_str()),
        (keyed.as_str(), keyed.as_str())
    );
    wait_delivered(&control, 2).await;
    assert_eq!(receiver.count(), 2, "the keyed message was sent once");

    web.stop();
    worker.stop();
    control.shutdown().await;
}

#[derive(serde::Serialize, webhooks::WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumberHere(u32);

/// `max_in_flight` and `rate_limit` hold over two worker processes, measured at the receiver;
/// a rate-limited backlog that outlasts the workers' 2 s lease is sent once per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_worker_processes() {
    let Some(schema) = Schema::new("limits_hold_across_worker_processes", PREFIX) else {
        return;
    };
    let slow = TestReceiver::start().await.unwrap();
    slow.reply(Reply::status(200).delay(Duration::from_millis(50)));
    let paced = TestReceiver::start().await.unwrap();
    let control = schema.control().await;
    let workers = [schema.process("pg-worker"), schema.process("pg-worker")];
    control
        .subscribe(Subscription::new(slow.url()).unwrap().max_in_flight(3))
        .await
        .unwrap();
    const RATE: u32 = 10;
    control
        .subscribe(Subscription::new(paced.url()).unwrap().rate_limit(RATE))
        .await
        .unwrap();

    // 40 events: 3.9 s of rate-limit slots, against the workers' 2 s lease.
    const EVENTS: u32 = 40;
    let since = SystemTime::now();
    let mut sent = Vec::new();
    for n in 0..EVENTS {
        sent.push(
            control
                .send(&RandomNumberHere(n))
                .await
                .unwrap()
                .to_string(),
        );
    }
    wait_delivered(&control, 2 * EVENTS as usize).await;

    let peak = slow.peak_concurrency();
    println!("max_in_flight 3 over two workers: peak {peak}");
    assert!(peak <= 3, "{peak} requests at once");

    let requests = paced.requests();
    let times: Vec<SystemTime> = requests.iter().map(|r| r.at).collect();
    assert_rate(since, &times, RATE);
    for receiver in [&slow, &paced] {
        let mut arrived: Vec<String> = receiver
            .requests()
            .iter()
            .map(|r| r.webhook_id().unwrap().to_owned())
            .collect();
        arrived.sort();
        let mut expected = sent.clone();
        expected.sort();
        assert_eq!(arrived, expected, "every message once, none twice");
    }

    for worker in workers {
        worker.stop();
    }
    control.shutdown().await;
}

/// Ordered by key over two worker processes: each key's messages arrive in send order, and a
/// key whose head keeps failing holds back only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_across_worker_processes() {
    let Some(schema) = Schema::new("per_key_order_across_worker_processes", PREFIX) else {
        return;
    };
    let receiver = TestReceiver::start().await.unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    // Numbers from 100 on belong to the stuck key.
    receiver.respond_with(move |request| {
        let n = request.json().ok()?["data"].as_u64()?;
        (n >= 100 && flag.load(Ordering::SeqCst)).then(|| Reply::status(503))
    });
    let control = schema.control().await;
    let mut web = schema.process("pg-sender");
    let workers = [schema.process("pg-worker"), schema.process("pg-worker")];
    control
        .subscribe(Subscription::new(receiver.url()).unwrap().ordered(true))
        .await
        .unwrap();
    for step in 0..5 {
        web.send(100 + step, "stuck", "-");
        web.send(step, "flowing", "-");
        web.send(10 + step, "-", "-"); // keyless: one queue of their own
    }
    wait_delivered(&control, 10).await;
    let numbers = |ok_only: bool| -> Vec<u64> {
        receiver
            .requests()
            .iter()
            .filter(|r| !ok_only || r.answered == Some(200))
            .filter_map(|r| r.json().ok()?["data"].as_u64())
            .collect()
    };
    let seen = numbers(false);
    let of = |range: std::ops::Range<u64>, seen: &[u64]| -> Vec<u64> {
        seen.iter().copied().filter(|n| range.contains(n)).collect()
    };
    assert_eq!(of(0..5, &seen), [0, 1, 2, 3, 4], "flowing key, in order");
    assert_eq!(
        of(10..15, &seen),
        [10, 11, 12, 13, 14],
        "keyless queue, in order"
    );
    let stuck = of(100..105, &seen);
    assert!(
        !stuck.is_empty() && stuck.iter().all(|n| *n == 100),
        "only the stuck key's head was tried: {stuck:?}"
    );

    failing.store(false, Ordering::SeqCst);
    wait_delivered(&control, 15).await;
    assert_eq!(
        of(100..105, &numbers(true)),
        [100, 101, 102, 103, 104],
        "then the stuck key, in order"
    );

    web.stop();
    for worker in workers {
        worker.stop();
    }
    control.shutdown().await;
}
