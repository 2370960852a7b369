//! What the SQL stores (`SqliteStore`, `PostgresStore`) share: how records are encoded into
//! columns and decoded from them, how the delivery log shows a delivery's status and filters
//! deliveries ([`push_log_filter`]), and the errors. One copy, so that the two databases cannot
//! drift apart in what they store or show (which is also why it is one file past 600 lines).
//!
//! What really differs stays with each store: the SQL, the connections (rusqlite for SQLite,
//! sqlx for PostgreSQL), reading a row's columns ([`Columns`]) and the log filter's few
//! database-specific words ([`LogSql`]): SQLite stores ids as blobs and types columns loosely,
//! PostgreSQL stores `uuid`s and types columns strictly. What names sqlx is built with feature
//! `postgres` only.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
#[cfg(feature = "postgres")]
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{
    Attempt, AttemptErrorKind, AttemptOutcome, Claim, Cursor, Delivery, DeliveryQuery,
    DeliveryStatus, Entity, LeaseId, Page, StoreError,
};
use crate::retry::Kind;
use crate::subscription::{DisableReason, Disabled};
use crate::time::{from_unix_millis, unix_millis};
use crate::{
    DeliveryId, Labels, Message, MessageId, RetryPolicy, Secret, Subscription, SubscriptionId,
};

// ---------------------------------------------------------------------------------------------
// Errors and plain values
// ---------------------------------------------------------------------------------------------

/// A stored value that does not decode (the database was changed by something else).
#[derive(Debug, thiserror::Error)]
#[error("the webhook store holds an invalid {what}: {detail}")]
struct Corrupt {
    what: &'static str,
    detail: String,
}

/// A database failure.
#[cfg(feature = "postgres")]
pub(super) fn db(error: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// A stored `what` that does not decode, and why.
pub(super) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(Box::new(Corrupt {
        what,
        detail: detail.to_string(),
    }))
}

/// No `entity` with this id.
pub(super) fn not_found(entity: Entity, id: impl ToString) -> StoreError {
    StoreError::not_found(entity, id)
}

/// An `entity` with this id exists already, or (a delivery) is in flight: `reason` says which.
pub(super) fn conflict(entity: Entity, id: impl ToString, reason: &'static str) -> StoreError {
    StoreError::conflict(entity, id, reason)
}

/// A time as stored: whole unix milliseconds.
pub(super) fn millis(time: SystemTime) -> i64 {
    unix_millis(time)
}

/// Whole milliseconds, rounded up: a lease stored this way never lapses early, and a bound
/// rounded this way holds exactly against whole-millisecond creation times.
pub(super) fn millis_ceil(time: SystemTime) -> i64 {
    let floor = unix_millis(time);
    if from_unix_millis(floor) < time {
        floor.saturating_add(1)
    } else {
        floor
    }
}

/// A count or limit as an SQL integer, saturating (nothing counted comes near).
pub(super) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A value as stored in a JSON column.
pub(super) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// A value from a JSON column's text; `what` names it if it does not parse.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

// ---------------------------------------------------------------------------------------------
// Reading rows
// ---------------------------------------------------------------------------------------------

/// Reading a column as any type sqlx decodes, a failure being a database error: for the stores'
/// own reads, beside [`Columns`].
#[cfg(feature = "postgres")]
pub(super) trait RowExt: sqlx::Row {
    /// Column `index`.
    fn col<'r, T>(&'r self, index: usize) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Self::Database> + sqlx::Type<Self::Database>,
        usize: sqlx::ColumnIndex<Self>,
    {
        sqlx::Row::try_get(self, index).map_err(db)
    }
}

#[cfg(feature = "postgres")]
impl<R: sqlx::Row> RowExt for R {}

