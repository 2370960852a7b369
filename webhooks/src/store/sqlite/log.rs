//! The delivery log: reading deliveries and attempts, querying them page by page, redelivering
//! one, recovering a range of them, and purging what is past retention.

use std::time::SystemTime;

use rusqlite::types::Value;
use uuid::Uuid;

use super::SqliteStore;
use super::claim::RELEASE_LAPSED;
use super::connect::begin;
use super::row::{blob, db, execute, query_all, query_opt};
use crate::store::sql::{
    Columns, LogSql, conflict, count, decode_attempt, decode_delivery, decode_message, millis,
    millis_ceil, not_found, page_of, write_log_filter,
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
    let key = blob(id.as_uuid());
    store
        .inner
        .read(move |conn| query_opt(conn, SELECT_DELIVERY, [key], |row| decode_delivery(row)))
        .await
}

/// `Store::message`, from a reader.
pub(super) async fn message(
    store: &SqliteStore,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .read(move |conn| query_opt(conn, MESSAGE, [key], |row| decode_message(row)))
        .await
}

/// `Store::message_deliveries`, from a reader.
pub(super) async fn message_deliveries(
    store: &SqliteStore,
    id: MessageId,
) -> Result<Vec<Delivery>, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .read(move |conn| query_all(conn, MESSAGE_DELIVERIES, [key], |row| decode_delivery(row)))
        .await
}

/// `Store::attempts`, from a reader.
pub(super) async fn attempts(
    store: &SqliteStore,
    id: DeliveryId,
) -> Result<Vec<Attempt>, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .read(move |conn| query_all(conn, ATTEMPTS, [key], |row| decode_attempt(id, row)))
        .await
}

/// `Store::purge`: the idempotency keys, then the messages whose deliveries are all delivered,
/// [`PURGE_CHUNK`] per transaction, each its own job on the writer thread so that rounds run
/// between them.
pub(super) async fn purge(store: &SqliteStore, before: SystemTime) -> Result<u64, StoreError> {
    // Creation times are whole milliseconds: `< before` holds exactly against it rounded up.
    let before = millis_ceil(before);
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            execute(&tx, PURGE_KEYS, [before])?;
            tx.commit().map_err(db)
        })
        .await?;
    let mut purged = 0;
    // Where the previous chunk ended, so that old messages kept (undelivered) are examined
    // once per purge, not once per chunk.
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let (chunk, last) = store
            .inner
            .write(move |writer| {
                let tx = begin(&mut writer.conn)?;
                let rows = query_all(
                    &tx,
                    PURGEABLE,
                    [before, after.0, after.1, count(PURGE_CHUNK)],
                    |row| Ok((row.int(0)?, row.int(1)?)),
                )?;
                let Some(&last) = rows.last() else {
                    return Ok((0, after));
                };
                // A list of our own integers: nothing to escape. Not cached: its length varies.
                let list = rows
                    .iter()
                    .map(|(_, seq)| seq.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                for sql in purge_statements(&list) {
                    tx.execute(&sql, []).map_err(db)?;
                }
                tx.commit().map_err(db)?;
                Ok((rows.len(), last))
            })
            .await?;
        after = last;
        purged += chunk as u64;
        if chunk < PURGE_CHUNK {
            break;
        }
    }
    Ok(purged)
}

/// The delivery log's query as SQLite statement text and its parameters: ids are 16-byte
/// blobs, labels are matched in the JSON (the message's, or a subscription's) with `json_each`.
struct LogQuery {
    sql: String,
    params: Vec<Value>,
}

impl LogSql for LogQuery {
    const FALSE: &'static str = "0";
    const TRUE: &'static str = "1";

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    fn bind_int(&mut self, value: i64) {
        self.params.push(Value::Integer(value));
        self.sql.push('?');
    }

    fn bind_text(&mut self, value: String) {
        self.params.push(Value::Text(value));
        self.sql.push('?');
    }

    fn bind_id(&mut self, id: Uuid) {
        self.params.push(Value::Blob(blob(id)));
        self.sql.push('?');
    }

    fn push_label(&mut self, labels: &str, name: &str, value: &str) {
        self.push("EXISTS (SELECT 1 FROM json_each(");
        self.push(labels);
        self.push(") l WHERE l.key = ");
        self.bind_text(name.to_owned());
        self.push(" AND l.value = ");
        self.bind_text(value.to_owned());
        self.push(")");
    }
}

/// `Store::query_deliveries`, newest first: the one statement that is not a constant, built
/// here for the filters given (its text depends on which filters only, so it is cached too).
pub(super) async fn query_deliveries(
    store: &SqliteStore,
    query: &DeliveryQuery,
) -> Result<Page<Delivery>, StoreError> {
    let mut sql = LogQuery {
        sql: String::from(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE 1"
        )),
        params: Vec::new(),
    };
    let size = write_log_filter(&mut sql, query, "subscriptions");
    let LogQuery { sql, params } = sql;
    let items = store
        .inner
        .read(move |conn| {
            query_all(conn, &sql, rusqlite::params_from_iter(params), |row| {
                decode_delivery(row)
            })
        })
        .await?;
    Ok(page_of(items, size))
}

/// `Store::redeliver`: after releasing the leases that lapsed; one in flight is a conflict.
pub(super) async fn redeliver(
    store: &SqliteStore,
    id: DeliveryId,
    now: SystemTime,
) -> Result<Delivery, StoreError> {
    let key = blob(id.as_uuid());
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            // A lapsed lease holds nothing: released, as a claim would.
            execute(&tx, RELEASE_LAPSED, [millis(now)])?;
            let leased = query_opt(&tx, LEASED, [&key], |row| row.flag(0))?;
            if leased != Some(false) {
                // The leases released stay released.
                tx.commit().map_err(db)?;
                return Err(match leased {
                    None => not_found(Entity::Delivery, id),
                    Some(_) => conflict(Entity::Delivery, id, "is in flight"),
                });
            }
            execute(&tx, REQUEUE, rusqlite::params![millis(now), key])?;
            let delivery = query_opt(&tx, SELECT_DELIVERY, [&key], |row| decode_delivery(row))?
                .ok_or_else(|| not_found(Entity::Delivery, id))?;
            tx.commit().map_err(db)?;
            Ok(delivery)
        })
        .await
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
    let (since, until) = (millis_ceil(since), millis_ceil(until));
    store
        .inner
        .write(move |writer| {
            let tx = begin(&mut writer.conn)?;
            if query_opt(&tx, SUBSCRIPTION_EXISTS, [&key], |_| Ok(()))?.is_none() {
                return Err(not_found(Entity::Subscription, subscription));
            }
            // A delivery skipped while in flight holds its lease until its attempt is recorded
            // or the lease lapses: it cannot be requeued, as `redeliver` refuses it; then
            // nothing is.
            let leased = query_opt(
                &tx,
                LEASED_SKIPPED,
                rusqlite::params![key, millis(now), since, until],
                |row| row.id(0),
            )?;
            if let Some(id) = leased {
                return Err(conflict(
                    Entity::Delivery,
                    DeliveryId::from_uuid(id),
                    "is in flight",
                ));
            }
            let done = execute(
                &tx,
                REQUEUE_RANGE,
                rusqlite::params![millis(now), key, since, until],
            )?;
            tx.commit().map_err(db)?;
            Ok(u64::try_from(done).unwrap_or(u64::MAX))
        })
        .await
}
