//! The writer thread: the one thread that owns the writer connection and serves every write,
//! fed by a channel. Each turn takes every call waiting: the other writes first (each its own
//! transaction), then the claims, then one *round* that commits every enqueue and attempt
//! record together (one `fsync`): [`Round::read`] reads what deciding the jobs needs (index
//! lookups by id), each job is decided on its own (`enqueue.rs`, `record.rs`), and
//! [`Writes::write`] writes the rows of those that stand, a cached statement per table, and
//! commits.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::batch::Rows;
use super::claim::{ClaimJob, SYNC_FULL};
use super::connect::begin;
use super::enqueue::EnqueueJob;
use super::record::{RecordJob, SubscriptionHealth, Target};
use super::row::{db, query_one};
use super::{SqliteError, connect};
use crate::store::sql::{Columns, corrupt};
use crate::store::{Enqueued, Recorded, StoreError};

/// A call for the writer thread.
pub(super) enum Job {
    /// A claim: served before the turn's round.
    Claim(ClaimJob),
    /// An enqueue: committed by the turn's round.
    Enqueue(EnqueueJob),
    /// An attempt record: committed by the turn's round.
    Record(RecordJob),
    /// Any other write (a subscription change, the log's writes): run alone, first in its
    /// turn. It sends its own answer.
    Write(Box<dyn FnOnce(&mut Writer) + Send>),
}

/// The writer thread's state: its connection, and where the next claim starts.
pub(super) struct Writer {
    /// The one connection every write goes through.
    pub(super) conn: Connection,
    /// The database file, to open the connection again if its settings could not be restored.
    path: PathBuf,
    /// The subscription the last claim ended with: the next claim starts after it, so that
    /// every subscription gets its turn. Empty: from the first.
    pub(super) rotation: Vec<u8>,
    /// Whether the connection may still be at `synchronous = NORMAL` (a claim could not set it
    /// back): a round sets it back first, or fails.
    pub(super) relaxed: bool,
}

/// Starts the writer thread on `conn`: the queue to feed it, and what it closes once it has
/// stopped and closed the connection (when every sender of the queue is dropped).
pub(super) fn start(
    conn: Connection,
    path: PathBuf,
) -> Result<(mpsc::Sender<Job>, oneshot::Receiver<()>), StoreError> {
    let (jobs, queue) = mpsc::channel();
    let (closing, closed) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("webhooks-sqlite".to_owned())
        .spawn(move || {
            // Dropped last: after the connection is closed.
            let _closing = closing;
            let mut writer = Writer {
                conn,
                path,
                rotation: Vec::new(),
                relaxed: false,
            };
            writer.serve(&queue);
        })
        .map_err(|e| StoreError::Backend(Box::new(SqliteError::Thread(e))))?;
    Ok((jobs, closed))
}

/// The same failure for every caller of a batch (`StoreError` is not `Clone`).
fn shared_error(error: &StoreError) -> StoreError {
    StoreError::Backend(error.to_string().into())
}

/// The last message `seq` (the round's messages take the next ones). No parameters.
pub(super) const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM messages";

/// Whether a message id is taken. Parameter: the id.
pub(super) const MESSAGE_EXISTS: &str = "SELECT 1 FROM messages WHERE id = ?1";

/// Whether a subscription exists (a row), and whether it is disabled. Parameter: the id.
pub(super) const SUBSCRIPTION_DISABLED: &str =
    "SELECT disabled_at IS NOT NULL FROM subscriptions WHERE id = ?1";

/// Whether a delivery id is taken. Parameter: the id.
pub(super) const DELIVERY_EXISTS: &str = "SELECT 1 FROM deliveries WHERE id = ?1";

/// A delivery an attempt is recorded for: pk, subscription, lease, and that subscription's
/// `failing_since`, `consecutive_exhausted` and whether it exists; whether the delivery is
/// skipped, and whether the subscription is disabled. Parameter: the delivery's id.
pub(super) const TARGET: &str = "SELECT d.pk, d.subscription_id, d.lease, s.failing_since, \
                      s.consecutive_exhausted, s.id IS NOT NULL, d.status = 'skipped', \
                      s.disabled_at IS NOT NULL \
                      FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id \
                      WHERE d.id = ?1";

/// The subscriptions' version. No parameters.
pub(super) const VERSION: &str = "SELECT version FROM subscriptions_version";

/// An idempotency key as stored: the message first stored with it, and when. Parameter: the
/// key.
pub(super) const KEY: &str = "SELECT message_id, created_at FROM idempotency_keys WHERE key = ?1";

