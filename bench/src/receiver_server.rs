//! The receiver: a bare hyper HTTP/1.1 server on 127.0.0.1 that answers every webhook with
//! `204 No Content` and counts them, in its own process so that it does not share the sender's
//! runtime or threads.
//!
//! Control endpoints (plain text):
//!
//! ```text
//! GET  /count            "<requests> <unix ns of the last one>"
//! POST /reset[?record=1] zero the count; with record=1, keep each webhook-id's arrival time
//! GET  /arrivals         one "<webhook-id> <unix ns>" line per recorded request (and forget them)
//! ```
//!
//! Anything else is a webhook: the body is read to the end, then counted and answered 204.
//! The first line on stdout is `listening 127.0.0.1:PORT`.
//!
//! Two settings make it an unhealthy endpoint, as polis.rb's `SECONDS_TO_SLEEP` and
//! `STATUS_CODE` did (see [`Behaviour`]): a delay before each answer (a slow endpoint) and
//! another status (a failing one). Webhooks are still counted, when they are answered, so that
//! the bench can tell how many attempts reached an unhealthy endpoint.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How the receiver answers webhooks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Behaviour {
    /// Waited after reading each webhook's body, before answering it (without holding a
    /// thread: other requests are answered meanwhile).
    pub(crate) delay: Duration,
    /// The status of every webhook's answer.
    pub(crate) status: StatusCode,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            delay: Duration::ZERO,
            status: StatusCode::NO_CONTENT,
        }
    }
}

impl Behaviour {
    /// From the command line's `--delay-ms` and `--status`.
    pub(crate) fn new(delay_ms: u64, status: u16) -> Result<Behaviour, BoxError> {
        Ok(Behaviour {
            delay: Duration::from_millis(delay_ms),
            status: StatusCode::from_u16(status)
                .map_err(|_| format!("receiver: {status} is not an HTTP status"))?,
        })
    }
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    count: AtomicU64,
    last_ns: AtomicU64,
    record: AtomicBool,
    arrivals: Mutex<Vec<(Box<str>, u64)>>,
}

/// Unix time in nanoseconds: comparable between the bench and this process (same machine).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Runs the receiver until the process is ended. With `exit_on_stdin_eof`, it ends when its
/// stdin closes: the bench holds the other end, so the receiver never outlives it.
pub(crate) fn run(
    port: u16,
    exit_on_stdin_eof: bool,
    behaviour: Behaviour,
) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(port, exit_on_stdin_eof, behaviour))
}

async fn serve(port: u16, exit_on_stdin_eof: bool, behaviour: Behaviour) -> Result<(), BoxError> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("receiver: cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
    }
    if exit_on_stdin_eof {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let state = Arc::new(State {
        behaviour,
        ..State::default()
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                eprintln!("receiver: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            // Errors here are clients hanging up (the bench's runtime shutting down): ignored.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    if request.method() == Method::GET && path == "/count" {
        let text = format!(
            "{} {}",
            state.count.load(Ordering::Acquire),
            state.last_ns.load(Ordering::Acquire)
        );
        return Ok(text_response(text));
    }
    if request.method() == Method::POST && path == "/reset" {
        let record = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("record=1"));
        state
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        state.record.store(record, Ordering::Release);
        state.count.store(0, Ordering::Release);
        state.last_ns.store(0, Ordering::Release);
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    if request.method() == Method::GET && path == "/arrivals" {
        let arrivals =
            std::mem::take(&mut *state.arrivals.lock().unwrap_or_else(|p| p.into_inner()));
        let mut text = String::with_capacity(arrivals.len() * 56);
        for (id, at) in arrivals {
            text.push_str(&id);
            text.push(' ');
            text.push_str(&at.to_string());
            text.push('\n');
        }
        return Ok(text_response(text));
    }

    // A webhook.
    let id: Option<Box<str>> = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(Into::into);
    if request.into_body().collect().await.is_err() {
        return Ok(empty(StatusCode::BAD_REQUEST));
    }
    let behaviour = state.behaviour;
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    let now = now_ns();
    if state.record.load(Ordering::Acquire)
        && let Some(id) = id
    {
        state
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, now));
    }
    state.last_ns.fetch_max(now, Ordering::AcqRel);
    state.count.fetch_add(1, Ordering::AcqRel);
    Ok(empty(behaviour.status))
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn text_response(text: String) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(text)))
}
