use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid", deprecated = true)]
    Paid { id: u64 },
    #[webhook(action = "voided", deprecated(note = "gone"))]
    Voided,
}

fn main() {}
