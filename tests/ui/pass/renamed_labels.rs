use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "order", action = "placed")]
struct OrderPlaced {
    #[webhook(label = "shop")]
    shop_id: String,
    #[webhook(label = "customer.tier")]
    tier: u8,
    #[webhook(label = "Region-Code")]
    region: &'static str,
}

fn main() {
    let order = OrderPlaced {
        shop_id: "s-1".to_owned(),
        tier: 2,
        region: "eu",
    };
    let labels = order.labels();
    assert_eq!(labels.get("shop"), Some("s-1"));
    assert_eq!(labels.get("customer.tier"), Some("2"));
    assert_eq!(labels.get("Region-Code"), Some("eu"));
}
