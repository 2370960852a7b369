//! The catalog, the portal and the delivery log's happy paths, as one tenant (alice) uses them,
//! on SQLite, delivering to `TestReceiver`s on loopback: event types, the log's filters and
//! pages, a delivery with its payload and attempts, redelivery.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use webhooks::DeliveryId;
use webhooks::testing::{Reply, TestReceiver};

use crate::common::DEADLINE;
use crate::harness::{
    BearAttack, DELIVERY_KEYS, RandomNumber, Server, assert_time, ids, keys, wait_until,
};

/// `GET /event-types`: the catalog, in its order, with descriptions, schemas and examples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_are_the_catalog() {
    let server = Server::sqlite().await;
    let list = server.get("alice", "event-types").await.ok(200).clone();
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "random_number:generate",
            "bear_attack:reported",
            "bear_attack:resolved",
            "audit:logged",
            "legacy:ping"
        ]
    );
    for item in items {
        assert_eq!(
            keys(item),
            BTreeSet::from(["name", "description", "deprecated", "schema", "example"]),
            "{item}"
        );
        assert!(item["schema"].is_object(), "{item}");
    }
    for item in &items[..4] {
        assert_eq!(item["deprecated"], Value::Null);
    }
    // The example is a whole body, as receivers get it; the schema is of its data.
    assert_eq!(items[0]["description"], "A number drawn for a tenant.");
    assert_eq!(
        items[0]["example"]["data"],
        json!({"tenant": "example", "value": 863})
    );
    assert_eq!(items[0]["example"]["event"], "random_number:generate");
    assert_eq!(items[0]["schema"]["type"], "object");
    assert_eq!(items[1]["description"], "A ranger reported an attack.");
    assert_eq!(
        items[1]["example"]["data"],
        json!({"tenant": "example", "county": "Kenai"})
    );
    assert_eq!(items[1]["example"]["event"], "bear_attack:reported");
    assert_eq!(items[2]["example"], Value::Null);
    assert_eq!(items[3]["example"], Value::Null);
    assert_eq!(items[4]["name"], "legacy:ping");
    assert_eq!(items[4]["deprecated"], "use random_number:generate");
    assert_eq!(
        items[4]["description"],
        "Replaced by `random_number:generate`."
    );
}

/// `GET /portal`: the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_is_served() {
    let server = Server::sqlite().await;
    let reply = server.get("alice", "portal").await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert!(reply.content_type().starts_with("text/html"));
    assert!(reply.text.to_ascii_lowercase().contains("<!doctype html"));
}

