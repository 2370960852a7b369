//! **Where an attempt is recorded**: concurrent `record_attempt`s are group-committed, a batch
//! per transaction: the attempts and their deliveries' next states in one statement
//! ([`RECORD_ATTEMPTS`]), then the health of the subscriptions whose health changes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::group_commit::{Batched, OnDrop, stopped};
use super::{Core, query};
use crate::store::sql::{RowExt, corrupt, db, millis, not_found};
use crate::store::{
    Attempt, AttemptErrorKind, DeliveryStatus, Entity, Health, LeaseId, Next, Recorded, StoreError,
};
use crate::time::from_unix_millis;

/// A batch of attempts and what follows each, in one statement. A delivery changes only if
/// its lease still holds: the lease is deleted by the statement itself, on the row's latest
/// version, and the delivery changes only if it was; the attempt is kept either way. The
/// deliveries' queue rows are locked first, as claims lock them (see migration 0004), so a
/// claim taking over a lapsed lease and the late attempt of its holder never deadlock. A
/// finished delivery leaves the queue; a retry moves its due time there. A delivery skipped
/// meanwhile (its subscription was disabled while it was in flight) stays skipped unless it was
/// delivered, and a retry of a disabled subscription's delivery is stored skipped. Health is
/// left to the caller (`Core::record_batch`), which writes it only when it changes, so that a
/// busy healthy subscription's row is not rewritten on every delivery.
///
/// `$1`-`$11`, one element per attempt: delivery, lease, number, at, latency, status code,
/// error, error message, response body, the next status and its due time. One row per attempt,
/// in order: the delivery's subscription (NULL: no such delivery), whether the lease held, and
/// the subscription's `ordered`, `failing_since` and `consecutive_exhausted`. A batch never
/// holds two attempts of one delivery.
pub(super) const RECORD_ATTEMPTS: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[],
        $6::integer[], $7::text[], $8::text[], $9::bytea[], $10::text[], $11::bigint[])
        WITH ORDINALITY AS u(id, lease, number, at, latency_ns, status_code, error,
            error_message, response_body, status, due, n)
), target AS (
    SELECT input.n, d.pk, d.subscription_id
    FROM input JOIN {s}.deliveries d ON d.id = input.id
), queued AS (
    SELECT q.delivery FROM {s}.queue q JOIN target ON target.pk = q.delivery
    ORDER BY q.delivery
    FOR UPDATE OF q
), attempt AS (
    INSERT INTO {s}.attempts (delivery, number, at, latency_ns, status_code, error,
        error_message, response_body)
    SELECT target.pk, input.number, input.at, input.latency_ns, input.status_code, input.error,
        input.error_message, input.response_body
    FROM input JOIN target ON target.n = input.n
    ORDER BY input.n
), held AS (
    -- The scalar subquery runs first, once: the queue rows are locked before any lease.
    DELETE FROM {s}.leases l USING input, target
    WHERE target.n = input.n AND l.delivery = target.pk AND l.lease = input.lease
      AND (SELECT count(*) FROM queued) >= 0
    RETURNING input.n, l.delivery
), upd AS (
    UPDATE {s}.deliveries d SET attempts = GREATEST(d.attempts, input.number),
        last_attempt_at = input.at,
        status = CASE
            WHEN input.status = 'delivered' THEN 'delivered'
            WHEN d.status = 'skipped' THEN 'skipped'
            WHEN input.status = 'pending' AND s.disabled_at IS NOT NULL THEN 'skipped'
            ELSE input.status
        END,
        next_attempt_at = CASE
            WHEN input.status = 'pending' AND d.status <> 'skipped' AND s.disabled_at IS NULL
            THEN input.due
        END,
        requeued = false
    FROM held, input, {s}.subscriptions s
    WHERE d.pk = held.delivery AND input.n = held.n AND s.id = d.subscription_id
    RETURNING input.n, d.pk, d.status, d.next_attempt_at
), finished AS (
    DELETE FROM {s}.queue q USING upd WHERE q.delivery = upd.pk AND upd.status <> 'pending'
), retried AS (
    UPDATE {s}.queue q SET next_attempt_at = upd.next_attempt_at
    FROM upd WHERE q.delivery = upd.pk AND upd.status = 'pending'
)
SELECT target.subscription_id, upd.n IS NOT NULL, s.ordered, s.failing_since,
    s.consecutive_exhausted
FROM input
LEFT JOIN target ON target.n = input.n
LEFT JOIN upd ON upd.n = input.n
LEFT JOIN {s}.subscriptions s ON s.id = target.subscription_id
ORDER BY input.n";

/// The health (`failing_since`, `consecutive_exhausted`) of the subscriptions `$1` (ids),
/// their rows locked until commit, in id order (as every batch of attempts locks them).
pub(super) const LOCK_HEALTH: &str = "SELECT id, failing_since, consecutive_exhausted \
     FROM {s}.subscriptions WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// Writes the health of subscriptions: `$1`-`$3`, one element per subscription: id,
