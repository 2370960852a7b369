//! `random_number_texter` as a user runs it: a child process on a free port, texting through an
//! SMS gateway played by a `TestReceiver`, requests over real HTTP.

mod child;

use std::time::{SystemTime, UNIX_EPOCH};

use child::{DEADLINE, Example, client};
use serde::Serialize;
use webhooks::store::MemoryStore;
use webhooks::testing::TestReceiver;
use webhooks::{Notification, Secret, Subscription, WebhookEvent, Webhooks};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

/// The texter with `WEBHOOK_SECRET` set, texting to `gateway`; and its URL.
async fn start(gateway: &TestReceiver) -> (Example, String) {
    let mut texter = Example::start(
        "random_number_texter",
        &["--port", "0"],
        &[
            ("WEBHOOK_SECRET", SECRET),
            ("SMS_GATEWAY_URL", &gateway.url_with_path("/sms")),
        ],
    );
    let url = texter.listening_url().await;
    (texter, url)
}

/// POSTs `body` signed with `secret` as message `id`; returns the status and the answer.
async fn post(url: &str, secret: &Secret, id: &str, body: &str) -> (u16, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let timestamp = i64::try_from(now).expect("a timestamp in range");
    let response = client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            secret.sign(id, timestamp, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .expect("the texter answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("the answer's body"))
}

fn event(id: &str, event: &str, data: &str) -> String {
    format!(r#"{{"id":"{id}","event":"{event}","data":{data}}}"#)
}

#[tokio::test]
async fn texts_a_number_once_and_ignores_everything_else() {
    let gateway = TestReceiver::start().await.unwrap();
    let (_texter, url) = start(&gateway).await;
    let secret: Secret = SECRET.parse().unwrap();

    // Acted on: 201, and the gateway got the text.
    let body = event("msg_a", "random_number:generate", "863");
    let (status, answer) = post(&url, &secret, "msg_a", &body).await;
    assert_eq!((status, answer.as_str()), (201, "texted 863\n"));
    let sms = gateway.wait_for(1, DEADLINE).await.unwrap().remove(0);
    assert_eq!(sms.path, "/sms");
    assert_eq!(sms.json().unwrap()["number"], 863);
    assert_eq!(sms.json().unwrap()["text"], "Your random number is 863");

    // The same webhook-id again (a retry): 202, not texted twice.
    let (status, answer) = post(&url, &secret, "msg_a", &body).await;
    assert_eq!(status, 202, "{answer}");
    assert!(answer.contains("already handled"), "{answer}");

    // Ignored: another event, no data, null data, not JSON.
    let other = event("msg_b", "bear_attack:reported", r#"{"id":1}"#);
    let no_data = r#"{"id":"msg_c","event":"random_number:generate"}"#;
    let null_data = event("msg_d", "random_number:generate", "null");
    for (id, body, why) in [
        (
            "msg_b",
            other.as_str(),
            "not a random_number:generate event",
        ),
        ("msg_c", no_data, "no data"),
        ("msg_d", null_data.as_str(), "no data"),
        ("msg_e", "863, not JSON", "not JSON"),
    ] {
        let (status, answer) = post(&url, &secret, id, body).await;
        assert_eq!(status, 202, "{body}: {answer}");
        assert!(answer.contains(why), "{body}: {answer}");
    }

    // A new id is acted on: the repeat check is per message.
    let body = event("msg_f", "random_number:generate", "7");
    assert_eq!(post(&url, &secret, "msg_f", &body).await.0, 201);
    let texts = gateway.wait_for(2, DEADLINE).await.unwrap();
    assert_eq!(texts.len(), 2, "one text per message, none for the rest");
    assert_eq!(texts[1].json().unwrap()["number"], 7);
}

#[tokio::test]
async fn answers_401_to_a_bad_or_missing_signature() {
    let gateway = TestReceiver::start().await.unwrap();
    let (_texter, url) = start(&gateway).await;
    let body = event("msg_x", "random_number:generate", "1");

    let (status, answer) = post(&url, &Secret::generate(), "msg_x", &body).await;
    assert_eq!(status, 401, "{answer}");

    let response = client().post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 401);

    // Rejected requests were not remembered: the genuine one is acted on.
    let secret: Secret = SECRET.parse().unwrap();
    assert_eq!(post(&url, &secret, "msg_x", &body).await.0, 201);
    assert_eq!(gateway.wait_for(1, DEADLINE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn texts_what_the_library_sends_and_prints_without_a_gateway() {
    let mut texter = Example::start(
        "random_number_texter",
        &["--port", "0"],
        &[("WEBHOOK_SECRET", SECRET)],
    );
    let url = texter.listening_url().await;
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .allow_private_networks()
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(
            Subscription::new(&url)
                .unwrap()
                .secret(SECRET.parse().unwrap()),
        )
        .await
        .unwrap();
    let mut notifications = hooks.notifications();

    hooks.send(&RandomNumber(42)).await.unwrap();
    let status = tokio::time::timeout(DEADLINE, async {
        loop {
            match notifications.recv().await.unwrap() {
                Notification::Delivered { status, .. } => return status,
                Notification::AttemptFailed { status, error, .. } => {
                    panic!("the texter refused the library's request: {status:?} {error}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("delivered within the deadline");
    assert_eq!(status, 201);
    texter
        .wait_for("the text on the console", |o| {
            o.stdout.contains("text: your random number is 42\n")
        })
        .await;
    hooks.shutdown().await;
    assert_eq!(texter.output().stdout.matches("text:").count(), 1);
}
