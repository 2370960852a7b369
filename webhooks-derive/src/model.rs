//! Parses a `DeriveInput` and its `#[webhook(...)]` attributes into the model that [`crate::expand`]
//! turns into code. Every mistake is recorded in the [`Ctxt`] with the span of the offending token;
//! parsing goes on after a mistake so that one build reports all of them.
//!
//! One file past 600 lines on purpose: the type's, the variants' and the fields' attributes
//! share one parser for `#[webhook(...)]` and one set of placement checks.

use std::fmt;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Member, Token, Type};

use crate::case::snake_case;
use crate::ctxt::Ctxt;
use crate::name::{self, Part};
use crate::serde_attrs::SerdeAttrs;

/// A type that derives `WebhookEvent`, checked.
pub(crate) struct Model<'a> {
    /// The path to the runtime crate (`::webhooks` unless `crate = "..."`).
    pub(crate) krate: syn::Path,
    pub(crate) kind: Kind<'a>,
    /// The type's doc comment: the description of every event that has none of its own.
    pub(crate) description: Option<String>,
}

/// What the catalog says of one event, besides its name.
#[derive(Default)]
pub(crate) struct Docs {
    /// The doc comment of the struct or variant.
    pub(crate) description: Option<String>,
    /// `deprecated` (an empty note) or `deprecated = "note"`.
    pub(crate) deprecated: Option<String>,
    /// `example = "path"`: a `fn() -> Self`.
    pub(crate) example: Option<syn::Path>,
}

pub(crate) enum Kind<'a> {
    Struct {
        event_type: String,
        labels: Vec<LabelField<'a>>,
        ordering_key: Option<KeyField<'a>>,
        docs: Docs,
    },
    Enum {
        variants: Vec<Variant<'a>>,
        /// Serde's default representation (no `tag`, no `untagged`): the data is a variant's
        /// content without its tag, so reading it back needs the event name to pick the variant.
        externally_tagged: bool,
    },
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) event_type: String,
    pub(crate) labels: Vec<LabelField<'a>>,
    pub(crate) ordering_key: Option<KeyField<'a>>,
    /// The variant's index among those serde deserializes (it numbers only those), or `None`
    /// for a variant marked `#[serde(skip)]` or `#[serde(skip_deserializing)]`.
    pub(crate) serde_index: Option<u32>,
    pub(crate) docs: Docs,
}

/// A field marked `#[webhook(label)]`.
pub(crate) struct LabelField<'a> {
    pub(crate) member: Member,
    pub(crate) key: String,
    /// The type whose `Display` text is the label's value: the field's, or `T` of `Option<T>`.
    pub(crate) ty: &'a Type,
    /// An `Option<T>` field: the label is present only when the value is.
    pub(crate) optional: bool,
}

/// The field marked `#[webhook(ordering_key)]`.
pub(crate) struct KeyField<'a> {
    pub(crate) member: Member,
    /// The type whose `Display` text is the key: the field's, or `T` of `Option<T>`.
    pub(crate) ty: &'a Type,
    /// An `Option<T>` field: the event has a key only when the value is `Some`.
    pub(crate) optional: bool,
}

/// Every key the attribute knows, wherever it goes.
const KEYS: [&str; 8] = [
    "resource",
    "action",
    "separator",
    "crate",
    "label",
    "ordering_key",
    "deprecated",
    "example",
];

/// Where an attribute stands; decides which keys it may hold.
#[derive(Clone, Copy, PartialEq)]
enum Position {
    Struct,
    Enum,
    Variant,
    Field,
}

impl Position {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Position::Struct => &[
                "resource",
                "action",
                "separator",
                "crate",
                "deprecated",
                "example",
            ],
            Position::Enum => &["resource", "separator", "crate"],
            Position::Variant => &["action", "deprecated", "example"],
            Position::Field => &["label", "ordering_key"],
        }
    }

    /// What a well-formed attribute looks like here.
    fn example(self) -> &'static str {
        match self {
            Position::Struct => "#[webhook(resource = \"...\", action = \"...\")]",
            Position::Enum => "#[webhook(resource = \"...\")]",
            Position::Variant => "#[webhook(action = \"...\")]",
            Position::Field => {
                "#[webhook(label)], #[webhook(label = \"...\")] or #[webhook(ordering_key)]"
            }
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
    /// `ordering_key`: the span of the key.
    ordering_key: Option<Span>,
    /// `deprecated` (no note) or `deprecated = "note"`.
    deprecated: Option<Option<LitStr>>,
    /// `example = "path::to::fn"`, parsed.
    example: Option<syn::Path>,
    /// Some attribute was not understood (and is reported): what it meant to set is unknown, so
    /// nothing is reported as missing, which would be a second error for the same mistake.
    malformed: bool,
}

