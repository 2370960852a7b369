//! What every test of the management API starts from: a runtime on a real store, its router
//! nested at `/api` and served on loopback as an application mounts it, and a client that
//! speaks to it as a tenant (`x-tenant: NAME`, the label `tenant=NAME`).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use webhooks::http::{Api, Tenant};
use webhooks::store::{DeliveryQuery, PostgresStore, SqliteStore, Store};
use webhooks::{
    Builder, Catalog, DeliveryId, Subscription, SubscriptionId, WebhookEvent, Webhooks,
};

use crate::common::postgres::Schema;
use crate::common::{DEADLINE, fast_retries};

/// The header the application's toy authentication reads the tenant from.
pub(crate) const TENANT: &str = "x-tenant";

/// A number drawn for a tenant.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "random_number",
    action = "generate",
    example = "RandomNumber::example"
)]
pub(crate) struct RandomNumber {
    #[webhook(label)]
    pub(crate) tenant: String,
    pub(crate) value: u32,
}

impl RandomNumber {
    pub(crate) fn example() -> Self {
        RandomNumber {
            tenant: "example".to_owned(),
            value: 863,
        }
    }

    pub(crate) fn to(tenant: &str, value: u32) -> Self {
        RandomNumber {
            tenant: tenant.to_owned(),
            value,
        }
    }
}

/// Bears, reported and then dealt with.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
pub(crate) enum BearAttack {
    /// A ranger reported an attack.
    #[webhook(action = "reported", example = "bear_example")]
    Reported {
        #[webhook(label)]
        tenant: String,
        county: String,
    },
    /// No example: the test endpoint cannot send it unless asked with another event.
    #[webhook(action = "resolved")]
    #[expect(dead_code, reason = "only in the catalog")]
    Resolved {
        #[webhook(label)]
        tenant: String,
    },
}

fn bear_example() -> BearAttack {
    BearAttack::Reported {
        tenant: "example".to_owned(),
        county: "Kenai".to_owned(),
    }
}

impl BearAttack {
    pub(crate) fn reported(tenant: &str) -> Self {
        BearAttack::Reported {
            tenant: tenant.to_owned(),
            county: "Kenai".to_owned(),
        }
    }
}

/// An event without an example: a subscription to it alone has nothing to test with.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "audit", action = "logged")]
pub(crate) struct Audit {
    #[webhook(label)]
    pub(crate) tenant: String,
}

/// Replaced by `random_number:generate`.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "legacy",
    action = "ping",
    deprecated = "use random_number:generate"
)]
pub(crate) struct LegacyPing;

/// The events the application publishes, in this order.
pub(crate) fn catalog() -> Catalog {
    Catalog::new()
        .event::<RandomNumber>()
        .event::<BearAttack>()
        .event::<Audit>()
        .event::<LegacyPing>()
}

/// The application's tenant closure: the `x-tenant` header, if any, is the label `tenant`;
/// `NAME@REGION` is a tenant of two labels, `tenant=NAME` and `region=REGION`.
pub(crate) fn tenant(parts: &http::request::Parts) -> Option<Tenant> {
    let value = parts.headers.get(TENANT)?.to_str().ok()?;
    if value.is_empty() {
        return None;
    }
    match value.split_once('@') {
        Some((name, region)) => Some(Tenant::new("tenant", name).label("region", region)),
        None => Some(Tenant::new("tenant", value)),
    }
}

/// Which store a server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The answer to one request, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    /// The body as JSON (`Null` if it is not JSON).
    pub(crate) json: Value,
}

impl Reply {
    /// Asserts the status and a JSON body; returns the body.
    #[track_caller]
    pub(crate) fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let content_type = self.content_type();
        assert!(
            content_type.starts_with("application/json"),
            "content-type {content_type:?}: {}",
            self.text
        );
        &self.json
    }

    /// Asserts an RFC 9457 problem: the status, `application/problem+json`, the `type` of this
    /// slug and the members every problem has.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, slug: &str) -> &Value {
        if let Some(mismatch) = self.not_problem(status, slug) {
            panic!("{mismatch}");
        }
        &self.json
    }

    /// How this reply differs from the problem [`problem`](Self::problem) expects, if it does.
    pub(crate) fn not_problem(&self, status: u16, slug: &str) -> Option<String> {
        let expected = format!(
            "expected {status} {slug}, got {} {}",
            self.status, self.text
        );
        let content_type = self.content_type();
        if self.status.as_u16() != status {
            return Some(expected);
        }
        if !content_type.starts_with("application/problem+json") {
            return Some(format!("{expected} as {content_type:?}"));
        }
        if self.json["type"] != format!("urn:typed-webhooks:problem:{slug}")
            || self.json["status"] != status
        {
            return Some(expected);
        }
        if self.json["title"].as_str().is_none_or(str::is_empty) {
            return Some(format!("{expected}: no title"));
        }
        if !self.json["detail"].is_string() {
            return Some(format!("{expected}: no detail"));
        }
        None
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the store holds, to show that a refused request changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    subscriptions: Vec<String>,
    deliveries: Vec<(DeliveryId, String, u32)>,
}

