//! The command line: what `inspect` takes, and how its values are read.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use webhooks::store::{Cursor, DeliveryQuery, DeliveryStatus};
use webhooks::{DeliveryId, SubscriptionId};

#[derive(Parser)]
#[command(
    about = "Inspect a webhook store: subscriptions, deliveries, attempts; redeliver and recover",
    long_about = "Inspect a webhook store: subscriptions, deliveries, attempts; redeliver and \
                  recover.\n\nOpens the store directly and starts no delivery runtime: nothing is \
                  sent from here. `redeliver` and `recover` requeue; the application sends the \
                  requeued deliveries (a SQLite store is used by one process at a time: stop the \
                  application first; it sends them when it starts again)."
)]
pub(crate) struct Cli {
    /// The SQLite store file.
    #[arg(long, value_name = "PATH", env = "WEBHOOKS_DB")]
    pub(crate) db: Option<PathBuf>,

    /// The PostgreSQL store (a connection URL).
    #[cfg(feature = "postgres")]
    #[arg(
        long,
        value_name = "URL",
        env = "WEBHOOKS_POSTGRES",
        conflicts_with = "db"
    )]
    pub(crate) postgres: Option<String>,

    /// The PostgreSQL schema holding the store's tables [default: webhooks].
    #[cfg(feature = "postgres")]
    #[arg(
        long,
        value_name = "NAME",
        requires = "postgres",
        conflicts_with = "db"
    )]
    pub(crate) schema: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) struct DeliveriesArgs {
    /// Only this status (repeatable: any of them). One of pending, in_flight, delivered,
    /// failed, exhausted, skipped.
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    pub(crate) statuses: Vec<DeliveryStatus>,
    /// Only this subscription's (`sub_…`).
    #[arg(long)]
    pub(crate) subscription: Option<SubscriptionId>,
    /// Only this event name (`random_number:generate`).
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// Only messages carrying this label (`county=denver`).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_label)]
    pub(crate) label: Option<(String, String)>,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

#[derive(Args)]
pub(crate) struct PageArgs {
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) limit: u16,
    /// Start after this cursor (printed after a full page).
    #[arg(long, value_name = "CURSOR")]
    pub(crate) after: Option<Cursor>,
}

impl PageArgs {
    pub(crate) fn apply(&self, mut query: DeliveryQuery) -> DeliveryQuery {
        query = query.limit(usize::from(self.limit));
        if let Some(cursor) = self.after {
            query = query.after(cursor);
        }
        query
    }
}

pub(crate) const STATUSES: [DeliveryStatus; 6] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InFlight,
    DeliveryStatus::Delivered,
    DeliveryStatus::Failed,
    DeliveryStatus::Exhausted,
    DeliveryStatus::Skipped,
];

pub(crate) fn parse_status(text: &str) -> Result<DeliveryStatus, String> {
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

pub(crate) fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// RFC 3339 (`2026-01-31T12:00:00Z`, `2026-01-31T13:00:00.5+01:00`) or unix seconds.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    let invalid = |reason: String| {
        format!(
            "invalid time {text:?}: expected RFC 3339 (2026-01-31T12:00:00Z) or unix seconds \
             ({reason})"
        )
    };
    let timestamp = match text.parse::<i64>() {
        Ok(seconds) => jiff::Timestamp::from_second(seconds),
        Err(_) => text.parse::<jiff::Timestamp>(),
    };
    let timestamp = timestamp.map_err(|e| invalid(e.to_string()))?;
    // Whole nanoseconds since the epoch, either side of it.
    let nanos = timestamp.as_nanosecond();
    let magnitude = std::time::Duration::from_nanos(
        u64::try_from(nanos.unsigned_abs()).map_err(|e| invalid(e.to_string()))?,
    );
    Ok(if nanos >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    })
}
