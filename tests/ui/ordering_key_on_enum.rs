use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", ordering_key)]
enum Invoice {
    #[webhook(action = "paid")]
    Paid { customer: String },
}

fn main() {}
