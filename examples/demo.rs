//! The newcomer's tour, in one process with nothing to set up: events declared as a Rust enum,
//! a subscription scoped by event pattern and label, signed deliveries over real HTTP, a retry,
//! and the delivery log, all on an embedded SQLite store in a temporary directory.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! It starts a receiver on 127.0.0.1 (`webhooks::testing::TestReceiver`, scripted to fail its
//! first request), subscribes it to `bear_attack:*` events of Denver county, sends a handful of
//! events, prints each request as the receiver saw it and each outcome as the sender saw it,
//! then the delivery log as a table. It exits within a few seconds (retries 200 ms apart).

#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use webhooks::store::{DeliveryQuery, SqliteStore};
use webhooks::testing::{ReceivedRequest, Reply, TestReceiver};
use webhooks::{
    DeliveryId, Message, MessageId, Notification, RetryPolicy, Subscription, Verifier,
    WebhookEvent, Webhooks,
};

/// The webhooks tour: declares events, subscribes a local receiver with a scope, sends a handful
/// of events (one fails first and is retried) and prints what happened, then the delivery log.
/// Takes no options and needs nothing set up: the store is SQLite in a temporary directory.
#[derive(Parser)]
#[command(name = "demo")]
struct Args {}

/// The application's events: one type, one event per variant, named `bear_attack:<action>`.
/// `county` is a label: subscriptions can be scoped by it.
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
    Resolved {
        id: u64,
        #[webhook(label)]
        county: String,
        outcome: String,
    },
}

impl BearAttack {
    /// The report's number, to tell the events apart in the output.
    fn report(&self) -> u64 {
        match self {
            BearAttack::Reported { id, .. } | BearAttack::Resolved { id, .. } => *id,
        }
    }
}

/// Short, and without jitter, so that the tour is quick and reads the same every time.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
];

/// The whole tour takes well under this.
const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let Args {} = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Removed when `dir` is dropped, at the end.
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("webhooks.db");
    let receiver = TestReceiver::start().await?;
    receiver.script([Reply::status(503).body("warming up, try again")]);
    let hooks = Webhooks::builder()
        .store(SqliteStore::open(&db).await?)
        // The receiver is on 127.0.0.1, which the SSRF guard refuses by default.
        .allow_private_networks()
        .retry(RetryPolicy::schedule(RETRIES).jitter(0.0))
        .build()
        .await?;
    println!("webhooks demo");
    println!("  store     SQLite, {} (removed on exit)", db.display());
    println!(
        "  receiver  {} (answers 503 to its first request, then 200)",
        receiver.url()
    );
    println!("  retries   after 200 ms, 400 ms, 800 ms");

    let sub = hooks
        .subscribe(
            Subscription::new(receiver.url_with_path("/hooks"))?
                .events(["bear_attack:*"])
                .label("county", "denver")
                .description("Denver's bear desk"),
        )
        .await?;
    // The receiver checks every signature, as a customer's endpoint would.
    receiver.verify_with(Verifier::new(sub.signing_secret().clone()));
    println!("\nsubscribed {} to {}", sub.id(), sub.url());
    println!("  scope     events bear_attack:*, label county = denver\n");

    let events = [
        BearAttack::Reported {
            id: 1,
            county: "denver".into(),
            severity: 3,
        },
        BearAttack::Reported {
            id: 2,
            county: "boulder".into(),
            severity: 1,
        },
        BearAttack::Resolved {
            id: 1,
            county: "denver".into(),
            outcome: "the bear left".into(),
        },
        BearAttack::Reported {
            id: 3,
            county: "denver".into(),
            severity: 5,
        },
    ];
    let mut watch = Watch {
        receiver: &receiver,
        notifications: hooks.notifications(),
        events: HashMap::new(),
        open: HashSet::new(),
        requests_shown: 0,
        failures: 0,
        deadline: Instant::now() + DEADLINE,
    };
    for (i, event) in events.iter().enumerate() {
        let message = Message::new(event)?;
        hooks.send_message(&message).await?;
        let deliveries = hooks.deliveries(message.id()).await?;
        let labels: Vec<String> = message
            .labels()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let outcome = match deliveries.len() {
            0 => "no delivery: outside the subscription's scope".to_owned(),
            1 => "1 delivery".to_owned(),
            n => format!("{n} deliveries"),
        };
        let name = format!("{} #{}", message.event_type(), event.report());
        println!("send        {name} ({})  -> {outcome}", labels.join(", "));
        watch.events.insert(message.id(), name);
        watch.open.extend(deliveries.iter().map(|d| d.id));
        if i == 0 {
            // Let the first one fail before the others go, so that the story reads in order.
            watch.until(|w| w.failures > 0).await?;
        }
    }
    watch.until(|w| w.open.is_empty()).await?;

    print_log(&hooks).await?;
    hooks.shutdown().await;
    Ok(())
}

