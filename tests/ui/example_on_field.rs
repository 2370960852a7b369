use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(example = "example")]
    id: u64,
}

fn example() -> InvoicePaid {
    InvoicePaid { id: 1 }
}

fn main() {}
