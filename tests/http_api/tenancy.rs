//! Tenant isolation on every endpoint, on SQLite and on PostgreSQL (with
//! `WEBHOOKS_TEST_POSTGRES_URL`): another tenant's ids answer exactly as unknown ids do, lists
//! hold only the tenant's own, a tenant cannot set labels it does not own, and no tenant is 401.

use reqwest::Method;
use serde_json::{Value, json};
use webhooks::testing::TestReceiver;
use webhooks::{DeliveryId, MessageId, Subscription, SubscriptionId};

use crate::common::DEADLINE;
use crate::harness::{Backend, RandomNumber, Server, ids, view, wait_until, without_id};

/// Each test once per store.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let server = super::Server::on(super::Backend::Sqlite, stringify!($test))
                        .await
                        .unwrap();
                    super::$test(server).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(server) =
                        super::Server::on(super::Backend::Postgres, stringify!($test)).await
                    else {
                        return;
                    };
                    super::$test(server).await;
                }
            )*
        }
    };
}

on_every_store!(
    another_tenants_ids_are_unknown_ids,
    lists_hold_only_the_tenants_own,
    labels_not_owned_are_refused,
    no_tenant_is_unauthorized,
    a_test_event_and_a_redelivery_reach_no_one_else,
    a_tenant_of_two_labels_owns_what_carries_both,
    pages_hold_only_the_tenants_own,
);

/// A store failure is 500 `internal`, saying nothing of the store; the server goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_is_internal_and_says_nothing_of_it() {
    let Some(server) = Server::on(Backend::Postgres, "a_store_failure_is_internal").await else {
        return;
    };
    server
        .create(
            "alice",
            json!({"url": "http://127.0.0.1:9/", "events": ["*"]}),
        )
        .await;
    assert!(server.break_store().await);
    for path in ["deliveries", "subscriptions"] {
        let reply = server.get("alice", path).await;
        let problem = reply.problem(500, "internal");
        let text = problem.to_string().to_lowercase();
        for word in [
            "schema",
            "relation",
            "sql",
            "postgres",
            "http_api_",
            "does not exist",
        ] {
            assert!(
                !text.contains(word),
                "{path}: the problem says {word:?}: {text}"
            );
        }
    }
    server.get("alice", "event-types").await.ok(200);
}

/// Alice's subscription with one delivered message, and the application's own label-less
/// subscription, which gets alice's messages too.
struct World {
    server: Server,
    alice: TestReceiver,
    internal: TestReceiver,
    alice_sub: String,
    alice_delivery: String,
    internal_sub: SubscriptionId,
    internal_delivery: DeliveryId,
}

async fn world(server: Server) -> World {
    let alice = TestReceiver::start().await.unwrap();
    let internal = TestReceiver::start().await.unwrap();
    let created = server
        .create("alice", json!({"url": alice.url(), "events": ["*"]}))
        .await;
    let alice_sub = created["id"].as_str().unwrap().to_owned();
    let internal_sub = server
        .hooks
        .subscribe(Subscription::new(internal.url()).unwrap())
        .await
        .unwrap()
        .id();
    let message = server
        .hooks
        .send(&RandomNumber::to("alice", 1))
        .await
        .unwrap();
    let deliveries = server.hooks.deliveries(message).await.unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let mine = |d: &&webhooks::store::Delivery| d.subscription_id.to_string() == alice_sub;
    let alice_delivery = deliveries.iter().find(mine).unwrap().id;
    let internal_delivery = deliveries.iter().find(|d| !mine(d)).unwrap().id;
    server.wait_stored(alice_delivery, "delivered").await;
    server.wait_stored(internal_delivery, "delivered").await;
    World {
        server,
        alice,
        internal,
        alice_sub,
        alice_delivery: alice_delivery.to_string(),
        internal_sub,
        internal_delivery,
    }
}