/// Reading one column of a result row: what the decoders below need, implemented by each store
/// for its row type. A value that cannot be read is a database error unless said otherwise.
pub(super) trait Columns {
    /// An id (SQLite: a 16-byte blob, corrupt if it is not one; PostgreSQL: a `uuid`).
    fn id(&self, index: usize) -> Result<Uuid, StoreError>;
    /// A text column.
    fn text(&self, index: usize) -> Result<String, StoreError>;
    /// A text column that may be NULL.
    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError>;
    /// A subscription's URL or JSON column, named `what`. SQLite columns hold values of any
    /// type, so there one that is not text is corrupt; PostgreSQL's are typed.
    fn subscription_text(&self, what: &'static str, index: usize) -> Result<String, StoreError>;
    /// An integer column.
    fn int(&self, index: usize) -> Result<i64, StoreError>;
    /// An integer column that may be NULL.
    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError>;
    /// An attempt's HTTP status, widened (PostgreSQL stores it as an `integer`, not a `bigint`).
    fn status_code(&self, index: usize) -> Result<Option<i64>, StoreError>;
    /// A boolean column (or expression).
    fn flag(&self, index: usize) -> Result<bool, StoreError>;
    /// A binary column.
    fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError>;

    /// A time column, in unix milliseconds.
    fn time(&self, index: usize) -> Result<SystemTime, StoreError> {
        Ok(from_unix_millis(self.int(index)?))
    }

    /// A time column that may be NULL.
    fn opt_time(&self, index: usize) -> Result<Option<SystemTime>, StoreError> {
        Ok(self.opt_int(index)?.map(from_unix_millis))
    }

    /// A count column; one that does not fit a `u32` is corrupt.
    fn u32(&self, index: usize) -> Result<u32, StoreError> {
        let n = self.int(index)?;
        u32::try_from(n).map_err(|e| corrupt("count", e))
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------------

/// A subscription's 15 columns as stored, in column order (`id, url, events, labels, secrets,
/// headers, ordered, rate_limit, max_in_flight, retry, description, created_at, disabled_at,
/// disabled_reason, disabled_detail`), for each store to bind.
pub(super) struct SubscriptionRow {
    /// `id`; each store binds it its own way.
    pub(super) id: Uuid,
    /// `url`.
    pub(super) url: String,
    /// `events`: JSON list of names.
    pub(super) events: String,
    /// `labels`: JSON object.
    pub(super) labels: String,
    /// `secrets`: JSON list of `[secret, expires unix millis or null]`.
    pub(super) secrets: String,
    /// `headers`: JSON list of `[name, value]`.
    pub(super) headers: String,
    /// `ordered`.
    pub(super) ordered: bool,
    /// `rate_limit`.
    pub(super) rate_limit: Option<i64>,
    /// `max_in_flight`.
    pub(super) max_in_flight: Option<i64>,
    /// `retry`: [`retry_to_stored`].
    pub(super) retry: Option<String>,
    /// `description`.
    pub(super) description: Option<String>,
    /// `created_at`.
    pub(super) created_at: i64,
    /// `disabled_at`, `disabled_reason`, `disabled_detail`: see [`disabled_parts`].
    pub(super) disabled_at: Option<i64>,
    /// See [`disabled_parts`].
    pub(super) disabled_reason: Option<&'static str>,
    /// See [`disabled_parts`].
    pub(super) disabled_detail: Option<i64>,
}

impl SubscriptionRow {
    /// `s` encoded.
    pub(super) fn new(s: &Subscription) -> Result<Self, StoreError> {
        let secrets: Vec<(String, Option<i64>)> = s
            .secrets
            .iter()
            .map(|(secret, until)| (secret.expose(), until.map(millis)))
            .collect();
        let (disabled_at, disabled_reason, disabled_detail) = disabled_parts(s.disabled.as_ref());
        Ok(SubscriptionRow {
            id: s.id.as_uuid(),
            url: s.url.as_str().to_owned(),
            events: json(&s.events)?,
            labels: json(&s.labels)?,
            secrets: json(&secrets)?,
            headers: json(&s.headers)?,
            ordered: s.ordered,
            rate_limit: s.rate_limit.map(i64::from),
            max_in_flight: s.max_in_flight.map(count),
            retry: s.retry.as_ref().map(retry_to_stored),
            description: s.description.clone(),
            created_at: millis(s.created_at),
            disabled_at,
            disabled_reason,
            disabled_detail,
        })
    }
}

/// How a disable is stored: when, the reason's name, and its detail (a time or a count).
pub(super) fn disabled_parts(
    disabled: Option<&Disabled>,
) -> (Option<i64>, Option<&'static str>, Option<i64>) {
    let Some(disabled) = disabled else {
        return (None, None, None);
    };
    let (reason, detail) = match &disabled.reason {
        DisableReason::Manual => ("manual", None),
        DisableReason::Gone => ("gone", None),
        DisableReason::FailingSince(since) => ("failing_since", Some(millis(*since))),
        DisableReason::ConsecutiveExhausted(n) => ("consecutive_exhausted", Some(i64::from(*n))),
    };
    (Some(millis(disabled.at)), Some(reason), detail)
}

/// The reason [`disabled_parts`] stored as this name and detail.
fn disable_reason(reason: Option<&str>, detail: Option<i64>) -> Result<DisableReason, StoreError> {
    Ok(match (reason, detail) {
        (Some("manual"), _) => DisableReason::Manual,
        (Some("gone"), _) => DisableReason::Gone,
        (Some("failing_since"), Some(since)) => {
            DisableReason::FailingSince(from_unix_millis(since))
        }
        (Some("consecutive_exhausted"), Some(n)) => DisableReason::ConsecutiveExhausted(
            u32::try_from(n).map_err(|e| corrupt("disable reason", e))?,
        ),
        (reason, detail) => {
            return Err(corrupt("disable reason", format!("{reason:?} {detail:?}")));
        }
    })
}

/// A JSON column of a subscription, named `what`.
fn subscription_json<T: serde::de::DeserializeOwned>(
    row: &impl Columns,
    index: usize,
    what: &'static str,
) -> Result<T, StoreError> {
    from_json(&row.subscription_text(what, index)?, what)
}

/// A subscription from its 15 columns (see [`SubscriptionRow`]) starting at column 0.
pub(super) fn decode_subscription(row: &impl Columns) -> Result<Subscription, StoreError> {
    let url = row.subscription_text("subscription url", 1)?;
    let url = url::Url::parse(&url).map_err(|e| corrupt("subscription url", e))?;
    let events: Vec<String> = subscription_json(row, 2, "subscription events")?;
    let labels: Labels = subscription_json(row, 3, "subscription labels")?;
    let secrets: Vec<(String, Option<i64>)> = subscription_json(row, 4, "subscription secrets")?;
    let secrets = secrets
        .into_iter()
        .map(|(text, until)| {
            // The parse error never includes the secret; neither does ours.
            let secret: Secret = text
                .parse()
                .map_err(|e| corrupt("subscription secret", e))?;
            Ok((secret, until.map(from_unix_millis)))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if secrets.is_empty() {
        // `signing_secret` relies on there being one.
        return Err(corrupt("subscription secrets", "none stored"));
    }
    let headers: Vec<(String, String)> = subscription_json(row, 5, "subscription headers")?;
    let rate_limit = row
        .opt_int(7)?
        .map(u32::try_from)
        .transpose()
        .map_err(|e| corrupt("subscription rate limit", e))?;
    let max_in_flight = row
        .opt_int(8)?
        .map(usize::try_from)
        .transpose()
        .map_err(|e| corrupt("subscription max_in_flight", e))?;
    let retry = match row.opt_text(9)? {
        Some(text) => Some(
            retry_from_stored(&text).ok_or_else(|| corrupt("subscription retry policy", text))?,
        ),
        None => None,
    };
    // The reason's columns are read only for a disabled subscription.
    let disabled = match row.opt_time(12)? {
        None => None,
        Some(at) => {
            let detail = row.opt_int(14)?;
            let reason = disable_reason(row.opt_text(13)?.as_deref(), detail)?;
            Some(Disabled { at, reason })
        }
    };
    Ok(Subscription {
        id: SubscriptionId::from_uuid(row.id(0)?),
        url,
        events,
        labels,
        secrets,
        headers,
        ordered: row.flag(6)?,
        rate_limit,
        max_in_flight,
        retry,
        description: row.opt_text(10)?,
        created_at: row.time(11)?,
        disabled,
    })
}

// ---------------------------------------------------------------------------------------------
// Deliveries and attempts
// ---------------------------------------------------------------------------------------------

/// A delivery's status as shown, from the stored one: the stored state, plus in flight (leased)
/// and failed (retrying; not when requeued by hand), as [`MemoryStore`](super::MemoryStore)
/// shows it.
fn delivery_status(
    stored: &str,
    leased: bool,
    attempts: u32,
    requeued: bool,
) -> Result<DeliveryStatus, StoreError> {
    Ok(match stored {
        "pending" if leased => DeliveryStatus::InFlight,
        "pending" if attempts > 0 && !requeued => DeliveryStatus::Failed,
        "pending" => DeliveryStatus::Pending,
        "delivered" => DeliveryStatus::Delivered,
        "exhausted" => DeliveryStatus::Exhausted,
        "skipped" => DeliveryStatus::Skipped,
        other => return Err(corrupt("delivery status", other)),
    })
}

/// ` OR <condition>`: the condition on `d` (deliveries) that holds for the deliveries
/// [`delivery_status`] shows as `status`, for the delivery log's filter (the same SQL in both
/// databases).
pub(super) fn or_status(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => {
            " OR (d.status = 'pending' AND d.lease IS NULL AND (d.attempts = 0 OR d.requeued))"
        }
        DeliveryStatus::InFlight => " OR (d.status = 'pending' AND d.lease IS NOT NULL)",
        DeliveryStatus::Failed => {
            " OR (d.status = 'pending' AND d.lease IS NULL AND d.attempts > 0 AND NOT d.requeued)"
        }
        DeliveryStatus::Delivered => " OR d.status = 'delivered'",
        DeliveryStatus::Exhausted => " OR d.status = 'exhausted'",
        DeliveryStatus::Skipped => " OR d.status = 'skipped'",
    }
}

/// A delivery view from its 11 columns starting at column 0: `d.id, m.id, d.subscription_id,
/// m.event_type, d.status, d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at,
/// d.lease IS NOT NULL, d.requeued` (`d`: the delivery, `m`: its message).
pub(super) fn decode_delivery(row: &impl Columns) -> Result<Delivery, StoreError> {
    let stored = row.text(4)?;
    let attempts = row.u32(5)?;
    let leased = row.flag(9)?;
    let requeued = row.flag(10)?;
    let status = delivery_status(&stored, leased, attempts, requeued)?;
    Ok(Delivery {
        id: DeliveryId::from_uuid(row.id(0)?),
        message_id: MessageId::from_uuid(row.id(1)?),
        subscription_id: SubscriptionId::from_uuid(row.id(2)?),
        event_type: row.text(3)?,
        status,
        attempts,
        next_attempt_at: row.opt_time(6)?,
        created_at: row.time(7)?,
        last_attempt_at: row.opt_time(8)?,
    })
}

/// A page of the delivery log from its rows (each as [`decode_delivery`] reads it), `size` a
/// page: a full page may have a next one.
#[cfg(feature = "postgres")]
pub(super) fn delivery_page<R: Columns>(
    rows: &[R],
    size: usize,
) -> Result<Page<Delivery>, StoreError> {
    let items = rows
        .iter()
        .map(decode_delivery)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(items, size))
}

/// A page of the delivery log from its deliveries, decoded already, `size` a page: a full page
/// may have a next one.
pub(super) fn page_of(items: Vec<Delivery>, size: usize) -> Page<Delivery> {
    let next = if items.len() == size {
        items.last().map(Cursor::after)
    } else {
        None
    };
    Page::new(items, next)
}

// ---------------------------------------------------------------------------------------------
// The delivery log's filter
// ---------------------------------------------------------------------------------------------

/// Where the delivery log's filter ([`write_log_filter`]) is written: a statement's text and its
/// parameters, in one database's words. Implemented by each store for its way of building a
/// statement (PostgreSQL: sqlx's `QueryBuilder` through [`push_log_filter`]; SQLite: its own).
pub(super) trait LogSql {
    /// The false literal that the statuses' ` OR …` conditions ([`or_status`]) follow
    /// (PostgreSQL: `false`; SQLite: `0`).
    const FALSE: &'static str;

    /// The true literal that ` AND …` conditions follow (PostgreSQL: `true`; SQLite: `1`).
    const TRUE: &'static str;

    /// Appends SQL text.
    fn push(&mut self, text: &str);

    /// Binds an integer.
    fn bind_int(&mut self, value: i64);

    /// Binds a text.
    fn bind_text(&mut self, value: String);

    /// Binds an id, as the database stores ids (PostgreSQL: a `uuid`; SQLite: a 16-byte blob).
    fn bind_id(&mut self, id: Uuid);

    /// Pushes a condition that holds when the labels in column `labels` (a JSON object: the
    /// message's `m.labels`, or a subscription's `s.labels`) have `name` with the value
    /// `value`, binding both (PostgreSQL: `->>`; SQLite: `json_each`).
    fn push_label(&mut self, labels: &str, name: &str, value: &str);
}

/// What the delivery log's filter ([`push_log_filter`]) writes differently in each database
/// that sqlx drives: implemented by each such store for its database.
#[cfg(feature = "postgres")]
pub(super) trait LogDialect: sqlx::Database {
    /// See [`LogSql::FALSE`].
    const FALSE: &'static str;

    /// See [`LogSql::TRUE`].
    const TRUE: &'static str;

    /// See [`LogSql::bind_id`].
    fn push_id(sql: &mut QueryBuilder<Self>, id: Uuid);

    /// See [`LogSql::push_label`].
    fn push_label(sql: &mut QueryBuilder<Self>, labels: &str, name: &str, value: &str);
}

/// A sqlx `QueryBuilder` as a [`LogSql`], in its database's words ([`LogDialect`]).
#[cfg(feature = "postgres")]
struct Sqlx<'a, DB: sqlx::Database>(&'a mut QueryBuilder<DB>);

#[cfg(feature = "postgres")]
impl<DB> LogSql for Sqlx<'_, DB>
where
    DB: LogDialect,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    const FALSE: &'static str = DB::FALSE;
    const TRUE: &'static str = DB::TRUE;

    fn push(&mut self, text: &str) {
        self.0.push(text);
    }

    fn bind_int(&mut self, value: i64) {
        self.0.push_bind(value);
    }

    fn bind_text(&mut self, value: String) {
        self.0.push_bind(value);
    }

    fn bind_id(&mut self, id: Uuid) {
        DB::push_id(self.0, id);
    }

    fn push_label(&mut self, labels: &str, name: &str, value: &str) {
        DB::push_label(self.0, labels, name, value);
    }
}

/// Pushes the delivery log's query onto `sql`: see [`write_log_filter`].
#[cfg(feature = "postgres")]
pub(super) fn push_log_filter<DB>(
    sql: &mut QueryBuilder<DB>,
    query: &DeliveryQuery,
    subscriptions: &str,
) -> usize
where
    DB: LogDialect,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    write_log_filter(&mut Sqlx(sql), query, subscriptions)
}

