//! [`SqliteStore`]: the durable store, in one SQLite file.
//!
//! One writer connection (SQLite allows one writer at a time) and a few read-only connections,
//! in WAL mode so that reads never wait for writes. Every operation that changes state is one
//! `BEGIN IMMEDIATE` transaction; concurrent `enqueue`s share a commit (group commit).
//!
//! The schema lives in `migrations/sqlite/`, applied in order on open and tracked in
//! `PRAGMA user_version`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, Transaction};
use tokio::sync::oneshot;

use super::sql::{
    Columns, RowExt, SubscriptionRow, conflict, corrupt, count, db, decode_attempt, decode_claim,
    decode_delivery, decode_subscription, delivery_page, disabled_parts, json, millis, millis_ceil,
    not_found, or_status,
};
use super::{
    Attempt, AttemptErrorKind, Claim, ClaimRequest, Delivery, DeliveryQuery, DeliveryStatus,
    Health, LeaseId, NewDelivery, Next, Page, Recorded, Store, StoreError,
};
use crate::subscription::Disabled;
use crate::time::from_unix_millis;
use crate::{DeliveryId, Message, MessageId, Subscription, SubscriptionId};

/// The schema, one migration per version: `MIGRATIONS[n]` takes `user_version` from `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/sqlite/0001_initial.sql")];

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read-only connections: enough for the inspection calls and `next_due` to run beside writes.
const READERS: u32 = 4;

/// Messages deleted per transaction by `purge`, so that retention never holds the writer long.
const PURGE_CHUNK: usize = 512;

/// A [`Store`] in one SQLite file: subscriptions, messages, deliveries and attempts survive
/// restarts, and a process that opens the file after another died takes over its work at once.
///
/// One process at a time: [`open`](SqliteStore::open) holds an exclusive lock on
/// `<path>.lock` for the store's lifetime and refuses a file that is already open.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("webhooks.db");
/// use webhooks::{Webhooks, store::SqliteStore};
///
/// let store = SqliteStore::open(&path).await?;
/// let hooks = Webhooks::builder().store(store).build().await?;
/// hooks.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Locked until the store is dropped: the one-process guarantee. Here rather than in
    /// `Inner`, so that dropping the store releases the file at once even while a commit task
    /// winds down.
    _lock: File,
}

struct Inner {
    path: PathBuf,
    /// One connection: every write goes through it, one transaction at a time.
    writer: SqlitePool,
    /// `query_only` connections for reads.
    readers: SqlitePool,
    /// Where the next claim starts among subscriptions, so that every one gets its turn.
    rotation: AtomicUsize,
    /// Enqueues waiting for the next group commit.
    batch: Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    /// Whether a task is committing batches; it takes new jobs until none are left.
    committing: bool,
}

/// One `enqueue` waiting for its commit.
struct Job {
    message: Message,
    deliveries: Vec<NewDelivery>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Why the SQLite store failed, beyond what the database itself reports.
#[derive(Debug, thiserror::Error)]
enum SqliteError {
    #[error(
        "the webhook store {} is already open (in another process, or in this one): its lock \
         file {} is held; one process at a time may use a store file",
        .path.display(),
        .lock.display()
    )]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("cannot lock the webhook store with {}: {source}", .lock.display())]
    Lock {
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the webhook store {} has schema version {found}, but this version of webhooks knows \
         versions up to {known}: it was written by a newer webhooks; upgrade, or use another file",
        .path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("the webhook store's writer stopped before committing (the runtime is shutting down)")]
    WriterGone,
}

