use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(action = "changed")]
struct r#Match {
    #[webhook(label)]
    r#type: String,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "token")]
enum r#Token {
    #[webhook(action = "moved")]
    r#Move {
        #[webhook(label)]
        r#ref: u32,
    },
    #[webhook(action = "used")]
    #[allow(non_camel_case_types)]
    r#use,
}

fn main() {
    let m = r#Match {
        r#type: "full".to_owned(),
    };
    assert_eq!(m.event_type(), "match:changed");
    assert_eq!(m.labels().get("type"), Some("full"));
    assert_eq!(r#Token::r#Move { r#ref: 3 }.labels().get("ref"), Some("3"));
    assert_eq!(r#Token::r#use.event_type(), "token:used");
}
