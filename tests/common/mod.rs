//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod postgres;

use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use webhooks::store::MemoryStore;
use webhooks::testing::TestReceiver;
use webhooks::{Builder, Notification, RetryPolicy, Subscription, WebhookEvent, Webhooks};

/// How long any test waits for something that should happen within milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
pub struct RandomNumber(pub u32);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
pub enum BearAttack {
    #[webhook(action = "reported")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
    },
    #[webhook(action = "resolved")]
    Resolved {
        id: u64,
        #[webhook(label)]
        county: String,
    },
}

/// A runtime on a memory store that may reach 127.0.0.1, retrying fast.
pub fn builder() -> Builder {
    Webhooks::builder()
        .store(MemoryStore::new())
        .allow_private_networks()
        .retry(fast_retries(5))
        .slow_down_floor(Duration::ZERO)
}

/// What most runtime tests start with: a receiver on loopback, a runtime, one subscription to
/// every event at the receiver, and the runtime's notifications, opened before anything is
/// sent. Script the receiver before the first send.
pub struct Setup {
    pub receiver: TestReceiver,
    pub hooks: Webhooks,
    pub subscription: Subscription,
    pub notifications: broadcast::Receiver<Notification>,
}

impl Setup {
    /// A runtime built from `builder`, subscribed to the receiver.
    pub async fn start(builder: Builder) -> Setup {
        Setup::with(builder, |subscription| subscription).await
    }

    /// As [`start`](Self::start), with the subscription shaped by `shape` (events, labels,
    /// limits).
    pub async fn with(builder: Builder, shape: impl FnOnce(Subscription) -> Subscription) -> Setup {
        let receiver = TestReceiver::start().await.expect("a receiver on loopback");
        let hooks = builder.build().await.expect("the runtime starts");
        let subscription = Subscription::new(receiver.url()).expect("a loopback URL");
        let subscription = hooks
            .subscribe(shape(subscription))
            .await
            .expect("the subscription is stored");
        let notifications = hooks.notifications();
        Setup {
            receiver,
            hooks,
            subscription,
            notifications,
        }
    }
}

/// Checks requests' arrival times against a rate limit of `rate` per second, for a test that
/// sent every message at or after `since`: the `k`-th arrival (from 0) comes no earlier than
/// `k / rate` after `since`. Twice the rate, or no shared limit at all, fails it.
///
/// Why that is the provable bound, however loaded the machine: a delivery becomes due when its
/// message is created (at or after `since`, to the millisecond), so no claim gives it a send
/// slot before `since` less that millisecond; the stores hand out slots `1/rate` apart (rounded
/// up) from their next free slot or now, one per claimed delivery, so the `k + 1` slots behind
/// the first `k + 1` arrivals span at least `k / rate`; and a delivery is sent no earlier than
/// its slot. It may be sent any time later: a worker that is late (scheduling, a first
/// connection) sends its slots together when it catches up. So neither the span between the
/// first and last arrival (the first may be the late one) nor the count in a one-second window
/// is bounded under load; what is, is each arrival against `since`.
#[allow(clippy::print_stdout)] // the figures, for whoever reads the test's output
pub fn assert_rate(since: std::time::SystemTime, times: &[std::time::SystemTime], rate: u32) {
    // The due time's millisecond truncation, and the timer's and clocks' granularity.
    const SLACK: Duration = Duration::from_millis(5);
    let mut after: Vec<Duration> = times
        .iter()
        .map(|t| t.duration_since(since).unwrap_or_default())
        .collect();
    after.sort_unstable();
    let n = u32::try_from(after.len()).expect("a handful of requests");
    let least = Duration::from_secs(1) * n.saturating_sub(1) / rate;
    println!(
        "{n} requests, the last {:?} after the first send, at {rate}/s (at least {least:?})",
        after.last().copied().unwrap_or_default()
    );
    for (k, at) in (0u32..).zip(&after) {
        let earliest = Duration::from_secs(1) * k / rate;
        assert!(
            *at + SLACK >= earliest,
            "too fast: request {k} arrived {at:?} after the first send, its earliest slot is {earliest:?}"
        );
    }
}

/// `n` retries, 20 ms apart, no jitter.
pub fn fast_retries(n: usize) -> RetryPolicy {
    RetryPolicy::schedule(vec![Duration::from_millis(20); n]).jitter(0.0)
}

/// Waits for the first notification that `pick` accepts, at most [`DEADLINE`].
pub async fn wait_for<T>(
    rx: &mut broadcast::Receiver<Notification>,
    mut pick: impl FnMut(&Notification) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            match rx.recv().await {
                Ok(n) => {
                    if let Some(found) = pick(&n) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("notifications closed"),
            }
        }
    })
    .await;
    found.expect("the expected notification did not come within the deadline")
}

/// Collects notifications until `done` says so, at most [`DEADLINE`].
pub async fn collect_until(
    rx: &mut broadcast::Receiver<Notification>,
    mut done: impl FnMut(&[Notification]) -> bool,
) -> Vec<Notification> {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(DEADLINE, async {
        while !done(&seen) {
            match rx.recv().await {
                Ok(n) => seen.push(n),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "not done within the deadline; saw {seen:#?}"
    );
    seen
}
