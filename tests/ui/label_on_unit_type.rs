use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    id: u64,
    #[webhook(label)]
    nothing: (),
}

fn main() {}
