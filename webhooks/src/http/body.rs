//! [`JsonBody`]: a request body read within the router's limit and parsed strictly, every
//! failure a [`Problem`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::Shared;
use super::problem::{Problem, ProblemType};

/// A JSON body of type `T` (`deny_unknown_fields` on `T` refuses unknown fields). An empty body
/// is read as `{}`, so endpoints whose fields are all optional take none.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, api: &Shared) -> Result<Self, Problem> {
        let limit = api.body_limit;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|error| {
                // `to_bytes` fails for a body over the limit, or one the client broke off.
                if over_limit(&error) {
                    Problem::new(
                        ProblemType::BodyTooLarge,
                        format!("the request body is larger than {limit} bytes"),
                    )
                } else {
                    Problem::invalid_body(format!("the request body could not be read: {error}"))
                }
            })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // serde's derived structs read a JSON array as their fields in order: `[]` would pass
        // for a body whose fields are all optional.
        if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::invalid_body(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice(text).map(JsonBody).map_err(|error| {
            Problem::invalid_body(format!("the request body is not valid: {error}"))
        })
    }
}

/// Whether reading failed on the limit: http-body-util's `LengthLimitError`, somewhere in the
/// chain, which says "length limit exceeded" (its type is not reachable without that crate).
fn over_limit(error: &axum::Error) -> bool {
    let mut next: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = next {
        if error.to_string().contains("length limit exceeded") {
            return true;
        }
        next = error.source();
    }
    false
}

/// The `{id}` of a path, as text: the handlers parse it, and answer an id that does not parse,
/// one that does not exist and another tenant's alike. Even one that is not UTF-8 once decoded
/// is a 404, not axum's plain-text 400.
pub(crate) struct PathId(pub(crate) String);

impl FromRequestParts<Shared> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, Problem> {
        match axum::extract::Path::<String>::from_request_parts(parts, api).await {
            Ok(axum::extract::Path(id)) => Ok(PathId(id)),
            Err(_) => Err(Problem::new(ProblemType::NotFound, "no such id")),
        }
    }
}
