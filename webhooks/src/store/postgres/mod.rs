//! [`PostgresStore`]: the shared store, in PostgreSQL, for any number of worker processes.
//!
//! Every table lives in one schema (`webhooks` unless told otherwise), created and migrated on
//! connect from `migrations/postgres/`, its version kept in `schema_version`. Queries are
//! checked at run time (no database is needed to build) and name their tables with the schema,
//! so they work on any connection whatever its `search_path`: `send_in_tx` runs them on the
//! application's own.
//!
//! Workers coordinate through the database alone:
//!
//! - **Routing.** The subscriptions' version is one row (`subscriptions_version`). Every change
//!   to a subscription increments it first, in the change's transaction (an UPDATE: changes go
//!   one at a time); every enqueue locks it `FOR SHARE` and compares it with the version its
//!   deliveries were matched against, storing nothing if they differ. A change thus waits for
//!   the enqueues under way and the other way round, so a delivery is never added to a
//!   subscription as it is disabled, and a send that starts after a change returned is matched
//!   against it. An advisory lock taken first (shared by enqueues, exclusive for changes) keeps
//!   the order fair: enqueues that come after a waiting change wait behind it.
//! - **Claims** lease due deliveries under a lease (`lease_until`) in two statements: the first
//!   takes, without waiting, a transaction-scoped advisory lock on each subscription with work
//!   (one another claim holds is skipped); the second, with a snapshot taken after the locks,
//!   counts each subscription's leases, finds its ordered heads, gives send slots, and leases.
//!   Nobody else leases a subscription's deliveries while a claim holds its lock, so what the
//!   second statement counts is what holds. LISTEN/NOTIFY wakes idle workers (see
//!   [`Store::changed`]).
//!
//! Within a process, concurrent `enqueue`s are committed together, one statement per batch
//! over `unnest` arrays, as are concurrent `record_attempt`s (group commit, `Core`): a busy
//! runtime pays a statement and a WAL flush per batch rather than per call. The other workers
//! are told of new work by one notification per batch, sent after the commit.

mod claim;
mod enqueue;
mod group_commit;
mod log;
mod notify;
mod record;
mod subscriptions;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::sql::{Columns, RowExt, db};
use super::{
    Attempt, Change, ClaimRequest, Claimed, Delivery, DeliveryQuery, Enqueue, Enqueued, LeaseId,
    Next, Page, Recorded, Store, StoreError, Versioned,
};
use crate::subscription::Disabled;
use crate::{DeliveryId, MessageId, Secret, Subscription, SubscriptionId};
use claim::{CLAIM, LOCK_CLAIMS, NEXT_DUE};
use enqueue::{ENQUEUE, ENQUEUE_BATCH, EnqueueJob, FIRST_OF_KEY, UNKNOWN_SUBSCRIPTION};
use group_commit::Queue;
use log::{
    ATTEMPTS, DELIVERY, DELIVERY_COLUMNS, LEASED, LOG, MESSAGE_DELIVERIES, PURGE, PURGE_KEYS,
    RECOVER, REDELIVER,
};
use notify::{Signals, WAKE, WakeState, channel_name, listen, run_listener};
use record::{LOCK_HEALTH, RECORD_ATTEMPTS, RecordJob, WRITE_HEALTH};
use subscriptions::{
    BUMP_VERSION, DELETE_SUBSCRIPTION, DISABLE_SUBSCRIPTION, ENABLE_SUBSCRIPTION, Edit,
    INSERT_SUBSCRIPTION, LOCK_SUBSCRIPTION, SKIP_DELIVERIES, SUBSCRIPTION, SUBSCRIPTION_COLUMNS,
    SUBSCRIPTIONS, UPDATE_SUBSCRIPTION, WRITE_SECRETS, version_lock,
};

/// The schema, one migration per version: `MIGRATIONS[n]` takes the schema from version `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_many_workers.sql"),
];

/// The schema [`PostgresStore::connect`] uses.
const DEFAULT_SCHEMA: &str = "webhooks";

