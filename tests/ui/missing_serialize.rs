use webhooks::WebhookEvent;

#[derive(WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaid {
    id: u64,
}

fn main() {}
