use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "billing.invoice", action = "paid")]
struct InvoicePaid;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "billing.v2.subscription")]
enum Subscription {
    #[webhook(action = "renewed")]
    Renewed,
}

fn main() {
    assert_eq!(InvoicePaid::EVENT_TYPES, &["billing.invoice:paid"]);
    assert_eq!(
        Subscription::Renewed.event_type(),
        "billing.v2.subscription:renewed"
    );
}
