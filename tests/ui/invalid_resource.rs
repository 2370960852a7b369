use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "BearAttack", action = "reported")]
struct Uppercase;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear-attack", action = "reported")]
struct Hyphen;

fn main() {}
