//! `random_number_texter`: a webhook receiver (axum) that "texts" the random numbers
//! `random_number_generator` sends. What a real receiver does, in a few lines each:
//!
//! - verifies the signature when `WEBHOOK_SECRET` is set, with the `webhooks::axum::VerifiedEvent`
//!   extractor, which also reads the body as a `RandomNumber` (`401` when missing or invalid);
//! - acts only on `random_number:generate` events that carry data;
//! - ignores a repeated `webhook-id`: senders retry, so receivers must be idempotent;
//! - answers `201 Created` when it acted, `202 Accepted` when it ignored the request (another
//!   event, no data, not JSON, a repeat), and `502` when the text could not be sent, so that
//!   the sender retries.
//!
//! The text goes to the console, or as JSON (`{"text": "...", "number": 863}`) to
//! `SMS_GATEWAY_URL` when that is set.
//!
//! ```text
//! cargo run --example random_number_texter                         # http://127.0.0.1:9001
//! cargo run --example random_number_generator -- --url http://localhost:9001
//! WEBHOOK_SECRET=whsec_... SMS_GATEWAY_URL=https://sms.example/send cargo run --example random_number_texter
//! ```

#![allow(clippy::print_stdout)]

use std::collections::{HashSet, VecDeque};
use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use clap::Parser;
use serde::{Deserialize, Serialize};
use webhooks::axum::{Rejection, VerifiedEvent};
use webhooks::{Event, EventError, ParseEventError, Secret, Verifier, WebhookEvent};

/// The only event this receiver acts on.
const EVENT: &str = "random_number:generate";

/// The event, as `random_number_generator` declares it; `null` data reads as `None`.
#[derive(Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(Option<u64>);

/// How many `webhook-id`s are remembered to spot repeats. A real receiver keeps them in its
/// database, as long as the sender may retry (about 28 hours with the default schedule).
const REMEMBERED_IDS: usize = 10_000;

/// A webhook receiver that texts the random numbers it receives.
#[derive(Parser)]
#[command(name = "random_number_texter")]
struct Args {
    /// The port to listen on (0: any free port; the one chosen is printed).
    #[arg(long, env = "PORT", default_value_t = 9001)]
    port: u16,

    /// The address to listen on (0.0.0.0 to accept requests from other machines).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,

    /// The subscription's signing secret (`whsec_...`): when set, requests whose signature is
    /// missing or invalid are answered 401.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<Secret>,

    /// Where to POST each text as JSON, instead of printing it.
    #[arg(long, env = "SMS_GATEWAY_URL")]
    sms_gateway_url: Option<reqwest::Url>,
}

/// Sends a text message. Two implementations: the console, and an HTTP SMS gateway.
trait Texter: Send + Sync + 'static {
    fn text(
        &self,
        number: u64,
    ) -> impl Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send;
}

/// "Texts" by printing.
struct Console;

impl Texter for Console {
    async fn text(&self, number: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        println!("text: your random number is {number}");
        Ok(())
    }
}

/// Texts through an SMS gateway: POSTs `{"text": ..., "number": ...}` and expects a 2xx.
struct Gateway {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Texter for Gateway {
    async fn text(&self, number: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = serde_json::json!({
            "text": format!("Your random number is {number}"),
            "number": number,
        });
        let response = self
            .client
            .post(self.url.clone())
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("the SMS gateway answered {}", response.status()).into());
        }
        println!("text: sent {number} through {}", self.url);
        Ok(())
    }
}

struct App<T> {
    texter: T,
    seen: Mutex<Seen>,
}

