//! Inspects a webhook store: subscriptions, the delivery log, attempts; and puts undelivered
//! work back in the queue (redeliver one delivery, or recover a subscription's window).
//!
//! ```text
//! cargo run --example inspect -- --db webhooks.db subscriptions
//! cargo run --example inspect -- --db webhooks.db deliveries --status exhausted --limit 20
//! cargo run --example inspect -- --db webhooks.db attempts dlv_0190…
//! cargo run --example inspect -- --db webhooks.db redeliver dlv_0190…
//! cargo run --example inspect -- --db webhooks.db recover sub_0190… --since 2026-01-01T00:00:00Z
//! cargo run --example inspect --features postgres -- --postgres postgres://localhost/app deliveries
//! ```
//!
//! It opens the store directly, through the `Store` trait, and starts no delivery runtime: it
//! never sends a webhook itself. `redeliver` and `recover` only requeue; the application sends
//! what was requeued (a SQLite store is open in one process at a time, so stop the application
//! first and it sends them when it starts again). Add `--json` for machine-readable output.

#![allow(clippy::print_stdout)] // an inspection tool's output is its job

mod cli;
mod output;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use serde_json::{Value, json};
use webhooks::store::{DeliveryQuery, Store, StoreError};

use cli::{Cli, Command};
use output::{
    attempt_json, delivery_json, print_attempts, print_json, print_page, print_subscriptions,
    rfc3339, subscription_json,
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long connecting to PostgreSQL may take.
#[cfg(feature = "postgres")]
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(open_and_run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn open_and_run(cli: Cli) -> Result<(), Failure> {
    #[cfg(feature = "postgres")]
    if let Some(url) = &cli.postgres {
        let schema = cli.schema.as_deref().unwrap_or("webhooks");
        // An unreachable server would otherwise keep us waiting for the pool's own timeouts.
        let connect = webhooks::store::PostgresStore::connect_with(url, schema);
        let store = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                format!(
                    "cannot open the PostgreSQL store: no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
        return run(store, cli).await;
    }
    let Some(path) = cli.db.clone() else {
        let postgres = if cfg!(feature = "postgres") {
            " or --postgres URL"
        } else {
            ""
        };
        return Err(format!("no store given: pass --db PATH{postgres}").into());
    };
    // Opening creates a missing file: refuse instead, so that a typo does not show an empty
    // store.
    if !path.is_file() {
        return Err(format!("no store at {}: the file does not exist", path.display()).into());
    }
    let store = webhooks::store::SqliteStore::open(&path)
        .await
        .map_err(|e| format!("cannot open the SQLite store {}: {e}", path.display()))?;
    run(store, cli).await
}

async fn run<S: Store>(store: S, cli: Cli) -> Result<(), Failure> {
    let store = Arc::new(store);
    let json = cli.json;
    match cli.command {
        Command::Subscriptions => {
            let subscriptions = store.subscriptions().await?.value;
            if json {
                print_json(&Value::Array(
                    subscriptions.iter().map(subscription_json).collect(),
                ));
            } else {
                print_subscriptions(&subscriptions);
            }
        }
        Command::Deliveries(args) => {
            let mut query = args.page.apply(DeliveryQuery::new());
            query.statuses = args.statuses;
            if let Some(id) = args.subscription {
                query = query.subscription(id);
            }
            if let Some(event) = args.event {
                query = query.event_type(event);
            }
            if let Some((name, value)) = args.label {
                query = query.label(name, value);
            }
            print_page(&store.query_deliveries(&query).await?, json);
        }
        Command::Undelivered(page) => {
            let query = page.apply(DeliveryQuery::undelivered());
            print_page(&store.query_deliveries(&query).await?, json);
        }
        Command::Attempts { delivery } => {
            if store.delivery(delivery).await?.is_none() {
                return Err(format!("delivery {delivery} not found").into());
            }
            let attempts = store.attempts(delivery).await?;
            if json {
                print_json(&Value::Array(attempts.iter().map(attempt_json).collect()));
            } else if attempts.is_empty() {
                println!("no attempts yet");
            } else {
                print_attempts(&attempts);
            }
        }
        Command::Redeliver { delivery } => {
            let found = store
                .delivery(delivery)
                .await?
                .ok_or_else(|| format!("delivery {delivery} not found"))?;
            let subscription = store
                .subscription(found.subscription_id)
                .await?
                .ok_or_else(|| format!("subscription {} not found", found.subscription_id))?;
            // A disabled subscription's deliveries are skipped when claimed: requeuing one
            // would only skip it again.
            if let Some(disabled) = subscription.disabled() {
                return Err(format!(
                    "subscription {} is disabled ({}); `recover {} --since …` enables it and \
                     requeues its undelivered deliveries",
                    subscription.id(),
                    disabled.reason,
                    subscription.id()
                )
                .into());
            }
            let requeued = match store.redeliver(delivery, SystemTime::now()).await {
                Ok(requeued) => requeued,
                Err(StoreError::Conflict { .. }) => {
                    return Err(format!(
                        "delivery {delivery} is in flight; try again once its attempt ends"
                    )
                    .into());
                }
                Err(error) => return Err(error.into()),
            };
            if json {
                print_json(&delivery_json(&requeued));
            } else {
                let plural = if found.attempts == 1 { "" } else { "s" };
                println!(
                    "requeued {delivery} (was {}, {} attempt{plural} so far): due now",
                    found.status, found.attempts
                );
                println!("{SENT_BY_THE_APPLICATION}");
            }
        }
        Command::Recover {
            subscription,
            since,
            until,
        } => {
            let until = until.unwrap_or_else(|| SystemTime::now() + Duration::from_secs(1));
            if until <= since {
                return Err("--until must be later than --since".into());
            }
            let found = store
                .subscription(subscription)
                .await?
                .ok_or_else(|| format!("subscription {subscription} not found"))?;
            // Enabled first, so that a running application does not skip the requeued
            // deliveries again.
            let was_disabled = found.disabled().cloned();
            if was_disabled.is_some() {
                store.enable_subscription(subscription).await?;
            }
            let count = store
                .recover(subscription, since, until, SystemTime::now())
                .await?;
            if json {
                print_json(&json!({
                    "subscription": subscription,
                    "re_enabled": was_disabled.is_some(),
                    "requeued": count,
                    "since": rfc3339(since),
                    "until": rfc3339(until),
                }));
            } else {
                if let Some(disabled) = was_disabled {
                    println!("enabled {subscription} (was disabled: {})", disabled.reason);
                }
                println!(
                    "requeued {count} exhausted or skipped deliveries of {subscription} created \
                     in [{}, {})",
                    rfc3339(since),
                    rfc3339(until)
                );
                if count > 0 {
                    println!("{SENT_BY_THE_APPLICATION}");
                }
            }
        }
    }
    Ok(())
}

const SENT_BY_THE_APPLICATION: &str = "the application sends requeued deliveries: at once if it \
                                       is running (PostgreSQL), or when it next opens the store";
