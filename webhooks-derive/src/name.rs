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
    let dots_allowed = matches!(part, Part::Resource) && separator != '.';
    if value.contains(separator) {
        let why = match part {
            // `billing.invoice.paid` could not be split back into resource and action.
            Part::Resource if separator == '.' => {
                "with `separator = \".\"` a resource has a single segment".to_owned()
            }
            Part::Resource => format!(
                "`{separator}` goes only between the resource and the action, and `.` \
                 separates the segments of a resource"
            ),
            Part::Action => format!("the event name is `resource{separator}action`"),
        };
        return Err(format!(
            "invalid `{key}` \"{value}\": it contains the separator `{separator}`; \
             {why}{}",
            hint(part, value, separator)
        ));
    }
    let allowed = if dots_allowed {
        "lowercase ASCII letters, digits, `_`, and `.` between segments"
    } else {
        "lowercase ASCII letters, digits and `_`"
    };
    if let Some(bad) = value.chars().find(|&c| !allowed_char(c, dots_allowed)) {
        return Err(format!(
            "invalid `{key}` \"{value}\": {} is not allowed; use {allowed}{}",
            describe(bad),
            hint(part, value, separator)
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

/// What [`check`] accepts, without building a message (the hint uses it on its suggestion).
fn is_valid(part: Part, value: &str, separator: char) -> bool {
    let dots_allowed = matches!(part, Part::Resource) && separator != '.';
    !value.is_empty()
        && !value.contains(separator)
        && value.chars().all(|c| allowed_char(c, dots_allowed))
        && !(dots_allowed
            && (value.starts_with('.') || value.ends_with('.') || value.contains("..")))
}

/// A character as a message shows it: in backticks, or in words where backticks would hide it.
pub(crate) fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_whitespace() || c.is_control() => format!("`{}`", c.escape_debug()),
        c => format!("`{c}`"),
    }
}

fn allowed_char(c: char, dots_allowed: bool) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (c == '.' && dots_allowed)
}

/// ` (did you mean `...`?)` with a valid spelling of `value`, when one is evident: snake_case,
/// and `_` for anything else not allowed (`.` between a resource's segments where it may be).
fn hint(part: Part, value: &str, separator: char) -> String {
    if !value.is_ascii() {
        return String::new();
    }
    let dots_allowed = matches!(part, Part::Resource) && separator != '.';
    let mut fixed = String::with_capacity(value.len());
    for c in crate::case::snake_case(value).chars() {
        let c = match c {
            c if allowed_char(c, dots_allowed) && c != separator => c,
            ':' if dots_allowed => '.',
            _ => '_',
        };
        // `bear - attack` → `bear_attack`, not `bear___attack`.
        if !(c == '_' && fixed.ends_with('_')) {
            fixed.push(c);
        }
    }
    // Only the `_` that stood for something else: `paid!` → `paid`.
    let fixed = match (value.starts_with('_'), value.ends_with('_')) {
        (false, false) => fixed.trim_matches('_'),
        (false, true) => fixed.trim_start_matches('_'),
        (true, false) => fixed.trim_end_matches('_'),
        (true, true) => &fixed,
    };
    if fixed != value && is_valid(part, fixed, separator) {
        format!(" (did you mean `{fixed}`?)")
    } else {
        String::new()
    }
}

/// A resource so long that no event name built on it fits, whatever the action.
pub(crate) fn check_resource_len(resource: &str) -> Result<(), String> {
    // The shortest name is the resource, the separator and a one-byte action.
    if resource.len() + 2 > MAX_EVENT_NAME_LEN {
        return Err(format!(
            "`resource` is {} bytes long: with the separator and an action, its event names \
             would exceed the limit of {MAX_EVENT_NAME_LEN} bytes",
            resource.len()
        ));
    }
    Ok(())
}

/// A whole event name.
pub(crate) fn check_len(event_type: &str) -> Result<(), String> {
    if event_type.len() > MAX_EVENT_NAME_LEN {
        // The length first: the name itself may run past the edge of the terminal.
        return Err(format!(
            "the event name is {} bytes long, over the limit of {MAX_EVENT_NAME_LEN} bytes; \
             shorten the resource or the action: `{event_type}`",
            event_type.len()
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
    use super::{MAX_EVENT_NAME_LEN, Part, check, check_len, check_resource_len, parse_separator};

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
    fn hints_suggest_a_valid_spelling() {
        let hint = |part, value, sep| check(part, value, sep).err().unwrap_or_default();
        assert!(hint(Part::Resource, "BearAttack", ':').ends_with("(did you mean `bear_attack`?)"));
        assert!(hint(Part::Resource, "bear - attack", ':').ends_with("`bear_attack`?)"));
        assert!(hint(Part::Resource, "invoice:line", ':').ends_with("`invoice.line`?)"));
        assert!(hint(Part::Resource, "billing.invoice", '.').ends_with("`billing_invoice`?)"));
        assert!(hint(Part::Action, "payment.failed", ':').ends_with("`payment_failed`?)"));
        assert!(hint(Part::Action, "paid!", ':').ends_with("(did you mean `paid`?)"));
        assert!(!hint(Part::Action, "é", ':').contains("did you mean"));
        assert!(!hint(Part::Action, "!", ':').contains("did you mean"));
    }

    #[test]
    fn lengths() {
        assert!(check_resource_len(&"r".repeat(MAX_EVENT_NAME_LEN - 2)).is_ok());
        assert!(check_resource_len(&"r".repeat(MAX_EVENT_NAME_LEN - 1)).is_err());
        assert!(check_len(&"n".repeat(MAX_EVENT_NAME_LEN)).is_ok());
        assert!(check_len(&"n".repeat(MAX_EVENT_NAME_LEN + 1)).is_err());
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
