use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", deprecated = "all of it")]
enum Invoice {
    #[webhook(action = "paid")]
    Paid { id: u64 },
}

fn main() {}
