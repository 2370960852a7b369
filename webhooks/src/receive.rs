//! The receiving side: [`Event`], a body read back into the type that sent it, and
//! [`Verifier::event`], which verifies a request before reading it.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{DeserializeOwned, Error as _};
use serde_json::value::RawValue;

use crate::WebhookEvent;
use crate::signing::{HEADER_ID, HEADER_TIMESTAMP, Verifier, VerifyError};

/// A webhook as its receiver gets it: the event name, the id and time the body carries, and the
/// data read back into `T`, the type the sender derived [`WebhookEvent`] on (with serde's
/// `Deserialize` too).
///
/// Read it with [`Verifier::event`], which first checks the signature and the timestamp, or with
/// [`Event::parse`] for a body already verified (or in tests). Both envelopes are read: the
/// compact `{"id","event","data"}` and the Standard Webhooks `{"type","timestamp","data"}`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use webhooks::{Envelope, Event, Message, WebhookEvent};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
/// #[webhook(resource = "bear_attack")]
/// enum BearAttack {
///     #[webhook(action = "reported")]
///     Reported { county: String, severity: u8 },
///     #[webhook(action = "archived")]
///     Archived,
/// }
///
/// let attack = BearAttack::Reported { county: "denver".into(), severity: 3 };
/// let message = Message::new(&attack)?;
/// // {"id":"msg_…","event":"bear_attack:reported","data":{"county":"denver","severity":3}}
/// let event = Event::<BearAttack>::parse(message.body())?;
/// assert_eq!(event.event_type(), "bear_attack:reported");
/// assert_eq!(event.id(), Some(message.id().to_string().as_str()));
/// assert_eq!(event.data, attack);
///
/// let message = Message::with_envelope(&BearAttack::Archived, Envelope::Standard)?;
/// let event = Event::<BearAttack>::parse(message.body())?;
/// assert_eq!(event.timestamp(), Some(message.timestamp()));
/// assert_eq!(event.data, BearAttack::Archived);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event<T> {
    id: Option<String>,
    event_type: &'static str,
    timestamp: Option<SystemTime>,
    /// The event's data, as `T`.
    pub data: T,
}

impl<T> Event<T> {
    /// The message id: the compact envelope's `id`, or else (when read by [`Verifier::event`])
    /// the `webhook-id` header. Retries of a message share it: deduplicate by it.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event name, such as `bear_attack:reported`: one of `T::EVENT_TYPES`.
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// When the message was created: the Standard envelope's `timestamp`, or else (when read by
    /// [`Verifier::event`]) the `webhook-timestamp` header, the time of the attempt in whole
    /// seconds.
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.timestamp
    }

    /// The data, without the rest.
    pub fn into_data(self) -> T {
        self.data
    }
}

impl<T: WebhookEvent + DeserializeOwned> Event<T> {
    /// Reads a body in either envelope, without verifying anything: use it on a body already
    /// verified, or in tests; receivers use [`Verifier::event`].
    ///
    /// The event name must be one of `T::EVENT_TYPES`. A struct's data is `T` as serde reads
    /// it; an enum's is the content of the variant whose event it is (how the derive writes it).
    ///
    /// # Errors
    ///
    /// [`ParseEventError::Malformed`] if the body is not JSON or not an envelope,
    /// [`ParseEventError::UnknownEvent`] if `T` has no such event, [`ParseEventError::Data`] if
    /// the data does not deserialize as that event of `T`.
    pub fn parse(body: &[u8]) -> Result<Event<T>, ParseEventError> {
        let envelope = Body::read(body).map_err(ParseEventError::Malformed)?;
        let Some(event_type) = T::EVENT_TYPES
            .iter()
            .copied()
            .find(|known| *known == envelope.event_type)
        else {
            return Err(ParseEventError::UnknownEvent {
                event_type: envelope.event_type.into_owned(),
                expected: T::EVENT_TYPES,
            });
        };
        let data_error = |source| ParseEventError::Data { event_type, source };
        let mut deserializer = serde_json::Deserializer::from_str(envelope.data.get());
        let data = T::deserialize_data(event_type, &mut deserializer).map_err(data_error)?;
        // An enum read by its own representation (`#[serde(tag = "...")]`) may name another
        // variant than the event does: the two must agree.
        let named = data.event_type();
        if named != event_type {
            return Err(data_error(serde_json::Error::custom(format_args!(
                "the data is a `{named}` event"
            ))));
        }
        Ok(Event {
            id: envelope.id.map(Cow::into_owned),
            event_type,
            timestamp: envelope.timestamp,
            data,
        })
    }
}

