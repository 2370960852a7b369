//! The newcomer's tour: declares events with `#[derive(WebhookEvent)]` and prints the exact
//! bodies receivers would get, in both envelopes.
//!
//! ```text
//! cargo run --example demo
//! ```

use serde::Serialize;
use webhooks::{Envelope, Message, WebhookEvent};

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Serialize)]
struct Resolution {
    outcome: &'static str,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    #[webhook(action = "reported")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
        severity: u8,
    },
    #[webhook(action = "resolved")]
    Resolved(Resolution),
    #[webhook(action = "archived")]
    Archived,
}

fn show<E: WebhookEvent>(event: &E) -> Result<(), webhooks::Error> {
    for envelope in [Envelope::Compact, Envelope::Standard] {
        let message = Message::with_envelope(event, envelope)?;
        #[allow(clippy::print_stdout)] // an example program talks on stdout
        {
            println!("{:<22} {envelope:?}", message.event_type());
            println!("  labels: {:?}", message.labels());
            println!("  body:   {}", String::from_utf8_lossy(message.body()));
        }
    }
    Ok(())
}

fn main() -> Result<(), webhooks::Error> {
    show(&RandomNumber(863))?;
    show(&BearAttack::Reported {
        id: 1,
        county: "denver".into(),
        severity: 3,
    })?;
    show(&BearAttack::Resolved(Resolution {
        outcome: "bear left",
    }))?;
    show(&BearAttack::Archived)?;
    Ok(())
}
