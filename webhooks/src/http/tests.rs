//! The router over real HTTP on loopback, in-crate: the route table and the OpenAPI document
//! agree, and the basics answer as documented. The full suite (tenants, hostile input, every
//! store) is `tests/http_api.rs`.

use serde_json::Value;

use super::*;
use crate::store::MemoryStore;

/// Every route the router serves, with its methods: what the OpenAPI document must list.
const ROUTES: &[(&str, &[&str])] = &[
    ("/subscriptions", &["get", "post"]),
    ("/subscriptions/{id}", &["get", "patch", "delete"]),
    ("/subscriptions/{id}/enable", &["post"]),
    ("/subscriptions/{id}/disable", &["post"]),
    ("/subscriptions/{id}/rotate-secret", &["post"]),
    ("/subscriptions/{id}/test", &["post"]),
    ("/subscriptions/{id}/recover", &["post"]),
    ("/event-types", &["get"]),
    ("/deliveries", &["get"]),
    ("/deliveries/{id}", &["get"]),
    ("/deliveries/{id}/attempts", &["get"]),
    ("/deliveries/{id}/redeliver", &["post"]),
    ("/openapi.json", &["get"]),
    ("/portal", &["get"]),
];

/// Serves the API of a memory-store runtime at `/api`, the tenant from `x-tenant`.
async fn serve() -> (String, Webhooks) {
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .unwrap();
    let api = router(hooks.clone(), |parts: &Parts| {
        let name = parts.headers.get("x-tenant")?.to_str().ok()?;
        Some(Tenant::new("tenant", name))
    });
    let app: Router = Router::new().nest("/api", api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api"), hooks)
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[test]
fn the_document_lists_every_route_and_nothing_else() {
    let document = openapi::document();
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), ROUTES.len());
    for (path, methods) in ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is documented"));
        let documented: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = methods.to_vec();
        expected.sort_unstable();
        let mut documented = documented;
        documented.sort_unstable();
        assert_eq!(documented, expected, "{path}");
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let (base, hooks) = serve().await;
    let client = reqwest::Client::new();
    for (path, methods) in ROUTES {
        let path = path.replace("{id}", "sub_nope");
        for method in *methods {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client
                .request(method.clone(), format!("{base}{path}"))
                .header("x-tenant", "alice")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
            // A route that exists answers anything but "no such path" or a wrong method.
            assert_ne!(status, 405, "{method} {path}");
            assert_ne!(body["detail"], "no such path", "{method} {path}");
        }
    }
    hooks.shutdown().await;
}

#[tokio::test]
async fn problems_are_problem_json_with_a_stable_type() {
    let (base, hooks) = serve().await;
    let client = reqwest::Client::new();
    let cases = [
        (
            client.get(format!("{base}/subscriptions")),
            401,
            "unauthorized",
        ),
        (
            client
                .get(format!("{base}/nowhere"))
                .header("x-tenant", "a"),
            404,
            "not-found",
        ),
        (
            client
                .put(format!("{base}/subscriptions"))
                .header("x-tenant", "a"),
            405,
            "method-not-allowed",
        ),
        (
            client
                .post(format!("{base}/subscriptions"))
                .header("x-tenant", "a")
                .body("{not json"),
            400,
            "invalid-body",
        ),
        (
            client
                .post(format!("{base}/subscriptions"))
                .header("x-tenant", "a")
                .header("sec-fetch-site", "cross-site")
                .body("{}"),
            403,
            "cross-site-request",
        ),
        (
            client
                .post(format!("{base}/subscriptions"))
                .header("x-tenant", "a")
                .body(vec![b' '; DEFAULT_BODY_LIMIT + 1]),
            413,
            "body-too-large",
        ),
    ];
    for (request, status, slug) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{slug}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{slug}"
        );
        let body: Value = json(response).await;
        assert_eq!(body["type"], format!("urn:typed-webhooks:problem:{slug}"));
        assert_eq!(body["status"], status);
    }
    hooks.shutdown().await;
}

#[tokio::test]
async fn a_subscription_is_its_tenants_alone() {
    let (base, hooks) = serve().await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/subscriptions"))
        .header("x-tenant", "alice")
        .body(r#"{"url": "https://example.com/hooks", "events": ["*"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let created: Value = json(created).await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["labels"]["tenant"], "alice");
    let id = created["id"].as_str().unwrap();

    let read = |tenant: &'static str| {
        client
            .get(format!("{base}/subscriptions/{id}"))
            .header("x-tenant", tenant)
            .send()
    };
    let alice = read("alice").await.unwrap();
    assert_eq!(alice.status(), 200);
    let alice: Value = json(alice).await;
    assert_eq!(alice["secret"], Value::Null, "the secret is shown once");
    let bob = read("bob").await.unwrap();
    assert_eq!(bob.status(), 404);
    let unknown = client
        .get(format!(
            "{base}/subscriptions/sub_0000000000000000000000000"
        ))
        .header("x-tenant", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bob: Value = json(bob).await;
    let unknown: Value = json(unknown).await;
    assert_eq!(
        bob, unknown,
        "another tenant's id answers as an unknown one"
    );
    assert_eq!(hooks.subscriptions().await.unwrap().len(), 1);
    hooks.shutdown().await;
}