/// The last [`REMEMBERED_IDS`] message ids acted on.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remembers `id`; `false` if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }

    fn forget(&mut self, id: &str) {
        self.ids.remove(id);
        self.order.retain(|seen| seen != id);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match args.sms_gateway_url.clone() {
        Some(url) => {
            let texter = Gateway {
                client: reqwest::Client::new(),
                url,
            };
            run(args, texter).await
        }
        None => run(args, Console).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("random_number_texter: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run<T: Texter>(args: Args, texter: T) -> Result<(), Box<dyn std::error::Error>> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // Tests and scripts read this line to learn the port when `--port 0` was given.
    eprintln!(
        "random_number_texter: listening on http://{}/",
        listener.local_addr()?
    );
    eprintln!(
        "random_number_texter: texting to {}; signatures {}",
        args.sms_gateway_url
            .as_ref()
            .map_or_else(|| "the console".to_owned(), ToString::to_string),
        if args.secret.is_some() {
            "checked"
        } else {
            "not checked (set WEBHOOK_SECRET to check them)"
        }
    );
    let app = Arc::new(App {
        texter,
        seen: Mutex::new(Seen::default()),
    });
    // Any path: the subscription's URL decides it, not this receiver.
    let router = match args.secret {
        Some(secret) => Router::new()
            .fallback(receive_checked::<T>)
            .with_state(Checked {
                app,
                verifier: Verifier::new(secret),
            }),
        None => Router::new().fallback(receive::<T>).with_state(app),
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The receiver's state when a secret is set: the app, and the verifier the extractor takes
/// from it ([`FromRef`]).
struct Checked<T> {
    app: Arc<App<T>>,
    verifier: Verifier,
}

impl<T> Clone for Checked<T> {
    fn clone(&self) -> Self {
        Checked {
            app: self.app.clone(),
            verifier: self.verifier.clone(),
        }
    }
}

impl<T> FromRef<Checked<T>> for Verifier {
    fn from_ref(checked: &Checked<T>) -> Verifier {
        checked.verifier.clone()
    }
}

/// With a secret: `VerifiedEvent` checks the signature first (nothing in an unauthenticated
/// body is worth reading), then reads the body as a [`RandomNumber`].
async fn receive_checked<T: Texter>(
    State(checked): State<Checked<T>>,
    event: Result<VerifiedEvent<RandomNumber>, Rejection>,
) -> Response {
    match event {
        Ok(VerifiedEvent(event)) => act(&checked.app, event).await.into_response(),
        Err(rejection) => match rejection.event_error() {
            Some(EventError::Parse(error)) => {
                let body = rejection.refused_body().map_or(&[][..], |body| &body[..]);
                ignored(&why_ignored(error, body)).into_response()
            }
            // 401 (or 413 for a body over the size limit): the extractor's own answer.
            _ => {
                tracing::warn!(%rejection, "rejected");
                rejection.into_response()
            }
        },
    }
}

/// Without a secret: the body is read as is.
async fn receive<T: Texter>(State(app): State<Arc<App<T>>>, body: Bytes) -> Response {
    match Event::parse(&body) {
        Ok(event) => act(&app, event).await.into_response(),
        Err(error) => ignored(&why_ignored(&error, &body)).into_response(),
    }
}

fn why_ignored(error: &ParseEventError, body: &[u8]) -> String {
    match error {
        _ if error.is_unknown_event() => {
            format!("not a {EVENT} event ({:?})", error.event_type())
        }
        // Not an envelope: not JSON at all, or JSON without `data`.
        _ if error.is_malformed()
            && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() =>
        {
            "the body is not JSON".to_owned()
        }
        _ if error.is_malformed() => format!("no data ({error})"),
        _ => format!("the data is not a number: {error}"),
    }
}

/// Texts the number of a parsed event, once per message id.
async fn act<T: Texter>(app: &App<T>, event: Event<RandomNumber>) -> (StatusCode, String) {
    let Some(number) = event.data.0 else {
        return ignored("no data");
    };
    // The id the sender keeps across retries (the header, or the compact body's `id`).
    let id = event.id().map(str::to_owned);
    if let Some(id) = &id
        && !lock(&app.seen).insert(id)
    {
        return ignored(&format!("{id} was already handled"));
    }

    match app.texter.text(number).await {
        Ok(()) => {
            tracing::info!(number, id = id.as_deref().unwrap_or("-"), "texted");
            (StatusCode::CREATED, format!("texted {number}\n"))
        }
        Err(error) => {
            // Not done: forget the id so that the sender's retry is acted on.
            if let Some(id) = &id {
                lock(&app.seen).forget(id);
            }
            tracing::error!(%error, number, "could not send the text");
            (
                StatusCode::BAD_GATEWAY,
                format!("could not send the text: {error}\n"),
            )
        }
    }
}

fn ignored(why: &str) -> (StatusCode, String) {
    tracing::info!("ignored: {why}");
    (StatusCode::ACCEPTED, format!("ignored: {why}\n"))
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    // A panic while holding it cannot leave the set half-updated in a way that matters here.
    seen.lock().unwrap_or_else(|p| p.into_inner())
}
