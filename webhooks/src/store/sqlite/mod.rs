//! [`SqliteStore`]: the durable store, in one SQLite file.
//!
//! One writer connection (SQLite allows one writer at a time), owned by the store's writer
//! thread, and a few read-only connections, in WAL mode so that reads never wait for writes.
//! The SQLite library is compiled in and driven through rusqlite: a statement runs on the
//! thread that calls it, prepared once per connection and cached.
//!
//! Every write goes through the writer thread, fed by a channel and answering through oneshot
//! channels; it takes every call waiting at each turn and serves them together. Each durable
//! commit is an `fsync`, so what a delivery costs is counted in commits and statements, and
//! batching divides the first:
//!
//! - a *round* commits every waiting enqueue and attempt record in one `BEGIN IMMEDIATE`
//!   transaction (one `fsync`): it reads what deciding them needs (conflicts, unknown
//!   subscriptions, leases, health; index lookups by id), decides each job alone, then writes
//!   the rows of those that stand, one cached statement per table run once per row, and
//!   commits. A job that cannot be applied (a duplicate id, an unknown subscription or
//!   delivery) is found by the read and fails alone, and one that is stale (matched against an
//!   older version of the subscriptions) or a duplicate (its idempotency key was seen) answers
//!   alone; the others commit;
//! - a claim is one `UPDATE … RETURNING` over every subscription, within each one's limits
//!   (`max_in_flight`, ordering keys, rate limit; see [`claim`]), before the turn's round.
//!   Leases do not survive a restart (`open` clears them), so a claim commits without `fsync`;
//! - every other write is its own transaction on the same thread; a change to a subscription
//!   moves the version of the subscriptions (`subscriptions_version`) on in it.
//!
//! Reads (the delivery log, the subscriptions, `next_due`) run on a blocking thread of tokio's
//! (`spawn_blocking`) with a read-only connection from a small pool.
//!
//! The schema lives in `migrations/sqlite/`, applied in order on open and tracked in
//! `PRAGMA user_version`.
//!
//! One file per concern; this one holds the store's type, `open`, and the [`Store`] impl, which
//! hands each call to the file below that does it:
//!
//! - [`connect`]: opening the file: the lock file, the connections and their settings, the
//!   readers' pool, the migrations, and how a write transaction begins;
//! - [`writer`]: the writer thread, its queue and its rounds (the statements they run);
//! - [`enqueue`]: where a delivery is enqueued: the job, and its decision within a round;
//! - [`claim`]: where a delivery is claimed: the claim statement, reading its rows, `next_due`;
//! - [`record`]: where an attempt is recorded: the job, its decision within a round, the
//!   subscription's health;
//! - [`subscriptions`]: subscription changes and reads, each change moving the version on;
//! - [`log`]: the delivery log: reads, queries, `redeliver`, `recover`, `purge`;
//! - [`row`] and [`batch`]: values to and from SQLite: ids as blobs, rows decoded, the
//!   statement helpers; a round's rows for one statement; a list of ids as two parameters;
//! - `tests.rs`: what the conformance suite cannot aim at (calls that share a round).

mod batch;
mod claim;
mod connect;
mod enqueue;
mod log;
mod record;
mod row;
mod subscriptions;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{
    Attempt, ClaimRequest, Claimed, Delivery, DeliveryQuery, Enqueue, Enqueued, LeaseId, Next,
    Page, QueueStats, Recorded, Store, StoreError, Versioned,
};
use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};
use connect::Readers;
use writer::{Job, Writer};

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
    inner: Inner,
    /// Closed by the writer thread once it has closed its connection: what `close` waits for.
    closed: oneshot::Receiver<()>,
    /// Locked until the store is dropped: the one-process guarantee. Dropping the store
    /// releases the file at once, even while the writer thread winds down.
    _lock: File,
}

