//! [`TestReceiver`]: a real HTTP endpoint on 127.0.0.1 for testing code that sends webhooks.
//!
//! It records every request, can verify signatures, answers from a script (statuses, delays,
//! dropped connections, `Retry-After`), and lets a test wait for N requests with a deadline
//! instead of sleeping.
//!
//! ```
//! use std::time::Duration;
//! use serde::Serialize;
//! use webhooks::testing::{Reply, TestReceiver};
//! use webhooks::{Subscription, WebhookEvent, Webhooks, store::MemoryStore};
//!
//! #[derive(Serialize, WebhookEvent)]
//! #[webhook(resource = "random_number", action = "generate")]
//! struct RandomNumber(u32);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = TestReceiver::start().await?;
//! receiver.script([Reply::status(503)]); // fail once, then the default 200
//!
//! let hooks = Webhooks::builder()
//!     .store(MemoryStore::new())
//!     .allow_private_networks() // the receiver is on 127.0.0.1
//!     .retry(webhooks::RetryPolicy::schedule([Duration::from_millis(10)]))
//!     .build()
//!     .await?;
//! let sub = hooks.subscribe(Subscription::new(receiver.url())?).await?;
//! receiver.verify_with(webhooks::Verifier::new(sub.signing_secret().clone()));
//!
//! hooks.send(&RandomNumber(863)).await?;
//! let requests = receiver.wait_for(2, Duration::from_secs(10)).await?;
//! assert_eq!(requests[1].json()?["data"], 863);
//! assert!(requests[1].signature_ok());
//! # hooks.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::signing::{Verifier, VerifyError};

/// A request the receiver got.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceivedRequest {
    /// `POST`, normally.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Every header, as received (signature headers included).
    pub headers: HeaderMap,
    /// The body, byte for byte.
    pub body: Bytes,
    /// When it arrived.
    pub at: SystemTime,
    /// The signature check, when the receiver has a [`Verifier`].
    pub signature: Option<Result<(), VerifyError>>,
    /// The status the receiver answered with (`None`: it dropped the connection).
    pub answered: Option<u16>,
}

impl ReceivedRequest {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> Option<&str> {
        self.header(crate::signing::HEADER_ID)
    }

    /// Whether the signature was checked and valid.
    pub fn signature_ok(&self) -> bool {
        matches!(self.signature, Some(Ok(())))
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    delay: Duration,
    headers: Vec<(String, String)>,
    body: Bytes,
    drop_connection: bool,
}

impl Reply {
    /// Answer with this status.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
            body: Bytes::new(),
            drop_connection: false,
        }
    }

    /// Close the connection without answering.
    pub fn drop_connection() -> Self {
        Reply {
            drop_connection: true,
            ..Reply::status(200)
        }
    }

    /// Wait this long before answering (or dropping).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Add a header to the answer.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Add `Retry-After: <seconds>`.
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", seconds.to_string())
    }

    /// Answer with this body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

impl Default for Reply {
    fn default() -> Self {
        Reply::status(200)
    }
}

/// Picks the reply to a request from its content (see [`TestReceiver::respond_with`]).
type Responder = Arc<dyn Fn(&ReceivedRequest) -> Option<Reply> + Send + Sync>;

struct State {
    requests: Mutex<Vec<ReceivedRequest>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    responder: Mutex<Option<Responder>>,
    verifier: Mutex<Option<Verifier>>,
    count: watch::Sender<usize>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// An HTTP server on 127.0.0.1 and a free port, recording what it receives. It stops when
/// dropped.
pub struct TestReceiver {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

/// Fewer requests than expected arrived before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected} requests within {deadline:?}, got {received}")]
pub struct WaitTimeout {
    /// How many were awaited.
    pub expected: usize,
    /// How many came.
    pub received: usize,
    /// How long was waited.
    pub deadline: Duration,
}

impl std::fmt::Debug for TestReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestReceiver")
            .field("addr", &self.addr)
            .field("received", &self.count())
            .finish_non_exhaustive()
    }
}

