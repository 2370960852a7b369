//! The events as a published contract: the catalog of what this sender sends, printed as a list,
//! as an OpenAPI 3.1 document, or as a self-contained HTML page.
//!
//! ```text
//! cargo run --example catalog                  # one line per event
//! cargo run --example catalog -- --openapi     # the OpenAPI document (JSON)
//! cargo run --example catalog -- --html > events.html
//! ```

#![allow(clippy::print_stdout)]

use clap::Parser;
use serde::Serialize;
use webhooks::{Catalog, WebhookEvent};

/// Prints the catalog of the example's events.
#[derive(Parser)]
#[command(name = "catalog")]
struct Args {
    /// Print the OpenAPI 3.1 document (its `webhooks` section: one entry per event).
    #[arg(long, conflicts_with = "html")]
    openapi: bool,
    /// Print the HTML documentation page.
    #[arg(long)]
    html: bool,
}

/// Bear attacks reported by rangers.
#[derive(Serialize, WebhookEvent)]
#[expect(
    dead_code,
    reason = "the example only describes its events; it sends none"
)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    /// A ranger reported an attack.
    #[webhook(action = "reported", example = "reported_example")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
        /// 1 (a scare) to 5.
        severity: u8,
    },
    /// An attack report was archived.
    #[webhook(action = "archived", deprecated = "use bear_attack:reported")]
    Archived,
}

fn reported_example() -> BearAttack {
    BearAttack::Reported {
        id: 7,
        county: "Denver".to_owned(),
        severity: 3,
    }
}

/// A random number between 0 and 999 was drawn.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "random_number",
    action = "generate",
    example = "RandomNumber::example"
)]
struct RandomNumber(u32);

impl RandomNumber {
    fn example() -> Self {
        RandomNumber(863)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let catalog = Catalog::new().event::<BearAttack>().event::<RandomNumber>();
    if args.openapi {
        println!("{}", serde_json::to_string_pretty(&catalog.openapi())?);
    } else if args.html {
        print!("{}", catalog.html());
    } else {
        for event in catalog.events() {
            let deprecated = match event.deprecated() {
                Some("") => " (deprecated)".to_owned(),
                Some(note) => format!(" (deprecated: {note})"),
                None => String::new(),
            };
            println!(
                "{}{deprecated}: {}",
                event.name(),
                event.description().unwrap_or("")
            );
            if let Some(example) = event.example() {
                println!("  example data: {example}");
            }
        }
    }
    Ok(())
}
