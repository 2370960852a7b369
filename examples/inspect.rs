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

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use webhooks::store::{
    Attempt, Change, Claim, ClaimRequest, Cursor, Delivery, DeliveryQuery, DeliveryStatus, LeaseId,
    NewDelivery, Next, Page, Recorded, Store, StoreError,
};
use webhooks::{DeliveryId, Disabled, Message, MessageId, Subscription, SubscriptionId, Webhooks};

#[derive(Parser)]
#[command(
    about = "Inspect a webhook store: subscriptions, deliveries, attempts; redeliver and recover",
    long_about = "Inspect a webhook store: subscriptions, deliveries, attempts; redeliver and \
                  recover.\n\nOpens the store directly and starts no delivery runtime: nothing is \
                  sent from here. `redeliver` and `recover` requeue; the application sends the \
                  requeued deliveries (a SQLite store is used by one process at a time: stop the \
                  application first; it sends them when it starts again)."
)]
struct Cli {
    /// The SQLite store file.
    #[arg(long, value_name = "PATH", env = "WEBHOOKS_DB")]
    db: Option<PathBuf>,

    /// The PostgreSQL store (a connection URL).
    #[cfg(feature = "postgres")]
    #[arg(
        long,
        value_name = "URL",
        env = "WEBHOOKS_POSTGRES",
        conflicts_with = "db"
    )]
    postgres: Option<String>,

    /// The PostgreSQL schema holding the store's tables [default: webhooks].
    #[cfg(feature = "postgres")]
    #[arg(
        long,
        value_name = "NAME",
        requires = "postgres",
        conflicts_with = "db"
    )]
    schema: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every subscription: id, URL, events, labels, and whether it is enabled.
    Subscriptions,
    /// The delivery log, newest first, one page at a time.
    Deliveries(DeliveriesArgs),
    /// Deliveries that did not reach their endpoint and will not without a redelivery or
    /// recovery (exhausted or skipped), newest first.
    Undelivered(PageArgs),
    /// The attempts of one delivery: time, status code, latency, error, response.
    Attempts {
        /// The delivery (`dlv_…`).
        delivery: DeliveryId,
    },
    /// Requeues one delivery for one more attempt, now, whatever its status.
    Redeliver {
        /// The delivery (`dlv_…`).
        delivery: DeliveryId,
    },
    /// After an endpoint was fixed: enables the subscription (if it is disabled) and requeues
    /// its exhausted and skipped deliveries created in [since, until).
    Recover {
        /// The subscription (`sub_…`).
        subscription: SubscriptionId,
        /// Start of the window: RFC 3339 (`2026-01-31T12:00:00Z`) or unix seconds.
        #[arg(long, value_parser = parse_time)]
        since: SystemTime,
        /// End of the window, exclusive (default: now).
        #[arg(long, value_parser = parse_time)]
        until: Option<SystemTime>,
    },
}

#[derive(Args)]
struct DeliveriesArgs {
    /// Only this status (repeatable: any of them). One of pending, in_flight, delivered,
    /// failed, exhausted, skipped.
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    statuses: Vec<DeliveryStatus>,
    /// Only this subscription's (`sub_…`).
    #[arg(long)]
    subscription: Option<SubscriptionId>,
    /// Only this event name (`random_number:generate`).
    #[arg(long)]
    event: Option<String>,
    /// Only messages carrying this label (`county=denver`).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_label)]
    label: Option<(String, String)>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Args)]
struct PageArgs {
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Start after this cursor (printed after a full page).
    #[arg(long, value_name = "CURSOR")]
    after: Option<Cursor>,
}

impl PageArgs {
    fn apply(&self, mut query: DeliveryQuery) -> DeliveryQuery {
        query = query.limit(usize::from(self.limit));
        if let Some(cursor) = self.after {
            query = query.after(cursor);
        }
        query
    }
}

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
            let subscriptions = store.subscriptions().await?;
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

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A `Value` always serializes; say so rather than print nothing if that ever changes.
        Err(error) => eprintln!("error: cannot write JSON: {error}"),
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; the last is not padded.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn state(subscription: &Subscription) -> String {
    match subscription.disabled() {
        None => "enabled".to_owned(),
        Some(disabled) => format!("disabled {}: {}", rfc3339(disabled.at), disabled.reason),
    }
}

fn events(subscription: &Subscription) -> Vec<String> {
    match subscription.event_patterns() {
        [] => vec!["*".to_owned()],
        patterns => patterns.to_vec(),
    }
}

fn labels(subscription: &Subscription) -> Vec<String> {
    subscription
        .labels()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

fn print_subscriptions(subscriptions: &[Subscription]) {
    if subscriptions.is_empty() {
        println!("no subscriptions");
        return;
    }
    let rows: Vec<Vec<String>> = subscriptions
        .iter()
        .map(|s| {
            let labels = labels(s);
            vec![
                s.id().to_string(),
                s.url().to_string(),
                events(s).join(","),
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels.join(",")
                },
                state(s),
            ]
        })
        .collect();
    print_table(&["ID", "URL", "EVENTS", "LABELS", "STATE"], &rows);
}

