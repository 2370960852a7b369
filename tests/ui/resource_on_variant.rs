use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(resource = "payment", action = "failed")]
    PaymentFailed,
}

fn main() {}
