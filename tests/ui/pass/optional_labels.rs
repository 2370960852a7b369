use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "order", action = "placed")]
struct OrderPlaced {
    #[webhook(label)]
    region: Option<String>,
    #[webhook(label = "coupon")]
    coupon_code: std::option::Option<&'static str>,
}

fn main() {
    let order = OrderPlaced {
        region: Some("eu".to_owned()),
        coupon_code: None,
    };
    assert_eq!(order.labels().get("region"), Some("eu"));
    assert_eq!(order.labels().get("coupon"), None);
}
