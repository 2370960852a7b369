//! Signing and verifying webhooks as [Standard Webhooks] v1 (`v1,` HMAC-SHA256 signatures).
//!
//! A receiver checks every request before acting on it:
//!
//! ```
//! use http::HeaderMap;
//! use webhooks::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, Verifier};
//!
//! fn handle(verifier: &Verifier, headers: &HeaderMap, body: &[u8]) -> u16 {
//!     match verifier.verify_headers(headers, body) {
//!         // Authentic and fresh: act on `body`, deduplicating by `webhook-id` (retries reuse it).
//!         Ok(()) => 204,
//!         // Forged, altered, replayed late, or signed with another secret: ignore the body.
//!         Err(_) => 401,
//!     }
//! }
//!
//! // The endpoint's secret, shown to the receiver once when the endpoint was created.
//! let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let verifier = Verifier::new(secret.clone());
//!
//! // A request as the sender builds it.
//! let body = br#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
//! let timestamp = i64::try_from(now.as_secs())?;
//! let mut headers = HeaderMap::new();
//! headers.insert(HEADER_ID, "msg_2mQ5x0d7".parse()?);
//! headers.insert(HEADER_TIMESTAMP, timestamp.to_string().parse()?);
//! headers.insert(HEADER_SIGNATURE, secret.sign("msg_2mQ5x0d7", timestamp, body).parse()?);
//!
//! assert_eq!(handle(&verifier, &headers, body), 204);
//! assert_eq!(handle(&verifier, &headers, b"{}"), 401); // any change to the body is detected
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}` over the exact bytes sent, so
//! sign the serialized body once and send those same bytes. `webhook-signature` holds one
//! `v1,<base64>` entry per active secret, separated by spaces: during a key rotation the sender
//! signs with both secrets and the receiver accepts either ([`signature_header`],
//! [`Verifier::from_secrets`]). Entries of other versions, such as Ed25519's `v1a,`, are ignored.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the message id; stable across retries, so receivers use it to deduplicate.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the time of the attempt, in unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may lie in the past or the future: 5 minutes, as in the reference verifiers.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The longest key a [`Secret`] accepts, in bytes (the spec recommends 24 to 64).
pub const MAX_SECRET_LEN: usize = 1024;

/// The prefix that marks the text form of a secret.
const SECRET_PREFIX: &str = "whsec_";
/// Padded base64 of [`MAX_SECRET_LEN`] bytes: longer text is refused before decoding.
const MAX_SECRET_BASE64_LEN: usize = MAX_SECRET_LEN.div_ceil(3) * 4;
/// HMAC-SHA256 output.
const TAG_LEN: usize = 32;
/// Padded base64 of a [`TAG_LEN`]-byte tag.
const TAG_BASE64_LEN: usize = TAG_LEN.div_ceil(3) * 4;

/// A symmetric signing key shared by the sender and one endpoint.
///
/// The text form is `whsec_` followed by the standard base64 of the key bytes; read it with
/// [`str::parse`] (which also takes bare base64). It is produced only by the explicit
/// [`Secret::expose`]: `Debug` prints `Secret(<redacted>)` and there is no `Display`, so a secret
/// does not end up in logs by accident. Equality is constant-time.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// A new random secret of 32 bytes from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes, which does not happen on supported
    /// platforms once booted; see [`Secret::try_generate`] to handle that case instead.
    pub fn generate() -> Secret {
        match Secret::try_generate() {
            Ok(secret) => secret,
            // Continuing without a random key would be worse than stopping.
            Err(err) => panic!("the OS random number generator failed: {err}"),
        }
    }

    /// Like [`Secret::generate`], but returns the operating system's error instead of panicking.
    ///
    /// # Errors
    ///
    /// When the operating system's random number generator fails. The error is `std::io::Error`
    /// so that the public API does not depend on the `getrandom` version.
    pub fn try_generate() -> Result<Secret, std::io::Error> {
        let mut key = vec![0; 32];
        getrandom::fill(&mut key)?;
        Ok(Secret { key })
    }

    /// A secret from raw key bytes: at least 1 and at most [`MAX_SECRET_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] or [`SecretError::TooLong`].
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Secret, SecretError> {
        let key = key.into();
        if key.is_empty() {
            Err(SecretError::Empty)
        } else if key.len() > MAX_SECRET_LEN {
            Err(SecretError::TooLong {
                max: MAX_SECRET_LEN,
            })
        } else {
            Ok(Secret { key })
        }
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The text form, `whsec_<base64>`, to show to the endpoint's owner or to store.
    ///
    /// A method rather than `Display` so that printing a secret is always deliberate.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// The signature entry `v1,<base64>` of one message.
    ///
    /// `body` must be the exact bytes sent; `timestamp` is the value of `webhook-timestamp`.
    ///
    /// ```
    /// use webhooks::signing::Secret;
    ///
    /// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
    /// let body = br#"{"test": 2432232314}"#;
    /// let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
    /// assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut entry = String::with_capacity(3 + TAG_BASE64_LEN);
        self.push_signature(&mut entry, msg_id, &timestamp.to_string(), body);
        entry
    }

    /// Appends `v1,<base64>` to `out`.
    fn push_signature(&self, out: &mut String, msg_id: &str, timestamp: &str, body: &[u8]) {
        out.push_str("v1,");
        BASE64.encode_string(self.tag(msg_id, timestamp, body), out);
    }

    /// HMAC-SHA256 of `{msg_id}.{timestamp}.{body}`, fed in parts so the body is not copied.
    fn tag(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length (RFC 2104 hashes long keys and pads short ones);
            // hmac's own infallible `KeyInit::new` relies on the same fact.
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    /// Parses `whsec_<base64>`, or bare base64 as the Svix libraries also accept.
    ///
    /// Surrounding whitespace is ignored, since secrets often come from files or environment
    /// variables with a trailing newline. The base64 is the standard alphabet with padding.
    fn from_str(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        // Refuse oversized input before decoding it.
        if encoded.len() > MAX_SECRET_BASE64_LEN {
            return Err(SecretError::TooLong {
                max: MAX_SECRET_LEN,
            });
        }
        // The decoder's error is dropped: it names the offending byte, which is part of the secret.
        let key = BASE64
            .decode(encoded)
            .map_err(|_| SecretError::InvalidBase64)?;
        Secret::from_bytes(key)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        // Constant-time in the contents; only the lengths may be told apart.
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for Secret {}

/// Why a text or byte string is not a valid [`Secret`].
///
/// The messages never include any part of the rejected secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The key is empty (for example `whsec_` with nothing after it).
    #[error("the webhook secret is empty")]
    Empty,
    /// The text after `whsec_` is not standard base64 with padding.
    #[error(
        "the webhook secret is not valid base64 (expected `whsec_` followed by standard base64)"
    )]
    InvalidBase64,
    /// The key is longer than `max` bytes.
    #[error("the webhook secret is longer than {max} bytes")]
    TooLong {
        /// The limit, [`MAX_SECRET_LEN`].
        max: usize,
    },
}

