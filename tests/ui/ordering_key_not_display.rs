use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize)]
struct Customer {
    id: u64,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    #[webhook(ordering_key)]
    customer: Customer,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "order")]
enum Order {
    #[webhook(action = "placed")]
    Placed {
        #[webhook(ordering_key)]
        region: Option<Vec<u8>>,
    },
}

fn main() {}
