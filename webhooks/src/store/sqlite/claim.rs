//! Where a delivery is claimed: [`CLAIM`], one statement that leases due deliveries within each
//! subscription's limits (`max_in_flight`, ordering keys, rate limit), built from the macros
//! below; reading its rows into claims with their leases and send slots; releasing a failed
//! claim's leases; and `next_due`, when the next claim may find work. Claims run on the writer
//! task (`writer.rs`), alone or joined to a round's first call ([`CLAIM_AND_READ`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, Sqlite};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::batch::Rows;
use super::row::blob;
use super::writer::{Writer, round_read_sql};
use super::{Inner, SqliteError, SqliteStore};
use crate::SubscriptionId;
use crate::runtime::rate_limit::Slots;
use crate::store::sql::{Columns, corrupt, count, db, decode_claim, millis, millis_ceil};
use crate::store::{ClaimRequest, Claimed, LeaseId, ORDERED_WINDOW, QueueStats, StoreError};
use crate::time::{from_unix_micros, from_unix_millis, unix_micros};

/// One `claim` waiting for its turn.
pub(super) struct ClaimJob {
    pub(super) request: ClaimRequest,
    pub(super) done: oneshot::Sender<Result<Claimed, StoreError>>,
}

/// A claim, in one call: releases the leases that lapsed, then leases up to `limit` due
/// deliveries within each subscription's limits and returns them with their messages, then
/// moves the rate-limited subscriptions' next send slot on and reads the subscriptions' version.
///
/// Each subscription that is neither disabled nor excluded gets a *room* (`r`): its
/// `max_in_flight` (or `per`) less its leases, and for a rate-limited one at most the send slots
/// left before half a lease from now ([`Slots`], computed the same way). Subscriptions are then
/// taken in turn, starting after the one the previous claim ended with (two range scans of their
/// ids, so that a claim stops as soon as it has enough; see [`claim_arms`]); each gives at most
/// its room of:
///
/// - unordered: its oldest due unleased deliveries ([`unordered_candidates`]);
/// - ordered, with no ordering key among its unfinished deliveries (`r.keyed` false): its
///   oldest unfinished delivery, if it is due and none is leased ([`head_candidate`]);
/// - ordered, with keys: the heads of its ordering keys that are due and whose key has nothing
///   leased, among its [`ORDERED_WINDOW`] oldest unfinished deliveries ([`keyed_candidates`]).
///
/// Every delivery of the claim gets the same lease in the table; each [`LeaseId`] handed out
/// is that lease mixed with the delivery's `pk` (see [`delivery_lease`]), so they differ.
///
/// Leases do not survive a restart (`open` clears them), so this commit needs no `fsync`:
/// `synchronous = NORMAL` for this transaction only. In WAL mode NORMAL still syncs around
/// checkpoints, so what the durable commits before it wrote stays durable.
///
/// Parameters, in order: now (for the lapsed leases); now, per, after, lease, until, limit,
/// now (µs), half a lease (µs), [`ORDERED_WINDOW`], and the excluded subscriptions (a [`Rows`] of
/// ids); lease, now (µs) (for the send slots).
///
/// Parameters are only ever read through a `MATERIALIZED` CTE (`p`), here and in the rounds:
/// a bound parameter in a `WHERE` term of a statement on `deliveries` makes SQLite re-prepare
/// the statement whenever its value changes (to check it against the partial indexes'
/// conditions), which would mean every time.
///
/// Its rows: one per claimed delivery, of [`CLAIM_COLUMNS`] columns (what [`decode_claim`] reads,
/// then `pk`, `message`); one per rate-limited subscription that got some, tagged -1: its id,
/// `rate_limit` and next free slot after them; one tagged -2: the subscriptions' version.
macro_rules! claim_sql {
    () => {
        concat!(
            "\
PRAGMA synchronous = NORMAL;
BEGIN IMMEDIATE;
",
            release_lapsed!(),
            ";
WITH p AS MATERIALIZED (SELECT ? AS now, ? AS per, ? AS after, ? AS lease, ? AS until, ? AS lim,
  ? AS now_us, ? AS half_us, ? AS win, ? AS b, jsonb(?) AS j),
ex(id) AS MATERIALIZED (SELECT substr(p.b, r.value ->> 0, 16) FROM p, jsonb_each(p.j) AS r),
r AS MATERIALIZED (
  SELECT s.id, s.ordered, CASE WHEN s.ordered THEN EXISTS (",
            keyed!(),
            ") ELSE 0 END AS keyed,
    MIN(MAX(COALESCE(s.max_in_flight, p.per), 1) - (SELECT COUNT(*)
      FROM deliveries l INDEXED BY deliveries_leased_by_subscription
      WHERE l.subscription_id = s.id AND l.lease IS NOT NULL),
    CASE
      WHEN s.rate_limit IS NULL THEN p.lim
      WHEN MAX(s.next_slot_us, p.now_us) > p.now_us + p.half_us THEN 0
      ELSE (p.now_us + p.half_us - MAX(s.next_slot_us, p.now_us))
        / ((999999 + MAX(s.rate_limit, 1)) / MAX(s.rate_limit, 1)) + 1
    END) AS room
  FROM p, subscriptions s WHERE s.disabled_at IS NULL AND s.id NOT IN ex),
cap(n) AS MATERIALIZED (SELECT MIN(p.lim, COALESCE((SELECT MAX(room) FROM r), 0)) FROM p)
UPDATE OR ROLLBACK deliveries SET lease = p.lease, lease_until = p.until FROM p
WHERE deliveries.pk IN (",
            claim_arms!(">"),
            "
  UNION ALL",
            claim_arms!("<="),
            "
  LIMIT (SELECT lim FROM p))
RETURNING id, (SELECT m.id FROM messages m WHERE m.seq = deliveries.message), subscription_id,
  (SELECT m.event_type FROM messages m WHERE m.seq = deliveries.message), status, attempts,
  next_attempt_at, created_at, last_attempt_at, lease IS NOT NULL, requeued,
  (SELECT m.labels FROM messages m WHERE m.seq = deliveries.message),
  (SELECT m.body FROM messages m WHERE m.seq = deliveries.message), ordering_key, pk, message;
WITH p AS MATERIALIZED (SELECT ? AS lease, ? AS now_us)
UPDATE OR ROLLBACK subscriptions SET next_slot_us = MAX(next_slot_us, p.now_us)
  + (999999 + MAX(rate_limit, 1)) / MAX(rate_limit, 1) * (SELECT COUNT(*) FROM deliveries l
    WHERE l.subscription_id = subscriptions.id AND l.lease IS NOT NULL AND l.lease = p.lease)
FROM p WHERE rate_limit IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries l
  WHERE l.subscription_id = subscriptions.id AND l.lease IS NOT NULL AND l.lease = p.lease)
RETURNING -1, id, rate_limit, next_slot_us;
SELECT -2, version FROM subscriptions_version;
COMMIT;
PRAGMA synchronous = FULL"
        )
    };
}

