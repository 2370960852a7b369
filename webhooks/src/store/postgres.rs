//! [`PostgresStore`]: the shared store, in PostgreSQL, for any number of worker processes.
//!
//! Every table lives in one schema (`webhooks` unless told otherwise), created and migrated on
//! connect from `migrations/postgres/`, its version kept in `schema_version`. Queries are
//! checked at run time (no database is needed to build) and name their tables with the schema,
//! so they work on any connection whatever its `search_path`: `send_in_tx` runs them on the
//! application's own.
//!
//! Workers coordinate through the database alone: claims lock rows with `FOR UPDATE SKIP
//! LOCKED` and hand them out under leases; an ordered subscription is locked (an advisory
//! lock, for the claim's transaction) while its head is claimed. LISTEN/NOTIFY wakes idle
//! workers (see [`Store::changed`]).
//!
//! Within a process, concurrent `enqueue`s are committed together, one statement per batch
//! over `unnest` arrays, as are concurrent `record_attempt`s (group commit, `Core`): a busy
//! runtime pays a statement and a WAL flush per batch rather than per call. The other workers
//! are told of new work by one notification per batch, sent after the commit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow,
};
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::sql::{
    Columns, RowExt, SubscriptionRow, conflict, corrupt, count, db, decode_attempt, decode_claim,
    decode_delivery, decode_subscription, delivery_page, disabled_parts, json, millis, millis_ceil,
    not_found, or_status,
};
use super::{
    Attempt, AttemptErrorKind, Change, Claim, ClaimRequest, Delivery, DeliveryQuery,
    DeliveryStatus, Health, LeaseId, NewDelivery, Next, Page, Recorded, Store, StoreError,
};
use crate::subscription::Disabled;
use crate::time::from_unix_millis;
use crate::{DeliveryId, Message, MessageId, Subscription, SubscriptionId};

/// The schema, one migration per version: `MIGRATIONS[n]` takes the schema from version `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_initial.sql")];

/// The schema [`PostgresStore::connect`] uses.
const DEFAULT_SCHEMA: &str = "webhooks";

/// Begins a transaction whose statements join a batch (`unnest`) to the deliveries by index
/// lookups, whatever the statistics say. A prepared statement keeps the plan made when the
/// tables were small (a hash join over a sequential scan of the deliveries) long after they
/// have grown, until autovacuum analyzes them; planning each execution anew costs more than
/// the statement. A batch is at most a few hundred rows: nested loops over it are cheap.
const INDEX_JOINS: &str = "BEGIN; SET LOCAL enable_seqscan TO off; \
     SET LOCAL enable_hashjoin TO off; SET LOCAL enable_mergejoin TO off";

/// Messages deleted per statement by `purge`, so that retention never holds locks long.
const PURGE_CHUNK: i64 = 1000;

/// The longest wait between two attempts to restore the LISTEN connection.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(5);

/// A [`Store`] in PostgreSQL, shared by any number of worker processes: each runs a
/// `Webhooks` on its own `PostgresStore`, and together they deliver every message once per
/// subscription, ordered subscriptions in order.
///
/// - **Claims** take due deliveries with `FOR UPDATE SKIP LOCKED` under a lease
///   (`lease_until`): workers never wait for each other, and the deliveries of a worker that
///   died are claimable again once its leases lapse. An ordered subscription is locked while
///   its head is claimed, so two workers never both hold its deliveries. Its order is send
///   order: the messages' sequence numbers, taken as they are inserted. (A message sent in a
///   transaction that commits late goes after those delivered by then, before those waiting.)
///   A claim's commit does not wait for the disk (`synchronous_commit = off` for its
///   transaction): a lease is not worth a WAL flush on the way to every request. So if the
///   database server crashes (not a clean restart), the leases taken in the last moments
///   before the crash (a few hundred milliseconds) may be lost: those deliveries are claimable
///   again at once rather than when their lease would have lapsed, and may be sent twice, as
///   any delivery may be (at least once).
/// - **Group commit**: concurrent `enqueue`s share one statement and one commit, as do
///   concurrent `record_attempt`s; each call still succeeds or fails on its own.
/// - **Wake-ups** use LISTEN/NOTIFY: what one worker enqueues, requeues or retries, and every
///   change to subscriptions, wakes the others at once (see [`Store::changed`]).
/// - **Transactional outbox**: `Webhooks::send_in_tx` stores a message inside the
///   application's own transaction; it is delivered if and only if that transaction commits.
/// - **Healing**: connections come from a sqlx pool that checks each one before use, so a
///   database restart or a dropped connection costs the operations under way (they fail, and
///   the runtime retries them), never a restart of the application.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use webhooks::{Webhooks, store::PostgresStore};
///
/// // Tables in the schema `webhooks`, created (or migrated) if needed.
/// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
/// let hooks = Webhooks::builder().store(store).build().await?;
/// # hooks.shutdown().await;
/// # Ok(()) }
/// ```
pub struct PostgresStore {
    core: Arc<Core>,
    schema: String,
    /// The last subscription the previous claim served: the next one starts after it, so that
    /// every subscription gets its turn.
    rotation: Mutex<Option<Uuid>>,
    /// Whether an enabled ordered subscription may exist, so that claims lock ordered heads
    /// first (two statements in a transaction instead of one). Every claim tells.
    ordered: AtomicBool,
    signals: Arc<Signals>,
    listener: JoinHandle<()>,
}

/// What the store shares with the tasks that commit on behalf of its callers (group commits,
/// and the notifications that wake the other workers).
struct Core {
    pool: PgPool,
    sql: Sql,
    /// The NOTIFY channel of this schema.
    channel: String,
    /// Tags this store's own notifications, so that it is not woken by what it did itself.
    instance: String,
    /// `enqueue`s waiting for their group commit.
    enqueues: Queue<EnqueueJob>,
    /// `record_attempt`s waiting for their group commit.
    records: Queue<RecordJob>,
    /// Whether the other workers are owed a wake-up, and whether a task is sending it.
    wake: Mutex<WakeState>,
    /// Set when the store is dropped: a wake-up that keeps failing stops being retried.
    closed: AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("channel", &self.core.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.core.closed.store(true, Ordering::Release);
    }
}

