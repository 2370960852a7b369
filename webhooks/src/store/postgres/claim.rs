//! **Where a delivery is claimed**: a claim is two statements in one transaction, whatever its
//! size: the first ([`LOCK_CLAIMS`]) try-locks each subscription with work (an advisory lock;
//! one another claim holds is skipped), the second ([`CLAIM`]), with a snapshot taken after the
//! locks, counts leases, finds ordered heads, gives rate slots and leases (`SKIP LOCKED`). And
//! when the next delivery is due ([`NEXT_DUE`]).

use std::time::SystemTime;

use uuid::Uuid;

use super::subscriptions::stored_version;
use super::{PostgresStore, query};
use crate::store::sql::{RowExt, corrupt, count, db, decode_claim, millis, millis_ceil};
use crate::store::{ClaimRequest, Claimed, LeaseId, ORDERED_WINDOW, QueueStats, StoreError};
use crate::time::{from_unix_micros, from_unix_millis, unix_micros};

/// The first statement of a claim: locks the subscriptions that may give deliveries, in turn
/// order, and reads the subscriptions' version. While a claim holds a subscription's lock no
/// other claim leases its deliveries or gives its send slots; the next statement (a fresh
/// snapshot, taken after the lock, which sees every claim that released it) counts and leases
/// for good. What this one reads is a guess, made only to lock subscriptions that have work and
/// room (and not more than the claim may use).
///
/// The lock is a transaction-scoped advisory lock on the subscription, tried without waiting
/// (one another claim holds is skipped). Not a lock on its row: recording an attempt updates
/// that row (health) while holding the delivery's, and a claim waiting for that delivery while
/// holding the row would deadlock with it.
///
/// It also drops the lapsed leases left on finished deliveries (skipped while in flight, their
/// worker gone), skipping rows others hold: a lapsed lease is gone once a claim has passed it,
/// as in `MemoryStore`, so that such a delivery is not "in flight" for `recover` forever.
///
/// `$1`: excluded; `$2`: now (ms); `$3`: where the turn starts; `$4`: the default
/// `max_in_flight`; `$5`: the latest send slot a claim may give (µs); `$6`: the schema (so that
/// stores in other schemas never contend); `$7`: at most this many.
pub(super) const LOCK_CLAIMS: &str = "\
WITH swept AS (
    UPDATE {s}.deliveries d SET lease = NULL, lease_until = NULL
    WHERE d.pk IN (SELECT l.pk FROM {s}.deliveries l
                   WHERE l.lease IS NOT NULL AND l.status <> 'pending' AND l.lease_until <= $2
                   FOR UPDATE SKIP LOCKED)
)
SELECT (SELECT version FROM {s}.subscriptions_version), ARRAY(
    SELECT c.id FROM (
        SELECT s.id FROM {s}.subscriptions s
        LEFT JOIN {s}.subscription_flow f ON f.subscription_id = s.id
        WHERE s.disabled_at IS NULL AND s.id <> ALL($1)
          AND EXISTS (SELECT 1 FROM {s}.deliveries d
                      WHERE d.subscription_id = s.id AND d.status = 'pending'
                        AND d.next_attempt_at <= $2
                        AND (d.lease IS NULL OR d.lease_until <= $2))
          AND (SELECT count(*) FROM {s}.deliveries l
               WHERE l.subscription_id = s.id AND l.lease IS NOT NULL AND l.lease_until > $2)
              < GREATEST(COALESCE(s.max_in_flight, $4), 1)
          AND (s.rate_limit IS NULL OR COALESCE(f.next_slot_us, 0) <= $5)
        ORDER BY COALESCE(s.id <= $3, false), s.id
    ) c
    -- Evaluated row by row in turn order (a volatile condition is not pushed into the sorted
    -- subquery), until enough are locked.
    WHERE pg_try_advisory_xact_lock(
        hashtextextended('webhooks claim ' || $6 || ' ' || c.id::text, 0))
    LIMIT $7
)";

