//! Where a delivery is claimed: [`CLAIM`], one statement that leases due deliveries within each
//! subscription's limits (`max_in_flight`, ordering keys, rate limit), built from the macros
//! below, in a transaction with the statements around it; reading its rows into claims with
//! their leases and send slots; and `next_due`, when the next claim may find work. Claims run
//! on the writer thread (`writer.rs`), before the round of their turn.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::batch::id_list;
use super::connect::begin;
use super::row::{blob, db, execute, query_all, query_one};
use super::writer::{Job, Writer};
use super::{SqliteStore, writer_gone};
use crate::SubscriptionId;
use crate::runtime::rate_limit::Slots;
use crate::store::sql::{Columns, corrupt, count, decode_claim, millis, millis_ceil};
use crate::store::{Claim, ClaimRequest, Claimed, LeaseId, ORDERED_WINDOW, QueueStats, StoreError};
use crate::time::{from_unix_micros, from_unix_millis, unix_micros};

/// One `claim` waiting for its turn.
pub(super) struct ClaimJob {
    pub(super) request: ClaimRequest,
    pub(super) done: oneshot::Sender<Result<Claimed, StoreError>>,
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
        "WITH p AS MATERIALIZED (SELECT ?1 AS now)
UPDATE deliveries SET lease = NULL, lease_until = NULL FROM p
WHERE lease IS NOT NULL AND lease_until <= p.now"
    };
}

/// A claim's transaction, its statements in order: with `synchronous = NORMAL`
/// ([`SYNC_NORMAL`], set back after: [`SYNC_FULL`]), `BEGIN IMMEDIATE`, [`RELEASE_LAPSED`] (the
/// leases that lapsed), [`CLAIM`] (leases up to `limit` due deliveries within each
/// subscription's limits and returns them with their messages), [`SLOTS`] (moves the
/// rate-limited subscriptions' next send slot on), the subscriptions' version, `COMMIT`.
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
/// Parameters of [`CLAIM`], in order: now, per, after, lease, until, limit, now (µs), half a
/// lease (µs), [`ORDERED_WINDOW`], and the excluded subscriptions (two, see [`id_list`]).
///
/// Parameters are only ever read through a `MATERIALIZED` CTE (`p`): a bound parameter in a
/// `WHERE` term of a statement on `deliveries` may make SQLite re-prepare the statement whenever
/// its value changes (to check it against the partial indexes' conditions), which would mean
/// every time.
///
/// Its rows: one per claimed delivery, of 16 columns (what [`decode_claim`] reads, then `pk`,
/// `message`).
pub(super) const CLAIM: &str = concat!(
    "\
WITH p AS MATERIALIZED (SELECT ?1 AS now, ?2 AS per, ?3 AS after, ?4 AS lease, ?5 AS until,
  ?6 AS lim, ?7 AS now_us, ?8 AS half_us, ?9 AS win, ?10 AS b, jsonb(?11) AS j),
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
UPDATE deliveries SET lease = p.lease, lease_until = p.until FROM p
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
  (SELECT m.body FROM messages m WHERE m.seq = deliveries.message), ordering_key, pk, message"
);

/// Moves the next send slot of each rate-limited subscription that got deliveries in a claim
/// on by as many, and returns it: its id, `rate_limit` and next free slot after them.
/// Parameters: the claim's lease, now (µs).
pub(super) const SLOTS: &str = "\
WITH p AS MATERIALIZED (SELECT ?1 AS lease, ?2 AS now_us)
UPDATE subscriptions SET next_slot_us = MAX(next_slot_us, p.now_us)
  + (999999 + MAX(rate_limit, 1)) / MAX(rate_limit, 1) * (SELECT COUNT(*) FROM deliveries l
    WHERE l.subscription_id = subscriptions.id AND l.lease IS NOT NULL AND l.lease = p.lease)
FROM p WHERE rate_limit IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries l
  WHERE l.subscription_id = subscriptions.id AND l.lease IS NOT NULL AND l.lease = p.lease)
RETURNING id, rate_limit, next_slot_us";

/// Reads the subscriptions' version. No parameters.
const VERSION: &str = "SELECT version FROM subscriptions_version";

/// Before a claim: its commit needs no `fsync`.
const SYNC_NORMAL: &str = "PRAGMA synchronous = NORMAL";

/// After a claim: every other commit is synced.
pub(super) const SYNC_FULL: &str = "PRAGMA synchronous = FULL";

/// Releases the leases that lapsed, whatever their delivery's status: first in a claim, and in
/// `redeliver`. Parameter: now (unix ms). See [`release_lapsed`].
pub(super) const RELEASE_LAPSED: &str = release_lapsed!();

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
    /// Where it started among subscriptions (see [`Writer::rotation`]).
    pub(super) after: Vec<u8>,
    /// The claim's time, in unix microseconds, and its lease: the rate limits' [`Slots`].
    pub(super) now_us: u64,
    pub(super) lease_for: Duration,
}

impl Claiming {
    /// A claim for `request`, starting after `rotation`, with a new lease.
    fn new(request: &ClaimRequest, rotation: &[u8]) -> Self {
        Claiming {
            lease: Uuid::now_v7(),
            lease_until: request
                .now
                .checked_add(request.lease)
                .unwrap_or_else(|| from_unix_millis(i64::MAX)),
            after: rotation.to_vec(),
            now_us: unix_micros(request.now),
            lease_for: request.lease,
        }
    }
}

