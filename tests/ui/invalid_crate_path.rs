use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(crate = "not a path", resource = "invoice", action = "voided")]
struct InvoiceVoided;

fn main() {}
