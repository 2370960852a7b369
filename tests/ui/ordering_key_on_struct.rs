use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid", ordering_key)]
struct InvoicePaid {
    customer: String,
}

fn main() {}
