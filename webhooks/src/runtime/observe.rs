//! The runtime's reports to the `metrics` facade (see [`crate::metrics`] for the names). Every
//! function compiles to nothing without the feature, so call sites need no `cfg`.

use std::time::{Duration, SystemTime};

#[cfg(feature = "metrics")]
use crate::metrics as names;
use crate::store::{Next, QueueStats};

/// A message stored with `deliveries` deliveries.
#[inline]
pub(crate) fn sent(deliveries: usize) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(names::MESSAGES_SENT).increment(1);
        metrics::counter!(names::DELIVERIES_CREATED).increment(deliveries as u64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = deliveries;
}

/// A claim that took `took` and leased `count` deliveries.
#[inline]
pub(crate) fn claimed(count: usize, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(names::CLAIMED).increment(count as u64);
        metrics::histogram!(names::CLAIM_DURATION).record(took);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (count, took);
}

/// An attempt sent at `sent` for a delivery due at `due`, that took `took` and decided `next`.
#[inline]
pub(crate) fn attempt(next: Next, took: Duration, due: Option<SystemTime>, sent: SystemTime) {
    #[cfg(feature = "metrics")]
    {
        let outcome = match next {
            Next::Delivered => "delivered",
            Next::RetryAt(_) => "retry",
            Next::Exhausted => "exhausted",
            Next::Skipped => "skipped",
        };
        metrics::counter!(names::ATTEMPTS, "outcome" => outcome).increment(1);
        metrics::histogram!(names::ATTEMPT_DURATION, "outcome" => outcome).record(took);
        if let Some(lag) = due.and_then(|due| sent.duration_since(due).ok()) {
            metrics::histogram!(names::DELIVERY_LAG).record(lag);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (next, took, due, sent);
}

/// A store call that failed.
#[inline]
pub(crate) fn store_error(operation: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(names::STORE_ERRORS, "operation" => operation).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = operation;
}

/// The queue's figures, sampled at `now`.
pub(crate) fn queue(stats: QueueStats, now: SystemTime) {
    #[cfg(feature = "metrics")]
    {
        let lag = stats
            .oldest_due
            .and_then(|due| now.duration_since(due).ok())
            .unwrap_or_default();
        metrics::gauge!(names::QUEUE_DEPTH).set(stats.unfinished as f64);
        metrics::gauge!(names::QUEUE_LAG).set(lag.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (stats, now);
}

/// How often a dispatcher samples the queue (with the feature).
pub(crate) const QUEUE_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the queue is worth sampling: only when the figures go somewhere.
pub(crate) const SAMPLES_QUEUE: bool = cfg!(feature = "metrics");
