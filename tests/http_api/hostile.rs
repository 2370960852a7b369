//! Hostile and careless input: each request gets a problem response with the contract's status
//! and `type`, nothing is stored or sent, and the server answers the next request. On SQLite,
//! with the default network policy (private addresses refused).

use reqwest::{Method, Url};
use serde_json::{Value, json};
use webhooks::{DeliveryId, SubscriptionId};

use crate::harness::{Backend, Server};

/// A public URL (names are checked when resolved, so this one is accepted without a lookup).
const PUBLIC: &str = "https://hooks.example.com/in";

/// Requests that must each be refused, sent as alice. Every mismatch is kept and all are
/// reported together at the end, so that one run lists every case that deviates.
struct Refusals<'a> {
    server: &'a Server,
    failures: Vec<String>,
}

impl<'a> Refusals<'a> {
    fn new(server: &'a Server) -> Self {
        Refusals {
            server,
            failures: Vec::new(),
        }
    }

    /// Sends `body` (raw bytes, as JSON) and checks the problem; returns the reply's body.
    async fn refused(
        &mut self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
        status: u16,
        slug: &str,
    ) -> Value {
        let reply = self
            .server
            .send(
                method.clone(),
                url.clone(),
                Some("alice"),
                body.map(<[u8]>::to_vec),
            )
            .await;
        if let Some(mismatch) = reply.not_problem(status, slug) {
            let body = body.map(String::from_utf8_lossy).unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
            let target: String = format!("{}{query}", url.path()).chars().take(200).collect();
            self.failures
                .push(format!("{method} {target} {body}\n    {mismatch}"));
        }
        reply.json
    }