/// The second statement of a claim: for the subscriptions the first one locked, counts, picks
/// and leases, in one statement.
///
/// Per subscription (`subs`): its room is its `max_in_flight` (or `$4`) less the leases that
/// hold, any status (a disabled subscription's in-flight deliveries count until recorded); a
/// rate-limited one's is also capped by its send slots, as `Slots` computes them: `1/rate`
/// apart (µs, rounded up) from its next free slot or now, none past the horizon.
/// Subscriptions take turns (`turn`: after the one served last). An unordered subscription
/// gives its due, unleased (or lapsed) deliveries, oldest due first. An ordered one gives the
/// heads of its keys among its `$7` oldest pending deliveries (messages without a key: one
/// key), oldest first, each if due and not leased and if no delivery of its key holds a lease.
/// Either way the rows are locked skipping those another transaction holds (a disable, an
/// attempt being recorded), so a claim never waits for a delivery's lock; the UPDATE
/// checks the state again: a row changed meanwhile (an attempt recorded late) is left out. The
/// slots are given in order to what was leased, and the next free one written back.
///
/// Each claimed row ends with its send slot and the version; when nothing is claimed a single
/// row gives the version, its other columns NULL. The commit does not wait for the disk (see
/// [`PostgresStore`]).
///
/// `$1`: the locked subscriptions; `$2`: now (ms); `$3`: where the turn starts; `$4`: the
/// default `max_in_flight`; `$5`: now (µs); `$6`: the latest send slot (µs); `$7`: the ordered
/// window; `$8`: limit; `$9`: lease until (ms).
pub(super) const CLAIM: &str = "\
WITH subs AS MATERIALIZED (
    SELECT x.id, x.ordered, x.turn, x.interval_us, x.first_us,
        GREATEST(LEAST(x.room,
            CASE WHEN x.interval_us IS NULL THEN x.room
                 WHEN x.first_us > $6 THEN 0
                 ELSE ($6 - x.first_us) / x.interval_us + 1 END), 0) AS room
    FROM (
        SELECT s.id, s.ordered,
            row_number() OVER (ORDER BY COALESCE(s.id <= $3, false), s.id) AS turn,
            GREATEST(COALESCE(s.max_in_flight, $4), 1)
                - (SELECT count(*) FROM {s}.deliveries l
                   WHERE l.subscription_id = s.id AND l.lease IS NOT NULL
                     AND l.lease_until > $2) AS room,
            CASE WHEN s.rate_limit IS NOT NULL
                THEN (1000000 + GREATEST(s.rate_limit, 1) - 1) / GREATEST(s.rate_limit, 1)
            END AS interval_us,
            GREATEST(COALESCE(f.next_slot_us, 0), $5) AS first_us
        FROM {s}.subscriptions s
        LEFT JOIN {s}.subscription_flow f ON f.subscription_id = s.id
        WHERE s.id = ANY($1) AND s.disabled_at IS NULL
    ) x
), heads AS (
    SELECT subs.id AS sub, subs.turn, h.pk, subs.room,
        row_number() OVER (PARTITION BY subs.id ORDER BY h.message) AS nth
    FROM subs CROSS JOIN LATERAL (
        SELECT DISTINCT ON (w.ordering_key) w.*
        FROM (
            SELECT d.pk, d.message, d.ordering_key, d.next_attempt_at, d.lease, d.lease_until
            FROM {s}.deliveries d
            WHERE d.subscription_id = subs.id AND d.status = 'pending'
              AND subs.ordered AND subs.room > 0
            ORDER BY d.message
            LIMIT $7
        ) w
        ORDER BY w.ordering_key, w.message
    ) h
    WHERE h.next_attempt_at <= $2 AND (h.lease IS NULL OR h.lease_until <= $2)
      AND NOT EXISTS (SELECT 1 FROM {s}.deliveries l
                      WHERE l.subscription_id = subs.id AND l.lease IS NOT NULL
                        AND l.lease_until > $2
                        AND l.ordering_key IS NOT DISTINCT FROM h.ordering_key)
), ready AS (
    SELECT subs.id AS sub, subs.turn, r.pk,
        row_number() OVER (PARTITION BY subs.id ORDER BY r.next_attempt_at, r.message) AS nth
    FROM subs CROSS JOIN LATERAL (
        SELECT d.pk, d.next_attempt_at, d.message FROM {s}.deliveries d
        WHERE d.subscription_id = subs.id AND d.status = 'pending' AND NOT subs.ordered
          AND d.next_attempt_at <= $2 AND (d.lease IS NULL OR d.lease_until <= $2)
        ORDER BY d.next_attempt_at, d.message
        LIMIT subs.room
        FOR UPDATE SKIP LOCKED
    ) r
), head_rows AS (
    SELECT heads.sub, heads.turn, heads.pk, heads.nth
    FROM heads JOIN {s}.deliveries d ON d.pk = heads.pk
    WHERE heads.nth <= heads.room
    FOR UPDATE OF d SKIP LOCKED
), picked AS (
    SELECT sub, turn, pk, nth FROM head_rows
    UNION ALL
    SELECT sub, turn, pk, nth FROM ready
    ORDER BY turn, nth
    LIMIT $8
), claimed AS (
    UPDATE {s}.deliveries d SET lease = gen_random_uuid(), lease_until = $9
    FROM picked, {s}.messages m
    WHERE d.pk = picked.pk AND m.seq = d.message
      AND d.status = 'pending' AND (d.lease IS NULL OR d.lease_until <= $2)
    RETURNING {delivery}, d.lease, m.labels::text, m.body, m.ordering_key, picked.sub,
        picked.turn, picked.nth
), slotted AS (
    SELECT claimed.*, subs.first_us + subs.interval_us
        * (row_number() OVER (PARTITION BY claimed.sub ORDER BY claimed.nth) - 1) AS not_before
    FROM claimed JOIN subs ON subs.id = claimed.sub
), slots AS (
    UPDATE {s}.subscription_flow f SET next_slot_us = subs.first_us + subs.interval_us * g.given
    FROM (SELECT claimed.sub, count(*) AS given FROM claimed GROUP BY claimed.sub) g
    JOIN subs ON subs.id = g.sub
    WHERE f.subscription_id = g.sub AND subs.interval_us IS NOT NULL
)
SELECT slotted.*, t.version
FROM (
    SELECT (SELECT version FROM {s}.subscriptions_version) AS version,
        set_config('synchronous_commit', 'off', true)
) t
LEFT JOIN slotted ON true";

