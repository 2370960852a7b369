//! [`Tenant`]: who is asking, as the labels it owns; and [`Caller`], the extractor that asks the
//! application's tenant function.

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::Shared;
use super::problem::{Problem, ProblemType};
use crate::Labels;

/// The tenant a request of the management API comes from: the labels it owns, such as
/// `account=42`. It reaches only the subscriptions carrying all of them (see the
/// [module](super)).
///
/// A tenant owns at least one label: there is no way to build one that owns everything.
///
/// ```
/// use webhooks::http::Tenant;
///
/// let tenant = Tenant::new("account", "42").label("region", "eu");
/// assert_eq!(tenant.labels().get("region"), Some("eu"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    labels: Labels,
}

impl Tenant {
    /// A tenant that owns the label `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Tenant {
            labels: Labels::new(),
        }
        .label(name, value)
    }

    /// It owns `name=value` too (replacing another value of `name`).
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value);
        self
    }

    /// The labels it owns.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Whether a subscription with `labels` is this tenant's: it carries every label the
    /// tenant owns.
    pub fn owns(&self, labels: &Labels) -> bool {
        labels.contains_all(&self.labels)
    }
}

/// The tenant of a request, from the application's function; 401 when it names none.
pub(crate) struct Caller(pub(crate) Tenant);

impl FromRequestParts<Shared> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, Problem> {
        // A browser says where a request comes from; a change another site asked for is a
        // forgery riding on the customer's cookies.
        let changes = !matches!(parts.method, http::Method::GET | http::Method::HEAD);
        let site = parts.headers.get("sec-fetch-site").map(|v| v.as_bytes());
        if changes && matches!(site, Some(b"cross-site" | b"same-site")) {
            return Err(Problem::new(
                ProblemType::CrossSiteRequest,
                "a page of another site cannot change webhook subscriptions",
            ));
        }
        match (api.tenant)(parts) {
            Some(tenant) if !tenant.labels.is_empty() => Ok(Caller(tenant)),
            _ => Err(Problem::new(
                ProblemType::Unauthorized,
                "this request does not say which tenant is asking",
            )),
        }
    }
}