/// Writes the delivery log's query onto `sql`: a `SELECT` of the delivery view (`d`: the
/// deliveries, `m`: their messages, the columns as [`decode_delivery`] reads them) whose
/// `WHERE` clause is open to ` AND …` (it ends in a true condition). Writes the conditions of
/// `query` (cursor, subscription, statuses, event type, label, subscription labels, since,
/// until), newest first, and the page's limit. `subscriptions` names the subscriptions table
/// as the statement must (PostgreSQL: with the store's schema). Returns the page size, for
/// [`page_of`].
pub(super) fn write_log_filter<S: LogSql>(
    sql: &mut S,
    query: &DeliveryQuery,
    subscriptions: &str,
) -> usize {
    if let Some(cursor) = query.cursor {
        // Row values walk the (created_at, id) index backwards from the cursor.
        sql.push(" AND (d.created_at, d.id) < (");
        sql.bind_int(cursor.created_at_ms);
        sql.push(", ");
        sql.bind_id(cursor.id.as_uuid());
        sql.push(")");
    }
    if let Some(sub) = query.subscription {
        sql.push(" AND d.subscription_id = ");
        sql.bind_id(sub.as_uuid());
    }
    if !query.statuses.is_empty() {
        // As the view shows them: in flight and failed are pending rows.
        sql.push(" AND (");
        sql.push(S::FALSE);
        for status in &query.statuses {
            sql.push(or_status(*status));
        }
        sql.push(")");
    }
    if let Some(event_type) = &query.event_type {
        sql.push(" AND m.event_type = ");
        sql.bind_text(event_type.clone());
    }
    if let Some((name, value)) = &query.label {
        sql.push(" AND ");
        sql.push_label("m.labels", name, value);
    }
    if !query.subscription_labels.is_empty() {
        // The subscriptions that carry every label, found once (there are few), rather than
        // a subscription looked up and its labels parsed for every delivery walked.
        sql.push(" AND d.subscription_id IN (SELECT s.id FROM ");
        sql.push(subscriptions);
        sql.push(" s WHERE ");
        sql.push(S::TRUE);
        for (name, value) in &query.subscription_labels {
            sql.push(" AND ");
            sql.push_label("s.labels", name, value);
        }
        sql.push(")");
    }
    // Creation times are whole milliseconds: `>= since` and `< until` hold exactly against
    // the bounds rounded up.
    if let Some(since) = query.since {
        sql.push(" AND d.created_at >= ");
        sql.bind_int(millis_ceil(since));
    }
    if let Some(until) = query.until {
        sql.push(" AND d.created_at < ");
        sql.bind_int(millis_ceil(until));
    }
    let size = query.page_size();
    sql.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ");
    sql.bind_int(count(size));
    size
}