/// `GET /deliveries`: newest first, filtered by subscription, status, event and time, in pages
/// joined by `next`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_filters_and_pages() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    let sub = server
        .create("alice", json!({"url": receiver.url(), "events": ["*"]}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let idle = server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["audit:logged"]}),
        )
        .await;
    for value in 0..5 {
        server
            .hooks
            .send(&RandomNumber::to("alice", value))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        server
            .hooks
            .send(&BearAttack::reported("alice"))
            .await
            .unwrap();
    }
    receiver.wait_for(7, DEADLINE).await.unwrap();
    let query = |pairs: &[(&str, &str)]| server.query("deliveries", pairs);
    wait_until("all 7 delivered", || async {
        let reply = server
            .get_url("alice", query(&[("status", "delivered")]))
            .await;
        (ids(&reply.json).len() == 7).then_some(())
    })
    .await;

    // Everything, newest first (the store's order), with no next page.
    let all = server.get("alice", "deliveries").await.ok(200).clone();
    assert_eq!(keys(&all), BTreeSet::from(["items", "next"]));
    assert_eq!(all["next"], Value::Null);
    let stored: Vec<String> = server
        .hooks
        .delivery_log(&webhooks::store::DeliveryQuery::new().limit(1000))
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(ids(&all), stored);
    for item in all["items"].as_array().unwrap() {
        assert_eq!(
            keys(item),
            DELIVERY_KEYS.iter().copied().collect::<BTreeSet<_>>(),
            "{item}"
        );
        assert_eq!(item["subscription_id"], sub_id);
        assert_eq!(item["status"], "delivered");
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["next_attempt_at"], Value::Null);
        assert_time(&item["created_at"]);
        assert_time(&item["last_attempt_at"]);
        assert!(item["message_id"].as_str().unwrap().starts_with("msg_"));
    }
    let created: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // Pages of 3, joined by `next`: 3, 3, 1.
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let limit = [("limit", "3")];
        let url = match &next {
            Some(cursor) => query(&[("limit", "3"), ("after", cursor)]),
            None => query(&limit),
        };
        let page = server.get_url("alice", url).await.ok(200).clone();
        sizes.push(ids(&page).len());
        paged.extend(ids(&page));
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pages without end: {sizes:?}");
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(paged, ids(&all));

    // Filters, one at a time and together.
    let count = |pairs: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = server.get_url("alice", query(&pairs)).await;
            let json = reply.ok(200).clone();
            json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["event_type"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let bears = count(vec![("event", "bear_attack:reported".into())]).await;
    assert_eq!(bears, ["bear_attack:reported"; 2]);
    assert!(
        count(vec![("event", "audit:logged".into())])
            .await
            .is_empty()
    );
    assert_eq!(count(vec![("status", "delivered".into())]).await.len(), 7);
    assert_eq!(
        count(vec![("status", "delivered,skipped".into())])
            .await
            .len(),
        7
    );
    assert!(
        count(vec![("status", "pending,failed,exhausted".into())])
            .await
            .is_empty()
    );
    assert_eq!(count(vec![("subscription", sub_id.into())]).await.len(), 7);
    let idle_id = idle["id"].as_str().unwrap().to_owned();
    assert!(count(vec![("subscription", idle_id)]).await.is_empty());
    assert!(
        count(vec![("since", "2100-01-01T00:00:00Z".into())])
            .await
            .is_empty()
    );
    assert!(
        count(vec![("until", "2000-01-01T00:00:00Z".into())])
            .await
            .is_empty()
    );
    assert_eq!(
        count(vec![
            ("since", "2000-01-01T00:00:00Z".into()),
            ("until", "2100-01-01T00:00:00Z".into())
        ])
        .await
        .len(),
        7
    );
    assert_eq!(
        count(vec![
            ("subscription", sub_id.into()),
            ("status", "delivered".into()),
            ("event", "random_number:generate".into()),
        ])
        .await,
        ["random_number:generate"; 5]
    );

    // A filtered log pages too: 2, 2, 1 of the 5 numbers.
    let mut sizes = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut pairs = vec![("limit", "2"), ("event", "random_number:generate")];
        if let Some(cursor) = &next {
            pairs.push(("after", cursor));
        }
        let page = server.get_url("alice", query(&pairs)).await.ok(200).clone();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["event_type"], "random_number:generate");
        }
        sizes.push(ids(&page).len());
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pages without end: {sizes:?}");
    }
    assert_eq!(sizes, [2, 2, 1]);
}

/// `GET /deliveries/{id}` with the payload sent; its attempts with the receiver's response
/// bodies; `redeliver` makes one more attempt, and refuses while the subscription is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_its_attempts_and_redelivery() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    receiver.script([
        Reply::status(500).body(&b"not \xffyet"[..]),
        Reply::status(200).body("thanks"),
        Reply::status(200).body("again, thanks"),
    ]);
    let sub = server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["random_number:*"]}),
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let message = server
        .hooks
        .send(&RandomNumber::to("alice", 7))
        .await
        .unwrap();
    let deliveries = server.hooks.deliveries(message).await.unwrap();
    let id: DeliveryId = deliveries[0].id;
    let path = format!("deliveries/{id}");
    server
        .wait_status("alice", &id.to_string(), "delivered")
        .await;

    let detail = server.get("alice", &path).await.ok(200).clone();
    let mut expected: BTreeSet<&str> = DELIVERY_KEYS.iter().copied().collect();
    expected.insert("payload");
    assert_eq!(keys(&detail), expected);
    assert_eq!(detail["id"], id.to_string());
    assert_eq!(detail["message_id"], message.to_string());
    assert_eq!(detail["subscription_id"], sub_id);
    assert_eq!(detail["event_type"], "random_number:generate");
    assert_eq!(detail["attempts"], 2);

    let attempts = server
        .get("alice", &format!("{path}/attempts"))
        .await
        .ok(200)
        .clone();
    let items = attempts["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{attempts}");
    assert_eq!(items[0]["number"], 1);
    assert_eq!(items[0]["status_code"], 500);
    assert_eq!(items[0]["succeeded"], false);
    assert_eq!(items[0]["error"], "status");
    assert_eq!(items[0]["response_body"], "not \u{fffd}yet", "lossy UTF-8");
    assert_eq!(items[1]["number"], 2);
    assert_eq!(items[1]["status_code"], 200);
    assert_eq!(items[1]["succeeded"], true);
    assert_eq!(items[1]["error"], Value::Null);
    assert_eq!(items[1]["error_message"], Value::Null);
    assert_eq!(items[1]["response_body"], "thanks");
    for item in items {
        assert_eq!(
            keys(item),
            BTreeSet::from([
                "number",
                "at",
                "latency_ms",
                "status_code",
                "succeeded",
                "error",
                "error_message",
                "response_body"
            ]),
            "{item}"
        );
        assert_time(&item["at"]);
        assert!(item["latency_ms"].is_u64(), "{item}");
    }

    // Redeliver: one more attempt, now.
    let reply = server
        .post_empty("alice", &format!("{path}/redeliver"))
        .await;
    let redelivered = reply.ok(202).clone();
    assert_eq!(redelivered["subscription_id"], sub_id);
    assert_eq!(redelivered["message_id"], message.to_string());
    receiver.wait_for(3, DEADLINE).await.unwrap();
    let third = wait_until("a third attempt", || async {
        let reply = server.get("alice", &format!("{path}/attempts")).await;
        let items = reply.json["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 3).then(|| items[2].clone())
    })
    .await;
    assert_eq!(third["succeeded"], true);
    assert_eq!(third["response_body"], "again, thanks");

    // Not while its subscription is disabled.
    server
        .post_empty("alice", &format!("subscriptions/{sub_id}/disable"))
        .await
        .ok(200);
    let before = server.snapshot().await;
    server
        .post_empty("alice", &format!("{path}/redeliver"))
        .await
        .problem(409, "subscription-disabled");
    assert_eq!(server.snapshot().await, before);
    assert_eq!(receiver.count(), 3);

    // The payload: the very body the receiver got (checked last, the rest being independent).
    let sent = receiver.requests();
    assert_eq!(detail["payload"], sent[0].json().unwrap());
    assert_eq!(
        detail["payload"]["data"],
        json!({"tenant": "alice", "value": 7})
    );
}

