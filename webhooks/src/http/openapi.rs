//! The OpenAPI 3.1 document of the management API, served at `GET /openapi.json`. Written by
//! hand beside the handlers it describes; a test validates it and checks it lists every route.

use std::sync::OnceLock;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::problem::ProblemType;
use super::views;

pub(crate) async fn serve() -> Response {
    views::json(StatusCode::OK, document())
}

/// The document (the same for every router: it describes the API, not the data).
pub(crate) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, name: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(name) } },
    })
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": schema("Problem") } },
    })
}

/// The error answers every tenant operation may give, plus `extra` (status, description).
fn responses(success: (&str, Value), extra: &[(&str, &str)]) -> Value {
    let mut responses = json!({
        "401": problem("No tenant recognised in the request."),
        "500": problem("The store failed."),
        "503": problem("The webhooks runtime is shut down."),
    });
    responses[success.0] = success.1;
    for (status, description) in extra {
        responses[*status] = problem(description);
    }
    responses
}

fn id_parameter(what: &str) -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": format!("The {what}'s id."),
        "schema": { "type": "string" },
    })
}

fn json_body(name: &str, required: bool) -> Value {
    json!({
        "required": required,
        "content": { "application/json": { "schema": schema(name) } },
    })
}

fn operation(id: &str, summary: &str, responses: Value) -> Value {
    json!({ "operationId": id, "summary": summary, "responses": responses })
}

fn with(mut operation: Value, key: &str, value: Value) -> Value {
    operation[key] = value;
    operation
}

const NOT_FOUND: (&str, &str) = (
    "404",
    "No such id, or one of another tenant: the two are answered alike.",
);
const BAD_BODY: (&str, &str) = ("400", "The body is not JSON of the expected shape.");
const TOO_LARGE: (&str, &str) = ("413", "The body is larger than the router's limit.");
const CROSS_SITE: (&str, &str) = (
    "403",
    "Labels not owned, or a browser request from another site.",
);
const INVALID: (&str, &str) = (
    "422",
    "The subscription is invalid, or its URL is refused by the network policy.",
);
const DISABLED: (&str, &str) = (
    "409",
    "The subscription is disabled, or the delivery is in flight.",
);

