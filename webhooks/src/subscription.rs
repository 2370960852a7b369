//! [`Subscription`]: an endpoint URL and the scope of events it receives.

use std::time::{Duration, SystemTime};

use crate::signing::Secret;
use crate::{Error, EventPattern, Labels, RetryPolicy, SubscriptionId};

/// A customer's endpoint: where to POST, which events (by name pattern and by label), how to sign
/// and how to deliver.
///
/// Build one with [`Subscription::new`] and the builder methods, then hand it to
/// `Webhooks::subscribe`, which checks it and stores it.
///
/// ```
/// use webhooks::{Secret, Subscription};
///
/// let sub = Subscription::new("https://example.com/hooks")?
///     .events(["random_number:*", "bear_attack:reported"])
///     .label("county", "denver")
///     .secret(Secret::generate())
///     .header("x-customer", "42")
///     .ordered(true);
/// assert_eq!(sub.url().as_str(), "https://example.com/hooks");
/// assert!(Subscription::new("not a url").is_err());
/// # Ok::<(), webhooks::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub(crate) id: SubscriptionId,
    pub(crate) url: url::Url,
    pub(crate) events: Vec<String>,
    pub(crate) labels: Labels,
    /// The current secret first, then previous ones that still sign until their expiry.
    pub(crate) secrets: Vec<(Secret, Option<SystemTime>)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) ordered: bool,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) description: Option<String>,
    pub(crate) created_at: SystemTime,
    pub(crate) disabled: Option<Disabled>,
}

/// Why and when a subscription was disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disabled {
    /// When it was disabled.
    pub at: SystemTime,
    /// Why it was disabled.
    pub reason: DisableReason,
}

/// Why a subscription was disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisableReason {
    /// Disabled through the API.
    Manual,
    /// The endpoint answered `410 Gone`.
    Gone,
    /// Every attempt failed for longer than the configured period.
    FailingSince(SystemTime),
    /// This many deliveries in a row were exhausted.
    ConsecutiveExhausted(u32),
}

impl std::fmt::Display for DisableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisableReason::Manual => f.write_str("disabled through the API"),
            DisableReason::Gone => f.write_str("the endpoint answered 410 Gone"),
            DisableReason::FailingSince(since) => {
                write!(
                    f,
                    "every attempt failed since {}",
                    crate::time::rfc3339(*since)
                )
            }
            DisableReason::ConsecutiveExhausted(n) => {
                write!(f, "{n} deliveries in a row were exhausted")
            }
        }
    }
}

/// Headers the library sets itself; a subscription may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

