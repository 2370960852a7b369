use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(ordering_key)]
    customer: String,
    #[webhook(label, ordering_key)]
    shop: String,
}

fn main() {}
