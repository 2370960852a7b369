//! The default resource name: the type's name in snake_case.

/// `RandomNumber` → `random_number`, `HTTPRequest` → `http_request`, `Utf8Error` → `utf8_error`.
pub(crate) fn snake_case(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            // A word starts at an uppercase letter after a lowercase letter or digit, and at the
            // last capital of an acronym that is followed by a lowercase letter (`HTTPRequest`).
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn converts_type_names() {
        for (ident, expected) in [
            ("RandomNumber", "random_number"),
            ("BearAttack", "bear_attack"),
            ("HTTPRequest", "http_request"),
            ("Utf8Error", "utf8_error"),
            ("Invoice", "invoice"),
            ("already_snake", "already_snake"),
            ("ABC", "abc"),
            ("r#Type", "type"),
            ("Order_Placed", "order_placed"),
        ] {
            assert_eq!(snake_case(ident), expected, "{ident}");
        }
    }
}
