//! **Where a delivery is enqueued**: a message and its deliveries, matched against a version of
//! the subscriptions (see `subscriptions.rs`). Without an idempotency key, concurrent calls are
//! group-committed, one statement per batch ([`ENQUEUE_BATCH`]); with a key, or inside the
//! application's transaction (`send_in_tx`: [`PostgresStore::enqueue_in`]), one statement of its
//! own ([`ENQUEUE`]), which checks and records the key.

use std::sync::Arc;

use sqlx::postgres::PgConnection;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::group_commit::{Batched, OnDrop, stopped};
use super::subscriptions::{stored_version, version_param};
use super::{Core, PostgresStore, query};
use crate::store::sql::{RowExt, conflict, corrupt, db, json, millis, not_found};
use crate::store::{Enqueue, Enqueued, Entity, NewDelivery, StoreError};
use crate::{DeliveryId, Message, MessageId, SubscriptionId};

/// A message and its deliveries (the pending ones in the queue too), in one statement (atomic
/// on its own, one round trip, and usable inside the application's transaction): `enqueue`
/// with an idempotency key, and `send_in_tx`.
///
/// The version row is locked `FOR SHARE` before anything is written (every insert reads `go`, which
/// reads it), after the schema's version lock in shared mode (see
/// [`BUMP_VERSION`](super::subscriptions::BUMP_VERSION)), and compared as locked: in READ COMMITTED
/// a lock that waited for a change returns the changed row, newer than the statement's snapshot. A
/// stale version, a duplicate key, an unknown subscription or a taken message id store no message
/// and raise no error, so that the application's transaction stays usable. (A key taken for a
/// message that then does not go in is given back by `enqueue`'s rollback; `send_in_tx` sets no
/// key.)
///
/// `$1`-`$6`: the message (id, time, event type, labels, body, ordering key); `$7`, `$8`, `$9`:
/// the deliveries' subscriptions, ids and skipped flags, in order; `$10`: strict (an unknown
/// subscription fails the whole enqueue) or not (subscriptions deleted meanwhile are left
/// out); `$11`: the version matched against; `$12`, `$13`: the idempotency key (NULL: none)
/// and the start of its window; `$14`, `$15`: channel and payload, notified when a delivery is
/// due. Returns the version, whether it matched, the unknown subscription (strict), whether
/// the key was taken, and the message's seq if it went in.
pub(super) const ENQUEUE: &str = "\
WITH vlock AS MATERIALIZED (
    SELECT pg_advisory_xact_lock_shared({version_lock})
), v AS MATERIALIZED (
    SELECT sv.version FROM {s}.subscriptions_version sv, vlock FOR SHARE OF sv
), ok AS MATERIALIZED (
    SELECT 1 FROM v WHERE v.version = $11
), unknown AS MATERIALIZED (
    SELECT u.sub FROM unnest($7::uuid[]) AS u(sub)
    WHERE $10 AND EXISTS (SELECT 1 FROM ok)
      AND NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.sub)
    LIMIT 1
), go AS MATERIALIZED (
    SELECT 1 FROM ok WHERE NOT EXISTS (SELECT 1 FROM unknown)
), k AS (
    INSERT INTO {s}.idempotency_keys AS k (key, message_id, created_at)
    SELECT $12, $1, $2 FROM ok WHERE $12::text IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id,
        created_at = EXCLUDED.created_at
        WHERE k.created_at < $13
    RETURNING 1
), m AS (
    INSERT INTO {s}.messages (id, created_at, event_type, labels, body, ordering_key)
    SELECT $1, $2, $3, $4::json, $5, $6 FROM go
    WHERE $12::text IS NULL OR EXISTS (SELECT 1 FROM k)
    ON CONFLICT (id) DO NOTHING
    RETURNING seq
), d AS (
    INSERT INTO {s}.deliveries (id, message, subscription_id, created_at, status,
        next_attempt_at, ordering_key)
    SELECT u.id, m.seq, u.sub, $2,
        CASE WHEN u.skipped OR s.disabled_at IS NOT NULL THEN 'skipped' ELSE 'pending' END,
        CASE WHEN u.skipped OR s.disabled_at IS NOT NULL THEN NULL ELSE $2 END,
        $6
    FROM m CROSS JOIN unnest($8::uuid[], $7::uuid[], $9::boolean[])
        WITH ORDINALITY AS u(id, sub, skipped, n)
    JOIN {s}.subscriptions s ON s.id = u.sub
    ORDER BY u.n
    RETURNING pk, subscription_id, message, ordering_key, status, next_attempt_at
), q AS (
    INSERT INTO {s}.queue (delivery, subscription_id, message, ordering_key, next_attempt_at)
    SELECT pk, subscription_id, message, ordering_key, next_attempt_at FROM d
    WHERE status = 'pending'
)
SELECT (SELECT version FROM v), EXISTS (SELECT 1 FROM ok), (SELECT sub FROM unknown),
    EXISTS (SELECT 1 FROM k), (SELECT seq FROM m),
    (SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM d WHERE status = 'pending' LIMIT 1) n)";