/// The deliveries the subscriptions `s` whose id compares with `cmp` to `p.after` give a claim,
/// in the order of their ids (one range scan of the subscriptions' index; `CROSS JOIN` keeps
/// that the outer loop), one arm per kind of subscription.
macro_rules! claim_arms {
    ($cmp:literal) => {
        concat!(
            "
  SELECT d.pk FROM p CROSS JOIN subscriptions s CROSS JOIN r CROSS JOIN deliveries d
  WHERE s.id ",
            $cmp,
            " p.after AND r.id = s.id AND r.room > 0 AND NOT r.ordered AND d.pk IN (",
            unordered_candidates!(),
            ")
  UNION ALL
  SELECT d.pk FROM p CROSS JOIN subscriptions s CROSS JOIN r CROSS JOIN deliveries d
  WHERE s.id ",
            $cmp,
            " p.after AND r.id = s.id AND r.room > 0 AND r.ordered AND NOT r.keyed AND d.pk IN (",
            head_candidate!(),
            ")
  UNION ALL
  SELECT d.pk FROM p CROSS JOIN subscriptions s CROSS JOIN r CROSS JOIN deliveries d
  WHERE s.id ",
            $cmp,
            " p.after AND r.id = s.id AND r.room > 0 AND r.keyed AND d.pk IN (",
            keyed_candidates!(),
            ")"
        )
    };
}