/// A round's message; parameters as [`Round::enqueue`] pushes them.
pub(super) const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (seq, id, created_at, event_type, labels, body, ordering_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// A round's new delivery; parameters as [`Round::enqueue`] pushes them.
pub(super) const INSERT_DELIVERY: &str = "INSERT INTO deliveries \
     (id, message, subscription_id, created_at, status, next_attempt_at, ordering_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// A round's attempt; parameters as [`Round::record`] pushes them.
pub(super) const INSERT_ATTEMPT: &str = "INSERT INTO attempts \
     (delivery, number, at, latency_ns, status_code, error, error_message, response_body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// A delivery's next state after an attempt, its lease released; parameters as
/// [`Round::record`] pushes them.
pub(super) const UPDATE_DELIVERY: &str = "UPDATE deliveries SET attempts = MAX(attempts, ?2), \
     last_attempt_at = ?3, status = ?4, next_attempt_at = ?5, lease = NULL, lease_until = NULL, \
     requeued = 0 WHERE pk = ?1";

/// A subscription's health; parameters as [`Round::health_rows`] pushes them.
pub(super) const UPDATE_HEALTH: &str =
    "UPDATE subscriptions SET failing_since = ?2, consecutive_exhausted = ?3 WHERE id = ?1";

/// An idempotency key, stored or moved to a new message; parameters as [`Round::enqueue`]
/// pushes them.
pub(super) const UPSERT_KEY: &str = "INSERT INTO idempotency_keys (key, message_id, created_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, \
     created_at = excluded.created_at";

/// What a round read (see [`Round::read`]), then changed as it decided its jobs in order.
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

/// The rows a round writes, one [`Rows`] per statement, written in this order.
pub(super) struct Writes<'a> {
    pub(super) messages: Rows<'a>,
    pub(super) deliveries: Rows<'a>,
    pub(super) attempts: Rows<'a>,
    pub(super) updates: Rows<'a>,
    pub(super) health: Rows<'a>,
    pub(super) keys: Rows<'a>,
}

impl Writes<'_> {
    /// None yet.
    fn new() -> Self {
        Writes {
            messages: Rows::new(7),
            deliveries: Rows::new(7),
            attempts: Rows::new(8),
            updates: Rows::new(5),
            health: Rows::new(3),
            keys: Rows::new(3),
        }
    }

    /// Writes every row, in the round's transaction.
    fn write(&self, conn: &Connection) -> Result<(), StoreError> {
        self.messages.execute(conn, INSERT_MESSAGE)?;
        self.deliveries.execute(conn, INSERT_DELIVERY)?;
        self.attempts.execute(conn, INSERT_ATTEMPT)?;
        self.updates.execute(conn, UPDATE_DELIVERY)?;
        self.health.execute(conn, UPDATE_HEALTH)?;
        self.keys.execute(conn, UPSERT_KEY)
    }
}

impl Round {
    /// Reads what deciding `enqueues` and `records` needs, in the round's transaction.
    fn read(
        conn: &Connection,
        enqueues: &[EnqueueJob],
        records: &[RecordJob],
    ) -> Result<Round, StoreError> {
        let mut round = Round {
            last_seq: query_one(conn, LAST_SEQ, [], |row| row.int(0))?,
            version: query_one(conn, VERSION, [], |row| {
                u64::try_from(row.int(0)?).map_err(|e| corrupt("version", e))
            })?,
            ..Round::default()
        };
        if !enqueues.is_empty() {
            let mut messages = conn.prepare_cached(MESSAGE_EXISTS).map_err(db)?;
            let mut subscriptions = conn.prepare_cached(SUBSCRIPTION_DISABLED).map_err(db)?;
            let mut deliveries = conn.prepare_cached(DELIVERY_EXISTS).map_err(db)?;
            let mut keys = conn.prepare_cached(KEY).map_err(db)?;
            for job in enqueues {
                let id = job.message.id().as_uuid();
                if messages.exists([id.as_bytes()]).map_err(db)? {
                    round.messages.insert(id);
                }
                for new in &job.deliveries {
                    let sub = new.subscription_id.as_uuid();
                    if !round.subscriptions.contains_key(&sub)
                        && let Some(disabled) = subscriptions
                            .query_row([sub.as_bytes()], |row| row.get::<_, bool>(0))
                            .optional()
                            .map_err(db)?
                    {
                        round.subscriptions.insert(sub, disabled);
                    }
                    let id = new.id.as_uuid();
                    if deliveries.exists([id.as_bytes()]).map_err(db)? {
                        round.deliveries.insert(id);
                    }
                }
                if let Some(idempotency) = &job.idempotency
                    && !round.keys.contains_key(&idempotency.key)
                {
                    let mut rows = keys.query([&idempotency.key]).map_err(db)?;
                    if let Some(row) = rows.next().map_err(db)? {
                        let stored = (row.id(0)?, row.int(1)?);
                        round.keys.insert(idempotency.key.clone(), stored);
                    }
                }
            }
        }
        if !records.is_empty() {
            let mut targets = conn.prepare_cached(TARGET).map_err(db)?;
            for job in records {
                let id = job.attempt.delivery_id.as_uuid();
                let mut rows = targets.query([id.as_bytes()]).map_err(db)?;
                let Some(row) = rows.next().map_err(db)? else {
                    continue;
                };
                let subscription = row.id(1)?;
                round.targets.insert(
                    id,
                    Target {
                        pk: row.int(0)?,
                        subscription,
                        lease: row.get(2).map_err(db)?,
                        skipped: row.flag(6)?,
                        disabled: row.flag(7)?,
                    },
                );
                if row.flag(5)? {
                    round.health.insert(
                        subscription,
                        SubscriptionHealth {
                            failing_since: row.opt_int(3)?,
                            consecutive_exhausted: row.int(4)?,
                            changed: false,
                        },
                    );
                }
            }
        }
        Ok(round)
    }
}