impl Subscription {
    /// A subscription to `url`, receiving every event (`*`), signed with a generated secret.
    ///
    /// Fails with [`Error::InvalidUrl`] unless `url` is an absolute `http` or `https` URL with a
    /// host. Whether the host is an allowed destination is checked by `Webhooks::subscribe`.
    pub fn new(url: impl AsRef<str>) -> Result<Self, Error> {
        let text = url.as_ref();
        let invalid = |reason: String| Error::InvalidUrl {
            url: text.to_owned(),
            reason,
        };
        let url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the scheme is `{}`; only http and https are delivered to",
                url.scheme()
            )));
        }
        if url.host().is_none() {
            return Err(invalid("it has no host".to_owned()));
        }
        Ok(Subscription {
            id: SubscriptionId::new(),
            url,
            events: Vec::new(),
            labels: Labels::new(),
            secrets: vec![(Secret::generate(), None)],
            headers: Vec::new(),
            ordered: false,
            rate_limit: None,
            max_in_flight: None,
            retry: None,
            description: None,
            created_at: crate::time::now_millis(),
            disabled: None,
        })
    }

    /// The event patterns to receive: exact names, `resource:*`, or `*` (see [`EventPattern`]).
    /// Without this call, every event. Checked by `Webhooks::subscribe`.
    #[must_use]
    pub fn events<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Scopes the subscription: an event is received only if it carries this label with this
    /// value. Several labels must all match.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value);
        self
    }

    /// The signing secret (a symmetric one is generated otherwise): a `whsec_` secret, or an
    /// Ed25519 signing key (`whsk_`) whose public key (`whpk_`) the endpoint verifies with.
    ///
    /// A public key cannot sign: `Webhooks::subscribe` refuses it with
    /// [`Error::SecretCannotSign`].
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets = vec![(secret, None)];
        self
    }

    /// A header sent with every request to this endpoint. The headers the library sets itself
    /// (`content-type`, `user-agent`, `webhook-*`, …) cannot be overridden.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// First in, first out: at most one request in flight, and messages arrive in the order they
    /// were sent. A failing message holds back the ones after it until it is delivered or
    /// exhausted: order costs throughput and latency, so use it only where the receiver needs it.
    #[must_use]
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// At most this many requests per second to this endpoint.
    #[must_use]
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// At most this many requests in flight to this endpoint (default: the runtime's
    /// per-subscription limit).
    #[must_use]
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// The retry policy for this endpoint (default: the runtime's).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A note for people (shown by the inspection tools).
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The id (`sub_…`), fixed when the subscription is created.
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// The endpoint requests are POSTed to.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The event patterns, as given (empty: every event).
    pub fn event_patterns(&self) -> &[String] {
        &self.events
    }

    /// The labels an event must carry.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The current signing secret.
    pub fn signing_secret(&self) -> &Secret {
        &self.secrets[0].0
    }

    /// Every secret that signs at `now`: the current one, and previous ones still within their
    /// rotation overlap.
    pub fn active_secrets(&self, now: SystemTime) -> impl Iterator<Item = &Secret> {
        self.secrets
            .iter()
            .filter(move |(_, until)| until.is_none_or(|until| until > now))
            .map(|(secret, _)| secret)
    }

    /// The extra headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Whether deliveries are first in, first out.
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// The rate limit, in requests per second.
    pub fn rate_limit_per_second(&self) -> Option<u32> {
        self.rate_limit
    }

    /// The per-endpoint limit of requests in flight, if set.
    pub fn max_in_flight_limit(&self) -> Option<usize> {
        self.max_in_flight
    }

    /// The retry policy, if this endpoint has its own.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// The note for people, if one was set.
    pub fn description_text(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// When it was created.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// Whether it receives deliveries.
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Why and when it was disabled, if it is.
    pub fn disabled(&self) -> Option<&Disabled> {
        self.disabled.as_ref()
    }

    /// Makes `secret` the current secret; the previous one keeps signing until `now + overlap`.
    pub(crate) fn rotate(&mut self, secret: Secret, now: SystemTime, overlap: Duration) {
        self.secrets
            .retain(|(_, until)| until.is_none_or(|until| until > now));
        for (_, until) in &mut self.secrets {
            let end = now + overlap;
            *until = Some(until.map_or(end, |u| u.min(end)));
        }
        self.secrets.insert(0, (secret, None));
    }

    /// Takes `other`'s settings (what `Webhooks::update` changes), keeping this one's id,
    /// creation time, secrets and enabled state.
    pub(crate) fn set_settings(&mut self, other: &Subscription) {
        self.url = other.url.clone();
        self.events = other.events.clone();
        self.labels = other.labels.clone();
        self.headers = other.headers.clone();
        self.ordered = other.ordered;
        self.rate_limit = other.rate_limit;
        self.max_in_flight = other.max_in_flight;
        self.retry = other.retry.clone();
        self.description = other.description.clone();
    }

    /// Checks everything the builder could not, and compiles the event patterns.
    pub(crate) fn validate(&self) -> Result<Vec<EventPattern>, Error> {
        for (secret, _) in &self.secrets {
            check_signs(secret)?;
        }
        for (name, value) in &self.headers {
            let valid_name = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let valid_value = http::HeaderValue::from_str(value).is_ok();
            let reason = if !valid_name {
                "not a valid header name"
            } else if !valid_value {
                "its value is not a valid header value"
            } else if RESERVED_HEADERS.contains(&name.as_str()) {
                "the library sets this header itself"
            } else {
                continue;
            };
            return Err(Error::InvalidHeader {
                name: name.clone(),
                reason,
            });
        }
        if self.rate_limit == Some(0) {
            return Err(Error::config(
                "rate_limit",
                "a rate limit must be at least 1 request per second",
            ));
        }
        if self.max_in_flight == Some(0) {
            return Err(Error::config("max_in_flight", "must be at least 1"));
        }
        if self.events.is_empty() {
            return Ok(vec![EventPattern::parse("*")?]);
        }
        self.events.iter().map(|p| EventPattern::parse(p)).collect()
    }
}

/// Refuses a key that cannot sign (an Ed25519 public key) as a subscription's secret.
pub(crate) fn check_signs(secret: &Secret) -> Result<(), Error> {
    if secret.can_sign() {
        Ok(())
    } else {
        Err(Error::SecretCannotSign {
            kind: secret.kind(),
        })
    }
}
