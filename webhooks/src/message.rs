//! [`Message`]: an event turned into the exact body receivers get, built once per event.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;

use crate::event::Data;
use crate::{Error, Labels, MessageId, WebhookEvent, time};

/// The shape of the body around the event's data, chosen at run time.
///
/// ```
/// # use serde::Serialize;
/// # use webhooks::{Envelope, Message, WebhookEvent};
/// # #[derive(Serialize, WebhookEvent)]
/// # #[webhook(resource = "random_number", action = "generate")]
/// # struct RandomNumber(u32);
/// let compact = Message::new(&RandomNumber(863))?;
/// let expected = format!(r#"{{"id":"{}","event":"random_number:generate","data":863}}"#, compact.id());
/// assert_eq!(compact.body(), expected.as_bytes());
///
/// let standard = Message::with_envelope(&RandomNumber(863), Envelope::Standard)?;
/// assert!(standard.body().starts_with(br#"{"type":"random_number:generate","timestamp":""#));
/// # Ok::<(), webhooks::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Envelope {
    /// `{"id":"msg_...","event":"random_number:generate","data":863}`: the shape webhooks.rb
    /// sent. The default.
    #[default]
    Compact,
    /// `{"type":"random_number:generate","timestamp":"2026-11-24T04:30:43.123Z","data":863}`:
    /// the Standard Webhooks recommendation. The id travels in the `webhook-id` header.
    Standard,
}

/// An event, serialized once into the body every subscriber receives.
///
/// Build it with [`Message::new`]; the runtime does this in `send`. The body is built once and
/// shared (cheaply cloned [`Bytes`]) by every delivery, whatever the fan-out.
#[derive(Clone)]
pub struct Message {
    id: MessageId,
    timestamp: SystemTime,
    event_type: Cow<'static, str>,
    labels: Labels,
    /// Messages with the same key reach an ordered subscription first in, first out.
    ordering_key: Option<Box<str>>,
    body: Bytes,
}

/// The longest ordering key allowed, in bytes: keys are indexed by the stores.
pub const MAX_ORDERING_KEY_LEN: usize = 256;

impl Message {
    /// Serializes `event` in the default [`Envelope::Compact`].
    ///
    /// Fails when the event's data cannot be serialized to JSON (say, a map with non-string
    /// keys, or a `Serialize` impl that returns an error) or when a hand-written
    /// [`WebhookEvent`] impl returns an invalid event name.
    pub fn new<E: WebhookEvent + ?Sized>(event: &E) -> Result<Self, Error> {
        Self::with_envelope(event, Envelope::Compact)
    }

    /// Serializes `event` in the given envelope.
    pub fn with_envelope<E: WebhookEvent + ?Sized>(
        event: &E,
        envelope: Envelope,
    ) -> Result<Self, Error> {
        let event_type = event.event_type();
        check_event_type(event_type)?;
        // An empty value orders nothing: the message joins the keyless queue.
        let ordering_key = match event.ordering_key().filter(|k| !k.is_empty()) {
            Some(key) => {
                check_key("ordering key", &key, MAX_ORDERING_KEY_LEN)?;
                Some(key.into_boxed_str())
            }
            None => None,
        };
        let id = MessageId::new();
        let timestamp = time::now_millis();
        // Most events fit: growing the buffer twice cost more than the room left unused.
        let mut body = Vec::with_capacity(256);
        // The envelope is written by hand around serde_json's output of the data: the keys are
        // constants, the event name is validated above, so no value here needs escaping.
        match envelope {
            Envelope::Compact => {
                body.extend_from_slice(b"{\"id\":\"");
                // Straight into the body: an id's text is ASCII, written without a String.
                let _ = std::io::Write::write_fmt(&mut body, format_args!("{id}"));
                body.extend_from_slice(b"\",\"event\":\"");
            }
            Envelope::Standard => {
                body.extend_from_slice(b"{\"type\":\"");
            }
        }
        body.extend_from_slice(event_type.as_bytes());
        if envelope == Envelope::Standard {
            body.extend_from_slice(b"\",\"timestamp\":\"");
            body.extend_from_slice(time::rfc3339(timestamp).as_bytes());
        }
        body.extend_from_slice(b"\",\"data\":");
        serde_json::to_writer(&mut body, &Data(event)).map_err(|source| Error::Serialize {
            event_type: event_type.to_owned(),
            source,
        })?;
        body.push(b'}');
        Ok(Message {
            id,
            timestamp,
            event_type: Cow::Borrowed(event_type),
            labels: event.labels(),
            ordering_key,
            body: Bytes::from(body),
        })
    }

    /// Reassembles a message from its stored parts (for [`Store`](crate) implementations).
    pub fn from_parts(
        id: MessageId,
        timestamp: SystemTime,
        event_type: impl Into<Cow<'static, str>>,
        labels: Labels,
        body: impl Into<Bytes>,
    ) -> Self {
        Message {
            id,
            timestamp,
            event_type: event_type.into(),
            labels,
            ordering_key: None,
            body: body.into(),
        }
    }

    /// The same message with an ordering key: an `ordered` subscription delivers the messages
    /// that share a key first in, first out, and those with different keys in parallel
    /// (messages without a key share one queue). Replaces the key the event gave, if any.
    ///
    /// Fails with [`Error::InvalidKey`] if the key is empty or longer than
    /// [`MAX_ORDERING_KEY_LEN`] bytes.
    ///
    /// ```
    /// # use serde::Serialize;
    /// # use webhooks::{Message, WebhookEvent};
    /// # #[derive(Serialize, WebhookEvent)]
    /// # #[webhook(resource = "order", action = "paid")]
    /// # struct OrderPaid { order: u64 }
    /// let message = Message::new(&OrderPaid { order: 42 })?.with_ordering_key("order-42")?;
    /// assert_eq!(message.ordering_key(), Some("order-42"));
    /// # Ok::<(), webhooks::Error>(())
    /// ```
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        check_key("ordering key", &key, MAX_ORDERING_KEY_LEN)?;
        self.ordering_key = Some(key.into_boxed_str());
        Ok(self)
    }

    /// The ordering key, if the message has one.
    pub fn ordering_key(&self) -> Option<&str> {
        self.ordering_key.as_deref()
    }

    /// The unique id, sent as `webhook-id`.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// When the message was created (millisecond precision).
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// The event name, such as `random_number:generate`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The event's labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The exact bytes receivers get (and that signatures cover).
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("timestamp", &time::rfc3339(self.timestamp))
            .field("event_type", &self.event_type)
            .field("labels", &self.labels)
            .field("ordering_key", &self.ordering_key)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// The longest event name allowed, in bytes (the derive enforces the same limit).
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Checks an ordering or idempotency key: not empty, at most `max` bytes.
pub(crate) fn check_key(kind: &'static str, key: &str, max: usize) -> Result<(), Error> {
    let reason = if key.is_empty() {
        "it is empty".to_owned()
    } else if key.len() > max {
        format!("it is longer than {max} bytes")
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey {
        kind,
        key: key.chars().take(64).collect(),
        reason,
    })
}

/// Checks a name from a hand-written [`WebhookEvent`] impl; derived ones are checked at compile
/// time with the same rules.
fn check_event_type(event_type: &str) -> Result<(), Error> {
    let reason = if event_type.is_empty() {
        "it is empty"
    } else if event_type.len() > MAX_EVENT_TYPE_LEN {
        "it is longer than 128 bytes"
    } else if !event_type
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':'))
    {
        "only lowercase ASCII letters, digits, `_`, `.` and `:` are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidEventType {
        event_type: event_type.to_owned(),
        reason,
    })
}