impl Writer {
    /// Serves the queue until every sender is dropped, each turn taking everything waiting:
    /// the other writes, the claims (deliveries wait on them), then one round for every
    /// enqueue and attempt record, so that calls arriving during a commit share the next one.
    fn serve(&mut self, queue: &mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut writes = Vec::new();
            let mut claims = Vec::new();
            let mut enqueues = Vec::new();
            let mut records = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Claim(job) => claims.push(job),
                    Job::Enqueue(job) => enqueues.push(job),
                    Job::Record(job) => records.push(job),
                    Job::Write(write) => writes.push(write),
                }
                next = queue.try_recv().ok();
            }
            stage!(
                TurnStart,
                0,
                (writes.len() + claims.len() + enqueues.len() + records.len()) as u32
            );
            stage!(WritesStart, 0, writes.len() as u32);
            for write in writes {
                write(self);
            }
            stage!(WritesEnd, 0, 0);
            for job in claims {
                stage!(WriterClaimStart, 0, 0);
                let result = self.claim(&job.request);
                stage!(WriterClaimEnd, 0, 0);
                let _ = job.done.send(result);
            }
            if !enqueues.is_empty() || !records.is_empty() {
                stage!(RoundStart, 0, (enqueues.len() + records.len()) as u32);
                self.round(enqueues, records);
                stage!(RoundEnd, 0, 0);
            }
        }
    }

    /// Sets `synchronous` back to `FULL` after a claim relaxed it; if that fails, opens the
    /// connection again (with `FULL`), and if that fails too, leaves [`Writer::relaxed`] set.
    pub(super) fn restore_sync(&mut self) {
        if self
            .conn
            .prepare_cached(SYNC_FULL)
            .and_then(|mut s| s.execute([]))
            .is_ok()
        {
            self.relaxed = false;
            return;
        }
        match connect::writer(&self.path) {
            Ok(conn) => {
                self.conn = conn;
                self.relaxed = false;
            }
            Err(error) => {
                self.relaxed = true;
                tracing::warn!(%error, "webhook store: cannot reopen the writer connection");
            }
        }
    }

    /// One round: every enqueue and attempt record given, in one transaction. Each job is
    /// decided in order, as if committed alone after the ones before it; the jobs that fail
    /// (a conflict, something not found) get their error, the others commit together.
    fn round(&mut self, enqueues: Vec<EnqueueJob>, records: Vec<RecordJob>) {
        let mut enqueued: Vec<Result<Enqueued, StoreError>> = Vec::with_capacity(enqueues.len());
        let mut recorded: Vec<Result<Recorded, StoreError>> = Vec::with_capacity(records.len());
        if self.relaxed {
            self.restore_sync();
        }
        let outcome = if self.relaxed {
            Err(StoreError::Backend(
                "the webhook store cannot make its commits durable again".into(),
            ))
        } else {
            self.round_in(&enqueues, &records, &mut enqueued, &mut recorded)
        };
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

    /// The round's transaction: read, decide each job (its result pushed to `enqueued` or
    /// `recorded`), write, commit. Rolled back if anything fails.
    fn round_in(
        &mut self,
        enqueues: &[EnqueueJob],
        records: &[RecordJob],
        enqueued: &mut Vec<Result<Enqueued, StoreError>>,
        recorded: &mut Vec<Result<Recorded, StoreError>>,
    ) -> Result<(), StoreError> {
        let tx = begin(&mut self.conn)?;
        let mut round = Round::read(&tx, enqueues, records)?;
        let mut writes = Writes::new();
        for job in enqueues {
            enqueued.push(round.enqueue(job, &mut writes));
        }
        for job in records {
            recorded.push(round.record(job, &mut writes));
        }
        round.health_rows(&mut writes.health);
        writes.write(&tx)?;
        stage!(CommitStart, 0, 0);
        tx.commit().map_err(db)
    }
}