fn blob(uuid: uuid::Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

/// SQLite's side of the shared decoders: ids are 16-byte blobs, and columns hold values of any
/// type.
impl Columns for SqliteRow {
    fn id(&self, index: usize) -> Result<uuid::Uuid, StoreError> {
        let bytes: Vec<u8> = self.col(index)?;
        uuid::Uuid::from_slice(&bytes).map_err(|e| corrupt("id", e))
    }

    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.col(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        self.col(index)
    }

    fn subscription_text(&self, what: &'static str, index: usize) -> Result<String, StoreError> {
        self.col(index).map_err(|_| corrupt(what, "not text"))
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.col(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.col(index)
    }

    fn status_code(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.col(index)
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        self.col(index)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.col(index)
    }
}

impl SqliteStore {
    /// Opens the store in the SQLite file at `path`, creating it if it is missing, and brings
    /// its schema up to date.
    ///
    /// Deliveries that were claimed when the previous process stopped are claimable again at
    /// once: holding the lock proves that process is gone.
    ///
    /// Fails if the file is already open (here or in another process), if it was written by a
    /// newer version of this library, or if it cannot be opened.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock = lock(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Each commit reaches the disk before `send` returns: an accepted message survives
            // a power cut, not only a crash. Group commit pays for it.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        migrate(&writer, &path).await?;
        // We hold the lock, so whoever held these leases is gone: release them now rather than
        // when they lapse.
        sqlx::query(
            "UPDATE deliveries SET lease = NULL, lease_until = NULL WHERE lease IS NOT NULL",
        )
        .execute(&writer)
        .await
        .map_err(db)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.create_if_missing(false).pragma("query_only", "ON"))
            .await
            .map_err(db)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer,
                readers,
                rotation: AtomicUsize::new(0),
                batch: Mutex::new(Batch::default()),
            }),
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes the connections, waiting for the operations under way, then releases the file.
    /// Dropping the store also releases it, without waiting.
    pub async fn close(self) {
        self.inner.writer.close().await;
        self.inner.readers.close().await;
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a
        // lock another connection (say, a `sqlite3` shell) holds.
        self.inner
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)
    }
}

/// `<path>.lock`, created if missing and locked exclusively.
fn lock(path: &Path) -> Result<File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let error = |lock: &Path, source| {
        StoreError::Backend(Box::new(SqliteError::Lock {
            lock: lock.to_path_buf(),
            source,
        }))
    };
    // Never truncated nor deleted: removing a lock file races with whoever opens it next.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| error(&lock_path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Backend(Box::new(SqliteError::InUse {
            path: path.to_path_buf(),
            lock: lock_path,
        }))),
        Err(TryLockError::Error(e)) => Err(error(&lock_path, e)),
    }
}

/// Applies the migrations the file lacks, in one transaction.
async fn migrate(writer: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let applied = usize::try_from(found)
        .ok()
        .filter(|v| *v <= MIGRATIONS.len())
        .ok_or_else(|| {
            StoreError::Backend(Box::new(SqliteError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known: MIGRATIONS.len(),
            }))
        })?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(db)?;
        // PRAGMA takes no parameters; the value is our own integer.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            version + 1
        )))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The columns of a subscription, in the order [`decode_subscription`] reads them.
macro_rules! subscription_columns {
    () => {
        "id, url, events, labels, secrets, headers, ordered, rate_limit, max_in_flight, retry, \
         description, created_at, disabled_at, disabled_reason, disabled_detail"
    };
}

/// The columns of a delivery view (`d`: deliveries, `m`: its message), in the order
/// [`decode_delivery`] reads them.
macro_rules! delivery_columns {
    () => {
        "d.id, m.id, d.subscription_id, m.event_type, d.status, d.attempts, d.next_attempt_at, \
         d.created_at, d.last_attempt_at, d.lease IS NOT NULL"
    };
}

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