/// A claim from a claimed delivery's row: the delivery view, then its message's labels (JSON
/// text) at column `labels_at`, its body right after, and its ordering key (text or NULL) after
/// that. `not_before`: the send slot the claim gave it (rate-limited subscriptions).
pub(super) fn decode_claim(
    row: &impl Columns,
    labels_at: usize,
    lease: LeaseId,
    lease_until: SystemTime,
    not_before: Option<SystemTime>,
) -> Result<Claim, StoreError> {
    let delivery = decode_delivery(row)?;
    let message = message_from_row(
        row,
        delivery.message_id,
        delivery.created_at,
        delivery.event_type.clone(),
        labels_at,
    )?;
    Ok(Claim {
        delivery,
        message,
        lease,
        lease_until,
        not_before,
    })
}

/// A message from a row of `SELECT id, created_at, event_type, labels, body, ordering_key FROM
/// messages`.
pub(super) fn decode_message(row: &impl Columns) -> Result<Message, StoreError> {
    let id = MessageId::from_uuid(row.id(0)?);
    message_from_row(row, id, row.time(1)?, row.text(2)?, 3)
}

/// A message with `id`, `timestamp` and `event_type`, its labels (JSON text) read at column
/// `labels_at`, its body right after, and its ordering key (text or NULL) after that.
fn message_from_row(
    row: &impl Columns,
    id: MessageId,
    timestamp: SystemTime,
    event_type: String,
    labels_at: usize,
) -> Result<Message, StoreError> {
    let labels: Labels = from_json(&row.text(labels_at)?, "message labels")?;
    let body = row.bytes(labels_at + 1)?;
    let message = Message::from_parts(id, timestamp, event_type, labels, body);
    match row.opt_text(labels_at + 2)? {
        Some(key) => message
            .with_ordering_key(key)
            .map_err(|e| corrupt("message ordering key", e)),
        None => Ok(message),
    }
}

