//! Writes the `WebhookEvent` impl from the checked [`Model`], or the errors and a fallback impl.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident};

use crate::ctxt::Ctxt;
use crate::model::{self, Docs, KeyField, Kind, LabelField, Model};
use crate::serde_attrs::SerdeAttrs;

/// The whole expansion of `#[derive(WebhookEvent)]`.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let model = model::parse(&mut cx, input);
    match (cx.finish(), model) {
        (Ok(()), Some(model)) => impl_event(input, &model),
        (Err(errors), model) => {
            let krate = model.map_or_else(|| syn::parse_quote!(::webhooks), |m| m.krate);
            let errors = errors.to_compile_error();
            let fallback = fallback(input, &krate);
            quote! { #errors #fallback }
        }
        // Unreachable in practice: parsing returns no model only after recording an error.
        (Ok(()), None) => fallback(input, &syn::parse_quote!(::webhooks)),
    }
}

fn impl_event(input: &DeriveInput, model: &Model<'_>) -> TokenStream {
    let krate = &model.krate;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    let serialize = quote!(#krate::__private::serde::Serialize);
    // A generic type is an event wherever serde's impl (with the bounds serde inferred) applies.
    // Without type parameters the bound would be trivial, and a trivially false bound is an
    // error that points at the derive and talks of `trivial_bounds`: leave it to the body.
    let type_params = input.generics.type_params().next().is_some()
        || input.generics.const_params().next().is_some();
    if type_params {
        // Every token at the type's name (the path too), so that a use where the bound fails
        // points there rather than at the derive.
        let predicate = respan(quote!(Self: #serialize), ident.span());
        where_clause.predicates.push(syn::parse_quote!(#predicate));
    }
    // `<Type as Serialize>` with the user's own tokens for `Type`: a type without `Serialize`
    // is reported at its name, with serde's hint to derive it.
    let serialize_fn = quote!(<#ident #ty_generics as #serialize>::serialize);

    let (event_types, event_type_body, labels_body, serialize_body) = match &model.kind {
        Kind::Struct {
            event_type, labels, ..
        } => {
            let labels_body = (!labels.is_empty()).then(|| {
                let pushes = labels.iter().map(|label| {
                    let member = &label.member;
                    push_label(krate, label, quote!(&self.#member))
                });
                let n = labels.len();
                quote! {
                    let mut labels = #krate::Labels::with_capacity(#n);
                    #(#pushes)*
                    labels
                }
            });
            (
                vec![event_type.clone()],
                quote!(#event_type),
                labels_body,
                quote!(#serialize_fn(self, serializer)),
            )
        }
        Kind::Enum { variants, .. } => {
            let event_types: Vec<String> = variants.iter().map(|v| v.event_type.clone()).collect();
            let arms = variants.iter().map(|v| {
                let variant = v.ident;
                let event_type = &v.event_type;
                quote!(Self::#variant { .. } => #event_type,)
            });
            let labelled: Vec<_> = variants.iter().filter(|v| !v.labels.is_empty()).collect();
            let labels_body = (!labelled.is_empty()).then(|| {
                let arms = labelled.iter().map(|v| {
                    let variant = v.ident;
                    let bindings: Vec<Ident> = (0..v.labels.len())
                        .map(|i| format_ident!("__webhook_label_{}", i))
                        .collect();
                    let members = v.labels.iter().map(|l| &l.member);
                    let pushes = v
                        .labels
                        .iter()
                        .zip(&bindings)
                        .map(|(label, binding)| push_label(krate, label, quote!(#binding)));
                    let n = v.labels.len();
                    quote! {
                        Self::#variant { #(#members: #bindings,)* .. } => {
                            let mut labels = #krate::Labels::with_capacity(#n);
                            #(#pushes)*
                            labels
                        }
                    }
                });
                let rest =
                    (labelled.len() < variants.len()).then(|| quote!(_ => #krate::Labels::new(),));
                quote! {
                    match self {
                        #(#arms)*
                        #rest
                    }
                }
            });
            (
                event_types,
                quote!(match self { #(#arms)* }),
                labels_body,
                quote!(#serialize_fn(
                    self,
                    #krate::__private::VariantContent::new(serializer),
                )),
            )
        }
    };

    let labels_fn = labels_body.map(|body| {
        quote! {
            fn labels(&self) -> #krate::Labels {
                #body
            }
        }
    });

    let ordering_key_fn = ordering_key_fn(krate, &model.kind);
    let (event_docs, example_fn) = catalog_items(krate, model);
    let data_schema_fn = data_schema_fn(krate, input, model);
    let deserialize_data_fn = deserialize_data_fn(krate, &model.kind);

    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::WebhookEvent for #ident #ty_generics #where_clause {
            const EVENT_TYPES: &'static [&'static str] = &[#(#event_types),*];

            #event_docs

            #example_fn

            #data_schema_fn

            #[inline]
            fn event_type(&self) -> &'static str {
                #event_type_body
            }

            #labels_fn

            #ordering_key_fn

            #[inline]
            fn serialize_data<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #krate::__private::serde::Serializer,
            {
                #serialize_body
            }

            #deserialize_data_fn
        }
    }
}

/// `fn deserialize_data` for an enum in serde's default representation, whose data is a
/// variant's content without its tag: the event name picks the variant, and
/// `VariantContentDeserializer` answers serde's variant identifier with its index. Other types
/// keep the trait's default (serde's own impl), and so does an enum with another representation,
/// which serializes unchanged. Bounded by `Self: Deserialize`, so it asks nothing of a type that
/// only sends.
fn deserialize_data_fn(krate: &syn::Path, kind: &Kind<'_>) -> Option<TokenStream> {
    let Kind::Enum {
        variants,
        externally_tagged: true,
    } = kind
    else {
        return None;
    };
    // A variant serde skips has no index: its event falls to the error arm.
    let arms = variants.iter().filter_map(|v| {
        let index = v.serde_index?;
        let event_type = &v.event_type;
        let ident = v.ident.to_string();
        let name = ident.trim_start_matches("r#");
        Some(quote!(#event_type => (#index, #name),))
    });
    let serde = quote!(#krate::__private::serde);
    Some(quote! {
        fn deserialize_data<'__de, __D>(
            __event_type: &str,
            __deserializer: __D,
        ) -> ::core::result::Result<Self, __D::Error>
        where
            Self: ::core::marker::Sized + #serde::Deserialize<'__de>,
            __D: #serde::Deserializer<'__de>,
        {
            let (__index, __variant): (u32, &'static str) = match __event_type {
                #(#arms)*
                _ => {
                    return ::core::result::Result::Err(
                        #krate::__private::no_variant::<__D::Error>(__event_type),
                    );
                }
            };
            <Self as #serde::Deserialize<'__de>>::deserialize(
                #krate::__private::VariantContentDeserializer::new(
                    __deserializer,
                    __index,
                    __variant,
                ),
            )
        }
    })
}

/// `const EVENT_DOCS` (each event's description and deprecation) and `fn example`, if any event
/// names one.
fn catalog_items(
    krate: &syn::Path,
    model: &Model<'_>,
) -> (Option<TokenStream>, Option<TokenStream>) {
    let events: Vec<(&str, &Docs)> = match &model.kind {
        Kind::Struct {
            event_type, docs, ..
        } => vec![(event_type.as_str(), docs)],
        Kind::Enum { variants, .. } => variants
            .iter()
            .map(|v| (v.event_type.as_str(), &v.docs))
            .collect(),
    };
    let option = |value: Option<&str>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let docs = events.iter().map(|(name, docs)| {
        let description = option(docs.description.as_deref().or(model.description.as_deref()));
        let deprecated = option(docs.deprecated.as_deref());
        quote!(#krate::EventDoc::new(#name, #description, #deprecated))
    });
    // Only when there is something to say: the trait's default is empty, and naming `EventDoc`
    // would add a second error to a wrong `crate = "..."`.
    let said = model.description.is_some()
        || events
            .iter()
            .any(|(_, d)| d.description.is_some() || d.deprecated.is_some());
    let event_docs = said.then(|| {
        quote! {
            const EVENT_DOCS: &'static [#krate::EventDoc] = &[#(#docs),*];
        }
    });
    let arms: Vec<TokenStream> = events
        .iter()
        .filter_map(|(name, docs)| {
            let path = docs.example.as_ref()?;
            // Through a `fn() -> Self` pointer spanned at the path: a function of another type
            // is reported there, as such.
            let example = quote_spanned!(path.span()=> #krate::__private::example::<Self>);
            let call = quote!(#example(#path));
            Some(quote!(#name => ::core::option::Option::Some(#call),))
        })
        .collect();
    let example_fn = (!arms.is_empty()).then(|| {
        quote! {
            fn example(__event_type: &str) -> ::core::option::Option<Self>
            where
                Self: ::core::marker::Sized,
            {
                match __event_type {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    });
    (event_docs, example_fn)
}

/// `fn data_schema`; `__private::schema::build` runs it only when the runtime crate has the
/// `schema` feature. Each event's data: an object of its named fields (serde's `rename`,
/// `skip` and `skip_serializing_if` followed), its one field's schema (a newtype), an array (a
/// tuple), or `null` (a unit). A field's type without `JsonSchema` is any value (`{}`); serde
/// attributes it does not follow (`flatten`, `rename_all`, ...) leave the event without a schema,
/// as does an enum in a representation other than serde's default.
fn data_schema_fn(
    krate: &syn::Path,
    input: &DeriveInput,
    model: &Model<'_>,
) -> Option<TokenStream> {
    if input.generics.type_params().next().is_some() {
        return None;
    }
    let container = SerdeAttrs::parse(&input.attrs);
    let mut arms = Vec::new();
    match (&input.data, &model.kind) {
        (syn::Data::Struct(data), Kind::Struct { event_type, .. }) => {
            if !container.unsupported
                && let Some(schema) = fields_schema(krate, &data.fields)
            {
                arms.push(quote!(#event_type => ::core::option::Option::Some(#schema),));
            }
        }
        (
            syn::Data::Enum(data),
            Kind::Enum {
                variants,
                externally_tagged: true,
            },
        ) if !container.unsupported => {
            for (variant, v) in data.variants.iter().zip(variants) {
                let attrs = SerdeAttrs::parse(&variant.attrs);
                if attrs.unsupported || attrs.skip_serializing {
                    continue;
                }
                let event_type = &v.event_type;
                if let Some(schema) = fields_schema(krate, &variant.fields) {
                    arms.push(quote!(#event_type => ::core::option::Option::Some(#schema),));
                }
            }
        }
        _ => {}
    }
    if arms.is_empty() {
        return None;
    }
    Some(quote! {
        fn data_schema(
            __event_type: &str,
        ) -> ::core::option::Option<#krate::__private::serde_json::Value> {
            #[allow(unused_imports)]
            use #krate::__private::schema::{Any as _, Known as _};
            #krate::__private::schema::build(|__generator| match __event_type {
                #(#arms)*
                _ => ::core::option::Option::None,
            })
        }
    })
}

/// The schema of one struct's or variant's fields, as an expression; `None` when a field's serde
/// attributes are not followed.
fn fields_schema(krate: &syn::Path, fields: &syn::Fields) -> Option<TokenStream> {
    let schema = quote!(#krate::__private::schema);
    let of = |ty: &syn::Type| quote!((&#schema::Of::<#ty>(::core::marker::PhantomData)).schema(__generator));
    match fields {
        syn::Fields::Unit => Some(quote!(#schema::unit())),
        syn::Fields::Unnamed(unnamed) => {
            let kept: Vec<&syn::Field> = unnamed
                .unnamed
                .iter()
                .filter(|f| !SerdeAttrs::parse(&f.attrs).skip_serializing)
                .collect();
            if kept.iter().any(|f| SerdeAttrs::parse(&f.attrs).unsupported) {
                return None;
            }
            match kept.as_slice() {
                [field] if unnamed.unnamed.len() == 1 => Some(of(&field.ty)),
                _ => {
                    let items = kept.iter().map(|f| of(&f.ty));
                    Some(quote!(#schema::tuple(::std::vec![#(#items),*])))
                }
            }
        }
        syn::Fields::Named(named) => {
            let mut properties = Vec::new();
            for field in &named.named {
                let attrs = SerdeAttrs::parse(&field.attrs);
                if attrs.skip_serializing {
                    continue;
                }
                if attrs.unsupported {
                    return None;
                }
                let name = attrs.rename.unwrap_or_else(|| {
                    let ident = field
                        .ident
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    ident.trim_start_matches("r#").to_owned()
                });
                let required = !attrs.skip_serializing_if;
                let mut value = of(&field.ty);
                if let Some(doc) = model::doc_comment(&field.attrs) {
                    value = quote!(#schema::describe(#value, #doc));
                }
                properties.push(quote!((#name, #value, #required)));
            }
            Some(quote!(#schema::object(::std::vec![#(#properties),*])))
        }
    }
}

/// One `labels.insert(..)`. Only the call's path is spanned at the field's type: naming the type
/// (`label_value::<T>`) makes a type without `Display` reported there, while the rest keeps the
/// macro's span, so that `labels` resolves even when the type comes from a `macro_rules!` caller.
fn push_label(krate: &syn::Path, label: &LabelField<'_>, value: TokenStream) -> TokenStream {
    let key = &label.key;
    let ty = label.ty;
    let label_value = quote_spanned!(ty.span()=> #krate::__private::label_value::<#ty>);
    if label.optional {
        quote! {
            if let ::core::option::Option::Some(value) = #value {
                labels.insert(#key, #label_value(value));
            }
        }
    } else {
        quote! {
            labels.insert(#key, #label_value(#value));
        }
    }
}

/// `fn ordering_key`, if a field is marked `#[webhook(ordering_key)]` (else the trait's default,
/// `None`, applies).
fn ordering_key_fn(krate: &syn::Path, kind: &Kind<'_>) -> Option<TokenStream> {
    let body = match kind {
        Kind::Struct { ordering_key, .. } => {
            let key = ordering_key.as_ref()?;
            let member = &key.member;
            key_value(krate, key, quote!(&self.#member))
        }
        Kind::Enum { variants, .. } => {
            let keyed: Vec<_> = variants
                .iter()
                .filter_map(|v| Some((v.ident, v.ordering_key.as_ref()?)))
                .collect();
            if keyed.is_empty() {
                return None;
            }
            let binding = format_ident!("__webhook_ordering_key");
            let arms = keyed.iter().map(|(variant, key)| {
                let member = &key.member;
                let value = key_value(krate, key, quote!(#binding));
                quote!(Self::#variant { #member: #binding, .. } => #value,)
            });
            let rest =
                (keyed.len() < variants.len()).then(|| quote!(_ => ::core::option::Option::None,));
            quote! {
                match self {
                    #(#arms)*
                    #rest
                }
            }
        }
    };
    Some(quote! {
        fn ordering_key(&self) -> ::core::option::Option<#krate::__private::String> {
            #body
        }
    })
}

/// The ordering key of a field whose value (a reference) is `value`. As in [`push_label`], only
/// the helper's path is spanned at the field's type, so that a type without `Display` is reported
/// there.
fn key_value(krate: &syn::Path, key: &KeyField<'_>, value: TokenStream) -> TokenStream {
    let ty = key.ty;
    let helper = if key.optional {
        quote_spanned!(ty.span()=> #krate::__private::optional_ordering_key::<#ty>)
    } else {
        quote_spanned!(ty.span()=> #krate::__private::ordering_key::<#ty>)
    };
    quote!(#helper(#value))
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// An impl that satisfies the trait after an error, so that uses of the type elsewhere do not
/// add errors of their own (as thiserror and clap do).
fn fallback(input: &DeriveInput, krate: &syn::Path) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::WebhookEvent for #ident #ty_generics #where_clause {
            const EVENT_TYPES: &'static [&'static str] = &[];

            fn event_type(&self) -> &'static str {
                ::core::unreachable!()
            }

            fn serialize_data<__S>(
                &self,
                _serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #krate::__private::serde::Serializer,
            {
                ::core::unreachable!()
            }
        }
    }
}
