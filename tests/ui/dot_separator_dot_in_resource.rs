use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "billing.invoice", action = "paid", separator = ".")]
struct InvoicePaid;

fn main() {}
