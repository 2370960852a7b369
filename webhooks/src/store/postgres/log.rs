//! The delivery log: one delivery, a message's deliveries, a delivery's attempts, the log
//! filtered and paged (its filter shared with SQLite: [`push_log_filter`]); redelivering one
//! delivery, recovering a subscription's failures; and purging what is past retention.

use std::time::SystemTime;

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{PostgresStore, query};
use crate::store::sql::{
    LogDialect, RowExt, conflict, db, decode_attempt, decode_delivery, decode_message,
    delivery_page, millis, millis_ceil, not_found, push_log_filter,
};
use crate::store::{Attempt, Delivery, DeliveryQuery, Entity, Page, StoreError};
use crate::{DeliveryId, Message, MessageId, SubscriptionId};

/// The columns of a delivery view (`d`: deliveries, `m`: its message), in the order
/// [`decode_delivery`] reads them.
pub(super) const DELIVERY_COLUMNS: &str = "d.id, m.id, d.subscription_id, m.event_type, d.status, \
     d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at, d.lease IS NOT NULL, \
     d.requeued";

/// The view of delivery `$1`.
pub(super) const DELIVERY: &str = "SELECT {delivery} FROM {s}.deliveries d \
     JOIN {s}.messages m ON m.seq = d.message WHERE d.id = $1";

/// Message `$1`, as [`decode_message`] reads it.
pub(super) const MESSAGE: &str = "SELECT id, created_at, event_type, labels::text, body, \
     ordering_key FROM {s}.messages WHERE id = $1";

/// The views of the deliveries of message `$1`, in the order they were stored.
pub(super) const MESSAGE_DELIVERIES: &str = "SELECT {delivery} FROM {s}.messages m \
     JOIN {s}.deliveries d ON d.message = m.seq WHERE m.id = $1 ORDER BY d.pk";

/// The attempts of delivery `$1`, first to last, as [`decode_attempt`] reads them.
pub(super) const ATTEMPTS: &str = "SELECT a.number, a.at, a.latency_ns, a.status_code, a.error, \
     a.error_message, a.response_body FROM {s}.deliveries d \
     JOIN {s}.attempts a ON a.delivery = d.pk WHERE d.id = $1 ORDER BY a.pk";

/// The start of the delivery log's query (`SELECT` of the delivery view, `WHERE true`), which
/// [`push_log_filter`] continues.
pub(super) const LOG: &str = "SELECT {delivery} FROM {s}.deliveries d JOIN {s}.messages m \
     ON m.seq = d.message WHERE true";

/// Makes a delivery that is not in flight due at `$2`, shown pending until its next attempt.
/// A lapsed lease is dropped (its holder's late attempt no longer applies). `$3`, `$4`: channel
/// and payload.
pub(super) const REDELIVER: &str = "\
WITH d AS (
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $2, requeued = true,
        lease = NULL, lease_until = NULL
    WHERE d.id = $1 AND (d.lease IS NULL OR d.lease_until <= $2)
    RETURNING d.*
), wake AS (
    SELECT pg_notify($3, $4) FROM d
)
SELECT {delivery}, (SELECT count(*) FROM wake) FROM d JOIN {s}.messages m ON m.seq = d.message";

/// Whether delivery `$1` exists (a redelivery that requeued nothing: then it is in flight).
pub(super) const LEASED: &str = "SELECT 1 FROM {s}.deliveries WHERE id = $1";

