//! The `#[derive(WebhookEvent)]` macro of the [`webhooks`](https://docs.rs/webhooks) crate.
//!
//! Do not depend on this crate directly: use `webhooks::WebhookEvent`, which re-exports the derive
//! together with the trait it implements. The attributes are documented there.
//!
//! The macro works like serde_derive: `model` parses the attributes (every mistake is collected,
//! each pointing at its token), `name` holds the rules for event names, and `expand` writes the
//! impl. When anything is wrong it emits the errors *and* a fallback impl, so that one mistake does
//! not cascade into errors wherever the type is used.
//!
//! Set `WEBHOOKS_DERIVE_DEBUG=1` while building to print every expansion on stderr.

use proc_macro::TokenStream;

mod case;
mod ctxt;
mod expand;
mod model;
mod name;
mod serde_attrs;

/// Derives `webhooks::WebhookEvent`. See the documentation of that trait for the attributes.
#[proc_macro_derive(WebhookEvent, attributes(webhook))]
pub fn derive_webhook_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    let tokens = expand::derive(&input);
    if std::env::var_os("WEBHOOKS_DERIVE_DEBUG").is_some_and(|v| v != "0") {
        // A compile-time debugging aid for users of the macro, like axum's AXUM_MACROS_DEBUG.
        eprintln!("#[derive(WebhookEvent)] for `{}`:\n{tokens}", input.ident);
    }
    tokens.into()
}