/// The members of either envelope, before the data is read.
struct Body<'a> {
    id: Option<Cow<'a, str>>,
    event_type: Cow<'a, str>,
    timestamp: Option<SystemTime>,
    data: &'a RawValue,
}

/// Both envelopes' members as serde reads them; unknown members are ignored.
#[derive(serde::Deserialize)]
struct Members<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    type_: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "rfc3339")]
    timestamp: Option<SystemTime>,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl<'a> Body<'a> {
    fn read(body: &'a [u8]) -> Result<Body<'a>, serde_json::Error> {
        // An object only: serde would also take a struct's members as an array.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde_json::Error::custom(
                "expected a JSON object: {\"id\",\"event\",\"data\"} or \
                 {\"type\",\"timestamp\",\"data\"}",
            ));
        }
        let members: Members<'a> = serde_json::from_slice(body)?;
        let event_type = match (members.event, members.type_) {
            (Some(event), None) => event,
            (None, Some(type_)) => type_,
            (Some(_), Some(_)) => {
                return Err(serde_json::Error::custom(
                    "both `event` (compact envelope) and `type` (standard envelope)",
                ));
            }
            (None, None) => {
                return Err(serde_json::Error::custom(
                    "missing field `event` (compact envelope) or `type` (standard envelope)",
                ));
            }
        };
        Ok(Body {
            id: members.id,
            event_type,
            timestamp: members.timestamp,
            data: members.data,
        })
    }
}

/// The Standard envelope's `timestamp`: RFC 3339 text.
fn rfc3339<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SystemTime>, D::Error> {
    let text = <Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    crate::time::parse_rfc3339(&text)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format_args!("`timestamp` {text:?} is not RFC 3339")))
}

/// Why a body could not be read as an [`Event`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseEventError {
    /// The body is not JSON, or not an object with the members of either envelope: a string
    /// `event` (compact) or `type` (standard), and `data`. A receiver answers 400.
    #[error("the body is not a webhook envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The event name is not one of the type's `EVENT_TYPES`: an event this receiver does not
    /// know (a newer sender, or another type's event).
    #[error("unknown event `{event_type}`: expected {}", OneOf(expected))]
    UnknownEvent {
        /// The event name the body carries.
        event_type: String,
        /// The names the type knows, its `EVENT_TYPES`.
        expected: &'static [&'static str],
    },
    /// The data does not deserialize as the event's type.
    #[error("the data of event `{event_type}` does not match its type: {source}")]
    Data {
        /// The event name.
        event_type: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}

impl ParseEventError {
    /// Whether the body is not JSON or not an envelope.
    pub fn is_malformed(&self) -> bool {
        matches!(self, ParseEventError::Malformed(_))
    }

    /// Whether the event name is not one the type knows.
    pub fn is_unknown_event(&self) -> bool {
        matches!(self, ParseEventError::UnknownEvent { .. })
    }

    /// Whether the data does not deserialize as the event's type.
    pub fn is_data(&self) -> bool {
        matches!(self, ParseEventError::Data { .. })
    }

    /// The event name the body carries, when it got that far.
    pub fn event_type(&self) -> Option<&str> {
        match self {
            ParseEventError::Malformed(_) => None,
            ParseEventError::UnknownEvent { event_type, .. } => Some(event_type),
            ParseEventError::Data { event_type, .. } => Some(event_type),
        }
    }
}

/// `` `a`, `b` or `c` ``, or `none` for a type without events.
struct OneOf<'a>(&'a [&'a str]);

impl fmt::Display for OneOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("none"),
            [names @ .., last] => {
                for (i, name) in names.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}`{name}`")?;
                }
                let sep = if names.is_empty() { "" } else { " or " };
                write!(f, "{sep}`{last}`")
            }
        }
    }
}

/// Why [`Verifier::event`] rejected a request: it failed verification, or its body could not be
/// read. The predicates sort them, and [`status`](EventError::status) suggests an answer.
///
/// ```
/// # use webhooks::{signing::VerifyError, EventError};
/// let error = EventError::from(VerifyError::SignatureMismatch);
/// assert!(error.is_signature());
/// assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The request is not authentic or not fresh: do not act on its body.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The request is authentic, but its body is not an event of the type.
    #[error(transparent)]
    Parse(#[from] ParseEventError),
}

impl EventError {
    /// Whether verification failed, for any reason: the body must not be acted on.
    pub fn is_verify(&self) -> bool {
        matches!(self, EventError::Verify(_))
    }

