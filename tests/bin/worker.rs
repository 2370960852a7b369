//! A child process for the crash and multi-worker tests: it uses `webhooks` as an application
//! would, and is killed part-way by the tests.
//!
//! ```text
//! worker sqlite-send DB URL COUNT   subscribe URL (once), send COUNT events, printing each
//!                                   accepted message id; then deliver until nothing is pending
//! worker sqlite-resume DB           deliver what is pending, then exit
//! worker pg-worker URL SCHEMA        deliver from a shared PostgreSQL queue until stdin closes
//! worker pg-sender URL SCHEMA        a send-only runtime (a web server's): for each stdin line
//!                                   `N ORDERING_KEY IDEMPOTENCY_KEY` (`-`: none) it sends
//!                                   RandomNumber(N) and prints the message id, or `error: …`
//! ```
#![allow(clippy::print_stdout)] // the tests read what this prints

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use webhooks::store::{DeliveryQuery, DeliveryStatus, SqliteStore};
use webhooks::{RetryPolicy, SendOptions, Subscription, WebhookEvent, Webhooks};

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sqlite-send", db, url, count] => {
            let hooks = open(db).await?;
            if !hooks
                .subscriptions()
                .await?
                .iter()
                .any(|s| s.url().as_str() == *url)
            {
                hooks.subscribe(Subscription::new(url)?).await?;
            }
            let mut out = std::io::stdout().lock();
            for n in 0..count.parse::<u32>()? {
                let id = hooks.send(&RandomNumber(n)).await?;
                writeln!(out, "{id}")?;
                out.flush()?;
            }
            drop(out);
            drain(&hooks).await
        }
        ["sqlite-resume", db] => {
            let hooks = open(db).await?;
            drain(&hooks).await
        }
        ["pg-worker", url, schema] => {
            let store = webhooks::store::PostgresStore::connect_with(url, schema).await?;
            let hooks = Webhooks::builder()
                .store(store)
                .allow_private_networks()
                // Retries for 20 s: a key a test keeps failing stays held that long.
                .retry(RetryPolicy::schedule(vec![Duration::from_millis(50); 400]).jitter(0.0))
                // A short lease, so that a killed worker's deliveries come back quickly.
                .lease(Duration::from_secs(2))
                // The lease must outlast a request (twice the timeout): loopback answers fast.
                .timeout(Duration::from_secs(1))
                .max_in_flight(16)
                .build()
                .await?;
            println!("ready");
            // Deliver until the test closes our stdin (or kills us).
            tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin())).await??;
            hooks.shutdown().await;
            Ok(())
        }
        ["pg-sender", url, schema] => {
            let store = webhooks::store::PostgresStore::connect_with(url, schema).await?;
            let hooks = Webhooks::builder()
                .store(store)
                .allow_private_networks()
                .send_only()
                .build()
                .await?;
            println!("ready");
            let (lines, mut commands) = tokio::sync::mpsc::unbounded_channel();
            // Stdin is read on a thread of its own; each line is answered before the next.
            std::thread::spawn(move || {
                for line in std::io::stdin().lines().map_while(std::result::Result::ok) {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            });
            while let Some(line) = commands.recv().await {
                let reply = match send_command(&hooks, &line).await {
                    Ok(id) => id,
                    Err(error) => format!("error: {error}"),
                };
                let mut out = std::io::stdout().lock();
                writeln!(out, "{reply}")?;
                out.flush()?;
            }
            hooks.shutdown().await;
            Ok(())
        }
        _ => Err(format!("usage: see the doc comment of tests/bin/worker.rs; got {args:?}").into()),
    }
}

/// `N ORDERING_KEY IDEMPOTENCY_KEY`: sends RandomNumber(N) with those keys (`-`: none).
async fn send_command(hooks: &Webhooks, line: &str) -> Result<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [n, ordering, idempotency] = words.as_slice() else {
        return Err(format!("expected `N ORDERING_KEY IDEMPOTENCY_KEY`, got {line:?}").into());
    };
    let mut options = SendOptions::new();
    if *ordering != "-" {
        options = options.ordering_key(*ordering);
    }
    if *idempotency != "-" {
        options = options.idempotency_key(*idempotency);
    }
    let id = hooks.send_with(&RandomNumber(n.parse()?), &options).await?;
    Ok(id.to_string())
}

async fn open(db: &str) -> Result<Webhooks> {
    Ok(Webhooks::builder()
        .store(SqliteStore::open(db).await?)
        .allow_private_networks()
        .retry(RetryPolicy::schedule(vec![Duration::from_millis(50); 20]).jitter(0.0))
        .build()
        .await?)
}

/// Delivers until nothing is pending, in flight or failed-retrying.
async fn drain(hooks: &Webhooks) -> Result<()> {
    let open = DeliveryQuery::new()
        .status(DeliveryStatus::Pending)
        .status(DeliveryStatus::InFlight)
        .status(DeliveryStatus::Failed)
        .limit(1);
    let mut changes = hooks.notifications();
    while !hooks.delivery_log(&open).await?.items.is_empty() {
        // Each notification is a state change worth re-checking; the timeout covers one that
        // happened before we listened.
        let _ = tokio::time::timeout(Duration::from_millis(200), changes.recv()).await;
    }
    hooks.shutdown().await;
    Ok(())
}
