use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(label)]
    shop: String,
    #[webhook(label = "shop")]
    shop_id: String,
}

fn main() {}
