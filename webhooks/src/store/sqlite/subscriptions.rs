//! Subscriptions: inserting, updating, enabling, disabling, rotating secrets, deleting, reading.
//! Every change moves the version of the subscriptions (`subscriptions_version`) on in its own
//! transaction, which is what makes a stale enqueue detectable (see `enqueue.rs`).

use std::time::{Duration, SystemTime};

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::row::blob;
use crate::store::sql::{
    SubscriptionRow, conflict, corrupt, db, decode_subscription, disabled_parts, not_found,
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

/// Inserts a subscription: parameters, its columns in `subscription_columns!()` order (see
/// [`bind_subscription`]).
const INSERT_SUBSCRIPTION: &str = concat!(
    "INSERT INTO subscriptions (",
    subscription_columns!(),
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

/// Writes a subscription's settings — not the secrets, the disable, the health nor the creation
/// time — and returns its columns. Parameters: url, events, labels, headers, ordered,
/// rate_limit, max_in_flight, retry, description, then the id.
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

/// Binds every column of `row`, in `subscription_columns!()` order, as `?1`-`?15`.
fn bind_subscription(
    query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    row: SubscriptionRow,
) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
    query
        .bind(blob(row.id))
        .bind(row.url)
        .bind(row.events)
        .bind(row.labels)
        .bind(row.secrets)
        .bind(row.headers)
        .bind(row.ordered)
        .bind(row.rate_limit)
        .bind(row.max_in_flight)
        .bind(row.retry)
        .bind(row.description)
        .bind(row.created_at)
        .bind(row.disabled_at)
        .bind(row.disabled_reason)
        .bind(row.disabled_detail)
}

/// The next version of the subscriptions, in the transaction of the change.
async fn bump(tx: &mut Transaction<'static, Sqlite>) -> Result<u64, StoreError> {
    let version: i64 = sqlx::query_scalar(BUMP_VERSION)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
    u64::try_from(version).map_err(|e| corrupt("version", e))
}

impl SqliteStore {
    /// Runs `sql`, an `UPDATE subscriptions … WHERE id = ? RETURNING` its columns, with `bind`'s
    /// parameters and then the id, in a transaction that `then` continues; commits with the next
    /// version and returns the subscription as stored.
    async fn change(
        &self,
        id: SubscriptionId,
        sql: &'static str,
        bind: impl FnOnce(
            sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
        ) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
        then: Option<&'static str>,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let key = blob(id.as_uuid());
        let mut tx = self.write().await?;
        let row = bind(sqlx::query(sql))
            .bind(key.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found(Entity::Subscription, id))?;
        let subscription = decode_subscription(&row)?;
        if let Some(then) = then {
            sqlx::query(then)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let version = bump(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(Versioned::new(subscription, version))
    }
}

/// `Store::insert_subscription`: the row, then the next version; a taken id is a conflict.
pub(super) async fn insert_subscription(
    store: &SqliteStore,
    subscription: &Subscription,
) -> Result<u64, StoreError> {
    let row = SubscriptionRow::new(subscription)?;
    let mut tx = store.write().await?;
    match bind_subscription(sqlx::query(INSERT_SUBSCRIPTION), row)
        .execute(&mut *tx)
        .await
    {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(conflict(
                Entity::Subscription,
                subscription.id,
                "already exists",
            ));
        }
        Err(e) => return Err(db(e)),
    }
    let version = bump(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    Ok(version)
}

/// `Store::update_subscription`: its settings only, with the next version.
pub(super) async fn update_subscription(
    store: &SqliteStore,
    subscription: &Subscription,
) -> Result<Versioned<Subscription>, StoreError> {
    let row = SubscriptionRow::new(subscription)?;
    // Settings only: not the secrets, the disable, the health nor the creation time.
    store
        .change(
            subscription.id,
            UPDATE_SUBSCRIPTION,
            |query| {
                query
                    .bind(row.url)
                    .bind(row.events)
                    .bind(row.labels)
                    .bind(row.headers)
                    .bind(row.ordered)
                    .bind(row.rate_limit)
                    .bind(row.max_in_flight)
                    .bind(row.retry)
                    .bind(row.description)
            },
            None,
        )
        .await
}

/// `Store::enable_subscription`, with the next version.
pub(super) async fn enable_subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Versioned<Subscription>, StoreError> {
    store
        .change(id, ENABLE_SUBSCRIPTION, |query| query, None)
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
    store
        .change(
            id,
            DISABLE_SUBSCRIPTION,
            |query| query.bind(at).bind(reason).bind(detail),
            Some(SKIP_PENDING),
        )
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
    let mut tx = store.write().await?;
    let row = sqlx::query(SELECT_SUBSCRIPTION)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| not_found(Entity::Subscription, id))?;
    let mut subscription = decode_subscription(&row)?;
    subscription.rotate(secret.clone(), now, overlap);
    let secrets = SubscriptionRow::new(&subscription)?.secrets;
    let row = sqlx::query(SET_SECRETS)
        .bind(secrets)
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    // As stored: times in whole milliseconds.
    let subscription = decode_subscription(&row)?;
    let version = bump(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    Ok(Versioned::new(subscription, version))
}

/// `Store::delete_subscription`: with its deliveries and their attempts, and the next version.
pub(super) async fn delete_subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Option<u64>, StoreError> {
    let key = blob(id.as_uuid());
    let mut tx = store.write().await?;
    let done = sqlx::query(DELETE_SUBSCRIPTION)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query(DELETE_SUBSCRIPTION_ATTEMPTS)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(DELETE_SUBSCRIPTION_DELIVERIES)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let version = bump(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(version))
}

/// `Store::subscription`, from a reader.
pub(super) async fn subscription(
    store: &SqliteStore,
    id: SubscriptionId,
) -> Result<Option<Subscription>, StoreError> {
    let row = sqlx::query(SELECT_SUBSCRIPTION)
        .bind(blob(id.as_uuid()))
        .fetch_optional(&store.inner.readers)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_subscription).transpose()
}

/// `Store::subscriptions`: every subscription and their version, in one read transaction.
pub(super) async fn subscriptions(
    store: &SqliteStore,
) -> Result<Versioned<Vec<Subscription>>, StoreError> {
    // One read transaction: the list and the version of one moment.
    let mut tx = store.inner.readers.begin().await.map_err(db)?;
    // UUID v7 ids sort by creation time: oldest first.
    let rows = sqlx::query(SELECT_SUBSCRIPTIONS)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    let version: i64 = sqlx::query_scalar(SUBSCRIPTIONS_VERSION)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let subscriptions = rows
        .iter()
        .map(decode_subscription)
        .collect::<Result<_, _>>()?;
    let version = u64::try_from(version).map_err(|e| corrupt("version", e))?;
    Ok(Versioned::new(subscriptions, version))
}