/// Why the PostgreSQL store failed, beyond what the database itself reports.
#[derive(Debug, thiserror::Error)]
enum PostgresError {
    #[error(
        "the webhook store in schema {schema:?} has schema version {found}, but this version of \
         webhooks knows versions up to {known}: it was written by a newer webhooks; upgrade, or \
         use another schema"
    )]
    NewerSchema {
        schema: String,
        found: i64,
        known: usize,
    },
    #[error("invalid schema name {0:?}: it must be 1 to 63 bytes, without NUL")]
    InvalidSchema(String),
    #[error(
        "the webhook store's commit task stopped before committing (the runtime is shutting down)"
    )]
    Stopped,
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The NOTIFY channel of a schema: readable when it fits PostgreSQL's 63-byte limit, else a
/// hash that every process computes alike.
fn channel_name(schema: &str) -> String {
    let name = format!("webhooks:{schema}");
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: stable across processes, platforms and versions (unlike std's hasher).
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("webhooks:{hash:016x}")
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// The columns of a subscription, in the order [`decode_subscription`] reads them.
const SUBSCRIPTION_COLUMNS: &str = "id, url, events::text, labels::text, secrets::text, \
     headers::text, ordered, rate_limit, max_in_flight, retry::text, description, created_at, \
     disabled_at, disabled_reason, disabled_detail";

/// The columns of a delivery view (`d`: deliveries, `m`: its message), in the order
/// [`decode_delivery`] reads them.
const DELIVERY_COLUMNS: &str = "d.id, m.id, d.subscription_id, m.event_type, d.status, \
     d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at, d.lease IS NOT NULL";

/// Every statement, with the schema written in (`{s}` in the templates), built once per store.
/// Statement text is stable, so each connection prepares each statement once.
struct Sql {
    insert_subscription: Arc<str>,
    update_subscription: Arc<str>,
    disable_subscription: Arc<str>,
    delete_subscription: Arc<str>,
    subscription: Arc<str>,
    subscriptions: Arc<str>,
    enqueue: Arc<str>,
    enqueue_batch: Arc<str>,
    unknown_subscription: Arc<str>,
    lock_ordered: Arc<str>,
    claim: Arc<str>,
    record_attempts: Arc<str>,
    lock_health: Arc<str>,
    write_health: Arc<str>,
    wake: Arc<str>,
    next_due: Arc<str>,
    delivery: Arc<str>,
    message_deliveries: Arc<str>,
    attempts: Arc<str>,
    purge: Arc<str>,
    redeliver: Arc<str>,
    leased: Arc<str>,
    recover: Arc<str>,
    /// `SELECT ... FROM <deliveries d JOIN messages m>`: the start of the delivery log query.
    log: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let s = quote_ident(schema);
        let sql = |template: &str| -> Arc<str> {
            template
                .replace("{s}", &s)
                .replace("{subscription}", SUBSCRIPTION_COLUMNS)
                .replace("{delivery}", DELIVERY_COLUMNS)
                .into()
        };
        Sql {
            insert_subscription: sql(INSERT_SUBSCRIPTION),
            update_subscription: sql(UPDATE_SUBSCRIPTION),
            disable_subscription: sql(DISABLE_SUBSCRIPTION),
            delete_subscription: sql(DELETE_SUBSCRIPTION),
            subscription: sql("SELECT {subscription} FROM {s}.subscriptions WHERE id = $1"),
            subscriptions: sql("SELECT {subscription} FROM {s}.subscriptions ORDER BY id"),
            enqueue: sql(ENQUEUE),
            enqueue_batch: sql(ENQUEUE_BATCH),
            unknown_subscription: sql("SELECT u.id FROM unnest($1::uuid[]) AS u(id) \
                 WHERE NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.id) LIMIT 1"),
            lock_ordered: sql(LOCK_ORDERED),
            claim: sql(CLAIM),
            record_attempts: sql(RECORD_ATTEMPTS),
            lock_health: sql(
                "SELECT id, failing_since, consecutive_exhausted FROM {s}.subscriptions \
                 WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            ),
            write_health: sql(
                "UPDATE {s}.subscriptions s SET failing_since = u.failing_since, \
                 consecutive_exhausted = u.consecutive_exhausted \
                 FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) \
                 AS u(id, failing_since, consecutive_exhausted) WHERE s.id = u.id",
            ),
            wake: sql("SELECT pg_notify($1, $2)"),
            next_due: sql(NEXT_DUE),
            delivery: sql(
                "SELECT {delivery} FROM {s}.deliveries d JOIN {s}.messages m ON m.seq = d.message \
                 WHERE d.id = $1",
            ),
            message_deliveries: sql(
                "SELECT {delivery} FROM {s}.messages m JOIN {s}.deliveries d ON d.message = m.seq \
                 WHERE m.id = $1 ORDER BY d.pk",
            ),
            attempts: sql(
                "SELECT a.number, a.at, a.latency_ns, a.status_code, a.error, a.error_message, \
                 a.response_body FROM {s}.deliveries d JOIN {s}.attempts a ON a.delivery = d.pk \
                 WHERE d.id = $1 ORDER BY a.pk",
            ),
            purge: sql(PURGE),
            redeliver: sql(REDELIVER),
            leased: sql("SELECT lease IS NOT NULL FROM {s}.deliveries WHERE id = $1"),
            recover: sql(RECOVER),
            log: sql(
                "SELECT {delivery} FROM {s}.deliveries d JOIN {s}.messages m ON m.seq = d.message \
                 WHERE true",
            )
            .to_string(),
        }
    }
}

/// A query of one of the statements above.
fn query(sql: &Arc<str>) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    // The text is ours: templates above with a quoted schema name written in.
    sqlx::query(AssertSqlSafe(sql.clone()))
}

/// Inserts a subscription and tells the other workers. `$16`, `$17`: channel and payload.
const INSERT_SUBSCRIPTION: &str = "\
WITH ins AS (
    INSERT INTO {s}.subscriptions (id, url, events, labels, secrets, headers, ordered, rate_limit,
        max_in_flight, retry, description, created_at, disabled_at, disabled_reason,
        disabled_detail)
    VALUES ($1, $2, $3::json, $4::json, $5::json, $6::json, $7, $8, $9, $10::json, $11, $12, $13,
        $14, $15)
    RETURNING 1
)
SELECT pg_notify($16, $17) FROM ins";

/// Replaces a subscription; its health is reset when a disabled one is enabled (SET sees the row
/// before the update). `$16`: whether it is enabled; `$17`, `$18`: channel and payload.
const UPDATE_SUBSCRIPTION: &str = "\
WITH upd AS (
    UPDATE {s}.subscriptions SET url = $2, events = $3::json, labels = $4::json,
        secrets = $5::json, headers = $6::json, ordered = $7, rate_limit = $8,
        max_in_flight = $9, retry = $10::json, description = $11, created_at = $12,
        disabled_at = $13, disabled_reason = $14, disabled_detail = $15,
        failing_since = CASE WHEN disabled_at IS NOT NULL AND $16 THEN NULL ELSE failing_since END,
        consecutive_exhausted =
            CASE WHEN disabled_at IS NOT NULL AND $16 THEN 0 ELSE consecutive_exhausted END
    WHERE id = $1
    RETURNING 1
)
SELECT pg_notify($17, $18) FROM upd";

/// Disables a subscription and skips its waiting deliveries; those in flight are left to their
/// attempt (a claim holds their row lock, so the skip waits for it and then sees the lease).
const DISABLE_SUBSCRIPTION: &str = "\
WITH upd AS (
    UPDATE {s}.subscriptions SET disabled_at = $2, disabled_reason = $3, disabled_detail = $4
    WHERE id = $1
    RETURNING {subscription}
), skip AS (
    UPDATE {s}.deliveries d SET status = 'skipped', next_attempt_at = NULL
    WHERE d.subscription_id = $1 AND d.status = 'pending' AND d.lease IS NULL
      AND EXISTS (SELECT 1 FROM upd)
), wake AS (
    SELECT pg_notify($5, $6) FROM upd
)
SELECT upd.*, (SELECT count(*) FROM wake) FROM upd";

/// Deletes a subscription; its deliveries and their attempts go with it (ON DELETE CASCADE).
const DELETE_SUBSCRIPTION: &str = "\
WITH del AS (
    DELETE FROM {s}.subscriptions WHERE id = $1 RETURNING 1
), wake AS (
    SELECT pg_notify($2, $3) FROM del
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM wake)";

