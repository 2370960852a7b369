//! [`EventPattern`]: which event names a subscription receives.

use std::fmt;

use crate::MAX_EVENT_TYPE_LEN;

/// A pattern over event names: an exact name (`bear_attack:reported`), every event of a resource
/// (`random_number:*`, or `billing.*` for every resource under `billing.`), or everything (`*`).
///
/// ```
/// use webhooks::EventPattern;
///
/// let pattern: EventPattern = "random_number:*".parse()?;
/// assert!(pattern.matches("random_number:generate"));
/// assert!(!pattern.matches("bear_attack:reported"));
/// assert!("*".parse::<EventPattern>()?.matches("bear_attack:reported"));
/// assert!("random number".parse::<EventPattern>().is_err());
/// # Ok::<(), webhooks::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventPattern(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    All,
    Exact(String),
    /// The text before `*`, ending with the separator.
    Prefix(String),
}

impl EventPattern {
    /// Parses a pattern; see the type's docs for the forms.
    pub fn parse(pattern: &str) -> Result<Self, crate::Error> {
        let invalid = |reason: &'static str| crate::Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern == "*" {
            return Ok(EventPattern(Kind::All));
        }
        if pattern.is_empty() {
            return Err(invalid("it is empty"));
        }
        if pattern.len() > MAX_EVENT_TYPE_LEN {
            return Err(invalid("it is longer than 128 bytes"));
        }
        let (name, wildcard) = match pattern.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (pattern, false),
        };
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':')
        }) {
            return Err(invalid(
                "use lowercase ASCII letters, digits, `_`, `.` and `:`, with `*` only at the end",
            ));
        }
        if wildcard {
            if !(name.ends_with(':') || name.ends_with('.')) || name.len() < 2 {
                return Err(invalid(
                    "`*` stands for a whole part: write `resource:*` or `resource.*` (or `*` alone)",
                ));
            }
            Ok(EventPattern(Kind::Prefix(name.to_owned())))
        } else {
            Ok(EventPattern(Kind::Exact(name.to_owned())))
        }
    }

    /// Whether an event name matches.
    #[inline]
    pub fn matches(&self, event_type: &str) -> bool {
        match &self.0 {
            Kind::All => true,
            Kind::Exact(name) => name == event_type,
            Kind::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
        }
    }

    /// The text before `*` (ending with `:` or `.`), if this is a `resource:*` wildcard.
    pub(crate) fn as_prefix(&self) -> Option<&str> {
        match &self.0 {
            Kind::Prefix(prefix) => Some(prefix),
            _ => None,
        }
    }

    /// The exact name this pattern matches, if it is not a wildcard.
    pub fn as_exact(&self) -> Option<&str> {
        match &self.0 {
            Kind::Exact(name) => Some(name),
            _ => None,
        }
    }
}

impl std::str::FromStr for EventPattern {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventPattern::parse(s)
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::All => f.write_str("*"),
            Kind::Exact(name) => f.write_str(name),
            Kind::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl fmt::Debug for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventPattern({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::EventPattern;

    #[test]
    fn matching() {
        let cases = [
            ("*", "a:b", true),
            ("random_number:*", "random_number:generate", true),
            ("random_number:*", "random_numbers:generate", false),
            ("random_number:generate", "random_number:generate", true),
            ("random_number:generate", "random_number:generated", false),
            ("invoice.*", "invoice.paid", true),
            ("billing.*", "billing.invoice:paid", true),
            ("billing.*", "billingx.invoice:paid", false),
        ];
        for (pattern, event, expected) in cases {
            let parsed = EventPattern::parse(pattern).unwrap();
            assert_eq!(parsed.matches(event), expected, "{pattern} vs {event}");
            assert_eq!(parsed.to_string(), pattern);
        }
    }

    #[test]
    fn invalid_patterns() {
        for bad in [
            "",
            "**",
            "a*",
            ":*",
            "Random:*",
            "a:*:b",
            "a b",
            "a:b*c",
            &"a".repeat(129),
        ] {
            assert!(EventPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