impl TestReceiver {
    /// Starts a receiver answering `200` to everything.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::default()),
            responder: Mutex::new(None),
            verifier: Mutex::new(None),
            count: watch::channel(0).0,
            in_flight: Mutex::new((0, 0)),
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(TestReceiver {
            addr,
            state,
            server,
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url_with_path(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Checks every request's signature from now on (see [`ReceivedRequest::signature`]); a
    /// request that fails the check is answered `401`.
    pub fn verify_with(&self, verifier: Verifier) {
        *lock(&self.state.verifier) = Some(verifier);
    }

    /// The answer once the script is spent (default `200`).
    pub fn reply(&self, reply: Reply) {
        *lock(&self.state.default) = reply;
    }

    /// Answers the next requests with these, in order, then with the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    /// Answers each request with what `responder` returns for it, before the script and the
    /// default (which answer when it returns `None`): to answer by content, say failing one
    /// customer's events.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use webhooks::testing::{Reply, TestReceiver};
    ///
    /// let receiver = TestReceiver::start().await?;
    /// receiver.respond_with(|request| {
    ///     let failing = request.json().is_ok_and(|body| body["data"]["account"] == 7);
    ///     failing.then(|| Reply::status(503))
    /// });
    /// # Ok(()) }
    /// ```
    pub fn respond_with(
        &self,
        responder: impl Fn(&ReceivedRequest) -> Option<Reply> + Send + Sync + 'static,
    ) {
        *lock(&self.state.responder) = Some(Arc::new(responder));
    }

    /// The most requests it was answering at once (a request counts from its arrival until its
    /// answer is sent, scripted delays included): what a concurrency limit is measured by.
    pub fn peak_concurrency(&self) -> usize {
        lock(&self.state.in_flight).1
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests have arrived.
    pub fn count(&self) -> usize {
        *self.state.count.borrow()
    }

    /// Waits until at least `n` requests have arrived, at most `deadline`; returns them all.
    pub async fn wait_for(
        &self,
        n: usize,
        deadline: Duration,
    ) -> Result<Vec<ReceivedRequest>, WaitTimeout> {
        let mut count = self.state.count.subscribe();
        match tokio::time::timeout(deadline, count.wait_for(|c| *c >= n)).await {
            Ok(Ok(_)) => Ok(self.requests()),
            _ => Err(WaitTimeout {
                expected: n,
                received: self.count(),
                deadline,
            }),
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(request, state.clone()));
            // Errors here are the client going away, or a scripted dropped connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts a request as being answered while it lives: until the answer is handed to hyper,
/// or the client went away and the task was dropped.
struct Answering<'a>(&'a State);

impl<'a> Answering<'a> {
    fn new(state: &'a State) -> Self {
        let mut in_flight = lock(&state.in_flight);
        in_flight.0 += 1;
        in_flight.1 = in_flight.1.max(in_flight.0);
        Answering(state)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        lock(&self.0.in_flight).0 -= 1;
    }
}

/// The error that makes hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the script")]
struct Dropped;

async fn handle(
    request: hyper::Request<Incoming>,
    state: Arc<State>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let signature = lock(&state.verifier)
        .as_ref()
        .map(|v| v.verify_headers(&parts.headers, &body));
    let rejected = matches!(signature, Some(Err(_)));
    let mut received = ReceivedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.to_string()),
        headers: parts.headers,
        body,
        at: SystemTime::now(),
        signature,
        answered: None,
    };
    let responder = lock(&state.responder).clone();
    let reply = responder
        .and_then(|respond| respond(&received))
        .or_else(|| lock(&state.script).pop_front())
        .unwrap_or_else(|| lock(&state.default).clone());
    let status = if rejected { 401 } else { reply.status };
    received.answered = (!reply.drop_connection).then_some(status);
    let _answering = Answering::new(&state);
    lock(&state.requests).push(received);
    state.count.send_modify(|c| *c += 1);

    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if reply.drop_connection {
        return Err(Dropped);
    }
    let mut response = hyper::Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok::<_, Dropped>(response)
}
