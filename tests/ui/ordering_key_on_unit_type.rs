use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    id: u64,
    #[webhook(ordering_key)]
    nothing: (),
}

fn main() {}