/// A request that names an id: method, path with `{id}`, body.
type Call = (Method, &'static str, Option<Value>);

fn subscription_calls() -> Vec<Call> {
    vec![
        (Method::GET, "subscriptions/{id}", None),
        (
            Method::PATCH,
            "subscriptions/{id}",
            Some(json!({"description": "bob was here"})),
        ),
        (Method::DELETE, "subscriptions/{id}", None),
        (Method::POST, "subscriptions/{id}/enable", None),
        (Method::POST, "subscriptions/{id}/disable", None),
        (Method::POST, "subscriptions/{id}/rotate-secret", None),
        (Method::POST, "subscriptions/{id}/test", None),
        (
            Method::POST,
            "subscriptions/{id}/recover",
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        ),
    ]
}

fn delivery_calls() -> Vec<Call> {
    vec![
        (Method::GET, "deliveries/{id}", None),
        (Method::GET, "deliveries/{id}/attempts", None),
        (Method::POST, "deliveries/{id}/redeliver", None),
    ]
}

/// Asserts that `tenant` gets for `id` the very 404 it gets for `unknown`, apart from the id.
async fn assert_hidden(server: &Server, tenant: &str, call: &Call, id: &str, unknown: &str) {
    let (method, path, body) = call;
    let body = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
    let theirs = server
        .send(
            method.clone(),
            server.url(&path.replace("{id}", id)),
            Some(tenant),
            body.clone(),
        )
        .await;
    let missing = server
        .send(
            method.clone(),
            server.url(&path.replace("{id}", unknown)),
            Some(tenant),
            body,
        )
        .await;
    missing.problem(404, "not-found");
    let json = theirs.problem(404, "not-found");
    assert_eq!(
        without_id(json, id),
        without_id(&missing.json, unknown),
        "{method} {path} as {tenant}: another tenant's id differs from an unknown one"
    );
    assert_eq!(theirs.content_type(), missing.content_type());
}

/// Bob reading, changing, deleting, enabling, disabling, rotating, testing and recovering
/// alice's subscription, or reading and redelivering her deliveries, gets what an unknown id
/// gets; so does alice for the application's own subscription and its deliveries. Nothing
/// changes, nothing is sent.
async fn another_tenants_ids_are_unknown_ids(server: Server) {
    let world = world(server).await;
    let server = &world.server;
    let before = server.snapshot().await;
    let unknown_sub = SubscriptionId::new().to_string();
    let unknown_delivery = DeliveryId::new().to_string();

    for call in subscription_calls() {
        assert_hidden(server, "bob", &call, &world.alice_sub, &unknown_sub).await;
        let internal = world.internal_sub.to_string();
        assert_hidden(server, "alice", &call, &internal, &unknown_sub).await;
    }
    for call in delivery_calls() {
        assert_hidden(
            server,
            "bob",
            &call,
            &world.alice_delivery,
            &unknown_delivery,
        )
        .await;
        let internal = world.internal_delivery.to_string();
        assert_hidden(server, "alice", &call, &internal, &unknown_delivery).await;
    }

    assert_eq!(server.snapshot().await, before, "something changed");
    // Alice's subscription is still hers and as it was.
    let mine = server
        .get("alice", &format!("subscriptions/{}", world.alice_sub))
        .await;
    assert_eq!(mine.ok(200)["description"], Value::Null);
    assert_eq!(mine.json["enabled"], true);
    assert_eq!(world.alice.count(), 1);
    assert_eq!(world.internal.count(), 1);
}

/// Bob's lists hold only bob's subscriptions and deliveries; alice's hold neither bob's nor the
/// application's label-less subscription and its deliveries of her messages. Filtering by
/// another tenant's subscription gives what an unknown subscription gives: an empty list (or
/// the 404 of an unknown id).
async fn lists_hold_only_the_tenants_own(server: Server) {
    let world = world(server).await;
    let server = &world.server;
    let bob_receiver = TestReceiver::start().await.unwrap();
    let bob = server
        .create("bob", json!({"url": bob_receiver.url(), "events": ["*"]}))
        .await;
    let bob_sub = bob["id"].as_str().unwrap().to_owned();
    server
        .hooks
        .send(&RandomNumber::to("bob", 2))
        .await
        .unwrap();
    bob_receiver.wait_for(1, DEADLINE).await.unwrap();
    wait_until("bob's delivery recorded", || async {
        let reply = server.get("bob", "deliveries").await;
        (reply.json["items"][0]["status"] == "delivered").then_some(())
    })
    .await;

    let subs = server.get("bob", "subscriptions").await;
    assert_eq!(ids(subs.ok(200)), [bob_sub.as_str()]);
    let subs = server.get("alice", "subscriptions").await;
    assert_eq!(ids(subs.ok(200)), [world.alice_sub.as_str()]);
    let carol = server.get("carol", "subscriptions").await;
    assert_eq!(carol.ok(200)["items"], json!([]));

    // Deliveries: each tenant's own only, whatever the filter.
    let by = |tenant: &'static str, pairs: &[(&str, &str)]| {
        let url = server.query("deliveries", pairs);
        async move {
            let reply = server.get_url(tenant, url).await;
            reply.ok(200).clone()
        }
    };
    for pairs in [
        &[][..],
        &[("status", "delivered")][..],
        &[("event", "random_number:generate")][..],
        &[("limit", "1000")][..],
        &[("since", "2000-01-01T00:00:00Z")][..],
    ] {
        let bobs = by("bob", pairs).await;
        assert_eq!(ids(&bobs).len(), 1, "{pairs:?}: {bobs}");
        assert_eq!(bobs["items"][0]["subscription_id"], bob_sub);
        let alices = by("alice", pairs).await;
        assert_eq!(ids(&alices), [world.alice_delivery.as_str()], "{pairs:?}");
        assert_eq!(by("carol", pairs).await["items"], json!([]));
    }

    // Filtered by another tenant's subscription: as an unknown one.
    let internal = world.internal_sub.to_string();
    let unknown = SubscriptionId::new().to_string();
    for (tenant, theirs) in [("bob", &world.alice_sub), ("alice", &internal)] {
        let got = server
            .get_url(
                tenant,
                server.query("deliveries", &[("subscription", theirs)]),
            )
            .await;
        let missing = server
            .get_url(
                tenant,
                server.query("deliveries", &[("subscription", &unknown)]),
            )
            .await;
        match got.status.as_u16() {
            200 => assert_eq!(got.json, json!({"items": [], "next": null})),
            404 => {
                got.problem(404, "not-found");
            }
            other => panic!("{tenant} filtering by {theirs}: {other} {}", got.text),
        }
        assert_eq!(got.status, missing.status, "{}", missing.text);
        assert_eq!(
            without_id(&got.json, theirs),
            without_id(&missing.json, &unknown)
        );
    }
}

