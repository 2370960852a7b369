//! Writes the `WebhookEvent` impl from the checked [`Model`], or the errors and a fallback impl.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident};

use crate::ctxt::Ctxt;
use crate::model::{self, Kind, LabelField, Model};

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
    where_clause
        .predicates
        .push(syn::parse_quote!(Self: #krate::__private::serde::Serialize));

    let (event_types, event_type_body, labels_body, serialize_body) = match &model.kind {
        Kind::Struct { event_type, labels } => {
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
                quote!(#krate::__private::serde::Serialize::serialize(self, serializer)),
            )
        }
        Kind::Enum { variants } => {
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
                quote!(#krate::__private::serde::Serialize::serialize(
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

    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::WebhookEvent for #ident #ty_generics #where_clause {
            const EVENT_TYPES: &'static [&'static str] = &[#(#event_types),*];

            #[inline]
            fn event_type(&self) -> &'static str {
                #event_type_body
            }

            #labels_fn

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
        }
    }
}

/// One `labels.insert(..)`, spanned at the field's type so that a type without `Display` is
/// reported there.
fn push_label(krate: &syn::Path, label: &LabelField<'_>, value: TokenStream) -> TokenStream {
    let key = &label.key;
    let span = label.ty.span();
    if label.optional {
        quote_spanned! {span=>
            if let ::core::option::Option::Some(value) = #value {
                labels.insert(#key, #krate::__private::label_value(value));
            }
        }
    } else {
        quote_spanned! {span=>
            labels.insert(#key, #krate::__private::label_value(#value));
        }
    }
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