/// A subscription's health from `failing_since, consecutive_exhausted`.
fn decode_health(row: &SqliteRow) -> Result<Health, StoreError> {
    Ok(Health {
        failing_since: row.opt_time(0)?,
        consecutive_exhausted: row.u32(1)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// One enqueue inside a (group) transaction. On error, the caller rolls back to a savepoint taken
/// before it, so that one bad enqueue does not fail the others of its batch.
async fn insert_message(
    conn: &mut SqliteConnection,
    message: &Message,
    deliveries: &[NewDelivery],
) -> Result<(), StoreError> {
    let id = message.id();
    let exists = sqlx::query("SELECT 1 FROM messages WHERE id = ?")
        .bind(blob(id.as_uuid()))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if exists.is_some() {
        return Err(conflict("message", id));
    }
    for new in deliveries {
        let known = sqlx::query("SELECT 1 FROM subscriptions WHERE id = ?")
            .bind(blob(new.subscription_id.as_uuid()))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        if known.is_none() {
            return Err(not_found("subscription", new.subscription_id));
        }
    }
    let created = millis(message.timestamp());
    let seq = sqlx::query(
        "INSERT INTO messages (id, created_at, event_type, labels, body) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(blob(id.as_uuid()))
    .bind(created)
    .bind(message.event_type())
    .bind(json(message.labels())?)
    .bind(&message.body()[..])
    .execute(&mut *conn)
    .await
    .map_err(db)?
    .last_insert_rowid();
    for new in deliveries {
        let (status, due) = if new.skipped {
            (DeliveryStatus::Skipped, None)
        } else {
            (DeliveryStatus::Pending, Some(created))
        };
        sqlx::query(
            "INSERT INTO deliveries (id, message, subscription_id, created_at, status, \
             next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(blob(new.id.as_uuid()))
        .bind(seq)
        .bind(blob(new.subscription_id.as_uuid()))
        .bind(created)
        .bind(status.as_str())
        .bind(due)
        .execute(&mut *conn)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => conflict("delivery", new.id),
            other => db(other),
        })?;
    }
    Ok(())
}

/// Hands the committer's role back if its task is dropped before it is done (the runtime shut
/// down): the enqueues it would have committed fail, later ones start a new committer.
struct Committing {
    inner: Arc<Inner>,
    done: bool,
}

impl Drop for Committing {
    fn drop(&mut self) {
        if !self.done {
            let mut batch = self.inner.batch.lock().unwrap_or_else(|p| p.into_inner());
            batch.committing = false;
            // Dropping the jobs drops their senders: their callers get `WriterGone`.
            batch.jobs.clear();
        }
    }
}

impl Inner {
    /// Commits every waiting enqueue in one transaction, batch after batch, until none wait.
    /// Runs in its own task, so that a caller that stops waiting cannot cut a commit short.
    async fn commit_batches(self: Arc<Self>) {
        let mut guard = Committing {
            inner: self.clone(),
            done: false,
        };
        loop {
            let jobs = {
                let mut batch = self.batch.lock().unwrap_or_else(|p| p.into_inner());
                if batch.jobs.is_empty() {
                    batch.committing = false;
                    guard.done = true;
                    return;
                }
                std::mem::take(&mut batch.jobs)
            };
            self.commit_batch(jobs).await;
        }
    }

    async fn commit_batch(&self, jobs: Vec<Job>) {
        let mut results = Vec::with_capacity(jobs.len());
        let outcome: Result<(), StoreError> = async {
            let mut tx = self
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db)?;
            for job in &jobs {
                sqlx::query("SAVEPOINT enqueue")
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                let result = insert_message(&mut tx, &job.message, &job.deliveries).await;
                let end = if result.is_ok() {
                    "RELEASE enqueue"
                } else {
                    "ROLLBACK TO enqueue; RELEASE enqueue"
                };
                sqlx::raw_sql(end).execute(&mut *tx).await.map_err(db)?;
                results.push(result);
            }
            tx.commit().await.map_err(db)
        }
        .await;
        match outcome {
            Ok(()) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(error) => {
                // Nothing of the batch was committed: every enqueue in it fails alike.
                let text = error.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Backend(text.clone().into())));
                }
            }
        }
    }
}

