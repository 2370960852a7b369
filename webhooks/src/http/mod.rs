//! The management API and the customer portal: an [`axum::Router`] the application mounts,
//! behind its own authentication, so that its customers can register their URLs, pick events,
//! see what was sent and replay it — without a second service to run.
//!
//! ```no_run
//! use axum::Router;
//! use webhooks::http::Tenant;
//!
//! # async fn run(hooks: webhooks::Webhooks) -> std::io::Result<()> {
//! // Who is asking? Here a header an authentication layer in front has checked; usually an
//! // identity that layer put in the request's extensions.
//! let api = webhooks::http::router(hooks, |request: &http::request::Parts| {
//!     let account = request.headers.get("x-account")?.to_str().ok()?;
//!     Some(Tenant::new("account", account))
//! });
//! let app: Router = Router::new().nest("/webhooks", api);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The portal page is then at `/webhooks/portal`, the API's OpenAPI 3.1 document at
//! `/webhooks/openapi.json`.
//!
//! # Tenants
//!
//! The function given to [`router`] tells, for each request, which [`Tenant`] is asking: the
//! labels it owns, such as `account=42`. A tenant sees, creates, changes, tests and replays only
//! the subscriptions that carry all its labels, and the deliveries to them. The subscriptions
//! it creates get its labels, so they receive only events with those labels (see
//! [`Subscription::label`](crate::Subscription::label)); a request that sets any other label is
//! refused. An id of another tenant's subscription or delivery answers exactly as an id that
//! does not exist. A request the function returns `None` for is answered 401.
//!
//! Subscriptions made by the application itself (without the tenant's labels) are invisible
//! here, and so are their deliveries, even of the tenant's events.
//!
//! # Endpoints
//!
//! | | |
//! |---|---|
//! | `GET /subscriptions`, `POST /subscriptions` | list; create (`{"url", "events", "description"?}`, answered with the `secret`, this once) |
//! | `GET`, `PATCH`, `DELETE /subscriptions/{id}` | read; change `url`, `events`, `description`, `rate_limit`; delete |
//! | `POST /subscriptions/{id}/enable`, `/disable` | resume or stop deliveries |
//! | `POST /subscriptions/{id}/rotate-secret` | a new secret, answered this once; the old one signs beside it for the rotation overlap |
//! | `POST /subscriptions/{id}/test` | sends the catalog's example of an event (`{"event_type"?}`) to this subscription alone |
//! | `POST /subscriptions/{id}/recover` | `{"since", "until"?}`: re-enables and requeues what was exhausted or skipped |
//! | `GET /event-types` | the catalog ([`Builder::catalog`](crate::Builder::catalog)): names, descriptions, schemas, examples |
//! | `GET /deliveries` | the delivery log, newest first: `subscription`, `status`, `event`, `since`, `until`, `after`, `limit` |
//! | `GET /deliveries/{id}`, `/deliveries/{id}/attempts` | a delivery with its payload; its attempts with the responses |
//! | `POST /deliveries/{id}/redeliver` | one more attempt, now |
//! | `GET /openapi.json`, `GET /portal` | this API's OpenAPI 3.1 document; the portal page ([`Portal`]) |
//!
//! # Errors
//!
//! Every error is RFC 9457 `application/problem+json` whose `type` is stable
//! (`urn:typed-webhooks:problem:not-found`, …; see [`ProblemType`]). Request bodies are JSON
//! with no unknown fields, at most 64 KiB ([`Api::body_limit`]). URLs are checked by the
//! runtime's network policy, as [`Webhooks::subscribe`] checks them. A state-changing request
//! a browser marks as coming from another site (`Sec-Fetch-Site`) is refused, so cookie-based
//! authentication is not open to cross-site request forgery.
//!
//! Secrets are answered only by `POST /subscriptions` and `rotate-secret`, and no answer may be
//! cached (`cache-control: no-store`).

mod body;
mod deliveries;
mod openapi;
mod portal;
mod problem;
mod subscriptions;
mod tenant;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;

pub use portal::Portal;
pub use problem::{Problem, ProblemType};
pub use tenant::Tenant;

