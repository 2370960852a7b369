//! Opening the store's file: the lock file that keeps it to one process, the connections and
//! their settings (WAL, `synchronous`, busy timeout, read-only readers), the migrations, and how
//! a write transaction begins.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, Transaction};

use super::{SqliteError, SqliteStore};
use crate::store::StoreError;
use crate::store::sql::db;

/// The schema, one migration per version: `MIGRATIONS[n]` takes `user_version` from `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../../migrations/sqlite/0002_many_workers.sql"),
];

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read-only connections: enough for the inspection calls and `next_due` to run beside writes.
const READERS: u32 = 4;

/// Starts a write transaction taking the write lock up front, so that it never fails half-way
/// on a lock another connection (say, a `sqlite3` shell) holds.
const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Releases every lease, on open: whoever held them is gone. No parameters.
const CLEAR_LEASES: &str =
    "UPDATE deliveries SET lease = NULL, lease_until = NULL WHERE lease IS NOT NULL";

/// Reads the schema version of the file (how many of [`MIGRATIONS`] it has). No parameters.
const USER_VERSION: &str = "PRAGMA user_version";

/// Sets the schema version of the file to `version` (spliced in: PRAGMA takes no parameters;
/// the value is our own integer).
fn set_user_version(version: usize) -> String {
    format!("PRAGMA user_version = {version}")
}

/// The connections to the file at `path`, whose lock the caller holds: the writer (one
/// connection), after bringing the schema up to date and releasing the leases of the previous
/// process, then the read-only readers.
pub(super) async fn pools(path: &Path) -> Result<(SqlitePool, SqlitePool), StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
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
    migrate(&writer, path).await?;
    // We hold the lock, so whoever held these leases is gone: release them now rather than
    // when they lapse.
    sqlx::query(CLEAR_LEASES)
        .execute(&writer)
        .await
        .map_err(db)?;
    let readers = SqlitePoolOptions::new()
        .max_connections(READERS)
        .test_before_acquire(false)
        .connect_with(options.create_if_missing(false).pragma("query_only", "ON"))
        .await
        .map_err(db)?;
    Ok((writer, readers))
}

impl SqliteStore {
    /// A write transaction on the writer connection, its write lock taken (see
    /// [`BEGIN_IMMEDIATE`]).
    pub(super) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.inner
            .writer
            .begin_with(BEGIN_IMMEDIATE)
            .await
            .map_err(db)
    }
}

/// `<path>.lock`, created if missing and locked exclusively.
pub(super) fn lock(path: &Path) -> Result<File, StoreError> {
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
    let mut tx = writer.begin_with(BEGIN_IMMEDIATE).await.map_err(db)?;
    let found: i64 = sqlx::query_scalar(USER_VERSION)
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
        sqlx::raw_sql(AssertSqlSafe(set_user_version(version + 1)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}
