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
        /// The delivery.
        delivery: DeliveryId,
        /// Its message.
        message: MessageId,
        /// Its subscription.
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
        /// The delivery.
        delivery: DeliveryId,
        /// Its message.
        message: MessageId,
        /// Its subscription.
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
        /// The delivery.
        delivery: DeliveryId,
        /// Its message.
        message: MessageId,
        /// Its subscription.
        subscription: SubscriptionId,
        /// Attempts made.
        attempts: u32,
    },
    /// A delivery will not be attempted further because its subscription is disabled.
    Skipped {
        /// The delivery.
        delivery: DeliveryId,
        /// Its message.
        message: MessageId,
        /// Its subscription.
        subscription: SubscriptionId,
    },
    /// A subscription was disabled (410 Gone, or auto-disable after repeated failure).
    SubscriptionDisabled {
        /// The subscription.
        subscription: SubscriptionId,
        /// Why.
        reason: DisableReason,
    },
}
