use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "system", action = "ping")]
struct Ping;

// The resource defaults to the type's name in snake_case.
#[derive(Serialize, WebhookEvent)]
#[webhook(action = "started")]
struct HTTPServer;

fn main() {
    assert_eq!(Ping::EVENT_TYPES, &["system:ping"]);
    assert_eq!(HTTPServer.event_type(), "http_server:started");
}
