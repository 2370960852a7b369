//! The delivery records users read: [`Delivery`] and its [`DeliveryStatus`], each
//! [`Attempt`] and its [`AttemptOutcome`], and the delivery log's [`DeliveryQuery`], [`Cursor`]
//! and [`Page`]. Stores write them; `Webhooks::delivery_log`, `attempts` and `undelivered` read
//! them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::{DeliveryId, MessageId, SubscriptionId};

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Pending,
    /// Claimed by a worker; an attempt is under way.
    InFlight,
    /// A 2xx answer was received.
    Delivered,
    /// An attempt failed; another is scheduled. (A delivery requeued by hand with
    /// `redeliver` or `recover` is [`Pending`](Self::Pending) until its next attempt.)
    Failed,
    /// Every attempt of the retry policy failed. Kept, and recoverable.
    Exhausted,
    /// Not attempted (further) because its subscription is disabled. Kept, and recoverable.
    Skipped,
}

impl DeliveryStatus {
    /// The lowercase name used in stores and output: `pending`, `in_flight`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Exhausted => "exhausted",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    /// Whether nothing more will happen to it without a redelivery or recovery.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Exhausted | DeliveryStatus::Skipped
        )
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Its id (`dlv_…`), one per message and subscription.
    pub id: DeliveryId,
    /// The message delivered.
    pub message_id: MessageId,
    /// The subscription delivered to.
    pub subscription_id: SubscriptionId,
    /// The message's event name.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, if one is.
    pub next_attempt_at: Option<SystemTime>,
    /// When it was created (with the message).
    pub created_at: SystemTime,
    /// When the last attempt was made.
    pub last_attempt_at: Option<SystemTime>,
}

/// Why an attempt failed, in a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptErrorKind {
    /// The endpoint answered with a status other than 2xx (3xx included: redirects are never
    /// followed).
    Status,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, reset, DNS, TLS).
    Connect,
    /// The destination is not allowed by the network policy (SSRF guard).
    Blocked,
    /// The request failed in another way (the answer was malformed or cut off).
    Request,
}

impl AttemptErrorKind {
    /// The lowercase name used in stores and output.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptErrorKind::Status => "status",
            AttemptErrorKind::Timeout => "timeout",
            AttemptErrorKind::Connect => "connect",
            AttemptErrorKind::Blocked => "blocked",
            AttemptErrorKind::Request => "request",
        }
    }

    /// The kind with this [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Status,
            Self::Timeout,
            Self::Connect,
            Self::Blocked,
            Self::Request,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for AttemptErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP request of a delivery, and what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    /// When the request started.
    pub at: SystemTime,
    /// How long until the answer (or the failure).
    pub latency: Duration,
    /// The HTTP status, if an answer came.
    pub status_code: Option<u16>,
    /// Why it failed; `None` for a 2xx.
    pub error: Option<AttemptErrorKind>,
    /// A description of the failure (the transport error, or the policy's refusal).
    pub error_message: Option<String>,
    /// The start of the response body (at most the configured cap, 16 KiB by default).
    pub response_body: Bytes,
}

impl Attempt {
    /// The record of attempt `number` of a delivery, started at `at`, that took `latency` and
    /// came to `outcome`.
    pub fn new(
        delivery_id: DeliveryId,
        number: u32,
        at: SystemTime,
        latency: Duration,
        outcome: AttemptOutcome,
    ) -> Self {
        let (status_code, error, error_message, response_body) = match outcome {
            AttemptOutcome::Answered { status, body } => {
                let failed = !(200..300).contains(&status);
                (
                    Some(status),
                    failed.then_some(AttemptErrorKind::Status),
                    None,
                    body,
                )
            }
            AttemptOutcome::Failed { kind, message } => {
                (None, Some(kind), Some(message), Bytes::new())
            }
        };
        Attempt {
            delivery_id,
            number,
            at,
            latency,
            status_code,
            error,
            error_message,
            response_body,
        }
    }

    /// Whether the endpoint answered with a 2xx.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What came of one request: the endpoint's answer, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The endpoint answered (any status: 2xx is a success, anything else a failure of kind
    /// [`AttemptErrorKind::Status`]).
    Answered {
        /// The HTTP status.
        status: u16,
        /// The start of the response body, as kept.
        body: Bytes,
    },
    /// No answer came.
    Failed {
        /// Why, in a word.
        kind: AttemptErrorKind,
        /// The transport error, or the policy's refusal.
        message: String,
    },
}

