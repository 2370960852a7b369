//! Subscriptions: inserting, updating, enabling, disabling, rotating secrets, deleting, reading.
//! Every change moves the version of the subscriptions (`subscriptions_version`) on in its own
//! transaction, which is what makes a stale enqueue detectable (see `enqueue.rs`).

use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, params_from_iter};

use super::SqliteStore;
use super::connect::begin;
use super::row::{blob, db, execute, query_all, query_one, query_opt};
use crate::store::sql::{
    Columns, SubscriptionRow, conflict, corrupt, decode_subscription, disabled_parts, not_found,
};
use crate::store::{Entity, StoreError, Versioned};
use crate::subscription::Disabled;
use crate::{Secret, Subscription, SubscriptionId};

/// The columns of a subscription, in the order [`decode_subscription`] reads them.
macro_rules! subscription_columns {
    () => {
        "id, url, events, labels, secrets, headers, ordered, rate_limit, max_in_flight, retry, \
         description, created_at, disabled_at, disabled_reason, disabled_detail"
    };
}

/// Moves the version of the subscriptions on and returns it. No parameters.
const BUMP_VERSION: &str =
    "UPDATE subscriptions_version SET version = version + 1 RETURNING version";

/// Reads the version of the subscriptions. No parameters.
const SUBSCRIPTIONS_VERSION: &str = "SELECT version FROM subscriptions_version";

/// Inserts a subscription. Parameters: its columns in [`row_values`] order — the settings as
/// [`UPDATE_SUBSCRIPTION`] takes them, then the rest.
const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (url, events, labels, headers, \
     ordered, rate_limit, max_in_flight, retry, description, id, secrets, created_at, \
     disabled_at, disabled_reason, disabled_detail) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Writes a subscription's settings — not the secrets, the disable, the health nor the creation
/// time — and returns its columns. Parameters: the settings of [`row_values`] (url, events,
/// labels, headers, ordered, rate_limit, max_in_flight, retry, description), then the id.
const UPDATE_SUBSCRIPTION: &str = concat!(
    "UPDATE subscriptions SET url = ?, events = ?, labels = ?, headers = ?, ordered = ?, \
     rate_limit = ?, max_in_flight = ?, retry = ?, description = ? WHERE id = ? \
     RETURNING ",
    subscription_columns!()
);

/// Enables a subscription and returns its columns; its health is reset only if it was disabled
/// (SET expressions see the row before the update). Parameter: the id.
const ENABLE_SUBSCRIPTION: &str = concat!(
    "UPDATE subscriptions SET disabled_at = NULL, disabled_reason = NULL, \
     disabled_detail = NULL, \
     failing_since = CASE WHEN disabled_at IS NULL THEN failing_since END, \
     consecutive_exhausted = \
       CASE WHEN disabled_at IS NULL THEN consecutive_exhausted ELSE 0 END \
     WHERE id = ? RETURNING ",
    subscription_columns!()
);

/// Disables a subscription and returns its columns. Parameters: disabled_at, disabled_reason,
/// disabled_detail, then the id.
const DISABLE_SUBSCRIPTION: &str = concat!(
    "UPDATE subscriptions SET disabled_at = ?, disabled_reason = ?, disabled_detail = ? \
     WHERE id = ? RETURNING ",
    subscription_columns!()
);

/// Skips a subscription's unfinished deliveries, those in flight too, keeping their lease: their
/// attempt is still recorded, and only a success changes them from skipped (see the module docs
/// of `store`). Parameter: the subscription's id.
const SKIP_PENDING: &str = "UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL \
                            WHERE subscription_id = ? AND status = 'pending'";

/// Reads a subscription's columns. Parameter: the id.
const SELECT_SUBSCRIPTION: &str = concat!(
    "SELECT ",
    subscription_columns!(),
    " FROM subscriptions WHERE id = ?"
);

/// Reads every subscription's columns, oldest first (UUID v7 ids sort by creation time). No
/// parameters.
const SELECT_SUBSCRIPTIONS: &str = concat!(
    "SELECT ",
    subscription_columns!(),
    " FROM subscriptions ORDER BY id"
);

