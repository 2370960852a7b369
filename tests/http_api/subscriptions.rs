//! The subscription endpoints' happy paths, as one tenant (alice) uses them, on SQLite,
//! delivering to `TestReceiver`s on loopback: create, read, list, patch, enable, disable,
//! delete, rotate-secret, test, recover.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use webhooks::testing::TestReceiver;
use webhooks::{MessageId, Secret, Verifier};

use crate::common::DEADLINE;
use crate::harness::{
    DELIVERY_KEYS, RandomNumber, SUBSCRIPTION_KEYS, Server, assert_no_secret, assert_time, ids,
    keys, normalized, sub_id, wait_until, without_secret,
};

/// Create → 201 with the secret and a `Location`; read and list never show it; patch; disable
/// and enable; delete → 204, then 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_read_listed_changed_and_deleted() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();

    let reply = server
        .post(
            "alice",
            "subscriptions",
            json!({"url": receiver.url(), "events": ["random_number:*"],
                   "description": "numbers", "rate_limit": 10}),
        )
        .await;
    let created = reply.ok(201).clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sub_"), "{id}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let mut expected_keys: BTreeSet<&str> = SUBSCRIPTION_KEYS.iter().copied().collect();
    expected_keys.insert("secret");
    assert_eq!(keys(&created), expected_keys);
    assert_eq!(created["url"], normalized(&receiver.url()));
    assert_eq!(created["events"], json!(["random_number:*"]));
    assert_eq!(created["description"], "numbers");
    assert_eq!(created["labels"], json!({"tenant": "alice"}));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["disabled"], Value::Null);
    assert_eq!(created["rate_limit"], 10);
    assert_time(&created["created_at"]);

    // As stored: the tenant's label, the secret shown once.
    let stored = server.hooks.subscription(sub_id(&created)).await.unwrap();
    assert_eq!(stored.labels().get("tenant"), Some("alice"));
    assert_eq!(stored.labels().len(), 1);
    assert_eq!(stored.signing_secret().expose(), secret);
    assert_eq!(stored.description_text(), Some("numbers"));
    assert_eq!(stored.rate_limit_per_second(), Some(10));
    assert_eq!(stored.event_patterns(), ["random_number:*"]);

    // `Location` names the subscription, resolved against the request's URL.
    let location = reply.header("location").expect("a Location header");
    let at = server.url("subscriptions").join(location).unwrap();
    assert!(
        at.path().ends_with(&format!("/api/subscriptions/{id}")),
        "Location {location} resolves to {at}"
    );
    let read = server.get_url("alice", at).await;
    let read = read.ok(200);
    assert_no_secret(read);
    assert_eq!(read, &without_secret(&created));

    // A second one; the list is oldest first, without secrets.
    let second = server
        .create(
            "alice",
            json!({"url": receiver.url_with_path("/bears"), "events": ["bear_attack:reported"]}),
        )
        .await;
    assert_eq!(second["description"], Value::Null);
    assert_eq!(second["rate_limit"], Value::Null);
    assert_ne!(second["secret"], created["secret"]);
    let list = server.get("alice", "subscriptions").await.ok(200).clone();
    assert_eq!(keys(&list), BTreeSet::from(["items"]));
    assert_no_secret(&list);
    assert_eq!(
        list["items"],
        json!([without_secret(&created), without_secret(&second)])
    );

    // PATCH: every field; `null` clears the description and the rate limit.
    let path = format!("subscriptions/{id}");
    let other = receiver.url_with_path("/other");
    let patched = server
        .patch(
            "alice",
            &path,
            json!({"url": other, "events": ["*"], "description": null, "rate_limit": null}),
        )
        .await;
    let patched = patched.ok(200).clone();
    assert_no_secret(&patched);
    assert_eq!(patched["id"], id);
    assert_eq!(patched["url"], normalized(&other));
    assert_eq!(patched["events"], json!(["*"]));
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["rate_limit"], Value::Null);
    assert_eq!(patched["labels"], json!({"tenant": "alice"}));
    assert_eq!(patched["created_at"], created["created_at"]);
    let stored = server.hooks.subscription(sub_id(&created)).await.unwrap();
    assert_eq!(stored.url().as_str(), normalized(&other));
    assert_eq!(stored.event_patterns(), ["*"]);
    assert_eq!(stored.description_text(), None);
    assert_eq!(stored.rate_limit_per_second(), None);
    assert_eq!(stored.labels().get("tenant"), Some("alice"));
    assert_eq!(stored.signing_secret().expose(), secret, "not rotated");

    // A partial PATCH changes only what it names.
    let partial = server
        .patch(
            "alice",
            &path,
            json!({"description": "again", "rate_limit": 3}),
        )
        .await;
    let partial = partial.ok(200);
    assert_eq!(partial["description"], "again");
    assert_eq!(partial["rate_limit"], 3);
    assert_eq!(partial["events"], json!(["*"]));
    assert_eq!(partial["url"], normalized(&other));
    assert_eq!(server.get("alice", &path).await.ok(200), partial);

    // Disable, enable.
    let disabled = server.post_empty("alice", &format!("{path}/disable")).await;
    let disabled = disabled.ok(200).clone();
    assert_no_secret(&disabled);
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["disabled"]["reason"], "manual");
    assert_time(&disabled["disabled"]["at"]);
    assert!(
        !server
            .hooks
            .subscription(sub_id(&created))
            .await
            .unwrap()
            .is_enabled()
    );
    assert_eq!(server.get("alice", &path).await.ok(200), &disabled);
    let enabled = server.post_empty("alice", &format!("{path}/enable")).await;
    let enabled = enabled.ok(200).clone();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled"], Value::Null);
    assert!(
        server
            .hooks
            .subscription(sub_id(&created))
            .await
            .unwrap()
            .is_enabled()
    );

    // Delete: 204 with no body, then the same 404 as any unknown id.
    let deleted = server.delete("alice", &path).await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text);
    assert!(deleted.text.is_empty(), "{}", deleted.text);
    server.get("alice", &path).await.problem(404, "not-found");
    server
        .delete("alice", &path)
        .await
        .problem(404, "not-found");
    let error = server
        .hooks
        .subscription(sub_id(&created))
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
    let list = server.get("alice", "subscriptions").await.ok(200).clone();
    assert_eq!(ids(&list), [second["id"].as_str().unwrap()]);
}

