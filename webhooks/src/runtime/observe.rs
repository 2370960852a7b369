//! The runtime's reports to the `metrics` facade (see [`crate::metrics`] for the names). Every
//! method compiles to nothing without the feature, so call sites need no `cfg`.
//!
//! With the feature, a runtime resolves its counters, gauges and histograms (with their labels)
//! once, at its first report, from the recorder it reports to, and reuses them: looking a
//! metric up in the recorder's registry at every report cost a few percent of a busy
//! process's CPU. A report made with another recorder than that one (installed later, or set
//! locally with `metrics::with_local_recorder`) looks its metrics up as before, so it still
//! reaches the recorder it is made with.

use std::time::{Duration, SystemTime};

#[cfg(feature = "metrics")]
use crate::metrics as names;
use crate::store::{Next, QueueStats};

/// A store call whose failure is counted (label `operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreCall {
    Claim,
    Record,
    NextDue,
    QueueStats,
}

impl StoreCall {
    #[cfg(feature = "metrics")]
    const ALL: [StoreCall; 4] = [
        StoreCall::Claim,
        StoreCall::Record,
        StoreCall::NextDue,
        StoreCall::QueueStats,
    ];

    /// The value of the label `operation`.
    #[cfg(feature = "metrics")]
    fn label(self) -> &'static str {
        match self {
            StoreCall::Claim => "claim",
            StoreCall::Record => "record",
            StoreCall::NextDue => "next_due",
            StoreCall::QueueStats => "queue_stats",
        }
    }
}

/// What an attempt decided (label `outcome`).
#[cfg(feature = "metrics")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry,
    Exhausted,
    Skipped,
}

#[cfg(feature = "metrics")]
impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Delivered,
        Outcome::Retry,
        Outcome::Exhausted,
        Outcome::Skipped,
    ];

    fn of(next: Next) -> Outcome {
        match next {
            Next::Delivered => Outcome::Delivered,
            Next::RetryAt(_) => Outcome::Retry,
            Next::Exhausted => Outcome::Exhausted,
            Next::Skipped => Outcome::Skipped,
        }
    }

    /// The value of the label `outcome`.
    fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Exhausted => "exhausted",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Each metric, looked up in the current recorder: the one place that names it and its labels.
#[cfg(feature = "metrics")]
mod lookup {
    use metrics::{Counter, Gauge, Histogram};

    use super::{Outcome, StoreCall, names};

    pub(super) fn messages_sent() -> Counter {
        metrics::counter!(names::MESSAGES_SENT)
    }
    pub(super) fn deliveries_created() -> Counter {
        metrics::counter!(names::DELIVERIES_CREATED)
    }
    pub(super) fn claimed() -> Counter {
        metrics::counter!(names::CLAIMED)
    }
    pub(super) fn claim_duration() -> Histogram {
        metrics::histogram!(names::CLAIM_DURATION)
    }
    pub(super) fn attempts(outcome: Outcome) -> Counter {
        metrics::counter!(names::ATTEMPTS, "outcome" => outcome.label())
    }
    pub(super) fn attempt_duration(outcome: Outcome) -> Histogram {
        metrics::histogram!(names::ATTEMPT_DURATION, "outcome" => outcome.label())
    }
    pub(super) fn delivery_lag() -> Histogram {
        metrics::histogram!(names::DELIVERY_LAG)
    }
    pub(super) fn queue_depth() -> Gauge {
        metrics::gauge!(names::QUEUE_DEPTH)
    }
    pub(super) fn queue_lag() -> Gauge {
        metrics::gauge!(names::QUEUE_LAG)
    }
    pub(super) fn store_errors(call: StoreCall) -> Counter {
        metrics::counter!(names::STORE_ERRORS, "operation" => call.label())
    }
}