/// The messages of a batch of `enqueue`s and their deliveries, in one statement (atomic, one
/// round trip, one commit shared by every call of the batch).
///
/// The version row is locked before anything is written, as in [`ENQUEUE`]; a
/// message matched against another version is left out, as is one with a delivery to an
/// unknown subscription, and one whose id is taken; no two messages of a batch share an id.
/// A delivery to a subscription disabled in the store is stored skipped; a pending one also
/// gets its row in the queue.
///
/// `$1`-`$7`, one element per message: id, creation time, event type, labels, body, ordering
/// key and the version it was matched against; `$8`-`$11`, one element per delivery: its
/// message's position in `$1` (from 1), id, subscription and skipped flag, in order. One row
/// per message, in order: the version, whether the message's matched, the first unknown
/// subscription, the message's seq if it went in, and (on every row) how many pending
/// deliveries went in.
pub(super) const ENQUEUE_BATCH: &str = "\
WITH vlock AS MATERIALIZED (
    SELECT pg_advisory_xact_lock_shared({version_lock})
), v AS MATERIALIZED (
    SELECT sv.version FROM {s}.subscriptions_version sv, vlock FOR SHARE OF sv
), msg AS MATERIALIZED (
    SELECT u.*, u.version = (SELECT version FROM v) AS current
    FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::text[],
        $7::bigint[])
        WITH ORDINALITY AS u(id, created_at, event_type, labels, body, ordering_key, version, job)
), dlv AS (
    SELECT * FROM unnest($8::bigint[], $9::uuid[], $10::uuid[], $11::boolean[])
        WITH ORDINALITY AS u(job, id, sub, skipped, n)
), unknown AS (
    SELECT DISTINCT ON (dlv.job) dlv.job, dlv.sub FROM dlv JOIN msg ON msg.job = dlv.job
    WHERE msg.current AND NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = dlv.sub)
    ORDER BY dlv.job, dlv.n
), m AS (
    INSERT INTO {s}.messages (id, created_at, event_type, labels, body, ordering_key)
    SELECT msg.id, msg.created_at, msg.event_type, msg.labels::json, msg.body, msg.ordering_key
    FROM msg
    WHERE msg.current AND NOT EXISTS (SELECT 1 FROM unknown WHERE unknown.job = msg.job)
    ORDER BY msg.job
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, id, created_at, ordering_key
), d AS (
    INSERT INTO {s}.deliveries (id, message, subscription_id, created_at, status,
        next_attempt_at, ordering_key)
    SELECT dlv.id, m.seq, dlv.sub, m.created_at,
        CASE WHEN dlv.skipped OR s.disabled_at IS NOT NULL THEN 'skipped' ELSE 'pending' END,
        CASE WHEN dlv.skipped OR s.disabled_at IS NOT NULL THEN NULL ELSE m.created_at END,
        m.ordering_key
    FROM dlv JOIN msg ON msg.job = dlv.job JOIN m ON m.id = msg.id
    JOIN {s}.subscriptions s ON s.id = dlv.sub
    ORDER BY dlv.n
    RETURNING pk, subscription_id, message, ordering_key, status, next_attempt_at
), q AS (
    INSERT INTO {s}.queue (delivery, subscription_id, message, ordering_key, next_attempt_at)
    SELECT pk, subscription_id, message, ordering_key, next_attempt_at FROM d
    WHERE status = 'pending'
)
SELECT (SELECT version FROM v), msg.current, unknown.sub, m.seq,
    (SELECT count(*) FROM d WHERE d.status = 'pending')
FROM msg
LEFT JOIN unknown ON unknown.job = msg.job
LEFT JOIN m ON m.id = msg.id
ORDER BY msg.job";

