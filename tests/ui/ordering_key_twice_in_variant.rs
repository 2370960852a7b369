use serde::Serialize;
use webhooks::WebhookEvent;

// One key per variant: `Paid` and `Voided` each have theirs, `Moved` has two.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice")]
enum Invoice {
    #[webhook(action = "paid")]
    Paid {
        #[webhook(ordering_key)]
        customer: String,
    },
    #[webhook(action = "moved")]
    Moved(#[webhook(ordering_key)] String, #[webhook(ordering_key)] String),
    #[webhook(action = "voided")]
    Voided(#[webhook(ordering_key)] u64),
}

fn main() {}