/// `rotate-secret` (without a body, or `{}`) shows a new secret once, and later deliveries are
/// signed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_later_deliveries() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    let created = server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["random_number:*"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let first: Secret = created["secret"].as_str().unwrap().parse().unwrap();

    server
        .hooks
        .send(&RandomNumber::to("alice", 1))
        .await
        .unwrap();
    let requests = receiver.wait_for(1, DEADLINE).await.unwrap();
    Verifier::new(first.clone())
        .verify_headers(&requests[0].headers, &requests[0].body)
        .unwrap();

    let path = format!("subscriptions/{id}/rotate-secret");
    let rotated = server.post_empty("alice", &path).await.ok(200).clone();
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("whsec_"), "{second}");
    assert_ne!(second, first.expose());
    assert_eq!(rotated["id"], id);
    let read = server.get("alice", &format!("subscriptions/{id}")).await;
    assert_no_secret(read.ok(200));
    assert_eq!(read.json, without_secret(&rotated));

    // Again, with an empty object for a body.
    let again = server.post("alice", &path, json!({})).await.ok(200).clone();
    let third = again["secret"].as_str().unwrap().to_owned();
    assert!(third.starts_with("whsec_"), "{third}");
    assert_ne!(third, second);
    assert_ne!(third, first.expose());
    let stored = server.hooks.subscription(sub_id(&created)).await.unwrap();
    assert_eq!(stored.signing_secret().expose(), third);

    server
        .hooks
        .send(&RandomNumber::to("alice", 2))
        .await
        .unwrap();
    let requests = receiver.wait_for(2, DEADLINE).await.unwrap();
    let later = requests
        .iter()
        .find(|r| r.json().unwrap()["data"]["value"] == 2)
        .unwrap();
    let newest: Secret = third.parse().unwrap();
    Verifier::new(newest)
        .verify_headers(&later.headers, &later.body)
        .unwrap();
}