/// Reads every `#[webhook(...)]` attribute of one item.
fn parse_attrs(cx: &mut Ctxt, attrs: &[Attribute], pos: Position) -> Attrs {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("webhook")) {
        match &attr.meta {
            syn::Meta::List(_) => {}
            syn::Meta::Path(_) => {
                cx.error(attr, format!("`#[webhook]` needs keys: {}", pos.example()));
                out.malformed = true;
                continue;
            }
            syn::Meta::NameValue(nv) => {
                cx.error(
                    attr,
                    format!(
                        "expected a list of keys: {}",
                        name_value_hint(&nv.value, pos).unwrap_or(pos.example().to_owned())
                    ),
                );
                out.malformed = true;
                continue;
            }
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            let key_span = meta.path.span();
            match key.as_str() {
                "resource" | "action" | "separator" | "crate" => {
                    let Some(lit) = string_value(cx, &meta, &key)? else {
                        out.malformed = true;
                        return Ok(());
                    };
                    let slot = match key.as_str() {
                        "resource" => &mut out.resource,
                        "action" => &mut out.action,
                        "separator" => &mut out.separator,
                        _ => &mut out.krate,
                    };
                    if slot.is_some() {
                        cx.error_at(key_span, format!("duplicate key `{key}`: give it once"));
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        *slot = Some(lit);
                    }
                }
                "label" => {
                    let name = if meta.input.peek(Token![=]) {
                        let Some(lit) = string_value(cx, &meta, &key)? else {
                            out.malformed = true;
                            return Ok(());
                        };
                        Some(lit)
                    } else if meta.input.peek(syn::token::Paren) {
                        meta.input.parse::<proc_macro2::Group>()?;
                        cx.error_at(key_span, "expected `label` or `label = \"name\"`");
                        out.malformed = true;
                        return Ok(());
                    } else {
                        None
                    };
                    if out.label.is_some() {
                        cx.error_at(key_span, "duplicate key `label`: give it once");
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        out.label = Some((key_span, name));
                    }
                }
                "deprecated" => {
                    let note = if meta.input.peek(Token![=]) && !meta.input.peek2(LitStr) {
                        let value = meta.value()?;
                        let mut tokens = TokenStream::new();
                        while !value.is_empty() && !value.peek(Token![,]) {
                            tokens.extend([value.parse::<TokenTree>()?]);
                        }
                        cx.error(
                            tokens,
                            "expected a string: `deprecated` alone, or with a note: \
                             `deprecated = \"use ... instead\"`",
                        );
                        out.malformed = true;
                        return Ok(());
                    } else if meta.input.peek(Token![=]) {
                        let Some(lit) = string_value(cx, &meta, &key)? else {
                            out.malformed = true;
                            return Ok(());
                        };
                        Some(lit)
                    } else if meta.input.peek(syn::token::Paren) {
                        meta.input.parse::<proc_macro2::Group>()?;
                        cx.error_at(key_span, "expected `deprecated` or `deprecated = \"note\"`");
                        out.malformed = true;
                        return Ok(());
                    } else {
                        None
                    };
                    if out.deprecated.is_some() {
                        cx.error_at(key_span, "duplicate key `deprecated`: give it once");
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        out.deprecated = Some(note);
                    }
                }
                "example" => {
                    let Some(lit) = string_value(cx, &meta, &key)? else {
                        out.malformed = true;
                        return Ok(());
                    };
                    let path = match lit.parse::<syn::Path>() {
                        Ok(path) => path,
                        Err(_) => {
                            cx.error(
                                &lit,
                                "`example` names a function: `example = \"path::to::fn\"`, \
                                 a `fn() -> Self`",
                            );
                            out.malformed = true;
                            return Ok(());
                        }
                    };
                    if out.example.is_some() {
                        cx.error_at(key_span, "duplicate key `example`: give it once");
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        out.example = Some(path);
                    }
                }
                "ordering_key" => {
                    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                        // `= "..."` or `(...)`: point at what to delete.
                        let mut value = TokenStream::new();
                        while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                            value.extend([meta.input.parse::<TokenTree>()?]);
                        }
                        cx.error(
                            value,
                            "`ordering_key` takes no value: the key is the field's own value; \
                             write `#[webhook(ordering_key)]`",
                        );
                        out.malformed = true;
                        return Ok(());
                    }
                    if out.ordering_key.is_some() {
                        cx.error_at(key_span, "duplicate key `ordering_key`: give it once");
                    } else {
                        if let Some(message) = misplaced(&key, pos) {
                            cx.error_at(key_span, message);
                        }
                        out.ordering_key = Some(key_span);
                    }
                }
                _ => {
                    skip_value(&meta)?;
                    let shown = if key.is_empty() {
                        quote::ToTokens::to_token_stream(&meta.path).to_string()
                    } else {
                        key
                    };
                    cx.error_at(key_span, unknown_key(&shown, pos));
                    out.malformed = true;
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.push(error);
            out.malformed = true;
        }
    }
    out
}

