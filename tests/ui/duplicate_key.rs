use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
#[webhook(action = "settled")]
struct InvoicePaid {
    id: u64,
}

fn main() {}
