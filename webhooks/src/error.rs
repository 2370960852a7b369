//! [`Error`]: what can go wrong when using the library, as a precise enum.

use crate::SubscriptionId;
use crate::ssrf::Blocked;
use crate::store::StoreError;

/// An error from the `webhooks` API.
///
/// Each variant says what went wrong and carries the offending input, so that nothing has to be
/// guessed from a message. (What happened to a delivery is not an error of the API: see
/// `Notification` and the delivery log.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event's data could not be serialized to JSON.
    #[error("could not serialize the data of event `{event_type}`: {source}")]
    Serialize {
        /// The event name.
        event_type: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A hand-written `WebhookEvent` impl returned an invalid event name.
    #[error("invalid event type {event_type:?}: {reason}")]
    InvalidEventType {
        /// The name returned.
        event_type: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subscription's URL is not an absolute http(s) URL with a host.
    #[error("invalid subscription URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The network policy (SSRF guard) refuses the destination.
    #[error(transparent)]
    Blocked(#[from] Blocked),
    /// An event pattern is malformed.
    #[error("invalid event pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subscription header cannot be sent.
    #[error("invalid subscription header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// No subscription has this id.
    #[error("subscription {0} not found")]
    SubscriptionNotFound(SubscriptionId),
    /// No delivery has this id.
    #[error("delivery {0} not found")]
    DeliveryNotFound(crate::DeliveryId),
    /// The subscription is disabled: enable it (or recover) first.
    #[error("subscription {0} is disabled; enable it or use `recover`")]
    SubscriptionDisabled(SubscriptionId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `shutdown` was called: nothing more is accepted.
    #[error("the webhooks runtime is shut down")]
    ShutDown,
}