/// Every metric of the runtime, resolved from one recorder; the labels that vary per report
/// (`outcome`, `operation`) as one handle per value.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Handles {
    messages_sent: metrics::Counter,
    deliveries_created: metrics::Counter,
    claimed: metrics::Counter,
    claim_duration: metrics::Histogram,
    /// By [`Outcome`], in [`Outcome::ALL`] order.
    attempts: [metrics::Counter; 4],
    /// By [`Outcome`], in [`Outcome::ALL`] order.
    attempt_duration: [metrics::Histogram; 4],
    delivery_lag: metrics::Histogram,
    queue_depth: metrics::Gauge,
    queue_lag: metrics::Gauge,
    /// By [`StoreCall`], in [`StoreCall::ALL`] order.
    store_errors: [metrics::Counter; 4],
}

#[cfg(feature = "metrics")]
impl Handles {
    /// Looks every metric up in the current recorder.
    fn resolve() -> Handles {
        Handles {
            messages_sent: lookup::messages_sent(),
            deliveries_created: lookup::deliveries_created(),
            claimed: lookup::claimed(),
            claim_duration: lookup::claim_duration(),
            attempts: Outcome::ALL.map(lookup::attempts),
            attempt_duration: Outcome::ALL.map(lookup::attempt_duration),
            delivery_lag: lookup::delivery_lag(),
            queue_depth: lookup::queue_depth(),
            queue_lag: lookup::queue_lag(),
            store_errors: StoreCall::ALL.map(lookup::store_errors),
        }
    }
}

/// The handles and the recorder they were resolved from.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Resolved {
    /// The recorder's address: only compared, never followed.
    recorder: usize,
    handles: Handles,
}

/// A runtime's reports to the `metrics` facade.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    #[cfg(feature = "metrics")]
    resolved: std::sync::OnceLock<Resolved>,
}

#[cfg(feature = "metrics")]
impl Observer {
    /// The handles resolved from the recorder this report goes to, or `None` to look each
    /// metric up: with no recorder (a no-op one, or any without state), or with another
    /// recorder than the first this runtime reported to.
    fn handles(&self) -> Option<&Handles> {
        metrics::with_recorder(|recorder| {
            // A recorder without state (the no-op one) has no registry to look up in; and
            // such values may share an address, so the address could not tell them apart.
            if std::mem::size_of_val(recorder) == 0 {
                return None;
            }
            // Recorders stay where they are while in use (the global one for good, a local one
            // for its scope); one dropped while this runtime runs and another made at its
            // address would be taken for it.
            let address = std::ptr::from_ref(recorder).cast::<()>().addr();
            let resolved = self.resolved.get_or_init(|| Resolved {
                recorder: address,
                handles: Handles::resolve(),
            });
            (resolved.recorder == address).then_some(&resolved.handles)
        })
    }
}