/// The message that holds idempotency key `$1`.
pub(super) const FIRST_OF_KEY: &str = "SELECT message_id FROM {s}.idempotency_keys WHERE key = $1";

/// The first of the subscriptions `$1` (ids) that is not stored, if any: what a failed
/// enqueue's foreign key violation means.
pub(super) const UNKNOWN_SUBSCRIPTION: &str = "SELECT u.id FROM unnest($1::uuid[]) AS u(id) \
     WHERE NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.id) LIMIT 1";

/// [`Store::enqueue`](crate::store::Store::enqueue): without an idempotency key, in the next
/// group commit; with one, alone.
pub(super) async fn enqueue(
    store: &PostgresStore,
    enqueue: &Enqueue<'_>,
) -> Result<Enqueued, StoreError> {
    if enqueue.idempotency.is_none() {
        return store.core.enqueue(enqueue).await;
    }
    // With a key: alone, in a transaction of its own, so that a key taken for a message
    // that then does not go in (its id is taken) is given back.
    let mut tx = store.core.pool.begin().await.map_err(db)?;
    let result = store
        .core
        .enqueue_single(&mut tx, enqueue, true, store.core.own("work"))
        .await;
    match result {
        Ok(Enqueued::Stored) => tx.commit().await.map_err(db)?,
        _ => {
            let _ = tx.rollback().await;
        }
    }
    result
}

impl PostgresStore {
    /// [`Store::enqueue`](crate::store::Store::enqueue) on `conn`, inside whatever transaction it
    /// is in: the outbox of `Webhooks::send_in_tx`. Subscriptions deleted meanwhile are left out
    /// rather than failing the application's transaction, and every store is woken on commit, this
    /// one included (the runtime that sent cannot wake itself: the message is not visible before
    /// commit).
    ///
    /// A stale version ([`StoreError::Stale`]) raises no SQL error: the transaction stays
    /// usable, to match again and retry. The version row stays locked `FOR SHARE` until the
    /// transaction ends, so subscription changes wait for it (see [`PostgresStore`]).
    ///
    /// The notification is sent inside the application's transaction (it must not go out if
    /// that transaction rolls back), so these commits take PostgreSQL's NOTIFY lock; `enqueue`
    /// does not.
    pub(crate) async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        enqueue: &Enqueue<'_>,
    ) -> Result<Enqueued, StoreError> {
        // Not strict: see above.
        self.core
            .enqueue_single(conn, enqueue, false, "work".to_owned())
            .await
    }
}

/// One `enqueue` waiting for its commit.
pub(super) struct EnqueueJob {
    message: Message,
    /// The message's labels, as stored.
    labels: String,
    deliveries: Vec<NewDelivery>,
    /// The subscriptions' version the deliveries were matched against.
    version: i64,
    done: oneshot::Sender<Result<Enqueued, StoreError>>,
}

impl Batched for EnqueueJob {
    fn key(&self) -> Uuid {
        self.message.id().as_uuid()
    }

    fn rows(&self) -> usize {
        1 + self.deliveries.len()
    }
}

impl Core {
    /// Queues an `enqueue` (without an idempotency key) for the next group commit and waits
    /// for it.
    async fn enqueue(self: &Arc<Self>, enqueue: &Enqueue<'_>) -> Result<Enqueued, StoreError> {
        let (done, result) = oneshot::channel();
        let job = EnqueueJob {
            message: enqueue.message.clone(),
            labels: json(enqueue.message.labels())?,
            deliveries: enqueue.deliveries.to_vec(),
            version: version_param(enqueue.subscriptions_version),
            done,
        };
        if self.enqueues.push(job) {
            // In a task of its own, so that a caller that stops waiting cannot cut a commit
            // short; calls that arrive while a batch commits go in the next one.
            tokio::spawn(self.clone().commit_enqueues());
        }
        result.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Commits waiting `enqueue`s, a batch per statement, until none wait.
    async fn commit_enqueues(self: Arc<Self>) {
        let mut guard = OnDrop(Some(|| self.enqueues.abandon()));
        while let Some(jobs) = self.enqueues.take() {
            let results = match self.enqueue_batch(&jobs).await {
                Ok((results, due)) => {
                    if due {
                        self.wake_others();
                    }
                    results
                }
                // Nothing of the batch was written. One call's failure (a subscription deleted
                // meanwhile, a delivery id taken) must not fail the others: each again, alone.
                Err(error) if jobs.len() > 1 => {
                    tracing::debug!(%error, jobs = jobs.len(), "webhook store: enqueue batch failed; committing its messages one by one");
                    let mut results = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        results.push(self.enqueue_one(job).await);
                    }
                    results
                }
                Err(error) => vec![self.enqueue_error(&jobs[0], error).await],
            };
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
        }
        guard.disarm();
    }