/// A message and its deliveries, in one statement (atomic on its own, one round trip, and
/// usable inside the application's transaction).
///
/// `$1`-`$5`: the message; `$6`, `$7`, `$8`: the deliveries' subscriptions, ids and skipped
/// flags, in order; `$9`: strict (an unknown subscription fails the whole enqueue) or not
/// (subscriptions deleted meanwhile are left out: the outbox must not fail the application's
/// transaction over a stale cache); `$10`, `$11`: channel and payload, notified when a delivery
/// is due. Returns the unknown subscription (strict), and the message's seq unless the id is
/// taken.
const ENQUEUE: &str = "\
WITH unknown AS (
    SELECT u.sub FROM unnest($6::uuid[]) AS u(sub)
    WHERE $9 AND NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.sub)
    LIMIT 1
), m AS (
    INSERT INTO {s}.messages (id, created_at, event_type, labels, body)
    SELECT $1, $2, $3, $4::json, $5 WHERE NOT EXISTS (SELECT 1 FROM unknown)
    ON CONFLICT (id) DO NOTHING
    RETURNING seq
), d AS (
    INSERT INTO {s}.deliveries (id, message, subscription_id, created_at, status, next_attempt_at)
    SELECT u.id, m.seq, u.sub, $2,
        CASE WHEN u.skipped THEN 'skipped' ELSE 'pending' END,
        CASE WHEN u.skipped THEN NULL ELSE $2 END
    FROM m, unnest($7::uuid[], $6::uuid[], $8::boolean[]) WITH ORDINALITY AS u(id, sub, skipped, n)
    WHERE EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.sub)
    ORDER BY u.n
    RETURNING status
)
SELECT (SELECT sub FROM unknown), (SELECT seq FROM m),
    (SELECT count(*) FROM (SELECT pg_notify($10, $11) FROM d WHERE status = 'pending' LIMIT 1) n)";

/// The messages of a batch of `enqueue`s and their deliveries, in one statement (atomic, one
/// round trip, one commit shared by every call of the batch).
///
/// `$1`-`$5`, one element per message: id, creation time, event type, labels and body; `$6`-`$9`,
/// one element per delivery: its message's position in `$1` (from 1), id, subscription and
/// skipped flag, in order. A message with a delivery to an unknown subscription is left out
/// whole, as is one whose id is taken; no two messages of a batch share an id. One row per
/// message, in order: the first unknown subscription, the message's seq if it went in, and
/// (on every row) how many pending deliveries went in.
const ENQUEUE_BATCH: &str = "\
WITH msg AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::bytea[])
        WITH ORDINALITY AS u(id, created_at, event_type, labels, body, job)
), dlv AS (
    SELECT * FROM unnest($6::bigint[], $7::uuid[], $8::uuid[], $9::boolean[])
        WITH ORDINALITY AS u(job, id, sub, skipped, n)
), unknown AS (
    SELECT DISTINCT ON (dlv.job) dlv.job, dlv.sub FROM dlv
    WHERE NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = dlv.sub)
    ORDER BY dlv.job, dlv.n
), m AS (
    INSERT INTO {s}.messages (id, created_at, event_type, labels, body)
    SELECT msg.id, msg.created_at, msg.event_type, msg.labels::json, msg.body FROM msg
    WHERE NOT EXISTS (SELECT 1 FROM unknown WHERE unknown.job = msg.job)
    ORDER BY msg.job
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, id, created_at
), d AS (
    INSERT INTO {s}.deliveries (id, message, subscription_id, created_at, status, next_attempt_at)
    SELECT dlv.id, m.seq, dlv.sub, m.created_at,
        CASE WHEN dlv.skipped THEN 'skipped' ELSE 'pending' END,
        CASE WHEN dlv.skipped THEN NULL ELSE m.created_at END
    FROM dlv JOIN msg ON msg.job = dlv.job JOIN m ON m.id = msg.id
    ORDER BY dlv.n
    RETURNING status
)
SELECT unknown.sub, m.seq, (SELECT count(*) FROM d WHERE d.status = 'pending')
FROM msg
LEFT JOIN unknown ON unknown.job = msg.job
LEFT JOIN m ON m.id = msg.id
ORDER BY msg.job";

/// The first step of a claim: locks the ordered subscriptions whose head may be claimable, in
/// turn order. While a claim holds a subscription's lock no other claim leases its deliveries;
/// the next statement (a fresh snapshot, taken after the lock) checks the head for good.
///
/// The lock is a transaction-scoped advisory lock on the subscription, tried without waiting
/// (one another claim holds is skipped). Not a lock on its row: recording an attempt updates
/// that row (health) while holding the delivery's, and a claim waiting for that delivery while
/// holding the row would deadlock with it.
///
/// `$1`: excluded; `$2`: now; `$3`: where the turn starts; `$4`: at most this many; `$5`: the
/// schema (so that stores in other schemas never contend).
const LOCK_ORDERED: &str = "\
SELECT c.id FROM (
    SELECT s.id FROM {s}.subscriptions s
    WHERE s.ordered AND s.disabled_at IS NULL AND s.id <> ALL($1)
      AND (SELECT d.next_attempt_at FROM {s}.deliveries d
           WHERE d.subscription_id = s.id AND d.status = 'pending'
           ORDER BY d.message LIMIT 1) <= $2
      AND NOT EXISTS (SELECT 1 FROM {s}.deliveries l
                      WHERE l.subscription_id = s.id AND l.lease IS NOT NULL
                        AND l.lease_until > $2)
    ORDER BY COALESCE(s.id <= $3, false), s.id
    LIMIT $4
) c
WHERE pg_try_advisory_xact_lock(hashtextextended('webhooks ordered ' || $5 || ' ' || c.id::text, 0))";

