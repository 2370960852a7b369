use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook]
struct Bare;

#[derive(Serialize, WebhookEvent)]
#[webhook = "invoice:paid"]
struct NameValue;

fn main() {}
