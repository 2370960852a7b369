use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid")]
    Paid,
    #[webhook(action = "paid")]
    Settled,
}

fn main() {}
