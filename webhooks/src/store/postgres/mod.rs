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
//! - **Claims** lease due deliveries under a lease (`lease_until`) in one call of the schema's
//!   function `claim_deliveries` (one round trip), which runs two statements: the first takes,
//!   without waiting, a transaction-scoped advisory lock on each subscription with work (one
//!   another claim holds is skipped); the second, with a snapshot taken after the locks (a
//!   VOLATILE function takes one per statement), counts each subscription's leases, finds its
//!   ordered heads, gives send slots, and leases. Nobody else leases a subscription's
//!   deliveries while a claim holds its lock, so what the second statement counts is what
//!   holds. LISTEN/NOTIFY wakes idle workers (see [`Store::changed`]).
//! - **No foreign keys** on deliveries and attempts (since schema version 3: checking them was
//!   a seventh of the server's work per delivery). Enqueues insert deliveries only for the
//!   subscriptions of the version they hold locked, so none is added to a subscription being
//!   deleted; deleting a subscription deletes its deliveries and their attempts, and `purge` a
//!   message's, in the same statement.
//!
//! Within a process, concurrent `enqueue`s are committed together, one statement per batch
//! over `unnest` arrays, as are concurrent `record_attempt`s (group commit, `Core`): a busy
//! runtime pays a statement and a WAL flush per batch rather than per call. The other workers
//! are told of new work by one notification per batch, sent after the commit.
//!
//! One file per concern, each with its statements (named constants, `{s}` standing for the
//! schema): `connect.rs` (pools, migrations, the statements built with the schema's name),
//! `subscriptions.rs` (changes and the version, its advisory lock), `enqueue.rs` (where a
//! delivery is enqueued, `send_in_tx`'s outbox, idempotency keys), `claim.rs` (where it is
//! claimed), `record.rs` (where its attempt is recorded), `group_commit.rs` (the batching
//! behind enqueue and record), `log.rs` (the delivery log, redeliver, recover, purge) and
//! `notify.rs` (LISTEN/NOTIFY) and `vacuum.rs` (keeping the queue's indexes free of dead entries). Here: the store, and its [`Store`] impl, which delegates to them.

mod claim;
mod connect;
mod enqueue;
mod group_commit;
mod log;
mod notify;
mod record;
mod subscriptions;
mod vacuum;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Postgres};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::sql::{Columns, RowExt};
use super::{
    Attempt, Change, ClaimRequest, Claimed, Delivery, DeliveryQuery, Enqueue, Enqueued, LeaseId,
    Next, Page, QueueStats, Recorded, Store, StoreError, Versioned,
};
use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};

use self::connect::Sql;
use self::enqueue::EnqueueJob;
use self::group_commit::Queue;
use self::notify::{Signals, WakeState};
use self::record::RecordJob;
use self::subscriptions::Edit;

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
/// - **Maintenance**: the store runs `VACUUM (SKIP_LOCKED)` on its two queue tables (`queue`,
///   `leases`) every 10,000 deliveries it finishes, at most every 5 seconds, because claims
///   read the front of their indexes, where finished deliveries leave dead entries faster than
///   autovacuum (once a minute) removes them. The role must own the tables for that; with one
///   that does not, PostgreSQL only warns, and autovacuum alone keeps them.
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
    /// When this process vacuums the queue (see `vacuum.rs`).
    vacuum: vacuum::VacuumState,
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

/// A query of one of the store's statements ([`Sql`]).
fn query(sql: &Arc<str>) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    // The text is ours: the templates of this module's files, with a quoted schema name written
    // in.
    sqlx::query(AssertSqlSafe(sql.clone()))
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

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

impl Store for PostgresStore {
    // Changes to subscriptions (`subscriptions.rs`: `edit`), each bumping the version.
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
        // Group-committed: `record.rs`.
        self.core.record_attempt(lease, attempt, next).await
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        claim::queue_stats(self).await
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        claim::next_due(self, now).await
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        log::delivery(self, id).await
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        log::message(self, id).await
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
