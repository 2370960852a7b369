//! Group commit: the queues where concurrent `enqueue`s and `record_attempt`s wait (see
//! `enqueue.rs` and `record.rs`), taken in batches that share one statement and one commit, by
//! at most [`COMMITTERS`] tasks of each kind.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use uuid::Uuid;

use super::PostgresError;
use crate::store::StoreError;

/// At most this many calls share one group commit.
const MAX_BATCH_JOBS: usize = 256;

/// Batches of one kind committing at once. More than one, so that a batch fills while the
/// previous one waits for its WAL flush (PostgreSQL flushes concurrent commits together); few,
/// so that batches stay large.
const COMMITTERS: usize = 2;

/// And about this many rows (an `enqueue` writes one per delivery, plus its message): one big
/// fan-out does not make a statement of unbounded size.
const MAX_BATCH_ROWS: usize = 4096;

/// A call waiting for a group commit.
pub(super) trait Batched {
    /// What two jobs of one batch must not share: a multi-row statement would apply both at
    /// once, where one after the other the second sees the first (a duplicate message id is a
    /// conflict; a second attempt on a delivery finds the lease released).
    fn key(&self) -> Uuid;

    /// The rows the job writes.
    fn rows(&self) -> usize;
}

/// Calls waiting for their group commit, and how many tasks are committing them.
pub(super) struct Queue<J> {
    state: Mutex<QueueState<J>>,
}

struct QueueState<J> {
    jobs: VecDeque<J>,
    /// Tasks committing batches: at most [`COMMITTERS`].
    running: usize,
}

impl<J> Default for Queue<J> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                running: 0,
            }),
        }
    }
}

impl<J: Batched> Queue<J> {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<J>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a job. Returns whether the caller is to start a task to commit it (fewer than
    /// [`COMMITTERS`] are running).
    pub(super) fn push(&self, job: J) -> bool {
        let mut state = self.lock();
        state.jobs.push_back(job);
        let start = state.running < COMMITTERS;
        if start {
            state.running += 1;
        }
        start
    }

    /// The next batch, oldest first, up to the limits and to the first job whose key the batch
    /// holds already (it leads the next batch). `None` when nothing waits: the task then ends,
    /// and the next `push` starts another.
    pub(super) fn take(&self) -> Option<Vec<J>> {
        let mut state = self.lock();
        if state.jobs.is_empty() {
            state.running = state.running.saturating_sub(1);
            return None;
        }
        let mut batch: Vec<J> = Vec::new();
        let mut keys = HashSet::new();
        let mut rows = 0;
        while let Some(job) = state.jobs.front() {
            let full = batch.len() >= MAX_BATCH_JOBS || rows + job.rows() > MAX_BATCH_ROWS;
            if !batch.is_empty() && (full || keys.contains(&job.key())) {
                break;
            }
            rows += job.rows();
            keys.insert(job.key());
            batch.extend(state.jobs.pop_front());
        }
        Some(batch)
    }

    /// Gives up a committer's role when its task is dropped unfinished (the runtime shut
    /// down): the waiting calls fail (their senders are dropped), later ones start a new task.
    pub(super) fn abandon(&self) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        state.jobs.clear();
    }
}

/// Runs its closure when dropped, unless disarmed: how a task dropped before it is done (the
/// runtime shut down) hands its role back.
pub(super) struct OnDrop<F: FnMut()>(pub(super) Option<F>);

impl<F: FnMut()> OnDrop<F> {
    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.as_mut() {
            f();
        }
    }
}

/// The answer a caller gets when the task committing its call was dropped first.
pub(super) fn stopped() -> StoreError {
    StoreError::Backend(Box::new(PostgresError::Stopped))
}
