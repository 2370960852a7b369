//! Sends one signed HTTP request of a delivery and reads what came back. No decisions here:
//! [`crate::deliver`] decides what an outcome means.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};

use crate::signing::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::ssrf::NetworkPolicy;
use crate::store::AttemptErrorKind;
use crate::{Error, Message, Subscription};

/// The HTTP side of delivery: one client (connection pool) for every endpoint.
pub(crate) struct Sender {
    client: reqwest::Client,
    policy: NetworkPolicy,
    body_limit: usize,
}

/// What one request came to.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) latency: Duration,
    pub(crate) result: Result<Answer, Failure>,
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

/// No answer (or a policy refusal).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: AttemptErrorKind,
    pub(crate) message: String,
}

/// Settings of the HTTP client.
pub(crate) struct SenderConfig {
    pub(crate) policy: NetworkPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) user_agent: String,
}

impl Sender {
    pub(crate) fn new(config: SenderConfig) -> Result<Self, Error> {
        // The policy installs the guarded resolver, turns proxies off (they would bypass the
        // resolver) and redirects off (a 3xx is a failure: following one would send the signed
        // body somewhere the subscription never named).
        let client = config
            .policy
            .configure(reqwest::Client::builder())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(config.user_agent)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| {
                Error::config(
                    "network_policy",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Sender {
            client,
            policy: config.policy,
            body_limit: config.body_limit,
        })
    }

    /// POSTs the message to the subscription, signed with every active secret.
    pub(crate) async fn send(&self, message: &Message, subscription: &Subscription) -> Outcome {
        let started = Instant::now();
        let result = self.try_send(message, subscription).await;
        Outcome {
            latency: started.elapsed(),
            result,
        }
    }

    async fn try_send(
        &self,
        message: &Message,
        subscription: &Subscription,
    ) -> Result<Answer, Failure> {
        // The resolver vets names; IP literals never reach it, so they are checked here, at
        // every attempt (the policy may have changed since the subscription was made).
        self.policy
            .check_url(&subscription.url)
            .map_err(|e| Failure {
                kind: AttemptErrorKind::Blocked,
                message: e.to_string(),
            })?;

        let now = SystemTime::now();
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let id = message.id().to_string();
        let signature = signing::signature_header(
            subscription.active_secrets(now),
            &id,
            timestamp,
            message.body(),
        );

        let mut headers = http::HeaderMap::with_capacity(5 + subscription.headers.len());
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(HEADER_ID, header_value(&id));
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from(timestamp));
        headers.insert(HEADER_SIGNATURE, header_value(&signature));
        for (name, value) in &subscription.headers {
            // Validated when the subscription was stored; a bad one is left out, not sent.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }

        let response = self
            .client
            .post(subscription.url.clone())
            .headers(headers)
            .body(message.body().clone())
            .send()
            .await
            .map_err(classify)?;

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::parse_retry_after(v, SystemTime::now()));
        let body = self.read_capped(response).await;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Reads the body up to the cap. The status decides the outcome, so a body that fails
    /// midway is kept as far as it came.
    async fn read_capped(&self, mut response: reqwest::Response) -> Bytes {
        let mut body = BytesMut::new();
        while body.len() < self.body_limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.body_limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        body.freeze()
    }
}

fn header_value(text: &str) -> HeaderValue {
    // Ids and signatures are ASCII by construction.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Sorts a transport error into an [`AttemptErrorKind`], with the whole chain of causes.
fn classify(error: reqwest::Error) -> Failure {
    let blocked = crate::ssrf::find_blocked(&error).is_some();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let kind = if blocked {
        AttemptErrorKind::Blocked
    } else if error.is_timeout() {
        AttemptErrorKind::Timeout
    } else if error.is_connect() {
        AttemptErrorKind::Connect
    } else {
        AttemptErrorKind::Request
    };
    Failure { kind, message }
}
