use serde::Serialize;
use webhooks::WebhookEvent;

// Over the limit on its own: reported once, at the resource, not at every variant.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "billing_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_ledger_entry"
)]
enum TooLong {
    #[webhook(action = "created")]
    Created,
    #[webhook(action = "deleted")]
    Deleted,
}

fn main() {}
