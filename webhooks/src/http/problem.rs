//! [`Problem`]: every error the API answers, as RFC 9457 `application/problem+json` with a
//! stable `type` per kind of error ([`ProblemType`]).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::Error;
use crate::store::{Entity, StoreError};

/// The kinds of error the management API answers, each with a stable `type` URI
/// (`urn:typed-webhooks:problem:<slug>`) a client can branch on, and an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// 401: the application's tenant function recognised no tenant in the request.
    Unauthorized,
    /// 404: no such subscription, delivery or path, or one of another tenant (answered alike).
    NotFound,
    /// 405: the path exists, not with this method.
    MethodNotAllowed,
    /// 400: the body is not JSON of the expected shape (syntax, types, unknown or missing
    /// fields).
    InvalidBody,
    /// 413: the body is larger than the router's limit.
    BodyTooLarge,
    /// 400: a query parameter is malformed or out of range.
    InvalidQuery,
    /// 422: the subscription is invalid: its URL, event patterns or rate limit.
    InvalidSubscription,
    /// 422: the network policy refuses the URL (a private address, or `http` when only
    /// `https` is allowed).
    UrlNotAllowed,
    /// 403: the request sets a label the tenant does not own.
    LabelsNotOwned,
    /// 403: a browser sent a change from a page of another site.
    CrossSiteRequest,
    /// 409: the subscription is disabled; enable it first.
    SubscriptionDisabled,
    /// 409: the request conflicts with the state of what it names (a delivery in flight).
    Conflict,
    /// 422: the catalog has no example of an event this subscription receives.
    NoExample,
    /// 503: the webhooks runtime is shut down.
    Unavailable,
    /// 500: the store failed (details are logged, not answered).
    Internal,
}

impl ProblemType {
    /// Every kind, for documentation and tests.
    pub const ALL: &'static [ProblemType] = &[
        ProblemType::Unauthorized,
        ProblemType::NotFound,
        ProblemType::MethodNotAllowed,
        ProblemType::InvalidBody,
        ProblemType::BodyTooLarge,
        ProblemType::InvalidQuery,
        ProblemType::InvalidSubscription,
        ProblemType::UrlNotAllowed,
        ProblemType::LabelsNotOwned,
        ProblemType::CrossSiteRequest,
        ProblemType::SubscriptionDisabled,
        ProblemType::Conflict,
        ProblemType::NoExample,
        ProblemType::Unavailable,
        ProblemType::Internal,
    ];

    /// The slug at the end of the `type` URI, such as `not-found`.
    pub fn slug(self) -> &'static str {
        match self {
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::NotFound => "not-found",
            ProblemType::MethodNotAllowed => "method-not-allowed",
            ProblemType::InvalidBody => "invalid-body",
            ProblemType::BodyTooLarge => "body-too-large",
            ProblemType::InvalidQuery => "invalid-query",
            ProblemType::InvalidSubscription => "invalid-subscription",
            ProblemType::UrlNotAllowed => "url-not-allowed",
            ProblemType::LabelsNotOwned => "labels-not-owned",
            ProblemType::CrossSiteRequest => "cross-site-request",
            ProblemType::SubscriptionDisabled => "subscription-disabled",
            ProblemType::Conflict => "conflict",
            ProblemType::NoExample => "no-example",
            ProblemType::Unavailable => "unavailable",
            ProblemType::Internal => "internal",
        }
    }

    /// The `type` URI: `urn:typed-webhooks:problem:` and the slug.
    pub fn uri(self) -> String {
        format!("urn:typed-webhooks:problem:{}", self.slug())
    }

    /// The HTTP status answered.
    pub fn status(self) -> StatusCode {
        match self {
            ProblemType::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemType::NotFound => StatusCode::NOT_FOUND,
            ProblemType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemType::InvalidBody | ProblemType::InvalidQuery => StatusCode::BAD_REQUEST,
            ProblemType::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemType::InvalidSubscription
            | ProblemType::UrlNotAllowed
            | ProblemType::NoExample => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemType::LabelsNotOwned | ProblemType::CrossSiteRequest => StatusCode::FORBIDDEN,
            ProblemType::SubscriptionDisabled | ProblemType::Conflict => StatusCode::CONFLICT,
            ProblemType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `title`: the same for every problem of this kind.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::Unauthorized => "Not signed in",
            ProblemType::NotFound => "Not found",
            ProblemType::MethodNotAllowed => "Method not allowed",
            ProblemType::InvalidBody => "Invalid request body",
            ProblemType::BodyTooLarge => "Request body too large",
            ProblemType::InvalidQuery => "Invalid query parameter",
            ProblemType::InvalidSubscription => "Invalid subscription",
            ProblemType::UrlNotAllowed => "URL not allowed",
            ProblemType::LabelsNotOwned => "Labels not owned",
            ProblemType::CrossSiteRequest => "Cross-site request",
            ProblemType::SubscriptionDisabled => "Subscription disabled",
            ProblemType::Conflict => "Conflict",
            ProblemType::NoExample => "No example event",
            ProblemType::Unavailable => "Unavailable",
            ProblemType::Internal => "Internal error",
        }
    }
}

