//! `random_number_generator`: sends random numbers as `random_number:generate` webhooks through
//! the durable SQLite store, and waits until they are delivered.
//!
//! Each number is printed on stdout, alone on its line, as soon as `send` has accepted it (it is
//! then in the store: it will be delivered even if this process dies). The program then waits
//! until every delivery is delivered or exhausted (at most `--wait` seconds), showing progress on
//! stderr, prints a summary there, and exits non-zero if anything failed or is still pending.
//!
//! Run it again on the same `--db` (even with `--count 0`) and it first finishes what an
//! interrupted run left pending. Subscriptions are kept in the store and reused across runs, one
//! per URL.
//!
//! ```text
//! cargo run --example polis &                                  # a receiver on :9000
//! cargo run --example random_number_generator -- --count 3
//! cargo run --example random_number_generator -- --url http://localhost:9001 --secret whsec_...
//! cargo run --example random_number_generator -- --secret whsk_...   # Ed25519 (v1a) signatures
//! cargo run --example random_number_generator -- --count 0    # finish what is pending
//! ```
//!
//! For development: it may reach private and loopback addresses (`allow_private_networks`), and
//! it retries after 0.5, 1 and 2 s instead of the default schedule of about 28 hours.

#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde::Serialize;
use webhooks::signing::SecretKind;
use webhooks::store::{Delivery, DeliveryQuery, DeliveryStatus, Page, SqliteStore, Store};
use webhooks::{DeliveryId, RetryPolicy, Secret, Subscription, WebhookEvent, Webhooks};

/// The event: `{"id":"msg_…","event":"random_number:generate","data":863}`.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

/// The short retry schedule of an interactive tool: 4 attempts within about 3.5 s.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Sends random numbers as webhooks through a durable SQLite store and waits for their delivery.
#[derive(Parser)]
#[command(
    name = "random_number_generator",
    after_help = "Exit status: 0 when every delivery was delivered, 1 otherwise (failed, still \
                  pending, or an error). Pending work stays in --db: run again to finish it."
)]
struct Args {
    /// An endpoint to send the numbers to; repeat for several.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://localhost:9000"
    )]
    urls: Vec<String>,

    /// The signing secret of the subscriptions (`whsec_...`), or an Ed25519 signing key
    /// (`whsk_...`: `v1a` signatures, which the receiver checks with the public key printed); a
    /// stored subscription gets it too. Without it, a new subscription gets a generated secret
    /// (printed).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<Secret>,

    /// How many numbers to send.
    #[arg(long, default_value_t = 5)]
    count: u32,

    /// The SQLite file that keeps subscriptions and deliveries across runs.
    #[arg(long, default_value = "webhooks.db")]
    db: PathBuf,

    /// At most this many seconds to wait for the deliveries to finish.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    wait: Duration,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds (0 or more)"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(args).await {
        Ok(Tally {
            failed: 0,
            pending: 0,
            ..
        }) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("random_number_generator: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<Tally, Box<dyn std::error::Error>> {
    let mut wanted: Vec<Subscription> = Vec::new();
    for url in &args.urls {
        let sub = Subscription::new(url).map_err(|e| format!("--url: {e}"))?;
        // The same URL twice would be two subscriptions, and every number sent twice.
        if !wanted.iter().any(|w| w.url() == sub.url()) {
            wanted.push(sub);
        }
    }
    let db = args.db.display();
    let store = SqliteStore::open(&args.db)
        .await
        .map_err(|e| format!("cannot open the store {db}: {e}"))?;

    // Whole milliseconds, as the store keeps times: a delivery created in this millisecond must
    // not compare as older than the run.
    let started = floor_to_millis(SystemTime::now());
    // What an earlier run left unfinished, read before the runtime starts delivering it, so that
    // none of it is done before it is counted. (Reading the store directly, through the `Store`
    // trait: `Webhooks` starts its workers as soon as it is built.)
    let unfinished = DeliveryQuery::new()
        .status(DeliveryStatus::Pending)
        .status(DeliveryStatus::InFlight)
        .status(DeliveryStatus::Failed);
    let leftovers = all_deliveries(unfinished, async |q| store.query_deliveries(q).await).await?;

    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .retry(RetryPolicy::schedule(RETRIES))
        // A 429 or a timeout waits at least 60 s by default: too long for this tool.
        .slow_down_floor(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        // On a timeout, do not wait long for requests in flight: they stay in the store.
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .await?;
    eprintln!(
        "note: private and loopback addresses are allowed (allow_private_networks): for development only"
    );
    eprintln!(
        "note: retries after about 0.5 s, 1 s and 2 s (4 attempts), a schedule short enough to \
         watch; the default spans about 28 hours"
    );
    if !leftovers.is_empty() {
        eprintln!(
            "resuming {} deliveries left pending in {db} by an earlier run",
            leftovers.len()
        );
    }
    if let Some(secret) = &args.secret
        && secret.kind() == SecretKind::Ed25519SigningKey
        && let Some(public_key) = secret.public_key()
    {
        eprintln!(
            "signing with Ed25519 (v1a); the receiver's WEBHOOK_SECRET is the public key: {}",
            public_key.expose()
        );
    }
    subscribe(&hooks, wanted, args.secret.as_ref()).await?;

    for _ in 0..args.count {
        let number = fastrand::u32(0..1000);
        hooks.send(&RandomNumber(number)).await?;
        // Accepted: it is in the store now, whatever happens to this process.
        println!("{number}");
    }

    let tally = wait(&hooks, started, &leftovers, args.wait).await;
    hooks.shutdown().await;
    let tally = tally?;
    eprintln!(
        "summary: {} delivered, {} failed, {} still pending",
        tally.delivered, tally.failed, tally.pending
    );
    if tally.failed > 0 {
        eprintln!(
            "the failed deliveries (exhausted or skipped) are kept in {db}; the inspect example \
             shows their attempts and can redeliver them"
        );
    }
    if tally.pending > 0 {
        eprintln!(
            "the pending deliveries are kept in {db}: run again (`--count 0`) to finish them"
        );
    }
    Ok(tally)
}

/// One subscription per URL, reused across runs: a stored one with the same URL is taken (its
/// events, secret and state brought up to date) rather than a duplicate added.
async fn subscribe(
    hooks: &Webhooks,
    wanted: Vec<Subscription>,
    secret: Option<&Secret>,
) -> Result<(), webhooks::Error> {
    let stored = hooks.subscriptions().await?;
    let event = RandomNumber::EVENT_TYPES[0];
    for new in &wanted {
        let Some(existing) = stored.iter().find(|s| s.url() == new.url()) else {
            let mut new = new.clone().events([event]);
            if let Some(secret) = secret {
                new = new.secret(secret.clone());
            }
            let sub = hooks.subscribe(new).await?;
            eprintln!("subscribed {} to {}", sub.id(), sub.url());
            if secret.is_none() {
                eprintln!(
                    "  its signing secret, for the receiver's WEBHOOK_SECRET: {}",
                    sub.signing_secret().expose()
                );
            }
            continue;
        };
        let mut sub = existing.clone();
        let mut changed = false;
        if !sub.event_patterns().iter().any(|p| p == event || p == "*") {
            sub = sub.events([event]);
            changed = true;
        }
        if changed {
            sub = hooks.update(sub).await?;
        }
        if let Some(secret) = secret
            && sub.signing_secret() != secret
        {
            // The old secret keeps signing beside the new one for the rotation overlap, so a
            // receiver still holding it keeps verifying.
            sub = hooks.rotate_secret(sub.id(), Some(secret.clone())).await?;
            changed = true;
        }
        if !sub.is_enabled() {
            sub = hooks.enable(sub.id()).await?;
            eprintln!("re-enabled {} (new numbers only)", sub.id());
        }
        eprintln!(
            "using {} to {} (stored by an earlier run{})",
            sub.id(),
            sub.url(),
            if changed { ", updated" } else { "" }
        );
    }
    for other in stored
        .iter()
        .filter(|s| s.is_enabled() && !wanted.iter().any(|w| w.url() == s.url()))
    {
        eprintln!(
            "note: {} subscribes {} to {:?} too (from an earlier run)",
            other.id(),
            other.url(),
            other.event_patterns()
        );
    }
    Ok(())
}

/// Where this run's deliveries stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    delivered: usize,
    /// Exhausted or skipped: given up.
    failed: usize,
    /// Still to be attempted, or being attempted.
    pending: usize,
}