/// The `webhook-signature` value for a message: one `v1,<base64>` entry per secret, separated by
/// spaces (`"v1,a v1,b"`); empty if there are no secrets.
///
/// During a key rotation, sign with the new and the old secret so that receivers holding either
/// accept the message.
///
/// ```
/// use webhooks::signing::{Secret, Verifier, signature_header};
///
/// let (old, new) = (Secret::generate(), Secret::generate());
/// let (id, timestamp, body) = ("msg_1", 1_700_000_000, b"{}");
/// let header = signature_header([&new, &old], id, timestamp, body);
/// let (by_new, by_old) = (new.sign(id, timestamp, body), old.sign(id, timestamp, body));
/// assert_eq!(header, format!("{by_new} {by_old}"));
///
/// // A receiver that has not rotated yet still accepts it.
/// let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
/// assert!(Verifier::new(old).verify_at(id, "1700000000", &header, body, now).is_ok());
/// ```
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let mut header = String::new();
    for secret in secrets {
        if !header.is_empty() {
            header.push(' ');
        }
        secret.push_signature(&mut header, msg_id, &timestamp, body);
    }
    header
}

/// Checks the signature and the freshness of incoming webhooks.
///
/// A message is accepted when its timestamp is within the tolerance of the current time and at
/// least one of its `v1` signatures was made with one of the verifier's secrets.
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl Verifier {
    /// A verifier for one secret, with the [`DEFAULT_TOLERANCE`].
    pub fn new(secret: Secret) -> Verifier {
        Verifier::from_secrets([secret])
    }

    /// A verifier accepting a signature by any of `secrets`, for key rotation.
    ///
    /// With no secrets at all, every verification fails with [`VerifyError::NoSecrets`].
    pub fn from_secrets(secrets: impl IntoIterator<Item = Secret>) -> Verifier {
        Verifier {
            secrets: secrets.into_iter().collect(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Sets how far the timestamp may lie in the past or in the future, in whole seconds
    /// (sub-second parts are dropped).
    ///
    /// A short tolerance narrows the window for replaying a captured request; it must still
    /// cover clock skew and the time a request spends in transit.
    #[must_use = "`tolerance` returns the changed verifier"]
    pub fn tolerance(mut self, tolerance: Duration) -> Verifier {
        self.tolerance = tolerance;
        self
    }

    /// Verifies a message against the current time, given the values of the three headers.
    ///
    /// `body` must be the raw bytes received, before any parsing.
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify_at`].
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        self.verify_at(msg_id, timestamp, signatures, body, SystemTime::now())
    }

    /// Verifies a message as if the current time were `now`.
    ///
    /// The timestamp must be a non-negative decimal integer; it is signed as written.
    ///
    /// # Errors
    ///
    /// Checks run in this order and the first failure is returned: [`VerifyError::NoSecrets`];
    /// [`VerifyError::InvalidTimestamp`], [`VerifyError::TimestampTooOld`] or
    /// [`VerifyError::TimestampTooNew`]; [`VerifyError::NoSignatures`];
    /// [`VerifyError::SignatureMismatch`]. Checking the timestamp first means a stale replay
    /// costs no hashing of its body.
    pub fn verify_at(
        &self,
        msg_id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        if self.secrets.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        self.check_timestamp(timestamp, now)?;

        let mut candidates = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .peekable();
        if candidates.peek().is_none() {
            return Err(VerifyError::NoSignatures);
        }

        // One HMAC per secret however many entries there are, so a long header costs no hashing.
        let expected: Vec<[u8; TAG_LEN]> = self
            .secrets
            .iter()
            .map(|secret| secret.tag(msg_id, timestamp, body))
            .collect();
        for candidate in candidates.filter_map(decode_tag) {
            if expected.iter().any(|tag| bool::from(tag.ct_eq(&candidate))) {
                return Ok(());
            }
        }
        Err(VerifyError::SignatureMismatch)
    }

    /// Verifies a message against the current time, reading `webhook-id`, `webhook-timestamp`
    /// and `webhook-signature` from `headers` (the first value of each).
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingHeader`] or [`VerifyError::InvalidHeader`], then as
    /// [`Verifier::verify_at`].
    pub fn verify_headers(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        self.verify_headers_at(headers, body, SystemTime::now())
    }

    /// Like [`Verifier::verify_headers`], as if the current time were `now`.
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify_headers`].
    pub fn verify_headers_at(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let msg_id = header(headers, HEADER_ID)?;
        let timestamp = header(headers, HEADER_TIMESTAMP)?;
        let signatures = header(headers, HEADER_SIGNATURE)?;
        self.verify_at(msg_id, timestamp, signatures, body, now)
    }

    fn check_timestamp(&self, timestamp: &str, now: SystemTime) -> Result<(), VerifyError> {
        // Digits only: `parse` alone would also take `+1`, and the value is signed as written.
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::InvalidTimestamp);
        }
        let sent = timestamp
            .parse::<i64>()
            .map_err(|_| VerifyError::InvalidTimestamp)?;
        // i128 holds every difference of an i64 and a SystemTime in seconds without overflow.
        let age = unix_seconds(now) - i128::from(sent);
        let tolerance_secs = self.tolerance.as_secs();
        let tolerance = i128::from(tolerance_secs);
        if age > tolerance {
            Err(VerifyError::TimestampTooOld {
                age_secs: saturate(age),
                tolerance_secs,
            })
        } else if -age > tolerance {
            Err(VerifyError::TimestampTooNew {
                ahead_secs: saturate(-age),
                tolerance_secs,
            })
        } else {
            Ok(())
        }
    }
}

/// Why a webhook was rejected.
///
/// Answer any of them with a 4xx status and do not act on the body. The messages hold no secret
/// material and may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The verifier was built with no secrets, so nothing can be accepted: a configuration error.
    #[error("no webhook secret configured: every signature is rejected")]
    NoSecrets,
    /// A required header is absent; carries its name, such as [`HEADER_ID`].
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header's value is not visible ASCII; carries its name.
    #[error("{0} header is not visible ASCII")]
    InvalidHeader(&'static str),
    /// `webhook-timestamp` is not a non-negative decimal integer that fits an `i64`.
    #[error("webhook-timestamp is not a unix timestamp in seconds")]
    InvalidTimestamp,
    /// `webhook-timestamp` lies further in the past than the tolerance: late, or a replay.
    #[error("webhook-timestamp is {age_secs} s in the past (tolerance {tolerance_secs} s)")]
    TimestampTooOld {
        /// How far in the past, in seconds.
        age_secs: u64,
        /// The verifier's tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// `webhook-timestamp` lies further in the future than the tolerance: a skewed clock.
    #[error("webhook-timestamp is {ahead_secs} s in the future (tolerance {tolerance_secs} s)")]
    TimestampTooNew {
        /// How far in the future, in seconds.
        ahead_secs: u64,
        /// The verifier's tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// `webhook-signature` has no `v1,` entry at all (other versions are ignored).
    #[error("webhook-signature has no v1 signature")]
    NoSignatures,
    /// No `v1` signature matches any secret: forged, altered, or signed with another secret.
    #[error("no webhook-signature entry matches the secret")]
    SignatureMismatch,
}

/// The value of a required header as text.
fn header<'h>(headers: &'h http::HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::MissingHeader(name))?
        .to_str()
        .map_err(|_| VerifyError::InvalidHeader(name))
}

/// The tag in one `v1` entry, or `None` if it is not the padded base64 of exactly 32 bytes.
fn decode_tag(encoded: &str) -> Option<[u8; TAG_LEN]> {
    // The length check keeps garbage from being decoded at all.
    if encoded.len() != TAG_BASE64_LEN {
        return None;
    }
    let mut tag = [0; TAG_LEN];
    match BASE64.decode_slice(encoded, &mut tag) {
        Ok(TAG_LEN) => Some(tag),
        _ => None,
    }
}

/// Whole seconds since the epoch, rounded down (also before 1970).
fn unix_seconds(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::from(since.as_secs()),
        Err(before) => {
            let before = before.duration();
            -i128::from(before.as_secs()) - i128::from(before.subsec_nanos() > 0)
        }
    }
}

fn saturate(seconds: i128) -> u64 {
    u64::try_from(seconds).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
