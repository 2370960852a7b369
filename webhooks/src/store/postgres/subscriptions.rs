//! Subscriptions: their changes and the subscriptions' version. Every change runs in a
//! transaction whose first statement ([`BUMP_VERSION`]) takes the schema's version lock (an
//! advisory lock: exclusive here, shared by enqueues) and increments the version, holding its
//! row until commit; enqueues compare the version they were matched against with it.

use std::time::{Duration, SystemTime};

use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnection};
use uuid::Uuid;

use super::notify::stable_hash;
use super::{PostgresStore, query};
use crate::store::sql::{
    RowExt, SubscriptionRow, conflict, corrupt, db, decode_subscription, disabled_parts, not_found,
};
use crate::store::{Entity, StoreError, Versioned};
use crate::subscription::Disabled;
use crate::{Secret, Subscription, SubscriptionId};

/// The columns of a subscription, in the order [`decode_subscription`] reads them.
pub(super) const SUBSCRIPTION_COLUMNS: &str = "id, url, events::text, labels::text, secrets::text, \
     headers::text, ordered, rate_limit, max_in_flight, retry::text, description, created_at, \
     disabled_at, disabled_reason, disabled_detail";

/// The advisory lock that queues subscription changes and enqueues of a schema fairly (see
/// [`BUMP_VERSION`]): the same number in every process.
pub(super) fn version_lock(schema: &str) -> i64 {
    i64::from_ne_bytes(stable_hash(&format!("webhooks subscriptions {schema}")).to_ne_bytes())
}

/// The first statement of every change to subscriptions: the next version, which takes the
/// version row's lock until the change commits (so changes go one at a time, and wait for the
/// enqueues that hold it `FOR SHARE`). Tells the other workers on commit. `$1`, `$2`: channel
/// and payload.
///
/// First, the schema's version lock (an advisory lock, exclusive here, shared in enqueues).
/// The row lock alone would let a change starve: a `FOR SHARE` is granted at once while only
/// share locks are held, even if an UPDATE waits, so overlapping enqueues could hold the row
/// for good. Advisory locks are granted in order: once a change waits for the version lock,
/// later enqueues wait behind it.
pub(super) const BUMP_VERSION: &str = "\
WITH vlock AS MATERIALIZED (
    SELECT pg_advisory_xact_lock({version_lock})
), v AS (
    UPDATE {s}.subscriptions_version SET version = version + 1
    WHERE EXISTS (SELECT 1 FROM vlock)
    RETURNING version
), wake AS (
    SELECT pg_notify($1, $2) FROM v
)
SELECT version, (SELECT count(*) FROM wake) FROM v";

/// Inserts a subscription, with its row of claim state.
pub(super) const INSERT_SUBSCRIPTION: &str = "\
WITH ins AS (
    INSERT INTO {s}.subscriptions (id, url, events, labels, secrets, headers, ordered, rate_limit,
        max_in_flight, retry, description, created_at, disabled_at, disabled_reason,
        disabled_detail)
    VALUES ($1, $2, $3::json, $4::json, $5::json, $6::json, $7, $8, $9, $10::json, $11, $12, $13,
        $14, $15)
    RETURNING id
)
INSERT INTO {s}.subscription_flow (subscription_id) SELECT id FROM ins";

/// Writes a subscription's settings: not its secrets, nor whether it is disabled (their own
/// operations), so that an update never undoes a rotation or a disable. `$1`: the id; `$2`-`$10`:
/// url, events, labels, headers, ordered, rate_limit, max_in_flight, retry, description. Returns
/// the subscription as stored.
pub(super) const UPDATE_SUBSCRIPTION: &str = "UPDATE {s}.subscriptions SET url = $2, \
     events = $3::json, labels = $4::json, headers = $5::json, ordered = $6, rate_limit = $7, \
     max_in_flight = $8, retry = $9::json, description = $10 WHERE id = $1 \
     RETURNING {subscription}";

