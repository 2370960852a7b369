//! Ids: [`MessageId`], [`SubscriptionId`], [`DeliveryId`]. Each is a UUID v7 (time-ordered) shown
//! with a prefix that says what it names: `msg_…`, `sub_…`, `dlv_…`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The error of parsing an id from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {text:?}: expected `{prefix}` followed by 32 hex digits")]
pub struct ParseIdError {
    kind: &'static str,
    prefix: &'static str,
    text: String,
}

impl ParseIdError {
    pub(crate) fn new(kind: &'static str, prefix: &'static str, text: &str) -> Self {
        ParseIdError {
            kind,
            prefix,
            text: text.to_owned(),
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        // `Display` writes the prefix into a 4-byte slot.
        const _: () = assert!($prefix.len() == 4);

        impl $name {
            const PREFIX: &'static str = $prefix;

            /// A new id (UUID v7: time-ordered, random in its low bits).
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// The id as a UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }

            /// The id of a UUID (as read back from a store).
            pub fn from_uuid(uuid: uuid::Uuid) -> Self {
                $name(uuid)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Into a buffer, then one write: ids are formatted for every request sent.
                let mut buf = [0u8; 4 + uuid::fmt::Simple::LENGTH];
                buf[..4].copy_from_slice(Self::PREFIX.as_bytes());
                let hex = self.0.simple().encode_lower(&mut buf[4..]);
                let len = 4 + hex.len();
                match std::str::from_utf8(&buf[..len]) {
                    Ok(text) => f.pad(text),
                    Err(_) => write!(f, "{}{}", Self::PREFIX, self.0.simple()),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix(Self::PREFIX)
                    .filter(|hex| hex.len() == 32)
                    .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
                    .map($name)
                    .ok_or_else(|| ParseIdError { kind: $kind, prefix: Self::PREFIX, text: s.into() })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type! {
    /// The unique id of a message: `msg_` followed by a UUID v7 in hex.
    ///
    /// It is the `webhook-id` header of every delivery of the message, the same on every retry,
    /// so receivers can use it to ignore repeats. UUID v7 ids sort by creation time.
    ///
    /// ```
    /// use webhooks::MessageId;
    ///
    /// let id = MessageId::new();
    /// let text = id.to_string();
    /// assert!(text.starts_with("msg_") && text.len() == 36);
    /// assert_eq!(text.parse::<MessageId>().unwrap(), id);
    /// ```
    MessageId, "msg_", "message"
}

id_type! {
    /// The id of a subscription: `sub_` followed by a UUID v7 in hex.
    SubscriptionId, "sub_", "subscription"
}

id_type! {
    /// The id of one delivery (one message to one subscription): `dlv_` followed by a UUID v7.
    DeliveryId, "dlv_", "delivery"
}