/// What the store's calls use: the writer thread's queue and the readers.
struct Inner {
    /// The database file.
    path: PathBuf,
    /// The writer thread's queue: every write goes through it, one transaction at a time.
    /// Dropping it stops the thread once it has served what was sent.
    jobs: mpsc::Sender<Job>,
    /// `query_only` connections for reads.
    readers: Arc<Readers>,
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
    #[error("the webhook store's writer stopped before committing (the store is closing)")]
    WriterGone,
    #[error("cannot start the webhook store's writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the webhook store's readers were left poisoned by a panic")]
    Poisoned,
    #[error("a read of the webhook store stopped before it answered: {0}")]
    Read(tokio::task::JoinError),
    #[error("the webhook store needs WAL mode, but SQLite kept the journal mode {0:?}")]
    NotWal(String),
}

/// The writer thread is gone: the store is closing, or the thread failed.
fn writer_gone() -> StoreError {
    StoreError::Backend(Box::new(SqliteError::WriterGone))
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
        let lock = connect::lock(&path)?;
        // Migrating may take a while: off the async threads.
        let opening = path.clone();
        let conn = tokio::task::spawn_blocking(move || connect::open_writer(&opening))
            .await
            .map_err(|e| StoreError::Backend(Box::new(SqliteError::Read(e))))??;
        let (jobs, closed) = writer::start(conn, path.clone())?;
        Ok(SqliteStore {
            inner: Inner {
                readers: Arc::new(Readers::new(path.clone())),
                path,
                jobs,
            },
            closed,
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
        let SqliteStore {
            inner,
            closed,
            _lock,
        } = self;
        let Inner { jobs, readers, .. } = inner;
        // The writer thread serves what was sent before, then stops.
        drop(jobs);
        readers.close();
        // Closed (an error: the thread dropped its end) once the connection is closed.
        let _ = closed.await;
    }
}

impl Inner {
    /// Hands `job` to the writer thread.
    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.send(job).map_err(|_| writer_gone())
    }

    /// Runs `write` on the writer thread, between its rounds, and waits for its result. Runs
    /// to its end even if the caller stops waiting.
    async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = oneshot::channel();
        self.send(Job::Write(Box::new(move |writer: &mut Writer| {
            let _ = done.send(write(writer));
        })))?;
        result.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs `read` on a reader, on a blocking thread, and waits for its result.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(read))
            .await
            .map_err(|e| StoreError::Backend(Box::new(SqliteError::Read(e))))?
    }
}

impl Store for SqliteStore {
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<u64, StoreError> {
        subscriptions::insert_subscription(self, subscription).await
    }

    async fn update_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Versioned<Subscription>, StoreError> {
        subscriptions::update_subscription(self, subscription).await
    }

    async fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Versioned<Subscription>, StoreError> {
        subscriptions::enable_subscription(self, id).await
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> Result<Versioned<Subscription>, StoreError> {
        subscriptions::disable_subscription(self, id, disabled).await
    }

    async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> Result<Versioned<Subscription>, StoreError> {
        subscriptions::rotate_secret(self, id, secret, now, overlap).await
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<Option<u64>, StoreError> {
        subscriptions::delete_subscription(self, id).await
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscriptions::subscription(self, id).await
    }

    async fn subscriptions(&self) -> Result<Versioned<Vec<Subscription>>, StoreError> {
        subscriptions::subscriptions(self).await
    }

    async fn enqueue(&self, enqueue: &Enqueue<'_>) -> Result<Enqueued, StoreError> {
        enqueue::enqueue(self, enqueue).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        claim::claim(self, request).await
    }

    async fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> Result<Recorded, StoreError> {
        record::record_attempt(self, lease, attempt, next).await
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        claim::queue_stats(self).await
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        claim::next_due(self, now).await
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        log::delivery(self, id).await
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        log::message(self, id).await
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        log::message_deliveries(self, id).await
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        log::attempts(self, id).await
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        log::purge(self, before).await
    }

    async fn query_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        log::query_deliveries(self, query).await
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        log::redeliver(self, id, now).await
    }

    async fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        log::recover(self, subscription, since, until, now).await
    }
}

#[cfg(test)]
mod tests;
