//! [`Secret`]: the three kinds of key of Standard Webhooks, their text forms (`whsec_`, `whsk_`,
//! `whpk_`) and what each signs.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::ed25519::signature::MultipartSigner as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{ED25519_SIGNATURE_BASE64_LEN, MAX_SECRET_LEN, SignedContent, hmac_tag};

/// The prefix that marks the text form of a symmetric secret.
const SECRET_PREFIX: &str = "whsec_";
/// The prefix of an Ed25519 signing key: the 32-byte seed, then the 32-byte public key.
const SIGNING_KEY_PREFIX: &str = "whsk_";
/// The prefix of an Ed25519 public key.
const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Padded base64 of [`MAX_SECRET_LEN`] bytes: longer text is refused before decoding.
const MAX_SECRET_BASE64_LEN: usize = MAX_SECRET_LEN.div_ceil(3) * 4;
/// An Ed25519 seed, and an Ed25519 public key.
const ED25519_KEY_LEN: usize = 32;
/// A `whsk_` key: the seed, then the public key (as libsodium and the Svix libraries lay it out).
const ED25519_KEYPAIR_LEN: usize = 2 * ED25519_KEY_LEN;

/// A key that signs webhooks, or verifies them: one of the three kinds of [Standard Webhooks].
///
/// | kind ([`SecretKind`]) | text form | signs | verifies |
/// |---|---|---|---|
/// | symmetric | `whsec_` + base64 of the key | `v1,` (HMAC-SHA256) | `v1,` |
/// | Ed25519 signing key | `whsk_` + base64 of the seed, then the public key | `v1a,` (Ed25519) | `v1a,` |
/// | Ed25519 public key | `whpk_` + base64 of the 32-byte public key | nothing | `v1a,` |
///
/// A symmetric secret is shared by the sender and the endpoint. With Ed25519 the sender keeps
/// the signing key (a 32-byte seed and its 32-byte public key) and gives the endpoint only its
/// [public key](Secret::public_key), which cannot sign: a subscription refuses one
/// ([`Error::SecretCannotSign`](crate::Error::SecretCannotSign)).
///
/// Read the text form with [`str::parse`] (which also takes bare base64, as a symmetric key). It
/// is produced only by the explicit [`Secret::expose`]: `Debug` prints `Secret(<redacted>)` (with
/// the kind, for Ed25519 keys) and there is no `Display`, so a key does not end up in logs by
/// accident. Equality is constant-time.
///
/// [Standard Webhooks]: https://www.standardwebhooks.com/
#[derive(Clone)]
pub struct Secret {
    key: Key,
}

#[derive(Clone)]
enum Key {
    /// HMAC-SHA256 key bytes.
    Symmetric(Vec<u8>),
    /// Boxed: a signing key and its public key are over 200 bytes.
    Ed25519Signing(Box<Ed25519Pair>),
    Ed25519Public(Box<VerifyingKey>),
}

/// An Ed25519 signing key, and the 64 bytes of its text form for [`Secret::as_bytes`].
#[derive(Clone)]
struct Ed25519Pair {
    /// Wipes itself when dropped (ed25519-dalek's `zeroize` feature).
    key: SigningKey,
    /// The seed, then the public key.
    bytes: Zeroizing<[u8; ED25519_KEYPAIR_LEN]>,
}

impl Ed25519Pair {
    fn new(seed: &[u8; ED25519_KEY_LEN]) -> Ed25519Pair {
        let key = SigningKey::from_bytes(seed);
        let mut bytes = Zeroizing::new([0; ED25519_KEYPAIR_LEN]);
        bytes[..ED25519_KEY_LEN].copy_from_slice(seed);
        bytes[ED25519_KEY_LEN..].copy_from_slice(key.as_ref().as_bytes());
        Ed25519Pair { key, bytes }
    }
}