/// Reads `= "..."` after a key. Anything else is reported, up to the next `,`, and yields `None`.
fn string_value(
    cx: &mut Ctxt,
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        if meta.input.peek(syn::token::Paren) {
            meta.input.parse::<proc_macro2::Group>()?;
        }
        cx.error(&meta.path, format!("expected a value: `{key} = \"...\"`"));
        return Ok(None);
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        return value.parse().map(Some);
    }
    let mut tokens = TokenStream::new();
    while !value.is_empty() && !value.peek(Token![,]) {
        tokens.extend([value.parse::<TokenTree>()?]);
    }
    // `action = paid` → `action = "paid"`.
    let shown = match tokens.clone().into_iter().collect::<Vec<_>>().as_slice() {
        [TokenTree::Ident(ident)] => ident.to_string(),
        [TokenTree::Literal(lit)] => lit.to_string().trim_matches('\'').to_owned(),
        _ => "...".to_owned(),
    };
    if tokens.is_empty() {
        cx.error(&meta.path, format!("expected a value: `{key} = \"...\"`"));
    } else {
        cx.error(
            tokens,
            format!("expected a string literal: `{key} = \"{shown}\"`"),
        );
    }
    Ok(None)
}

/// For `#[webhook = "invoice:paid"]` on a struct: the list that says the same.
fn name_value_hint(value: &syn::Expr, pos: Position) -> Option<String> {
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(lit),
        ..
    }) = value
    else {
        return None;
    };
    let name = lit.value();
    match pos {
        Position::Struct => {
            let (resource, action, separator) = match name.rsplit_once(':') {
                Some((r, a)) => (r, a, ""),
                None => {
                    let (r, a) = name.rsplit_once('.')?;
                    (r, a, ", separator = \".\"")
                }
            };
            Some(format!(
                "#[webhook(resource = \"{resource}\", action = \"{action}\"{separator})]"
            ))
        }
        Position::Variant => Some(format!("#[webhook(action = \"{name}\")]")),
        Position::Enum => Some(format!("#[webhook(resource = \"{name}\")]")),
        Position::Field => Some(format!("#[webhook(label = \"{name}\")]")),
    }
}

/// The message for a key the attribute does not know, with the keys it does and a likely fix.
fn unknown_key(key: &str, pos: Position) -> String {
    let expected = match pos.keys() {
        [only] => format!("expected `{only}`"),
        keys => {
            let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            format!("expected one of {}", keys.join(", "))
        }
    };
    let hint = if let Some(close) = KEYS.iter().find(|k| similar(key, k)) {
        format!(" (did you mean `{close}`?)")
    } else if matches!(
        key,
        "name" | "event" | "event_type" | "event_name" | "type" | "rename"
    ) {
        " (the event name is made of `resource` and `action`)".to_owned()
    } else {
        String::new()
    };
    format!("unknown key `{key}` in #[webhook(...)] on {pos}; {expected}{hint}")
}

