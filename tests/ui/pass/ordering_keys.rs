use std::borrow::Cow;
use std::fmt::Display;

use serde::Serialize;
use webhooks as hooks;
use webhooks::WebhookEvent;

// Generic, borrowed, raw-named and path-written `Option` keys.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "measurement", action = "taken")]
struct Measured<'a, T: Display> {
    #[webhook(ordering_key)]
    sensor: T,
    unit: &'a str,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "token")]
enum r#Token<'a> {
    #[webhook(action = "moved")]
    r#Move {
        #[webhook(label, ordering_key)]
        r#ref: Cow<'a, str>,
    },
    #[webhook(action = "used")]
    Used(u8, #[webhook(ordering_key)] std::option::Option<&'a str>),
}

// Through a renamed crate.
#[derive(Serialize, hooks::WebhookEvent)]
#[webhook(crate = "hooks", resource = "invoice", action = "paid")]
struct InvoicePaid(#[webhook(ordering_key)] u64);

// Inside `macro_rules!`, with the key's type from the caller.
macro_rules! event {
    ($name:ident, $key:ident) => {
        #[derive(Serialize, WebhookEvent)]
        #[webhook(resource = "generated", action = "made")]
        struct $name {
            #[webhook(ordering_key)]
            key: Option<$key>,
        }
    };
}

event!(Made, String);

fn main() {
    let measured = Measured {
        sensor: 7u8,
        unit: "celsius",
    };
    assert_eq!(measured.ordering_key().as_deref(), Some("7"));

    let moved = r#Token::r#Move {
        r#ref: Cow::Borrowed("r-1"),
    };
    assert_eq!(moved.ordering_key().as_deref(), Some("r-1"));
    assert_eq!(moved.labels().get("ref"), Some("r-1"));
    assert_eq!(r#Token::Used(1, Some("u")).ordering_key().as_deref(), Some("u"));
    assert_eq!(r#Token::Used(1, None).ordering_key(), None);

    assert_eq!(InvoicePaid(3).ordering_key().as_deref(), Some("3"));

    let made = Made {
        key: Some("k".to_owned()),
    };
    assert_eq!(made.ordering_key().as_deref(), Some("k"));
}
