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

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow,
};
use sqlx::{AssertSqlSafe, Executor, Postgres, QueryBuilder};
use tokio::sync::Notify;
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
    pool: PgPool,
    schema: String,
    sql: Sql,
    /// The NOTIFY channel of this schema.
    channel: String,
    /// Tags this store's own notifications, so that it is not woken by what it did itself.
    instance: String,
    /// The last subscription the previous claim served: the next one starts after it, so that
    /// every subscription gets its turn.
    rotation: Mutex<Option<Uuid>>,
    signals: Arc<Signals>,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
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
    unknown_subscription: Arc<str>,
    lock_ordered: Arc<str>,
    claim: Arc<str>,
    record_attempt: Arc<str>,
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
            unknown_subscription: sql("SELECT u.id FROM unnest($1::uuid[]) AS u(id) \
                 WHERE NOT EXISTS (SELECT 1 FROM {s}.subscriptions s WHERE s.id = u.id) LIMIT 1"),
            lock_ordered: sql(LOCK_ORDERED),
            claim: sql(CLAIM),
            record_attempt: sql(RECORD_ATTEMPT),
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
)
UPDATE {s}.deliveries d SET lease = gen_random_uuid(), lease_until = $7
FROM picked, {s}.messages m
WHERE d.pk = picked.pk AND m.seq = d.message
  AND d.status = 'pending' AND (d.lease IS NULL OR d.lease_until <= $2)
RETURNING {delivery}, d.lease, m.labels::text, m.body, picked.turn, d.message";

/// An attempt and what follows, in one statement. The delivery changes only if the lease still
/// holds (checked by the UPDATE itself, on the row's latest version); the attempt is kept
/// either way. Health is written only when it changes, so that a busy healthy subscription's
/// row is not rewritten on every delivery.
///
/// `$1`: delivery; `$2`: lease; `$3`-`$9`: the attempt; `$10`, `$11`: the next status and due
/// time; `$12`: `delivered`, `retry`, `exhausted` or `skipped`; `$13`, `$14`: channel and
/// payload, notified on a retry or when an ordered subscription's head moves on.
const RECORD_ATTEMPT: &str = "\
WITH target AS (
    SELECT d.pk, d.subscription_id FROM {s}.deliveries d WHERE d.id = $1
), attempt AS (
    INSERT INTO {s}.attempts (delivery, number, at, latency_ns, status_code, error,
        error_message, response_body)
    SELECT target.pk, $3, $4, $5, $6, $7, $8, $9 FROM target
), upd AS (
    UPDATE {s}.deliveries d SET attempts = GREATEST(d.attempts, $3), last_attempt_at = $4,
        status = $10, next_attempt_at = $11, lease = NULL, lease_until = NULL
    WHERE d.id = $1 AND d.lease = $2
    RETURNING d.subscription_id
), health AS (
    UPDATE {s}.subscriptions s SET
        failing_since = CASE WHEN $12 = 'delivered' THEN NULL
                             ELSE COALESCE(s.failing_since, $4) END,
        consecutive_exhausted = CASE $12 WHEN 'delivered' THEN 0
                                         WHEN 'exhausted' THEN s.consecutive_exhausted + 1
                                         ELSE s.consecutive_exhausted END
    FROM upd
    WHERE s.id = upd.subscription_id
      AND CASE $12 WHEN 'delivered' THEN s.failing_since IS NOT NULL
                                         OR s.consecutive_exhausted <> 0
                   WHEN 'retry' THEN s.failing_since IS NULL
                   WHEN 'exhausted' THEN true
                   ELSE false END
    RETURNING s.failing_since, s.consecutive_exhausted
), wake AS (
    SELECT pg_notify($13, $14) FROM upd JOIN {s}.subscriptions s ON s.id = upd.subscription_id
    WHERE $12 = 'retry' OR s.ordered
)
SELECT EXISTS (SELECT 1 FROM upd), EXISTS (SELECT 1 FROM health),
    (SELECT failing_since FROM health), (SELECT consecutive_exhausted FROM health),
    s.failing_since, s.consecutive_exhausted, (SELECT count(*) FROM wake)
