use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize)]
struct Customer {
    id: u64,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(label)]
    customer: Customer,
    #[webhook(label)]
    region: Option<Vec<u8>>,
}

fn main() {}
