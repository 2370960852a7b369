use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
struct InvoicePaid {
    id: u64,
}

fn main() {}
