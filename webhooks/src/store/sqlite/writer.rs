//! The writer task: the one task that serves `enqueue`, `claim` and `record_attempt`, taking
//! every call waiting at each turn — the claims first, then one *round* that commits every
//! enqueue and attempt record together (one `fsync`) in two calls: [`ROUND_READ`] reads what
//! deciding the jobs needs, each job is decided on its own (`enqueue.rs`, `record.rs`), and
//! [`ROUND_WRITE`] writes the rows of those that stand and commits. Also the writer connection's
//! guard: a call left half-way closes it rather than return it to the pool.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::batch::{Cell, Rows};
use super::claim::{CLAIM_AND_READ, ClaimJob, claim_row};
use super::enqueue::EnqueueJob;
use super::record::{RecordJob, SubscriptionHealth, Target};
use super::{Inner, SqliteError};
use crate::store::sql::{Columns, RowExt, corrupt, db};
use crate::store::{Enqueued, Recorded, StoreError};

/// Calls waiting for the writer task.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) claims: Vec<ClaimJob>,
    pub(super) enqueues: Vec<EnqueueJob>,
    pub(super) records: Vec<RecordJob>,
    /// Whether the writer task runs; it takes new work until none is left.
    pub(super) running: bool,
}

/// The first call of a round: opens its transaction and reads what deciding its jobs needs,
/// each row tagged (column 0) with what it is:
///
/// - 0: the last message `seq` (the round's messages take the next ones);
/// - 1: the round's message ids that exist already;
/// - 2: the round's subscriptions that exist, and whether each is disabled;
/// - 3: the round's new delivery ids that exist already;
/// - 4: each delivery an attempt is recorded for: id, pk, subscription, lease, and that
///   subscription's `failing_since`, `consecutive_exhausted` and whether it exists; whether the
///   delivery is skipped, and whether the subscription is disabled;
/// - 5: the subscriptions' version;
/// - 6: the round's idempotency keys that are stored: key, message id, when.
///
/// Parameters: the four lists of ids, then the keys, in that order, each a [`Rows`].
macro_rules! round_read_sql {
    () => {
        "\
BEGIN IMMEDIATE;
SELECT 0, COALESCE(MAX(seq), 0) FROM messages;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
SELECT 1, id FROM messages WHERE id IN
  (SELECT substr(p.b, r.value ->> 0, 16) FROM p, jsonb_each(p.j) AS r);
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
SELECT 2, id, disabled_at IS NOT NULL FROM subscriptions WHERE id IN
  (SELECT substr(p.b, r.value ->> 0, 16) FROM p, jsonb_each(p.j) AS r);
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
SELECT 3, id FROM deliveries WHERE id IN
  (SELECT substr(p.b, r.value ->> 0, 16) FROM p, jsonb_each(p.j) AS r);
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
SELECT 4, d.id, d.pk, d.subscription_id, d.lease, s.failing_since, s.consecutive_exhausted,
  s.id IS NOT NULL, d.status = 'skipped', s.disabled_at IS NOT NULL
FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id WHERE d.id IN
  (SELECT substr(p.b, r.value ->> 0, 16) FROM p, jsonb_each(p.j) AS r);
SELECT 5, version FROM subscriptions_version;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
SELECT 6, key, message_id, created_at FROM idempotency_keys WHERE key IN
  (SELECT CAST(substr(p.b, r.value ->> 0, r.value ->> 1) AS TEXT)
   FROM p, jsonb_each(p.j) AS r)"
    };
}
pub(super) use round_read_sql;

/// The first call of a round, alone: opens its transaction and reads what deciding its jobs
/// needs. See [`round_read_sql`] for its parameters and rows.
const ROUND_READ: &str = round_read_sql!();

/// The second call of a round: writes every row the round decided, one statement per table,
/// and commits (synced: `synchronous = FULL`). Parameters: one [`Rows`] per statement, in
/// order — messages, deliveries, attempts, delivery updates, health, idempotency keys — whose
/// rows are laid out as [`Round`] pushes them.
const ROUND_WRITE: &str = "\
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
INSERT OR ROLLBACK INTO messages (seq, id, created_at, event_type, labels, body, ordering_key)
  SELECT r.value ->> 0, substr(p.b, r.value ->> 1, 16), r.value ->> 2,
    CAST(substr(p.b, r.value ->> 3, r.value ->> 4) AS TEXT),
    CAST(substr(p.b, r.value ->> 5, r.value ->> 6) AS TEXT),
    substr(p.b, r.value ->> 7, r.value ->> 8),
    CAST(substr(p.b, r.value ->> 9, r.value ->> 10) AS TEXT)
  FROM p, jsonb_each(p.j) AS r;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