/// Prints what the receiver and the sender see, as it happens.
struct Watch<'a> {
    receiver: &'a TestReceiver,
    notifications: tokio::sync::broadcast::Receiver<Notification>,
    /// Event names by message, for the sender's lines.
    events: HashMap<MessageId, String>,
    /// Deliveries not final yet.
    open: HashSet<DeliveryId>,
    requests_shown: usize,
    failures: usize,
    deadline: Instant,
}

impl Watch<'_> {
    async fn until(
        &mut self,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), Box<dyn std::error::Error>> {
        while !done(self) {
            let left = self.deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                // A request reaches the receiver before its answer reaches the sender.
                biased;
                requests = self.receiver.wait_for(self.requests_shown + 1, left) => {
                    let requests = requests.map_err(|_| timeout())?;
                    for request in &requests[self.requests_shown..] {
                        show_request(request);
                    }
                    self.requests_shown = requests.len();
                }
                notification = self.notifications.recv() => match notification {
                    Ok(notification) => self.show(&notification),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err("the runtime stopped".into()),
                },
            }
        }
        Ok(())
    }

    fn show(&mut self, notification: &Notification) {
        match notification {
            Notification::Delivered {
                delivery,
                message,
                attempt,
                status,
                latency,
                ..
            } => {
                self.open.remove(delivery);
                println!(
                    "  sender    {}: delivered on attempt {attempt} ({status}, {} ms)",
                    self.event(message),
                    latency.as_millis()
                );
            }
            Notification::AttemptFailed {
                message,
                attempt,
                status,
                error,
                next_attempt_at,
                ..
            } => {
                self.failures += 1;
                let why = status.map_or_else(|| error.to_string(), |s| s.to_string());
                let wait = next_attempt_at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                // Rounded: the exact figure depends on how long recording the attempt took.
                let wait_ms = (wait.as_millis() + 50) / 100 * 100;
                println!(
                    "  sender    {}: attempt {attempt} failed ({why}), next in ~{wait_ms} ms",
                    self.event(message)
                );
            }
            Notification::Exhausted {
                delivery,
                message,
                attempts,
                ..
            } => {
                self.open.remove(delivery);
                println!(
                    "  sender    {}: gave up after {attempts} attempts (kept in the store)",
                    self.event(message)
                );
            }
            Notification::Skipped {
                delivery, message, ..
            } => {
                self.open.remove(delivery);
                println!(
                    "  sender    {}: skipped (subscription disabled)",
                    self.event(message)
                );
            }
            Notification::SubscriptionDisabled {
                subscription,
                reason,
            } => println!("  sender    {subscription} disabled: {reason}"),
            _ => {}
        }
    }

    fn event<'e>(&'e self, message: &MessageId) -> &'e str {
        self.events.get(message).map_or("?", String::as_str)
    }
}

fn timeout() -> Box<dyn std::error::Error> {
    format!("the deliveries did not finish within {DEADLINE:?}").into()
}

fn show_request(request: &ReceivedRequest) {
    let signature = match &request.signature {
        Some(Ok(())) => "valid".to_owned(),
        Some(Err(error)) => format!("INVALID ({error})"),
        None => "not checked".to_owned(),
    };
    println!(
        "  receiver  {} {}  webhook-id {}  signature {signature}",
        request.method,
        request.path,
        request.webhook_id().unwrap_or("-"),
    );
    println!("            {}", String::from_utf8_lossy(&request.body));
}

/// The delivery log, oldest first, as a table.
async fn print_log(hooks: &Webhooks) -> Result<(), webhooks::Error> {
    let mut rows = vec![[
        "STATUS".to_owned(),
        "ATTEMPTS".to_owned(),
        "EVENT".to_owned(),
        "SUBSCRIPTION".to_owned(),
        "LAST RESPONSE".to_owned(),
    ]];
    // A handful of deliveries: one page holds them all.
    let mut deliveries = hooks.delivery_log(&DeliveryQuery::new()).await?.items;
    deliveries.reverse();
    for delivery in &deliveries {
        let attempts = hooks.attempts(delivery.id).await?;
        let last = attempts.last().map_or_else(
            || "-".to_owned(),
            |attempt| match (attempt.status_code, &attempt.error_message) {
                (Some(code), _) => http::StatusCode::from_u16(code)
                    .map_or_else(|_| code.to_string(), |s| s.to_string()),
                (None, Some(message)) => message.clone(),
                (None, None) => "-".to_owned(),
            },
        );
        rows.push([
            delivery.status.to_string(),
            delivery.attempts.to_string(),
            delivery.event_type.clone(),
            delivery.subscription_id.to_string(),
            last,
        ]);
    }
    let mut widths = [0; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    println!("\ndelivery log (hooks.delivery_log), oldest first:");
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", line.join("  ").trim_end());
    }
    let undelivered = hooks.undelivered().await?.items.len();
    println!(
        "\nundelivered (exhausted or skipped): {}",
        if undelivered == 0 {
            "none".to_owned()
        } else {
            undelivered.to_string()
        }
    );
    Ok(())
}
