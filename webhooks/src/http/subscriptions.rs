//! The subscription endpoints: list, create, read, change, delete, enable, disable, rotate the
//! secret, send a test event, recover; and the event types a subscription can pick from.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::body::{JsonBody, PathId};
use super::problem::{Problem, ProblemType};
use super::tenant::{Caller, Tenant};
use super::views;
use crate::{EventPattern, Message, Subscription, SubscriptionId, WebhookEvent};

/// The most event patterns one subscription may list through the API.
const MAX_EVENTS: usize = 100;
/// The longest description accepted, in characters.
const MAX_DESCRIPTION: usize = 1000;

/// `POST /subscriptions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSubscription {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<u32>,
}

/// `PATCH /subscriptions/{id}`: absent fields are kept; `null` clears the optional ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriptionChange {
    #[serde(default, deserialize_with = "not_null")]
    url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<u32>>,
}

/// A field that is present, `null` or not: `Some(None)` for `null` (absent is the default,
/// `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A field that may be absent (`None`) but not `null`: there is nothing to clear.
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `POST /subscriptions/{id}/rotate-secret`: nothing to say yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Empty {}

/// `POST /subscriptions/{id}/test`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestEvent {
    #[serde(default)]
    event_type: Option<String>,
}

/// `POST /subscriptions/{id}/recover`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Recover {
    since: String,
    #[serde(default)]
    until: Option<String>,
}

/// The tenant's subscription `id`; another tenant's, an unknown id and a malformed one all
/// answer the same 404.
pub(crate) async fn owned(
    api: &Shared,
    tenant: &Tenant,
    id: &str,
) -> Result<Subscription, Problem> {
    let not_found = || Problem::not_found("subscription");
    let parsed: SubscriptionId = id.parse().map_err(|_| not_found())?;
    match api.hooks.subscription(parsed).await {
        Ok(subscription) if tenant.owns(subscription.labels()) => Ok(subscription),
        Ok(_) => Err(not_found()),
        Err(error) if error.is_not_found() => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

/// Refuses labels the tenant does not own; the subscription gets the tenant's labels anyway.
fn check_labels(tenant: &Tenant, labels: Option<&BTreeMap<String, String>>) -> Result<(), Problem> {
    let foreign: Vec<String> = labels
        .into_iter()
        .flatten()
        .filter(|(name, value)| tenant.labels().get(name) != Some(value.as_str()))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemType::LabelsNotOwned,
            format!("this tenant does not own the labels {}", foreign.join(", ")),
        ))
    }
}

fn check_events(events: &[String]) -> Result<(), Problem> {
    let invalid = |detail: String| Problem::new(ProblemType::InvalidSubscription, detail);
    if events.is_empty() {
        return Err(invalid(
            "`events` must list at least one event type or pattern (`*` for every event)".into(),
        ));
    }
    if events.len() > MAX_EVENTS {
        return Err(invalid(format!(
            "`events` lists more than {MAX_EVENTS} patterns"
        )));
    }
    Ok(())
}

