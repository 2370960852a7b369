//! [`SendOptions`]: what `Webhooks::send_with` takes beside the event.

use crate::Error;
use crate::message::{MAX_ORDERING_KEY_LEN, check_key};

/// The longest idempotency key allowed, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

/// Options of one send: an idempotency key, an ordering key.
///
/// ```
/// use webhooks::SendOptions;
///
/// let options = SendOptions::new()
///     .idempotency_key("order-42:paid") // a retried send stores the message once
///     .ordering_key("order-42"); // FIFO with the other messages of order 42
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// See [`idempotency_key`](Self::idempotency_key).
    pub idempotency_key: Option<String>,
    /// See [`ordering_key`](Self::ordering_key).
    pub ordering_key: Option<String>,
}

impl SendOptions {
    /// No options: what `send` does.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the message once per key: a send with a key that a message was stored with
    /// within the idempotency window (`Builder::idempotency_window`, 24 h by default) stores
    /// nothing and returns that first message's id. This is what makes "send after my own
    /// commit, and send again after a crash" safe. Keys are shared by every process on the
    /// store; at most [`MAX_IDEMPOTENCY_KEY_LEN`] bytes.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the message's ordering key, replacing the one the event gives (see
    /// `Message::with_ordering_key`).
    #[must_use]
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Checks the keys' lengths.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(key) = &self.idempotency_key {
            check_key("idempotency key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
        }
        if let Some(key) = &self.ordering_key {
            check_key("ordering key", key, MAX_ORDERING_KEY_LEN)?;
        }
        Ok(())
    }
}