/// An endpoint that refuses connections: each attempt is recorded with its error and no
/// status, the delivery is exhausted; once the URL is fixed, `recover` requeues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_and_recovery() {
    let server = Server::sqlite().await;
    // A port nothing listens on (bound, then released).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sub = server
        .create(
            "alice",
            json!({"url": format!("http://{closed}/"), "events": ["random_number:*"]}),
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let message = server
        .hooks
        .send(&RandomNumber::to("alice", 1))
        .await
        .unwrap();
    let id = server.hooks.deliveries(message).await.unwrap()[0]
        .id
        .to_string();
    let exhausted = server.wait_status("alice", &id, "exhausted").await;
    assert_eq!(exhausted["attempts"], 4, "the first and 3 retries");
    assert_eq!(exhausted["next_attempt_at"], Value::Null);

    let attempts = server
        .get("alice", &format!("deliveries/{id}/attempts"))
        .await
        .ok(200)
        .clone();
    let items = attempts["items"].as_array().unwrap();
    let numbers: Vec<&Value> = items.iter().map(|a| &a["number"]).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    for item in items {
        assert_eq!(item["status_code"], Value::Null, "{item}");
        assert_eq!(item["succeeded"], false, "{item}");
        assert_eq!(item["error"], "connect", "{item}");
        assert!(item["error_message"].is_string(), "{item}");
        assert_eq!(item["response_body"], "", "{item}");
    }
    let listed = server
        .get_url(
            "alice",
            server.query("deliveries", &[("status", "exhausted")]),
        )
        .await;
    assert_eq!(ids(listed.ok(200)), [id.as_str()]);

    // Fixed: the URL now reaches a receiver; recover requeues the exhausted delivery.
    let receiver = TestReceiver::start().await.unwrap();
    server
        .patch(
            "alice",
            &format!("subscriptions/{sub_id}"),
            json!({"url": receiver.url()}),
        )
        .await
        .ok(200);
    let reply = server
        .post(
            "alice",
            &format!("subscriptions/{sub_id}/recover"),
            json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(reply.ok(202), &json!({"requeued": 1}));
    receiver.wait_for(1, DEADLINE).await.unwrap();
    let delivered = server.wait_status("alice", &id, "delivered").await;
    assert_eq!(delivered["attempts"], 5);
}

/// `redeliver` of a delivery in flight (its attempt under way) is 409 `conflict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivering_a_delivery_in_flight_is_a_conflict() {
    let server = Server::sqlite().await;
    let receiver = TestReceiver::start().await.unwrap();
    // Holds the attempt for longer than the test lasts.
    receiver.reply(Reply::status(200).delay(DEADLINE * 3));
    server
        .create(
            "alice",
            json!({"url": receiver.url(), "events": ["random_number:*"]}),
        )
        .await;
    let message = server
        .hooks
        .send(&RandomNumber::to("alice", 1))
        .await
        .unwrap();
    let id = server.hooks.deliveries(message).await.unwrap()[0]
        .id
        .to_string();
    receiver.wait_for(1, DEADLINE).await.unwrap();
    server.wait_status("alice", &id, "in_flight").await;
    let before = server.snapshot().await;
    server
        .post_empty("alice", &format!("deliveries/{id}/redeliver"))
        .await
        .problem(409, "conflict");
    assert_eq!(server.snapshot().await, before);
    assert_eq!(receiver.count(), 1);
}