/// Requeues a subscription's exhausted and skipped deliveries created in [`$2`, `$3`), due at
/// `$4`, as `REDELIVER` does: none if one of them is in flight (a skipped one whose attempt is
/// under way), which is returned. `$5`, `$6`: channel and payload.
pub(super) const RECOVER: &str = "\
WITH known AS (
    SELECT 1 FROM {s}.subscriptions WHERE id = $1
), held AS (
    SELECT d.id FROM {s}.deliveries d
    WHERE d.subscription_id = $1 AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
      AND d.lease IS NOT NULL AND d.lease_until > $4
    LIMIT 1
), upd AS (
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $4, requeued = true,
        lease = NULL, lease_until = NULL
    WHERE d.subscription_id = $1 AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
      AND NOT EXISTS (SELECT 1 FROM held)
    RETURNING 1
), wake AS (
    SELECT pg_notify($5, $6) WHERE EXISTS (SELECT 1 FROM upd)
)
SELECT EXISTS (SELECT 1 FROM known), (SELECT id FROM held), (SELECT count(*) FROM upd),
    (SELECT count(*) FROM wake)";

/// Up to `$2` messages created before `$1` whose deliveries were all delivered, deleted with
/// their deliveries and their attempts (no foreign keys since version 3: in this statement).
pub(super) const PURGE: &str = "\
WITH doomed AS (
    SELECT m.seq FROM {s}.messages m
    WHERE m.created_at < $1 AND NOT EXISTS (
        SELECT 1 FROM {s}.deliveries d WHERE d.message = m.seq AND d.status <> 'delivered')
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), dlv AS (
    DELETE FROM {s}.deliveries d USING doomed WHERE d.message = doomed.seq RETURNING d.pk
), att AS (
    DELETE FROM {s}.attempts a USING dlv WHERE a.delivery = dlv.pk
)
DELETE FROM {s}.messages m USING doomed WHERE m.seq = doomed.seq";

/// Deletes up to `$2` idempotency keys stored before `$1`: their window is long past.
pub(super) const PURGE_KEYS: &str = "DELETE FROM {s}.idempotency_keys WHERE key IN (\
     SELECT key FROM {s}.idempotency_keys WHERE created_at < $1 LIMIT $2)";

/// Messages deleted per statement by `purge`, so that retention never holds locks long.
const PURGE_CHUNK: i64 = 1000;

/// [`Store::delivery`](crate::store::Store::delivery): the view of one delivery.
pub(super) async fn delivery(
    store: &PostgresStore,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let row = query(&store.core.sql.delivery)
        .bind(id.as_uuid())
        .fetch_optional(&store.core.pool)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_delivery).transpose()
}

/// [`Store::message`](crate::store::Store::message): one message as stored.
pub(super) async fn message(
    store: &PostgresStore,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let row = query(&store.core.sql.message)
        .bind(id.as_uuid())
        .fetch_optional(&store.core.pool)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_message).transpose()
}

/// [`Store::message_deliveries`](crate::store::Store::message_deliveries): a message's deliveries,
/// in the order they were stored.
pub(super) async fn message_deliveries(
    store: &PostgresStore,
    id: MessageId,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = query(&store.core.sql.message_deliveries)
        .bind(id.as_uuid())
        .fetch_all(&store.core.pool)
        .await
        .map_err(db)?;
    rows.iter().map(decode_delivery).collect()
}

/// [`Store::attempts`](crate::store::Store::attempts): a delivery's attempts, first to last.
pub(super) async fn attempts(
    store: &PostgresStore,
    id: DeliveryId,
) -> Result<Vec<Attempt>, StoreError> {
    let rows = query(&store.core.sql.attempts)
        .bind(id.as_uuid())
        .fetch_all(&store.core.pool)
        .await
        .map_err(db)?;
    rows.iter().map(|row| decode_attempt(id, row)).collect()
}

/// [`Store::query_deliveries`](crate::store::Store::query_deliveries): [`LOG`], continued by the
/// filter both SQL stores share ([`push_log_filter`]).
pub(super) async fn query_deliveries(
    store: &PostgresStore,
    query: &DeliveryQuery,
) -> Result<Page<Delivery>, StoreError> {
    let mut sql = QueryBuilder::<Postgres>::new(store.core.sql.log.as_str());
    let size = push_log_filter(&mut sql, query, &store.core.sql.subscriptions_table);
    let rows = sql.build().fetch_all(&store.core.pool).await.map_err(db)?;
    delivery_page(&rows, size)
}

