//! Opening the store's file: the lock file that keeps it to one process, the connections and
//! their settings (WAL, `synchronous`, busy timeout, read-only readers, the statement cache), the
//! migrations, and how a write transaction begins.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::SqliteError;
use super::row::{db, execute};
use crate::store::StoreError;

/// The schema, one migration per version: `MIGRATIONS[n]` takes `user_version` from `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../../migrations/sqlite/0002_many_workers.sql"),
    include_str!("../../../migrations/sqlite/0003_fewer_lease_indexes.sql"),
];

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read-only connections kept open: enough for the inspection calls and `next_due` to run
/// beside writes. (More are opened when more reads run at once, and closed after.)
const READERS: usize = 4;

/// Prepared statements each connection keeps: every constant statement of the store fits.
const STATEMENT_CACHE: usize = 64;

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

/// The settings every connection gets: the busy timeout, WAL, `synchronous = FULL` (each commit
/// reaches the disk before `send` returns: an accepted message survives a power cut, not only a
/// crash; group commit pays for it), no foreign keys (the schema has none), the cache.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(Box::new(SqliteError::NotWal(mode))));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF")
        .map_err(db)
}

/// A connection to the file at `path` as the writer uses it (see [`configure`]), creating the
/// file if it is missing.
pub(super) fn writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    configure(&conn)?;
    Ok(conn)
}

/// The writer's connection to the file at `path`, whose lock the caller holds, after bringing
/// the schema up to date and releasing the leases of the previous process.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = writer(path)?;
    migrate(&mut conn, path)?;
    // We hold the lock, so whoever held these leases is gone: release them now rather than
    // when they lapse.
    execute(&conn, CLEAR_LEASES, [])?;
    Ok(conn)
}

/// A `query_only` connection for reads.
fn reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    configure(&conn)?;
    conn.execute_batch("PRAGMA query_only = ON").map_err(db)?;
    Ok(conn)
}

/// The read-only connections, kept for the next read; used from blocking threads
/// (`spawn_blocking`), one read each.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// None open yet: they open as reads need them.
    pub(super) fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a reader: an idle one, or a new one; kept afterwards if fewer than
    /// [`READERS`] are. Blocks: call it from a blocking thread.
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| StoreError::Backend(Box::new(SqliteError::Poisoned)))?
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => reader(&self.path)?,
        };
        let result = read(&conn);
        // A read that failed half-way may have left its transaction open: not kept then.
        if conn.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < READERS
        {
            idle.push(conn);
        }
        result
    }

    /// Closes the idle readers.
    pub(super) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// A write transaction on the writer connection, taking the write lock up front
/// (`BEGIN IMMEDIATE`), so that it never fails half-way on a lock another connection (say, a
/// `sqlite3` shell) holds. Rolled back if dropped uncommitted.
pub(super) fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)
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
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = begin(conn)?;
    let found: i64 = tx
        .query_row(USER_VERSION, [], |row| row.get(0))
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
        tx.execute_batch(sql).map_err(db)?;
        tx.execute_batch(&set_user_version(version + 1))
            .map_err(db)?;
    }
    tx.commit().map_err(db)
}