INSERT OR ROLLBACK INTO deliveries
    (id, message, subscription_id, created_at, status, next_attempt_at, ordering_key)
  SELECT substr(p.b, r.value ->> 0, 16), r.value ->> 1, substr(p.b, r.value ->> 2, 16),
    r.value ->> 3, r.value ->> 4, r.value ->> 5,
    CAST(substr(p.b, r.value ->> 6, r.value ->> 7) AS TEXT)
  FROM p, jsonb_each(p.j) AS r;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
INSERT OR ROLLBACK INTO attempts
    (delivery, number, at, latency_ns, status_code, error, error_message, response_body)
  SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4,
    r.value ->> 5, CAST(substr(p.b, r.value ->> 6, r.value ->> 7) AS TEXT),
    substr(p.b, r.value ->> 8, r.value ->> 9)
  FROM p, jsonb_each(p.j) AS r;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
UPDATE OR ROLLBACK deliveries SET attempts = MAX(deliveries.attempts, r.value ->> 1),
    last_attempt_at = r.value ->> 2, status = r.value ->> 3, next_attempt_at = r.value ->> 4,
    lease = NULL, lease_until = NULL, requeued = 0
  FROM p, jsonb_each(p.j) AS r WHERE deliveries.pk = r.value ->> 0;
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
UPDATE OR ROLLBACK subscriptions
  SET failing_since = r.value ->> 1, consecutive_exhausted = r.value ->> 2
  FROM p, jsonb_each(p.j) AS r WHERE subscriptions.id = substr(p.b, r.value ->> 0, 16);
WITH p AS MATERIALIZED (SELECT ? AS b, jsonb(?) AS j)
INSERT OR ROLLBACK INTO idempotency_keys (key, message_id, created_at)
  SELECT CAST(substr(p.b, r.value ->> 0, r.value ->> 1) AS TEXT),
    substr(p.b, r.value ->> 2, 16), r.value ->> 3
  FROM p, jsonb_each(p.j) AS r WHERE true
  ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id,
    created_at = excluded.created_at;
COMMIT";

/// The writer connection while the writer task holds it. A call that leaves a transaction open
/// (or syncing relaxed) marks it `dirty` until the call that ends them succeeds. If one fails,
/// or the task is dropped in between, the connection is closed rather than returned to the
/// pool: closing rolls back, and the pool opens a fresh one with `open`'s settings.
pub(super) struct Writer {
    pub(super) conn: PoolConnection<Sqlite>,
    pub(super) dirty: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.dirty {
            self.conn.close_on_drop();
        }
    }
}

/// Hands the writer's role back if its task is dropped before it is done (the runtime shut
/// down): the calls it would have served fail, later ones start a new task.
struct Running {
    inner: Arc<Inner>,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.running = false;
            // Dropping the jobs drops their senders: their callers get `WriterGone`.
            queue.claims.clear();
            queue.enqueues.clear();
            queue.records.clear();
        }
    }
}

/// The same failure for every caller of a batch (`StoreError` is not `Clone`).
fn shared_error(error: &StoreError) -> StoreError {
    StoreError::Backend(error.to_string().into())
}

/// What a round read (see [`ROUND_READ`]), then changed as it decided its jobs in order.
#[derive(Default)]
pub(super) struct Round {
    /// The last message `seq` taken.
    pub(super) last_seq: i64,
    /// Message ids taken: stored already, or by an earlier job of the round.
    pub(super) messages: HashSet<Uuid>,
    /// The subscriptions' version.
    pub(super) version: u64,
    /// The round's subscriptions that exist, and whether each is disabled.
    pub(super) subscriptions: HashMap<Uuid, bool>,
    /// Delivery ids taken, as `messages`.
    pub(super) deliveries: HashSet<Uuid>,
    /// The deliveries attempts are recorded for, by id.
    pub(super) targets: HashMap<Uuid, Target>,
    /// The health of their subscriptions (those that exist), by id.
    pub(super) health: HashMap<Uuid, SubscriptionHealth>,
    /// The round's idempotency keys: the message stored with each, and when (ms); stored
    /// already, or by an earlier job of the round.
    pub(super) keys: HashMap<String, (Uuid, i64)>,
}