/// A subscription's settings and state, as far as the API can change them.
pub(crate) fn view(s: &Subscription) -> String {
    format!(
        "{} {} {:?} {:?} {:?} enabled={} rate={:?} secret={}",
        s.id(),
        s.url(),
        s.event_patterns(),
        s.labels().iter().collect::<Vec<_>>(),
        s.description_text(),
        s.is_enabled(),
        s.rate_limit_per_second(),
        s.signing_secret().expose(),
    )
}

/// The runtime behind a served router, and a client for it.
pub(crate) struct Server {
    pub(crate) hooks: Webhooks,
    /// `http://127.0.0.1:PORT/api/`.
    pub(crate) base: Url,
    client: reqwest::Client,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
    schema: Option<Schema>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The runtime's settings in these tests: the catalog above, fast retries.
pub(crate) fn builder(store: impl Store) -> Builder {
    Webhooks::builder()
        .store(store)
        .catalog(catalog())
        .retry(fast_retries(3))
        .slow_down_floor(Duration::ZERO)
}

impl Server {
    /// On SQLite, delivering to loopback (where the test receivers are).
    pub(crate) async fn sqlite() -> Server {
        Server::start(Backend::Sqlite, "sqlite", true, |api| api)
            .await
            .unwrap()
    }

    /// On SQLite, with the default network policy (private addresses refused).
    pub(crate) async fn strict() -> Server {
        Server::start(Backend::Sqlite, "strict", false, |api| api)
            .await
            .unwrap()
    }

    /// On the backend, delivering to loopback; `None` (with a line saying so) for PostgreSQL
    /// without `WEBHOOKS_TEST_POSTGRES_URL`.
    pub(crate) async fn on(backend: Backend, test: &str) -> Option<Server> {
        Server::start(backend, test, true, |api| api).await
    }

    /// A server whose router is built by `api` from [`Api::new`].
    pub(crate) async fn start(
        backend: Backend,
        test: &str,
        private: bool,
        api: impl FnOnce(Api) -> Api,
    ) -> Option<Server> {
        let policy = |builder: Builder| {
            if private {
                builder.allow_private_networks()
            } else {
                builder
            }
        };
        Server::start_with(backend, test, policy, api).await
    }

    /// A server whose runtime is shaped by `shape` (after the settings of [`builder`]) and
    /// whose router is built by `api` from [`Api::new`].
    pub(crate) async fn start_with(
        backend: Backend,
        test: &str,
        shape: impl FnOnce(Builder) -> Builder,
        api: impl FnOnce(Api) -> Api,
    ) -> Option<Server> {
        let dir = tempfile::tempdir().unwrap();
        let mut schema = None;
        let builder = match backend {
            Backend::Sqlite => builder(
                SqliteStore::open(dir.path().join("webhooks.db"))
                    .await
                    .unwrap(),
            ),
            Backend::Postgres => {
                let made = Schema::new(test, "http_api_")?;
                let store = PostgresStore::connect_with(&made.url, &made.name)
                    .await
                    .unwrap();
                schema = Some(made);
                builder(store)
            }
        };
        let hooks = shape(builder).build().await.unwrap();
        let router = api(Api::new(hooks.clone(), tenant)).into_router();
        let app = axum::Router::new().nest("/api", router);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Some(Server {
            hooks,
            base: Url::parse(&format!("http://{addr}/api/")).unwrap(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            server,
            _dir: dir,
            schema,
        })
    }

    /// Breaks the store under the runtime: drops its PostgreSQL schema. `false` on SQLite.
    pub(crate) async fn break_store(&self) -> bool {
        let Some(schema) = &self.schema else {
            return false;
        };
        // The name is ours (a fixed prefix and an id), not user input.
        schema
            .execute(format!("DROP SCHEMA \"{}\" CASCADE", schema.name))
            .await;
        true
    }

    /// `path` (relative to the mount point, may carry a query) as a URL.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path.trim_start_matches('/')).unwrap()
    }

    /// `path` with these query parameters, encoded.
    pub(crate) fn query(&self, path: &str, pairs: &[(&str, &str)]) -> Url {
        let mut url = self.url(path);
        url.query_pairs_mut().extend_pairs(pairs);
        url
    }

