use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "point", action = "moved")]
struct Moved(i32, i32, #[webhook(label = "layer")] String);

fn main() {
    let moved = Moved(1, 2, "base".to_owned());
    assert_eq!(moved.event_type(), "point:moved");
    assert_eq!(moved.labels().get("layer"), Some("base"));
}