/// The rows a round writes, one [`Rows`] per statement of [`ROUND_WRITE`].
pub(super) struct Writes {
    pub(super) messages: Rows,
    pub(super) deliveries: Rows,
    pub(super) attempts: Rows,
    pub(super) updates: Rows,
    pub(super) health: Rows,
    pub(super) keys: Rows,
}

impl Round {
    /// What the rows of [`ROUND_READ`] say.
    fn read(rows: &[SqliteRow]) -> Result<Round, StoreError> {
        let mut round = Round::default();
        for row in rows {
            match row.int(0)? {
                0 => round.last_seq = row.int(1)?,
                1 => {
                    round.messages.insert(row.id(1)?);
                }
                2 => {
                    round.subscriptions.insert(row.id(1)?, row.flag(2)?);
                }
                3 => {
                    round.deliveries.insert(row.id(1)?);
                }
                4 => {
                    let subscription = row.id(3)?;
                    round.targets.insert(
                        row.id(1)?,
                        Target {
                            pk: row.int(2)?,
                            subscription,
                            lease: row.col(4)?,
                            skipped: row.flag(8)?,
                            disabled: row.flag(9)?,
                        },
                    );
                    if row.flag(7)? {
                        round.health.insert(
                            subscription,
                            SubscriptionHealth {
                                failing_since: row.opt_int(5)?,
                                consecutive_exhausted: row.int(6)?,
                                changed: false,
                            },
                        );
                    }
                }
                5 => {
                    round.version =
                        u64::try_from(row.int(1)?).map_err(|e| corrupt("version", e))?;
                }
                6 => {
                    round.keys.insert(row.text(1)?, (row.id(2)?, row.int(3)?));
                }
                other => return Err(corrupt("round row", other)),
            }
        }
        Ok(round)
    }
}

