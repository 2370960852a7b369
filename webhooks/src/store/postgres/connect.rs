//! Connecting: the pools (the store's, and its own for LISTEN), the schema (created, and migrated
//! from `migrations/postgres/` under an advisory lock, so that workers starting together migrate
//! once), and the store's statements with the schema's name written in ([`Sql`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::group_commit::Queue;
use super::notify::{Signals, WakeState, channel_name, listen, run_listener};
use super::{Core, PostgresError, PostgresStore};
use super::{claim, enqueue, log, notify, record, subscriptions, vacuum};
use crate::store::StoreError;
use crate::store::sql::db;

/// The schema, one migration per version: `MIGRATIONS[n]` takes the schema from version `n` to
/// `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_many_workers.sql"),
    include_str!("../../../migrations/postgres/0003_lean_queue.sql"),
    include_str!("../../../migrations/postgres/0004_queue_apart.sql"),
];

/// The schema [`PostgresStore::connect`] uses.
const DEFAULT_SCHEMA: &str = "webhooks";

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
                vacuum: Default::default(),
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

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every statement, with the schema written in (`{s}` in the templates), built once per store.
/// Statement text is stable, so each connection prepares each statement once.
pub(super) struct Sql {
    pub(super) bump_version: Arc<str>,
    pub(super) insert_subscription: Arc<str>,
    pub(super) update_subscription: Arc<str>,
    pub(super) enable_subscription: Arc<str>,
    pub(super) skip_deliveries: Arc<str>,
    pub(super) disable_subscription: Arc<str>,
    pub(super) lock_subscription: Arc<str>,
    pub(super) write_secrets: Arc<str>,
    pub(super) delete_subscription: Arc<str>,
    pub(super) subscription: Arc<str>,
    pub(super) subscriptions: Arc<str>,
    pub(super) enqueue: Arc<str>,
    pub(super) enqueue_batch: Arc<str>,
    pub(super) first_of_key: Arc<str>,
    pub(super) unknown_subscription: Arc<str>,
    pub(super) claim: Arc<str>,
    pub(super) record_attempts: Arc<str>,
    pub(super) lock_health: Arc<str>,
    pub(super) write_health: Arc<str>,
    pub(super) wake: Arc<str>,
    pub(super) next_due: Arc<str>,
    pub(super) queue_stats: Arc<str>,
    pub(super) delivery: Arc<str>,
    pub(super) message: Arc<str>,
    pub(super) message_deliveries: Arc<str>,
    pub(super) attempts: Arc<str>,
    pub(super) purge: Arc<str>,
    pub(super) purge_keys: Arc<str>,
    pub(super) lock_queued: Arc<str>,
    pub(super) redeliver: Arc<str>,
    pub(super) leased: Arc<str>,
    pub(super) recover: Arc<str>,
    pub(super) vacuum: Arc<str>,
    /// `SELECT ... FROM <deliveries d JOIN messages m>`: the start of the delivery log query.
    pub(super) log: String,
    /// The subscriptions table, schema included: what the delivery log's subscription-label
    /// filter reads.
    pub(super) subscriptions_table: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let s = quote_ident(schema);
        let lock = subscriptions::version_lock(schema).to_string();
        let sql = |template: &str| -> Arc<str> {
            template
                .replace("{deliveries}", log::DELIVERIES)
                .replace("{s}", &s)
                .replace("{version_lock}", &lock)
                .replace("{subscription}", subscriptions::SUBSCRIPTION_COLUMNS)
                .replace("{delivery}", log::DELIVERY_COLUMNS)
                .into()
        };
        Sql {
            bump_version: sql(subscriptions::BUMP_VERSION),
            insert_subscription: sql(subscriptions::INSERT_SUBSCRIPTION),
            update_subscription: sql(subscriptions::UPDATE_SUBSCRIPTION),
            enable_subscription: sql(subscriptions::ENABLE_SUBSCRIPTION),
            skip_deliveries: sql(subscriptions::SKIP_DELIVERIES),
            disable_subscription: sql(subscriptions::DISABLE_SUBSCRIPTION),
            lock_subscription: sql(subscriptions::LOCK_SUBSCRIPTION),
            write_secrets: sql(subscriptions::WRITE_SECRETS),
            delete_subscription: sql(subscriptions::DELETE_SUBSCRIPTION),
            subscription: sql(subscriptions::SUBSCRIPTION),
            subscriptions: sql(subscriptions::SUBSCRIPTIONS),
            enqueue: sql(enqueue::ENQUEUE),
            enqueue_batch: sql(enqueue::ENQUEUE_BATCH),
            first_of_key: sql(enqueue::FIRST_OF_KEY),
            unknown_subscription: sql(enqueue::UNKNOWN_SUBSCRIPTION),
            claim: sql(claim::CLAIM),
            record_attempts: sql(record::RECORD_ATTEMPTS),
            lock_health: sql(record::LOCK_HEALTH),
            write_health: sql(record::WRITE_HEALTH),
            wake: sql(notify::WAKE),
            next_due: sql(claim::NEXT_DUE),
            queue_stats: sql(claim::QUEUE_STATS),
            delivery: sql(log::DELIVERY),
            message: sql(log::MESSAGE),
            message_deliveries: sql(log::MESSAGE_DELIVERIES),
            attempts: sql(log::ATTEMPTS),
            purge: sql(log::PURGE),
            purge_keys: sql(log::PURGE_KEYS),
            lock_queued: sql(log::LOCK_QUEUED),
            redeliver: sql(log::REDELIVER),
            leased: sql(log::LEASED),
            recover: sql(log::RECOVER),
            vacuum: sql(vacuum::VACUUM),
            log: sql(log::LOG).to_string(),
            subscriptions_table: sql("{s}.subscriptions").to_string(),
        }
    }
}
