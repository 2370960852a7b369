//! The JSON the API answers: subscriptions (never their secrets), deliveries, attempts, event
//! types; and the helpers that answer it.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::time::rfc3339;
use crate::{Attempt, CatalogEvent, Delivery, DisableReason, Labels, Subscription};

/// `value` as `application/json` with `status`.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A list answer: `{"items": [...]}`.
pub(crate) fn items(items: Vec<Value>) -> Response {
    json(StatusCode::OK, &json!({ "items": items }))
}

pub(crate) fn labels(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect(),
    )
}

/// A subscription as a tenant sees it: no secret, no headers, no retry internals.
pub(crate) fn subscription(subscription: &Subscription) -> Value {
    let disabled = subscription.disabled().map(|disabled| {
        let reason = match disabled.reason {
            DisableReason::Manual => "manual",
            DisableReason::Gone => "gone",
            DisableReason::FailingSince(_) => "failing",
            DisableReason::ConsecutiveExhausted(_) => "exhausted",
        };
        json!({
            "at": rfc3339(disabled.at),
            "reason": reason,
            "detail": disabled.reason.to_string(),
        })
    });
    json!({
        "id": subscription.id().to_string(),
        "url": subscription.url().as_str(),
        "events": subscription.event_patterns(),
        "description": subscription.description_text(),
        "labels": labels(subscription.labels()),
        "enabled": subscription.is_enabled(),
        "disabled": disabled,
        "rate_limit": subscription.rate_limit_per_second(),
        "created_at": rfc3339(subscription.created_at()),
    })
}

/// A subscription with its signing secret: only right after creation or rotation.
pub(crate) fn subscription_with_secret(subscription: &Subscription) -> Value {
    let mut value = self::subscription(subscription);
    value["secret"] = Value::from(subscription.signing_secret().expose());
    value
}

pub(crate) fn delivery(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.id.to_string(),
        "message_id": delivery.message_id.to_string(),
        "subscription_id": delivery.subscription_id.to_string(),
        "event_type": delivery.event_type,
        "status": delivery.status.as_str(),
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.map(rfc3339),
        "created_at": rfc3339(delivery.created_at),
        "last_attempt_at": delivery.last_attempt_at.map(rfc3339),
    })
}

pub(crate) fn attempt(attempt: &Attempt) -> Value {
    json!({
        "number": attempt.number,
        "at": rfc3339(attempt.at),
        "latency_ms": u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX),
        "status_code": attempt.status_code,
        "succeeded": attempt.succeeded(),
        "error": attempt.error.map(|kind| kind.as_str()),
        "error_message": attempt.error_message,
        "response_body": String::from_utf8_lossy(&attempt.response_body),
    })
}

pub(crate) fn event_type(event: &CatalogEvent) -> Value {
    json!({
        "name": event.name(),
        "description": event.description(),
        "deprecated": event.deprecated(),
        "schema": event.data_schema(),
        "example": event.example_body(),
    })
}