impl Store for SqliteStore {
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let row = SubscriptionRow::new(subscription)?;
        let sql = concat!(
            "INSERT INTO subscriptions (",
            subscription_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        match bind_subscription(sqlx::query(sql), row)
            .execute(&self.inner.writer)
            .await
        {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(conflict("subscription", subscription.id))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn update_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let row = SubscriptionRow::new(subscription)?;
        let enabled = subscription.disabled.is_none();
        // The id is bound first (as `?1`) by `bind_subscription`; SET expressions see the row
        // before the update, so health is reset exactly when a disabled subscription is enabled.
        let sql = "UPDATE subscriptions SET url = ?2, events = ?3, labels = ?4, secrets = ?5, \
                   headers = ?6, ordered = ?7, rate_limit = ?8, max_in_flight = ?9, retry = ?10, \
                   description = ?11, created_at = ?12, disabled_at = ?13, disabled_reason = ?14, \
                   disabled_detail = ?15, \
                   failing_since = CASE WHEN disabled_at IS NOT NULL AND ?16 THEN NULL ELSE failing_since END, \
                   consecutive_exhausted = CASE WHEN disabled_at IS NOT NULL AND ?16 THEN 0 ELSE consecutive_exhausted END \
                   WHERE id = ?1";
        let done = bind_subscription(sqlx::query(sql), row)
            .bind(enabled)
            .execute(&self.inner.writer)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(not_found("subscription", subscription.id));
        }
        Ok(())
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> Result<Subscription, StoreError> {
        let key = blob(id.as_uuid());
        let (at, reason, detail) = disabled_parts(Some(&disabled));
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE subscriptions SET disabled_at = ?, disabled_reason = ?, disabled_detail = ? \
             WHERE id = ?",
        )
        .bind(at)
        .bind(reason)
        .bind(detail)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(not_found("subscription", id));
        }
        // Deliveries in flight are left to their attempt, which records them skipped.
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL \
             WHERE subscription_id = ? AND status = 'pending' AND lease IS NULL",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE id = ?"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let subscription = decode_subscription(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(subscription)
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        let key = blob(id.as_uuid());
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM subscriptions WHERE id = ?")
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM attempts WHERE delivery IN \
             (SELECT pk FROM deliveries WHERE subscription_id = ?)",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM deliveries WHERE subscription_id = ?")
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE id = ?"
        ))
        .bind(blob(id.as_uuid()))
        .fetch_optional(&self.inner.readers)
        .await
        .map_err(db)?;
        row.as_ref().map(decode_subscription).transpose()
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        // UUID v7 ids sort by creation time: oldest first.
        let rows = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions ORDER BY id"
        ))
        .fetch_all(&self.inner.readers)
        .await
        .map_err(db)?;
        rows.iter().map(decode_subscription).collect()
    }

    async fn enqueue(
        &self,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        let job = Job {
            message: message.clone(),
            deliveries: deliveries.to_vec(),
            done,
        };
        let start = {
            let mut batch = self.inner.batch.lock().unwrap_or_else(|p| p.into_inner());
            batch.jobs.push(job);
            !std::mem::replace(&mut batch.committing, true)
        };
        if start {
            // Enqueues that arrive while this batch commits wait for the next one: one commit
            // (one fsync) for all of them.
            tokio::spawn(self.inner.clone().commit_batches());
        }
        result
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend(Box::new(SqliteError::WriterGone))))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        let now = millis(request.now);
        let until = request.now.checked_add(request.lease);
        let until_ms = until.map_or(i64::MAX, millis_ceil);
        let mut tx = self.write().await?;
        // Leases that lapsed: their holder is presumed dead, the deliveries are claimable again
        // and the holder's late `record_attempt` is not applied.
        sqlx::query(
            "UPDATE deliveries SET lease = NULL, lease_until = NULL \
             WHERE lease IS NOT NULL AND lease_until <= ?",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        // Only the subscriptions with unfinished work: one index probe each.
        let rows = sqlx::query(
            "SELECT s.id, s.ordered, s.disabled_at IS NOT NULL FROM subscriptions s \
             WHERE EXISTS (SELECT 1 FROM deliveries d \
                           WHERE d.subscription_id = s.id AND d.status = 'pending') \
             ORDER BY s.id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut subs = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Vec<u8> = row.col(0)?;
            subs.push((id, row.col::<bool>(1)?, row.col::<bool>(2)?));
        }
        if !subs.is_empty() {
            let start = self.inner.rotation.fetch_add(1, Ordering::Relaxed) % subs.len();
            subs.rotate_left(start);
        }
        let exclude: Vec<Vec<u8>> = request.exclude.iter().map(|s| blob(s.as_uuid())).collect();
        let mut picked: Vec<i64> = Vec::new();
        for (sub, ordered, disabled) in subs {
            if picked.len() >= request.limit {
                break;
            }
            if disabled || exclude.contains(&sub) {
                continue;
            }
            if ordered {
                // Only the oldest unfinished delivery, and only when it is not in flight.
                let head = sqlx::query(
                    "SELECT pk, lease IS NULL AND next_attempt_at <= ? FROM deliveries \
                     WHERE subscription_id = ? AND status = 'pending' \
                     ORDER BY message, pk LIMIT 1",
                )
                .bind(now)
                .bind(&sub)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if let Some(head) = head
                    && head.col::<bool>(1)?
                {
                    picked.push(head.col(0)?);
                }
            } else {
                let room = request.per_subscription.min(request.limit - picked.len());
                let rows = sqlx::query(
                    "SELECT pk FROM deliveries \
                     WHERE subscription_id = ? AND status = 'pending' AND lease IS NULL \
                       AND next_attempt_at <= ? \
                     ORDER BY next_attempt_at, message, pk LIMIT ?",
                )
                .bind(&sub)
                .bind(now)
                .bind(count(room))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                for row in &rows {
                    picked.push(row.col(0)?);
                }
            }
        }
        let lease_until = until.unwrap_or_else(|| from_unix_millis(i64::MAX));
        let mut claims = Vec::with_capacity(picked.len());
        for pk in picked {
            let lease = LeaseId(uuid::Uuid::now_v7());
            sqlx::query("UPDATE deliveries SET lease = ?, lease_until = ? WHERE pk = ?")
                .bind(blob(lease.0))
                .bind(until_ms)
                .bind(pk)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let row = sqlx::query(concat!(
                "SELECT ",
                delivery_columns!(),
                ", m.labels, m.body FROM deliveries d JOIN messages m ON m.seq = d.message \
                 WHERE d.pk = ?"
            ))
            .bind(pk)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            claims.push(decode_claim(&row, 10, lease, lease_until)?);
        }
        tx.commit().await.map_err(db)?;
        Ok(claims)
    }

    async fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> Result<Recorded, StoreError> {
        let id = attempt.delivery_id;
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT pk, subscription_id, lease FROM deliveries WHERE id = ?")
            .bind(blob(id.as_uuid()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("delivery", id))?;
        let pk: i64 = row.col(0)?;
        let sub: Vec<u8> = row.col(1)?;
        let held: Option<Vec<u8>> = row.col(2)?;
        // Kept even when the lease was lost: the request was made.
        sqlx::query(
            "INSERT INTO attempts (delivery, number, at, latency_ns, status_code, error, \
             error_message, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(pk)
        .bind(i64::from(attempt.number))
        .bind(millis(attempt.at))
        .bind(i64::try_from(attempt.latency.as_nanos()).unwrap_or(i64::MAX))
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.map(AttemptErrorKind::as_str))
        .bind(attempt.error_message.as_deref())
        .bind(&attempt.response_body[..])
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let applied = held.as_deref() == Some(lease.0.as_bytes().as_slice());
        if applied {
            let (status, due) = match next {
                Next::Delivered => (DeliveryStatus::Delivered, None),
                Next::Exhausted => (DeliveryStatus::Exhausted, None),
                Next::Skipped => (DeliveryStatus::Skipped, None),
                Next::RetryAt(at) => (DeliveryStatus::Pending, Some(millis(at))),
            };
            sqlx::query(
                "UPDATE deliveries SET attempts = MAX(attempts, ?), last_attempt_at = ?, \
                 status = ?, next_attempt_at = ?, lease = NULL, lease_until = NULL WHERE pk = ?",
            )
            .bind(i64::from(attempt.number))
            .bind(millis(attempt.at))
            .bind(status.as_str())
            .bind(due)
            .bind(pk)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            let health = match next {
                Next::Delivered => Some(
                    "UPDATE subscriptions SET failing_since = NULL, consecutive_exhausted = 0 WHERE id = ?2",
                ),
                Next::RetryAt(_) => Some(
                    "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?1) WHERE id = ?2",
                ),
                Next::Exhausted => Some(
                    "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?1), \
                     consecutive_exhausted = consecutive_exhausted + 1 WHERE id = ?2",
                ),
                Next::Skipped => None,
            };
            if let Some(sql) = health {
                sqlx::query(sql)
                    .bind(millis(attempt.at))
                    .bind(&sub)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        let health = sqlx::query(
            "SELECT failing_since, consecutive_exhausted FROM subscriptions WHERE id = ?",
        )
        .bind(&sub)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .as_ref()
        .map(decode_health)
        .transpose()?
        .unwrap_or_default();
        tx.commit().await.map_err(db)?;
        Ok(Recorded { health, applied })
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        // The earliest of: a lease that lapses; an ordered subscription's head when it is not in
        // flight; an unordered subscription's earliest unleased delivery. Index lookups only.
        let earliest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due) FROM ( \
               SELECT MIN(lease_until) AS due FROM deliveries WHERE lease IS NOT NULL \
               UNION ALL \
               SELECT CASE WHEN s.ordered THEN \
                 (SELECT CASE WHEN d.lease IS NULL THEN d.next_attempt_at END FROM deliveries d \
                  WHERE d.subscription_id = s.id AND d.status = 'pending' \
                  ORDER BY d.message, d.pk LIMIT 1) \
               ELSE \
                 (SELECT MIN(d.next_attempt_at) FROM deliveries d \
                  WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.lease IS NULL) \
               END FROM subscriptions s)",
        )
        .fetch_one(&self.inner.readers)
        .await
        .map_err(db)?;
        Ok(earliest.map(|e| from_unix_millis(e).max(now)))
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE d.id = ?"
        ))
        .bind(blob(id.as_uuid()))
        .fetch_optional(&self.inner.readers)
        .await
        .map_err(db)?;
        row.as_ref().map(decode_delivery).transpose()
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM messages m JOIN deliveries d ON d.message = m.seq WHERE m.id = ? ORDER BY d.pk"
        ))
        .bind(blob(id.as_uuid()))
        .fetch_all(&self.inner.readers)
        .await
        .map_err(db)?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.number, a.at, a.latency_ns, a.status_code, a.error, a.error_message, \
             a.response_body FROM deliveries d JOIN attempts a ON a.delivery = d.pk \
             WHERE d.id = ? ORDER BY a.pk",
        )
        .bind(blob(id.as_uuid()))
        .fetch_all(&self.inner.readers)
        .await
        .map_err(db)?;
        rows.iter().map(|row| decode_attempt(id, row)).collect()
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        let before = millis(before);
        let mut purged = 0;
        // Where the previous chunk ended, so that old messages kept (undelivered) are examined
        // once per purge, not once per chunk.
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let mut tx = self.write().await?;
            let rows = sqlx::query(
                "SELECT m.created_at, m.seq FROM messages m \
                 WHERE m.created_at < ? AND (m.created_at, m.seq) > (?, ?) AND NOT EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.message = m.seq AND d.status <> 'delivered') \
                 ORDER BY m.created_at, m.seq LIMIT ?",
            )
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
            for sql in [
                format!(
                    "DELETE FROM attempts WHERE delivery IN \
                     (SELECT pk FROM deliveries WHERE message IN ({list}))"
                ),
                format!("DELETE FROM deliveries WHERE message IN ({list})"),
                format!("DELETE FROM messages WHERE seq IN ({list})"),
            ] {
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

    async fn query_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE 1"
        ));
        if let Some(cursor) = query.cursor {
            // Row values walk the (created_at, id) index backwards from the cursor.
            sql.push(" AND (d.created_at, d.id) < (")
                .push_bind(cursor.created_at_ms)
                .push(", ")
                .push_bind(blob(cursor.id.as_uuid()))
                .push(")");
        }
        if let Some(sub) = query.subscription {
            sql.push(" AND d.subscription_id = ")
                .push_bind(blob(sub.as_uuid()));
        }
        if !query.statuses.is_empty() {
            // As the view shows them: in flight and failed are pending rows.
            sql.push(" AND (0");
            for status in &query.statuses {
                sql.push(or_status(*status));
            }
            sql.push(")");
        }
        if let Some(event_type) = &query.event_type {
            sql.push(" AND m.event_type = ")
                .push_bind(event_type.clone());
        }
        if let Some((name, value)) = &query.label {
            sql.push(" AND EXISTS (SELECT 1 FROM json_each(m.labels) l WHERE l.key = ")
                .push_bind(name.clone())
                .push(" AND l.value = ")
                .push_bind(value.clone())
                .push(")");
        }
        // Creation times are whole milliseconds: `>= since` and `< until` hold exactly against
        // the bounds rounded up.
        if let Some(since) = query.since {
            sql.push(" AND d.created_at >= ")
                .push_bind(millis_ceil(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND d.created_at < ")
                .push_bind(millis_ceil(until));
        }
        let size = query.page_size();
        sql.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ")
            .push_bind(count(size));
        let rows = sql
            .build()
            .fetch_all(&self.inner.readers)
            .await
            .map_err(db)?;
        delivery_page(&rows, size)
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        let key = blob(id.as_uuid());
        let mut tx = self.write().await?;
        let leased: bool =
            sqlx::query_scalar("SELECT lease IS NOT NULL FROM deliveries WHERE id = ?")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .ok_or_else(|| not_found("delivery", id))?;
        if leased {
            return Err(conflict("in-flight delivery", id));
        }
        sqlx::query("UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ?")
            .bind(millis(now))
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d JOIN messages m ON m.seq = d.message WHERE d.id = ?"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let delivery = decode_delivery(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(delivery)
    }

    async fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let key = blob(subscription.as_uuid());
        let mut tx = self.write().await?;
        let known = sqlx::query("SELECT 1 FROM subscriptions WHERE id = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if known.is_none() {
            return Err(not_found("subscription", subscription));
        }
        // Finished deliveries hold no lease: all of them can be requeued.
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ? \
             WHERE subscription_id = ? AND status IN ('exhausted', 'skipped') \
               AND created_at >= ? AND created_at < ?",
        )
        .bind(millis(now))
        .bind(&key)
        .bind(millis_ceil(since))
        .bind(millis_ceil(until))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }
}
