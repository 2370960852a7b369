use serde::Serialize;
use webhooks::WebhookEvent;

// Every mistake is reported in the same build, and the type stays usable: no error comes from
// `main`, because the derive emits a fallback impl next to its errors.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "Invoice", action = "paid", colour = "red")]
enum Invoice {
    #[webhook(action = "paid.now", ordering_key)]
    Paid {
        #[webhook(label)]
        customer: String,
        #[webhook(label = "customer")]
        customer_id: String,
    },
    Voided,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(separator = "/")]
struct Ping;

fn main() {
    let _ = Invoice::EVENT_TYPES;
    let _ = Invoice::Voided.event_type();
    let _ = Invoice::Voided.labels();
    let _ = Invoice::Voided.ordering_key();
    let _ = Ping::EVENT_TYPES;
    let _ = Ping.event_type();
}