/// The kind of a [`Secret`], which decides the signature version it signs or verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// `whsec_`: an HMAC-SHA256 key shared by the sender and the endpoint. Signs and verifies
    /// `v1,` signatures.
    Symmetric,
    /// `whsk_`: an Ed25519 signing key (seed and public key), kept by the sender. Signs `v1a,`
    /// signatures; verifies them with its public half.
    Ed25519SigningKey,
    /// `whpk_`: an Ed25519 public key, given to the endpoint. Verifies `v1a,` signatures; cannot
    /// sign.
    Ed25519PublicKey,
}

impl SecretKind {
    /// The prefix of the text form: `whsec_`, `whsk_` or `whpk_`.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::Symmetric => SECRET_PREFIX,
            SecretKind::Ed25519SigningKey => SIGNING_KEY_PREFIX,
            SecretKind::Ed25519PublicKey => PUBLIC_KEY_PREFIX,
        }
    }

    /// Whether a key of this kind signs: all but the public key.
    pub fn can_sign(self) -> bool {
        self != SecretKind::Ed25519PublicKey
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::Symmetric => "webhook secret (`whsec_`)",
            SecretKind::Ed25519SigningKey => "Ed25519 signing key (`whsk_`)",
            SecretKind::Ed25519PublicKey => "Ed25519 public key (`whpk_`)",
        })
    }
}