/// Writes a subscription's secrets and returns its columns. Parameters: the secrets, the id.
const SET_SECRETS: &str = concat!(
    "UPDATE subscriptions SET secrets = ? WHERE id = ? RETURNING ",
    subscription_columns!()
);

/// Deletes a subscription. Parameter: the id.
const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = ?";

/// Deletes the attempts of a subscription's deliveries. Parameter: the subscription's id.
const DELETE_SUBSCRIPTION_ATTEMPTS: &str = "DELETE FROM attempts WHERE delivery IN \
                                            (SELECT pk FROM deliveries WHERE subscription_id = ?)";

/// Deletes a subscription's deliveries. Parameter: the subscription's id.
const DELETE_SUBSCRIPTION_DELIVERIES: &str = "DELETE FROM deliveries WHERE subscription_id = ?";

/// A value to bind: text.
fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

/// A value to bind: an integer or NULL.
fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}

/// A value to bind: a text or NULL.
fn opt_text(value: Option<impl Into<String>>) -> Value {
    value.map_or(Value::Null, |v| Value::Text(v.into()))
}

/// Every column of `row`, to bind: its settings (what an update writes: url, events, labels,
/// headers, ordered, rate_limit, max_in_flight, retry, description), then the rest (id,
/// secrets, created_at, disabled_at, disabled_reason, disabled_detail). One list, so that the
/// insert and the update bind the settings alike.
fn row_values(row: SubscriptionRow) -> (Vec<Value>, [Value; 6]) {
    let settings = vec![
        text(row.url),
        text(row.events),
        text(row.labels),
        text(row.headers),
        Value::Integer(i64::from(row.ordered)),
        opt_int(row.rate_limit),
        opt_int(row.max_in_flight),
        opt_text(row.retry),
        opt_text(row.description),
    ];
    let rest = [
        Value::Blob(blob(row.id)),
        text(row.secrets),
        Value::Integer(row.created_at),
        opt_int(row.disabled_at),
        opt_text(row.disabled_reason),
        opt_int(row.disabled_detail),
    ];
    (settings, rest)
}

/// The next version of the subscriptions, in the transaction of the change.
fn bump(conn: &Connection) -> Result<u64, StoreError> {
    let version = query_one(conn, BUMP_VERSION, [], |row| row.int(0))?;
    u64::try_from(version).map_err(|e| corrupt("version", e))
}

impl SqliteStore {
    /// Runs `sql`, an `UPDATE subscriptions … WHERE id = ? RETURNING` its columns, with
    /// `values` and then the id, in a transaction on the writer thread that `then` (a statement
    /// whose parameter is the id) continues; commits with the next version and returns the
    /// subscription as stored.
    async fn change(
        &self,
        id: SubscriptionId,
        sql: &'static str,
        mut values: Vec<Value>,
        then: Option<&'static str>,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let key = blob(id.as_uuid());
        self.inner
            .write(move |writer| {
                let tx = begin(&mut writer.conn)?;
                values.push(Value::Blob(key.clone()));
                let subscription = query_opt(&tx, sql, params_from_iter(values), |row| {
                    decode_subscription(row)
                })?
                .ok_or_else(|| not_found(Entity::Subscription, id))?;
                if let Some(then) = then {
                    execute(&tx, then, [key])?;
                }
                let version = bump(&tx)?;
                tx.commit().map_err(db)?;
                Ok(Versioned::new(subscription, version))
            })
            .await
    }
}

/// `Store::insert_subscription`: the row, then the next version; a taken id is a conflict.
pub(super) async fn insert_subscription(
    store: &SqliteStore,
    subscription: &Subscription,
) -> Result<u64, StoreError> {
    let row = SubscriptionRow::new(subscription)?;
    let id = subscription.id;
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            let inserted = tx.prepare_cached(INSERT_SUBSCRIPTION).and_then(|mut s| {
                let (settings, rest) = row_values(row);
                s.execute(params_from_iter(settings.into_iter().chain(rest)))
            });
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    return Err(conflict(Entity::Subscription, id, "already exists"));
                }
                Err(e) => return Err(db(e)),
            }
            let version = bump(&tx)?;
            tx.commit().map_err(db)?;
            Ok(version)
        })
        .await
}