/// An attempt of `delivery_id` from its 7 columns starting at column 0: `number, at, latency_ns,
/// status_code, error, error_message, response_body`.
pub(super) fn decode_attempt(
    delivery_id: DeliveryId,
    row: &impl Columns,
) -> Result<Attempt, StoreError> {
    let latency = row.int(2)?;
    let latency = u64::try_from(latency).map_err(|e| corrupt("attempt latency", e))?;
    let status_code = row
        .status_code(3)?
        .map(u16::try_from)
        .transpose()
        .map_err(|e| corrupt("attempt status code", e))?;
    let error = match row.opt_text(4)? {
        Some(name) => Some(
            AttemptErrorKind::from_name(&name)
                .ok_or_else(|| corrupt("attempt error kind", name))?,
        ),
        None => None,
    };
    let body = row.bytes(6)?;
    let outcome = match status_code {
        Some(status) => AttemptOutcome::Answered {
            status,
            body: Bytes::from(body),
        },
        None => AttemptOutcome::Failed {
            kind: error.unwrap_or(AttemptErrorKind::Request),
            message: row.opt_text(5)?.unwrap_or_default(),
        },
    };
    Ok(Attempt::new(
        delivery_id,
        row.u32(0)?,
        row.time(1)?,
        Duration::from_nanos(latency),
        outcome,
    ))
}

