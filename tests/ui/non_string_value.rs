use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = 5, action = paid)]
struct InvoicePaid;

fn main() {}