    /// One `enqueue` alone, when its batch failed.
    async fn enqueue_one(self: &Arc<Self>, job: &EnqueueJob) -> Result<Enqueued, StoreError> {
        match self.enqueue_batch(std::slice::from_ref(job)).await {
            Ok((mut results, due)) => {
                if due {
                    self.wake_others();
                }
                results.pop().unwrap_or_else(|| Err(stopped()))
            }
            Err(error) => self.enqueue_error(job, error).await,
        }
    }

    /// What a failed enqueue of one message means for its caller.
    async fn enqueue_error(
        &self,
        job: &EnqueueJob,
        error: sqlx::Error,
    ) -> Result<Enqueued, StoreError> {
        match error {
            sqlx::Error::Database(e) if e.is_unique_violation() => {
                Err(enqueue_conflict(&*e, job.message.id(), &job.deliveries))
            }
            // A subscription deleted while the message went in.
            sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                let subs: Vec<Uuid> = job
                    .deliveries
                    .iter()
                    .map(|d| d.subscription_id.as_uuid())
                    .collect();
                let unknown: Option<Uuid> = query(&self.sql.unknown_subscription)
                    .bind(subs)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| row.col(0))
                    .transpose()?;
                Err(match unknown {
                    Some(sub) => not_found(Entity::Subscription, SubscriptionId::from_uuid(sub)),
                    None => db(sqlx::Error::Database(e)),
                })
            }
            e => Err(db(e)),
        }
    }

    /// Inserts the messages of a batch and their deliveries in one statement (one commit).
    /// A message matched against another version of the subscriptions, whose id is taken, or
    /// with a delivery to an unknown subscription, is left out and reported as its call's
    /// error. Returns each call's result, and whether a delivery is due (the other workers are
    /// to be told).
    async fn enqueue_batch(
        &self,
        jobs: &[EnqueueJob],
    ) -> Result<(Vec<Result<Enqueued, StoreError>>, bool), sqlx::Error> {
        let rows: usize = jobs.iter().map(|j| j.deliveries.len()).sum();
        let mut job_of = Vec::with_capacity(rows);
        let mut ids = Vec::with_capacity(rows);
        let mut subs = Vec::with_capacity(rows);
        let mut skipped = Vec::with_capacity(rows);
        for (n, job) in (1_i64..).zip(jobs) {
            for d in &job.deliveries {
                job_of.push(n);
                ids.push(d.id.as_uuid());
                subs.push(d.subscription_id.as_uuid());
                skipped.push(d.skipped);
            }
        }
        let rows = query(&self.sql.enqueue_batch)
            .bind(
                jobs.iter()
                    .map(|j| j.message.id().as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| millis(j.message.timestamp()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.message.event_type())
                    .collect::<Vec<_>>(),
            )
            .bind(jobs.iter().map(|j| j.labels.as_str()).collect::<Vec<_>>())
            .bind(
                jobs.iter()
                    .map(|j| j.message.body().as_ref())
                    .collect::<Vec<&[u8]>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.message.ordering_key())
                    .collect::<Vec<_>>(),
            )
            .bind(jobs.iter().map(|j| j.version).collect::<Vec<_>>())
            .bind(job_of)
            .bind(ids)
            .bind(subs)
            .bind(skipped)
            .fetch_all(&self.pool)
            .await?;
        let mut due = false;
        let mut results = Vec::with_capacity(jobs.len());
        for (n, job) in jobs.iter().enumerate() {
            let Some(row) = rows.get(n) else {
                results.push(Err(corrupt("enqueue result", "a row is missing")));
                continue;
            };
            type Read = (i64, bool, Option<Uuid>, Option<i64>, i64);
            let read = || -> Result<Read, StoreError> {
                Ok((
                    row.col(0)?,
                    row.col(1)?,
                    row.col(2)?,
                    row.col(3)?,
                    row.col(4)?,
                ))
            };
            results.push(match read() {
                Ok((version, false, ..)) => {
                    stored_version(version).and_then(|version| Err(StoreError::Stale { version }))
                }
                Ok((_, true, Some(sub), ..)) => Err(not_found(
                    Entity::Subscription,
                    SubscriptionId::from_uuid(sub),
                )),
                Ok((_, true, None, None, _)) => Err(conflict(
                    Entity::Message,
                    job.message.id(),
                    "already exists",
                )),
                Ok((_, true, None, Some(_), pending)) => {
                    due |= pending > 0;
                    Ok(Enqueued::Stored)
                }
                Err(error) => Err(error),
            });
        }
        Ok((results, due))
    }

    /// One enqueue, in one statement ([`ENQUEUE`]) on `conn`, in whatever transaction it is
    /// in: with an idempotency key, or inside the application's transaction. `strict`: a
    /// delivery to an unknown subscription fails it (otherwise it is left out). `payload` is
    /// notified on commit if a delivery is due. A stale version, a duplicate key and a taken
    /// message id raise no SQL error: the transaction stays usable.
    async fn enqueue_single(
        &self,
        conn: &mut PgConnection,
        enqueue: &Enqueue<'_>,
        strict: bool,
        payload: String,
    ) -> Result<Enqueued, StoreError> {
        let (message, deliveries) = (enqueue.message, enqueue.deliveries);
        let id = message.id();
        let subs: Vec<Uuid> = deliveries
            .iter()
            .map(|d| d.subscription_id.as_uuid())
            .collect();
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id.as_uuid()).collect();
        let skipped: Vec<bool> = deliveries.iter().map(|d| d.skipped).collect();
        let key = enqueue.idempotency.as_ref().map(|i| i.key.as_str());
        let since = enqueue.idempotency.as_ref().map_or(0, |i| millis(i.since));
        let result = query(&self.sql.enqueue)
            .bind(id.as_uuid())
            .bind(millis(message.timestamp()))
            .bind(message.event_type())
            .bind(json(message.labels())?)
            .bind(message.body().as_ref())
            .bind(message.ordering_key())
            .bind(subs)
            .bind(ids)
            .bind(skipped)
            .bind(strict)
            .bind(version_param(enqueue.subscriptions_version))
            .bind(key)
            .bind(since)
            .bind(self.channel.as_str())
            .bind(payload)
            .fetch_one(&mut *conn)
            .await;
        let row = match result {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(enqueue_conflict(&*e, id, deliveries));
            }
            Err(e) => return Err(db(e)),
        };
        if !row.col::<bool>(1)? {
            return Err(StoreError::Stale {
                version: stored_version(row.col(0)?)?,
            });
        }
        if key.is_some() && !row.col::<bool>(3)? {
            // Held within its window by another message, whose insert this one waited for if
            // it was under way: a new statement's snapshot sees it.
            let first: Option<Uuid> = query(&self.sql.first_of_key)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .map(|row| row.col(0))
                .transpose()?;
            return match first {
                Some(first) => Ok(Enqueued::Duplicate(MessageId::from_uuid(first))),
                None => Err(corrupt("idempotency key", "held, then gone")),
            };
        }
        // (With a key, it was taken: the caller's transaction gives it back.)
        if let Some(sub) = row.col::<Option<Uuid>>(2)? {
            return Err(not_found(
                Entity::Subscription,
                SubscriptionId::from_uuid(sub),
            ));
        }
        if row.col::<Option<i64>>(4)?.is_none() {
            return Err(conflict(Entity::Message, id, "already exists"));
        }
        Ok(Enqueued::Stored)
    }
}

/// What a unique violation while enqueueing `message` means: its id is taken, or one of its
/// deliveries' (named in the error's detail, `Key (id)=(…) already exists.`).
fn enqueue_conflict(
    error: &dyn sqlx::error::DatabaseError,
    message: MessageId,
    deliveries: &[NewDelivery],
) -> StoreError {
    if error.constraint() == Some("messages_id_key") {
        return conflict(Entity::Message, message, "already exists");
    }
    let named = error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|e| e.detail())
        .and_then(|detail| detail.split_once(")=(")?.1.split_once(')'))
        .and_then(|(id, _)| id.parse::<Uuid>().ok())
        .map(DeliveryId::from_uuid);
    match named.or_else(|| deliveries.first().map(|d| d.id)) {
        Some(delivery) => conflict(Entity::Delivery, delivery, "already exists"),
        None => conflict(Entity::Message, message, "already exists"),
    }
}