// ---------------------------------------------------------------------------------------------
// The stored form of a retry policy
// ---------------------------------------------------------------------------------------------

/// The stored form of a [`RetryPolicy`], for stores: JSON such as
/// `{"schedule":[{"secs":5,"nanos":0}],"jitter":"0.2"}`. Durations are exact and the jitter is its
/// shortest decimal text (read back exactly), so a policy survives the round trip unchanged.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRetryPolicy {
    #[serde(flatten)]
    kind: StoredKind,
    jitter: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredKind {
    Schedule(Vec<Duration>),
    Exponential {
        initial: Duration,
        max_delay: Duration,
        max_attempts: u32,
    },
}

/// A retry policy as JSON text, in the form described above.
pub(super) fn retry_to_stored(policy: &RetryPolicy) -> String {
    let kind = match &policy.kind {
        Kind::Schedule(delays) => StoredKind::Schedule(delays.clone()),
        Kind::Exponential {
            initial,
            max_delay,
            max_attempts,
        } => StoredKind::Exponential {
            initial: *initial,
            max_delay: *max_delay,
            max_attempts: *max_attempts,
        },
    };
    let stored = StoredRetryPolicy {
        kind,
        jitter: policy.jitter.to_string(),
    };
    // Durations, a number and a string: nothing here can fail to serialize.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The policy [`retry_to_stored`] wrote; `None` if `text` is not one.
pub(super) fn retry_from_stored(text: &str) -> Option<RetryPolicy> {
    let stored: StoredRetryPolicy = serde_json::from_str(text).ok()?;
    let jitter: f64 = stored.jitter.parse().ok()?;
    let kind = match stored.kind {
        StoredKind::Schedule(delays) => Kind::Schedule(delays),
        StoredKind::Exponential {
            initial,
            max_delay,
            max_attempts,
        } => Kind::Exponential {
            initial,
            max_delay,
            max_attempts: max_attempts.max(1),
        },
    };
    // Through the builder, so that a hand-edited jitter is clamped as any other.
    Some(RetryPolicy { kind, jitter: 0.0 }.jitter(jitter))
}
