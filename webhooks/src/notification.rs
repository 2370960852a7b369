//! [`Notification`]: what happens to deliveries, as it happens, for applications and tests.

use std::time::{Duration, SystemTime};

use crate::store::AttemptErrorKind;
use crate::subscription::DisableReason;
use crate::{DeliveryId, MessageId, SubscriptionId};

/// A lifecycle event of the delivery runtime, received from `Webhooks::notifications`.
///
/// ```no_run
/// # async fn run(hooks: webhooks::Webhooks) {
/// use webhooks::Notification;
///
/// let mut notifications = hooks.notifications();
/// while let Ok(notification) = notifications.recv().await {
///     if let Notification::Exhausted { delivery, .. } = notification {
///         tracing::warn!(%delivery, "gave up on a webhook");
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// An endpoint answered 2xx.
    Delivered {
        /// The delivery (`dlv_…`): look it up with `Webhooks::delivery` and its attempts.
        delivery: DeliveryId,
        /// The message delivered: the `webhook-id` the receiver saw.
        message: MessageId,
        /// The subscription it went to.
        subscription: SubscriptionId,
        /// Which attempt succeeded (1 for the first).
        attempt: u32,
        /// The status received.
        status: u16,
        /// How long the request took.
        latency: Duration,
    },
    /// An attempt failed and another is scheduled.
    AttemptFailed {
        /// The delivery (`dlv_…`): look it up with `Webhooks::delivery` and its attempts.
        delivery: DeliveryId,
        /// The message delivered: the `webhook-id` the receiver saw.
        message: MessageId,
        /// The subscription it went to.
        subscription: SubscriptionId,
        /// Which attempt failed.
        attempt: u32,
        /// The status received, if an answer came.
        status: Option<u16>,
        /// Why it failed.
        error: AttemptErrorKind,
        /// When the next attempt is due.
        next_attempt_at: SystemTime,
    },
    /// The last attempt failed: the delivery is exhausted (kept, and recoverable).
    Exhausted {
        /// The delivery (`dlv_…`): look it up with `Webhooks::delivery` and its attempts.
        delivery: DeliveryId,
        /// The message delivered: the `webhook-id` the receiver saw.
        message: MessageId,
        /// The subscription it went to.
        subscription: SubscriptionId,
        /// How many attempts were made, all failed.
        attempts: u32,
    },
    /// A delivery will not be attempted further because its subscription is disabled.
    Skipped {
        /// The delivery (`dlv_…`): look it up with `Webhooks::delivery` and its attempts.
        delivery: DeliveryId,
        /// The message delivered: the `webhook-id` the receiver saw.
        message: MessageId,
        /// The subscription it went to.
        subscription: SubscriptionId,
    },
    /// A subscription was disabled (410 Gone, or auto-disable after repeated failure).
    SubscriptionDisabled {
        /// The subscription now disabled: `enable` or `recover` it once its endpoint works.
        subscription: SubscriptionId,
        /// Why it was disabled.
        reason: DisableReason,
    },
}