/// `failing_since` and `consecutive_exhausted`.
pub(super) const WRITE_HEALTH: &str = "UPDATE {s}.subscriptions s \
     SET failing_since = u.failing_since, consecutive_exhausted = u.consecutive_exhausted \
     FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) \
     AS u(id, failing_since, consecutive_exhausted) WHERE s.id = u.id";

/// Begins a transaction whose statements join a batch (`unnest`) to the deliveries by index
/// lookups, whatever the statistics say. A prepared statement keeps the plan made when the
/// tables were small (a hash join over a sequential scan of the deliveries) long after they
/// have grown, until autovacuum analyzes them; planning each execution anew costs more than
/// the statement. A batch is at most a few hundred rows: nested loops over it are cheap.
const INDEX_JOINS: &str = "BEGIN; SET LOCAL enable_seqscan TO off; \
     SET LOCAL enable_hashjoin TO off; SET LOCAL enable_mergejoin TO off";

/// One `record_attempt` waiting for its commit.
pub(super) struct RecordJob {
    lease: LeaseId,
    attempt: Attempt,
    next: Next,
    done: oneshot::Sender<Result<Recorded, StoreError>>,
}

impl Batched for RecordJob {
    fn key(&self) -> Uuid {
        self.attempt.delivery_id.as_uuid()
    }

    fn rows(&self) -> usize {
        1
    }
}

impl Core {
    /// Queues a `record_attempt` for the next group commit and waits for it.
    pub(super) async fn record_attempt(
        self: &Arc<Self>,
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
        if self.records.push(job) {
            tokio::spawn(self.clone().commit_records());
        }
        result.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Commits waiting `record_attempt`s, a batch per transaction, until none wait.
    async fn commit_records(self: Arc<Self>) {
        let mut guard = OnDrop(Some(|| self.records.abandon()));
        while let Some(jobs) = self.records.take() {
            let results = match self.record_batch(&jobs).await {
                Ok((results, wake)) => {
                    if wake {
                        self.wake_others();
                    }
                    // Each applied attempt finished or retried a queue row.
                    self.queue_changed(
                        results
                            .iter()
                            .filter(|r| matches!(r, Ok(r) if r.applied))
                            .count(),
                    );
                    results
                }
                // Nothing of the batch was written (a deadlock with another worker, say): each
                // again, alone, so that one call's failure is its own.
                Err(error) if jobs.len() > 1 => {
                    tracing::debug!(%error, jobs = jobs.len(), "webhook store: attempt batch failed; recording its attempts one by one");
                    let mut results = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        results.push(match self.record_batch(std::slice::from_ref(job)).await {
                            Ok((mut results, wake)) => {
                                if wake {
                                    self.wake_others();
                                }
                                results.pop().unwrap_or_else(|| Err(stopped()))
                            }
                            Err(error) => Err(error),
                        });
                    }
                    results
                }
                Err(error) => vec![Err(error)],
            };
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
        }
        guard.disarm();
    }

