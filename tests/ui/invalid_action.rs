use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "payment.failed")]
struct PaymentFailed;

fn main() {}
