//! `polis` as a user runs it: a child process on a free port, requests over real HTTP.

mod child;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use child::{DEADLINE, Example, client};
use serde::Serialize;
use webhooks::store::MemoryStore;
use webhooks::{Notification, Secret, Subscription, WebhookEvent, Webhooks};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

/// The `webhook-*` headers of a request signed with `secret`, now.
fn signed(secret: &Secret, id: &str, body: &str) -> [(&'static str, String); 3] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let timestamp = i64::try_from(now).expect("a timestamp in range");
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            secret.sign(id, timestamp, body.as_bytes()),
        ),
    ]
}

#[tokio::test]
async fn logs_each_request_and_answers_the_configured_status() {
    let mut polis = Example::start(
        "polis",
        &["--port", "0"],
        &[("STATUS_CODE", "202"), ("SECONDS_TO_SLEEP", "0.3")],
    );
    let url = polis.listening_url().await;

    let started = Instant::now();
    let response = client()
        .post(format!("{url}hooks/in?x=1"))
        .header("x-test", "hello")
        .header("content-type", "application/json")
        .body(r#"{"event":"random_number:generate","data":863}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "STATUS_CODE is honoured");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "SECONDS_TO_SLEEP is honoured: answered after {:?}",
        started.elapsed()
    );

    let output = polis
        .wait_for("request block", |o| o.stdout.contains("answer:"))
        .await;
    let block = &output.stdout;
    assert!(block.contains("POST /hooks/in?x=1\n"), "{block}");
    assert!(block.contains("x-test: hello\n"), "{block}");
    assert!(
        block.contains("content-type: application/json\n"),
        "{block}"
    );
    // The JSON body, pretty-printed.
    assert!(
        block.contains(r#""event": "random_number:generate""#),
        "{block}"
    );
    assert!(block.contains(r#""data": 863"#), "{block}");
    assert!(block.contains("signature: not checked"), "{block}");
    assert!(block.contains("answer: 202 Accepted"), "{block}");
}

#[tokio::test]
async fn with_a_secret_verifies_signatures_and_answers_401_to_bad_ones() {
    let secret: Secret = SECRET.parse().unwrap();
    let mut polis = Example::start("polis", &["--port", "0", "--secret", SECRET], &[]);
    let url = polis.listening_url().await;
    let client = client();
    let body = r#"{"id":"msg_1","event":"random_number:generate","data":1}"#;

    // Signed with the right secret: the configured status (200).
    let mut request = client.post(&url).body(body);
    for (name, value) in signed(&secret, "msg_1", body) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
    polis
        .wait_for("valid verdict", |o| o.stdout.contains("signature: valid"))
        .await;

    // Signed with another secret.
    let other = Secret::generate();
    let mut request = client.post(&url).body(body);
    for (name, value) in signed(&other, "msg_2", body) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no webhook-signature entry matches")
    );
    polis
        .wait_for("invalid verdict", |o| {
            o.stdout
                .contains("signature: INVALID (no webhook-signature entry matches")
        })
        .await;

    // Not signed at all.
    let response = client.post(&url).body(body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    polis
        .wait_for("missing-header verdict", |o| {
            o.stdout
                .contains("signature: INVALID (missing webhook-id header)")
        })
        .await;
    assert_eq!(polis.output().stdout.matches("answer: 401").count(), 2);
}

#[tokio::test]
async fn accepts_what_the_library_sends() {
    accepts_from_the_library(SECRET.parse().unwrap(), SECRET).await;
}

#[tokio::test]
async fn with_an_ed25519_public_key_accepts_what_the_library_signs_with_its_signing_key() {
    let signing_key = Secret::generate_ed25519();
    let public_key = signing_key.public_key().unwrap().expose();
    accepts_from_the_library(signing_key, &public_key).await;
}

/// A runtime whose subscription signs with `sender` delivers to polis, which holds `receiver`
/// in `WEBHOOK_SECRET`.
async fn accepts_from_the_library(sender: Secret, receiver: &str) {
    let mut polis = Example::start("polis", &["--port", "0"], &[("WEBHOOK_SECRET", receiver)]);
    let url = polis.listening_url().await;
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .allow_private_networks()
        .build()
        .await
        .expect("the runtime starts");
    hooks
        .subscribe(Subscription::new(&url).expect("polis's URL").secret(sender))
        .await
        .expect("subscribed");
    let mut notifications = hooks.notifications();

    hooks.send(&RandomNumber(863)).await.expect("sent");
    let status = tokio::time::timeout(DEADLINE, async {
        loop {
            match notifications.recv().await.expect("a notification") {
                Notification::Delivered { status, .. } => return status,
                Notification::AttemptFailed { status, error, .. } => {
                    panic!("polis refused the library's request: {status:?} {error}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("delivered within the deadline");
    assert_eq!(status, 200);
    let output = polis
        .wait_for("request block", |o| o.stdout.contains("answer:"))
        .await;
    assert!(
        output.stdout.contains("signature: valid"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains(r#""data": 863"#),
        "{}",
        output.stdout
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn with_an_ed25519_public_key_verifies_v1a_and_answers_401_to_anything_else() {
    let signing_key = Secret::generate_ed25519();
    let public_key = signing_key.public_key().unwrap().expose();
    let mut polis = Example::start("polis", &["--port", "0", "--secret", &public_key], &[]);
    let url = polis.listening_url().await;
    polis
        .wait_for("the kind of signature checked", |o| {
            o.stderr.contains("signatures checked: v1a, Ed25519")
        })
        .await;
    let client = client();
    let body = r#"{"id":"msg_1","event":"random_number:generate","data":1}"#;
    let post = |secret: &Secret, id: &str| {
        let mut request = client.post(&url).body(body);
        for (name, value) in signed(secret, id, body) {
            request = request.header(name, value);
        }
        request.send()
    };

    // Signed with the matching signing key: a `v1a` entry, accepted.
    assert!(signing_key.sign("msg_1", 0, b"").starts_with("v1a,"));
    assert_eq!(post(&signing_key, "msg_1").await.unwrap().status(), 200);
    polis
        .wait_for("valid verdict", |o| o.stdout.contains("signature: valid"))
        .await;

    // Another Ed25519 key, and a `whsec_` secret (a `v1` entry the public key cannot check).
    let response = post(&Secret::generate_ed25519(), "msg_2").await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no webhook-signature entry matches")
    );
    let response = post(&SECRET.parse().unwrap(), "msg_3").await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("has no signature of the version the secret verifies")
    );
    let output = polis
        .wait_for("two 401s", |o| o.stdout.matches("answer: 401").count() == 2)
        .await;
    assert_eq!(output.stdout.matches("signature: valid").count(), 1);
}