/// A probable misspelling: a few edits away, a different case, or a clear abbreviation.
fn similar(typed: &str, key: &str) -> bool {
    let typed = typed.to_ascii_lowercase();
    (typed.len() >= 3 && key.starts_with(&typed)) || edit_distance(&typed, key) <= 2
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The message for a known key written where it does not belong, if it does not.
fn misplaced(key: &str, pos: Position) -> Option<String> {
    use Position::*;
    let message = match (key, pos) {
        ("resource" | "separator" | "crate", Struct | Enum) => return None,
        ("action" | "deprecated" | "example", Struct | Variant) => return None,
        ("deprecated" | "example", Enum) => {
            return Some(format!(
                "`{key}` goes on each variant of an enum, not on the enum: \
                 #[webhook({key} = \"...\")] above the variant"
            ));
        }
        ("deprecated" | "example", Field) => {
            return Some(format!(
                "`{key}` does not belong on a field; it goes on the struct or the variant \
                 whose event it describes"
            ));
        }
        ("label" | "ordering_key", Field) => return None,
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
            return Some(format!(
                "`label` goes on a field, not on {pos}: `#[webhook(label)]` above the field \
                 whose value subscriptions are scoped by"
            ));
        }
        ("ordering_key", Struct | Enum | Variant) => {
            return Some(format!(
                "`ordering_key` goes on a field, not on {pos}: `#[webhook(ordering_key)]` above \
                 the field whose value groups the events that must stay in order"
            ));
        }
        (_, Field) => {
            return Some(format!(
                "`{key}` does not belong on a field; a field takes only `label` and \
                 `ordering_key`"
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

    // The resource: given, or the type's name in snake_case. `None` when it is invalid (and
    // reported) or unknown, so that no event name is built on it and checked again.
    let resource = match &attrs.resource {
        Some(lit) => {
            let value = lit.value();
            let checked = name::check(Part::Resource, &value, separator)
                .and_then(|()| name::check_resource_len(&value));
            match checked {
                Ok(()) => Some(value),
                Err(message) => {
                    cx.error(lit, message);
                    None
                }
            }
        }
        None if attrs.malformed => None,
        None => {
            let value = snake_case(&input.ident.to_string());
            let checked = name::check(Part::Resource, &value, separator)
                .and_then(|()| name::check_resource_len(&value));
            match checked {
                Ok(()) => Some(value),
                Err(message) => {
                    cx.error(
                        &input.ident,
                        format!(
                            "no `resource` is given, and the type's name does not make one \
                             ({message}): set it with #[webhook(resource = \"...\")]"
                        ),
                    );
                    None
                }
            }
        }
    };

    let kind = match &input.data {
        Data::Struct(data) => {
            let event_type = match &attrs.action {
                Some(action) => event_type(cx, resource.as_deref(), separator, action),
                None => {
                    if !attrs.malformed {
                        let named = match &resource {
                            Some(resource) => {
                                format!("; its event is named `{resource}{separator}<action>`")
                            }
                            None => String::new(),
                        };
                        cx.error(
                            &input.ident,
                            format!(
                                "missing `action`: add #[webhook(action = \"...\")] to `{}`{named}",
                                input.ident
                            ),
                        );
                    }
                    String::new()
                }
            };
            let (labels, ordering_key) = fields(cx, &data.fields);
            Kind::Struct {
                event_type,
                labels,
                ordering_key,
                docs: docs(
                    &input.attrs,
                    attrs.deprecated.clone(),
                    attrs.example.clone(),
                ),
            }
        }
        Data::Enum(data) => {
            if data.variants.is_empty() {
                cx.error(
                    &input.ident,
                    "an enum without variants has no events: add variants with \
                     #[webhook(action = \"...\")]",
                );
            }
            let serde = SerdeAttrs::parse(&input.attrs);
            let mut serde_index = 0;
            let mut variants: Vec<Variant<'_>> = Vec::with_capacity(data.variants.len());
            // The actions seen so far, to catch two variants with the same event name.
            let mut actions: Vec<(String, &Ident)> = Vec::with_capacity(data.variants.len());
            for variant in &data.variants {
                let vattrs = parse_attrs(cx, &variant.attrs, Position::Variant);
                let event_type = match &vattrs.action {
                    Some(action) => {
                        let event_type = event_type(cx, resource.as_deref(), separator, action);
                        let value = action.value();
                        if let Some((_, first)) = actions.iter().find(|(a, _)| *a == value) {
                            let name = match &resource {
                                Some(resource) => {
                                    format!("event name `{resource}{separator}{value}`")
                                }
                                None => format!("action `{value}`"),
                            };
                            cx.error(
                                action,
                                format!(
                                    "duplicate {name}: variant `{first}` already has it; \
                                     each variant needs its own action"
                                ),
                            );
                        } else {
                            actions.push((value, &variant.ident));
                        }
                        event_type
                    }
                    None => {
                        if !vattrs.malformed {
                            cx.error(
                                &variant.ident,
                                format!(
                                    "variant `{}` has no `action`: add \
                                     #[webhook(action = \"...\")] above it",
                                    variant.ident
                                ),
                            );
                        }
                        String::new()
                    }
                };
                let (labels, ordering_key) = fields(cx, &variant.fields);
                let index = (!SerdeAttrs::parse(&variant.attrs).skip_deserializing).then(|| {
                    serde_index += 1;
                    serde_index - 1
                });
                variants.push(Variant {
                    ident: &variant.ident,
                    event_type,
                    labels,
                    ordering_key,
                    serde_index: index,
                    docs: docs(&variant.attrs, vattrs.deprecated, vattrs.example),
                });
            }
            Kind::Enum {
                variants,
                externally_tagged: !serde.tag && !serde.untagged,
            }
        }
        Data::Union(_) => return None,
    };
    let description = doc_comment(&input.attrs);
    Some(Model {
        krate,
        kind,
        description,
    })
}

/// The doc comment of an item: its `#[doc = "..."]` lines, each without the one space that
/// `/// ` leaves, joined; `None` when empty.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) = &nv.value
        {
            let value = lit.value();
            if value.trim().is_empty() {
                lines.push(String::new());
                continue;
            }
            for line in value.lines() {
                lines.push(line.strip_prefix(' ').unwrap_or(line).to_owned());
            }
        }
    }
    let text = lines.join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn docs(
    attrs: &[Attribute],
    deprecated: Option<Option<LitStr>>,
    example: Option<syn::Path>,
) -> Docs {
    Docs {
        description: doc_comment(attrs),
        deprecated: deprecated.map(|note| note.map(|lit| lit.value()).unwrap_or_default()),
        example,
    }
}

fn default_crate() -> syn::Path {
    syn::parse_quote!(::webhooks)
}

/// Checks `action` and joins it to the resource; an invalid or unknown part yields an empty
/// name (the derive then emits only errors and the fallback impl).
fn event_type(cx: &mut Ctxt, resource: Option<&str>, separator: char, action: &LitStr) -> String {
    let value = action.value();
    if let Err(message) = name::check(Part::Action, &value, separator) {
        cx.error(action, message);
        return String::new();
    }
    let Some(resource) = resource else {
        return String::new();
    };
    let event_type = format!("{resource}{separator}{value}");
    if let Err(message) = name::check_len(&event_type) {
        cx.error(action, message);
    }
    event_type
}

/// The label fields and the ordering key of a struct or variant; also rejects misplaced keys on
/// every field.
fn fields<'a>(cx: &mut Ctxt, fields: &'a Fields) -> (Vec<LabelField<'a>>, Option<KeyField<'a>>) {
    let mut labels: Vec<LabelField<'a>> = Vec::new();
    let mut ordering_key: Option<KeyField<'a>> = None;
    // The first field marked `ordering_key`, valid or not, to catch a second one.
    let mut first_key: Option<Member> = None;
    for (index, field) in fields.iter().enumerate() {
        let attrs = parse_attrs(cx, &field.attrs, Position::Field);
        if let Some(span) = attrs.ordering_key {
            match &first_key {
                Some(first) => cx.error_at(
                    span,
                    format!(
                        "at most one field is the ordering key: {} already is",
                        describe(first)
                    ),
                ),
                None => {
                    first_key = Some(member(index, field));
                    ordering_key = key_field(cx, index, field);
                }
            }
        }
        let Some((span, name)) = attrs.label else {
            continue;
        };
        // The key, and where to point when it is a duplicate.
        let (key, key_span) = match (&field.ident, &name) {
            (_, Some(lit)) => {
                let key = lit.value();
                if let Err(message) = check_label_key(&key) {
                    cx.error(lit, message);
                    continue;
                }
                (key, lit.span())
            }
            (Some(ident), None) => (ident.to_string().trim_start_matches("r#").to_owned(), span),
            (None, None) => {
                cx.error_at(
                    span,
                    "a tuple field has no name to use as the label's key: name it with \
                     #[webhook(label = \"...\")]",
                );
                continue;
            }
        };
        let optional = option_inner(&field.ty);
        let ty = optional.unwrap_or(&field.ty);
        if matches!(ty, Type::Tuple(t) if t.elems.is_empty()) {
            cx.error(
                ty,
                "a field of type `()` cannot be a label: it has no value to scope \
                 subscriptions by",
            );
            continue;
        }
        if let Some(first) = labels.iter().find(|l| l.key == key) {
            let first = describe(&first.member);
            cx.error_at(
                key_span,
                format!(
                    "duplicate label `{key}`: {first} already uses this name; name this one \
                     with #[webhook(label = \"...\")]"
                ),
            );
            continue;
        }
        labels.push(LabelField {
            member: member(index, field),
            key,
            ty,
            optional: optional.is_some(),
        });
    }
    (labels, ordering_key)
}

/// The field as `self.<member>`: its name, or its index in a tuple.
fn member(index: usize, field: &syn::Field) -> Member {
    match &field.ident {
        Some(ident) => Member::Named(ident.clone()),
        None => Member::Unnamed(syn::Index {
            index: index as u32,
            span: field.ty.span(),
        }),
    }
}

/// A field, as messages name it: field `name`, or field 0.
fn describe(member: &Member) -> String {
    match member {
        Member::Named(ident) => format!("field `{ident}`"),
        Member::Unnamed(index) => format!("field {}", index.index),
    }
}

/// The field marked `#[webhook(ordering_key)]`, checked.
fn key_field<'a>(cx: &mut Ctxt, index: usize, field: &'a syn::Field) -> Option<KeyField<'a>> {
    let optional = option_inner(&field.ty);
    let ty = optional.unwrap_or(&field.ty);
    if matches!(ty, Type::Tuple(t) if t.elems.is_empty()) {
        cx.error(
            ty,
            "a field of type `()` cannot be the ordering key: it has no value to order by",
        );
        return None;
    }
    Some(KeyField {
        member: member(index, field),
        ty,
        optional: optional.is_some(),
    })
}