/// Enables subscription `$1`, and returns it as stored. SET sees the row before the update:
/// health is reset only if it was disabled.
pub(super) const ENABLE_SUBSCRIPTION: &str = "UPDATE {s}.subscriptions SET disabled_at = NULL, \
     disabled_reason = NULL, disabled_detail = NULL, \
     failing_since = CASE WHEN disabled_at IS NULL THEN failing_since END, \
     consecutive_exhausted = \
         CASE WHEN disabled_at IS NULL THEN consecutive_exhausted ELSE 0 END \
     WHERE id = $1 RETURNING {subscription}";

/// Skips the pending deliveries of subscription `$1`, as it is disabled: they leave the queue
/// (in flight ones too, keeping their lease: their attempt is still recorded, and only a
/// success changes them from skipped), then their log rows change.
pub(super) const SKIP_DELIVERIES: &str = "\
WITH q AS (
    DELETE FROM {s}.queue WHERE subscription_id = $1 RETURNING delivery
)
UPDATE {s}.deliveries d SET status = 'skipped', next_attempt_at = NULL
FROM q WHERE d.pk = q.delivery AND d.status = 'pending'";

/// Disables subscription `$1`: `$2`-`$4` as [`disabled_parts`] gives them (when, the reason's
/// name, its detail). Returns the subscription as stored.
pub(super) const DISABLE_SUBSCRIPTION: &str = "UPDATE {s}.subscriptions SET disabled_at = $2, \
     disabled_reason = $3, disabled_detail = $4 WHERE id = $1 RETURNING {subscription}";

/// Subscription `$1`, its row locked until the transaction ends (a secret's rotation reads it,
/// then writes it back).
pub(super) const LOCK_SUBSCRIPTION: &str =
    "SELECT {subscription} FROM {s}.subscriptions WHERE id = $1 FOR NO KEY UPDATE";

/// Writes the secrets of subscription `$1`: `$2`, as [`SubscriptionRow`] encodes them. Returns
/// the subscription as stored.
pub(super) const WRITE_SECRETS: &str = "UPDATE {s}.subscriptions SET secrets = $2::json \
     WHERE id = $1 RETURNING {subscription}";

/// Deletes subscription `$1`, with its queue rows, leases, deliveries and their attempts (in
/// this statement: no foreign keys since version 3), and its claim state (ON DELETE CASCADE).
/// Its messages stay. No delivery can be added meanwhile: the change holds the subscriptions'
/// version row.
pub(super) const DELETE_SUBSCRIPTION: &str = "\
WITH q AS (
    DELETE FROM {s}.queue q WHERE q.subscription_id = $1
), l AS (
    DELETE FROM {s}.leases l WHERE l.subscription_id = $1
), dlv AS (
    DELETE FROM {s}.deliveries d WHERE d.subscription_id = $1 RETURNING d.pk
), att AS (
    DELETE FROM {s}.attempts a USING dlv WHERE a.delivery = dlv.pk
)
DELETE FROM {s}.subscriptions WHERE id = $1";

/// Subscription `$1`.
pub(super) const SUBSCRIPTION: &str = "SELECT {subscription} FROM {s}.subscriptions WHERE id = $1";

/// Every subscription, then the subscriptions' version (column 15). One statement, one
/// snapshot: the set and its version agree. UUID v7 ids sort by creation time (oldest first);
/// without subscriptions, one row of NULLs.
pub(super) const SUBSCRIPTIONS: &str = "SELECT {subscription}, v.version \
     FROM {s}.subscriptions_version v LEFT JOIN {s}.subscriptions ON true ORDER BY id";