    /// Whether the signature is absent from `webhook-signature` or matches no secret.
    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            EventError::Verify(VerifyError::NoSignatures | VerifyError::SignatureMismatch)
        )
    }

    /// Whether `webhook-timestamp` is not a timestamp, or lies outside the tolerance (late, a
    /// replay, or a skewed clock).
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self,
            EventError::Verify(
                VerifyError::InvalidTimestamp
                    | VerifyError::TimestampTooOld { .. }
                    | VerifyError::TimestampTooNew { .. }
            )
        )
    }

    /// Whether one of the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers is
    /// missing or not visible ASCII.
    pub fn is_missing_header(&self) -> bool {
        matches!(
            self,
            EventError::Verify(VerifyError::MissingHeader(_) | VerifyError::InvalidHeader(_))
        )
    }

    /// Whether the body is not JSON or not an envelope.
    pub fn is_malformed(&self) -> bool {
        matches!(self, EventError::Parse(e) if e.is_malformed())
    }

    /// Whether the event name is not one the type knows.
    pub fn is_unknown_event(&self) -> bool {
        matches!(self, EventError::Parse(e) if e.is_unknown_event())
    }

    /// Whether the data does not deserialize as the event's type.
    pub fn is_data(&self) -> bool {
        matches!(self, EventError::Parse(e) if e.is_data())
    }

    /// A status to answer with: 401 when verification failed, 400 for a body that is not an
    /// envelope, 422 for an unknown event or data of the wrong shape, and 500 for a verifier
    /// without secrets (a configuration error). Senders retry any of them; a receiver that
    /// wants no retries of events it does not know answers those with a 2xx instead.
    pub fn status(&self) -> http::StatusCode {
        match self {
            EventError::Verify(VerifyError::NoSecrets) => http::StatusCode::INTERNAL_SERVER_ERROR,
            EventError::Verify(_) => http::StatusCode::UNAUTHORIZED,
            EventError::Parse(ParseEventError::Malformed(_)) => http::StatusCode::BAD_REQUEST,
            EventError::Parse(_) => http::StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl Verifier {
    /// Verifies a request against the current time, then reads its body as an event of `T`:
    /// what a receiver's handler does first.
    ///
    /// `body` must be the raw bytes received. The event's [`id`](Event::id) and
    /// [`timestamp`](Event::timestamp) fall back to the `webhook-id` and `webhook-timestamp`
    /// headers where the envelope has none.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use webhooks::{Event, Message, Secret, Verifier, WebhookEvent};
    /// use webhooks::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
    ///
    /// #[derive(Serialize, Deserialize, WebhookEvent)]
    /// #[webhook(resource = "random_number", action = "generate")]
    /// struct RandomNumber(u32);
    ///
    /// // The handler: 204 when accepted, else the error's suggested status.
    /// fn handle(verifier: &Verifier, headers: &http::HeaderMap, body: &[u8]) -> u16 {
    ///     match verifier.event::<RandomNumber>(headers, body) {
    ///         Ok(event) => {
    ///             assert_eq!(event.data.0, 863); // act on it, deduplicating by `event.id()`
    ///             204
    ///         }
    ///         Err(error) => error.status().as_u16(),
    ///     }
    /// }
    ///
    /// // A request as the sender builds it.
    /// let secret = Secret::generate();
    /// let message = Message::new(&RandomNumber(863))?;
    /// let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    /// let timestamp = i64::try_from(timestamp.as_secs())?;
    /// let id = message.id().to_string();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert(HEADER_ID, id.parse()?);
    /// headers.insert(HEADER_TIMESTAMP, timestamp.to_string().parse()?);
    /// headers.insert(HEADER_SIGNATURE, secret.sign(&id, timestamp, message.body()).parse()?);
    ///
    /// let verifier = Verifier::new(secret);
    /// assert_eq!(handle(&verifier, &headers, message.body()), 204);
    /// assert_eq!(handle(&verifier, &headers, br#"{"event":"x","data":1}"#), 401);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventError::Verify`] as [`Verifier::verify_headers`], checked first; then
    /// [`EventError::Parse`] as [`Event::parse`].
    pub fn event<T: WebhookEvent + DeserializeOwned>(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Event<T>, EventError> {
        self.event_at(headers, body, SystemTime::now())
    }

    /// Like [`Verifier::event`], as if the current time were `now`.
    ///
    /// # Errors
    ///
    /// See [`Verifier::event`].
    pub fn event_at<T: WebhookEvent + DeserializeOwned>(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Event<T>, EventError> {
        self.verify_headers_at(headers, body, now)?;
        let mut event = Event::<T>::parse(body)?;
        // Verified: both headers are there, as visible ASCII, the timestamp as digits.
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        if event.id.is_none() {
            event.id = header(HEADER_ID).map(str::to_owned);
        }
        if event.timestamp.is_none() {
            event.timestamp = header(HEADER_TIMESTAMP)
                .and_then(|t| t.parse::<u64>().ok())
                .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
        }
        Ok(event)
    }
}