FROM target LEFT JOIN {s}.subscriptions s ON s.id = target.subscription_id";

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
    /// [`from_pool`](Self::from_pool) to choose the pool's settings).
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
            pool,
            schema: schema.to_owned(),
            sql: Sql::new(schema),
            channel,
            instance,
            rotation: Mutex::new(None),
            signals,
            listener: task,
        })
    }

    /// The pool the store uses. Share it with the application, say to begin the transactions
    /// that `Webhooks::send_in_tx` joins.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Stops listening and closes the pool, waiting for the operations under way. Dropping the
    /// store also stops listening; the pool closes when its last clone is dropped.
    pub async fn close(self) {
        self.listener.abort();
        self.pool.close().await;
    }

    /// A payload for this store's own notifications: the others act on it, this one ignores it.
    fn own(&self, kind: &str) -> String {
        format!("{kind} {}", self.instance)
    }

    /// [`Store::enqueue`] on `conn`, inside whatever transaction it is in: the outbox of
    /// `Webhooks::send_in_tx`. Subscriptions deleted meanwhile are left out rather than failing
    /// the application's transaction, and every store is woken on commit, this one included
    /// (the runtime that sent cannot wake itself: the message is not visible before commit).
    pub(crate) async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        self.insert_message(conn, message, deliveries, false, "work".to_owned())
            .await
    }

    async fn insert_message<'c, E>(
        &self,
        executor: E,
        message: &Message,
        deliveries: &[NewDelivery],
        strict: bool,
        payload: String,
    ) -> Result<(), StoreError>
    where
        E: Executor<'c, Database = Postgres>,
    {
        let id = message.id();
        let subs: Vec<Uuid> = deliveries
            .iter()
            .map(|d| d.subscription_id.as_uuid())
            .collect();
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id.as_uuid()).collect();
        let skipped: Vec<bool> = deliveries.iter().map(|d| d.skipped).collect();
        let result = query(&self.sql.enqueue)
            .bind(id.as_uuid())
            .bind(millis(message.timestamp()))
            .bind(message.event_type().to_owned())
            .bind(json(message.labels())?)
            .bind(message.body().to_vec())
            .bind(subs.clone())
            .bind(ids)
            .bind(skipped)
            .bind(strict)
            .bind(self.channel.clone())
            .bind(payload)
            .fetch_one(executor)
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
            // A subscription deleted while the message went in.
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() && strict => {
                let unknown: Option<Uuid> = query(&self.sql.unknown_subscription)
                    .bind(subs)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| row.col(0))
                    .transpose()?;
                return Err(match unknown {
                    Some(sub) => not_found("subscription", SubscriptionId::from_uuid(sub)),
                    None => db(sqlx::Error::Database(e)),
                });
            }
            Err(e) => return Err(db(e)),
        };
        if let Some(sub) = row.col::<Option<Uuid>>(0)? {
            return Err(not_found("subscription", SubscriptionId::from_uuid(sub)));
        }
        if row.col::<Option<i64>>(1)?.is_none() {
            return Err(conflict("message", id));
        }
        Ok(())
    }
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
        let query = bind_subscription(query(&self.sql.insert_subscription), subscription)?
            .bind(self.channel.clone())
            .bind(self.own("subscriptions"));
        match query.execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(conflict("subscription", subscription.id))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn update_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let updated = bind_subscription(query(&self.sql.update_subscription), subscription)?
            .bind(subscription.disabled.is_none())
            .bind(self.channel.clone())
            .bind(self.own("subscriptions"))
            .fetch_optional(&self.pool)
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
        let row = query(&self.sql.disable_subscription)
            .bind(id.as_uuid())
            .bind(at)
            .bind(reason)
            .bind(detail)
            .bind(self.channel.clone())
            .bind(self.own("subscriptions"))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("subscription", id))?;
        decode_subscription(&row)
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        let deleted: i64 = query(&self.sql.delete_subscription)
            .bind(id.as_uuid())
            .bind(self.channel.clone())
            .bind(self.own("subscriptions"))
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .col(0)?;
        Ok(deleted > 0)
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let row = query(&self.sql.subscription)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode_subscription).transpose()
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        // UUID v7 ids sort by creation time: oldest first.
        let rows = query(&self.sql.subscriptions)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode_subscription).collect()
    }

    async fn enqueue(
        &self,
        message: &Message,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        self.insert_message(&self.pool, message, deliveries, true, self.own("work"))
            .await
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
        let limit = count(request.limit);

        let mut tx = self.pool.begin().await.map_err(db)?;
        let locked: Vec<Uuid> = query(&self.sql.lock_ordered)
            .bind(exclude.clone())
            .bind(now)
            .bind(after)
            .bind(limit)
            .bind(self.schema.clone())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .iter()
            .map(|row| row.col(0))
            .collect::<Result<_, _>>()?;
        let rows = query(&self.sql.claim)
            .bind(exclude)
            .bind(now)
            .bind(after)
            .bind(locked)
            .bind(count(request.per_subscription))
            .bind(limit)
            .bind(millis_ceil(lease_until))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;

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
        let id = attempt.delivery_id;
        let (status, due, kind) = match next {
            Next::Delivered => (DeliveryStatus::Delivered, None, "delivered"),
            Next::RetryAt(at) => (DeliveryStatus::Pending, Some(millis(at)), "retry"),
            Next::Exhausted => (DeliveryStatus::Exhausted, None, "exhausted"),
            Next::Skipped => (DeliveryStatus::Skipped, None, "skipped"),
        };
        let row = query(&self.sql.record_attempt)
            .bind(id.as_uuid())
            .bind(lease.0)
            .bind(i64::from(attempt.number))
            .bind(millis(attempt.at))
            .bind(i64::try_from(attempt.latency.as_nanos()).unwrap_or(i64::MAX))
            .bind(attempt.status_code.map(i32::from))
            .bind(attempt.error.map(AttemptErrorKind::as_str))
            .bind(attempt.error_message.clone())
            .bind(attempt.response_body.to_vec())
            .bind(status.as_str())
            .bind(due)
            .bind(kind)
            .bind(self.channel.clone())
            .bind(self.own("work"))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("delivery", id))?;
        let applied: bool = row.col(0)?;
        // The values just written if health changed, else the stored ones.
        let (since, exhausted) = if row.col::<bool>(1)? { (2, 3) } else { (4, 5) };
        let health = match row.col::<Option<i64>>(exhausted)? {
            Some(n) => Health {
                failing_since: row.opt_time(since)?,
                consecutive_exhausted: u32::try_from(n).map_err(|e| corrupt("count", e))?,
            },
            // The subscription is gone.
            None => Health::default(),
        };
        Ok(Recorded { health, applied })
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        let earliest: Option<i64> = query(&self.sql.next_due)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .col(0)?;
        Ok(earliest.map(|e| from_unix_millis(e).max(now)))
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let row = query(&self.sql.delivery)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode_delivery).transpose()
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        let rows = query(&self.sql.message_deliveries)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode_delivery).collect()
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let rows = query(&self.sql.attempts)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|row| decode_attempt(id, row)).collect()
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        let before = millis(before);
        let mut purged = 0;
        loop {
            let done = query(&self.sql.purge)
                .bind(before)
                .bind(PURGE_CHUNK)
                .execute(&self.pool)
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
        let mut sql = QueryBuilder::<Postgres>::new(self.sql.log.as_str());
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
        let rows = sql.build().fetch_all(&self.pool).await.map_err(db)?;
        delivery_page(&rows, size)
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        let row = query(&self.sql.redeliver)
            .bind(id.as_uuid())
            .bind(millis(now))
            .bind(self.channel.clone())
            .bind(self.own("work"))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if let Some(row) = row {
            return decode_delivery(&row);
        }
        let leased: Option<bool> = query(&self.sql.leased)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
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
        let row = query(&self.sql.recover)
            .bind(subscription.as_uuid())
            .bind(millis_ceil(since))
            .bind(millis_ceil(until))
            .bind(millis(now))
            .bind(self.channel.clone())
            .bind(self.own("work"))
            .fetch_one(&self.pool)
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
    /// Notifications are sent inside the transaction that made the change, so PostgreSQL
    /// delivers them on commit: an idle worker wakes as the sender's commit returns, rather
    /// than at its next poll (measured on one host: median under 0.1 ms after the sender's
    /// `enqueue` returned, at most 3 ms under load; the commit itself took 1 to 3 ms). One that arrives while nobody waits is kept for the next call. The LISTEN
    /// connection is restored if it drops (a database restart); whatever was notified
    /// meanwhile is lost, so the call after a reconnection resolves at once, and the runtime
    /// reloads subscriptions and looks for work.
    async fn changed(&self) -> Change {
        self.signals.wait().await
    }
}
