//! **Keeping the queue lean**: the store vacuums its churned tables (`queue`, `leases`) itself,
//! every [`VACUUM_EVERY`] rows it has finished or retried, at most every
//! [`VACUUM_INTERVAL`].
//!
//! Why not leave it to autovacuum: every claim and every recorded attempt leaves a dead entry
//! in the queue's indexes, at the front of the range the next claims read (a subscription's
//! rows by the time they may be claimed). Until a vacuum removes them, each claim steps over
//! all of them: with a backlog of retries the server's time per claim grew with every delivery
//! since the last vacuum (a third of a million dead entries, 6,000 pages read per claim).
//! Autovacuum looks at a table at most once a minute (`autovacuum_naptime`, a server
//! setting), too seldom for a queue that turns over thousands of rows a second.
//!
//! `VACUUM (SKIP_LOCKED)`: a worker that finds another vacuuming the table skips it, so many
//! workers vacuum no more often than one would. It takes no lock that claims, enqueues or
//! records wait for. A role that does not own the tables gets a warning from PostgreSQL and
//! nothing is vacuumed: autovacuum still runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Core;

/// How many queue rows a process finishes or retries between its vacuums.
const VACUUM_EVERY: u64 = 10_000;

/// The least time between a process's vacuums.
const VACUUM_INTERVAL: Duration = Duration::from_secs(5);

/// Vacuums the queue's tables, in the store's schema (`{s}`).
pub(super) const VACUUM: &str = "VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) {s}.queue, {s}.leases";

/// When this process last vacuumed, and how much it changed the queue since.
#[derive(Debug)]
pub(super) struct VacuumState {
    changed: AtomicU64,
    running: AtomicBool,
    last: std::sync::Mutex<Instant>,
}

impl Default for VacuumState {
    fn default() -> Self {
        VacuumState {
            changed: AtomicU64::new(0),
            running: AtomicBool::new(false),
            // As if the last vacuum were long ago: the first VACUUM_EVERY rows start one.
            last: std::sync::Mutex::new(
                Instant::now()
                    .checked_sub(VACUUM_INTERVAL)
                    .unwrap_or_else(Instant::now),
            ),
        }
    }
}

impl Core {
    /// Notes `rows` queue rows finished or retried, and starts a vacuum when they add up.
    pub(super) fn queue_changed(self: &Arc<Self>, rows: usize) {
        let state = &self.vacuum;
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let changed = state.changed.fetch_add(rows, Ordering::Relaxed) + rows;
        if changed < VACUUM_EVERY {
            return;
        }
        {
            let mut last = state.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < VACUUM_INTERVAL || state.running.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Instant::now();
        }
        state.changed.store(0, Ordering::Relaxed);
        let core = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            // VACUUM cannot run in a transaction: a statement of its own, on a pool connection.
            match sqlx::raw_sql(sqlx::AssertSqlSafe(core.sql.vacuum.to_string()))
                .execute(&core.pool)
                .await
            {
                Ok(_) => {
                    tracing::debug!(took = ?started.elapsed(), "webhook store: vacuumed the queue")
                }
                Err(error) => tracing::debug!(%error, "webhook store: vacuuming the queue failed"),
            }
            core.vacuum.running.store(false, Ordering::Release);
        });
    }
}
