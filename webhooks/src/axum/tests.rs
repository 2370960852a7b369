//! The extractors over real HTTP on loopback: axum::serve on 127.0.0.1:0, called with reqwest.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::*;
use crate::{Message, Secret};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RandomNumber(u32);

impl WebhookEvent for RandomNumber {
    const EVENT_TYPES: &'static [&'static str] = &["random_number:generate"];

    fn event_type(&self) -> &'static str {
        "random_number:generate"
    }

    fn serialize_data<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }
}

/// Another event, which `RandomNumber` does not know.
#[derive(Serialize)]
struct Other;

impl WebhookEvent for Other {
    const EVENT_TYPES: &'static [&'static str] = &["other:thing"];

    fn event_type(&self) -> &'static str {
        "other:thing"
    }

    fn serialize_data<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }
}

async fn event(VerifiedEvent(event): VerifiedEvent<RandomNumber>) -> String {
    format!(
        "{} {} {}",
        event.event_type(),
        event.id().unwrap_or("-"),
        event.data.0
    )
}

async fn body(VerifiedBody(body): VerifiedBody) -> Vec<u8> {
    body.to_vec()
}

/// Serves the extractors with `secret`'s verifier as the state; the base URL.
async fn serve(secret: Secret) -> String {
    let router = Router::new()
        .route("/event", post(event))
        .route("/body", post(body))
        .with_state(Verifier::new(secret));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}")
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("time")
}

/// Posts `body` signed by `secret` as of `timestamp`, with `id`; the status and the answer.
async fn post_signed(
    url: &str,
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", secret.sign(id, timestamp, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn a_good_signature_gives_the_typed_event() {
    let secret = Secret::generate();
    let base = serve(secret.clone()).await;
    let message = Message::new(&RandomNumber(863)).expect("message");
    let id = message.id().to_string();
    let (status, answer) = post_signed(
        &format!("{base}/event"),
        &secret,
        &id,
        now(),
        message.body(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, format!("random_number:generate {id} 863"));

    let (status, answer) =
        post_signed(&format!("{base}/body"), &secret, &id, now(), message.body()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_bytes(), message.body());
}

#[tokio::test]
async fn a_bad_signature_is_answered_401() {
    let secret = Secret::generate();
    let base = serve(secret).await;
    let message = Message::new(&RandomNumber(1)).expect("message");
    let id = message.id().to_string();
    for path in ["event", "body"] {
        let url = format!("{base}/{path}");
        let (status, answer) =
            post_signed(&url, &Secret::generate(), &id, now(), message.body()).await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(answer.starts_with("invalid webhook signature"), "{answer}");
    }
    // No signature headers at all.
    let response = reqwest::Client::new()
        .post(format!("{base}/event"))
        .body(message.body().to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn a_stale_timestamp_is_answered_401() {
    let secret = Secret::generate();
    let base = serve(secret.clone()).await;
    let message = Message::new(&RandomNumber(2)).expect("message");
    let id = message.id().to_string();
    let an_hour_ago = now() - 3600;
    let (status, answer) = post_signed(
        &format!("{base}/event"),
        &secret,
        &id,
        an_hour_ago,
        message.body(),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn a_body_that_is_not_an_envelope_is_answered_400() {
    let secret = Secret::generate();
    let base = serve(secret.clone()).await;
    let (status, answer) = post_signed(
        &format!("{base}/event"),
        &secret,
        "msg_1",
        now(),
        b"not json",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.starts_with("invalid webhook"), "{answer}");
}

#[tokio::test]
async fn an_unknown_event_is_answered_422() {
    let secret = Secret::generate();
    let base = serve(secret.clone()).await;
    let message = Message::new(&Other).expect("message");
    let id = message.id().to_string();
    let (status, answer) = post_signed(
        &format!("{base}/event"),
        &secret,
        &id,
        now(),
        message.body(),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("other:thing"), "{answer}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413() {
    let secret = Secret::generate();
    let router = Router::new()
        .route("/event", post(event))
        .layer(axum::extract::DefaultBodyLimit::max(16))
        .with_state(Verifier::new(secret.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let message = Message::new(&RandomNumber(3)).expect("message");
    let id = message.id().to_string();
    let (status, _) = post_signed(
        &format!("http://{addr}/event"),
        &secret,
        &id,
        now(),
        message.body(),
    )
    .await;
    assert_eq!(status, 413);
}
