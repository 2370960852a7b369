use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(crate = "hooks", resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(label)]
    customer: String,
}

fn main() {}
