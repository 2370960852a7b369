//! Receiving with [axum](https://docs.rs/axum/0.8): extractors that read the body, check its
//! signature with the state's [`Verifier`], parse it, and answer a refused request themselves.
//!
//! ```no_run
//! use axum::{Router, http::StatusCode, routing::post};
//! use serde::{Deserialize, Serialize};
//! use webhooks::axum::VerifiedEvent;
//! use webhooks::{Verifier, WebhookEvent};
//!
//! #[derive(Serialize, Deserialize, WebhookEvent)]
//! #[webhook(resource = "random_number", action = "generate")]
//! struct RandomNumber(u32);
//!
//! async fn hook(VerifiedEvent(event): VerifiedEvent<RandomNumber>) -> StatusCode {
//!     println!("{} {:?}: {}", event.event_type(), event.id(), event.data.0);
//!     StatusCode::NO_CONTENT
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?);
//! // The state provides the `Verifier` (`FromRef`): here it is the whole state.
//! let app: Router = Router::new().route("/hooks", post(hook)).with_state(verifier);
//! # drop(app); Ok(()) }
//! ```
//!
//! The body is read with axum's [`Bytes`] extractor, so its size limit is axum's:
//! 2 MB unless a [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) layer says otherwise; a
//! larger body is answered 413.
//!
//! A refused request is answered with [`EventError::status`] (401 when verification failed, 400
//! for a body that is not an envelope, 422 for an event the type does not know or data of the
//! wrong shape) and a one-line plain-text body. A handler that wants to see refused requests
//! (to log them, or to answer 2xx to events it does not know) takes
//! `Result<VerifiedEvent<T>, Rejection>`.

use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::{Event, EventError, Verifier, WebhookEvent};

/// A verified, parsed event: the signature and timestamp checked with the state's
/// [`Verifier`], the body read into `T` by its event name ([`Verifier::event`]).
///
/// The state `S` provides the verifier through [`FromRef`] (a clone per request); a state that
/// *is* a `Verifier` works as is. Refused requests are answered by [`Rejection`].
#[derive(Debug)]
pub struct VerifiedEvent<T>(pub Event<T>);

impl<T, S> FromRequest<S> for VerifiedEvent<T>
where
    T: WebhookEvent + DeserializeOwned,
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        // The signature headers outlive the request, which reading the body consumes.
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(Rejection::body)?;
        match verifier.event(&headers, &body) {
            Ok(event) => Ok(VerifiedEvent(event)),
            Err(error) => Err(Rejection::event(error, body)),
        }
    }
}

/// A body whose signature and timestamp the state's [`Verifier`] accepted
/// ([`Verifier::verify_headers`]), not parsed: for a receiver that takes any event, or keeps
/// the exact bytes.
#[derive(Debug, Clone)]
pub struct VerifiedBody(pub Bytes);

impl<S> FromRequest<S> for VerifiedBody
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        // The signature headers outlive the request, which reading the body consumes.
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(Rejection::body)?;
        match verifier.verify_headers(&headers, &body) {
            Ok(()) => Ok(VerifiedBody(body)),
            Err(error) => Err(Rejection::event(EventError::Verify(error), body)),
        }
    }
}

/// Why [`VerifiedEvent`] or [`VerifiedBody`] refused a request; as a response, its status and a
/// one-line plain-text reason.
#[derive(Debug)]
pub struct Rejection {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The body could not be read, or is over the size limit.
    Body(BytesRejection),
    /// The body was read; verifying or parsing it failed.
    Event { error: EventError, body: Bytes },
}

impl Rejection {
    fn body(rejection: BytesRejection) -> Self {
        Rejection {
            kind: Kind::Body(rejection),
        }
    }

    fn event(error: EventError, body: Bytes) -> Self {
        Rejection {
            kind: Kind::Event { error, body },
        }
    }

    /// The status to answer with: [`EventError::status`] (401, 400, 422), or axum's for a body
    /// that could not be read (413 over the size limit).
    pub fn status(&self) -> http::StatusCode {
        match &self.kind {
            Kind::Body(rejection) => rejection.status(),
            Kind::Event { error, .. } => error.status(),
        }
    }

    /// The verification or parse error; `None` when the body could not be read.
    pub fn event_error(&self) -> Option<&EventError> {
        match &self.kind {
            Kind::Body(_) => None,
            Kind::Event { error, .. } => Some(error),
        }
    }

    /// The body that was refused, to log it; `None` when it could not be read.
    pub fn refused_body(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Body(_) => None,
            Kind::Event { body, .. } => Some(body),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Body(rejection) => write!(f, "{}", rejection.body_text()),
            Kind::Event { error, .. } if error.is_verify() => {
                write!(f, "invalid webhook signature: {error}")
            }
            Kind::Event { error, .. } => write!(f, "invalid webhook: {error}"),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Body(rejection) => Some(rejection),
            Kind::Event { error, .. } => Some(error),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.status(), format!("{self}\n")).into_response()
    }
}

#[cfg(test)]
mod tests;
