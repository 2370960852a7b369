//! Stage timestamps for the benchmark's latency profile (feature `bench-stages`, off by
//! default; recording off until [`enable`]): where a delivery's time goes between `send` and
//! its request, and what the SQLite writer thread does meanwhile. Not a stable interface: the
//! bench (`webhooks-bench --stages`) is its one user.
//!
//! Each stamp is a [`Stage`], a key (a message id as `u128`, or 0 for stages of no one
//! message), a count, and the wall-clock time in unix nanoseconds (comparable with the
//! receiver's arrival stamps, in another process on the same machine).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The dispatcher's wait ended (a wake, a timer, a change).
    Wake,
    /// The dispatcher asks the store for a claim.
    ClaimAsk,
    /// The claim came back to the dispatcher (`n`: deliveries claimed).
    ClaimReturn,
    /// A delivery of message `key` was claimed (stamped with the claim's return).
    Claimed,
    /// The dispatcher asks the store for `next_due` (after an empty claim).
    NextDueAsk,
    /// `next_due` came back.
    NextDueReturn,
    /// The delivery task of message `key` started.
    DeliverStart,
    /// The request of message `key` starts (limits and slots passed).
    RequestStart,
    /// The writer thread took a turn's jobs (`n`: how many).
    TurnStart,
    /// The writer thread starts a claim.
    WriterClaimStart,
    /// The writer thread finished a claim.
    WriterClaimEnd,
    /// The writer thread starts a round (`n`: its enqueues and records).
    RoundStart,
    /// The round's rows are written; its commit (with its `fsync`) starts.
    CommitStart,
    /// The round committed (or failed).
    RoundEnd,
    /// The writer thread starts the turn's other writes (`n`: how many).
    WritesStart,
    /// The other writes are done.
    WritesEnd,
}

/// One stamp.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// What happened.
    pub stage: Stage,
    /// The message (its id as `u128`), or 0.
    pub key: u128,
    /// A count, as the stage says; 0 otherwise.
    pub n: u32,
    /// When, in unix nanoseconds.
    pub ns: u64,
}

static ON: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<Stamp>> = Mutex::new(Vec::new());

/// Starts or stops recording.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Release);
}

/// Records a stamp, if recording.
pub fn stamp(stage: Stage, key: u128, n: u32) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    LOG.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Stamp { stage, key, n, ns });
}

/// Every stamp recorded so far, in the order they were pushed; the log is emptied.
pub fn take() -> Vec<Stamp> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()))
}