/// Labels in a body must be the tenant's own: any other (another value of its label, or
/// another label) is 403 `labels-not-owned` on POST and PATCH, and nothing is stored. Its own
/// label is accepted, and a PATCH never takes the tenant's label away.
async fn labels_not_owned_are_refused(server: Server) {
    let receiver = TestReceiver::start().await.unwrap();
    let url = receiver.url();
    let mine = server
        .create("alice", json!({"url": url, "events": ["*"]}))
        .await;
    let path = format!("subscriptions/{}", mine["id"].as_str().unwrap());
    let before = server.snapshot().await;

    for labels in [
        json!({"tenant": "bob"}),
        json!({"region": "eu"}),
        json!({"tenant": "alice", "region": "eu"}),
        json!({"tenant": "alice "}),
    ] {
        let body = json!({"url": url, "events": ["*"], "labels": labels});
        server
            .post("alice", "subscriptions", body)
            .await
            .problem(403, "labels-not-owned");
        server
            .patch("alice", &path, json!({"labels": labels}))
            .await
            .problem(403, "labels-not-owned");
        // With other changes in the same body, none of them is made.
        server
            .patch(
                "alice",
                &path,
                json!({"labels": labels, "description": "changed"}),
            )
            .await
            .problem(403, "labels-not-owned");
        assert_eq!(server.snapshot().await, before, "stored with {labels}");
    }

    // Its own label, given or not, is what it gets.
    let own = server
        .create(
            "alice",
            json!({"url": url, "events": ["*"], "labels": {"tenant": "alice"}}),
        )
        .await;
    assert_eq!(own["labels"], json!({"tenant": "alice"}));
    let patched = server
        .patch("alice", &path, json!({"labels": {"tenant": "alice"}}))
        .await;
    assert_eq!(patched.ok(200)["labels"], json!({"tenant": "alice"}));
    // Labels `{}` may be refused or ignored, but the subscription stays alice's.
    let emptied = server.patch("alice", &path, json!({"labels": {}})).await;
    assert!(
        emptied.status.is_success() || emptied.status.is_client_error(),
        "{}",
        emptied.text
    );
    let stored = server
        .hooks
        .subscription(mine["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored.labels().get("tenant"),
        Some("alice"),
        "{}",
        view(&stored)
    );
    let read = server.get("alice", &path).await;
    assert_eq!(read.ok(200)["labels"]["tenant"], "alice");
    server.get("bob", &path).await.problem(404, "not-found");
}

/// Without a tenant (the closure returned `None`), every endpoint is 401 `unauthorized`, and
/// nothing changes.
async fn no_tenant_is_unauthorized(server: Server) {
    let world = world(server).await;
    let server = &world.server;
    let before = server.snapshot().await;
    let mut calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "subscriptions".into(), None),
        (
            Method::POST,
            "subscriptions".into(),
            Some(json!({"url": world.alice.url(), "events": ["*"]})),
        ),
        (Method::GET, "event-types".into(), None),
        (Method::GET, "deliveries".into(), None),
    ];
    for (method, path, body) in subscription_calls() {
        calls.push((method, path.replace("{id}", &world.alice_sub), body));
    }
    for (method, path, body) in delivery_calls() {
        calls.push((method, path.replace("{id}", &world.alice_delivery), body));
    }
    for (method, path, body) in calls {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        for tenant in [None, Some("")] {
            let reply = server
                .send(method.clone(), server.url(&path), tenant, body.clone())
                .await;
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{method} {path} with {tenant:?}: {}",
                reply.text
            );
            reply.problem(401, "unauthorized");
        }
    }
    assert_eq!(server.snapshot().await, before);
    assert_eq!(world.alice.count(), 1);
}

