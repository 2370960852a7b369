//! The delivery log: reading deliveries and attempts, querying them page by page, redelivering
//! one, recovering a range of them, and purging what is past retention.

use std::time::SystemTime;

use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use super::claim::RELEASE_LAPSED;
use super::row::blob;
use crate::store::sql::{
    LogDialect, RowExt, conflict, corrupt, count, db, decode_attempt, decode_delivery,
    decode_message, delivery_page, millis, millis_ceil, not_found, push_log_filter,
};
use crate::store::{Attempt, Delivery, DeliveryQuery, Entity, Page, StoreError};
use crate::{DeliveryId, Message, MessageId, SubscriptionId};

/// The columns of a delivery view (`d`: deliveries, `m`: its message), in the order
/// [`decode_delivery`] reads them.
macro_rules! delivery_columns {
    () => {
        "d.id, m.id, d.subscription_id, m.event_type, d.status, d.attempts, d.next_attempt_at, \
         d.created_at, d.last_attempt_at, d.lease IS NOT NULL, d.requeued"
    };
}

/// Messages deleted per transaction by `purge`, so that retention never holds the writer long.
const PURGE_CHUNK: usize = 512;

/// Reads a delivery (the view). Parameter: its id.
const SELECT_DELIVERY: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE d.id = ?"
);

/// Reads a message, as [`decode_message`] reads it. Parameter: its id.
const MESSAGE: &str = "SELECT id, created_at, event_type, labels, body, ordering_key FROM messages \
                       WHERE id = ?";

/// Reads a message's deliveries (the view), in the order they were enqueued. Parameter: the
/// message's id.
const MESSAGE_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM messages m JOIN deliveries d ON d.message = m.seq WHERE m.id = ? ORDER BY d.pk"
);

/// Reads a delivery's attempts, first first, in the order [`decode_attempt`] reads them.
/// Parameter: the delivery's id.
const ATTEMPTS: &str = "SELECT a.number, a.at, a.latency_ns, a.status_code, a.error, \
                        a.error_message, a.response_body FROM deliveries d \
                        JOIN attempts a ON a.delivery = d.pk WHERE d.id = ? ORDER BY a.pk";

/// Deletes the idempotency keys stored before a time. Parameter: the time (unix ms).
const PURGE_KEYS: &str = "DELETE FROM idempotency_keys WHERE created_at < ?";

/// The next messages `purge` may delete: created before a time, every delivery delivered, after
/// a `(created_at, seq)` (where the previous chunk ended), oldest first. Parameters: the time
/// (unix ms), `created_at`, `seq`, how many. Its rows: `created_at`, `seq`.
const PURGEABLE: &str = "SELECT m.created_at, m.seq FROM messages m \
                         WHERE m.created_at < ? AND (m.created_at, m.seq) > (?, ?) AND NOT EXISTS \
                         (SELECT 1 FROM deliveries d WHERE d.message = m.seq \
                         AND d.status <> 'delivered') \
                         ORDER BY m.created_at, m.seq LIMIT ?";

/// The statements that delete the messages `list` (their `seq`s, comma-separated; our own
/// integers, spliced in: nothing to escape), their deliveries and their attempts, in the order
/// they must run. Not cached: their text varies with the list.
fn purge_statements(list: &str) -> [String; 3] {
    [
        format!(
            "DELETE FROM attempts WHERE delivery IN \
             (SELECT pk FROM deliveries WHERE message IN ({list}))"
        ),
        format!("DELETE FROM deliveries WHERE message IN ({list})"),
        format!("DELETE FROM messages WHERE seq IN ({list})"),
    ]
}

/// Whether a delivery is leased (NULL: there is none). Parameter: its id.
const LEASED: &str = "SELECT lease IS NOT NULL FROM deliveries WHERE id = ?";

/// Makes a delivery pending again, due at once, marked requeued. Parameters: now (unix ms), its
/// id.
const REQUEUE: &str = "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, \
                       requeued = 1 WHERE id = ?";