/// An error answer of the management API: a [`ProblemType`] and a `detail` for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    kind: ProblemType,
    detail: String,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ProblemType {
        self.kind
    }

    /// What went wrong, for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The 404 of an id that does not exist *or belongs to another tenant*: the two must not be
    /// told apart.
    /// The answer is the same byte for byte whatever the id, so it tells nothing.
    pub(crate) fn not_found(what: &str) -> Self {
        Problem::new(ProblemType::NotFound, format!("no such {what}"))
    }

    pub(crate) fn invalid_query(detail: impl Into<String>) -> Self {
        Problem::new(ProblemType::InvalidQuery, detail)
    }

    pub(crate) fn invalid_body(detail: impl Into<String>) -> Self {
        Problem::new(ProblemType::InvalidBody, detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.title(), self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let body = json!({
            "type": self.kind.uri(),
            "title": self.kind.title(),
            "status": status.as_u16(),
            "detail": self.detail,
        });
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The library's errors as the API answers them. The not-found ones echo no id, as
/// `Problem::not_found`.
impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::Blocked(_) => ProblemType::UrlNotAllowed,
            Error::InvalidUrl { .. }
            | Error::InvalidPattern { .. }
            | Error::UnknownEventType { .. }
            | Error::InvalidHeader { .. }
            | Error::InvalidConfig { .. }
            | Error::InvalidKey { .. }
            | Error::SecretCannotSign { .. } => ProblemType::InvalidSubscription,
            Error::MessageTooLarge { .. } | Error::Serialize { .. } => ProblemType::NoExample,
            Error::SubscriptionNotFound(_) | Error::DeliveryNotFound(_) => ProblemType::NotFound,
            Error::SubscriptionDisabled(_) => ProblemType::SubscriptionDisabled,
            Error::ShutDown => ProblemType::Unavailable,
            Error::Store(store) if store.is_not_found() => ProblemType::NotFound,
            Error::Store(store) if store.is_conflict() => ProblemType::Conflict,
            _ => ProblemType::Internal,
        };
        let detail = match kind {
            ProblemType::Internal => {
                tracing::error!(%error, "the webhooks management API failed");
                "the request could not be completed; it has been logged".to_owned()
            }
            // Deleted between the ownership check and the change: the answer of any unknown
            // id, which names none.
            ProblemType::NotFound => match error {
                Error::DeliveryNotFound(_) => "no such delivery".to_owned(),
                Error::Store(StoreError::NotFound {
                    entity: Entity::Delivery,
                    ..
                }) => "no such delivery".to_owned(),
                _ => "no such subscription".to_owned(),
            },
            _ => error.to_string(),
        };
        Problem::new(kind, detail)
    }
}