/// `Store::update_subscription`: its settings only, with the next version.
pub(super) async fn update_subscription(
    store: &SqliteStore,
    subscription: &Subscription,
) -> Result<Versioned<Subscription>, StoreError> {
    let row = SubscriptionRow::new(subscription)?;
    // Settings only: not the secrets, the disable, the health nor the creation time.
    let (values, _) = row_values(row);
    store
        .change(subscription.id, UPDATE_SUBSCRIPTION, values, None)
        .await
}

/// `Store::enable_subscription`, with the next version.
pub(super) async fn enable_subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Versioned<Subscription>, StoreError> {
    store
        .change(id, ENABLE_SUBSCRIPTION, Vec::new(), None)
        .await
}

/// `Store::disable_subscription`: its unfinished deliveries are skipped in the same
/// transaction, with the next version.
pub(super) async fn disable_subscription(
    store: &SqliteStore,
    id: SubscriptionId,
    disabled: Disabled,
) -> Result<Versioned<Subscription>, StoreError> {
    let (at, reason, detail) = disabled_parts(Some(&disabled));
    let values = vec![opt_int(at), opt_text(reason), opt_int(detail)];
    store
        .change(id, DISABLE_SUBSCRIPTION, values, Some(SKIP_PENDING))
        .await
}

/// `Store::rotate_secret`: read, rotated in Rust ([`Subscription::rotate`]), written back, with
/// the next version.
pub(super) async fn rotate_secret(
    store: &SqliteStore,
    id: SubscriptionId,
    secret: &Secret,
    now: SystemTime,
    overlap: Duration,
) -> Result<Versioned<Subscription>, StoreError> {
    let key = blob(id.as_uuid());
    let secret = secret.clone();
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            let mut subscription = query_opt(&tx, SELECT_SUBSCRIPTION, [&key], |row| {
                decode_subscription(row)
            })?
            .ok_or_else(|| not_found(Entity::Subscription, id))?;
            subscription.rotate(secret, now, overlap);
            let secrets = SubscriptionRow::new(&subscription)?.secrets;
            // As stored: times in whole milliseconds.
            let subscription =
                query_one(&tx, SET_SECRETS, rusqlite::params![secrets, key], |row| {
                    decode_subscription(row)
                })?;
            let version = bump(&tx)?;
            tx.commit().map_err(db)?;
            Ok(Versioned::new(subscription, version))
        })
        .await
}

/// `Store::delete_subscription`: with its deliveries and their attempts, and the next version.
pub(super) async fn delete_subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Option<u64>, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            if execute(&tx, DELETE_SUBSCRIPTION, [&key])? == 0 {
                return Ok(None);
            }
            execute(&tx, DELETE_SUBSCRIPTION_ATTEMPTS, [&key])?;
            execute(&tx, DELETE_SUBSCRIPTION_DELIVERIES, [&key])?;
            let version = bump(&tx)?;
            tx.commit().map_err(db)?;
            Ok(Some(version))
        })
        .await
}

/// `Store::subscription`, from a reader.
pub(super) async fn subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Option<Subscription>, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .read(move |conn| {
            query_opt(conn, SELECT_SUBSCRIPTION, [key], |row| {
                decode_subscription(row)
            })
        })
        .await
}

/// `Store::subscriptions`: every subscription and their version, in one read transaction.
pub(super) async fn subscriptions(
    store: &SqliteStore,
) -> Result<Versioned<Vec<Subscription>>, StoreError> {
    store
        .inner
        .read(|conn| {
            // One read transaction: the list and the version of one moment.
            let tx = conn.unchecked_transaction().map_err(db)?;
            // UUID v7 ids sort by creation time: oldest first.
            let subscriptions = query_all(&tx, SELECT_SUBSCRIPTIONS, [], |row| {
                decode_subscription(row)
            })?;
            let version = query_one(&tx, SUBSCRIPTIONS_VERSION, [], |row| row.int(0))?;
            tx.commit().map_err(db)?;
            let version = u64::try_from(version).map_err(|e| corrupt("version", e))?;
            Ok(Versioned::new(subscriptions, version))
        })
        .await
}
