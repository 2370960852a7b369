use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid", separator = ".")]
struct InvoicePaid;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", separator = ".")]
enum Invoice {
    #[webhook(action = "created")]
    Created,
    #[webhook(action = "line_added")]
    LineAdded,
}

fn main() {
    assert_eq!(InvoicePaid::EVENT_TYPES, &["invoice.paid"]);
    assert_eq!(
        Invoice::EVENT_TYPES,
        &["invoice.created", "invoice.line_added"]
    );
}