/// What an unordered subscription (`s`, its room in `r`) gives a claim: its oldest due unleased
/// deliveries, at most its room. (`LIMIT` cannot depend on the subscription, so they are read
/// up to the largest room, `cap`, and numbered.)
macro_rules! unordered_candidates {
    () => {
        "
    SELECT c.pk FROM (
      SELECT x.pk, row_number() OVER (ORDER BY x.due, x.message, x.pk) AS n FROM (
        SELECT y.pk, y.next_attempt_at AS due, y.message FROM deliveries y
        WHERE y.subscription_id = s.id AND y.status = 'pending' AND y.lease IS NULL
          AND y.next_attempt_at <= p.now
        ORDER BY y.next_attempt_at, y.message, y.pk LIMIT (SELECT n FROM cap)) AS x) AS c
    WHERE c.n <= r.room"
    };
}

/// What an ordered subscription `s` whose unfinished deliveries have no ordering key (one
/// queue) gives a claim: the oldest, when it is due and none is leased. Index lookups only.
macro_rules! head_candidate {
    () => {
        concat!(
            "
    SELECT y.pk FROM deliveries y WHERE y.pk = (SELECT z.pk FROM deliveries z
        WHERE z.subscription_id = s.id AND z.status = 'pending' ORDER BY z.message, z.pk LIMIT 1)
      AND y.next_attempt_at <= p.now AND NOT EXISTS (",
            leased_unfinished!(),
            ")"
        )
    };
}

/// A query for the unfinished deliveries of subscription `s` that have an ordering key, through
/// their index (the planner would otherwise walk every unfinished delivery).
macro_rules! keyed {
    () => {
        "SELECT 1 FROM deliveries k INDEXED BY deliveries_keyed
      WHERE k.subscription_id = s.id AND k.status = 'pending' AND k.ordering_key IS NOT NULL"
    };
}

/// A query for the leased unfinished deliveries of subscription `s`, through the index of
/// leases (as [`keyed`]).
macro_rules! leased_unfinished {
    () => {
        "SELECT 1 FROM deliveries l INDEXED BY deliveries_leased_by_subscription
        WHERE l.subscription_id = s.id AND l.lease IS NOT NULL AND l.status = 'pending'"
    };
}

/// What an ordered subscription (`s`, its room in `r`) with ordering keys gives a claim: the
/// heads of [`ordered_heads`] that are due and whose key has nothing leased, oldest first, at
/// most its room.
macro_rules! keyed_candidates {
    () => {
        concat!(
            "
    SELECT h.pk FROM (
      SELECT w.pk, row_number() OVER (ORDER BY w.message, w.pk) AS n FROM (",
            ordered_heads!(),
            ") AS w
      WHERE w.nth = 1 AND NOT w.busy AND w.due <= p.now) AS h
    WHERE h.n <= r.room"
        )
    };
}

/// An ordered subscription `s`'s [`ORDERED_WINDOW`] (`p.win`) oldest unfinished deliveries,
/// each with `nth`, its rank within its ordering key (1: the key's head; deliveries without a
/// key share one queue), and `busy`, whether a delivery of its key is leased. Columns: `pk`,
/// `message`, `due`, `leased`, `nth`, `busy`.
macro_rules! ordered_heads {
    () => {
        "
        SELECT v.pk, v.message, v.due, v.leased,
          row_number() OVER (PARTITION BY v.k ORDER BY v.message, v.pk) AS nth,
          MAX(v.leased) OVER (PARTITION BY v.k) AS busy
        FROM (
          SELECT y.pk, y.message, y.next_attempt_at AS due, y.lease IS NOT NULL AS leased,
            y.ordering_key AS k
          FROM deliveries y WHERE y.subscription_id = s.id AND y.status = 'pending'
          ORDER BY y.message, y.pk LIMIT (SELECT win FROM p)) AS v"
    };
}

/// Releases the leases that lapsed at `now` (the parameter), whatever their delivery's status.
macro_rules! release_lapsed {
    () => {
        "WITH p AS MATERIALIZED (SELECT ? AS now)
UPDATE OR ROLLBACK deliveries SET lease = NULL, lease_until = NULL FROM p
WHERE lease IS NOT NULL AND lease_until <= p.now"
    };
}

/// Releases the leases that lapsed, whatever their delivery's status, as a claim does first:
/// for `redeliver`. Parameter: now (unix ms). See [`release_lapsed`].
pub(super) const RELEASE_LAPSED: &str = release_lapsed!();

/// A claim alone: leases due deliveries within each subscription's limits and returns them, in
/// one call. See [`claim_sql`] for its parameters and rows.
const CLAIM: &str = claim_sql!();

/// When the next claim may find work: the earliest of a lease that lapses, an ordered
/// subscription's earliest unleased head of a key, an unordered subscription's earliest unleased
/// delivery (unix ms; NULL: none). (A head waiting for a later delivery of its key leased before
/// the subscription was ordered is early: that lease's end is counted too.) Parameter:
/// [`ORDERED_WINDOW`].
const NEXT_DUE: &str = concat!(
    "WITH p AS MATERIALIZED (SELECT ? AS win) \
     SELECT MIN(due) FROM ( \
       SELECT MIN(lease_until) AS due FROM deliveries WHERE lease IS NOT NULL \
       UNION ALL \
       SELECT CASE \
       WHEN s.ordered AND EXISTS (",
    keyed!(),
    ") THEN (SELECT MIN(w.due) FROM (",
    ordered_heads!(),
    ") AS w WHERE w.nth = 1 AND NOT w.leased) \
       WHEN s.ordered THEN \
         (SELECT CASE WHEN y.lease IS NULL THEN y.next_attempt_at END \
          FROM deliveries y WHERE y.subscription_id = s.id AND y.status = 'pending' \
          ORDER BY y.message, y.pk LIMIT 1) \
       ELSE \
         (SELECT MIN(d.next_attempt_at) FROM deliveries d \
          WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.lease IS NULL) \
       END FROM p, subscriptions s)"
);

/// Releases the leases of a claim: parameter, the claim's lease (as in the table). `lease IS NOT
/// NULL`: through the index of leases.
const RELEASE: &str =
    "UPDATE deliveries SET lease = NULL, lease_until = NULL WHERE lease IS NOT NULL AND lease = ?";

/// How many columns a claimed delivery's row of [`claim_sql`] has: more than any row of
/// [`round_read_sql`], which tells them apart when the two run as one call ([`CLAIM_AND_READ`]),
/// with the claim's other rows' negative tags.
const CLAIM_COLUMNS: usize = 16;

/// Whether a row of [`CLAIM_AND_READ`] is the claim's.
pub(super) fn claim_row(row: &SqliteRow) -> bool {
    row.len() == CLAIM_COLUMNS || row.try_get::<i64, _>(0).is_ok_and(|tag| tag < 0)
}

/// A claim and then the first call of a round, in one call when both are waiting: one round
/// trip to SQLite's thread fewer on a busy writer. The claim commits first, on its own.
/// Parameters: the claim's (see [`claim_sql`]), then the round's (see [`round_read_sql`]); rows
/// told apart by [`claim_row`].
pub(super) const CLAIM_AND_READ: &str = concat!(claim_sql!(), ";\n", round_read_sql!());

/// The [`LeaseId`] handed out for the delivery `pk` of a claim whose lease is `lease`, and,
/// the mix being its own inverse, the claim's lease from a delivery's [`LeaseId`].
pub(super) fn delivery_lease(lease: Uuid, pk: i64) -> Uuid {
    Uuid::from_u128(lease.as_u128() ^ u128::from(pk.cast_unsigned()))
}

/// A claim whose call is under way: what reading its rows needs.
pub(super) struct Claiming {
    /// The lease in the table (see [`delivery_lease`]).
    pub(super) lease: Uuid,
    pub(super) lease_until: SystemTime,
    /// Where it started among subscriptions (see `Inner::rotation`).
    pub(super) after: Vec<u8>,
    /// The claim's time, in unix microseconds, and its lease: the rate limits' [`Slots`].
    pub(super) now_us: u64,
    pub(super) lease_for: Duration,
}

/// `Store::claim`: waits for the writer task, which runs it alone ([`CLAIM`]) or with a round's
/// read ([`CLAIM_AND_READ`]).
pub(super) async fn claim(
    store: &SqliteStore,
    request: &ClaimRequest,
) -> Result<Claimed, StoreError> {
    let (done, result) = oneshot::channel();
    let job = ClaimJob {
        request: request.clone(),
        done,
    };
    store.inner.submit(|queue| queue.claims.push(job));
    result
        .await
        .unwrap_or_else(|_| Err(StoreError::Backend(Box::new(SqliteError::WriterGone))))
}

/// `Store::queue_stats`: the unfinished deliveries, and the earliest due of those not leased.
const QUEUE_STATS: &str = "SELECT count(*), min(CASE WHEN lease IS NULL THEN next_attempt_at END) \
     FROM deliveries WHERE status = 'pending'";

/// `Store::queue_stats`, from a reader ([`QUEUE_STATS`]).
pub(super) async fn queue_stats(store: &SqliteStore) -> Result<QueueStats, StoreError> {
    let (unfinished, oldest): (i64, Option<i64>) = sqlx::query_as(QUEUE_STATS)
        .fetch_one(&store.inner.readers)
        .await
        .map_err(db)?;
    Ok(QueueStats::new(
        u64::try_from(unfinished).unwrap_or(0),
        oldest.map(from_unix_millis),
    ))
}

/// `Store::next_due`, from a reader ([`NEXT_DUE`]).
pub(super) async fn next_due(
    store: &SqliteStore,
    now: SystemTime,
) -> Result<Option<SystemTime>, StoreError> {
    let earliest: Option<i64> = sqlx::query_scalar(NEXT_DUE)
        .bind(count(ORDERED_WINDOW))
        .fetch_one(&store.inner.readers)
        .await
        .map_err(db)?;
    Ok(earliest.map(|e| from_unix_millis(e).max(now)))
}

impl Inner {
    /// One claim, alone: see [`claim_sql`].
    pub(super) async fn claim(
        &self,
        slot: &mut Option<Writer>,
        request: &ClaimRequest,
    ) -> Result<Claimed, StoreError> {
        let writer = self.connection(slot).await?;
        let (query, claiming) = self.claim_query(CLAIM, request);
        writer.dirty = true;
        let rows = query.fetch_all(&mut *writer.conn).await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                self.release(slot, claiming.lease).await;
                return Err(db(error));
            }
        };
        writer.dirty = false;
        self.claimed(&rows, &claiming)
    }

    /// `sql` (which starts with [`claim_sql`]) with the claim's parameters bound.
    pub(super) fn claim_query(
        &self,
        sql: &'static str,
        request: &ClaimRequest,
    ) -> (
        sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
        Claiming,
    ) {
        let now = millis(request.now);
        let until = request.now.checked_add(request.lease);
        let until_ms = until.map_or(i64::MAX, millis_ceil);
        let claiming = Claiming {
            lease: Uuid::now_v7(),
            lease_until: until.unwrap_or_else(|| from_unix_millis(i64::MAX)),
            after: self
                .rotation
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            now_us: unix_micros(request.now),
            lease_for: request.lease,
        };
        // As `Slots` computes them; far from overflowing SQLite's integers.
        let micros = |us: u64| i64::try_from(us).unwrap_or(i64::MAX).min(i64::MAX / 4);
        let now_us = micros(claiming.now_us);
        let half_us = micros(u64::try_from(request.lease.as_micros() / 2).unwrap_or(u64::MAX));
        let excluded = Rows::ids(request.exclude.iter().map(|s| s.as_uuid()));
        let query = sqlx::query(sql)
            .bind(now)
            .bind(now)
            .bind(count(request.per_subscription))
            .bind(claiming.after.clone())
            .bind(blob(claiming.lease))
            .bind(until_ms)
            .bind(count(request.limit))
            .bind(now_us)
            .bind(half_us)
            .bind(count(ORDERED_WINDOW));
        let query = excluded.bind(query).bind(blob(claiming.lease)).bind(now_us);
        (query, claiming)
    }

    /// The claims from a claim's rows (see [`claim_sql`]), oldest due first, each rate-limited
    /// subscription's with their send slots in that order; moves the rotation on.
    pub(super) fn claimed(
        &self,
        rows: &[SqliteRow],
        claiming: &Claiming,
    ) -> Result<Claimed, StoreError> {
        let after = &claiming.after;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut version = None;
        // Rate-limited subscriptions that got some: rate, next free slot after them.
        let mut rated: HashMap<SubscriptionId, (u32, u64)> = HashMap::new();
        let mut last: Option<Vec<u8>> = None;
        let mut last_wrapped: Option<Vec<u8>> = None;
        for row in rows {
            if row.len() != CLAIM_COLUMNS {
                if row.int(0)? == -2 {
                    version = Some(u64::try_from(row.int(1)?).map_err(|e| corrupt("version", e))?);
                } else {
                    let rate = u32::try_from(row.int(2)?).map_err(|e| corrupt("rate limit", e))?;
                    let next = u64::try_from(row.int(3)?).map_err(|e| corrupt("send slot", e))?;
                    rated.insert(SubscriptionId::from_uuid(row.id(1)?), (rate, next));
                }
                continue;
            }
            let pk: i64 = row.int(14)?;
            let seq: i64 = row.int(15)?;
            let lease = LeaseId::from_uuid(delivery_lease(claiming.lease, pk));
            let claim = decode_claim(row, 11, lease, claiming.lease_until, None)?;
            let sub = blob(claim.delivery.subscription_id.as_uuid());
            // Subscriptions were taken after `after` first, then from the first up to it: the
            // claim ended with the greatest of the second part if any, else of the first.
            let part = if !after.is_empty() && sub <= *after {
                &mut last_wrapped
            } else {
                &mut last
            };
            if part.as_ref().is_none_or(|l| *l < sub) {
                *part = Some(sub);
            }
            claimed.push((claim.delivery.next_attempt_at, seq, pk, claim));
        }
        if let Some(end) = last_wrapped.or(last) {
            *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) = end;
        }
        // Oldest due first, as each subscription's deliveries were picked.
        claimed.sort_by_key(|(due, seq, pk, _)| (*due, *seq, *pk));
        // A rate-limited subscription's `n` claims took the `n` slots before its next free one,
        // the i-th claim the i-th.
        let mut counts: HashMap<SubscriptionId, u64> = HashMap::new();
        for (.., claim) in &claimed {
            *counts.entry(claim.delivery.subscription_id).or_default() += 1;
        }
        let mut given: HashMap<SubscriptionId, (Slots, usize)> = rated
            .into_iter()
            .filter_map(|(sub, (rate, next))| {
                let interval = Slots::new(rate, 0, 0, claiming.lease_for).interval_us;
                let first = next.saturating_sub(interval.saturating_mul(*counts.get(&sub)?));
                let slots = Slots::new(rate, first, claiming.now_us, claiming.lease_for);
                Some((sub, (slots, 0)))
            })
            .collect();
        let claims = claimed
            .into_iter()
            .map(|(.., mut claim)| {
                if let Some((slots, i)) = given.get_mut(&claim.delivery.subscription_id) {
                    claim.not_before = Some(from_unix_micros(slots.slot(*i)));
                    *i += 1;
                }
                claim
            })
            .collect();
        let version = version.ok_or_else(|| corrupt("claim", "no subscriptions version"))?;
        Ok(Claimed::new(claims, version))
    }

    /// Releases the leases of a claim whose call failed, in case it failed after the claim
    /// committed: its caller got an error, so nobody would attempt them before they lapse.
    pub(super) async fn release(&self, slot: &mut Option<Writer>, lease: Uuid) {
        let released = async {
            let writer = self.connection(slot).await?;
            sqlx::query(RELEASE)
                .bind(blob(lease))
                .execute(&mut *writer.conn)
                .await
                .map_err(db)
        }
        .await;
        if let Err(error) = released {
            tracing::warn!(
                %error,
                "webhook store: cannot release the leases of a failed claim; they will lapse"
            );
        }
    }
}