fn subscription_json(s: &Subscription) -> Value {
    let labels: serde_json::Map<String, Value> = s
        .labels()
        .iter()
        .map(|(name, value)| (name.to_owned(), Value::from(value)))
        .collect();
    json!({
        "id": s.id(),
        "url": s.url().as_str(),
        "events": events(s),
        "labels": labels,
        "description": s.description_text(),
        "created_at": rfc3339(s.created_at()),
        "enabled": s.is_enabled(),
        "disabled": s.disabled().map(|d| json!({
            "at": rfc3339(d.at),
            "reason": d.reason.to_string(),
        })),
    })
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "message_id": d.message_id,
        "subscription_id": d.subscription_id,
        "event": d.event_type,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "created_at": rfc3339(d.created_at),
        "last_attempt_at": d.last_attempt_at.map(rfc3339),
        "next_attempt_at": d.next_attempt_at.map(rfc3339),
    })
}

fn print_page(page: &Page<Delivery>, json: bool) {
    if json {
        print_json(&json!({
            "deliveries": page.items.iter().map(delivery_json).collect::<Vec<_>>(),
            "next": page.next.map(|c| c.to_string()),
        }));
        return;
    }
    if page.items.is_empty() {
        println!("no deliveries");
    } else {
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|d| {
                vec![
                    d.id.to_string(),
                    rfc3339(d.created_at),
                    d.status.to_string(),
                    d.attempts.to_string(),
                    d.next_attempt_at.map_or_else(|| "-".to_owned(), rfc3339),
                    d.event_type.clone(),
                    d.subscription_id.to_string(),
                    d.message_id.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "CREATED",
                "STATUS",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "EVENT",
                "SUBSCRIPTION",
                "MESSAGE",
            ],
            &rows,
        );
    }
    if let Some(cursor) = page.next {
        println!("next page: --after {cursor}");
    }
}

/// The start of a response body (or failure message) on one line: at most `max` characters,
/// control characters shown as spaces.
fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn print_attempts(attempts: &[Attempt]) {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            let body = String::from_utf8_lossy(&a.response_body);
            // The response when there is one; otherwise why there was none.
            let detail = if body.is_empty() {
                a.error_message.as_deref().unwrap_or("")
            } else {
                &body
            };
            vec![
                a.number.to_string(),
                rfc3339(a.at),
                a.status_code
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                format!("{} ms", a.latency.as_millis()),
                a.error.map_or_else(|| "-".to_owned(), |e| e.to_string()),
                excerpt(detail, 60),
            ]
        })
        .collect();
    print_table(
        &["#", "AT", "STATUS", "LATENCY", "ERROR", "RESPONSE"],
        &rows,
    );
}

fn attempt_json(a: &Attempt) -> Value {
    json!({
        "number": a.number,
        "at": rfc3339(a.at),
        "status_code": a.status_code,
        "latency_ms": u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
        "error": a.error.map(|e| e.as_str()),
        "error_message": a.error_message,
        "response_body": String::from_utf8_lossy(&a.response_body),
    })
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

const STATUSES: [DeliveryStatus; 6] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InFlight,
    DeliveryStatus::Delivered,
    DeliveryStatus::Failed,
    DeliveryStatus::Exhausted,
    DeliveryStatus::Skipped,
];

fn parse_status(text: &str) -> Result<DeliveryStatus, String> {
    STATUSES
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let known: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
            format!(
                "unknown status {text:?}: expected one of {}",
                known.join(", ")
            )
        })
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// RFC 3339 (`2026-01-31T12:00:00Z`, `2026-01-31T13:00:00.5+01:00`) or unix seconds.
fn parse_time(text: &str) -> Result<SystemTime, String> {
    let invalid = || {
        format!("invalid time {text:?}: expected RFC 3339 (2026-01-31T12:00:00Z) or unix seconds")
    };
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(from_unix_millis(
            seconds.checked_mul(1000).ok_or_else(invalid)?,
        ));
    }
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(invalid)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(invalid());
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return Err(invalid());
        }
        // Milliseconds: the first three digits, padded.
        let ms: String = fraction[..len]
            .chars()
            .chain("00".chars())
            .take(3)
            .collect();
        millis = ms.parse::<i64>().map_err(|_| invalid())?;
        rest = &fraction[len..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let number = |part: &str| -> Result<i64, String> {
                if part.bytes().all(|c| c.is_ascii_digit()) {
                    part.parse().map_err(|_| invalid())
                } else {
                    Err(invalid())
                }
            };
            let (hours, minutes) = (number(&rest[1..3])?, number(&rest[4..6])?);
            if hours > 23 || minutes > 59 {
                return Err(invalid());
            }
            sign * (hours * 60 + minutes)
        }
        _ => return Err(invalid()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    // 60: a leap second, counted as the last second of the minute.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(invalid());
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset_minutes * 60;
    Ok(from_unix_millis(seconds * 1000 + millis))
}

// ---------------------------------------------------------------------------------------------
// Time: RFC 3339 in UTC, without a date-time dependency
// ---------------------------------------------------------------------------------------------

fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_unix_millis(millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// `2026-11-24T04:30:43.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let millis = unix_millis(time);
    let seconds = millis.div_euclid(1000);
    let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}
