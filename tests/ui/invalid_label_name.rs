use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(label = "customer id")]
    customer: String,
    #[webhook(label = "")]
    region: String,
}

fn main() {}