/// Label keys: ASCII letters, digits, `_`, `-` and `.`.
fn check_label_key(key: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() {
        return Err("a label's name must not be empty".to_owned());
    }
    let Some(bad) = key.chars().find(|&c| !allowed(c)) else {
        return Ok(());
    };
    // `customer id` → `customer_id`.
    let mut fixed = String::with_capacity(key.len());
    for c in key.chars().map(|c| if allowed(c) { c } else { '_' }) {
        if !(c == '_' && fixed.ends_with('_')) {
            fixed.push(c);
        }
    }
    let hint = if key.is_ascii() && fixed.trim_matches('_').len() == fixed.len() {
        format!(" (did you mean `{fixed}`?)")
    } else {
        String::new()
    };
    Err(format!(
        "invalid label name \"{key}\": {} is not allowed; use ASCII letters, digits, `_`, `-` \
         and `.`{hint}",
        name::describe(bad)
    ))
}

/// `T` of a field written `Option<T>` (the macro sees only syntax, as serde's `default` handling
/// does).
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(inner)] if last.ident == "Option" => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Position, edit_distance, unknown_key};

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("resorce", "resource"), 1);
        assert_eq!(edit_distance("acton", "action"), 1);
        assert_eq!(edit_distance("", "crate"), 5);
        assert_eq!(edit_distance("colour", "crate"), 5);
    }

    #[test]
    fn unknown_keys_suggest_a_fix() {
        let message = unknown_key("labels", Position::Field);
        assert!(
            message.ends_with("expected one of `label`, `ordering_key` (did you mean `label`?)"),
            "{message}"
        );
        let message = unknown_key("ordering", Position::Field);
        assert!(
            message.contains("did you mean `ordering_key`?"),
            "{message}"
        );
        let message = unknown_key("sep", Position::Struct);
        assert!(message.contains("did you mean `separator`?"), "{message}");
        let message = unknown_key("name", Position::Struct);
        assert!(
            message.contains("made of `resource` and `action`"),
            "{message}"
        );
        let message = unknown_key("type", Position::Struct);
        assert!(
            message.contains("made of `resource` and `action`"),
            "{message}"
        );
        let message = unknown_key("Resource", Position::Struct);
        assert!(message.contains("did you mean `resource`?"), "{message}");
        let message = unknown_key("colour", Position::Enum);
        assert!(!message.contains("did you mean"), "{message}");
    }
}
