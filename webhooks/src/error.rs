//! [`Error`]: what can go wrong when using the library, as a precise enum.

use crate::SubscriptionId;
use crate::ssrf::Blocked;
use crate::store::StoreError;

/// An error from the `webhooks` API.
///
/// Each variant says what went wrong and carries the offending input, so that nothing has to be
/// guessed from a message; the predicates ([`is_not_found`](Self::is_not_found),
/// [`is_conflict`](Self::is_conflict), [`is_invalid_input`](Self::is_invalid_input),
/// [`is_store`](Self::is_store), [`is_shut_down`](Self::is_shut_down)) sort them for a program
/// that branches. (What happened to a delivery is not an error of the API: see `Notification`
/// and the delivery log.)
///
/// ```
/// # use webhooks::Subscription;
/// let error = Subscription::new("ftp://example.com").unwrap_err();
/// assert!(error.is_invalid_input());
/// assert!(!error.is_store());
/// ```
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
    /// A subscription's event pattern matches no event type of the runtime's catalog
    /// (`Builder::catalog`): most likely a typo.
    #[error(
        "event pattern {pattern:?} matches no event type in the catalog{}",
        suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default()
    )]
    UnknownEventType {
        /// The pattern given.
        pattern: String,
        /// The nearest event name (or `resource:*`) of the catalog, if one is close.
        suggestion: Option<String>,
    },
    /// A subscription header cannot be sent.
    #[error("invalid subscription header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subscription was given a key that cannot sign: an Ed25519 public key (`whpk_`), which
    /// only verifies. Give the subscription the signing key (`whsk_`) and its endpoint the public
    /// key.
    #[error(
        "a subscription signs its requests, so it needs a `whsec_` secret or a `whsk_` signing \
         key, not an {kind}, which only verifies"
    )]
    SecretCannotSign {
        /// The kind given, [`SecretKind::Ed25519PublicKey`](crate::signing::SecretKind).
        kind: crate::signing::SecretKind,
    },
    /// A setting is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting, as the builder method that sets it is named (`lease`, `rate_limit`).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An ordering or idempotency key cannot be used.
    #[error("invalid {kind} {key:?}: {reason}")]
    InvalidKey {
        /// `ordering key` or `idempotency key`.
        kind: &'static str,
        /// The key (its first 64 characters).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The message's body is larger than `Builder::max_message_size` allows. Nothing was
    /// stored.
    #[error(
        "the message of event `{event_type}` is {size} bytes; at most {limit} are accepted \
         (`Builder::max_message_size`)"
    )]
    MessageTooLarge {
        /// The event name.
        event_type: String,
        /// The body's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
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

impl Error {
    /// A setting out of range.
    pub(crate) fn config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            setting,
            reason: reason.into(),
        }
    }

    /// Whether a subscription, delivery or message named in the call does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::SubscriptionNotFound(_) | Error::DeliveryNotFound(_) => true,
            Error::Store(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// Whether the call conflicts with the state of what it names: a delivery in flight, a
    /// disabled subscription, an id already taken.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::SubscriptionDisabled(_) => true,
            Error::Store(e) => e.is_conflict(),
            _ => false,
        }
    }

    /// Whether the input was refused: an event, URL, pattern, header, key, setting or size
    /// that is not allowed. Calling again with the same input fails again.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::Serialize { .. }
                | Error::InvalidEventType { .. }
                | Error::InvalidUrl { .. }
                | Error::Blocked(_)
                | Error::InvalidPattern { .. }
                | Error::UnknownEventType { .. }
                | Error::InvalidHeader { .. }
                | Error::SecretCannotSign { .. }
                | Error::InvalidConfig { .. }
                | Error::InvalidKey { .. }
                | Error::MessageTooLarge { .. }
        )
    }

    /// Whether the store (the database) failed: usually worth retrying later.
    pub fn is_store(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_backend() || e.is_stale())
    }

    /// Whether the runtime was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Error::ShutDown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entity;

    #[test]
    fn predicates_sort_every_kind() {
        let missing = Error::Store(StoreError::not_found(Entity::Delivery, "dlv_1"));
        assert!(missing.is_not_found() && !missing.is_store() && !missing.is_conflict());
        let busy = Error::Store(StoreError::conflict(
            Entity::Delivery,
            "dlv_1",
            "is in flight",
        ));
        assert!(busy.is_conflict() && !busy.is_not_found());
        let backend = Error::Store(StoreError::backend("connection reset"));
        assert!(backend.is_store() && !backend.is_invalid_input());
        let config = Error::config("lease", "too short");
        assert!(config.is_invalid_input());
        assert_eq!(config.to_string(), "invalid setting `lease`: too short");
        assert!(Error::ShutDown.is_shut_down());
        assert!(Error::SubscriptionNotFound(SubscriptionId::new()).is_not_found());
    }
}
