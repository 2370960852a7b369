//! A web page with a button: each press generates a random number (0 to 999), sends it as a
//! `random_number:generate` webhook, and the page shows the delivery log (status, attempts,
//! response codes) as it changes.
//!
//! ```text
//! cargo run --example polis                    # a receiver on http://localhost:9000
//! cargo run --example random_number_button     # then open http://127.0.0.1:8080
//! cargo run --example random_number_button -- --url http://localhost:9000 --url http://localhost:9001 --db button.db
//! ```
//!
//! Deliveries go through the durable SQLite store (a temporary file unless `--db` is given),
//! retried quickly (1 s, 2 s, 4 s, … up to 8 attempts) so that the page shows retries as they
//! happen. The page polls a small JSON endpoint (`/log`) every 300 ms; plain HTML and a little
//! inline JavaScript, no build step.
//!
//! This is a development tool: it allows webhooks to private networks (localhost included),
//! which a production sender must not do.

#![allow(clippy::print_stdout)] // an example program talks on stdout

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::Serialize;
use serde_json::{Value, json};
use webhooks::store::{DeliveryQuery, SqliteStore};
use webhooks::{MessageId, RetryPolicy, Subscription, SubscriptionId, WebhookEvent, Webhooks};

/// The event: one random number.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Parser)]
#[command(
    about = "A web page with a button that sends a random number as a webhook and shows the \
             delivery log",
    long_about = "A web page with a button that sends a random number as a \
                  `random_number:generate` webhook and shows the delivery log as it changes.\n\n\
                  For development: webhooks may go to private networks (localhost included)."
)]
struct Args {
    /// The port of the page, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// Where the webhooks go (repeat for several endpoints).
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://localhost:9000"
    )]
    urls: Vec<String>,

    /// The SQLite store (default: a new file in a temporary directory, removed on exit).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

struct App {
    hooks: Webhooks,
    /// The number each message carried, for the page (the store keeps bodies, not numbers).
    numbers: Mutex<HashMap<MessageId, u32>>,
    /// Endpoint of each subscription, for the page.
    urls: HashMap<SubscriptionId, String>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    // Kept alive until the end: dropping it deletes the temporary store.
    let mut temp = None;
    let path = match args.db {
        Some(path) => path,
        None => {
            let dir = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let path = dir.path().join("webhooks.db");
            temp = Some(dir);
            path
        }
    };
    let store = SqliteStore::open(&path)
        .await
        .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .retry(RetryPolicy::exponential(
            Duration::from_secs(1),
            Duration::from_secs(30),
            8,
        ))
        .build()
        .await?;
    println!("store: {}", path.display());
    println!(
        "private networks allowed (development only): webhooks may go to localhost and internal \
         addresses"
    );

    let mut urls = HashMap::new();
    let existing = hooks.subscriptions().await?;
    for url in &args.urls {
        let wanted = Subscription::new(url)?.events(["random_number:*"]);
        // A reused store keeps its subscriptions: do not subscribe the same URL twice.
        let subscription = match existing.iter().find(|s| s.url() == wanted.url()) {
            Some(found) => found.clone(),
            None => hooks.subscribe(wanted).await?,
        };
        println!(
            "sending to {} (subscription {}, signing secret {})",
            subscription.url(),
            subscription.id(),
            subscription.signing_secret().expose()
        );
        urls.insert(subscription.id(), subscription.url().to_string());
    }
    for other in &existing {
        if urls.contains_key(&other.id()) {
            continue;
        }
        println!(
            "also sending to {} (subscription {}, from the store)",
            other.url(),
            other.id()
        );
        urls.insert(other.id(), other.url().to_string());
    }

