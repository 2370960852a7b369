use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid", deprecated, deprecated = "twice")]
    Paid { id: u64 },
    #[webhook(action = "voided", example = "voided")]
    #[webhook(example = "voided")]
    Voided,
}

fn voided() -> Invoice {
    Invoice::Voided
}

fn main() {}