    /// Records a batch of attempts in one transaction: the attempts and the deliveries' next
    /// states in one statement; then the health of the subscriptions whose health changes, as
    /// if the attempts had been recorded one after the other.
    async fn record_batch(&self, jobs: &[RecordJob]) -> Result<RecordedBatch, StoreError> {
        let status = |next: Next| match next {
            Next::Delivered => DeliveryStatus::Delivered,
            Next::RetryAt(_) => DeliveryStatus::Pending,
            Next::Exhausted => DeliveryStatus::Exhausted,
            Next::Skipped => DeliveryStatus::Skipped,
        };
        let mut tx = self.pool.begin_with(INDEX_JOINS).await.map_err(db)?;
        let rows = query(&self.sql.record_attempts)
            .bind(
                jobs.iter()
                    .map(|j| j.attempt.delivery_id.as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(jobs.iter().map(|j| j.lease.as_uuid()).collect::<Vec<_>>())
            .bind(
                jobs.iter()
                    .map(|j| i64::from(j.attempt.number))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| millis(j.attempt.at))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| i64::try_from(j.attempt.latency.as_nanos()).unwrap_or(i64::MAX))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.attempt.status_code.map(i32::from))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.attempt.error.map(AttemptErrorKind::as_str))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.attempt.error_message.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.attempt.response_body.as_ref())
                    .collect::<Vec<&[u8]>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| status(j.next).as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| match j.next {
                        Next::RetryAt(at) => Some(millis(at)),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if rows.len() != jobs.len() {
            return Err(corrupt("attempt batch", "a row is missing"));
        }

        // Per call: the delivery's subscription (none: no such delivery), whether the lease
        // held, whether the subscription is ordered, and its health as this statement saw it.
        struct Seen {
            subscription: Option<Uuid>,
            applied: bool,
            ordered: bool,
            health: StoredHealth,
        }
        let mut seen = Vec::with_capacity(rows.len());
        for row in &rows {
            let exhausted: Option<i64> = row.col(4)?;
            seen.push(Seen {
                subscription: row.col(0)?,
                applied: row.col(1)?,
                ordered: row.col::<Option<bool>>(2)?.unwrap_or(false),
                health: exhausted
                    .map(|n| row.col(3).map(|since| (since, n)))
                    .transpose()?,
            });
        }

        // Health at the start of the batch, per subscription, and where the batch leaves it.
        let mut start: HashMap<Uuid, StoredHealth> = HashMap::new();
        for s in &seen {
            if let Some(sub) = s.subscription {
                start.entry(sub).or_insert(s.health);
            }
        }
        let fold = |start: &HashMap<Uuid, StoredHealth>| {
            let mut health = start.clone();
            let mut each = Vec::with_capacity(jobs.len());
            for (job, s) in jobs.iter().zip(&seen) {
                let now = s.subscription.and_then(|sub| health.get_mut(&sub));
                let after = match now {
                    Some(Some(h)) => {
                        if s.applied {
                            *h = health_after(*h, job.next, millis(job.attempt.at));
                        }
                        Some(*h)
                    }
                    _ => None,
                };
                each.push(after);
            }
            (health, each)
        };
        let (end, each) = fold(&start);
        let mut changed: Vec<Uuid> = end
            .iter()
            .filter(|(sub, h)| start.get(*sub) != Some(*h))
            .map(|(sub, _)| *sub)
            .collect();
        // Healthy subscriptions' rows are not written (nor locked) on every delivery.
        let (end, each) = if changed.is_empty() {
            (end, each)
        } else {
            // Another worker may have changed them since the statement's snapshot: their latest
            // values, locked until commit (in id order, as every batch locks them).
            changed.sort_unstable();
            let locked = query(&self.sql.lock_health)
                .bind(&changed)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for sub in &changed {
                start.insert(*sub, None);
            }
            for row in &locked {
                start.insert(row.col(0)?, Some((row.col(1)?, row.col(2)?)));
            }
            fold(&start)
        };
        let writes: Vec<(Uuid, Option<i64>, i64)> = changed
            .iter()
            .filter_map(|sub| match end.get(sub) {
                Some(Some(h)) if start.get(sub) != Some(&Some(*h)) => Some((*sub, h.0, h.1)),
                _ => None,
            })
            .collect();
        if !writes.is_empty() {
            query(&self.sql.write_health)
                .bind(writes.iter().map(|w| w.0).collect::<Vec<_>>())
                .bind(writes.iter().map(|w| w.1).collect::<Vec<_>>())
                .bind(writes.iter().map(|w| w.2).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;

        let mut wake = false;
        let mut results = Vec::with_capacity(jobs.len());
        for ((job, s), health) in jobs.iter().zip(&seen).zip(each) {
            if s.subscription.is_none() {
                results.push(Err(not_found(Entity::Delivery, job.attempt.delivery_id)));
                continue;
            }
            wake |= s.applied && (matches!(job.next, Next::RetryAt(_)) || s.ordered);
            results.push(decode_health(health).map(|health| Recorded {
                health,
                applied: s.applied,
            }));
        }
        Ok((results, wake))
    }
}

/// A subscription's health as stored (`failing_since` in unix milliseconds,
/// `consecutive_exhausted`), or `None` when the subscription is gone.
type StoredHealth = Option<(Option<i64>, i64)>;

/// Health after an attempt whose delivery goes on to `next`, as the store keeps it: a success
/// resets it, a failure starts the failing period, an exhaustion counts.
fn health_after(health: (Option<i64>, i64), next: Next, at: i64) -> (Option<i64>, i64) {
    let (failing_since, exhausted) = health;
    match next {
        Next::Delivered => (None, 0),
        Next::RetryAt(_) => (failing_since.or(Some(at)), exhausted),
        Next::Exhausted => (failing_since.or(Some(at)), exhausted.saturating_add(1)),
        Next::Skipped => health,
    }
}

fn decode_health(health: StoredHealth) -> Result<Health, StoreError> {
    Ok(match health {
        Some((failing_since, exhausted)) => Health {
            failing_since: failing_since.map(from_unix_millis),
            consecutive_exhausted: u32::try_from(exhausted).map_err(|e| corrupt("count", e))?,
        },
        None => Health::default(),
    })
}

/// What a batch of `record_attempt`s did, one entry per call, and whether other workers have
/// new work (a retry, or an ordered subscription's head moved on).
type RecordedBatch = (Vec<Result<Recorded, StoreError>>, bool);
