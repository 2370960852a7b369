//! `polis`: a webhook receiver that prints every request it gets (method, path, headers, body)
//! as a readable block, and answers with the status you choose: point a sender at it to see
//! exactly what goes over the wire. (The Rust port of webhooks.rb's `polis.rb`.)
//!
//! With a secret (`WEBHOOK_SECRET` or `--secret`) it checks each request's signature with the
//! `webhooks::axum::VerifiedBody` extractor, prints the verdict, and answers `401` when the
//! signature is missing or invalid. The secret is the subscription's `whsec_...` (`v1` signatures), or the public key
//! `whpk_...` of a sender that signs with an Ed25519 key `whsk_...` (`v1a` signatures).
//!
//! ```text
//! cargo run --example polis                                  # http://127.0.0.1:9000, answers 200
//! cargo run --example polis -- --status 500 --sleep 2        # a slow, failing endpoint
//! WEBHOOK_SECRET=whsec_... cargo run --example polis         # verify signatures
//! cargo run --example polis -- --secret whpk_...             # verify Ed25519 signatures
//! cargo run --example polis -- --help
//! ```

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use clap::Parser;
use webhooks::axum::{Rejection, VerifiedBody};
use webhooks::signing::SecretKind;
use webhooks::{Secret, Verifier};

/// A webhook receiver that prints every request it gets and answers with the status you choose.
#[derive(Parser)]
#[command(
    name = "polis",
    after_help = "Example: WEBHOOK_SECRET=whsec_... cargo run --example polis -- --status 202"
)]
struct Args {
    /// The port to listen on (0: any free port; the one chosen is printed).
    #[arg(long, env = "PORT", default_value_t = 9000)]
    port: u16,

    /// The address to listen on (0.0.0.0 to accept requests from other machines).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,

    /// The HTTP status to answer every request with.
    #[arg(long = "status", env = "STATUS_CODE", default_value = "200", value_parser = parse_status)]
    status: StatusCode,

    /// Seconds to wait before answering (fractions allowed), to play a slow endpoint.
    #[arg(long = "sleep", env = "SECONDS_TO_SLEEP", default_value = "0", value_parser = parse_seconds)]
    sleep: Duration,

    /// The subscription's signing secret (`whsec_...`), or the Ed25519 public key (`whpk_...`)
    /// of a sender that signs with `whsk_...`. When set, each signature is checked and a request
    /// whose signature is missing or invalid is answered 401.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<Secret>,
}

fn parse_status(text: &str) -> Result<StatusCode, String> {
    text.parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("`{text}` is not an HTTP status code (100 to 999)"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds (0 or more)"))
}

struct App {
    status: StatusCode,
    sleep: Duration,
    /// Numbers the blocks, so that concurrent requests can be told apart.
    received: AtomicU64,
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
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("polis: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port when `--port 0` was given.
    eprintln!("polis: listening on http://{local}/");
    eprintln!(
        "polis: answering {} after {} s; signatures {}",
        args.status,
        args.sleep.as_secs_f64(),
        match args.secret.as_ref().map(Secret::kind) {
            None => "not checked (set WEBHOOK_SECRET or --secret to check them)",
            Some(SecretKind::Symmetric) => "checked: v1 (401 when missing or invalid)",
            Some(_) => "checked: v1a, Ed25519 (401 when missing or invalid)",
        }
    );
    let app = Arc::new(App {
        status: args.status,
        sleep: args.sleep,
        received: AtomicU64::new(0),
    });
    // Every method and path: polis shows whatever comes. With a secret, the `VerifiedBody`
    // extractor checks each signature; without one, the body is taken as is.
    let router = match args.secret {
        Some(secret) => Router::new().fallback(receive_checked).with_state(Checked {
            app,
            verifier: Verifier::new(secret),
        }),
        None => Router::new().fallback(receive).with_state(app),
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// The state when a secret is set: the app, and the verifier the extractor takes from it.
#[derive(Clone)]
struct Checked {
    app: Arc<App>,
    verifier: Verifier,
}

impl FromRef<Checked> for Verifier {
    fn from_ref(checked: &Checked) -> Verifier {
        checked.verifier.clone()
    }
}

/// What polis makes of a request's signature.
enum Verdict {
    /// No secret: not checked.
    Unchecked,
    Valid,
    Invalid(Rejection),
}

/// With a secret: a request whose signature is missing or invalid is shown, then answered
/// with the extractor's 401.
async fn receive_checked(
    State(checked): State<Checked>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    verified: Result<VerifiedBody, Rejection>,
) -> Response {
    let (body, verdict) = match verified {
        Ok(VerifiedBody(body)) => (body, Verdict::Valid),
        Err(rejection) => (
            rejection.refused_body().cloned().unwrap_or_default(),
            Verdict::Invalid(rejection),
        ),
    };
    show(&checked.app, peer, method, uri, headers, body, verdict).await
}

/// Without a secret: every request is shown and answered with the chosen status.
async fn receive(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    show(&app, peer, method, uri, headers, body, Verdict::Unchecked).await
}

/// Prints the request as one block, then answers.
async fn show(
    app: &App,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    verdict: Verdict,
) -> Response {
    let number = app.received.fetch_add(1, Ordering::Relaxed) + 1;
    let status = match &verdict {
        Verdict::Invalid(rejection) => rejection.status(),
        _ => app.status,
    };

    let mut block = format!("──── request #{number} from {peer} ────\n{method} {uri}\n");
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = writeln!(block, "{name}: {value}");
    }
    block.push('\n');
    block.push_str(&show_body(&body));
    block.push('\n');
    match &verdict {
        Verdict::Unchecked => block.push_str("signature: not checked (no secret)\n"),
        Verdict::Valid => block.push_str("signature: valid\n"),
        Verdict::Invalid(rejection) => match rejection.event_error() {
            Some(error) => {
                let _ = writeln!(block, "signature: INVALID ({error})");
            }
            None => {
                let _ = writeln!(block, "signature: not checked ({rejection})");
            }
        },
    }
    let _ = writeln!(
        block,
        "answer: {status} after {} s\n",
        app.sleep.as_secs_f64()
    );
    // One write, so that blocks of concurrent requests do not interleave.
    {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(block.as_bytes());
        let _ = stdout.flush();
    }

    if !app.sleep.is_zero() {
        tokio::time::sleep(app.sleep).await;
    }
    match verdict {
        Verdict::Invalid(rejection) => rejection.into_response(),
        _ => status.into_response(),
    }
}

/// JSON pretty-printed, other text as is, binary as a byte count.
fn show_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
        && let Ok(pretty) = serde_json::to_string_pretty(&json)
    {
        return pretty;
    }
    match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("({} bytes of binary data)", body.len()),
    }
}