impl Inner {
    /// Queues a call for the writer task, and starts the task unless it runs.
    pub(super) fn submit(self: &Arc<Self>, push: impl FnOnce(&mut Queue)) {
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            push(&mut queue);
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_writer());
        }
    }

    /// Serves the queue until it is empty, each turn taking everything waiting: the claims
    /// first (deliveries wait on them), then one round for every enqueue and attempt record, so
    /// that calls arriving during a commit share the next one. Its own task, so that a caller
    /// that stops waiting cannot cut a commit short.
    async fn run_writer(self: Arc<Self>) {
        let mut guard = Running {
            inner: self.clone(),
            done: false,
        };
        loop {
            let (claims, enqueues, records) = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.claims.is_empty() && queue.enqueues.is_empty() && queue.records.is_empty()
                {
                    queue.running = false;
                    guard.done = true;
                    return;
                }
                (
                    std::mem::take(&mut queue.claims),
                    std::mem::take(&mut queue.enqueues),
                    std::mem::take(&mut queue.records),
                )
            };
            // Held for one turn only, so that the other writes get the connection between turns.
            let mut writer = None;
            let round = !enqueues.is_empty() || !records.is_empty();
            let mut claims = claims;
            // The last claim shares the round's first call, when there is a round.
            let joined = if round { claims.pop() } else { None };
            for job in claims {
                let result = self.claim(&mut writer, &job.request).await;
                let _ = job.done.send(result);
            }
            if round {
                self.round(&mut writer, joined, enqueues, records).await;
            }
        }
    }

    /// The writer connection: `slot`'s, unless it is missing or was left dirty (then it is
    /// closed and a fresh one acquired).
    pub(super) async fn connection<'a>(
        &self,
        slot: &'a mut Option<Writer>,
    ) -> Result<&'a mut Writer, StoreError> {
        if slot.as_ref().is_none_or(|w| w.dirty) {
            *slot = None;
            let conn = self.writer.acquire().await.map_err(db)?;
            *slot = Some(Writer { conn, dirty: false });
        }
        slot.as_mut()
            .ok_or_else(|| StoreError::Backend(Box::new(SqliteError::WriterGone)))
    }

    /// One round: every enqueue and attempt record given, in one transaction. Each job is
    /// decided in order, as if committed alone after the ones before it; the jobs that fail
    /// (a conflict, something not found) get their error, the others commit together.
    ///
    /// `claim`, if any, runs first in the same call as the round's read (see
    /// [`CLAIM_AND_READ`]); its caller gets its result before the round writes.
    async fn round(
        &self,
        slot: &mut Option<Writer>,
        mut claim: Option<ClaimJob>,
        enqueues: Vec<EnqueueJob>,
        records: Vec<RecordJob>,
    ) {
        let mut claiming = None;
        let mut enqueued: Vec<Result<Enqueued, StoreError>> = Vec::with_capacity(enqueues.len());
        let mut recorded: Vec<Result<Recorded, StoreError>> = Vec::with_capacity(records.len());
        let outcome: Result<(), StoreError> = async {
            let writer = self.connection(slot).await?;
            let messages = Rows::ids(enqueues.iter().map(|j| j.message.id().as_uuid()));
            let subscriptions: HashSet<Uuid> = enqueues
                .iter()
                .flat_map(|j| j.deliveries.iter().map(|d| d.subscription_id.as_uuid()))
                .collect();
            let subscriptions = Rows::ids(subscriptions);
            let deliveries = Rows::ids(
                enqueues
                    .iter()
                    .flat_map(|j| j.deliveries.iter().map(|d| d.id.as_uuid())),
            );
            let targets = Rows::ids(records.iter().map(|j| j.attempt.delivery_id.as_uuid()));
            let mut keys = Rows::new();
            let mut seen = HashSet::new();
            for idempotency in enqueues.iter().filter_map(|j| j.idempotency.as_ref()) {
                if seen.insert(idempotency.key.as_str()) {
                    keys.push(&[Cell::Bytes(idempotency.key.as_bytes())]);
                }
            }
            let query = match &claim {
                Some(job) => {
                    let (query, started) = self.claim_query(CLAIM_AND_READ, &job.request);
                    claiming = Some(started);
                    query
                }
                None => sqlx::query(ROUND_READ),
            };
            let query = messages.bind(query);
            let query = subscriptions.bind(query);
            let query = deliveries.bind(query);
            let query = targets.bind(query);
            let query = keys.bind(query);
            writer.dirty = true;
            let rows = query.fetch_all(&mut *writer.conn).await.map_err(db)?;
            let (claimed, rows): (Vec<SqliteRow>, Vec<SqliteRow>) =
                rows.into_iter().partition(claim_row);
            if let (Some(job), Some(started)) = (claim.take(), claiming.take()) {
                let _ = job.done.send(self.claimed(&claimed, &started));
            }
            let mut round = Round::read(&rows)?;

            let mut writes = Writes {
                messages: Rows::new(),
                deliveries: Rows::new(),
                attempts: Rows::new(),
                updates: Rows::new(),
                health: Rows::new(),
                keys: Rows::new(),
            };
            for job in &enqueues {
                enqueued.push(round.enqueue(job, &mut writes));
            }
            for job in &records {
                recorded.push(round.record(job, &mut writes));
            }
            round.health_rows(&mut writes.health);
            let query = sqlx::query(ROUND_WRITE);
            let query = writes.messages.bind(query);
            let query = writes.deliveries.bind(query);
            let query = writes.attempts.bind(query);
            let query = writes.updates.bind(query);
            let query = writes.health.bind(query);
            let query = writes.keys.bind(query);
            query.execute(&mut *writer.conn).await.map_err(db)?;
            writer.dirty = false;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                for (job, result) in enqueues.into_iter().zip(enqueued) {
                    let _ = job.done.send(result);
                }
                for (job, result) in records.into_iter().zip(recorded) {
                    let _ = job.done.send(result);
                }
            }
            Err(error) => {
                // Nothing of the round was committed: every job fails alike, but for those that
                // failed on their own already.
                tracing::warn!(%error, "webhook store: a write round failed");
                if let Some(job) = claim {
                    if let Some(started) = claiming {
                        self.release(slot, started.lease).await;
                    }
                    let _ = job.done.send(Err(shared_error(&error)));
                }
                let mut enqueued = enqueued.into_iter();
                for job in enqueues {
                    let result = match enqueued.next() {
                        Some(Err(own)) => Err(own),
                        _ => Err(shared_error(&error)),
                    };
                    let _ = job.done.send(result);
                }
                let mut recorded = recorded.into_iter();
                for job in records {
                    let result = match recorded.next() {
                        Some(Err(own)) => Err(own),
                        _ => Err(shared_error(&error)),
                    };
                    let _ = job.done.send(result);
                }
            }
        }
    }
}