    /// Records a failure unless `ok`.
    fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(failure());
        }
    }

    #[track_caller]
    fn done(self) {
        assert!(
            self.failures.is_empty(),
            "{} requests were not refused as the contract says:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// A server with one subscription of alice's (to a public URL, never delivered to).
async fn with_one() -> (Server, String) {
    let server = Server::strict().await;
    let created = server
        .create("alice", json!({"url": PUBLIC, "events": ["*"]}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    (server, id)
}

/// Malformed JSON, wrong types, unknown and missing fields: 400 `invalid-body`, on every
/// endpoint that takes a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_invalid_bodies() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut bodies: Vec<Vec<u8>> = [
        r#"{"url":"#,
        "not json",
        "",
        "[]",
        "null",
        r#""https://hooks.example.com/in""#,
        "42",
        r#"{"url": 5, "events": ["*"]}"#,
        r#"{"url": "https://hooks.example.com/in", "events": "*"}"#,
        r#"{"url": "https://hooks.example.com/in", "events": [1]}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "description": 5}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "rate_limit": "ten"}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "rate_limit": -1}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "rate_limit": 1.5}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "labels": ["tenant"]}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "labels": {"tenant": 1}}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "enabled": false}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "id": "sub_01936d3f8c2a7b3c9d4e5f6a7b8c9d0e"}"#,
        r#"{"url": "https://hooks.example.com/in", "events": ["*"], "colour": "red"}"#,
        r#"{"url": "https://hooks.example.com/in", "url": "https://b.example.com/", "events": ["*"]}"#,
        r#"{"events": ["*"]}"#,
        r#"{"url": "https://hooks.example.com/in"}"#,
        r#"{"url": null, "events": ["*"]}"#,
        r#"{}"#,
    ]
    .iter()
    .map(|b| b.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"url\": \"https://hooks.example.com/\xff\", \"events\": [\"*\"]}".to_vec());
    bodies.push(deep.clone().into_bytes());
    let create = server.url("subscriptions");
    for body in &bodies {
        checks
            .refused(
                Method::POST,
                create.clone(),
                Some(body),
                400,
                "invalid-body",
            )
            .await;
    }

    let patch = server.url(&format!("subscriptions/{id}"));
    for body in [
        r#"{"url":"#,
        "not json",
        "[]",
        "null",
        r#"{"url": 5}"#,
        r#"{"url": null}"#,
        r#"{"events": null}"#,
        r#"{"events": "*"}"#,
        r#"{"description": 5}"#,
        r#"{"rate_limit": "ten"}"#,
        r#"{"labels": null}"#,
        r#"{"enabled": false}"#,
        r#"{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
        r#"{"colour": "red"}"#,
        r#"{"description": "x", "colour": "red"}"#,
        deep.as_str(),
    ] {
        let body = body.as_bytes();
        checks
            .refused(
                Method::PATCH,
                patch.clone(),
                Some(body),
                400,
                "invalid-body",
            )
            .await;
    }

    let recover = server.url(&format!("subscriptions/{id}/recover"));
    for body in [
        "",
        "{}",
        "not json",
        r#"{"since": 5}"#,
        r#"{"since": "yesterday"}"#,
        r#"{"since": "2026-13-01T00:00:00Z"}"#,
        r#"{"since": "2000-01-01T00:00:00Z", "until": "soon"}"#,
        r#"{"since": "2000-01-01T00:00:00Z", "colour": "red"}"#,
    ] {
        let body = body.as_bytes();
        checks
            .refused(
                Method::POST,
                recover.clone(),
                Some(body),
                400,
                "invalid-body",
            )
            .await;
    }

    let test = server.url(&format!("subscriptions/{id}/test"));
    let rotate = server.url(&format!("subscriptions/{id}/rotate-secret"));
    for body in [
        "not json",
        "[]",
        r#"{"event_type": 5}"#,
        r#"{"event_type": "random_number:generate", "colour": "red"}"#,
    ] {
        let body = body.as_bytes();
        checks
            .refused(Method::POST, test.clone(), Some(body), 400, "invalid-body")
            .await;
    }
    for body in [
        "not json",
        "[]",
        r#"{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
        r#"{"colour": "red"}"#,
    ] {
        let body = body.as_bytes();
        checks
            .refused(
                Method::POST,
                rotate.clone(),
                Some(body),
                400,
                "invalid-body",
            )
            .await;
    }

    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}

/// Well-formed bodies that make no subscription: 422 `invalid-subscription`, with an unknown
/// event's nearest catalog name in the detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_that_cannot_be_are_refused() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let create = server.url("subscriptions");
    let patch = server.url(&format!("subscriptions/{id}"));
    let cases = [
        json!({"url": PUBLIC, "events": []}),
        json!({"url": PUBLIC, "events": ["not a pattern!"]}),
        json!({"url": PUBLIC, "events": [""]}),
        json!({"url": PUBLIC, "events": ["*"], "rate_limit": 0}),
        json!({"url": "not a url", "events": ["*"]}),
        json!({"url": "", "events": ["*"]}),
        json!({"url": "ftp://hooks.example.com/in", "events": ["*"]}),
        json!({"url": "mailto:hooks@example.com", "events": ["*"]}),
        json!({"url": "/relative", "events": ["*"]}),
        json!({"url": "https://", "events": ["*"]}),
    ];
    for body in &cases {
        let bytes = serde_json::to_vec(body).unwrap();
        checks
            .refused(
                Method::POST,
                create.clone(),
                Some(&bytes),
                422,
                "invalid-subscription",
            )
            .await;
        // The same fields in a PATCH.
        let mut fields = body.as_object().unwrap().clone();
        if fields["url"] == PUBLIC {
            fields.remove("url");
        }
        if fields["events"] == json!(["*"]) {
            fields.remove("events");
        }
        let bytes = serde_json::to_vec(&fields).unwrap();
        checks
            .refused(
                Method::PATCH,
                patch.clone(),
                Some(&bytes),
                422,
                "invalid-subscription",
            )
            .await;
    }

    // A pattern no catalog event matches: the detail suggests the nearest.
    for (typo, nearest) in [
        ("random_numbr:generate", "random_number:generate"),
        ("bear_atack:*", "bear_attack:*"),
    ] {
        let body = serde_json::to_vec(&json!({"url": PUBLIC, "events": ["*", typo]})).unwrap();
        let problem = checks
            .refused(
                Method::POST,
                create.clone(),
                Some(&body),
                422,
                "invalid-subscription",
            )
            .await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        checks.check(detail.contains(typo) && detail.contains(nearest), || {
            format!("POST {typo}: the detail does not suggest {nearest}: {detail}")
        });
        let body = serde_json::to_vec(&json!({"events": [typo]})).unwrap();
        let problem = checks
            .refused(
                Method::PATCH,
                patch.clone(),
                Some(&body),
                422,
                "invalid-subscription",
            )
            .await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        checks.check(detail.contains(nearest), || {
            format!("PATCH {typo}: the detail does not suggest {nearest}: {detail}")
        });
    }

    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}

/// Private, loopback, link-local and metadata addresses, as literals or names: 422
/// `url-not-allowed` with the default network policy, on POST and PATCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_not_allowed() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let create = server.url("subscriptions");
    let patch = server.url(&format!("subscriptions/{id}"));
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.1/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://localhost/",
    ] {
        let body = serde_json::to_vec(&json!({"url": url, "events": ["*"]})).unwrap();
        let problem = checks
            .refused(
                Method::POST,
                create.clone(),
                Some(&body),
                422,
                "url-not-allowed",
            )
            .await;
        checks.check(
            problem["detail"].as_str().is_some_and(|d| d.len() > 10),
            || format!("POST {url}: no clear message: {problem}"),
        );
        let body = serde_json::to_vec(&json!({"url": url})).unwrap();
        checks
            .refused(
                Method::PATCH,
                patch.clone(),
                Some(&body),
                422,
                "url-not-allowed",
            )
            .await;
    }
    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}

