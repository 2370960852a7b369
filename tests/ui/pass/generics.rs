use std::fmt::Display;

use serde::Serialize;
use webhooks::WebhookEvent;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "measurement", action = "taken")]
struct Measured<T, const N: usize>
where
    T: Display,
{
    #[webhook(label)]
    unit: T,
    // Serde implements `Serialize` for arrays up to 32 only, so `N` is not an array length here.
    values: Vec<f64>,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "job")]
enum Job<T: Serialize, E> {
    #[webhook(action = "done")]
    Done(T),
    #[webhook(action = "failed")]
    Failed { error: E },
}

fn event_types<E: WebhookEvent>() -> &'static [&'static str] {
    E::EVENT_TYPES
}

fn main() {
    let measured: Measured<_, 2> = Measured {
        unit: "celsius",
        values: vec![1.5, 2.0],
    };
    assert_eq!(measured.event_type(), "measurement:taken");
    assert_eq!(measured.labels().get("unit"), Some("celsius"));
    assert_eq!(
        event_types::<Job<u8, String>>(),
        &["job:done", "job:failed"]
    );
}
