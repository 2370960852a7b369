use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid", ordering_key)]
    Paid { customer: String },
}

fn main() {}