/// With `https_only`, an `http` URL is 422 `url-not-allowed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_not_allowed_when_https_only() {
    let server = Server::start_with(Backend::Sqlite, "https_only", |b| b.https_only(), |api| api)
        .await
        .unwrap();
    let mut checks = Refusals::new(&server);
    let body = serde_json::to_vec(&json!({"url": "http://hooks.example.com/in", "events": ["*"]}))
        .unwrap();
    checks
        .refused(
            Method::POST,
            server.url("subscriptions"),
            Some(&body),
            422,
            "url-not-allowed",
        )
        .await;
    checks.done();
    assert!(server.hooks.subscriptions().await.unwrap().is_empty());
    let created = server
        .create("alice", json!({"url": PUBLIC, "events": ["*"]}))
        .await;
    let patch = server.url(&format!(
        "subscriptions/{}",
        created["id"].as_str().unwrap()
    ));
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let body = serde_json::to_vec(&json!({"url": "http://hooks.example.com/in"})).unwrap();
    checks
        .refused(Method::PATCH, patch, Some(&body), 422, "url-not-allowed")
        .await;
    checks.done();
    assert_eq!(server.snapshot().await, before);
}

/// A body over the limit is 413 `body-too-large`: 64 KiB by default, or the `body_limit` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_too_large() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let long = "x".repeat(70 * 1024);
    let body =
        serde_json::to_vec(&json!({"url": PUBLIC, "events": ["*"], "description": long})).unwrap();
    checks
        .refused(
            Method::POST,
            server.url("subscriptions"),
            Some(&body),
            413,
            "body-too-large",
        )
        .await;
    let body = serde_json::to_vec(&json!({"description": long})).unwrap();
    let patch = server.url(&format!("subscriptions/{id}"));
    checks
        .refused(Method::PATCH, patch, Some(&body), 413, "body-too-large")
        .await;
    // Every endpoint that takes a body.
    let body = serde_json::to_vec(&json!({"since": "2000-01-01T00:00:00Z", "pad": long})).unwrap();
    for action in ["recover", "test", "rotate-secret"] {
        let url = server.url(&format!("subscriptions/{id}/{action}"));
        checks
            .refused(Method::POST, url, Some(&body), 413, "body-too-large")
            .await;
    }
    // Not even JSON: the limit comes first.
    let junk = vec![b'{'; 1024 * 1024];
    checks
        .refused(
            Method::POST,
            server.url("subscriptions"),
            Some(&junk),
            413,
            "body-too-large",
        )
        .await;
    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;

    // A limit of one's own.
    let small = Server::start(Backend::Sqlite, "body_limit", false, |api| {
        api.body_limit(1024)
    })
    .await
    .unwrap();
    let mut small_checks = Refusals::new(&small);
    let over = serde_json::to_vec(
        &json!({"url": PUBLIC, "events": ["*"], "description": "x".repeat(1100)}),
    )
    .unwrap();
    small_checks
        .refused(
            Method::POST,
            small.url("subscriptions"),
            Some(&over),
            413,
            "body-too-large",
        )
        .await;
    small_checks.done();
    assert!(small.hooks.subscriptions().await.unwrap().is_empty());
    let under = json!({"url": PUBLIC, "events": ["*"], "description": "x".repeat(800)});
    small.create("alice", under).await;
}

