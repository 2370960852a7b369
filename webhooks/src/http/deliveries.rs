//! The delivery log's endpoints: list (filtered, paged with cursors), read with the payload,
//! the attempts, redeliver.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Shared;
use super::body::PathId;
use super::problem::Problem;
use super::subscriptions::owned;
use super::tenant::{Caller, Tenant};
use super::views;
use crate::{Cursor, Delivery, DeliveryId, DeliveryQuery, DeliveryStatus};

/// The page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
const MAX_LIMIT: usize = 1000;

/// `GET /deliveries`: the tenant's deliveries (to its subscriptions), newest first.
pub(crate) async fn list(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let mut query = DeliveryQuery::new().limit(DEFAULT_LIMIT);
    // Confined to the tenant's subscriptions in the store's own query, so pages are full.
    for (name, value) in tenant.labels().iter() {
        query = query.subscription_label(name, value);
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        if name != "status" && seen.iter().any(|s| *s == name) {
            return Err(Problem::invalid_query(format!("`{name}` is given twice")));
        }
        seen.push(name.to_string());
        query = match &*name {
            "subscription" => {
                let id = value.parse().map_err(|_| {
                    Problem::invalid_query(format!(
                        "`subscription` is not a subscription id: {value:?}"
                    ))
                })?;
                // Another tenant's subscription is as unknown as a missing one.
                owned(&api, &tenant, &value).await?;
                query.subscription(id)
            }
            "status" => {
                let mut query = query;
                for name in value.split(',') {
                    query = query.status(status(name)?);
                }
                query
            }
            "event" => query.event_type(value.into_owned()),
            "since" => {
                let since = time("since", &value)?;
                DeliveryQuery {
                    since: Some(since),
                    ..query
                }
            }
            "until" => {
                let until = time("until", &value)?;
                DeliveryQuery {
                    until: Some(until),
                    ..query
                }
            }
            "after" => query.after(value.parse::<Cursor>().map_err(|_| {
                Problem::invalid_query(format!(
                    "`after` is not a cursor (the `next` of a previous page): {value:?}"
                ))
            })?),
            "limit" => match value.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => query.limit(limit),
                _ => {
                    return Err(Problem::invalid_query(format!(
                        "`limit` must be a whole number from 1 to {MAX_LIMIT}: {value:?}"
                    )));
                }
            },
            other => {
                return Err(Problem::invalid_query(format!(
                    "unknown query parameter `{other}`; known: subscription, status, event, \
                     since, until, after, limit"
                )));
            }
        };
    }
    let page = api.hooks.delivery_log(&query).await?;
    // The store gives a cursor after every full page; a client is told of a next page only
    // when there is one (one more look, only after a full page).
    let next = match page.next {
        Some(cursor) => {
            let rest = api
                .hooks
                .delivery_log(&query.limit(1).after(cursor))
                .await?;
            (!rest.items.is_empty()).then_some(cursor)
        }
        None => None,
    };
    let items: Vec<Value> = page.items.iter().map(views::delivery).collect();
    Ok(views::json(
        StatusCode::OK,
        &json!({ "items": items, "next": next.map(|c| c.to_string()) }),
    ))
}

/// `GET /deliveries/{id}`: the delivery and the body it carries.
pub(crate) async fn read(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let delivery = owned_delivery(&api, &tenant, &id).await?;
    let mut value = views::delivery(&delivery);
    let message = api.hooks.message(delivery.message_id).await?;
    value["payload"] = match message {
        Some(message) => serde_json::from_slice(message.body())
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(message.body()).into_owned())),
        None => Value::Null,
    };
    Ok(views::json(StatusCode::OK, &value))
}

/// `GET /deliveries/{id}/attempts`: first first, with the responses.
pub(crate) async fn attempts(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let delivery = owned_delivery(&api, &tenant, &id).await?;
    let attempts = api.hooks.attempts(delivery.id).await?;
    Ok(views::items(attempts.iter().map(views::attempt).collect()))
}

/// `POST /deliveries/{id}/redeliver`: one more attempt, now.
pub(crate) async fn redeliver(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let delivery = owned_delivery(&api, &tenant, &id).await?;
    let delivery = api.hooks.redeliver(delivery.id).await?;
    Ok(views::json(
        StatusCode::ACCEPTED,
        &views::delivery(&delivery),
    ))
}

/// The tenant's delivery `id`: to one of its subscriptions. Anything else is the same 404.
async fn owned_delivery(api: &Shared, tenant: &Tenant, id: &str) -> Result<Delivery, Problem> {
    let not_found = || Problem::not_found("delivery");
    let parsed: DeliveryId = id.parse().map_err(|_| not_found())?;
    let delivery = api.hooks.delivery(parsed).await?.ok_or_else(not_found)?;
    match api.hooks.subscription(delivery.subscription_id).await {
        Ok(subscription) if tenant.owns(subscription.labels()) => Ok(delivery),
        Ok(_) => Err(not_found()),
        Err(error) if error.is_not_found() => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

fn status(name: &str) -> Result<DeliveryStatus, Problem> {
    const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Exhausted,
        DeliveryStatus::Skipped,
    ];
    ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
        Problem::invalid_query(format!(
            "unknown `status` {name:?}; known: pending, in_flight, delivered, failed, exhausted, skipped"
        ))
    })
}

fn time(field: &str, text: &str) -> Result<std::time::SystemTime, Problem> {
    crate::time::parse_rfc3339(text).ok_or_else(|| {
        Problem::invalid_query(format!("`{field}` is not an RFC 3339 time: {text:?}"))
    })
}