/// Alice's test event goes to her subscription alone: not to the application's label-less
/// subscription, nor to a tenant whose label the catalog's example happens to carry
/// (`tenant=example`). Her redelivery makes one attempt of her delivery and of no other.
async fn a_test_event_and_a_redelivery_reach_no_one_else(server: Server) {
    let world = world(server).await;
    let server = &world.server;
    let example = TestReceiver::start().await.unwrap();
    server
        .create("example", json!({"url": example.url(), "events": ["*"]}))
        .await;
    let bob = TestReceiver::start().await.unwrap();
    server
        .create("bob", json!({"url": bob.url(), "events": ["*"]}))
        .await;

    let reply = server
        .post_empty("alice", &format!("subscriptions/{}/test", world.alice_sub))
        .await;
    let delivery = reply.ok(202).clone();
    let message: MessageId = delivery["message_id"].as_str().unwrap().parse().unwrap();
    let deliveries = server.hooks.deliveries(message).await.unwrap();
    let to: Vec<String> = deliveries
        .iter()
        .map(|d| d.subscription_id.to_string())
        .collect();
    assert_eq!(
        to,
        [world.alice_sub.as_str()],
        "the test event went to others"
    );
    world.alice.wait_for(2, DEADLINE).await.unwrap();

    let path = format!("deliveries/{}/redeliver", world.alice_delivery);
    server.post_empty("alice", &path).await.ok(202);
    world.alice.wait_for(3, DEADLINE).await.unwrap();
    let alice_delivery: DeliveryId = world.alice_delivery.parse().unwrap();
    wait_until("the redelivery recorded", || async {
        let attempts = server.hooks.attempts(alice_delivery).await.unwrap();
        (attempts.len() == 2).then_some(())
    })
    .await;
    let internal = server
        .hooks
        .attempts(world.internal_delivery)
        .await
        .unwrap();
    assert_eq!(
        internal.len(),
        1,
        "the internal delivery was redelivered too"
    );
    assert_eq!(world.internal.count(), 1);
    assert_eq!(example.count(), 0);
    assert_eq!(bob.count(), 0);
}