impl Observer {
    /// A message stored with `deliveries` deliveries.
    #[inline]
    pub(crate) fn sent(&self, deliveries: usize) {
        #[cfg(feature = "metrics")]
        {
            let deliveries = deliveries as u64;
            match self.handles() {
                Some(h) => {
                    h.messages_sent.increment(1);
                    h.deliveries_created.increment(deliveries);
                }
                None => {
                    lookup::messages_sent().increment(1);
                    lookup::deliveries_created().increment(deliveries);
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = deliveries;
    }

    /// A claim that took `took` and leased `count` deliveries.
    #[inline]
    pub(crate) fn claimed(&self, count: usize, took: Duration) {
        #[cfg(feature = "metrics")]
        match self.handles() {
            Some(h) => {
                h.claimed.increment(count as u64);
                h.claim_duration.record(took);
            }
            None => {
                lookup::claimed().increment(count as u64);
                lookup::claim_duration().record(took);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (count, took);
    }

    /// An attempt sent at `sent` for a delivery due at `due`, that took `took` and decided
    /// `next`.
    #[inline]
    pub(crate) fn attempt(
        &self,
        next: Next,
        took: Duration,
        due: Option<SystemTime>,
        sent: SystemTime,
    ) {
        #[cfg(feature = "metrics")]
        {
            let outcome = Outcome::of(next);
            let lag = due.and_then(|due| sent.duration_since(due).ok());
            match self.handles() {
                Some(h) => {
                    h.attempts[outcome as usize].increment(1);
                    h.attempt_duration[outcome as usize].record(took);
                    if let Some(lag) = lag {
                        h.delivery_lag.record(lag);
                    }
                }
                None => {
                    lookup::attempts(outcome).increment(1);
                    lookup::attempt_duration(outcome).record(took);
                    if let Some(lag) = lag {
                        lookup::delivery_lag().record(lag);
                    }
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (next, took, due, sent);
    }

    /// A store call that failed.
    #[inline]
    pub(crate) fn store_error(&self, call: StoreCall) {
        #[cfg(feature = "metrics")]
        match self.handles() {
            Some(h) => h.store_errors[call as usize].increment(1),
            None => lookup::store_errors(call).increment(1),
        }
        #[cfg(not(feature = "metrics"))]
        let _ = call;
    }

    /// The queue's figures, sampled at `now`.
    pub(crate) fn queue(&self, stats: QueueStats, now: SystemTime) {
        #[cfg(feature = "metrics")]
        {
            let lag = stats
                .oldest_due
                .and_then(|due| now.duration_since(due).ok())
                .unwrap_or_default();
            let depth = stats.unfinished as f64;
            match self.handles() {
                Some(h) => {
                    h.queue_depth.set(depth);
                    h.queue_lag.set(lag.as_secs_f64());
                }
                None => {
                    lookup::queue_depth().set(depth);
                    lookup::queue_lag().set(lag.as_secs_f64());
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (stats, now);
    }
}

/// How often a dispatcher samples the queue (with the feature).
pub(crate) const QUEUE_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the queue is worth sampling: only when the figures go somewhere.
pub(crate) const SAMPLES_QUEUE: bool = cfg!(feature = "metrics");

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Keeps its counters by name and counts how often a metric is looked up.
    #[derive(Debug, Default)]
    struct Counting {
        lookups: AtomicU64,
        counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    }

    impl Counting {
        fn counter(&self, name: &str) -> u64 {
            let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            counters.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
        }
    }

    impl Recorder for Counting {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let counter = counters.entry(key.name().to_owned()).or_default();
            Counter::from_arc(counter.clone())
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            Gauge::noop()
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            Histogram::noop()
        }
    }

    #[test]
    fn handles_are_resolved_once_and_other_recorders_still_get_reports() {
        let observer = Observer::default();
        let first = Counting::default();
        metrics::with_local_recorder(&first, || {
            observer.sent(2);
            observer.sent(3);
            observer.store_error(StoreCall::Claim);
        });
        assert_eq!(first.counter(names::MESSAGES_SENT), 2);
        assert_eq!(first.counter(names::DELIVERIES_CREATED), 5);
        assert_eq!(first.counter(names::STORE_ERRORS), 1);
        // Every metric once, at the first report (4 without labels, 4 outcomes twice, the
        // lag, 2 gauges, 4 operations); none after.
        let resolved = first.lookups.load(Ordering::Relaxed);
        assert_eq!(resolved, 19);

        // A recorder set later (here: another local one, while the first still exists)
        // receives the reports made with it.
        let second = Counting::default();
        metrics::with_local_recorder(&second, || observer.sent(1));
        assert_eq!(second.counter(names::MESSAGES_SENT), 1);
        assert_eq!(second.counter(names::DELIVERIES_CREATED), 1);
        assert_eq!(first.counter(names::MESSAGES_SENT), 2);

        // And the first one's handles are still the ones used with it.
        metrics::with_local_recorder(&first, || observer.sent(1));
        assert_eq!(first.counter(names::MESSAGES_SENT), 3);
        assert_eq!(first.lookups.load(Ordering::Relaxed), resolved);
    }
}
