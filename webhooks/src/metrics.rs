//! What the runtime reports through the [`metrics`](https://docs.rs/metrics/0.24) facade
//! (feature `metrics`), to whatever exporter the application installs (Prometheus,
//! OpenTelemetry, StatsD, …). Without an installed recorder each report costs a few atomic
//! loads. A runtime looks its metrics up in the recorder once, at its first report to it, and
//! reuses them; a recorder installed after the runtime is built still receives its reports.
//!
//! ```no_run
//! # async fn run() -> Result<(), webhooks::Error> {
//! // Install a recorder first, e.g. `metrics_exporter_prometheus::PrometheusBuilder::new().install()`;
//! // then every runtime reports to it.
//! let hooks = webhooks::Webhooks::open("webhooks.db").await?;
//! # drop(hooks); Ok(()) }
//! ```
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | [`MESSAGES_SENT`] | counter | | messages stored by `send`, `send_message` and `send_to` (idempotent repeats not counted; not `send_in_tx`, whose commit is the application's and may not happen) |
//! | [`DELIVERIES_CREATED`] | counter | | deliveries stored with them: the fan-out |
//! | [`ATTEMPTS`] | counter | `outcome` | attempts recorded, by what they decided: `delivered`, `retry`, `exhausted`, `skipped` |
//! | [`ATTEMPT_DURATION`] | histogram (s) | `outcome` | from sending the request to reading the answer (or failing) |
//! | [`DELIVERY_LAG`] | histogram (s) | | from when a delivery was due to when its attempt was sent: the queue's delay, limits included |
//! | [`CLAIMED`] | counter | | deliveries this process claimed |
//! | [`CLAIM_DURATION`] | histogram (s) | | one claim's round trip to the store |
//! | [`QUEUE_DEPTH`] | gauge | | unfinished deliveries in the store (every process's), sampled every [`QUEUE_SAMPLE_INTERVAL`] |
//! | [`QUEUE_LAG`] | gauge (s) | | how late the oldest due delivery not in flight is (0 when none is late), sampled with the depth |
//! | [`STORE_ERRORS`] | counter | `operation` | store calls that failed: `claim`, `record`, `next_due`, `queue_stats` |
//!
//! The queue is sampled by each running dispatcher (not a `send_only` runtime) with one count
//! in the store; with several workers on one PostgreSQL, each reports the same shared figures.

use std::time::Duration;

/// Counter: messages stored.
pub const MESSAGES_SENT: &str = "webhooks_messages_sent_total";
/// Counter: deliveries stored with the messages.
pub const DELIVERIES_CREATED: &str = "webhooks_deliveries_created_total";
/// Counter, label `outcome`: attempts recorded.
pub const ATTEMPTS: &str = "webhooks_attempts_total";
/// Histogram in seconds, label `outcome`: an attempt's request.
pub const ATTEMPT_DURATION: &str = "webhooks_attempt_duration_seconds";
/// Histogram in seconds: from due to sent.
pub const DELIVERY_LAG: &str = "webhooks_delivery_lag_seconds";
/// Counter: deliveries claimed by this process.
pub const CLAIMED: &str = "webhooks_claimed_total";
/// Histogram in seconds: a claim's round trip.
pub const CLAIM_DURATION: &str = "webhooks_claim_duration_seconds";
/// Gauge: unfinished deliveries in the store.
pub const QUEUE_DEPTH: &str = "webhooks_queue_depth";
/// Gauge in seconds: how late the oldest due delivery is.
pub const QUEUE_LAG: &str = "webhooks_queue_lag_seconds";
/// Counter, label `operation`: failed store calls.
pub const STORE_ERRORS: &str = "webhooks_store_errors_total";

/// How often a dispatcher samples [`QUEUE_DEPTH`] and [`QUEUE_LAG`].
pub const QUEUE_SAMPLE_INTERVAL: Duration = crate::runtime::observe::QUEUE_SAMPLE_INTERVAL;