/// Whether a subscription exists. Parameter: its id.
const SUBSCRIPTION_EXISTS: &str = "SELECT 1 FROM subscriptions WHERE id = ?";

/// A delivery of a subscription, created in a range, skipped while in flight and still leased.
/// Parameters: the subscription's id, now, since, until (unix ms). Its row: the delivery's id.
const LEASED_SKIPPED: &str = "SELECT id FROM deliveries WHERE subscription_id = ? \
                              AND status = 'skipped' AND lease IS NOT NULL AND lease_until > ? \
                              AND created_at >= ? AND created_at < ? LIMIT 1";

/// Makes a subscription's exhausted and skipped deliveries created in a range pending again,
/// due at once, marked requeued, their leases released. Parameters: now, the subscription's id,
/// since, until (unix ms).
const REQUEUE_RANGE: &str = "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, \
                             requeued = 1, lease = NULL, lease_until = NULL \
                             WHERE subscription_id = ? AND status IN ('exhausted', 'skipped') \
                             AND created_at >= ? AND created_at < ?";

/// `Store::delivery`, from a reader.
pub(super) async fn delivery(
    store: &SqliteStore,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let row = sqlx::query(SELECT_DELIVERY)
        .bind(blob(id.as_uuid()))
        .fetch_optional(&store.inner.readers)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_delivery).transpose()
}

/// `Store::message`, from a reader.
pub(super) async fn message(
    store: &SqliteStore,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let row = sqlx::query(MESSAGE)
        .bind(blob(id.as_uuid()))
        .fetch_optional(&store.inner.readers)
        .await
        .map_err(db)?;
    row.as_ref().map(decode_message).transpose()
}

/// `Store::message_deliveries`, from a reader.
pub(super) async fn message_deliveries(
    store: &SqliteStore,
    id: MessageId,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(MESSAGE_DELIVERIES)
        .bind(blob(id.as_uuid()))
        .fetch_all(&store.inner.readers)
        .await
        .map_err(db)?;
    rows.iter().map(decode_delivery).collect()
}

/// `Store::attempts`, from a reader.
pub(super) async fn attempts(
    store: &SqliteStore,
    id: DeliveryId,
) -> Result<Vec<Attempt>, StoreError> {
    let rows = sqlx::query(ATTEMPTS)
        .bind(blob(id.as_uuid()))
        .fetch_all(&store.inner.readers)
        .await
        .map_err(db)?;
    rows.iter().map(|row| decode_attempt(id, row)).collect()
}

/// `Store::purge`: the idempotency keys, then the messages whose deliveries are all delivered,
/// [`PURGE_CHUNK`] per transaction.
pub(super) async fn purge(store: &SqliteStore, before: SystemTime) -> Result<u64, StoreError> {
    // Creation times are whole milliseconds: `< before` holds exactly against it rounded up.
    let before = millis_ceil(before);
    let mut tx = store.write().await?;
    sqlx::query(PURGE_KEYS)
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut purged = 0;
    // Where the previous chunk ended, so that old messages kept (undelivered) are examined
    // once per purge, not once per chunk.
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let mut tx = store.write().await?;
        let rows = sqlx::query(PURGEABLE)
            .bind(before)
            .bind(after.0)
            .bind(after.1)
            .bind(count(PURGE_CHUNK))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut seqs = Vec::with_capacity(rows.len());
        for row in &rows {
            after = (row.col(0)?, row.col(1)?);
            seqs.push(after.1.to_string());
        }
        if seqs.is_empty() {
            break;
        }
        // A list of our own integers: nothing to escape. Not cached: its length varies.
        let list = seqs.join(",");
        for sql in purge_statements(&list) {
            sqlx::query(AssertSqlSafe(sql))
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        purged += seqs.len() as u64;
        if seqs.len() < PURGE_CHUNK {
            break;
        }
    }
    Ok(purged)
}

