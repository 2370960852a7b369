//! Parses a `DeriveInput` and its `#[webhook(...)]` attributes into the model that [`crate::expand`]
//! turns into code. Every mistake is recorded in the [`Ctxt`] with the span of the offending token;
//! parsing goes on after a mistake so that one build reports all of them.

use std::fmt;

use proc_macro2::{Span, TokenTree};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Member, Token, Type};

use crate::case::snake_case;
use crate::ctxt::Ctxt;
use crate::name::{self, MAX_EVENT_NAME_LEN, Part};

/// A type that derives `WebhookEvent`, checked.
pub(crate) struct Model<'a> {
    /// The path to the runtime crate (`::webhooks` unless `crate = "..."`).
    pub(crate) krate: syn::Path,
    pub(crate) kind: Kind<'a>,
}

pub(crate) enum Kind<'a> {
    Struct {
        event_type: String,
        labels: Vec<LabelField<'a>>,
    },
    Enum {
        variants: Vec<Variant<'a>>,
    },
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) event_type: String,
    pub(crate) labels: Vec<LabelField<'a>>,
}

/// A field marked `#[webhook(label)]`.
pub(crate) struct LabelField<'a> {
    pub(crate) member: Member,
    pub(crate) key: String,
    pub(crate) ty: &'a Type,
    /// An `Option<T>` field: the label is present only when the value is.
    pub(crate) optional: bool,
}

/// Where an attribute stands; decides which keys it may hold.
#[derive(Clone, Copy, PartialEq)]
enum Position {
    Struct,
    Enum,
    Variant,
    Field,
}

impl Position {
    fn allowed(self) -> &'static str {
        match self {
            Position::Struct => "`resource`, `action`, `separator`, `crate`",
            Position::Enum => "`resource`, `separator`, `crate`",
            Position::Variant => "`action`",
            Position::Field => "`label`",
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Position::Struct => "a struct",
            Position::Enum => "an enum",
            Position::Variant => "a variant",
            Position::Field => "a field",
        })
    }
}

/// The keys found in the `#[webhook(...)]` attributes of one item.
#[derive(Default)]
struct Attrs {
    resource: Option<LitStr>,
    action: Option<LitStr>,
    separator: Option<LitStr>,
    krate: Option<LitStr>,
    /// `label` (the span of the key) or `label = "name"`.
    label: Option<(Span, Option<LitStr>)>,
}

