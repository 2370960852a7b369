//! [`Error`]: what can go wrong when using the library, as a precise enum.

/// An error from the `webhooks` API.
///
/// Each variant says what went wrong and carries the offending input, so that nothing has to be
/// guessed from a message.
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
}
