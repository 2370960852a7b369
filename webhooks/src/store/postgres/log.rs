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

/// The deliveries with their leases (`lease`, NULL for none), as the delivery views read them
/// (`{deliveries} d`): since schema version 4 a lease is a row of `leases`, not a column.
pub(super) const DELIVERIES: &str = "(SELECT x.*, l.lease FROM {s}.deliveries x \
     LEFT JOIN {s}.leases l ON l.delivery = x.pk)";

/// The columns of a delivery view (`d`: [`DELIVERIES`], `m`: its message), in the order
/// [`decode_delivery`] reads them.
pub(super) const DELIVERY_COLUMNS: &str = "d.id, m.id, d.subscription_id, m.event_type, d.status, \
     d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at, d.lease IS NOT NULL, \
     d.requeued";

/// The view of delivery `$1`.
pub(super) const DELIVERY: &str = "SELECT {delivery} FROM {deliveries} d \
     JOIN {s}.messages m ON m.seq = d.message WHERE d.id = $1";

/// Message `$1`, as [`decode_message`] reads it.
pub(super) const MESSAGE: &str = "SELECT id, created_at, event_type, labels::text, body, \
     ordering_key FROM {s}.messages WHERE id = $1";

/// The views of the deliveries of message `$1`, in the order they were stored.
pub(super) const MESSAGE_DELIVERIES: &str = "SELECT {delivery} FROM {s}.messages m \
     JOIN {deliveries} d ON d.message = m.seq WHERE m.id = $1 ORDER BY d.pk";

/// The attempts of delivery `$1`, first to last, as [`decode_attempt`] reads them.
pub(super) const ATTEMPTS: &str = "SELECT a.number, a.at, a.latency_ns, a.status_code, a.error, \
     a.error_message, a.response_body FROM {s}.deliveries d \
     JOIN {s}.attempts a ON a.delivery = d.pk WHERE d.id = $1 ORDER BY a.pk";

/// The start of the delivery log's query (`SELECT` of the delivery view, `WHERE true`), which
/// [`push_log_filter`] continues.
pub(super) const LOG: &str = "SELECT {delivery} FROM {deliveries} d JOIN {s}.messages m \
     ON m.seq = d.message WHERE true";

/// Locks delivery `$1`'s queue row, if it has one (it is pending), until the transaction ends:
/// then no claim can lease it while [`REDELIVER`], in the next statement (a fresh snapshot),
/// looks for a lease that holds.
pub(super) const LOCK_QUEUED: &str = "SELECT 1 FROM {s}.queue q \
     JOIN {s}.deliveries d ON d.pk = q.delivery WHERE d.id = $1 FOR UPDATE OF q";

/// Makes a delivery that is not in flight due at `$2`, shown pending until its next attempt,
/// and queues it (or moves its due time, if it is queued). A lapsed lease is dropped (its
/// holder's late attempt no longer applies). `$3`, `$4`: channel and payload. Run after
/// [`LOCK_QUEUED`], in its transaction.
pub(super) const REDELIVER: &str = "\
WITH target AS (
    SELECT d.pk FROM {s}.deliveries d
    WHERE d.id = $1
      AND NOT EXISTS (SELECT 1 FROM {s}.leases l WHERE l.delivery = d.pk AND l.lease_until > $2)
), lapsed AS (
    DELETE FROM {s}.leases l USING target WHERE l.delivery = target.pk RETURNING 1
), d AS (
    -- The scalar subquery runs first: the lease goes before the log row is locked.
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $2, requeued = true
    FROM target WHERE d.pk = target.pk AND (SELECT count(*) FROM lapsed) >= 0
    RETURNING d.*
), q AS (
    INSERT INTO {s}.queue (delivery, subscription_id, message, ordering_key, next_attempt_at)
    SELECT d.pk, d.subscription_id, d.message, d.ordering_key, $2 FROM d
    ON CONFLICT (delivery) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at
), wake AS (
    SELECT pg_notify($3, $4) FROM d
)
SELECT {delivery}, (SELECT count(*) FROM wake)
FROM (SELECT x.*, NULL::uuid AS lease FROM d x) d JOIN {s}.messages m ON m.seq = d.message";

/// Whether delivery `$1` exists (a redelivery that requeued nothing: then it is in flight).
pub(super) const LEASED: &str = "SELECT 1 FROM {s}.deliveries WHERE id = $1";

/// Requeues a subscription's exhausted and skipped deliveries created in [`$2`, `$3`), due at
/// `$4`, as `REDELIVER` does: none if one of them is in flight (a skipped one whose attempt is
/// under way), which is returned. Their lapsed leases go first (the order in which recorded
/// attempts take them), then the log rows, then the queue rows. `$5`, `$6`: channel and
/// payload.
pub(super) const RECOVER: &str = "\
WITH known AS (
    SELECT 1 FROM {s}.subscriptions WHERE id = $1
), held AS (
    SELECT d.id FROM {s}.deliveries d JOIN {s}.leases l ON l.delivery = d.pk
    WHERE d.subscription_id = $1 AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
      AND l.lease_until > $4
    LIMIT 1
), lapsed AS (
    DELETE FROM {s}.leases l USING {s}.deliveries d
    WHERE l.delivery = d.pk AND d.subscription_id = $1
      AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
      AND NOT EXISTS (SELECT 1 FROM held)
    RETURNING 1
), upd AS (
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $4, requeued = true
    WHERE d.subscription_id = $1 AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
      AND NOT EXISTS (SELECT 1 FROM held)
      AND (SELECT count(*) FROM lapsed) >= 0
    RETURNING d.pk, d.subscription_id, d.message, d.ordering_key
), q AS (
    INSERT INTO {s}.queue (delivery, subscription_id, message, ordering_key, next_attempt_at)
    SELECT upd.pk, upd.subscription_id, upd.message, upd.ordering_key, $4 FROM upd
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
    let mut tx = store.core.pool.begin().await.map_err(db)?;
    query(&store.core.sql.lock_queued)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let row = query(&store.core.sql.redeliver)
        .bind(id.as_uuid())
        .bind(millis(now))
        .bind(store.core.channel.clone())
        .bind(store.core.own("work"))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
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
