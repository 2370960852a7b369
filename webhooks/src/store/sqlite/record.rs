//! Where a delivery's attempt is recorded: `record_attempt` hands the attempt and the outcome
//! decided (`deliver.rs`) to the writer thread (`writer.rs`) and waits for the round that commits
//! it; [`Round::record`] decides, within the round, whether the lease still holds (the attempt is
//! kept either way), the delivery's next state, and its subscription's health.

use tokio::sync::oneshot;
use uuid::Uuid;

use super::batch::{Cell, Rows};
use super::claim::delivery_lease;
use super::writer::{Job, Round, Writes};
use super::{SqliteStore, writer_gone};
use crate::store::sql::{corrupt, millis, not_found};
use crate::store::{
    Attempt, AttemptErrorKind, DeliveryStatus, Entity, Health, LeaseId, Next, Recorded, StoreError,
};
use crate::time::from_unix_millis;

/// One `record_attempt` waiting for its commit.
pub(super) struct RecordJob {
    pub(super) lease: LeaseId,
    pub(super) attempt: Attempt,
    pub(super) next: Next,
    pub(super) done: oneshot::Sender<Result<Recorded, StoreError>>,
}

/// A delivery an attempt is recorded for.
pub(super) struct Target {
    pub(super) pk: i64,
    pub(super) subscription: Uuid,
    pub(super) lease: Option<Vec<u8>>,
    /// Skipped already: its subscription was disabled while it was in flight.
    pub(super) skipped: bool,
    /// Its subscription is disabled.
    pub(super) disabled: bool,
}

/// A subscription's health as stored.
#[derive(Clone, Copy)]
pub(super) struct SubscriptionHealth {
    pub(super) failing_since: Option<i64>,
    pub(super) consecutive_exhausted: i64,
    /// Whether the round writes it back.
    pub(super) changed: bool,
}

impl SubscriptionHealth {
    /// After an applied attempt with this outcome, made at `at` (ms).
    fn after(mut self, next: Next, at: i64) -> Self {
        match next {
            Next::Delivered => {
                self.failing_since = None;
                self.consecutive_exhausted = 0;
            }
            Next::RetryAt(_) => {
                self.failing_since = self.failing_since.or(Some(at));
            }
            Next::Exhausted => {
                self.failing_since = self.failing_since.or(Some(at));
                self.consecutive_exhausted = self.consecutive_exhausted.saturating_add(1);
            }
            Next::Skipped => return self,
        }
        self.changed = true;
        self
    }

    /// As [`Recorded`] reports it.
    fn health(self) -> Result<Health, StoreError> {
        Ok(Health {
            failing_since: self.failing_since.map(from_unix_millis),
            consecutive_exhausted: u32::try_from(self.consecutive_exhausted)
                .map_err(|e| corrupt("count", e))?,
        })
    }
}

/// `Store::record_attempt`: waits for the round that commits it.
pub(super) async fn record_attempt(
    store: &SqliteStore,
    lease: LeaseId,
    attempt: &Attempt,
    next: Next,
) -> Result<Recorded, StoreError> {
    let (done, result) = oneshot::channel();
    let job = RecordJob {
        lease,
        attempt: attempt.clone(),
        next,
        done,
    };
    store.inner.send(Job::Record(job))?;
    result.await.unwrap_or_else(|_| Err(writer_gone()))
}

impl Round {
    /// Decides an attempt record as recording it alone after the previous ones would: the
    /// attempt is kept even when the lease was lost (the request was made); the delivery's
    /// state and its subscription's health change only when it was not.
    pub(super) fn record<'a>(
        &mut self,
        job: &'a RecordJob,
        writes: &mut Writes<'a>,
    ) -> Result<Recorded, StoreError> {
        let attempt = &job.attempt;
        let id = attempt.delivery_id;
        let target = self
            .targets
            .get_mut(&id.as_uuid())
            .ok_or_else(|| not_found(Entity::Delivery, id))?;
        let claimed = delivery_lease(job.lease.as_uuid(), target.pk);
        let applied = target.lease.as_deref() == Some(claimed.as_bytes().as_slice());
        let at = millis(attempt.at);
        let before = self.health.get(&target.subscription).copied();
        let after = before.map(|h| if applied { h.after(job.next, at) } else { h });
        let health = after.map(SubscriptionHealth::health).transpose()?;
        writes.attempts.push([
            Cell::Int(target.pk),
            Cell::Int(i64::from(attempt.number)),
            Cell::Int(at),
            Cell::Int(i64::try_from(attempt.latency.as_nanos()).unwrap_or(i64::MAX)),
            Cell::OptInt(attempt.status_code.map(i64::from)),
            Cell::OptName(attempt.error.map(AttemptErrorKind::as_str)),
            Cell::OptText(attempt.error_message.as_deref()),
            Cell::Bytes(&attempt.response_body[..]),
        ]);
        if applied {
            target.lease = None;
            // Disabled while in flight (skipped already), or since the worker decided: only a
            // success changes that.
            let retry = matches!(job.next, Next::RetryAt(_));
            let (status, due) = match job.next {
                Next::Delivered => (DeliveryStatus::Delivered, None),
                _ if target.skipped || (target.disabled && retry) => {
                    (DeliveryStatus::Skipped, None)
                }
                Next::Exhausted => (DeliveryStatus::Exhausted, None),
                Next::Skipped => (DeliveryStatus::Skipped, None),
                Next::RetryAt(at) => (DeliveryStatus::Pending, Some(millis(at))),
            };
            writes.updates.push([
                Cell::Int(target.pk),
                Cell::Int(i64::from(attempt.number)),
                Cell::Int(at),
                Cell::Name(status.as_str()),
                Cell::OptInt(due),
            ]);
            if let Some(after) = after {
                self.health.insert(target.subscription, after);
            }
        }
        Ok(Recorded {
            health: health.unwrap_or_default(),
            applied,
        })
    }

    /// The health rows to write: one per subscription whose health changed.
    pub(super) fn health_rows(&self, rows: &mut Rows<'_>) {
        for (id, health) in &self.health {
            if health.changed {
                rows.push([
                    Cell::Id(*id),
                    Cell::OptInt(health.failing_since),
                    Cell::Int(health.consecutive_exhausted),
                ]);
            }
        }
    }
}
