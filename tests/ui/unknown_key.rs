use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resorce = "invoice", action = "paid")]
struct InvoicePaid {
    id: u64,
}

fn main() {}
