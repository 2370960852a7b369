use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid", label)]
    Paid { customer: String },
}

fn main() {}
