use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    #[webhook(action = "archived")]
    Archived,
    #[webhook(action = "resolved")]
    Resolved(String),
    #[webhook(action = "moved")]
    Moved(f64, f64),
    #[webhook(action = "reported")]
    Reported {
        #[webhook(label)]
        county: String,
        severity: u8,
    },
}

fn main() {
    assert_eq!(
        BearAttack::EVENT_TYPES,
        &[
            "bear_attack:archived",
            "bear_attack:resolved",
            "bear_attack:moved",
            "bear_attack:reported",
        ]
    );
    assert_eq!(
        BearAttack::Moved(1.0, 2.0).event_type(),
        "bear_attack:moved"
    );
    assert!(BearAttack::Archived.labels().is_empty());
}