/// Waits until every delivery of this run (created since `started`, or left over) is final, or
/// `limit` passed, or Ctrl-C. Shows progress on stderr.
async fn wait(
    hooks: &Webhooks,
    started: SystemTime,
    leftovers: &[Delivery],
    limit: Duration,
) -> Result<Tally, webhooks::Error> {
    let deadline = Instant::now() + limit;
    let leftover_ids: HashSet<DeliveryId> = leftovers.iter().map(|d| d.id).collect();
    let since = leftovers
        .iter()
        .map(|d| d.created_at)
        .fold(started, SystemTime::min);
    let mut notifications = hooks.notifications();
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let mut shown = None;
    loop {
        // There is no count API: count a page at a time through the delivery log.
        let mut query = DeliveryQuery::new().limit(1000);
        query.since = Some(since);
        let mut tally = Tally::default();
        for delivery in all_deliveries(query, async |q| hooks.delivery_log(q).await).await? {
            if delivery.created_at < started && !leftover_ids.contains(&delivery.id) {
                continue; // finished before this run
            }
            if delivery.status == DeliveryStatus::Delivered {
                tally.delivered += 1;
            } else if delivery.status.is_final() {
                tally.failed += 1;
            } else {
                tally.pending += 1;
            }
        }
        if shown != Some(tally) {
            eprintln!(
                "progress: {} delivered, {} failed, {} pending",
                tally.delivered, tally.failed, tally.pending
            );
            shown = Some(tally);
        }
        if tally.pending == 0 {
            return Ok(tally);
        }
        // Look again when something happened (or every second, in case notifications lagged).
        tokio::select! {
            _ = notifications.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                eprintln!("stopped waiting after {limit:?} (--wait)");
                return Ok(tally);
            }
            _ = &mut interrupt => {
                eprintln!("interrupted");
                return Ok(tally);
            }
        }
        // Several notifications at once: one recount.
        while notifications.try_recv().is_ok() {}
    }
}

/// Every delivery matching `query`, following the cursor from page to page.
async fn all_deliveries<E>(
    mut query: DeliveryQuery,
    page: impl AsyncFn(&DeliveryQuery) -> Result<Page<Delivery>, E>,
) -> Result<Vec<Delivery>, E> {
    let mut all = Vec::new();
    loop {
        let Page { items, next, .. } = page(&query).await?;
        all.extend(items);
        match next {
            Some(cursor) => query = query.after(cursor),
            None => return Ok(all),
        }
    }
}

fn floor_to_millis(time: SystemTime) -> SystemTime {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}