fn build() -> Value {
    let sub_id = id_parameter("subscription");
    let dlv_id = id_parameter("delivery");
    let on_subscription = |op: Value| with(op, "parameters", json!([sub_id.clone()]));
    let on_delivery = |op: Value| with(op, "parameters", json!([dlv_id.clone()]));
    let query = |name: &str, description: &str| {
        json!({ "name": name, "in": "query", "required": false, "description": description,
                "schema": { "type": "string" } })
    };
    let problem_types: Vec<Value> = ProblemType::ALL
        .iter()
        .map(|kind| Value::from(kind.uri()))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Webhooks management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Register endpoints, pick events, see what was sent and replay it. \
                Every operation is confined to the tenant the application recognises in the \
                request: an id of another tenant answers as an unknown one.",
        },
        "servers": [{ "url": ".", "description": "Where the application mounts the router." }],
        "paths": {
            "/subscriptions": {
                "get": operation("listSubscriptions", "The tenant's subscriptions, oldest first.",
                    responses(("200", ok("The subscriptions.", "SubscriptionList")), &[])),
                "post": with(operation("createSubscription", "Registers an endpoint.",
                    responses(("201", ok("Created; the secret is answered this once.", "SubscriptionWithSecret")),
                        &[BAD_BODY, CROSS_SITE, TOO_LARGE, INVALID])),
                    "requestBody", json_body("NewSubscription", true)),
            },
            "/subscriptions/{id}": {
                "get": on_subscription(operation("getSubscription", "One subscription (never its secret).",
                    responses(("200", ok("The subscription.", "Subscription")), &[NOT_FOUND]))),
                "patch": on_subscription(with(operation("updateSubscription",
                    "Changes the URL, events, description or rate limit; absent fields are kept, null clears.",
                    responses(("200", ok("The subscription as stored.", "Subscription")),
                        &[BAD_BODY, CROSS_SITE, NOT_FOUND, TOO_LARGE, INVALID])),
                    "requestBody", json_body("SubscriptionChange", true))),
                "delete": on_subscription(operation("deleteSubscription", "Deletes it, with its deliveries.",
                    responses(("204", json!({ "description": "Deleted." })), &[CROSS_SITE, NOT_FOUND]))),
            },
            "/subscriptions/{id}/enable": {
                "post": on_subscription(operation("enableSubscription", "Resumes deliveries.",
                    responses(("200", ok("The subscription.", "Subscription")), &[CROSS_SITE, NOT_FOUND]))),
            },
            "/subscriptions/{id}/disable": {
                "post": on_subscription(operation("disableSubscription", "Stops deliveries; pending ones are skipped.",
                    responses(("200", ok("The subscription.", "Subscription")), &[CROSS_SITE, NOT_FOUND]))),
            },
            "/subscriptions/{id}/rotate-secret": {
                "post": on_subscription(operation("rotateSecret",
                    "A new signing secret, answered this once; the previous one signs beside it for the rotation overlap.",
                    responses(("200", ok("The subscription with its new secret.", "SubscriptionWithSecret")),
                        &[BAD_BODY, CROSS_SITE, NOT_FOUND]))),
            },
            "/subscriptions/{id}/test": {
                "post": on_subscription(with(operation("sendTestEvent",
                    "Sends the catalog's example of an event to this subscription alone.",
                    responses(("202", ok("The test message's delivery.", "Delivery")),
                        &[BAD_BODY, CROSS_SITE, NOT_FOUND, DISABLED,
                          ("422", "No example of that event in the catalog.")])),
                    "requestBody", json_body("TestEvent", false))),
            },
            "/subscriptions/{id}/recover": {
                "post": on_subscription(with(operation("recoverSubscription",
                    "Re-enables the subscription and requeues its exhausted and skipped deliveries created in [since, until).",
                    responses(("202", ok("How many were requeued.", "Recovered")),
                        &[BAD_BODY, CROSS_SITE, NOT_FOUND])),
                    "requestBody", json_body("Recover", true))),
            },
            "/event-types": {
                "get": operation("listEventTypes", "The events an endpoint can receive.",
                    responses(("200", ok("The catalog.", "EventTypeList")), &[])),
            },
            "/deliveries": {
                "get": with(operation("listDeliveries", "The delivery log, newest first.",
                    responses(("200", ok("A page of deliveries.", "DeliveryPage")),
                        &[("400", "A query parameter is malformed or out of range."), NOT_FOUND])),
                    "parameters", json!([
                        query("subscription", "Only this subscription's."),
                        query("status", "Only these statuses, comma-separated: pending, in_flight, delivered, failed, exhausted, skipped."),
                        query("event", "Only this event type."),
                        query("since", "Only deliveries created at or after this RFC 3339 time."),
                        query("until", "Only deliveries created before this RFC 3339 time."),
                        query("after", "The `next` cursor of the previous page."),
                        { "name": "limit", "in": "query", "required": false,
                          "description": "At most this many (default 50).",
                          "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                    ])),
            },
            "/deliveries/{id}": {
                "get": on_delivery(operation("getDelivery", "One delivery, with the body it carries.",
                    responses(("200", ok("The delivery.", "DeliveryDetail")), &[NOT_FOUND]))),
            },
            "/deliveries/{id}/attempts": {
                "get": on_delivery(operation("listAttempts", "Its attempts, first first, with the responses.",
                    responses(("200", ok("The attempts.", "AttemptList")), &[NOT_FOUND]))),
            },
            "/deliveries/{id}/redeliver": {
                "post": on_delivery(operation("redeliver", "One more attempt, now.",
                    responses(("202", ok("The delivery, pending.", "Delivery")), &[CROSS_SITE, NOT_FOUND, DISABLED]))),
            },
            "/openapi.json": {
                "get": operation("getOpenApi", "This document.",
                    json!({ "200": { "description": "OpenAPI 3.1.", "content": { "application/json": {} } } })),
            },
            "/portal": {
                "get": operation("getPortal", "The customer portal page.",
                    json!({ "200": { "description": "HTML.", "content": { "text/html": {} } } })),
            },
        },
        "components": { "schemas": schemas(problem_types) },
    })
}

fn schemas(problem_types: Vec<Value>) -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let nullable_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let events = json!({
        "type": "array", "minItems": 1, "maxItems": 100,
        "items": { "type": "string", "description": "An event type, `resource:*`, or `*`." },
    });
    let labels = json!({
        "type": "object", "additionalProperties": { "type": "string" },
        "description": "Only labels the tenant owns; the subscription gets them anyway.",
    });
    let subscription = json!({
        "type": "object",
        "required": ["id", "url", "events", "description", "labels", "enabled", "disabled", "rate_limit", "created_at"],
        "properties": {
            "id": { "type": "string" },
            "url": { "type": "string", "format": "uri" },
            "events": events,
            "description": { "type": ["string", "null"] },
            "labels": { "type": "object", "additionalProperties": { "type": "string" } },
            "enabled": { "type": "boolean" },
            "disabled": {
                "oneOf": [
                    { "type": "null" },
                    { "type": "object", "required": ["at", "reason", "detail"], "properties": {
                        "at": time,
                        "reason": { "enum": ["manual", "gone", "failing", "exhausted"] },
                        "detail": { "type": "string" },
                    } },
                ],
            },
            "rate_limit": { "type": ["integer", "null"], "minimum": 1, "description": "Requests per second at most." },
            "created_at": time,
        },
    });
    let mut with_secret = subscription.clone();
    if let Some(required) = with_secret["required"].as_array_mut() {
        required.push(Value::from("secret"));
    }
    with_secret["properties"]["secret"] = json!({ "type": "string", "description": "The signing secret, `whsec_…`: shown this once." });
    let delivery = json!({
        "type": "object",
        "required": ["id", "message_id", "subscription_id", "event_type", "status", "attempts", "next_attempt_at", "created_at", "last_attempt_at"],
        "properties": {
            "id": { "type": "string" },
            "message_id": { "type": "string" },
            "subscription_id": { "type": "string" },
            "event_type": { "type": "string" },
            "status": { "enum": ["pending", "in_flight", "delivered", "failed", "exhausted", "skipped"] },
            "attempts": { "type": "integer", "minimum": 0 },
            "next_attempt_at": nullable_time,
            "created_at": time,
            "last_attempt_at": nullable_time,
        },
    });
    let mut detail = delivery.clone();
    detail["properties"]["payload"] =
        json!({ "description": "The body sent (JSON), or null once purged." });
    json!({
        "Subscription": subscription,
        "SubscriptionWithSecret": with_secret,
        "SubscriptionList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema("Subscription") } } },
        "NewSubscription": {
            "type": "object", "required": ["url", "events"], "additionalProperties": false,
            "properties": {
                "url": { "type": "string", "format": "uri" },
                "events": events,
                "description": { "type": ["string", "null"], "maxLength": 1000 },
                "labels": labels,
                "rate_limit": { "type": ["integer", "null"], "minimum": 1 },
            },
        },
        "SubscriptionChange": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "url": { "type": "string", "format": "uri" },
                "events": events,
                "description": { "type": ["string", "null"], "maxLength": 1000 },
                "labels": labels,
                "rate_limit": { "type": ["integer", "null"], "minimum": 1 },
            },
        },
        "TestEvent": { "type": "object", "additionalProperties": false,
            "properties": { "event_type": { "type": "string" } } },
        "Recover": { "type": "object", "required": ["since"], "additionalProperties": false,
            "properties": { "since": time, "until": time } },
        "Recovered": { "type": "object", "required": ["requeued"],
            "properties": { "requeued": { "type": "integer", "minimum": 0 } } },
        "EventType": {
            "type": "object", "required": ["name", "description", "deprecated", "schema", "example"],
            "properties": {
                "name": { "type": "string" },
                "description": { "type": ["string", "null"] },
                "deprecated": { "type": ["string", "null"], "description": "A note when deprecated (may be empty)." },
                "schema": { "description": "The JSON Schema of the event's data, or null." },
                "example": { "description": "An example body, or null." },
            },
        },
        "EventTypeList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema("EventType") } } },
        "Delivery": delivery,
        "DeliveryDetail": detail,
        "DeliveryPage": { "type": "object", "required": ["items", "next"],
            "properties": {
                "items": { "type": "array", "items": schema("Delivery") },
                "next": { "type": ["string", "null"], "description": "Pass as `after` for the next page." },
            } },
        "Attempt": {
            "type": "object",
            "required": ["number", "at", "latency_ms", "status_code", "succeeded", "error", "error_message", "response_body"],
            "properties": {
                "number": { "type": "integer", "minimum": 1 },
                "at": time,
                "latency_ms": { "type": "integer", "minimum": 0 },
                "status_code": { "type": ["integer", "null"] },
                "succeeded": { "type": "boolean" },
                "error": { "enum": ["status", "timeout", "connect", "blocked", "request", null] },
                "error_message": { "type": ["string", "null"] },
                "response_body": { "type": "string", "description": "What the endpoint answered (lossy UTF-8, truncated)." },
            },
        },
        "AttemptList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema("Attempt") } } },
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": { "enum": problem_types },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
            },
        },
    })
}