/// A [`Store`] in PostgreSQL, shared by any number of worker processes: each runs a
/// `Webhooks` on its own `PostgresStore`, and together they deliver every message once per
/// subscription, within each subscription's limits, ordered subscriptions in order.
///
/// - **Routing** is never stale: every subscription change increments the subscriptions'
///   version in its transaction, and an enqueue matched against an older version stores
///   nothing and fails with [`StoreError::Stale`] (the runtime matches again). Changes and
///   enqueues wait for each other (a row lock), so a subscription being disabled gets no new
///   pending delivery, whichever process sends.
/// - **Claims** lease due deliveries under a lease (`lease_until`): workers never wait for each
///   other, and the deliveries of a worker that died are claimable again once its leases lapse.
///   A claim locks each subscription it serves (skipping one another claim holds), then counts
///   with a fresh snapshot: so every worker together holds at most a subscription's
///   `max_in_flight` of its deliveries, an ordered subscription's keys one delivery each, and
///   a rate-limited subscription's send slots are `1/rate` apart across all of them. An ordered
///   subscription's order is send order: the messages' sequence numbers, taken as they are
///   inserted. (A message sent in a transaction that commits late goes after those delivered by
///   then, before those waiting.) A claim's commit does not wait for the disk (`synchronous_commit = off` for its
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
///   It holds the subscriptions' version row `FOR SHARE` until then, so subscription changes
///   wait for that transaction: keep it short, and change no subscription while it is open.
///   The transaction must be READ COMMITTED (PostgreSQL's default): in REPEATABLE READ or
///   SERIALIZABLE, a change committed since its snapshot fails it with a serialization error.
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

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// Every statement, with the schema written in (`{s}` in the templates), built once per store.
/// Statement text is stable, so each connection prepares each statement once.
struct Sql {
    bump_version: Arc<str>,
    insert_subscription: Arc<str>,
    update_subscription: Arc<str>,
    enable_subscription: Arc<str>,
    skip_deliveries: Arc<str>,
    disable_subscription: Arc<str>,
    lock_subscription: Arc<str>,
    write_secrets: Arc<str>,
    delete_subscription: Arc<str>,
    subscription: Arc<str>,
    subscriptions: Arc<str>,
    enqueue: Arc<str>,
    enqueue_batch: Arc<str>,
    first_of_key: Arc<str>,
    unknown_subscription: Arc<str>,
    lock_claims: Arc<str>,
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
    purge_keys: Arc<str>,
    redeliver: Arc<str>,
    leased: Arc<str>,
    recover: Arc<str>,
    /// `SELECT ... FROM <deliveries d JOIN messages m>`: the start of the delivery log query.
    log: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let s = quote_ident(schema);
        let lock = version_lock(schema).to_string();
        let sql = |template: &str| -> Arc<str> {
            template
                .replace("{s}", &s)
                .replace("{version_lock}", &lock)
                .replace("{subscription}", SUBSCRIPTION_COLUMNS)
                .replace("{delivery}", DELIVERY_COLUMNS)
                .into()
        };
        Sql {
            bump_version: sql(BUMP_VERSION),
            insert_subscription: sql(INSERT_SUBSCRIPTION),
            update_subscription: sql(UPDATE_SUBSCRIPTION),
            enable_subscription: sql(ENABLE_SUBSCRIPTION),
            skip_deliveries: sql(SKIP_DELIVERIES),
            disable_subscription: sql(DISABLE_SUBSCRIPTION),
            lock_subscription: sql(LOCK_SUBSCRIPTION),
            write_secrets: sql(WRITE_SECRETS),
            delete_subscription: sql(DELETE_SUBSCRIPTION),
            subscription: sql(SUBSCRIPTION),
            subscriptions: sql(SUBSCRIPTIONS),
            enqueue: sql(ENQUEUE),
            enqueue_batch: sql(ENQUEUE_BATCH),
            first_of_key: sql(FIRST_OF_KEY),
            unknown_subscription: sql(UNKNOWN_SUBSCRIPTION),
            lock_claims: sql(LOCK_CLAIMS),
            claim: sql(CLAIM),
            record_attempts: sql(RECORD_ATTEMPTS),
            lock_health: sql(LOCK_HEALTH),
            write_health: sql(WRITE_HEALTH),
            wake: sql(WAKE),
            next_due: sql(NEXT_DUE),
            delivery: sql(DELIVERY),
            message_deliveries: sql(MESSAGE_DELIVERIES),
            attempts: sql(ATTEMPTS),
            purge: sql(PURGE),
            purge_keys: sql(PURGE_KEYS),
            redeliver: sql(REDELIVER),
            leased: sql(LEASED),
            recover: sql(RECOVER),
            log: sql(LOG).to_string(),
        }
    }
}