use crate::Webhooks;

/// The largest request body accepted by default: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The management API and portal of `hooks`, for the tenant `tenant` says is asking; see the
/// [module](self). Mount it with [`Router::nest`].
///
/// [`Api`] changes the defaults.
pub fn router<S, F>(hooks: Webhooks, tenant: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(&Parts) -> Option<Tenant> + Send + Sync + 'static,
{
    Api::new(hooks, tenant).into_router()
}

/// The management API's settings, for a [`router`] with other than the defaults.
///
/// ```no_run
/// # fn run(hooks: webhooks::Webhooks) {
/// use webhooks::http::{Api, Portal, Tenant};
///
/// let api: axum::Router = Api::new(hooks, |_: &http::request::Parts| Some(Tenant::new("account", "42")))
///     .body_limit(16 * 1024)
///     .portal(Portal::new().title("Acme webhooks"))
///     .into_router();
/// # }
/// ```
pub struct Api {
    state: ApiState,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("body_limit", &self.state.body_limit)
            .field("portal", &self.state.portal)
            .finish_non_exhaustive()
    }
}

/// The application's function that names the tenant of a request.
type TenantFn = Box<dyn Fn(&Parts) -> Option<Tenant> + Send + Sync>;

/// What every handler shares.
pub(crate) struct ApiState {
    pub(crate) hooks: Webhooks,
    pub(crate) tenant: TenantFn,
    pub(crate) body_limit: usize,
    pub(crate) portal: Portal,
}

/// The handlers' state.
pub(crate) type Shared = Arc<ApiState>;

impl Api {
    /// The API of `hooks` with the defaults, for the tenant `tenant` says is asking.
    pub fn new<F>(hooks: Webhooks, tenant: F) -> Self
    where
        F: Fn(&Parts) -> Option<Tenant> + Send + Sync + 'static,
    {
        Api {
            state: ApiState {
                hooks,
                tenant: Box::new(tenant),
                body_limit: DEFAULT_BODY_LIMIT,
                portal: Portal::new(),
            },
        }
    }

    /// The largest request body accepted, in bytes ([`DEFAULT_BODY_LIMIT`] by default); a
    /// larger one is answered 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.state.body_limit = bytes;
        self
    }

    /// The portal page served at `GET /portal`.
    #[must_use]
    pub fn portal(mut self, portal: Portal) -> Self {
        self.state.portal = portal;
        self
    }

    /// The router, to mount with [`Router::nest`].
    pub fn into_router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let state: Shared = Arc::new(self.state);
        Router::new()
            .route(
                "/subscriptions",
                get(subscriptions::list).post(subscriptions::create),
            )
            .route(
                "/subscriptions/{id}",
                get(subscriptions::read)
                    .patch(subscriptions::change)
                    .delete(subscriptions::delete),
            )
            .route("/subscriptions/{id}/enable", post(subscriptions::enable))
            .route("/subscriptions/{id}/disable", post(subscriptions::disable))
            .route(
                "/subscriptions/{id}/rotate-secret",
                post(subscriptions::rotate_secret),
            )
            .route("/subscriptions/{id}/test", post(subscriptions::test))
            .route("/subscriptions/{id}/recover", post(subscriptions::recover))
            .route("/event-types", get(subscriptions::event_types))
            .route("/deliveries", get(deliveries::list))
            .route("/deliveries/{id}", get(deliveries::read))
            .route("/deliveries/{id}/attempts", get(deliveries::attempts))
            .route("/deliveries/{id}/redeliver", post(deliveries::redeliver))
            .route("/openapi.json", get(openapi::serve))
            .route("/portal", get(serve_portal))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::map_response(no_store))
            .with_state(state)
    }
}

async fn serve_portal(axum::extract::State(api): axum::extract::State<Shared>) -> Response {
    api.portal.clone().into_response()
}

async fn not_found() -> Problem {
    Problem::new(ProblemType::NotFound, "no such path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        ProblemType::MethodNotAllowed,
        "this path does not take this method",
    )
}

/// Answers carry secrets and per-tenant data: no cache keeps them (the portal page sets its
/// own headers).
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests;
