use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "system", action = "ping", label)]
struct Ping;

fn main() {}
