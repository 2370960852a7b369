use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
enum Invoice {
    #[webhook(action = "paid")]
    Paid,
}

fn main() {}