/// `Store::claim`: waits for the writer thread, which runs it ([`CLAIM`]).
pub(super) async fn claim(
    store: &SqliteStore,
    request: &ClaimRequest,
) -> Result<Claimed, StoreError> {
    let (done, result) = oneshot::channel();
    let job = ClaimJob {
        request: request.clone(),
        done,
    };
    store.inner.send(Job::Claim(job))?;
    result.await.unwrap_or_else(|_| Err(writer_gone()))
}

/// `Store::queue_stats`: the unfinished deliveries, and the earliest due of those not leased.
const QUEUE_STATS: &str = "SELECT count(*), min(CASE WHEN lease IS NULL THEN next_attempt_at END) \
     FROM deliveries WHERE status = 'pending'";

/// `Store::queue_stats`, from a reader ([`QUEUE_STATS`]).
pub(super) async fn queue_stats(store: &SqliteStore) -> Result<QueueStats, StoreError> {
    let (unfinished, oldest) = store
        .inner
        .read(|conn| {
            query_one(conn, QUEUE_STATS, [], |row| {
                Ok((row.int(0)?, row.opt_int(1)?))
            })
        })
        .await?;
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
    let earliest = store
        .inner
        .read(|conn| {
            query_one(conn, NEXT_DUE, [count(ORDERED_WINDOW)], |row| {
                row.opt_int(0)
            })
        })
        .await?;
    Ok(earliest.map(|e| from_unix_millis(e).max(now)))
}

/// A claimed delivery, as read from [`CLAIM`]'s row: when it was due, its message's `seq`, its
/// `pk`, the claim.
type ClaimedRow = (Option<SystemTime>, i64, i64, Claim);

impl Writer {
    /// One claim: see [`CLAIM`].
    pub(super) fn claim(&mut self, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let claiming = Claiming::new(request, &self.rotation);
        execute(&self.conn, SYNC_NORMAL, [])?;
        self.relaxed = true;
        let result = claim_in(&mut self.conn, request, &claiming);
        self.restore_sync();
        let (rows, rated, version) = result?;
        self.claimed(rows, rated, version, &claiming)
    }

    /// The claims from a claim's rows, oldest due first, each rate-limited subscription's with
    /// their send slots in that order (`rated`: each one's rate and next free slot after them,
    /// from [`SLOTS`]); moves the rotation on.
    fn claimed(
        &mut self,
        rows: Vec<ClaimedRow>,
        rated: HashMap<SubscriptionId, (u32, u64)>,
        version: u64,
        claiming: &Claiming,
    ) -> Result<Claimed, StoreError> {
        let after = &claiming.after;
        let mut last: Option<Vec<u8>> = None;
        let mut last_wrapped: Option<Vec<u8>> = None;
        for (.., claim) in &rows {
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
        }
        if let Some(end) = last_wrapped.or(last) {
            self.rotation = end;
        }
        let mut claimed = rows;
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
        Ok(Claimed::new(claims, version))
    }
}

/// A claim's transaction (see [`CLAIM`]): its rows, the rate-limited subscriptions that got
/// some (rate, next free slot after them), the subscriptions' version. Rolled back if anything
/// fails, so that no lease is left behind.
#[allow(clippy::type_complexity)]
fn claim_in(
    conn: &mut Connection,
    request: &ClaimRequest,
    claiming: &Claiming,
) -> Result<(Vec<ClaimedRow>, HashMap<SubscriptionId, (u32, u64)>, u64), StoreError> {
    let now = millis(request.now);
    let until_ms = request
        .now
        .checked_add(request.lease)
        .map_or(i64::MAX, millis_ceil);
    // As `Slots` computes them; far from overflowing SQLite's integers.
    let micros = |us: u64| i64::try_from(us).unwrap_or(i64::MAX).min(i64::MAX / 4);
    let now_us = micros(claiming.now_us);
    let half_us = micros(u64::try_from(request.lease.as_micros() / 2).unwrap_or(u64::MAX));
    let (excluded, excluded_json) = id_list(request.exclude.iter().map(|s| s.as_uuid()));
    let lease = blob(claiming.lease);
    let tx = begin(conn)?;
    execute(&tx, RELEASE_LAPSED, [now])?;
    let rows = query_all(
        &tx,
        CLAIM,
        rusqlite::params![
            now,
            count(request.per_subscription),
            claiming.after,
            lease,
            until_ms,
            count(request.limit),
            now_us,
            half_us,
            count(ORDERED_WINDOW),
            excluded,
            excluded_json,
        ],
        |row| {
            let pk = row.int(14)?;
            let seq = row.int(15)?;
            let lease = LeaseId::from_uuid(delivery_lease(claiming.lease, pk));
            let claim = decode_claim(row, 11, lease, claiming.lease_until, None)?;
            Ok((claim.delivery.next_attempt_at, seq, pk, claim))
        },
    )?;
    let rated = query_all(&tx, SLOTS, rusqlite::params![lease, now_us], |row| {
        let rate = u32::try_from(row.int(1)?).map_err(|e| corrupt("rate limit", e))?;
        let next = u64::try_from(row.int(2)?).map_err(|e| corrupt("send slot", e))?;
        Ok((SubscriptionId::from_uuid(row.id(0)?), (rate, next)))
    })?;
    let version = query_one(&tx, VERSION, [], |row| {
        u64::try_from(row.int(0)?).map_err(|e| corrupt("version", e))
    })?;
    tx.commit().map_err(db)?;
    Ok((rows, rated.into_iter().collect(), version))
}
