//! The few `#[serde(...)]` keys that decide how an enum's data is read back: the enum's
//! representation, and which variants serde can deserialize at all. Serde reports its own
//! mistakes, so anything not understood here is skipped silently.

use proc_macro2::TokenTree;
use syn::{Attribute, Token};

/// What the `#[serde(...)]` attributes of one item say, as far as the derive cares.
#[derive(Default)]
pub(crate) struct SerdeAttrs {
    /// `tag = "..."` (internally or adjacently tagged).
    pub(crate) tag: bool,
    /// `untagged`.
    pub(crate) untagged: bool,
    /// `skip` or `skip_deserializing`: serde's `Deserialize` leaves the variant out.
    pub(crate) skip_deserializing: bool,
    /// `skip` or `skip_serializing`: the field is never in the data.
    pub(crate) skip_serializing: bool,
    /// `skip_serializing_if = "..."`: the field may be missing.
    pub(crate) skip_serializing_if: bool,
    /// `rename = "..."` (not the `rename(serialize = ..)` form).
    pub(crate) rename: Option<String>,
    /// Keys the derived schema does not follow (`flatten`, `rename_all`, `transparent`,
    /// `rename(...)`, ...): the schema is not published rather than wrong.
    pub(crate) unsupported: bool,
}

impl SerdeAttrs {
    /// Reads the keys of every `#[serde(...)]` among `attrs`.
    pub(crate) fn parse(attrs: &[Attribute]) -> SerdeAttrs {
        let mut out = SerdeAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            // An error means a malformed attribute, which serde reports: keep what was read.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("tag") {
                    out.tag = true;
                } else if meta.path.is_ident("untagged") {
                    out.untagged = true;
                } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                    out.skip_deserializing = true;
                }
                if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                    out.skip_serializing = true;
                } else if meta.path.is_ident("skip_serializing_if") {
                    out.skip_serializing_if = true;
                } else if meta.path.is_ident("rename") && meta.input.peek(Token![=]) {
                    let value = meta.value()?;
                    if value.peek(syn::LitStr) {
                        out.rename = Some(value.parse::<syn::LitStr>()?.value());
                    } else {
                        out.unsupported = true;
                    }
                } else if [
                    "flatten",
                    "rename",
                    "rename_all",
                    "transparent",
                    "serialize_with",
                    "with",
                    "remote",
                    "into",
                    "getter",
                    "rename_all_fields",
                ]
                .iter()
                .any(|key| meta.path.is_ident(key))
                {
                    out.unsupported = true;
                }
                // Every key's value: `= tokens` up to the next `,`, or `(tokens)`.
                if meta.input.peek(Token![=]) {
                    let value = meta.value()?;
                    while !value.is_empty() && !value.peek(Token![,]) {
                        value.parse::<TokenTree>()?;
                    }
                } else if meta.input.peek(syn::token::Paren) {
                    meta.input.parse::<proc_macro2::Group>()?;
                }
                Ok(())
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::SerdeAttrs;
    use syn::{Attribute, parse_quote};

    fn parse(attrs: &[Attribute]) -> (bool, bool, bool) {
        let attrs = SerdeAttrs::parse(attrs);
        (attrs.tag, attrs.untagged, attrs.skip_deserializing)
    }

    #[test]
    fn reads_the_keys_among_any_others() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[serde(rename_all = "camelCase", bound(deserialize = "T: X"))]),
            parse_quote!(#[doc = "tag"]),
            parse_quote!(#[serde(tag = "t", content = "c")]),
        ];
        assert_eq!(parse(&attrs), (true, false, false));
        assert_eq!(
            parse(&[parse_quote!(#[serde(untagged)])]),
            (false, true, false)
        );
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[serde(rename(serialize = "a", deserialize = "b"), skip)]),
            parse_quote!(#[webhook(action = "skip")]),
        ];
        assert_eq!(parse(&attrs), (false, false, true));
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(alias = "x", skip_deserializing)])];
        assert_eq!(parse(&attrs), (false, false, true));
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(skip_serializing, other)])];
        assert_eq!(parse(&attrs), (false, false, false));
    }

    #[test]
    fn a_malformed_attribute_keeps_what_was_read() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(untagged, = "oops")])];
        assert_eq!(parse(&attrs), (false, true, false));
    }
}
