//! Signing and verifying webhooks as [Standard Webhooks]: `v1,` HMAC-SHA256 signatures with a
//! shared secret (`whsec_`), and `v1a,` Ed25519 signatures with a key pair (`whsk_`, `whpk_`).
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
//! sign the serialized body once and send those same bytes. `webhook-signature` holds one entry
//! per active secret, separated by spaces: during a key rotation the sender signs with both
//! secrets and the receiver accepts either ([`signature_header`], [`Verifier::from_secrets`]).
//! Entries of versions the receiver's secrets do not verify are ignored.
//!
//! # Asymmetric signatures
//!
//! With Ed25519 the sender keeps the signing key (`whsk_…`) and gives the endpoint only its
//! public key (`whpk_…`), which verifies `v1a,` signatures but cannot make them: whoever reads
//! the receiver's configuration still cannot forge a webhook.
//!
//! ```
//! use webhooks::signing::{Secret, Verifier, signature_header};
//!
//! // The sender's key (store it as `signing_key.expose()`), and the one the endpoint is given.
//! let signing_key = Secret::generate_ed25519();
//! let public_key: Secret = signing_key.public_key().expect("Ed25519").expose().parse()?;
//! assert!(public_key.expose().starts_with("whpk_"));
//!
//! let (id, timestamp, body) = ("msg_2mQ5x0d7", 1_700_000_000, br#"{"type":"invoice.paid"}"#);
//! let header = signature_header([&signing_key], id, timestamp, body);
//! assert!(header.starts_with("v1a,"));
//!
//! let verifier = Verifier::new(public_key);
//! let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
//! assert!(verifier.verify_at(id, "1700000000", &header, body, now).is_ok());
//! assert!(verifier.verify_at(id, "1700000000", &header, b"{}", now).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

mod secret;

pub use secret::{Secret, SecretError, SecretKind};

/// Header carrying the message id; stable across retries, so receivers use it to deduplicate.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the time of the attempt, in unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures: `v1,<base64>` (HMAC-SHA256) and
/// `v1a,<base64>` (Ed25519).
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may lie in the past or the future: 5 minutes, as in the reference verifiers.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The longest symmetric key a [`Secret`] accepts, in bytes (the spec recommends 24 to 64).
pub const MAX_SECRET_LEN: usize = 1024;

/// HMAC-SHA256 output.
const TAG_LEN: usize = 32;
/// Padded base64 of a [`TAG_LEN`]-byte tag.
const TAG_BASE64_LEN: usize = TAG_LEN.div_ceil(3) * 4;
/// An Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;
/// Padded base64 of an [`ED25519_SIGNATURE_LEN`]-byte signature.
const ED25519_SIGNATURE_BASE64_LEN: usize = ED25519_SIGNATURE_LEN.div_ceil(3) * 4;

/// `{msg_id}.{timestamp}.{body}`, the content every version signs, kept in parts.
struct SignedContent<'a> {
    msg_id: &'a str,
    timestamp: &'a str,
    body: &'a [u8],
}

impl<'a> SignedContent<'a> {
    fn new(msg_id: &'a str, timestamp: &'a str, body: &'a [u8]) -> Self {
        SignedContent {
            msg_id,
            timestamp,
            body,
        }
    }

    fn parts(&self) -> [&'a [u8]; 5] {
        [
            self.msg_id.as_bytes(),
            b".",
            self.timestamp.as_bytes(),
            b".",
            self.body,
        ]
    }