    let app = Arc::new(App {
        hooks: hooks.clone(),
        numbers: Mutex::new(HashMap::new()),
        urls,
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/send", post(send))
        .route("/log", get(log))
        .with_state(app);
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let address = listener.local_addr()?;
    // The tests read this line to find the page.
    println!("listening on http://{address}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            // If Ctrl-C cannot be watched, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    println!("stopping: waiting for requests in flight");
    hooks.shutdown().await;
    drop(temp);
    Ok(())
}

/// A handler's failure: 500 with the error's text.
struct Failed(String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(error: E) -> Self {
        Failed(error.to_string())
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0).into_response()
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Generates a number and sends it.
async fn send(State(app): State<Arc<App>>) -> Result<Json<Value>, Failed> {
    let number = fastrand::u32(0..1000);
    let message = webhooks::Message::new(&RandomNumber(number))?;
    // Recorded before sending, so that the log never shows the delivery without its number.
    lock(&app.numbers).insert(message.id(), number);
    let id = app.hooks.send_message(&message).await?;
    Ok(Json(json!({ "number": number, "message_id": id })))
}

/// The newest deliveries, with the response code (or failure kind) of each attempt.
async fn log(State(app): State<Arc<App>>) -> Result<Json<Value>, Failed> {
    let page = app
        .hooks
        .delivery_log(&DeliveryQuery::new().limit(20))
        .await?;
    let mut rows = Vec::with_capacity(page.items.len());
    for delivery in page.items {
        let attempts = app.hooks.attempts(delivery.id).await?;
        let responses: Vec<String> = attempts
            .iter()
            .map(|a| match (a.status_code, a.error) {
                (Some(code), _) => code.to_string(),
                (None, Some(kind)) => kind.to_string(),
                (None, None) => "?".to_owned(),
            })
            .collect();
        rows.push(json!({
            "id": delivery.id,
            "message_id": delivery.message_id,
            "number": lock(&app.numbers).get(&delivery.message_id),
            "url": app.urls.get(&delivery.subscription_id),
            "status": delivery.status.as_str(),
            "attempts": delivery.attempts,
            "responses": responses,
            "created_at_ms": unix_millis(delivery.created_at),
            "next_attempt_at_ms": delivery.next_attempt_at.map(unix_millis),
        }));
    }
    Ok(Json(json!({ "deliveries": rows })))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere leaves the map usable.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The page. Stable ids and attributes for tests: `#send`, `#number` (`data-number`,
/// `data-message`), `#error`, `#log`, and one `tr` per delivery with `data-delivery`,
/// `data-message`, `data-status`.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Random number button</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; }
  button { font-size: 1.2rem; padding: .5rem 1.2rem; }
  #number { font-size: 1.2rem; margin-left: 1rem; font-weight: bold; }
  #error { color: #b00020; margin-left: 1rem; }
  table { border-collapse: collapse; margin-top: 1.5rem; }
  th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
  tr[data-status="delivered"] .status { color: #087f23; }
  tr[data-status="failed"] .status, tr[data-status="exhausted"] .status { color: #b00020; }
  .note { color: #666; font-size: .9rem; }
</style>
</head>
<body>
<h1>Random number button</h1>
<p>Each press generates a number from 0 to 999 and sends it as a
<code>random_number:generate</code> webhook.</p>
<p><button id="send" type="button">Generate and send</button>
<output id="number"></output><span id="error" role="alert"></span></p>
<table id="log">
<thead><tr><th>Sent</th><th>Number</th><th>Endpoint</th><th>Status</th><th>Attempts</th>
<th>Responses</th><th>Next attempt</th></tr></thead>
<tbody></tbody>
</table>
<p class="note">Development mode: webhooks may go to private networks (localhost included).</p>
<script>
"use strict";
const sendButton = document.getElementById("send");
const numberOut = document.getElementById("number");
const errorOut = document.getElementById("error");
const tbody = document.querySelector("#log tbody");

function time(ms) { return ms == null ? "" : new Date(ms).toLocaleTimeString(); }

function cell(row, className, text) {
  const td = row.insertCell();
  td.className = className;
  td.textContent = text;
}

sendButton.addEventListener("click", async () => {
  sendButton.disabled = true;
  errorOut.textContent = "";
  try {
    const response = await fetch("/send", { method: "POST" });
    if (!response.ok) throw new Error(await response.text());
    const sent = await response.json();
    numberOut.textContent = "Sent " + sent.number;
    numberOut.dataset.number = sent.number;
    numberOut.dataset.message = sent.message_id;
    refresh();
  } catch (e) {
    errorOut.textContent = "Could not send: " + e.message;
  } finally {
    sendButton.disabled = false;
  }
});

async function refresh() {
  try {
    const response = await fetch("/log");
    if (!response.ok) throw new Error(await response.text());
    const log = await response.json();
    const rows = log.deliveries.map(d => {
      const row = document.createElement("tr");
      row.dataset.delivery = d.id;
      row.dataset.message = d.message_id;
      row.dataset.status = d.status;
      cell(row, "sent", time(d.created_at_ms));
      cell(row, "number", d.number == null ? "?" : String(d.number));
      cell(row, "url", d.url || "");
      cell(row, "status", d.status);
      cell(row, "attempts", String(d.attempts));
      cell(row, "responses", d.responses.join(", "));
      cell(row, "next", d.status === "delivered" ? "" : time(d.next_attempt_at_ms));
      return row;
    });
    tbody.replaceChildren(...rows);
    if (errorOut.dataset.source === "log") {
      errorOut.textContent = "";
      delete errorOut.dataset.source;
    }
  } catch (e) {
    errorOut.textContent = "Could not load the log: " + e.message;
    errorOut.dataset.source = "log";
  }
}

// Poll: each refresh starts 300 ms after the previous one ended, so slow answers never pile up.
(async function poll() {
  await refresh();
  setTimeout(poll, 300);
})();
</script>
</body>
</html>
"##;
