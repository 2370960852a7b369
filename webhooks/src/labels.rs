//! [`Labels`]: the `(name, value)` pairs an event carries and subscriptions are scoped by.

use std::borrow::Cow;
use std::fmt;

/// The scope labels of an event: an ordered set of `(name, value)` pairs, names unique.
///
/// A derived event takes them from its fields marked `#[webhook(label)]`. A subscription that
/// asks for labels receives an event only when every label it names has the same value on the
/// event.
///
/// ```
/// use webhooks::Labels;
///
/// let mut labels = Labels::new();
/// labels.insert("county", "denver");
/// labels.insert("account", 42.to_string());
/// assert_eq!(labels.get("county"), Some("denver"));
/// assert_eq!(labels.len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Vec<(Cow<'static, str>, String)>);

impl Labels {
    /// An empty set: the labels of an event without `#[webhook(label)]` fields.
    pub const fn new() -> Self {
        Labels(Vec::new())
    }

    /// No labels, with room for `capacity`.
    pub fn with_capacity(capacity: usize) -> Self {
        Labels(Vec::with_capacity(capacity))
    }

    /// Sets a label, replacing the value of a label with the same name.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The value of a label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `(name, value)` pairs, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every label of `required` is present here with the same value.
    pub fn contains_all(&self, required: &Labels) -> bool {
        required
            .iter()
            .all(|(name, value)| self.get(name) == Some(value))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<N, V> FromIterator<(N, V)> for Labels
where
    N: Into<Cow<'static, str>>,
    V: Into<String>,
{
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut labels = Labels::new();
        for (name, value) in iter {
            labels.insert(name, value);
        }
        labels
    }
}

impl<N, V> Extend<(N, V)> for Labels
where
    N: Into<Cow<'static, str>>,
    V: Into<String>,
{
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.insert(name, value);
        }
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Kept in the stored order: a JSON object read back as pairs.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Labels, A::Error> {
                let mut labels = Labels::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    labels.insert(name, value);
                }
                Ok(labels)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
