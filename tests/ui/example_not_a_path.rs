use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid", example = "an example()")]
    Paid { id: u64 },
}

fn main() {}
