use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid", example = "example")]
struct InvoicePaid {
    id: u64,
}

fn example() -> u64 {
    1
}

fn main() {}