/// [`Store::redeliver`](crate::store::Store::redeliver): [`REDELIVER`]; a delivery it did not
/// requeue is in flight (or not stored).
pub(super) async fn redeliver(
    store: &PostgresStore,
    id: DeliveryId,
    now: SystemTime,
) -> Result<Delivery, StoreError> {
    let row = query(&store.core.sql.redeliver)
        .bind(id.as_uuid())
        .bind(millis(now))
        .bind(store.core.channel.clone())
        .bind(store.core.own("work"))
        .fetch_optional(&store.core.pool)
        .await
        .map_err(db)?;
    if let Some(row) = row {
        return decode_delivery(&row);
    }
    // It exists but was not requeued: its lease holds.
    let exists = query(&store.core.sql.leased)
        .bind(id.as_uuid())
        .fetch_optional(&store.core.pool)
        .await
        .map_err(db)?;
    Err(match exists {
        Some(_) => conflict(Entity::Delivery, id, "is in flight"),
        None => not_found(Entity::Delivery, id),
    })
}

/// [`Store::recover`](crate::store::Store::recover): [`RECOVER`].
pub(super) async fn recover(
    store: &PostgresStore,
    subscription: SubscriptionId,
    since: SystemTime,
    until: SystemTime,
    now: SystemTime,
) -> Result<u64, StoreError> {
    let row = query(&store.core.sql.recover)
        .bind(subscription.as_uuid())
        .bind(millis_ceil(since))
        .bind(millis_ceil(until))
        .bind(millis(now))
        .bind(store.core.channel.clone())
        .bind(store.core.own("work"))
        .fetch_one(&store.core.pool)
        .await
        .map_err(db)?;
    if !row.col::<bool>(0)? {
        return Err(not_found(Entity::Subscription, subscription));
    }
    if let Some(held) = row.col::<Option<Uuid>>(1)? {
        return Err(conflict(
            Entity::Delivery,
            DeliveryId::from_uuid(held),
            "is in flight",
        ));
    }
    let requeued: i64 = row.col(2)?;
    Ok(requeued.unsigned_abs())
}

/// [`Store::purge`](crate::store::Store::purge): [`PURGE_CHUNK`] messages per statement, then the
/// idempotency keys stored before `before`.
pub(super) async fn purge(store: &PostgresStore, before: SystemTime) -> Result<u64, StoreError> {
    let before = millis(before);
    let mut purged = 0;
    loop {
        let done = query(&store.core.sql.purge)
            .bind(before)
            .bind(PURGE_CHUNK)
            .execute(&store.core.pool)
            .await
            .map_err(db)?
            .rows_affected();
        purged += done;
        if done < PURGE_CHUNK.unsigned_abs() {
            break;
        }
    }
    // The idempotency keys stored before `before`: their window is long past.
    loop {
        let done = query(&store.core.sql.purge_keys)
            .bind(before)
            .bind(PURGE_CHUNK)
            .execute(&store.core.pool)
            .await
            .map_err(db)?
            .rows_affected();
        if done < PURGE_CHUNK.unsigned_abs() {
            return Ok(purged);
        }
    }
}

/// PostgreSQL's side of the delivery log's filter: ids are `uuid`s, labels (a message's or a
/// subscription's) a `json` object.
impl LogDialect for Postgres {
    const FALSE: &'static str = "false";
    const TRUE: &'static str = "true";

    fn push_id(sql: &mut QueryBuilder<Self>, id: Uuid) {
        sql.push_bind(id);
    }

    fn push_label(sql: &mut QueryBuilder<Self>, labels: &str, name: &str, value: &str) {
        sql.push("(")
            .push(labels)
            .push(" ->> ")
            .push_bind(name.to_owned())
            .push(") = ")
            .push_bind(value.to_owned());
    }
}
