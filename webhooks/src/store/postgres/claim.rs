//! **Where a delivery is claimed**: a claim is one statement ([`CLAIM`]), whatever its size: a
//! call of the schema's function `claim_deliveries` (migration 0004, on the `queue` and
//! `leases` tables), whose first statement
//! try-locks each subscription with work (an advisory lock; one another claim holds is
//! skipped), and whose second, with a snapshot taken after the locks, counts leases, finds
//! ordered heads, gives rate slots and leases (`SKIP LOCKED`). And when the next delivery is
//! due ([`NEXT_DUE`]).

use std::time::SystemTime;

use uuid::Uuid;

use super::subscriptions::stored_version;
use super::{PostgresStore, query};
use crate::store::sql::{RowExt, corrupt, count, db, decode_claim, millis, millis_ceil};
use crate::store::{ClaimRequest, Claimed, LeaseId, ORDERED_WINDOW, QueueStats, StoreError};
use crate::time::{from_unix_micros, from_unix_millis, unix_micros};

/// A claim: one call of the function `claim_deliveries` (migration 0003 says what it does;
/// 0004 moved it onto `queue` and `leases`), whose two statements lock the subscriptions with work, then count, pick and lease
/// with a snapshot taken after the locks. One statement from here: one round trip, and its
/// own transaction, committed without waiting for the WAL flush (see [`PostgresStore`]).
///
/// `$1`: excluded; `$2`: now (ms); `$3`: where the turn starts; `$4`: the default
/// `max_in_flight`; `$5`: now (µs); `$6`: the latest send slot a claim may give (µs); `$7`:
/// the ordered window; `$8`: at most this many; `$9`: lease until (ms); `$10`: the schema (so
/// that stores in other schemas never contend for claim locks).
pub(super) const CLAIM: &str = "SELECT * FROM {s}.claim_deliveries(\
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The earliest of: a lease that lapses (which makes room then); the head of an ordered
/// subscription's key (among its `$2` oldest pending deliveries); an unordered subscription's
/// earliest queue row. A leased delivery's queue row is claimable when its lease lapses (see
/// migration 0004), so the queue rows cover those. `$1`: now.
pub(super) const NEXT_DUE: &str = "\
SELECT LEAST(
    (SELECT MIN(l.lease_until) FROM {s}.leases l WHERE l.lease_until > $1),
    (SELECT MIN(x.due) FROM {s}.subscriptions s CROSS JOIN LATERAL (
        SELECT CASE WHEN s.ordered THEN
            (SELECT MIN(h.next_attempt_at) FROM (
                SELECT DISTINCT ON (w.ordering_key) w.delivery, w.next_attempt_at
                FROM (
                    SELECT q.delivery, q.message, q.ordering_key, q.next_attempt_at
                    FROM {s}.queue q
                    WHERE q.subscription_id = s.id
                    ORDER BY q.message
                    LIMIT $2
                ) w
                ORDER BY w.ordering_key, w.message
             ) h
            )
        ELSE
            (SELECT q.next_attempt_at FROM {s}.queue q
             WHERE q.subscription_id = s.id
             ORDER BY q.next_attempt_at LIMIT 1)
        END AS due
    ) x)
)";

/// [`Store::claim`](crate::store::Store::claim): [`CLAIM`]; the next claim starts its turn
/// after the last subscription this one served.
pub(super) async fn claim(
    store: &PostgresStore,
    request: &ClaimRequest,
) -> Result<Claimed, StoreError> {
    let now = millis(request.now);
    let now_us = unix_micros(request.now);
    // As `Slots` computes it: no slot later than half a lease after now.
    let horizon_us =
        now_us.saturating_add(u64::try_from(request.lease.as_micros() / 2).unwrap_or(u64::MAX));
    let micros = |us: u64| i64::try_from(us).unwrap_or(i64::MAX);
    let lease_until = request
        .now
        .checked_add(request.lease)
        .unwrap_or_else(|| from_unix_millis(i64::MAX));
    let exclude: Vec<Uuid> = request.exclude.iter().map(|s| s.as_uuid()).collect();
    let after = *store.rotation.lock().unwrap_or_else(|p| p.into_inner());
    let per_subscription = count(request.per_subscription);

    let rows = query(&store.core.sql.claim)
        .bind(exclude)
        .bind(now)
        .bind(after)
        .bind(per_subscription)
        .bind(micros(now_us))
        .bind(micros(horizon_us))
        .bind(count(ORDERED_WINDOW))
        .bind(count(request.limit))
        .bind(millis_ceil(lease_until))
        .bind(store.schema.as_str())
        .fetch_all(&store.core.pool)
        .await
        .map_err(db)?;

    // Columns: the delivery (11), lease, labels, body, ordering key, subscription, turn,
    // place in its subscription's picks, send slot, version.
    let Some(first) = rows.first() else {
        return Err(corrupt("claim result", "no rows"));
    };
    let version = stored_version(first.col(19)?)?;
    let mut claims = Vec::with_capacity(rows.len());
    for row in &rows {
        // Nothing claimed: the one row holds only the version.
        if row.col::<Option<Uuid>>(0)?.is_none() {
            continue;
        }
        let lease = LeaseId::from_uuid(row.col(11)?);
        let not_before = row
            .col::<Option<i64>>(18)?
            .map(|us| from_unix_micros(us.unsigned_abs()));
        let claim = decode_claim(row, 12, lease, lease_until, not_before)?;
        let turn: i64 = row.col(16)?;
        let nth: i64 = row.col(17)?;
        claims.push(((turn, nth), claim));
    }
    // The order the claim picked them in: subscription by subscription, in turn.
    claims.sort_by_key(|(key, _)| *key);
    if let Some((_, last)) = claims.last() {
        *store.rotation.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(last.delivery.subscription_id.as_uuid());
    }
    Ok(Claimed::new(
        claims.into_iter().map(|(_, claim)| claim).collect(),
        version,
    ))
}

/// [`Store::queue_stats`](crate::store::Store::queue_stats): the unfinished deliveries, and the
/// earliest due of those not leased.
pub(super) const QUEUE_STATS: &str = "\
SELECT count(*), min(q.next_attempt_at) FILTER (WHERE l.delivery IS NULL)
FROM {s}.queue q LEFT JOIN {s}.leases l ON l.delivery = q.delivery";

/// [`Store::queue_stats`](crate::store::Store::queue_stats): [`QUEUE_STATS`].
pub(super) async fn queue_stats(store: &PostgresStore) -> Result<QueueStats, StoreError> {
    let row = query(&store.core.sql.queue_stats)
        .fetch_one(&store.core.pool)
        .await
        .map_err(db)?;
    let unfinished: i64 = row.col(0)?;
    let oldest: Option<i64> = row.col(1)?;
    Ok(QueueStats::new(
        u64::try_from(unfinished).unwrap_or(0),
        oldest.map(from_unix_millis),
    ))
}

/// [`Store::next_due`](crate::store::Store::next_due): [`NEXT_DUE`], never before `now`.
pub(super) async fn next_due(
    store: &PostgresStore,
    now: SystemTime,
) -> Result<Option<SystemTime>, StoreError> {
    let earliest: Option<i64> = query(&store.core.sql.next_due)
        .bind(millis(now))
        .bind(count(ORDERED_WINDOW))
        .fetch_one(&store.core.pool)
        .await
        .map_err(db)?
        .col(0)?;
    Ok(earliest.map(|e| from_unix_millis(e).max(now)))
}