/// The second step of a claim: picks and leases, in one statement.
///
/// Subscriptions take turns (`turn`: after the one served last). An unordered subscription
/// gives up to `$5` of its due, unleased (or lapsed) deliveries, oldest due first, skipping
/// rows another claim has locked; an ordered one locked by the first step gives its head, if due
/// and if none of its deliveries holds a lease. `ready` stops after `$6` rows, so a claim reads
/// about as many rows as it returns, whatever the backlog. The UPDATE checks the state again:
/// a row changed meanwhile (an attempt recorded late) is left out.
///
/// Without ordered subscriptions locked (`$4` empty) it is a claim on its own, in its own
/// transaction: the first step is needed only when an ordered subscription exists. Each claimed
/// row ends with whether one does; when nothing is claimed a single row says it, its other
/// columns NULL. The commit does not wait for the disk (see [`PostgresStore`]).
///
/// `$1`: excluded; `$2`: now; `$3`: where the turn starts; `$4`: the locked ordered
/// subscriptions; `$5`: per subscription; `$6`: limit; `$7`: lease until.
const CLAIM: &str = "\
WITH subs AS (
    SELECT s.id, s.ordered, row_number() OVER (ORDER BY COALESCE(s.id <= $3, false), s.id) AS turn
    FROM {s}.subscriptions s
    WHERE s.disabled_at IS NULL AND s.id <> ALL($1) AND (NOT s.ordered OR s.id = ANY($4))
), heads AS (
    SELECT subs.turn, h.next_attempt_at, h.message, h.pk
    FROM subs CROSS JOIN LATERAL (
        SELECT d.pk, d.next_attempt_at, d.message FROM {s}.deliveries d
        WHERE d.subscription_id = subs.id AND d.status = 'pending'
        ORDER BY d.message LIMIT 1
    ) h
    WHERE subs.ordered AND h.next_attempt_at <= $2
      AND NOT EXISTS (SELECT 1 FROM {s}.deliveries l
                      WHERE l.subscription_id = subs.id AND l.lease IS NOT NULL
                        AND l.lease_until > $2)
), ready AS (
    SELECT subs.turn, r.next_attempt_at, r.message, r.pk
    FROM subs CROSS JOIN LATERAL (
        SELECT d.pk, d.next_attempt_at, d.message FROM {s}.deliveries d
        WHERE d.subscription_id = subs.id AND d.status = 'pending' AND d.next_attempt_at <= $2
          AND (d.lease IS NULL OR d.lease_until <= $2)
        ORDER BY d.next_attempt_at, d.message
        LIMIT $5
        FOR UPDATE SKIP LOCKED
    ) r
    WHERE NOT subs.ordered
    LIMIT $6
), picked AS (
    SELECT * FROM heads UNION ALL SELECT * FROM ready
    ORDER BY turn, next_attempt_at, message
    LIMIT $6
), claimed AS (
    UPDATE {s}.deliveries d SET lease = gen_random_uuid(), lease_until = $7
    FROM picked, {s}.messages m
    WHERE d.pk = picked.pk AND m.seq = d.message
      AND d.status = 'pending' AND (d.lease IS NULL OR d.lease_until <= $2)
    RETURNING {delivery}, d.lease, m.labels::text, m.body, picked.turn, d.message
)
SELECT claimed.*, t.ordered
FROM (
    SELECT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.ordered AND s.disabled_at IS NULL)
        AS ordered,
        set_config('synchronous_commit', 'off', true)
) t
LEFT JOIN claimed ON true";

/// A batch of attempts and what follows each, in one statement. A delivery changes only if
/// its lease still holds (checked by the UPDATE itself, on the row's latest version); the
/// attempt is kept either way. Health is left to the caller (`Core::record_batch`), which
/// writes it only when it changes, so that a busy healthy subscription's row is not rewritten
/// on every delivery.
///
/// `$1`-`$11`, one element per attempt: delivery, lease, number, at, latency, status code,
/// error, error message, response body, the next status and its due time. One row per attempt,
/// in order: the delivery's subscription (NULL: no such delivery), whether the lease held, and
/// the subscription's `ordered`, `failing_since` and `consecutive_exhausted`. A batch never
/// holds two attempts of one delivery.
const RECORD_ATTEMPTS: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[],
        $6::integer[], $7::text[], $8::text[], $9::bytea[], $10::text[], $11::bigint[])
        WITH ORDINALITY AS u(id, lease, number, at, latency_ns, status_code, error,
            error_message, response_body, status, due, n)
), target AS (
    SELECT input.n, d.pk, d.subscription_id
    FROM input JOIN {s}.deliveries d ON d.id = input.id
), attempt AS (
    INSERT INTO {s}.attempts (delivery, number, at, latency_ns, status_code, error,
        error_message, response_body)
    SELECT target.pk, input.number, input.at, input.latency_ns, input.status_code, input.error,
        input.error_message, input.response_body
    FROM input JOIN target ON target.n = input.n
    ORDER BY input.n
), upd AS (
    UPDATE {s}.deliveries d SET attempts = GREATEST(d.attempts, input.number),
        last_attempt_at = input.at, status = input.status, next_attempt_at = input.due,
        lease = NULL, lease_until = NULL
    FROM input
    WHERE d.id = input.id AND d.lease = input.lease
    RETURNING input.n
)
SELECT target.subscription_id, upd.n IS NOT NULL, s.ordered, s.failing_since,
    s.consecutive_exhausted
FROM input
LEFT JOIN target ON target.n = input.n
LEFT JOIN upd ON upd.n = input.n
LEFT JOIN {s}.subscriptions s ON s.id = target.subscription_id
ORDER BY input.n";

/// The earliest of: a lease that lapses; an ordered subscription's head when it is not in
/// flight; an unordered subscription's earliest unleased delivery. One index probe per
/// subscription, and a scan of the (few) leased rows.
const NEXT_DUE: &str = "\
SELECT LEAST(
    (SELECT MIN(lease_until) FROM {s}.deliveries WHERE lease IS NOT NULL),
    (SELECT MIN(x.due) FROM {s}.subscriptions s CROSS JOIN LATERAL (
        SELECT CASE WHEN s.ordered THEN
            (SELECT CASE WHEN d.lease IS NULL THEN d.next_attempt_at END
             FROM {s}.deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'
             ORDER BY d.message LIMIT 1)
        ELSE
            (SELECT d.next_attempt_at FROM {s}.deliveries d
             WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.lease IS NULL
             ORDER BY d.next_attempt_at LIMIT 1)
        END AS due
    ) x)
)";

/// Up to `$2` messages created before `$1` whose deliveries were all delivered, deleted with
/// their deliveries and attempts (ON DELETE CASCADE).
const PURGE: &str = "\
WITH doomed AS (
    SELECT m.seq FROM {s}.messages m
    WHERE m.created_at < $1 AND NOT EXISTS (
        SELECT 1 FROM {s}.deliveries d WHERE d.message = m.seq AND d.status <> 'delivered')
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {s}.messages m USING doomed WHERE m.seq = doomed.seq";

/// Makes a delivery that is not in flight due at `$2`. `$3`, `$4`: channel and payload.
const REDELIVER: &str = "\
WITH d AS (
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $2
    WHERE d.id = $1 AND d.lease IS NULL
    RETURNING d.*
), wake AS (
    SELECT pg_notify($3, $4) FROM d
)
SELECT {delivery}, (SELECT count(*) FROM wake) FROM d JOIN {s}.messages m ON m.seq = d.message";

/// Requeues a subscription's exhausted and skipped deliveries created in [`$2`, `$3`), due at
/// `$4`. Finished deliveries hold no lease. `$5`, `$6`: channel and payload.
const RECOVER: &str = "\
WITH known AS (
    SELECT 1 FROM {s}.subscriptions WHERE id = $1
), upd AS (
    UPDATE {s}.deliveries d SET status = 'pending', next_attempt_at = $4
    WHERE d.subscription_id = $1 AND d.status IN ('exhausted', 'skipped')
      AND d.created_at >= $2 AND d.created_at < $3
    RETURNING 1
), wake AS (
    SELECT pg_notify($5, $6) WHERE EXISTS (SELECT 1 FROM upd)
)
SELECT EXISTS (SELECT 1 FROM known), (SELECT count(*) FROM upd), (SELECT count(*) FROM wake)";