/// A change to subscriptions (see [`PostgresStore::edit`]).
pub(super) enum Edit<'a> {
    Insert(&'a Subscription),
    Update(&'a Subscription),
    Enable(SubscriptionId),
    Disable(SubscriptionId, &'a Disabled),
    Rotate {
        id: SubscriptionId,
        secret: &'a Secret,
        now: SystemTime,
        overlap: Duration,
    },
    Delete(SubscriptionId),
}

impl Edit<'_> {
    /// The subscription changed.
    fn id(&self) -> SubscriptionId {
        match self {
            Edit::Insert(s) | Edit::Update(s) => s.id,
            Edit::Enable(id)
            | Edit::Disable(id, _)
            | Edit::Rotate { id, .. }
            | Edit::Delete(id) => *id,
        }
    }
}

impl PostgresStore {
    /// Applies a change to subscriptions in a transaction that first increments their version
    /// (see [`BUMP_VERSION`]); tries again when the database aborted it to break a deadlock.
    /// Returns the subscription as stored after the change (`None` for an insert or a delete)
    /// and the new version. A missing subscription is [`StoreError::NotFound`] and leaves the
    /// version as it was.
    pub(super) async fn edit(
        &self,
        edit: &Edit<'_>,
    ) -> Result<(Option<Subscription>, u64), StoreError> {
        let mut tries = 1;
        loop {
            match self.try_edit(edit).await {
                Err(error) if tries < EDIT_TRIES && is_transient(&error) => {
                    tracing::debug!(%error, "webhook store: a subscription change was aborted; trying again");
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    async fn try_edit(&self, edit: &Edit<'_>) -> Result<(Option<Subscription>, u64), StoreError> {
        let mut tx = self.core.pool.begin().await.map_err(db)?;
        let version: i64 = query(&self.core.sql.bump_version)
            .bind(self.core.channel.as_str())
            .bind(self.core.own("subscriptions"))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .col(0)?;
        match self.apply(&mut tx, edit).await {
            Ok(stored) => {
                tx.commit().await.map_err(db)?;
                Ok((stored, stored_version(version)?))
            }
            Err(error) => {
                // Now rather than when the connection is next used: the version row is locked.
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    /// The change itself, in the transaction that holds the version row.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        edit: &Edit<'_>,
    ) -> Result<Option<Subscription>, StoreError> {
        let sql = &self.core.sql;
        let id = edit.id();
        let row = match *edit {
            Edit::Insert(s) => {
                return match bind_subscription(query(&sql.insert_subscription), s)?
                    .execute(&mut *tx)
                    .await
                {
                    Ok(_) => Ok(None),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(conflict(Entity::Subscription, id, "already exists"))
                    }
                    Err(e) => Err(db(e)),
                };
            }
            Edit::Update(s) => {
                let row = SubscriptionRow::new(s)?;
                query(&sql.update_subscription)
                    .bind(row.id)
                    .bind(row.url)
                    .bind(row.events)
                    .bind(row.labels)
                    .bind(row.headers)
                    .bind(row.ordered)
                    .bind(row.rate_limit)
                    .bind(row.max_in_flight)
                    .bind(row.retry)
                    .bind(row.description)
                    .fetch_optional(&mut *tx)
                    .await
            }
            Edit::Enable(_) => {
                query(&sql.enable_subscription)
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
            }
            Edit::Disable(_, disabled) => {
                // The deliveries first, then the subscription's row: the order in which
                // recorded attempts lock them.
                query(&sql.skip_deliveries)
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                let (at, reason, detail) = disabled_parts(Some(disabled));
                query(&sql.disable_subscription)
                    .bind(id.as_uuid())
                    .bind(at)
                    .bind(reason)
                    .bind(detail)
                    .fetch_optional(&mut *tx)
                    .await
            }
            Edit::Rotate {
                secret,
                now,
                overlap,
                ..
            } => {
                let locked = query(&sql.lock_subscription)
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(locked) = locked else {
                    return Err(not_found(Entity::Subscription, id));
                };
                let mut subscription = decode_subscription(&locked)?;
                subscription.rotate(secret.clone(), now, overlap);
                query(&sql.write_secrets)
                    .bind(id.as_uuid())
                    .bind(SubscriptionRow::new(&subscription)?.secrets)
                    .fetch_optional(&mut *tx)
                    .await
            }
            Edit::Delete(_) => {
                let deleted = query(&sql.delete_subscription)
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                return if deleted > 0 {
                    Ok(None)
                } else {
                    Err(not_found(Entity::Subscription, id))
                };
            }
        };
        match row.map_err(db)? {
            Some(row) => decode_subscription(&row).map(Some),
            None => Err(not_found(Entity::Subscription, id)),
        }
    }

    /// A change that returns the subscription as stored, with the new version.
    pub(super) async fn edited(
        &self,
        edit: &Edit<'_>,
    ) -> Result<Versioned<Subscription>, StoreError> {
        match self.edit(edit).await? {
            (Some(subscription), version) => Ok(Versioned::new(subscription, version)),
            (None, _) => Err(corrupt("subscription change", "no row returned")),
        }
    }
}

/// How many times a subscription change is tried when the database aborts it to break a
/// deadlock: a disable or a delete locks a subscription's deliveries and its row, which
/// attempts being recorded at the same time may lock in another order (a delivery, then the
/// row for its health), or a claim (which waits for no delivery, but may for the claim state
/// of a subscription being deleted).
const EDIT_TRIES: u32 = 3;

/// Whether the database aborted the transaction to break a deadlock or a serialization
/// conflict: trying again may succeed.
fn is_transient(error: &StoreError) -> bool {
    let StoreError::Backend(error) = error else {
        return false;
    };
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(e)) => matches!(e.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// [`Store::subscription`](crate::store::Store::subscription): subscription `id`, if stored.
pub(super) async fn get(
    store: &PostgresStore,
    id: SubscriptionId,
) -> Result<Option<Subscription>, StoreError> {
    let row = query(&store.core.sql.subscription)
        .bind(id.as_uuid())
        .fetch_optional(&store.core.pool)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_subscription).transpose()
}

/// [`Store::subscriptions`](crate::store::Store::subscriptions): every subscription, with
/// their version, in one statement.
pub(super) async fn list(
    store: &PostgresStore,
) -> Result<Versioned<Vec<Subscription>>, StoreError> {
    let rows = query(&store.core.sql.subscriptions)
        .fetch_all(&store.core.pool)
        .await
        .map_err(db)?;
    let Some(first) = rows.first() else {
        return Err(corrupt("subscriptions version", "no row"));
    };
    let version = stored_version(first.col(15)?)?;
    let mut subscriptions = Vec::with_capacity(rows.len());
    for row in &rows {
        // Without subscriptions, the one row holds only the version.
        if row.col::<Option<Uuid>>(0)?.is_some() {
            subscriptions.push(decode_subscription(row)?);
        }
    }
    Ok(Versioned::new(subscriptions, version))
}

/// [`Store::delete_subscription`](crate::store::Store::delete_subscription): a change like the
/// others; a subscription that is not stored is `None`, not an error.
pub(super) async fn delete(
    store: &PostgresStore,
    id: SubscriptionId,
) -> Result<Option<u64>, StoreError> {
    match store.edit(&Edit::Delete(id)).await {
        Ok((_, version)) => Ok(Some(version)),
        Err(StoreError::NotFound {
            entity: Entity::Subscription,
            ..
        }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A subscriptions' version as stored (a `bigint`, never negative).
pub(super) fn stored_version(version: i64) -> Result<u64, StoreError> {
    u64::try_from(version).map_err(|e| corrupt("subscriptions version", e))
}

/// A version to compare with the stored one (a version past `i64::MAX` never matches).
pub(super) fn version_param(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(-1)
}

/// Binds the 15 subscription columns, in `SUBSCRIPTION_COLUMNS` order, as `$1`-`$15`.
fn bind_subscription(
    query: sqlx::query::Query<'static, Postgres, PgArguments>,
    s: &Subscription,
) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>, StoreError> {
    let row = SubscriptionRow::new(s)?;
    Ok(query
        .bind(row.id)
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
        .bind(row.disabled_detail))
}