impl Secret {
    /// A new random symmetric secret (`whsec_`) of 32 bytes from the operating system's CSPRNG.
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
        Ok(Secret {
            key: Key::Symmetric(key),
        })
    }

    /// A new random Ed25519 signing key (`whsk_`), its seed from the operating system's CSPRNG.
    /// Give its [`public_key`](Secret::public_key) (`whpk_`) to the endpoint.
    ///
    /// ```
    /// use webhooks::signing::{Secret, SecretKind};
    ///
    /// let signing_key = Secret::generate_ed25519();
    /// assert_eq!(signing_key.kind(), SecretKind::Ed25519SigningKey);
    /// assert!(signing_key.expose().starts_with("whsk_"));
    /// let public_key = signing_key.public_key().expect("an Ed25519 key has a public key");
    /// assert!(public_key.expose().starts_with("whpk_"));
    /// assert!(!public_key.can_sign());
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes; see
    /// [`Secret::try_generate_ed25519`] to handle that case instead.
    pub fn generate_ed25519() -> Secret {
        match Secret::try_generate_ed25519() {
            Ok(secret) => secret,
            Err(err) => panic!("the OS random number generator failed: {err}"),
        }
    }

    /// Like [`Secret::generate_ed25519`], but returns the operating system's error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// When the operating system's random number generator fails.
    pub fn try_generate_ed25519() -> Result<Secret, std::io::Error> {
        let mut seed = Zeroizing::new([0; ED25519_KEY_LEN]);
        getrandom::fill(seed.as_mut())?;
        Ok(Secret {
            key: Key::Ed25519Signing(Box::new(Ed25519Pair::new(&seed))),
        })
    }

    /// A symmetric secret (`whsec_`) from raw key bytes: at least 1 and at most
    /// [`MAX_SECRET_LEN`] bytes.
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
            Ok(Secret {
                key: Key::Symmetric(key),
            })
        }
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> SecretKind {
        match self.key {
            Key::Symmetric(_) => SecretKind::Symmetric,
            Key::Ed25519Signing(_) => SecretKind::Ed25519SigningKey,
            Key::Ed25519Public(_) => SecretKind::Ed25519PublicKey,
        }
    }

    /// Whether this key signs: `false` for an Ed25519 public key (`whpk_`), which only verifies.
    pub fn can_sign(&self) -> bool {
        self.kind().can_sign()
    }

    /// The Ed25519 public key (`whpk_`) that verifies what this key signs: the public half of a
    /// signing key (`whsk_`), or a public key itself. `None` for a symmetric secret, which has no
    /// public part.
    pub fn public_key(&self) -> Option<Secret> {
        let public = match &self.key {
            Key::Symmetric(_) => return None,
            Key::Ed25519Signing(pair) => *pair.key.as_ref(),
            Key::Ed25519Public(key) => **key,
        };
        Some(Secret {
            key: Key::Ed25519Public(Box::new(public)),
        })
    }

    /// The raw key bytes, as the text form encodes them: the HMAC key of a `whsec_`; the 32-byte
    /// seed then the 32-byte public key of a `whsk_`; the 32-byte public key of a `whpk_`.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.key {
            Key::Symmetric(key) => key,
            Key::Ed25519Signing(pair) => pair.bytes.as_ref(),
            Key::Ed25519Public(key) => key.as_bytes(),
        }
    }

    /// The text form, `whsec_<base64>`, `whsk_<base64>` or `whpk_<base64>`, to show to the
    /// endpoint's owner or to store.
    ///
    /// A method rather than `Display` so that printing a secret is always deliberate.
    pub fn expose(&self) -> String {
        format!("{}{}", self.kind().prefix(), BASE64.encode(self.as_bytes()))
    }

    /// The signature entry of one message: `v1,<base64>` for a symmetric secret, `v1a,<base64>`
    /// for an Ed25519 signing key, and an empty string for a public key, which cannot sign.
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
    ///
    /// let signing_key = Secret::generate_ed25519();
    /// assert!(signing_key.sign("msg_1", 1614265330, body).starts_with("v1a,"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut entry = String::with_capacity(4 + ED25519_SIGNATURE_BASE64_LEN);
        let timestamp = timestamp.to_string();
        self.push_signature(&mut entry, &SignedContent::new(msg_id, &timestamp, body));
        entry
    }

    /// Appends this key's signature entry to `out`; `false` (and nothing appended) for a key
    /// that cannot sign.
    pub(super) fn push_signature(&self, out: &mut String, content: &SignedContent<'_>) -> bool {
        match &self.key {
            Key::Symmetric(key) => {
                out.push_str("v1,");
                BASE64.encode_string(hmac_tag(key, content), out);
                true
            }
            Key::Ed25519Signing(pair) => {
                // Signed in parts, so the body is not copied.
                let signature: Signature = pair.key.multipart_sign(&content.parts());
                out.push_str("v1a,");
                BASE64.encode_string(signature.to_bytes(), out);
                true
            }
            Key::Ed25519Public(_) => false,
        }
    }

    /// The symmetric key, if this is one.
    pub(super) fn hmac_key(&self) -> Option<&[u8]> {
        match &self.key {
            Key::Symmetric(key) => Some(key),
            _ => None,
        }
    }

    /// The Ed25519 public key, of a public key or of a signing key's public half.
    pub(super) fn verifying_key(&self) -> Option<&VerifyingKey> {
        match &self.key {
            Key::Symmetric(_) => None,
            Key::Ed25519Signing(pair) => Some(pair.key.as_ref()),
            Key::Ed25519Public(key) => Some(key),
        }
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    /// Parses `whsec_<base64>` (or bare base64, as the Svix libraries also accept), `whsk_<base64>`
    /// or `whpk_<base64>`.
    ///
    /// Surrounding whitespace is ignored, since secrets often come from files or environment
    /// variables with a trailing newline. The base64 is the standard alphabet with padding. A
    /// `whsk_` key must hold 64 bytes whose second half is the public key of the first; a `whpk_`
    /// key 32 bytes that are a point of the curve, not of small order.
    fn from_str(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        if let Some(encoded) = text.strip_prefix(SIGNING_KEY_PREFIX) {
            let bytes =
                decode_fixed::<ED25519_KEYPAIR_LEN>(encoded, SecretKind::Ed25519SigningKey)?;
            let Some((seed, public)) = bytes.split_first_chunk::<ED25519_KEY_LEN>() else {
                unreachable!("64 bytes hold a 32-byte seed")
            };
            let pair = Ed25519Pair::new(seed);
            if pair.key.as_ref().as_bytes()[..] != *public {
                return Err(SecretError::PublicKeyMismatch);
            }
            return Ok(Secret {
                key: Key::Ed25519Signing(Box::new(pair)),
            });
        }
        if let Some(encoded) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes = decode_fixed::<ED25519_KEY_LEN>(encoded, SecretKind::Ed25519PublicKey)?;
            let key =
                VerifyingKey::from_bytes(&bytes).map_err(|_| SecretError::InvalidPublicKey)?;
            // A key of small order "verifies" signatures of almost any message.
            if key.is_weak() {
                return Err(SecretError::InvalidPublicKey);
            }
            return Ok(Secret {
                key: Key::Ed25519Public(Box::new(key)),
            });
        }
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        Secret::from_bytes(decode_key(encoded)?)
    }
}