// ---------------------------------------------------------------------------------------------
// Connecting and migrating
// ---------------------------------------------------------------------------------------------

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host/database`, with any
    /// option sqlx's `PgConnectOptions` reads), and creates or migrates the store's tables in
    /// the schema `webhooks`.
    ///
    /// Fails if the database cannot be reached, or if the schema was written by a newer version
    /// of this library.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, DEFAULT_SCHEMA).await
    }

    /// [`connect`](Self::connect), with the tables in `schema` (created if missing): several
    /// independent stores can share one database.
    ///
    /// Gives up after 10 seconds if the server does not answer (use
    /// [`from_pool`](Self::from_pool) to choose the pool's settings). The pool has sqlx's
    /// default size, 10 connections, which is enough for any number of concurrent sends and
    /// deliveries: they are committed in batches (at most two of each kind at a time), so the
    /// store itself uses about seven connections at most. Give `from_pool` a bigger pool if the
    /// application shares it.
    pub async fn connect_with(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(db)?;
        let pool = PgPoolOptions::new()
            // An unreachable server must be an error, not a hang.
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db)?;
        Self::from_pool(pool, schema).await
    }

    /// A store on an existing pool (the application's own, say), with its tables in `schema`
    /// (created or migrated if needed). The store also opens one connection of its own, for
    /// LISTEN, with the pool's connect options.
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<PostgresStore, StoreError> {
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(StoreError::Backend(Box::new(PostgresError::InvalidSchema(
                schema.to_owned(),
            ))));
        }
        migrate(&pool, schema).await?;
        // Its own pool: a LISTEN connection is held for good, and must not take one of the
        // pool's. Two, so that a replacement never waits for a dead one to be given back.
        let listen_pool = PgPoolOptions::new()
            .max_connections(2)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        let channel = channel_name(schema);
        // Listening before `connect` returns: nothing another worker does afterwards is missed.
        let listener = listen(&listen_pool, &channel).await.map_err(db)?;
        let instance = Uuid::now_v7().simple().to_string();
        let signals = Arc::new(Signals::default());
        let task = tokio::spawn(run_listener(
            listener,
            listen_pool,
            channel.clone(),
            instance.clone(),
            signals.clone(),
        ));
        Ok(PostgresStore {
            core: Arc::new(Core {
                pool,
                sql: Sql::new(schema),
                channel,
                instance,
                enqueues: Queue::default(),
                records: Queue::default(),
                wake: Mutex::new(WakeState::default()),
                closed: AtomicBool::new(false),
            }),
            schema: schema.to_owned(),
            rotation: Mutex::new(None),
            ordered: AtomicBool::new(true),
            signals,
            listener: task,
        })
    }

    /// The pool the store uses. Share it with the application, say to begin the transactions
    /// that `Webhooks::send_in_tx` joins.
    pub fn pool(&self) -> &PgPool {
        &self.core.pool
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Stops listening and closes the pool, waiting for the operations under way. Dropping the
    /// store also stops listening; the pool closes when its last clone is dropped.
    pub async fn close(self) {
        self.listener.abort();
        self.core.closed.store(true, Ordering::Release);
        self.core.pool.close().await;
    }

    /// [`Store::enqueue`] on `conn`, inside whatever transaction it is in: the outbox of
    /// `Webhooks::send_in_tx`. Subscriptions deleted meanwhile are left out rather than failing
    /// the application's transaction, and every store is woken on commit, this one included
    /// (the runtime that sent cannot wake itself: the message is not visible before commit).
    ///
    /// The notification is sent inside the application's transaction (it must not go out if
    /// that transaction rolls back), so these commits take PostgreSQL's NOTIFY lock; `enqueue`
    /// does not.
    pub(crate) async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let id = message.id();
        let subs: Vec<Uuid> = deliveries
            .iter()
            .map(|d| d.subscription_id.as_uuid())
            .collect();
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id.as_uuid()).collect();
        let skipped: Vec<bool> = deliveries.iter().map(|d| d.skipped).collect();
        let result = query(&self.core.sql.enqueue)
            .bind(id.as_uuid())
            .bind(millis(message.timestamp()))
            .bind(message.event_type())
            .bind(json(message.labels())?)
            .bind(message.body().as_ref())
            .bind(subs)
            .bind(ids)
            .bind(skipped)
            // Not strict: see above.
            .bind(false)
            .bind(self.core.channel.as_str())
            .bind("work")
            .fetch_one(conn)
            .await;
        let row = match result {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let what = if e.constraint() == Some("messages_id_key") {
                    "message"
                } else {
                    "delivery"
                };
                return Err(conflict(what, id));
            }
            Err(e) => return Err(db(e)),
        };
        if row.col::<Option<i64>>(1)?.is_none() {
            return Err(conflict("message", id));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Group commits
// ---------------------------------------------------------------------------------------------

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
trait Batched {
    /// What two jobs of one batch must not share: a multi-row statement would apply both at
    /// once, where one after the other the second sees the first (a duplicate message id is a
    /// conflict; a second attempt on a delivery finds the lease released).
    fn key(&self) -> Uuid;

    /// The rows the job writes.
    fn rows(&self) -> usize;
}

/// Calls waiting for their group commit, and how many tasks are committing them.
struct Queue<J> {
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
    fn push(&self, job: J) -> bool {
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
    fn take(&self) -> Option<Vec<J>> {
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
    fn abandon(&self) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        state.jobs.clear();
    }
}

/// Runs its closure when dropped, unless disarmed: how a task dropped before it is done (the
/// runtime shut down) hands its role back.
struct OnDrop<F: FnMut()>(Option<F>);

impl<F: FnMut()> OnDrop<F> {
    fn disarm(&mut self) {
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
fn stopped() -> StoreError {
    StoreError::Backend(Box::new(PostgresError::Stopped))
}

/// One `enqueue` waiting for its commit.
struct EnqueueJob {
    message: Message,
    /// The message's labels, as stored.
    labels: String,
    deliveries: Vec<NewDelivery>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl Batched for EnqueueJob {
    fn key(&self) -> Uuid {
        self.message.id().as_uuid()
    }

    fn rows(&self) -> usize {
        1 + self.deliveries.len()
    }
}

/// One `record_attempt` waiting for its commit.
struct RecordJob {
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

impl Core {
    /// A payload for this store's own notifications: the others act on it, this one ignores it.
    fn own(&self, kind: &str) -> String {
        format!("{kind} {}", self.instance)
    }

    /// Queues an `enqueue` for the next group commit and waits for it.
    async fn enqueue(
        self: &Arc<Self>,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        let job = EnqueueJob {
            message: message.clone(),
            labels: json(message.labels())?,
            deliveries: deliveries.to_vec(),
            done,
        };
        if self.enqueues.push(job) {
            // In a task of its own, so that a caller that stops waiting cannot cut a commit
            // short; calls that arrive while a batch commits go in the next one.
            tokio::spawn(self.clone().commit_enqueues());
        }
        result.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Commits waiting `enqueue`s, a batch per statement, until none wait.
    async fn commit_enqueues(self: Arc<Self>) {
        let mut guard = OnDrop(Some(|| self.enqueues.abandon()));
        while let Some(jobs) = self.enqueues.take() {
            let results = match self.enqueue_batch(&jobs).await {
                Ok((results, due)) => {
                    if due {
                        self.wake_others();
                    }
                    results
                }
                // Nothing of the batch was written. One call's failure (a subscription deleted
                // meanwhile, a delivery id taken) must not fail the others: each again, alone.
                Err(error) if jobs.len() > 1 => {
                    tracing::debug!(%error, jobs = jobs.len(), "webhook store: enqueue batch failed; committing its messages one by one");
                    let mut results = Vec::with_capacity(jobs.len());
                    for job in &jobs {
                        results.push(self.enqueue_one(job).await);
                    }
                    results
                }
                Err(error) => vec![self.enqueue_error(&jobs[0], error).await],
            };
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
        }
        guard.disarm();
    }

    /// One `enqueue` alone, when its batch failed.
    async fn enqueue_one(self: &Arc<Self>, job: &EnqueueJob) -> Result<(), StoreError> {
        match self.enqueue_batch(std::slice::from_ref(job)).await {
            Ok((mut results, due)) => {
                if due {
                    self.wake_others();
                }
                results.pop().unwrap_or_else(|| Err(stopped()))
            }
            Err(error) => self.enqueue_error(job, error).await,
        }
    }

    /// What a failed enqueue of one message means for its caller.
    async fn enqueue_error(&self, job: &EnqueueJob, error: sqlx::Error) -> Result<(), StoreError> {
        let id = job.message.id();
        match error {
            sqlx::Error::Database(e) if e.is_unique_violation() => {
                let what = if e.constraint() == Some("messages_id_key") {
                    "message"
                } else {
                    "delivery"
                };
                Err(conflict(what, id))
            }
            // A subscription deleted while the message went in.
            sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                let subs: Vec<Uuid> = job
                    .deliveries
                    .iter()
                    .map(|d| d.subscription_id.as_uuid())
                    .collect();
                let unknown: Option<Uuid> = query(&self.sql.unknown_subscription)
                    .bind(subs)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| row.col(0))
                    .transpose()?;
                Err(match unknown {
                    Some(sub) => not_found("subscription", SubscriptionId::from_uuid(sub)),
                    None => db(sqlx::Error::Database(e)),
                })
            }
            e => Err(db(e)),
        }
    }

    /// Inserts the messages of a batch and their deliveries in one statement (one commit).
    /// A message whose id is taken, or with a delivery to an unknown subscription, is left out
    /// and reported as its call's error. Returns each call's result, and whether a delivery is
    /// due (the other workers are to be told).
    async fn enqueue_batch(
        &self,
        jobs: &[EnqueueJob],
    ) -> Result<(Vec<Result<(), StoreError>>, bool), sqlx::Error> {
        let rows: usize = jobs.iter().map(|j| j.deliveries.len()).sum();
        let mut job_of = Vec::with_capacity(rows);
        let mut ids = Vec::with_capacity(rows);
        let mut subs = Vec::with_capacity(rows);
        let mut skipped = Vec::with_capacity(rows);
        for (n, job) in (1_i64..).zip(jobs) {
            for d in &job.deliveries {
                job_of.push(n);
                ids.push(d.id.as_uuid());
                subs.push(d.subscription_id.as_uuid());
                skipped.push(d.skipped);
            }
        }
        let rows = query(&self.sql.enqueue_batch)
            .bind(
                jobs.iter()
                    .map(|j| j.message.id().as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| millis(j.message.timestamp()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.message.event_type())
                    .collect::<Vec<_>>(),
            )
            .bind(jobs.iter().map(|j| j.labels.as_str()).collect::<Vec<_>>())
            .bind(
                jobs.iter()
                    .map(|j| j.message.body().as_ref())
                    .collect::<Vec<&[u8]>>(),
            )
            .bind(job_of)
            .bind(ids)
            .bind(subs)
            .bind(skipped)
            .fetch_all(&self.pool)
            .await?;
        let mut due = false;
        let mut results = Vec::with_capacity(jobs.len());
        for (n, job) in jobs.iter().enumerate() {
            let Some(row) = rows.get(n) else {
                results.push(Err(corrupt("enqueue result", "a row is missing")));
                continue;
            };
            let read = || -> Result<(Option<Uuid>, Option<i64>, i64), StoreError> {
                Ok((row.col(0)?, row.col(1)?, row.col(2)?))
            };
            results.push(match read() {
                Ok((Some(sub), _, _)) => {
                    Err(not_found("subscription", SubscriptionId::from_uuid(sub)))
                }
                Ok((None, None, _)) => Err(conflict("message", job.message.id())),
                Ok((None, Some(_), pending)) => {
                    due |= pending > 0;
                    Ok(())
                }
                Err(error) => Err(error),
            });
        }
        Ok((results, due))
    }

    /// Queues a `record_attempt` for the next group commit and waits for it.
    async fn record_attempt(
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
            .bind(jobs.iter().map(|j| j.lease.0).collect::<Vec<_>>())
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
                results.push(Err(not_found("delivery", job.attempt.delivery_id)));
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

    /// Tells the other workers that there is new work, soon: one notification covers every
    /// commit made while the previous one was being sent.
    ///
    /// Outside the transactions that made the work: a transaction that notifies holds
    /// PostgreSQL's database-wide NOTIFY lock from its commit until its commit record is on
    /// disk, so commits that notify cannot share a WAL flush. This one writes nothing else, so
    /// its commit waits for no flush and holds the lock only briefly.
    fn wake_others(self: &Arc<Self>) {
        let start = {
            let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            wake.owed = true;
            !std::mem::replace(&mut wake.sending, true)
        };
        if start {
            tokio::spawn(self.clone().send_wakes());
        }
    }

    /// Sends wake-ups until none is owed. One that fails is retried (the other workers would
    /// otherwise wait for their next poll), until the store is dropped.
    async fn send_wakes(self: Arc<Self>) {
        let mut guard = OnDrop(Some(|| {
            self.wake.lock().unwrap_or_else(|p| p.into_inner()).sending = false;
        }));
        let mut backoff = Duration::from_millis(50);
        loop {
            {
                let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
                if !std::mem::take(&mut wake.owed) {
                    wake.sending = false;
                    guard.disarm();
                    return;
                }
            }
            let sent = query(&self.sql.wake)
                .bind(self.channel.as_str())
                .bind(self.own("work"))
                .execute(&self.pool)
                .await;
            match sent {
                Ok(_) => backoff = Duration::from_millis(50),
                // The guard gives up the role.
                Err(sqlx::Error::PoolClosed) => return,
                Err(_) if self.closed.load(Ordering::Acquire) => return,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "webhook store: cannot notify the other workers");
                    self.wake.lock().unwrap_or_else(|p| p.into_inner()).owed = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_LISTEN_BACKOFF);
                }
            }
        }
    }
}

/// Whether the other workers are owed a wake-up, and whether a task is sending it.
#[derive(Default)]
struct WakeState {
    owed: bool,
    sending: bool,
}

/// Creates the schema if missing and applies the migrations it lacks, in one transaction, under
/// an advisory lock: workers starting together migrate once.
async fn migrate(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    match migrate_in(&mut tx, schema).await {
        Ok(()) => tx.commit().await.map_err(db),
        Err(error) => {
            // Now rather than when the connection is next used: the pool may be dropped with
            // it (a failed connect), and the transaction holds the advisory lock.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn migrate_in(tx: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    let quoted = quote_ident(schema);
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('webhooks migrate ' || $1))")
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // A quoted identifier of our own making: nothing else goes into these statements.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted}; SET LOCAL search_path TO {quoted}"
    )))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass(format('%I.schema_version', $1::text))::text")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
    let found: i64 = match exists {
        None => 0,
        Some(_) => sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM {quoted}.schema_version"
        )))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?,
    };
    let applied = usize::try_from(found)
        .ok()
        .filter(|v| *v <= MIGRATIONS.len())
        .ok_or_else(|| {
            StoreError::Backend(Box::new(PostgresError::NewerSchema {
                schema: schema.to_owned(),
                found,
                known: MIGRATIONS.len(),
            }))
        })?;
    if applied == MIGRATIONS.len() {
        return Ok(());
    }
    for sql in &MIGRATIONS[applied..] {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(db)?;
    }
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DELETE FROM {quoted}.schema_version; \
         INSERT INTO {quoted}.schema_version (version) VALUES ({})",
        MIGRATIONS.len()
    )))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// LISTEN/NOTIFY
// ---------------------------------------------------------------------------------------------

/// What the listener heard and nobody has taken yet. Kept (not broadcast) so that a
/// notification arriving while the dispatcher is busy claiming wakes it on its next wait.
#[derive(Default)]
struct Signals {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    work: bool,
    subscriptions: bool,
}

impl Signals {
    fn raise(&self, work: bool, subscriptions: bool) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.work |= work;
            pending.subscriptions |= subscriptions;
        }
        self.notify.notify_waiters();
    }

    fn take(&self) -> Option<Change> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Subscriptions first: the dispatcher reloads them, then claims anyway.
        if std::mem::take(&mut pending.subscriptions) {
            Some(Change::Subscriptions)
        } else if std::mem::take(&mut pending.work) {
            Some(Change::Work)
        } else {
            None
        }
    }

    async fn wait(&self) -> Change {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so that a raise in between is not missed.
            notified.as_mut().enable();
            if let Some(change) = self.take() {
                return change;
            }
            notified.await;
        }
    }

    /// A payload is `<kind>` or `<kind> <instance>`.
    fn heard(&self, payload: &str, instance: &str) {
        let (kind, origin) = payload.split_once(' ').unwrap_or((payload, ""));
        if origin == instance {
            return;
        }
        match kind {
            "work" => self.raise(true, false),
            "subscriptions" => self.raise(false, true),
            // From a newer version: look at everything.
            _ => self.raise(true, true),
        }
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Hears notifications for as long as the store lives, and restores the connection when it is
/// lost (a database restart, a proxy's timeout). Whatever was notified meanwhile is lost, so
/// after a reconnection everyone is told to look at everything.
async fn run_listener(
    mut listener: PgListener,
    pool: PgPool,
    channel: String,
    instance: String,
    signals: Arc<Signals>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => signals.heard(notification.payload(), &instance),
            Ok(None) => {
                // sqlx reconnected (and listens again) by itself.
                tracing::warn!("webhook store: the LISTEN connection was lost and restored");
                signals.raise(true, true);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "webhook store: the LISTEN connection failed; reconnecting");
                // A fresh listener rather than the old one: after some errors sqlx keeps its
                // dead connection.
                drop(listener);
                let mut backoff = Duration::from_millis(100);
                listener = loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool, &channel).await {
                        Ok(listener) => break listener,
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(error) => {
                            tracing::warn!(%error, retry_in = ?backoff, "webhook store: cannot LISTEN");
                            backoff = (backoff * 2).min(MAX_LISTEN_BACKOFF);
                        }
                    }
                };
                tracing::info!("webhook store: listening again");
                signals.raise(true, true);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// PostgreSQL's side of the shared decoders: ids are `uuid`s, and columns are typed (so a value
/// that does not read is a database error, not a corrupt value).
impl Columns for PgRow {
    fn id(&self, index: usize) -> Result<Uuid, StoreError> {
        self.col(index)
    }

    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.col(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        self.col(index)
    }

    fn subscription_text(&self, _what: &'static str, index: usize) -> Result<String, StoreError> {
        self.col(index)
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.col(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.col(index)
    }

    fn status_code(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.col::<Option<i32>>(index)?.map(i64::from))
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        self.col(index)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.col(index)
    }
}

/// The claimed rows of [`CLAIM`], and whether an enabled ordered subscription exists.
fn split_claim(mut rows: Vec<PgRow>) -> Result<(Vec<PgRow>, bool), StoreError> {
    let ordered = match rows.first() {
        Some(row) => row.col::<bool>(15)?,
        None => return Err(corrupt("claim result", "no rows")),
    };
    // Nothing claimed: the one row is only the flag.
    if rows.len() == 1 && rows[0].col::<Option<Uuid>>(0)?.is_none() {
        rows.clear();
    }
    Ok((rows, ordered))
}

/// Binds the 15 subscription columns, in `SUBSCRIPTION_COLUMNS` order, as `$1`-`$15`.
fn bind_subscription(
    query: sqlx::query::Query<'static, Postgres, PgArguments>,
    s: &Subscription,
) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>, StoreError> {
    let row = SubscriptionRow::new(s)?;
    Ok(query
        .bind(row.id)
        .bind(row.url)
        .bind(row.events)
        .bind(row.labels)
        .bind(row.secrets)
        .bind(row.headers)
        .bind(row.ordered)
        .bind(row.rate_limit)
        .bind(row.max_in_flight)
        .bind(row.retry)
        .bind(row.description)
        .bind(row.created_at)
        .bind(row.disabled_at)
        .bind(row.disabled_reason)
        .bind(row.disabled_detail))
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

impl Store for PostgresStore {
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let query = bind_subscription(query(&self.core.sql.insert_subscription), subscription)?
            .bind(self.core.channel.clone())
            .bind(self.core.own("subscriptions"));
        match query.execute(&self.core.pool).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(conflict("subscription", subscription.id))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn update_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let updated = bind_subscription(query(&self.core.sql.update_subscription), subscription)?
            .bind(subscription.disabled.is_none())
            .bind(self.core.channel.clone())
            .bind(self.core.own("subscriptions"))
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?;
        match updated {
            Some(_) => Ok(()),
            None => Err(not_found("subscription", subscription.id)),
        }
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> Result<Subscription, StoreError> {
        let (at, reason, detail) = disabled_parts(Some(&disabled));
        let row = query(&self.core.sql.disable_subscription)
            .bind(id.as_uuid())
            .bind(at)
            .bind(reason)
            .bind(detail)
            .bind(self.core.channel.clone())
            .bind(self.core.own("subscriptions"))
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("subscription", id))?;
        decode_subscription(&row)
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        let deleted: i64 = query(&self.core.sql.delete_subscription)
            .bind(id.as_uuid())
            .bind(self.core.channel.clone())
            .bind(self.core.own("subscriptions"))
            .fetch_one(&self.core.pool)
            .await
            .map_err(db)?
            .col(0)?;
        Ok(deleted > 0)
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let row = query(&self.core.sql.subscription)
            .bind(id.as_uuid())
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode_subscription).transpose()
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        // UUID v7 ids sort by creation time: oldest first.
        let rows = query(&self.core.sql.subscriptions)
            .fetch_all(&self.core.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode_subscription).collect()
    }

    async fn enqueue(
        &self,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        self.core.enqueue(message, deliveries).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let now = millis(request.now);
        let lease_until = request
            .now
            .checked_add(request.lease)
            .unwrap_or_else(|| from_unix_millis(i64::MAX));
        let exclude: Vec<Uuid> = request.exclude.iter().map(|s| s.as_uuid()).collect();
        let after = *self.rotation.lock().unwrap_or_else(|p| p.into_inner());
        let per_subscription = count(request.per_subscription);
        let lease_until_ms = millis_ceil(lease_until);
        let claim = |locked: Vec<Uuid>, limit: usize| {
            query(&self.core.sql.claim)
                .bind(exclude.clone())
                .bind(now)
                .bind(after)
                .bind(locked)
                .bind(per_subscription)
                .bind(count(limit))
                .bind(lease_until_ms)
        };

        let mut rows = Vec::new();
        let mut left = request.limit;
        if !self.ordered.load(Ordering::Acquire) {
            // No ordered subscription to lock: one statement, one round trip.
            let (claimed, ordered) = split_claim(
                claim(Vec::new(), left)
                    .fetch_all(&self.core.pool)
                    .await
                    .map_err(db)?,
            )?;
            left -= claimed.len().min(left);
            rows = claimed;
            if ordered {
                // One was added meanwhile: from now on (and for the rest of this claim), lock
                // ordered heads first.
                self.ordered.store(true, Ordering::Release);
            } else {
                left = 0;
            }
        }
        if left > 0 {
            let mut tx = self.core.pool.begin().await.map_err(db)?;
            let locked: Vec<Uuid> = query(&self.core.sql.lock_ordered)
                .bind(exclude.clone())
                .bind(now)
                .bind(after)
                .bind(count(left))
                .bind(self.schema.clone())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
                .iter()
                .map(|row| row.col(0))
                .collect::<Result<_, _>>()?;
            let (claimed, ordered) =
                split_claim(claim(locked, left).fetch_all(&mut *tx).await.map_err(db)?)?;
            tx.commit().await.map_err(db)?;
            rows.extend(claimed);
            if !ordered {
                self.ordered.store(false, Ordering::Release);
            }
        }

        // (turn, due, send order): the order the claim picked them in.
        let mut claims = Vec::with_capacity(rows.len());
        for row in &rows {
            let lease = LeaseId(row.col(10)?);
            let claim = decode_claim(row, 11, lease, lease_until)?;
            let turn: i64 = row.col(13)?;
            let seq: i64 = row.col(14)?;
            claims.push(((turn, claim.delivery.next_attempt_at, seq), claim));
        }
        claims.sort_by_key(|(key, _)| *key);
        if let Some((_, last)) = claims.last() {
            *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(last.delivery.subscription_id.as_uuid());
        }
        Ok(claims.into_iter().map(|(_, claim)| claim).collect())
    }

    async fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> Result<Recorded, StoreError> {
        self.core.record_attempt(lease, attempt, next).await
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        let earliest: Option<i64> = query(&self.core.sql.next_due)
            .fetch_one(&self.core.pool)
            .await
            .map_err(db)?
            .col(0)?;
        Ok(earliest.map(|e| from_unix_millis(e).max(now)))
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let row = query(&self.core.sql.delivery)
            .bind(id.as_uuid())
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode_delivery).transpose()
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        let rows = query(&self.core.sql.message_deliveries)
            .bind(id.as_uuid())
            .fetch_all(&self.core.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let rows = query(&self.core.sql.attempts)
            .bind(id.as_uuid())
            .fetch_all(&self.core.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|row| decode_attempt(id, row)).collect()
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        let before = millis(before);
        let mut purged = 0;
        loop {
            let done = query(&self.core.sql.purge)
                .bind(before)
                .bind(PURGE_CHUNK)
                .execute(&self.core.pool)
                .await
                .map_err(db)?
                .rows_affected();
            purged += done;
            if done < PURGE_CHUNK.unsigned_abs() {
                return Ok(purged);
            }
        }
    }

    async fn query_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(self.core.sql.log.as_str());
        if let Some(cursor) = query.cursor {
            // Row values walk the (created_at, id) index backwards from the cursor.
            sql.push(" AND (d.created_at, d.id) < (")
                .push_bind(cursor.created_at_ms)
                .push(", ")
                .push_bind(cursor.id.as_uuid())
                .push(")");
        }
        if let Some(sub) = query.subscription {
            sql.push(" AND d.subscription_id = ")
                .push_bind(sub.as_uuid());
        }
        if !query.statuses.is_empty() {
            // As the view shows them: in flight and failed are pending rows.
            sql.push(" AND (false");
            for status in &query.statuses {
                sql.push(or_status(*status));
            }
            sql.push(")");
        }
        if let Some(event_type) = &query.event_type {
            sql.push(" AND m.event_type = ")
                .push_bind(event_type.clone());
        }
        if let Some((name, value)) = &query.label {
            sql.push(" AND (m.labels ->> ")
                .push_bind(name.clone())
                .push(") = ")
                .push_bind(value.clone());
        }
        if let Some(since) = query.since {
            sql.push(" AND d.created_at >= ")
                .push_bind(millis_ceil(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND d.created_at < ")
                .push_bind(millis_ceil(until));
        }
        let size = query.page_size();
        sql.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ")
            .push_bind(count(size));
        let rows = sql.build().fetch_all(&self.core.pool).await.map_err(db)?;
        delivery_page(&rows, size)
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        let row = query(&self.core.sql.redeliver)
            .bind(id.as_uuid())
            .bind(millis(now))
            .bind(self.core.channel.clone())
            .bind(self.core.own("work"))
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?;
        if let Some(row) = row {
            return decode_delivery(&row);
        }
        let leased: Option<bool> = query(&self.core.sql.leased)
            .bind(id.as_uuid())
            .fetch_optional(&self.core.pool)
            .await
            .map_err(db)?
            .map(|row| row.col(0))
            .transpose()?;
        Err(match leased {
            Some(_) => conflict("in-flight delivery", id),
            None => not_found("delivery", id),
        })
    }

    async fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let row = query(&self.core.sql.recover)
            .bind(subscription.as_uuid())
            .bind(millis_ceil(since))
            .bind(millis_ceil(until))
            .bind(millis(now))
            .bind(self.core.channel.clone())
            .bind(self.core.own("work"))
            .fetch_one(&self.core.pool)
            .await
            .map_err(db)?;
        if !row.col::<bool>(0)? {
            return Err(not_found("subscription", subscription));
        }
        let requeued: i64 = row.col(1)?;
        Ok(requeued.unsigned_abs())
    }

    /// Resolves when another worker (another `PostgresStore` on the same schema, in this
    /// process or another) enqueued, requeued or retried work, or changed subscriptions, or
    /// when `Webhooks::send_in_tx`'s transaction committed (here too). What this store did
    /// itself does not wake it.
    ///
    /// New messages and retries are notified right after their batch commits (one
    /// notification per batch, in a transaction of its own: see `Core::wake_others`); the
    /// other changes, and `send_in_tx`, notify inside the transaction that made them, so
    /// PostgreSQL delivers them on commit. Either way an idle worker wakes about as the
    /// sender's commit returns, rather than at its next poll (measured on one host: median
    /// 0.3 ms after the sender's `enqueue` returned, at most 4.3 ms, under load). One that
    /// arrives while nobody waits is kept for the next call. The LISTEN
    /// connection is restored if it drops (a database restart); whatever was notified
    /// meanwhile is lost, so the call after a reconnection resolves at once, and the runtime
    /// reloads subscriptions and looks for work.
    async fn changed(&self) -> Change {
        self.signals.wait().await
    }
}