/// `Store::query_deliveries`, newest first: the one statement that is not a constant, built
/// here for the filters given.
pub(super) async fn query_deliveries(
    store: &SqliteStore,
    query: &DeliveryQuery,
) -> Result<Page<Delivery>, StoreError> {
    let mut sql = QueryBuilder::<Sqlite>::new(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE 1"
    ));
    let size = push_log_filter(&mut sql, query, "subscriptions");
    let rows = sql
        .build()
        .fetch_all(&store.inner.readers)
        .await
        .map_err(db)?;
    delivery_page(&rows, size)
}

/// `Store::redeliver`: after releasing the leases that lapsed; one in flight is a conflict.
pub(super) async fn redeliver(
    store: &SqliteStore,
    id: DeliveryId,
    now: SystemTime,
) -> Result<Delivery, StoreError> {
    let key = blob(id.as_uuid());
    let mut tx = store.write().await?;
    // A lapsed lease holds nothing: released, as a claim would.
    sqlx::query(RELEASE_LAPSED)
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let leased: Option<bool> = sqlx::query_scalar(LEASED)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    if leased != Some(false) {
        // The leases released stay released.
        tx.commit().await.map_err(db)?;
        return Err(match leased {
            None => not_found(Entity::Delivery, id),
            Some(_) => conflict(Entity::Delivery, id, "is in flight"),
        });
    }
    sqlx::query(REQUEUE)
        .bind(millis(now))
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let row = sqlx::query(SELECT_DELIVERY)
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let delivery = decode_delivery(&row)?;
    tx.commit().await.map_err(db)?;
    Ok(delivery)
}

/// `Store::recover`: a range of a subscription's exhausted and skipped deliveries; one skipped
/// while in flight is a conflict.
pub(super) async fn recover(
    store: &SqliteStore,
    subscription: SubscriptionId,
    since: SystemTime,
    until: SystemTime,
    now: SystemTime,
) -> Result<u64, StoreError> {
    let key = blob(subscription.as_uuid());
    let mut tx = store.write().await?;
    let known = sqlx::query(SUBSCRIPTION_EXISTS)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    if known.is_none() {
        return Err(not_found(Entity::Subscription, subscription));
    }
    let (since, until) = (millis_ceil(since), millis_ceil(until));
    // A delivery skipped while in flight holds its lease until its attempt is recorded or the
    // lease lapses: it cannot be requeued, as `redeliver` refuses it; then nothing is.
    let leased: Option<Vec<u8>> = sqlx::query_scalar(LEASED_SKIPPED)
        .bind(&key)
        .bind(millis(now))
        .bind(since)
        .bind(until)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    if let Some(id) = leased {
        let id = Uuid::from_slice(&id).map_err(|e| corrupt("id", e))?;
        return Err(conflict(
            Entity::Delivery,
            DeliveryId::from_uuid(id),
            "is in flight",
        ));
    }
    let done = sqlx::query(REQUEUE_RANGE)
        .bind(millis(now))
        .bind(&key)
        .bind(since)
        .bind(until)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected())
}

/// How the delivery log's shared filter (`push_log_filter`) speaks SQLite: ids are 16-byte
/// blobs, labels are matched in the JSON (the message's, or a subscription's) with `json_each`.
impl LogDialect for Sqlite {
    const FALSE: &'static str = "0";
    const TRUE: &'static str = "1";

    fn push_id(sql: &mut QueryBuilder<Self>, id: Uuid) {
        sql.push_bind(blob(id));
    }

    fn push_label(sql: &mut QueryBuilder<Self>, labels: &str, name: &str, value: &str) {
        sql.push("EXISTS (SELECT 1 FROM json_each(")
            .push(labels)
            .push(") l WHERE l.key = ")
            .push_bind(name.to_owned())
            .push(" AND l.value = ")
            .push_bind(value.to_owned())
            .push(")");
    }
}