/// The base64 after a prefix, refused when empty or oversized before it is decoded.
fn decode_key(encoded: &str) -> Result<Vec<u8>, SecretError> {
    if encoded.is_empty() {
        return Err(SecretError::Empty);
    }
    if encoded.len() > MAX_SECRET_BASE64_LEN {
        return Err(SecretError::TooLong {
            max: MAX_SECRET_LEN,
        });
    }
    // The decoder's error is dropped: it names the offending byte, which is part of the secret.
    BASE64
        .decode(encoded)
        .map_err(|_| SecretError::InvalidBase64)
}

/// The base64 of an Ed25519 key of exactly `N` bytes.
fn decode_fixed<const N: usize>(
    encoded: &str,
    kind: SecretKind,
) -> Result<Zeroizing<[u8; N]>, SecretError> {
    let decoded = Zeroizing::new(decode_key(encoded)?);
    let mut bytes = Zeroizing::new([0; N]);
    if decoded.len() != N {
        return Err(SecretError::InvalidLength {
            kind,
            expected: N,
            found: decoded.len(),
        });
    }
    bytes.copy_from_slice(&decoded);
    Ok(bytes)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.key {
            Key::Symmetric(_) => "Secret(<redacted>)",
            Key::Ed25519Signing(_) => "Secret(<redacted Ed25519 signing key>)",
            Key::Ed25519Public(_) => "Secret(<redacted Ed25519 public key>)",
        })
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        // Constant-time in the contents; only the kinds and the lengths may be told apart.
        self.kind() == other.kind() && bool::from(self.as_bytes().ct_eq(other.as_bytes()))
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
    /// The text after the prefix is not standard base64 with padding.
    #[error(
        "the webhook secret is not valid base64 (expected `whsec_`, `whsk_` or `whpk_` followed \
         by standard base64)"
    )]
    InvalidBase64,
    /// The key is longer than `max` bytes.
    #[error("the webhook secret is longer than {max} bytes")]
    TooLong {
        /// The limit, [`MAX_SECRET_LEN`].
        max: usize,
    },
    /// An Ed25519 key of the wrong size: a `whsk_` key is 64 bytes (the seed, then the public
    /// key), a `whpk_` key 32.
    #[error("the {kind} is {found} bytes long; it must be {expected}")]
    InvalidLength {
        /// [`SecretKind::Ed25519SigningKey`] or [`SecretKind::Ed25519PublicKey`].
        kind: SecretKind,
        /// The size of that kind, in bytes.
        expected: usize,
        /// The size given, in bytes.
        found: usize,
    },
    /// The second half of a `whsk_` key is not the public key of its first half, the seed.
    #[error("the public half of the Ed25519 signing key (`whsk_`) does not match its seed")]
    PublicKeyMismatch,
    /// The bytes of a `whpk_` key are not a point of the curve, or are one of small order, which
    /// would accept signatures of almost any message.
    #[error("the Ed25519 public key (`whpk_`) is not a valid point of the curve")]
    InvalidPublicKey,
}