/// A tenant of two labels (`tenant=alice`, `region=eu`) owns the subscriptions carrying both;
/// one of its labels alone (`tenant=alice`) owns every subscription carrying it, but cannot
/// set the other label.
async fn a_tenant_of_two_labels_owns_what_carries_both(server: Server) {
    let receiver = TestReceiver::start().await.unwrap();
    let url = receiver.url();
    let eu = server
        .create("alice@eu", json!({"url": url, "events": ["*"]}))
        .await;
    assert_eq!(eu["labels"], json!({"tenant": "alice", "region": "eu"}));
    let eu_id = eu["id"].as_str().unwrap();
    let plain = server
        .create("alice", json!({"url": url, "events": ["*"]}))
        .await;
    assert_eq!(plain["labels"], json!({"tenant": "alice"}));
    let plain_id = plain["id"].as_str().unwrap();

    let all = server.get("alice", "subscriptions").await;
    assert_eq!(ids(all.ok(200)), [eu_id, plain_id]);
    let only = server.get("alice@eu", "subscriptions").await;
    assert_eq!(ids(only.ok(200)), [eu_id]);
    server
        .get("alice@eu", &format!("subscriptions/{plain_id}"))
        .await
        .problem(404, "not-found");
    server
        .get("alice@us", &format!("subscriptions/{eu_id}"))
        .await
        .problem(404, "not-found");
    server
        .get("alice", &format!("subscriptions/{eu_id}"))
        .await
        .ok(200);

    let before = server.snapshot().await;
    let body = json!({"url": url, "events": ["*"], "labels": {"region": "eu"}});
    server
        .post("alice", "subscriptions", body.clone())
        .await
        .problem(403, "labels-not-owned");
    server
        .patch(
            "alice",
            &format!("subscriptions/{plain_id}"),
            json!({"labels": {"region": "eu"}}),
        )
        .await
        .problem(403, "labels-not-owned");
    assert_eq!(server.snapshot().await, before);
    let own = server.create("alice@eu", body).await;
    assert_eq!(own["labels"], json!({"tenant": "alice", "region": "eu"}));
}

/// Paging through the delivery log, a tenant gets full pages of its own deliveries, however
/// many of others' lie between them, and nothing in a page (its cursor included) names
/// another's delivery.
async fn pages_hold_only_the_tenants_own(server: Server) {
    let world = world(server).await;
    let server = &world.server;
    let bob_receiver = TestReceiver::start().await.unwrap();
    server
        .create("bob", json!({"url": bob_receiver.url(), "events": ["*"]}))
        .await;
    // Interleaved: alice, bob, alice, bob, alice, bob; the label-less subscription gets all.
    for value in 0..3 {
        server
            .hooks
            .send(&RandomNumber::to("alice", value))
            .await
            .unwrap();
        server
            .hooks
            .send(&RandomNumber::to("bob", value))
            .await
            .unwrap();
    }
    let bob_sub = ids(server.get("bob", "subscriptions").await.ok(200))[0].clone();
    let log = server
        .hooks
        .delivery_log(&webhooks::store::DeliveryQuery::new().limit(1000))
        .await
        .unwrap()
        .items;
    assert_eq!(log.len(), 14, "alice's 4, bob's 3, the application's 7");

    for (tenant, sub, sizes) in [
        ("bob", &bob_sub, vec![2, 1]),
        ("alice", &world.alice_sub, vec![2, 2]),
    ] {
        let (own, foreign): (Vec<_>, Vec<_>) = log
            .iter()
            .partition(|d| d.subscription_id.to_string() == *sub);
        let own: Vec<String> = own.iter().map(|d| d.id.to_string()).collect();
        let mut seen: Vec<String> = Vec::new();
        let mut pages = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", "2")];
            if let Some(cursor) = &next {
                pairs.push(("after", cursor));
            }
            let page = server
                .get_url(tenant, server.query("deliveries", &pairs))
                .await
                .ok(200)
                .clone();
            let text = page.to_string();
            for other in &foreign {
                let id = other.id.to_string();
                assert!(!text.contains(&id), "{tenant}'s page names {id}: {text}");
            }
            pages.push(ids(&page).len());
            seen.extend(ids(&page));
            match page["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => break,
            }
            assert!(pages.len() < 20, "pages without end: {pages:?}");
        }
        assert_eq!(seen, own, "{tenant}'s deliveries, newest first");
        assert_eq!(pages, sizes, "{tenant}'s pages of 2");
    }
}