    /// Any request: `body` is sent as `application/json`.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        tenant: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self.client.request(method, url);
        if let Some(tenant) = tenant {
            request = request.header(TENANT, tenant);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub(crate) async fn get(&self, tenant: &str, path: &str) -> Reply {
        self.send(Method::GET, self.url(path), Some(tenant), None)
            .await
    }

    pub(crate) async fn get_url(&self, tenant: &str, url: Url) -> Reply {
        self.send(Method::GET, url, Some(tenant), None).await
    }

    pub(crate) async fn post(&self, tenant: &str, path: &str, body: Value) -> Reply {
        let body = serde_json::to_vec(&body).unwrap();
        self.send(Method::POST, self.url(path), Some(tenant), Some(body))
            .await
    }

    /// A POST without a body.
    pub(crate) async fn post_empty(&self, tenant: &str, path: &str) -> Reply {
        self.send(Method::POST, self.url(path), Some(tenant), None)
            .await
    }

    pub(crate) async fn patch(&self, tenant: &str, path: &str, body: Value) -> Reply {
        let body = serde_json::to_vec(&body).unwrap();
        self.send(Method::PATCH, self.url(path), Some(tenant), Some(body))
            .await
    }

    pub(crate) async fn delete(&self, tenant: &str, path: &str) -> Reply {
        self.send(Method::DELETE, self.url(path), Some(tenant), None)
            .await
    }

    /// `POST /subscriptions`, which must answer 201; returns the subscription (with secret).
    pub(crate) async fn create(&self, tenant: &str, body: Value) -> Value {
        let reply = self.post(tenant, "subscriptions", body).await;
        reply.ok(201).clone()
    }

    /// What the store holds now (every subscription, every delivery and its attempts).
    pub(crate) async fn snapshot(&self) -> Snapshot {
        let mut subscriptions: Vec<String> = self
            .hooks
            .subscriptions()
            .await
            .unwrap()
            .iter()
            .map(view)
            .collect();
        subscriptions.sort();
        let mut deliveries: Vec<_> = self
            .hooks
            .delivery_log(&DeliveryQuery::new().limit(1000))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| (d.id, d.status.as_str().to_owned(), d.attempts))
            .collect();
        deliveries.sort();
        Snapshot {
            subscriptions,
            deliveries,
        }
    }

    /// Asserts that the server still answers (no request took it down).
    pub(crate) async fn assert_alive(&self) {
        let reply = self.get("alice", "event-types").await;
        reply.ok(200);
    }

    /// Waits until the delivery (read through the API as `tenant`) has `status`.
    pub(crate) async fn wait_status(&self, tenant: &str, delivery: &str, status: &str) -> Value {
        let path = format!("deliveries/{delivery}");
        wait_until(&format!("{delivery} {status}"), || async {
            let reply = self.get(tenant, &path).await;
            (reply.json["status"] == status).then(|| reply.json.clone())
        })
        .await
    }

    /// Waits until the store says the delivery has `status` (for deliveries no tenant sees).
    pub(crate) async fn wait_stored(&self, delivery: DeliveryId, status: &str) {
        wait_until(&format!("{delivery} {status}"), || async {
            let found = self.hooks.delivery(delivery).await.unwrap();
            found.filter(|d| d.status.as_str() == status).map(|_| ())
        })
        .await;
    }
}

/// Polls `check` until it gives a value, at most [`DEADLINE`]. (The API offers nothing to wait
/// on: a client polls it too.)
pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within the deadline: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `json` with every occurrence of `id` replaced by `{id}`: two problems about different ids
/// compared apart from the id.
pub(crate) fn without_id(json: &Value, id: &str) -> Value {
    let text = serde_json::to_string(json).unwrap().replace(id, "{id}");
    serde_json::from_str(&text).unwrap()
}

/// Asserts that no member anywhere is a secret: no `secret` key, no `whsec_` value.
#[track_caller]
pub(crate) fn assert_no_secret(json: &Value) {
    let text = serde_json::to_string(json).unwrap();
    assert!(
        !text.contains("whsec_") && !text.contains("\"secret\""),
        "a secret is shown: {text}"
    );
}

/// The ids of a list's items.
pub(crate) fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The members of a subscription.
pub(crate) const SUBSCRIPTION_KEYS: &[&str] = &[
    "id",
    "url",
    "events",
    "description",
    "labels",
    "enabled",
    "disabled",
    "rate_limit",
    "created_at",
];

/// The members of a delivery.
pub(crate) const DELIVERY_KEYS: &[&str] = &[
    "id",
    "message_id",
    "subscription_id",
    "event_type",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "last_attempt_at",
];

/// The object's keys, sorted.
pub(crate) fn keys(json: &Value) -> BTreeSet<&str> {
    json.as_object()
        .unwrap_or_else(|| panic!("an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// `json` less its `secret`.
pub(crate) fn without_secret(json: &Value) -> Value {
    let mut json = json.clone();
    json.as_object_mut().unwrap().remove("secret");
    json
}

/// The subscription id of a subscription's JSON.
pub(crate) fn sub_id(json: &Value) -> SubscriptionId {
    json["id"].as_str().unwrap().parse().unwrap()
}

/// The URL as the API writes it back (parsed, so normalized).
pub(crate) fn normalized(url: &str) -> String {
    reqwest::Url::parse(url).unwrap().to_string()
}

/// A string that looks like RFC 3339 (a date, `T`, a time, a zone).
#[track_caller]
pub(crate) fn assert_time(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    let bytes = text.as_bytes();
    assert!(
        text.len() >= 20
            && bytes[4] == b'-'
            && bytes[10] == b'T'
            && (text.ends_with('Z') || text[19..].contains(['+', '-'])),
        "RFC 3339: {text}"
    );
}