    /// In one piece, as Ed25519's strict verification takes it.
    fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// HMAC-SHA256 of the signed content, fed in parts so the body is not copied.
fn hmac_tag(key: &[u8], content: &SignedContent<'_>) -> [u8; TAG_LEN] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (RFC 2104 hashes long keys and pads short ones);
        // hmac's own infallible `KeyInit::new` relies on the same fact.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in content.parts() {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The `webhook-signature` value for a message: one entry per secret that signs (`v1,<base64>`
/// for a symmetric secret, `v1a,<base64>` for an Ed25519 signing key), separated by spaces
/// (`"v1,a v1a,b"`); empty if none of them signs. Public keys, which cannot sign, are skipped.
///
/// During a key rotation, sign with the new and the old secret so that receivers holding either
/// accept the message; they may be of different kinds.
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
    let content = SignedContent::new(msg_id, &timestamp, body);
    let mut header = String::new();
    for secret in secrets {
        let len = header.len();
        if len > 0 {
            header.push(' ');
        }
        if !secret.push_signature(&mut header, &content) {
            header.truncate(len);
        }
    }
    header
}

/// Checks the signature and the freshness of incoming webhooks.
///
/// A message is accepted when its timestamp is within the tolerance of the current time and at
/// least one of its signatures verifies with one of the verifier's secrets: a `v1,` entry with a
/// symmetric secret (`whsec_`), a `v1a,` entry with an Ed25519 public key (`whpk_`, or the public
/// half of a `whsk_`). The secrets may be of mixed kinds, as during a rotation from one to the
/// other.
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

        let content = SignedContent::new(msg_id, timestamp, body);
        let has_hmac_keys = self.secrets.iter().any(|s| s.hmac_key().is_some());
        let has_public_keys = self.secrets.iter().any(|s| s.verifying_key().is_some());
        // Whether an entry of a version these secrets verify was seen at all.
        let mut checked = false;
        // Computed at the first entry that needs them: one HMAC per secret however many `v1`
        // entries there are, and the Ed25519 message assembled once.
        let mut tags: Option<Vec<[u8; TAG_LEN]>> = None;
        let mut message: Option<Vec<u8>> = None;
        for entry in signatures.split_ascii_whitespace() {
            if let Some(encoded) = entry.strip_prefix("v1,") {
                if !has_hmac_keys {
                    continue;
                }
                checked = true;
                let Some(candidate) = decode_tag(encoded) else {
                    continue;
                };
                let tags = tags.get_or_insert_with(|| {
                    self.secrets
                        .iter()
                        .filter_map(Secret::hmac_key)
                        .map(|key| hmac_tag(key, &content))
                        .collect()
                });
                if tags.iter().any(|tag| bool::from(tag.ct_eq(&candidate))) {
                    return Ok(());
                }
            } else if let Some(encoded) = entry.strip_prefix("v1a,") {
                if !has_public_keys {
                    continue;
                }
                checked = true;
                let Some(signature) = decode_ed25519_signature(encoded) else {
                    continue;
                };
                let message = message.get_or_insert_with(|| content.to_vec());
                // Strict: refuses non-canonical and small-order signatures, as libsodium does.
                let verifies = |key: &VerifyingKey| key.verify_strict(message, &signature).is_ok();
                if self
                    .secrets
                    .iter()
                    .filter_map(Secret::verifying_key)
                    .any(verifies)
                {
                    return Ok(());
                }
            }
        }
        Err(if checked {
            VerifyError::SignatureMismatch
        } else {
            VerifyError::NoSignatures
        })
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
    /// `webhook-signature` has no entry of a version the verifier's secrets check: `v1,` for a
    /// symmetric secret, `v1a,` for an Ed25519 key (other versions are ignored).
    #[error(
        "webhook-signature has no signature of the version the secret verifies (v1 for whsec_, \
         v1a for whpk_ and whsk_)"
    )]
    NoSignatures,
    /// No signature verifies with any secret: forged, altered, or signed with another secret.
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

/// The signature in one `v1a` entry, or `None` if it is not the padded base64 of exactly 64
/// bytes.
fn decode_ed25519_signature(encoded: &str) -> Option<Signature> {
    if encoded.len() != ED25519_SIGNATURE_BASE64_LEN {
        return None;
    }
    let mut bytes = [0; ED25519_SIGNATURE_LEN];
    match BASE64.decode_slice(encoded, &mut bytes) {
        Ok(ED25519_SIGNATURE_LEN) => Some(Signature::from_bytes(&bytes)),
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