/// Ids that are malformed, of the wrong kind, or unknown: the 404 `not-found` of an unknown id,
/// on every endpoint that takes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_not_found() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let sub: SubscriptionId = id.parse().unwrap();
    let long = "sub_".to_owned() + &"0".repeat(2000);
    let subs = [
        "nope".to_owned(),
        "sub_nope".to_owned(),
        "%00".to_owned(),
        "sub_%00".to_owned(),
        DeliveryId::new().to_string(),
        SubscriptionId::new().to_string(),
        sub.as_uuid().to_string(),
        format!("{id}x"),
        id.to_uppercase(),
        long.clone(),
    ];
    let patch = br#"{"description": "x"}"#;
    let recover = br#"{"since": "2000-01-01T00:00:00Z"}"#;
    for bad in &subs {
        let at = |suffix: &str| server.url(&format!("subscriptions/{bad}{suffix}"));
        checks
            .refused(Method::GET, at(""), None, 404, "not-found")
            .await;
        checks
            .refused(Method::PATCH, at(""), Some(patch), 404, "not-found")
            .await;
        checks
            .refused(Method::DELETE, at(""), None, 404, "not-found")
            .await;
        for action in ["enable", "disable", "rotate-secret", "test"] {
            checks
                .refused(
                    Method::POST,
                    at(&format!("/{action}")),
                    None,
                    404,
                    "not-found",
                )
                .await;
        }
        checks
            .refused(
                Method::POST,
                at("/recover"),
                Some(recover),
                404,
                "not-found",
            )
            .await;
    }
    let deliveries = [
        "nope".to_owned(),
        "%00".to_owned(),
        "dlv_%00".to_owned(),
        id.clone(),
        DeliveryId::new().to_string(),
        long.replace("sub_", "dlv_"),
    ];
    for bad in &deliveries {
        let at = |suffix: &str| server.url(&format!("deliveries/{bad}{suffix}"));
        checks
            .refused(Method::GET, at(""), None, 404, "not-found")
            .await;
        checks
            .refused(Method::GET, at("/attempts"), None, 404, "not-found")
            .await;
        checks
            .refused(Method::POST, at("/redeliver"), None, 404, "not-found")
            .await;
    }
    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}

/// Bad query parameters of the delivery log: 400 `invalid-query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_invalid_queries() {
    let (server, _id) = with_one().await;
    let mut checks = Refusals::new(&server);
    let huge = "9".repeat(40);
    let cases: Vec<(&str, &str)> = vec![
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "1001"),
        ("limit", "4294967296"),
        ("limit", &huge),
        ("limit", "abc"),
        ("limit", ""),
        ("limit", "1.5"),
        ("after", "garbage"),
        ("after", "\0"),
        ("after", "AAAA"),
        ("since", "yesterday"),
        ("since", "2026-13-01T00:00:00Z"),
        ("until", "soon"),
        ("status", "lost"),
        ("status", "delivered,lost"),
        ("subscription", "nope"),
    ];
    for (key, value) in cases {
        let url = server.query("deliveries", &[(key, value)]);
        checks
            .refused(Method::GET, url, None, 400, "invalid-query")
            .await;
    }
    for limit in ["1", "1000"] {
        let url = server.query("deliveries", &[("limit", limit)]);
        server.get_url("alice", url).await.ok(200);
    }
    checks.done();
    server.assert_alive().await;
}

/// A method a path does not take: 405 `method-not-allowed`, with `Allow` (RFC 9110 §15.5.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_not_allowed() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    let delivery = DeliveryId::new();
    let cases = [
        (Method::PUT, "subscriptions".to_owned()),
        (Method::DELETE, "subscriptions".to_owned()),
        (Method::PUT, format!("subscriptions/{id}")),
        (Method::POST, format!("subscriptions/{id}")),
        (Method::GET, format!("subscriptions/{id}/enable")),
        (Method::DELETE, format!("subscriptions/{id}/disable")),
        (Method::GET, format!("subscriptions/{id}/rotate-secret")),
        (Method::GET, format!("subscriptions/{id}/test")),
        (Method::PUT, format!("subscriptions/{id}/recover")),
        (Method::POST, "event-types".to_owned()),
        (Method::POST, "deliveries".to_owned()),
        (Method::DELETE, format!("deliveries/{delivery}")),
        (Method::POST, format!("deliveries/{delivery}/attempts")),
        (Method::GET, format!("deliveries/{delivery}/redeliver")),
        (Method::POST, "openapi.json".to_owned()),
    ];
    for (method, path) in cases {
        let reply = server
            .send(method.clone(), server.url(&path), Some("alice"), None)
            .await;
        if let Some(mismatch) = reply.not_problem(405, "method-not-allowed") {
            checks.check(false, || format!("{method} {path}: {mismatch}"));
        }
        checks.check(reply.header("allow").is_some(), || {
            format!("{method} {path}: no Allow header")
        });
    }
    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}

/// A path the API does not have: 404 `not-found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_not_found() {
    let (server, id) = with_one().await;
    let before = server.snapshot().await;
    let mut checks = Refusals::new(&server);
    for path in [
        "nope".to_owned(),
        "event-types/random_number:generate".to_owned(),
        format!("subscriptions/{id}/nope"),
        format!("subscriptions/{id}/enable/now"),
        "deliveries/x/y/z".to_owned(),
        "openapi.yaml".to_owned(),
    ] {
        for method in [Method::GET, Method::POST] {
            checks
                .refused(method, server.url(&path), None, 404, "not-found")
                .await;
        }
    }
    checks.done();
    assert_eq!(server.snapshot().await, before);
    server.assert_alive().await;
}