fn check_description(description: Option<&str>) -> Result<(), Problem> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(Problem::new(
            ProblemType::InvalidSubscription,
            format!("`description` is longer than {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

fn with_url(mut subscription: Subscription, url: &str) -> Result<Subscription, Problem> {
    // `Subscription::new` checks the URL the one way it is checked everywhere.
    subscription.url = Subscription::new(url)?.url;
    Ok(subscription)
}

/// The network policy's verdict on a URL, its host name resolved: `subscribe` checks address
/// literals only, but a customer's `http://localhost.example/` is refused here, while they
/// wait. A name that does not resolve (yet) is accepted: each delivery resolves and checks it
/// again.
async fn check_resolved(api: &Shared, url: &url::Url) -> Result<(), Problem> {
    let policy = api.hooks.shared().config.network.clone();
    match crate::ssrf::GuardedResolver::new(policy)
        .check_url(url)
        .await
    {
        Ok(_) | Err(crate::ssrf::Blocked::Resolve { .. }) => Ok(()),
        Err(blocked) => Err(crate::Error::Blocked(blocked).into()),
    }
}

pub(crate) async fn list(
    State(api): State<Shared>,
    Caller(tenant): Caller,
) -> Result<Response, Problem> {
    let subscriptions = api.hooks.subscriptions().await?;
    Ok(views::items(
        subscriptions
            .iter()
            .filter(|s| tenant.owns(s.labels()))
            .map(views::subscription)
            .collect(),
    ))
}

pub(crate) async fn create(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    JsonBody(body): JsonBody<NewSubscription>,
) -> Result<Response, Problem> {
    check_labels(&tenant, body.labels.as_ref())?;
    check_events(&body.events)?;
    check_description(body.description.as_deref())?;
    let mut subscription = Subscription::new(&body.url)?.events(body.events);
    check_resolved(&api, subscription.url()).await?;
    for (name, value) in tenant.labels().iter() {
        subscription = subscription.label(name, value);
    }
    if let Some(description) = body.description {
        subscription = subscription.description(description);
    }
    if let Some(rate) = body.rate_limit {
        subscription = subscription.rate_limit(rate);
    }
    let stored = api.hooks.subscribe(subscription).await?;
    let mut response = views::json(
        StatusCode::CREATED,
        &views::subscription_with_secret(&stored),
    );
    if let Ok(location) = http::HeaderValue::try_from(format!("subscriptions/{}", stored.id())) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

pub(crate) async fn read(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    Ok(views::json(
        StatusCode::OK,
        &views::subscription(&subscription),
    ))
}

pub(crate) async fn change(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<SubscriptionChange>,
) -> Result<Response, Problem> {
    let mut subscription = owned(&api, &tenant, &id).await?;
    check_labels(&tenant, body.labels.as_ref())?;
    if let Some(url) = &body.url {
        subscription = with_url(subscription, url)?;
        check_resolved(&api, subscription.url()).await?;
    }
    if let Some(events) = body.events {
        check_events(&events)?;
        subscription = subscription.events(events);
    }
    if let Some(description) = body.description {
        check_description(description.as_deref())?;
        subscription.description = description;
    }
    if let Some(rate) = body.rate_limit {
        subscription.rate_limit = rate;
    }
    // Deleted meanwhile: the same answer as any unknown id (`From<Error>`).
    let stored = api.hooks.update(subscription).await?;
    Ok(views::json(StatusCode::OK, &views::subscription(&stored)))
}

pub(crate) async fn delete(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    api.hooks.delete(subscription.id()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn enable(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    let stored = api.hooks.enable(subscription.id()).await?;
    Ok(views::json(StatusCode::OK, &views::subscription(&stored)))
}

pub(crate) async fn disable(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    let stored = api.hooks.disable(subscription.id()).await?;
    Ok(views::json(StatusCode::OK, &views::subscription(&stored)))
}

pub(crate) async fn rotate_secret(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
    JsonBody(Empty {}): JsonBody<Empty>,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    let stored = api.hooks.rotate_secret(subscription.id(), None).await?;
    Ok(views::json(
        StatusCode::OK,
        &views::subscription_with_secret(&stored),
    ))
}

pub(crate) async fn test(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<TestEvent>,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    let shared = api.hooks.shared();
    let no_example = |detail: String| Problem::new(ProblemType::NoExample, detail);
    let catalog = shared
        .catalog()
        .ok_or_else(|| no_example("this application publishes no catalog of events".into()))?;
    let patterns: Vec<EventPattern> = subscription
        .event_patterns()
        .iter()
        .filter_map(|p| EventPattern::parse(p).ok())
        .collect();
    let event = match &body.event_type {
        Some(name) => catalog
            .events()
            .iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| no_example(format!("no event type {name:?} in the catalog")))?,
        None => catalog
            .events()
            .iter()
            .find(|e| e.example().is_some() && patterns.iter().any(|p| p.matches(e.name())))
            .ok_or_else(|| {
                no_example(
                    "the catalog has no example of an event this subscription receives".into(),
                )
            })?,
    };
    let data = event
        .example()
        .ok_or_else(|| no_example(format!("the catalog has no example of {:?}", event.name())))?;
    let message = Message::with_envelope(
        &Example {
            name: event.static_name(),
            data: &data,
        },
        shared.config.envelope,
    )?;
    let sent = api.hooks.send_to(subscription.id(), &message).await?;
    let deliveries = api.hooks.deliveries(sent).await?;
    let delivery = deliveries
        .iter()
        .find(|d| d.subscription_id == subscription.id())
        .ok_or_else(|| Problem::new(ProblemType::Internal, "the test message has no delivery"))?;
    Ok(views::json(
        StatusCode::ACCEPTED,
        &views::delivery(delivery),
    ))
}

pub(crate) async fn recover(
    State(api): State<Shared>,
    Caller(tenant): Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<Recover>,
) -> Result<Response, Problem> {
    let subscription = owned(&api, &tenant, &id).await?;
    let time = |field: &str, text: &str| {
        crate::time::parse_rfc3339(text).ok_or_else(|| {
            Problem::invalid_body(format!("`{field}` is not an RFC 3339 time: {text:?}"))
        })
    };
    let since = time("since", &body.since)?;
    let until = match &body.until {
        Some(text) => time("until", text)?,
        None => std::time::SystemTime::now(),
    };
    if since > until {
        return Err(Problem::invalid_body("`since` is after `until`"));
    }
    let requeued = api.hooks.recover(subscription.id(), since, until).await?;
    Ok(views::json(
        StatusCode::ACCEPTED,
        &json!({ "requeued": requeued }),
    ))
}

pub(crate) async fn event_types(State(api): State<Shared>, Caller(_): Caller) -> Response {
    let events = api
        .hooks
        .shared()
        .catalog()
        .map(|catalog| catalog.events().iter().map(views::event_type).collect())
        .unwrap_or_default();
    views::items(events)
}

/// A catalog example, sent as the event it illustrates.
struct Example<'a> {
    name: &'static str,
    data: &'a Value,
}

impl WebhookEvent for Example<'_> {
    const EVENT_TYPES: &'static [&'static str] = &[];

    fn event_type(&self) -> &'static str {
        self.name
    }

    fn serialize_data<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(self.data, serializer)
    }
}