/// `test` sends the catalog's example to that subscription alone: another subscription of the
/// same tenant matching the same event gets nothing. `event_type` picks another event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_goes_to_that_subscription_alone() {
    let server = Server::sqlite().await;
    let (one, two) = (
        TestReceiver::start().await.unwrap(),
        TestReceiver::start().await.unwrap(),
    );
    let a = server
        .create("alice", json!({"url": one.url(), "events": ["*"]}))
        .await;
    let b = server
        .create(
            "alice",
            json!({"url": two.url(), "events": ["random_number:*", "bear_attack:*"]}),
        )
        .await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    // The default event: the first in the catalog with an example that `a` matches.
    let reply = server
        .post_empty("alice", &format!("subscriptions/{a_id}/test"))
        .await;
    let delivery = reply.ok(202).clone();
    assert_eq!(
        keys(&delivery),
        DELIVERY_KEYS.iter().copied().collect::<BTreeSet<_>>()
    );
    assert!(delivery["id"].as_str().unwrap().starts_with("dlv_"));
    assert_eq!(delivery["subscription_id"], a_id);
    assert_eq!(delivery["event_type"], "random_number:generate");
    let message: MessageId = delivery["message_id"].as_str().unwrap().parse().unwrap();
    let deliveries = server.hooks.deliveries(message).await.unwrap();
    assert_eq!(deliveries.len(), 1, "to `a` alone: {deliveries:?}");
    assert_eq!(deliveries[0].subscription_id, sub_id(&a));
    let got = one.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(got[0].webhook_id(), Some(message.to_string().as_str()));
    let body = got[0].json().unwrap();
    assert_eq!(body["data"], json!({"tenant": "example", "value": 863}));
    let secret: Secret = a["secret"].as_str().unwrap().parse().unwrap();
    Verifier::new(secret)
        .verify_headers(&got[0].headers, &got[0].body)
        .unwrap();
    let delivered = server
        .wait_status("alice", delivery["id"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(delivered["attempts"], 1);
    assert_eq!(two.count(), 0);

    // Another event, asked for by name, to `b` alone.
    let reply = server
        .post(
            "alice",
            &format!("subscriptions/{b_id}/test"),
            json!({"event_type": "bear_attack:reported"}),
        )
        .await;
    let delivery = reply.ok(202).clone();
    assert_eq!(delivery["subscription_id"], b_id);
    assert_eq!(delivery["event_type"], "bear_attack:reported");
    let message: MessageId = delivery["message_id"].as_str().unwrap().parse().unwrap();
    let deliveries = server.hooks.deliveries(message).await.unwrap();
    assert_eq!(deliveries.len(), 1, "to `b` alone: {deliveries:?}");
    let got = two.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(
        got[0].json().unwrap()["data"],
        json!({"tenant": "example", "county": "Kenai"})
    );
    // An empty object is no body at all.
    let reply = server
        .post("alice", &format!("subscriptions/{b_id}/test"), json!({}))
        .await;
    assert_eq!(reply.ok(202)["subscription_id"], b_id);
    two.wait_for(2, DEADLINE).await.unwrap();
    assert_eq!(one.count(), 1);

    // The default is the first event with an example that the subscription matches.
    let three = TestReceiver::start().await.unwrap();
    let c = server
        .create(
            "alice",
            json!({"url": three.url(), "events": ["audit:*", "bear_attack:*"]}),
        )
        .await;
    let c_id = c["id"].as_str().unwrap();
    let reply = server
        .post_empty("alice", &format!("subscriptions/{c_id}/test"))
        .await;
    assert_eq!(reply.ok(202)["event_type"], "bear_attack:reported");
    three.wait_for(1, DEADLINE).await.unwrap();
}

/// `test` of a subscription to events without an example is 422 `no-example`; of a disabled
/// one, 409 `subscription-disabled`; after the runtime shut down, 503 `unavailable`. Nothing is
/// sent or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_that_cannot_be_sent() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    let quiet = server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["audit:logged", "bear_attack:resolved"]}),
        )
        .await;
    let quiet_path = format!("subscriptions/{}/test", quiet["id"].as_str().unwrap());
    let any = server
        .create("alice", json!({"url": receiver.url(), "events": ["*"]}))
        .await;
    let any_id = any["id"].as_str().unwrap();
    let any_path = format!("subscriptions/{any_id}/test");
    let before = server.snapshot().await;

    server
        .post_empty("alice", &quiet_path)
        .await
        .problem(422, "no-example");
    // An event without an example, asked for by name.
    server
        .post("alice", &any_path, json!({"event_type": "audit:logged"}))
        .await
        .problem(422, "no-example");
    server
        .post_empty("alice", &format!("subscriptions/{any_id}/disable"))
        .await
        .ok(200);
    let disabled = server.snapshot().await;
    server
        .post_empty("alice", &any_path)
        .await
        .problem(409, "subscription-disabled");
    assert_eq!(server.snapshot().await, disabled);
    server
        .post_empty("alice", &format!("subscriptions/{any_id}/enable"))
        .await
        .ok(200);
    assert_eq!(server.snapshot().await, before);

    server.hooks.shutdown().await;
    server
        .post_empty("alice", &any_path)
        .await
        .problem(503, "unavailable");
    assert_eq!(receiver.count(), 0);
}

/// `recover` enables the subscription again and requeues what it skipped in `[since, until)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_requeues_what_a_disabled_subscription_skipped() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    let created = server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["random_number:*"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    server
        .post_empty("alice", &format!("subscriptions/{id}/disable"))
        .await
        .ok(200);
    for value in 0..2 {
        server
            .hooks
            .send(&RandomNumber::to("alice", value))
            .await
            .unwrap();
    }
    let skipped = server
        .get_url(
            "alice",
            server.query("deliveries", &[("status", "skipped")]),
        )
        .await;
    assert_eq!(ids(skipped.ok(200)).len(), 2);

    let path = format!("subscriptions/{id}/recover");
    let none = server
        .post(
            "alice",
            &path,
            json!({"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}),
        )
        .await;
    assert_eq!(none.ok(202), &json!({"requeued": 0}));
    let reply = server
        .post("alice", &path, json!({"since": "2000-01-01T00:00:00Z"}))
        .await;
    assert_eq!(reply.ok(202), &json!({"requeued": 2}));
    receiver.wait_for(2, DEADLINE).await.unwrap();
    let read = server.get("alice", &format!("subscriptions/{id}")).await;
    assert_eq!(read.ok(200)["enabled"], true);
    wait_until("both delivered", || async {
        let reply = server
            .get_url(
                "alice",
                server.query("deliveries", &[("status", "delivered")]),
            )
            .await;
        (ids(&reply.json).len() == 2).then_some(())
    })
    .await;
}
