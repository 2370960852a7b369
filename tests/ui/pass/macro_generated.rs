use serde::Serialize;
use webhooks::WebhookEvent;

// A derive inside `macro_rules!`, with the name and the label's type from the caller: the
// generated code must not mix the hygiene of the two.
macro_rules! event {
    ($name:ident, $action:literal, $label:ident) => {
        #[derive(Serialize, WebhookEvent)]
        #[webhook(resource = "generated", action = $action)]
        struct $name {
            #[webhook(label)]
            value: $label,
            #[webhook(label)]
            other: Option<$label>,
        }
    };
}

event!(Made, "made", String);

fn main() {
    let made = Made {
        value: "a".to_owned(),
        other: Some("b".to_owned()),
    };
    assert_eq!(made.event_type(), "generated:made");
    assert_eq!(made.labels().get("value"), Some("a"));
    assert_eq!(made.labels().get("other"), Some("b"));
}