/// Which deliveries to list: every filter given must hold. Newest first, one page at a time.
///
/// ```
/// use webhooks::store::{DeliveryQuery, DeliveryStatus};
///
/// let query = DeliveryQuery::new()
///     .status(DeliveryStatus::Exhausted)
///     .status(DeliveryStatus::Skipped)
///     .event_type("bear_attack:reported")
///     .label("county", "denver")
///     .subscription_label("tenant", "alice")
///     .limit(50);
/// # let _ = query;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryQuery {
    /// Only this subscription's.
    pub subscription: Option<SubscriptionId>,
    /// Only these statuses (empty: any).
    pub statuses: Vec<DeliveryStatus>,
    /// Only this event name.
    pub event_type: Option<String>,
    /// Only messages with this label and value: the *message's* labels (what the event
    /// carries), whichever subscription the delivery went to.
    pub label: Option<(String, String)>,
    /// Only deliveries to subscriptions carrying every one of these labels with its value
    /// (empty: any): the *subscription's* labels, whatever labels the message carries. A
    /// subscription without labels receives messages of every label, so filter on this, not
    /// on [`label`](Self::label), to list what went to one tenant's subscriptions.
    pub subscription_labels: Vec<(String, String)>,
    /// Only deliveries created at or after this time.
    pub since: Option<SystemTime>,
    /// Only deliveries created before this time.
    pub until: Option<SystemTime>,
    /// At most this many (default 100; at most 1000).
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl DeliveryQuery {
    /// Every delivery, newest first, 100 a page.
    pub fn new() -> Self {
        DeliveryQuery {
            limit: 100,
            ..Default::default()
        }
    }

    /// Everything exhausted or skipped: what did not reach its endpoint and will not without
    /// a redelivery or recovery.
    pub fn undelivered() -> Self {
        DeliveryQuery::new()
            .status(DeliveryStatus::Exhausted)
            .status(DeliveryStatus::Skipped)
    }

    /// Only this subscription's.
    #[must_use]
    pub fn subscription(mut self, id: SubscriptionId) -> Self {
        self.subscription = Some(id);
        self
    }

    /// Also this status (statuses given are alternatives).
    #[must_use]
    pub fn status(mut self, status: DeliveryStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only this event name.
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Only messages carrying this label with this value (the message's labels; see
    /// [`subscription_label`](Self::subscription_label) for the subscription's).
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.label = Some((name.into(), value.into()));
        self
    }

    /// Also only deliveries to subscriptions that carry this label with this value (labels
    /// given are all required). This filters by the subscription's labels, not the message's
    /// ([`label`](Self::label)): a subscription without labels that received the same message
    /// is left out.
    #[must_use]
    pub fn subscription_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.subscription_labels.push((name.into(), value.into()));
        self
    }

    /// Only deliveries created in `[since, until)`.
    #[must_use]
    pub fn between(mut self, since: SystemTime, until: SystemTime) -> Self {
        self.since = Some(since);
        self.until = Some(until);
        self
    }

    /// At most this many a page (clamped to 1..=1000).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The page after the one that returned this cursor.
    #[must_use]
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// The page size actually used.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, 1000)
    }

    /// Whether a delivery passes the filters (not the cursor). Stores that cannot filter in
    /// their query language use this; the SQL stores filter in SQL.
    pub fn matches(&self, delivery: &Delivery, labels: &crate::Labels) -> bool {
        self.subscription
            .is_none_or(|s| s == delivery.subscription_id)
            && (self.statuses.is_empty() || self.statuses.contains(&delivery.status))
            && self
                .event_type
                .as_deref()
                .is_none_or(|e| e == delivery.event_type)
            && self
                .label
                .as_ref()
                .is_none_or(|(n, v)| labels.get(n) == Some(v.as_str()))
            && self.since.is_none_or(|t| delivery.created_at >= t)
            && self.until.is_none_or(|t| delivery.created_at < t)
    }

    /// Whether a delivery's subscription, with these labels, passes the
    /// [`subscription_labels`](Self::subscription_labels) filter: it carries every one. Stores
    /// that cannot filter in their query language use this beside [`matches`](Self::matches).
    pub fn matches_subscription(&self, subscription_labels: &crate::Labels) -> bool {
        self.subscription_labels
            .iter()
            .all(|(n, v)| subscription_labels.get(n) == Some(v.as_str()))
    }
}

/// Where a page of [`DeliveryQuery`] results ended: the last delivery's creation time and id.
/// Printed and parsed as text, so that a CLI or a web page can hand it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Creation time of the last delivery of the page, in unix milliseconds.
    pub created_at_ms: i64,
    /// The id of that delivery (ties between equal times are broken by id).
    pub id: DeliveryId,
}

impl Cursor {
    /// The cursor after `delivery`.
    pub fn after(delivery: &Delivery) -> Self {
        Cursor {
            created_at_ms: crate::time::unix_millis(delivery.created_at),
            id: delivery.id,
        }
    }

    /// Whether `delivery` comes after this cursor in newest-first order.
    pub fn precedes(&self, delivery: &Delivery) -> bool {
        let at = crate::time::unix_millis(delivery.created_at);
        (at, delivery.id) < (self.created_at_ms, self.id)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at_ms, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = crate::ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || crate::ParseIdError::new("cursor", "<unix millis>.dlv_", s);
        let (at, id) = s.split_once('.').ok_or_else(invalid)?;
        let created_at_ms = at.parse().map_err(|_| invalid())?;
        let id = id.parse().map_err(|_| invalid())?;
        Ok(Cursor { created_at_ms, id })
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The results, in the query's order.
    pub items: Vec<T>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page of `items`, followed by the page at `next` if there may be one.
    pub fn new(items: Vec<T>, next: Option<Cursor>) -> Self {
        Page { items, next }
    }
}
