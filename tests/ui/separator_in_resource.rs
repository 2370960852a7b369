use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice:line", action = "added")]
struct LineAdded;

fn main() {}