/// The earliest of: a lease that lapses (of a pending delivery, which is claimable then, or
/// one that still holds, which makes room then); the head of an ordered subscription's key
/// (among its `$2` oldest pending deliveries) when it is not in flight; an unordered
/// subscription's earliest unleased delivery. `$1`: now.
pub(super) const NEXT_DUE: &str = "\
SELECT LEAST(
    (SELECT MIN(lease_until) FROM {s}.deliveries
     WHERE lease IS NOT NULL AND (status = 'pending' OR lease_until > $1)),
    (SELECT MIN(x.due) FROM {s}.subscriptions s CROSS JOIN LATERAL (
        SELECT CASE WHEN s.ordered THEN
            (SELECT MIN(h.next_attempt_at) FROM (
                SELECT DISTINCT ON (w.ordering_key) w.next_attempt_at, w.lease
                FROM (
                    SELECT d.message, d.ordering_key, d.next_attempt_at, d.lease
                    FROM {s}.deliveries d
                    WHERE d.subscription_id = s.id AND d.status = 'pending'
                    ORDER BY d.message
                    LIMIT $2
                ) w
                ORDER BY w.ordering_key, w.message
             ) h
             WHERE h.lease IS NULL)
        ELSE
            (SELECT d.next_attempt_at FROM {s}.deliveries d
             WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.lease IS NULL
             ORDER BY d.next_attempt_at LIMIT 1)
        END AS due
    ) x)
)";

/// [`Store::claim`](crate::store::Store::claim): [`LOCK_CLAIMS`], then [`CLAIM`], in one
/// transaction; the next claim starts its turn after the last subscription this one served.
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

    let mut tx = store.core.pool.begin().await.map_err(db)?;
    let locked = query(&store.core.sql.lock_claims)
        .bind(exclude)
        .bind(now)
        .bind(after)
        .bind(per_subscription)
        .bind(micros(horizon_us))
        .bind(store.schema.as_str())
        .bind(count(request.limit))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let version = stored_version(locked.col(0)?)?;
    let locked: Vec<Uuid> = locked.col(1)?;
    if locked.is_empty() {
        tx.commit().await.map_err(db)?;
        return Ok(Claimed::new(Vec::new(), version));
    }
    let rows = query(&store.core.sql.claim)
        .bind(locked)
        .bind(now)
        .bind(after)
        .bind(per_subscription)
        .bind(micros(now_us))
        .bind(micros(horizon_us))
        .bind(count(ORDERED_WINDOW))
        .bind(count(request.limit))
        .bind(millis_ceil(lease_until))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;

    // Columns: the delivery (11), lease, labels, body, ordering key, subscription, turn,
    // place in its subscription's picks, send slot, version.
    let Some(first) = rows.first() else {
        return Err(corrupt("claim result", "no rows"));
    };
    let version = stored_version(first.col(19)?).unwrap_or(version);
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
SELECT count(*), min(CASE WHEN lease IS NULL THEN next_attempt_at END)
FROM {s}.deliveries WHERE status = 'pending'";

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