/// Reads every `#[webhook(...)]` attribute of one item.
fn parse_attrs(cx: &mut Ctxt, attrs: &[Attribute], pos: Position) -> Attrs {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("webhook")) {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            cx.error(attr, "expected `#[webhook(key = \"value\", ...)]`");
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(Ident::to_string).unwrap_or_default();
            let key_span = meta.path.span();
            match key.as_str() {
                "resource" | "action" | "separator" | "crate" => {
                    let value = meta.value()?;
                    let lit = if value.peek(LitStr) {
                        Some(value.parse::<LitStr>()?)
                    } else {
                        let token: TokenTree = value.parse()?;
                        cx.error(&token, format!("expected a string literal: `{key} = \"...\"`"));
                        None
                    };
                    let slot = match key.as_str() {
                        "resource" => &mut out.resource,
                        "action" => &mut out.action,
                        "separator" => &mut out.separator,
                        _ => &mut out.krate,
                    };
                    if slot.is_some() {
                        cx.error_at(key_span, format!("duplicate key `{key}`"));
                    } else if let Some(lit) = lit {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        *slot = Some(lit);
                    }
                }
                "label" => {
                    let name = if meta.input.peek(Token![=]) {
                        let value = meta.value()?;
                        if value.peek(LitStr) {
                            Some(value.parse::<LitStr>()?)
                        } else {
                            let token: TokenTree = value.parse()?;
                            cx.error(&token, "expected a string literal: `label = \"name\"`");
                            None
                        }
                    } else {
                        None
                    };
                    if out.label.is_some() {
                        cx.error_at(key_span, "duplicate key `label`");
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        out.label = Some((key_span, name));
                    }
                }
                _ => {
                    skip_value(&meta)?;
                    let shown = if key.is_empty() {
                        quote::ToTokens::to_token_stream(&meta.path).to_string()
                    } else {
                        key
                    };
                    cx.error_at(
                        key_span,
                        format!(
                            "unknown key `{shown}` in #[webhook(...)] on {pos}; expected one of: {}",
                            pos.allowed()
                        ),
                    );
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    out
}

/// The message for a known key written where it does not belong, if it does not.
fn misplaced(key: &str, pos: Position) -> Option<String> {
    use Position::*;
    let message = match (key, pos) {
        ("resource" | "separator" | "crate", Struct | Enum) => return None,
        ("action", Struct | Variant) => return None,
        ("label", Field) => return None,
        ("action", Enum) => {
            "`action` goes on each variant of an enum, not on the enum: \
             `#[webhook(action = \"...\")]` above each variant"
        }
        ("resource", Variant) => {
            "`resource` is set once, on the enum; a variant sets only its `action`"
        }
        ("separator" | "crate", Variant) => {
            return Some(format!("`{key}` is set on the enum, not on a variant"));
        }
        ("label", Struct | Enum | Variant) => {
            "`label` goes on a field: `#[webhook(label)] county: String`"
        }
        (_, Field) => {
            return Some(format!(
                "`{key}` does not belong on a field; a field takes only `label`"
            ));
        }
        _ => return None,
    };
    Some(message.to_owned())
}

/// Consumes the value of an unknown key (`= tokens` or `(tokens)`) so that parsing can go on.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let value = meta.value()?;
        while !value.is_empty() && !value.peek(Token![,]) {
            value.parse::<TokenTree>()?;
        }
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

/// Parses and checks the whole input.
pub(crate) fn parse<'a>(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Model<'a>> {
    let pos = match &input.data {
        Data::Struct(_) => Position::Struct,
        Data::Enum(_) => Position::Enum,
        Data::Union(data) => {
            cx.error(
                data.union_token,
                "`WebhookEvent` cannot be derived for a union: use a struct or an enum",
            );
            return None;
        }
    };
    let attrs = parse_attrs(cx, &input.attrs, pos);

    let krate = match &attrs.krate {
        Some(lit) => lit.parse::<syn::Path>().unwrap_or_else(|e| {
            cx.error(lit, format!("invalid `crate` path: {e}"));
            default_crate()
        }),
        None => default_crate(),
    };

    let separator = match &attrs.separator {
        Some(lit) => name::parse_separator(&lit.value()).unwrap_or_else(|message| {
            cx.error(lit, message);
            ':'
        }),
        None => ':',
    };

    // The resource: given, or the type's name in snake_case.
    let resource = match &attrs.resource {
        Some(lit) => {
            let value = lit.value();
            if let Err(message) = name::check(Part::Resource, &value, separator) {
                cx.error(lit, message);
            }
            value
        }
        None => {
            let value = snake_case(&input.ident.to_string());
            if let Err(message) = name::check(Part::Resource, &value, separator) {
                cx.error(
                    &input.ident,
                    format!(
                        "cannot use the type's name as the resource ({message}); \
                         set it with #[webhook(resource = \"...\")]"
                    ),
                );
            }
            value
        }
    };

    let kind = match &input.data {
        Data::Struct(data) => {
            let event_type = match &attrs.action {
                Some(action) => event_type(cx, &resource, separator, action),
                None => {
                    cx.error(
                        &input.ident,
                        format!(
                            "missing `action`: add #[webhook(action = \"...\")] to `{}`; \
                             its events are named `{resource}{separator}<action>`",
                            input.ident
                        ),
                    );
                    String::new()
                }
            };
            let labels = labels(cx, &data.fields);
            Kind::Struct { event_type, labels }
        }
        Data::Enum(data) => {
            if data.variants.is_empty() {
                cx.error(
                    &input.ident,
                    "an enum without variants has no events: add variants with \
                     #[webhook(action = \"...\")]",
                );
            }
            let mut variants: Vec<Variant<'_>> = Vec::with_capacity(data.variants.len());
            for variant in &data.variants {
                let vattrs = parse_attrs(cx, &variant.attrs, Position::Variant);
                let event_type = match &vattrs.action {
                    Some(action) => {
                        let event_type = event_type(cx, &resource, separator, action);
                        if let Some(first) = variants
                            .iter()
                            .find(|v| !event_type.is_empty() && v.event_type == event_type)
                        {
                            cx.error(
                                action,
                                format!(
                                    "duplicate event name `{event_type}`: variant `{}` already \
                                     produces it",
                                    first.ident
                                ),
                            );
                        }
                        event_type
                    }
                    None => {
                        cx.error(
                            &variant.ident,
                            format!(
                                "variant `{}` has no `action`: add #[webhook(action = \"...\")] \
                                 above it",
                                variant.ident
                            ),
                        );
                        String::new()
                    }
                };
                let labels = labels(cx, &variant.fields);
                variants.push(Variant {
                    ident: &variant.ident,
                    event_type,
                    labels,
                });
            }
            Kind::Enum { variants }
        }
        Data::Union(_) => return None,
    };
    Some(Model { krate, kind })
}

fn default_crate() -> syn::Path {
    syn::parse_quote!(::webhooks)
}

/// Checks `action` and joins it to the resource; an invalid part yields an empty name.
fn event_type(cx: &mut Ctxt, resource: &str, separator: char, action: &LitStr) -> String {
    let value = action.value();
    if let Err(message) = name::check(Part::Action, &value, separator) {
        cx.error(action, message);
        return String::new();
    }
    let event_type = format!("{resource}{separator}{value}");
    if event_type.len() > MAX_EVENT_NAME_LEN {
        cx.error(
            action,
            format!(
                "the event name `{event_type}` is {} bytes long; the limit is \
                 {MAX_EVENT_NAME_LEN}",
                event_type.len()
            ),
        );
    }
    event_type
}

/// The label fields of a struct or variant; also rejects misplaced keys on every field.
fn labels<'a>(cx: &mut Ctxt, fields: &'a Fields) -> Vec<LabelField<'a>> {
    let mut labels: Vec<LabelField<'a>> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let attrs = parse_attrs(cx, &field.attrs, Position::Field);
        let Some((span, name)) = attrs.label else {
            continue;
        };
        let key = match (&field.ident, &name) {
            (_, Some(lit)) => {
                let key = lit.value();
                if let Err(message) = check_label_key(&key) {
                    cx.error(lit, message);
                }
                key
            }
            (Some(ident), None) => ident.to_string().trim_start_matches("r#").to_owned(),
            (None, None) => {
                cx.error_at(
                    span,
                    "a tuple field has no name to use as the label's key: name it with \
                     #[webhook(label = \"...\")]",
                );
                continue;
            }
        };
        if matches!(&field.ty, Type::Tuple(t) if t.elems.is_empty()) {
            cx.error_at(
                span,
                "a label on a field of type `()` would always be empty",
            );
            continue;
        }
        if labels.iter().any(|l| l.key == key) {
            cx.error_at(span, format!("duplicate label `{key}` in the same event"));
            continue;
        }
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::Unnamed(syn::Index {
                index: index as u32,
                span: field.ty.span(),
            }),
        };
        labels.push(LabelField {
            member,
            key,
            ty: &field.ty,
            optional: is_option(&field.ty),
        });
    }
    labels
}

/// Label keys: ASCII letters, digits, `_`, `-` and `.`.
fn check_label_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a label's name must not be empty".to_owned());
    }
    match key
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(bad) => Err(format!(
            "invalid label name \"{key}\": `{bad}` is not allowed; use ASCII letters, digits, \
             `_`, `-` and `.`"
        )),
        None => Ok(()),
    }
}

/// `Option<T>` written as such (the macro sees only syntax, as serde's `default` handling does).
fn is_option(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    path.qself.is_none()
        && path.path.segments.last().is_some_and(|s| {
            s.ident == "Option" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        })
}