/// A query of one of the statements above.
fn query(sql: &Arc<str>) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    // The text is ours: templates above with a quoted schema name written in.
    sqlx::query(AssertSqlSafe(sql.clone()))
}

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
}

impl Core {}

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
    sqlx::query(LOCK_MIGRATIONS)
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // A quoted identifier of our own making: nothing else goes into these statements.
    sqlx::raw_sql(AssertSqlSafe(CREATE_SCHEMA.replace("{s}", &quoted)))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let exists: Option<String> = sqlx::query_scalar(SCHEMA_VERSION_TABLE)
        .bind(schema)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let found: i64 = match exists {
        None => 0,
        Some(_) => sqlx::query_scalar(AssertSqlSafe(SCHEMA_VERSION.replace("{s}", &quoted)))
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
    sqlx::raw_sql(AssertSqlSafe(
        SET_SCHEMA_VERSION
            .replace("{s}", &quoted)
            .replace("{version}", &MIGRATIONS.len().to_string()),
    ))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Makes workers that start together migrate one at a time: an advisory lock, held until the
/// migration's transaction ends. `$1`: the schema.
const LOCK_MIGRATIONS: &str = "SELECT pg_advisory_xact_lock(hashtext('webhooks migrate ' || $1))";

/// Creates the schema if it is missing, and makes it the transaction's search path (the
/// migrations name their tables without it).
const CREATE_SCHEMA: &str = "CREATE SCHEMA IF NOT EXISTS {s}; SET LOCAL search_path TO {s}";

/// The name of the schema's version table, NULL if it does not exist yet (a new schema). `$1`:
/// the schema.
const SCHEMA_VERSION_TABLE: &str =
    "SELECT to_regclass(format('%I.schema_version', $1::text))::text";

/// The schema's version: how many of [`MIGRATIONS`] it has.
const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0)::bigint FROM {s}.schema_version";

/// Writes the schema's version (`{version}`) after its migrations.
const SET_SCHEMA_VERSION: &str = "DELETE FROM {s}.schema_version; \
     INSERT INTO {s}.schema_version (version) VALUES ({version})";

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

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

impl Store for PostgresStore {
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<u64, StoreError> {
        Ok(self.edit(&Edit::Insert(subscription)).await?.1)
    }

    async fn update_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Versioned<Subscription>, StoreError> {
        self.edited(&Edit::Update(subscription)).await
    }

    async fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Versioned<Subscription>, StoreError> {
        self.edited(&Edit::Enable(id)).await
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> Result<Versioned<Subscription>, StoreError> {
        self.edited(&Edit::Disable(id, &disabled)).await
    }

    async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> Result<Versioned<Subscription>, StoreError> {
        self.edited(&Edit::Rotate {
            id,
            secret,
            now,
            overlap,
        })
        .await
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<Option<u64>, StoreError> {
        subscriptions::delete(self, id).await
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscriptions::get(self, id).await
    }

    async fn subscriptions(&self) -> Result<Versioned<Vec<Subscription>>, StoreError> {
        subscriptions::list(self).await
    }

    async fn enqueue(&self, enqueue: &Enqueue<'_>) -> Result<Enqueued, StoreError> {
        enqueue::enqueue(self, enqueue).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        claim::claim(self, request).await
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
        claim::next_due(self, now).await
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        log::delivery(self, id).await
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        log::message_deliveries(self, id).await
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        log::attempts(self, id).await
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        log::purge(self, before).await
    }

    async fn query_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        log::query_deliveries(self, query).await
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        log::redeliver(self, id, now).await
    }

    async fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        log::recover(self, subscription, since, until, now).await
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
