use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(ordering_key = "customer")]
    customer: String,
}

fn main() {}
