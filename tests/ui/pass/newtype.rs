use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "account", action = "closed")]
struct AccountClosed(#[webhook(label = "account")] u64);

fn main() {
    assert_eq!(RandomNumber(7).event_type(), "random_number:generate");
    assert_eq!(AccountClosed(42).labels().get("account"), Some("42"));
}
