//! The rules for event names, checked at compile time.
//!
//! An event name is `resource` + separator + `action`. Both parts use lowercase ASCII letters,
//! digits and `_`; a resource may also use `.` between segments (`billing.invoice`) unless `.` is
//! the separator. The separator is `:` (webhooks.rb) or `.` (Standard Webhooks, Svix). A name is at
//! most [`MAX_EVENT_NAME_LEN`] bytes.

/// The longest event name allowed, in bytes.
pub(crate) const MAX_EVENT_NAME_LEN: usize = 128;

/// The separators allowed between resource and action.
pub(crate) const SEPARATORS: [char; 2] = [':', '.'];

/// Which part of the name is checked.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    Resource,
    Action,
}

impl Part {
    fn key(self) -> &'static str {
        match self {
            Part::Resource => "resource",
            Part::Action => "action",
        }
    }
}

/// Checks one part of an event name; the message says what is wrong and what is allowed.
pub(crate) fn check(part: Part, value: &str, separator: char) -> Result<(), String> {
    let key = part.key();
    if value.is_empty() {
        return Err(format!("`{key}` must not be empty"));
    }
    if value.contains(separator) {
        return Err(format!(
            "`{key}` must not contain the separator `{separator}`: the event name is \
             `resource{separator}action`, give each part separately"
        ));
    }
    let dots_allowed = matches!(part, Part::Resource) && separator != '.';
    let allowed = if dots_allowed {
        "lowercase ASCII letters, digits, `_`, and `.` between segments"
    } else {
        "lowercase ASCII letters, digits and `_`"
    };
    if let Some(bad) = value.chars().find(|&c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (c == '.' && dots_allowed))
    }) {
        let hint = if value.chars().any(|c| c.is_ascii_uppercase()) {
            format!(" (did you mean `{}`?)", crate::case::snake_case(value))
        } else {
            String::new()
        };
        return Err(format!(
            "invalid `{key}` \"{value}\": `{bad}` is not allowed; use {allowed}{hint}"
        ));
    }
    if dots_allowed && (value.starts_with('.') || value.ends_with('.') || value.contains("..")) {
        return Err(format!(
            "invalid `{key}` \"{value}\": `.` separates segments, so it cannot start or end \
             the resource or appear twice in a row"
        ));
    }
    Ok(())
}

/// Parses the value of `separator = "..."`.
pub(crate) fn parse_separator(value: &str) -> Result<char, String> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if SEPARATORS.contains(&c) => Ok(c),
        _ => Err(format!(
            "unsupported separator \"{value}\": expected \":\" (the default) or \".\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Part, check, parse_separator};

    #[test]
    fn accepts_valid_parts() {
        assert!(check(Part::Resource, "random_number", ':').is_ok());
        assert!(check(Part::Resource, "billing.invoice", ':').is_ok());
        assert!(check(Part::Resource, "v2", ':').is_ok());
        assert!(check(Part::Action, "generate", ':').is_ok());
        assert!(check(Part::Action, "generate", '.').is_ok());
    }

    #[test]
    fn rejects_invalid_parts() {
        for (part, value, sep) in [
            (Part::Resource, "", ':'),
            (Part::Action, "", ':'),
            (Part::Resource, "a:b", ':'),
            (Part::Resource, "a.b", '.'),
            (Part::Action, "a.b", ':'),
            (Part::Resource, "Random", ':'),
            (Part::Resource, "a-b", ':'),
            (Part::Resource, ".a", ':'),
            (Part::Resource, "a.", ':'),
            (Part::Resource, "a..b", ':'),
            (Part::Action, "é", ':'),
        ] {
            assert!(check(part, value, sep).is_err(), "{value:?} with {sep:?}");
        }
    }

    #[test]
    fn separators() {
        assert_eq!(parse_separator(":"), Ok(':'));
        assert_eq!(parse_separator("."), Ok('.'));
        for bad in ["", "/", "::", "-"] {
            assert!(parse_separator(bad).is_err(), "{bad:?}");
        }
    }
}
