//! Where subscriptions, messages, deliveries and attempts live: the [`Store`] trait, and
//! [`MemoryStore`].
//!
//! The runtime only talks to a store through this trait, the way sqlx keeps one driver per
//! database behind common traits. The contract, which every store honours:
//!
//! - **Subscriptions carry a version.** Every change to a subscription (insert, settings,
//!   enable, disable, secret rotation, delete) commits with a new version of the whole set, and
//!   returns it. [`enqueue`](Store::enqueue) is told which version its deliveries were matched
//!   against and refuses with [`StoreError::Stale`], storing nothing, when the set has moved
//!   since: so a send that starts after a change has returned, in any process sharing the store,
//!   is matched against that change. A change waits for enqueues under way and the other way
//!   round (PostgreSQL: a row lock), so no delivery is added to a subscription as it is
//!   disabled.
//! - [`update_subscription`](Store::update_subscription) writes settings only: whether a
//!   subscription is enabled, its secrets and its health change only through
//!   [`enable_subscription`](Store::enable_subscription),
//!   [`disable_subscription`](Store::disable_subscription),
//!   [`rotate_secret`](Store::rotate_secret) and recorded attempts.
//! - [`enqueue`](Store::enqueue) commits a message and its deliveries atomically; with an
//!   idempotency key seen within its window it stores nothing and names the first message.
//! - [`claim`](Store::claim) hands out due deliveries in batches, each under a *lease*: until
//!   the lease lapses nobody else gets it; once it lapses (the worker died) it is claimable
//!   again. The claim enforces each subscription's limits for every worker sharing the store:
//!   - leased deliveries of a subscription never exceed its `max_in_flight` (or the request's
//!     default);
//!   - an ordered subscription leases, per ordering key, only the oldest unfinished delivery
//!     of that key, and only while no other delivery of that key is leased (messages without
//!     a key share one queue). Heads are looked for among the subscription's
//!     [`ORDERED_WINDOW`] oldest unfinished deliveries;
//!   - a rate-limited subscription's claims get send slots ([`Claim::not_before`]) at least
//!     `1/rate` apart across all claims, and no slot later than half a lease after `now`, so
//!     every delivery handed out can be sent before its lease lapses.
//! - [`record_attempt`](Store::record_attempt) stores an attempt and the delivery's next state
//!   (delivered, retry at, exhausted, skipped) atomically, and keeps the subscription's health.
//!   A delivery whose subscription was disabled while it was in flight stays skipped unless
//!   the attempt delivered it; a retry of a disabled subscription's delivery is stored as
//!   skipped. Nothing is left pending that no worker will claim.
//!
//! Times are passed in (`now`) rather than read from the clock, so that the rules are testable.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};

/// How many of an ordered subscription's oldest unfinished deliveries a claim looks at for
/// the heads of its ordering keys. A key whose oldest delivery lies further back waits until
/// those ahead of it are finished.
pub const ORDERED_WINDOW: usize = 1000;

#[doc(no_inline)]
pub use crate::delivery_log::{
    Attempt, AttemptErrorKind, AttemptOutcome, Cursor, Delivery, DeliveryQuery, DeliveryStatus,
    Page,
};

#[cfg(feature = "runtime")]
mod arc;
#[cfg(feature = "runtime")]
mod dyn_store;
#[cfg(feature = "runtime")]
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "runtime")]
pub(crate) use dyn_store::DynStore;
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A delivery to create with a message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewDelivery {
    /// Its id, chosen by the caller (a fresh UUID v7).
    pub id: DeliveryId,
    /// The subscription it goes to.
    pub subscription_id: SubscriptionId,
    /// Created as [`DeliveryStatus::Skipped`] (the subscription is disabled).
    pub skipped: bool,
}

impl NewDelivery {
    /// A delivery of the message to `subscription_id`.
    pub fn new(subscription_id: SubscriptionId, skipped: bool) -> Self {
        NewDelivery {
            id: DeliveryId::new(),
            subscription_id,
            skipped,
        }
    }
}

/// What a worker asks of [`Store::claim`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// The current time: deliveries due at or before it are claimable.
    pub now: SystemTime,
    /// At most this many deliveries in all.
    pub limit: usize,
    /// At most this many leased at once for a subscription that sets no `max_in_flight` of
    /// its own (counting the leases every worker holds).
    pub per_subscription: usize,
    /// How long the claim holds.
    pub lease: Duration,
    /// Subscriptions to leave alone this time (the worker has no room for them).
    pub exclude: Vec<SubscriptionId>,
}

impl ClaimRequest {
    /// A request for at most `limit` deliveries due at `now`, leased for `lease`, with
    /// `per_subscription` the default cap on a subscription's leased deliveries.
    pub fn new(now: SystemTime, limit: usize, per_subscription: usize, lease: Duration) -> Self {
        ClaimRequest {
            now,
            limit,
            per_subscription,
            lease,
            exclude: Vec::new(),
        }
    }
}

/// A token that proves which claim holds a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId(uuid::Uuid);

impl LeaseId {
    /// A fresh lease id (UUID v7).
    pub fn new() -> Self {
        LeaseId(uuid::Uuid::now_v7())
    }

    /// The lease id a store kept as this UUID.
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        LeaseId(uuid)
    }

    /// The UUID a store keeps.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        LeaseId::new()
    }
}

/// What [`Store::claim`] hands out: the claims, and the version of the subscriptions when it
/// claimed them, so that a worker whose copy is older reloads it before sending (a rotated
/// secret, a changed URL) .
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Claimed {
    /// The claimed deliveries.
    pub claims: Vec<Claim>,
    /// The subscriptions' version (see [`Store::subscriptions`]).
    pub subscriptions_version: u64,
}

impl Claimed {
    /// Claims made at `subscriptions_version`.
    pub fn new(claims: Vec<Claim>, subscriptions_version: u64) -> Self {
        Claimed {
            claims,
            subscriptions_version,
        }
    }
}

/// A value read or written together with the subscriptions' version at that moment.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The value read or written.
    pub value: T,
    /// The version of the subscriptions it belongs to.
    pub version: u64,
}

impl<T> Versioned<T> {
    /// `value` at `version`.
    pub fn new(value: T, version: u64) -> Self {
        Versioned { value, version }
    }
}

/// A message to commit with its deliveries: what [`Store::enqueue`] takes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Enqueue<'a> {
    /// The message, with the body every delivery sends.
    pub message: &'a Message,
    /// One per matching subscription.
    pub deliveries: &'a [NewDelivery],
    /// The version of the subscriptions the deliveries were matched against: if the store's
    /// has moved, nothing is stored and the call fails with [`StoreError::Stale`].
    pub subscriptions_version: u64,
    /// Store the message only if no message with this key was stored within the window.
    pub idempotency: Option<Idempotency>,
}

impl<'a> Enqueue<'a> {
    /// `message` with `deliveries`, matched at `subscriptions_version`.
    pub fn new(
        message: &'a Message,
        deliveries: &'a [NewDelivery],
        subscriptions_version: u64,
    ) -> Self {
        Enqueue {
            message,
            deliveries,
            subscriptions_version,
            idempotency: None,
        }
    }

    /// With an idempotency key (see [`Idempotency`]).
    #[must_use]
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }
}

/// An idempotency key and its window: a message stored with `key` at or after `since` makes
/// this enqueue a duplicate. An older one is forgotten (the key is taken anew).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Idempotency {
    /// The key, as the application gave it.
    pub key: String,
    /// The start of the window.
    pub since: SystemTime,
}

impl Idempotency {
    /// `key`, remembered for messages stored at or after `since`.
    pub fn new(key: impl Into<String>, since: SystemTime) -> Self {
        Idempotency {
            key: key.into(),
            since,
        }
    }
}

/// What [`Store::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enqueued {
    /// The message and its deliveries were committed.
    Stored,
    /// A message with the same idempotency key was stored within the window: nothing was
    /// stored; this is the first message's id.
    Duplicate(MessageId),
}

/// A claimed delivery, with its message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Claim {
    /// The delivery (status [`DeliveryStatus::InFlight`]).
    pub delivery: Delivery,
    /// Its message: the exact body to send, and its id for `webhook-id`.
    pub message: Message,
    /// The lease that proves this claim holds the delivery: [`Store::record_attempt`] applies
    /// only with it.
    pub lease: LeaseId,
    /// Until when the lease holds.
    pub lease_until: SystemTime,
    /// Not to be sent before this time: the subscription's rate limit gave it this slot.
    pub not_before: Option<SystemTime>,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// It succeeded: the delivery is finished.
    Delivered,
    /// Try again at this time.
    RetryAt(SystemTime),
    /// Give up: the retry policy is spent.
    Exhausted,
    /// Its subscription was disabled.
    Skipped,
}

/// How a subscription has been faring, kept by [`Store::record_attempt`] for auto-disable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Since when every attempt has failed (`None` after a success).
    pub failing_since: Option<SystemTime>,
    /// Exhausted deliveries in a row.
    pub consecutive_exhausted: u32,
}

/// What [`Store::record_attempt`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// The subscription's health after the attempt.
    pub health: Health,
    /// `false` when the lease had been lost (it lapsed and another worker claimed the
    /// delivery): the attempt is kept, the delivery's state is left to the new holder.
    pub applied: bool,
}

/// What another process changed in a shared store (see [`Store::changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// New or requeued deliveries may be due.
    Work,
    /// Subscriptions were added, updated, disabled or deleted.
    Subscriptions,
}

/// What a [`StoreError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A subscription (`sub_…`).
    Subscription,
    /// A message (`msg_…`).
    Message,
    /// A delivery (`dlv_…`).
    Delivery,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Subscription => "subscription",
            Entity::Message => "message",
            Entity::Delivery => "delivery",
        })
    }
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The subscription, message or delivery does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked for.
        entity: Entity,
        /// The id asked for.
        id: String,
    },
    /// The operation conflicts with the entity's state: its id is taken, or it is in flight.
    #[error("{entity} {id} {reason}")]
    Conflict {
        /// What kind of entity.
        entity: Entity,
        /// The id in question.
        id: String,
        /// Why, in words: `already exists`, `is in flight`.
        reason: &'static str,
    },
    /// The subscriptions changed since the caller matched a message against them: nothing was
    /// stored. Match again against the subscriptions at `version` (or later) and retry.
    #[error("the subscriptions changed (now at version {version}); match the message again")]
    Stale {
        /// The store's current version.
        version: u64,
    },
    /// The database failed.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// No `entity` has the id `id`.
    pub fn not_found(entity: Entity, id: impl ToString) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// `entity` `id` conflicts: `reason` says how (`already exists`, `is in flight`).
    pub fn conflict(entity: Entity, id: impl ToString, reason: &'static str) -> Self {
        StoreError::Conflict {
            entity,
            id: id.to_string(),
            reason,
        }
    }

    /// A failure of the database itself (connection, query, I/O).
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(error.into())
    }

    /// Whether the entity does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether the operation conflicts with the entity's state.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// Whether the subscriptions moved since the caller matched against them.
    pub fn is_stale(&self) -> bool {
        matches!(self, StoreError::Stale { .. })
    }

    /// Whether the database itself failed.
    pub fn is_backend(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }
}

/// A boxed future, for the object-safe form of [`Store`].
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Durable (or not) state of the delivery runtime. See the [module docs](self) for the
/// contract every implementation honours.
pub trait Store: Send + Sync + 'static {
    /// Stores a new subscription. Returns the subscriptions' new version.
    fn insert_subscription(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Writes a subscription's settings (URL, patterns, labels, headers, ordering, limits,
    /// retry policy, description), leaving alone whether it is enabled, its secrets, its
    /// health and its creation time. Returns it as stored.
    fn update_subscription(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send;

    /// Enables a subscription (a no-op if it is enabled), resetting its health. Its skipped
    /// deliveries stay skipped (see [`recover`](Store::recover)).
    fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send;

    /// Disables a subscription, and marks every unfinished delivery of it skipped, the ones in
    /// flight included (their attempt may still deliver them; see the module docs).
    fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send;

    /// Makes `secret` the current secret of a subscription; the previous ones keep signing
    /// until `now + overlap` at the latest, and those expired at `now` are dropped.
    fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send;

    /// Deletes a subscription and its deliveries. Returns the subscriptions' new version, or
    /// `None` if there was no such subscription.
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// One subscription; `None` if there is none with this id.
    fn subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<Subscription>, StoreError>> + Send;

    /// Every subscription, oldest first, with the version of the set (read together).
    fn subscriptions(
        &self,
    ) -> impl Future<Output = Result<Versioned<Vec<Subscription>>, StoreError>> + Send;

    /// Commits a message and its deliveries, all due at once, if the subscriptions are still
    /// at `enqueue.subscriptions_version` ([`StoreError::Stale`] otherwise) and its
    /// idempotency key (if any) was not seen within its window.
    fn enqueue(
        &self,
        enqueue: &Enqueue<'_>,
    ) -> impl Future<Output = Result<Enqueued, StoreError>> + Send;

    /// Claims due deliveries under a lease, within each subscription's limits (see the module
    /// docs).
    fn claim(
        &self,
        request: &ClaimRequest,
    ) -> impl Future<Output = Result<Claimed, StoreError>> + Send;

    /// Records an attempt of a claimed delivery and what happens next.
    fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// When the earliest delivery that is not claimable now becomes due (a retry, or a lease
    /// that lapses), so that an idle worker knows how long it may sleep.
    fn next_due(
        &self,
        now: SystemTime,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send;

    /// One delivery, its status as [`Delivery::status`] shows it; `None` if unknown.
    fn delivery(
        &self,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;

    /// One message as stored: its id, creation time, event name, labels, ordering key (if it
    /// has one) and the exact body its deliveries send; `None` if unknown (or purged).
    fn message(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Option<Message>, StoreError>> + Send;

    /// The deliveries of one message.
    fn message_deliveries(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// The attempts of one delivery, first first.
    fn attempts(
        &self,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Vec<Attempt>, StoreError>> + Send;

    /// Retention: deletes messages created before `before` whose deliveries are all delivered
    /// (or that had none), with their deliveries and attempts, and the idempotency keys stored
    /// before `before`. Undelivered work is kept until it is resolved. Returns how many
    /// messages were deleted.
    fn purge(&self, before: SystemTime) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The delivery log: deliveries matching `query` (its subscription labels matched against
    /// each delivery's subscription as stored now), newest first (by creation time, then
    /// id), at most `query.page_size()`, starting after `query.cursor`. `next` is set when the
    /// page is full. Statuses are as [`Delivery::status`] shows them (in flight = leased, failed =
    /// pending after a failed attempt).
    fn query_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> impl Future<Output = Result<Page<Delivery>, StoreError>> + Send;

    /// Makes a delivery due at `now` for one more attempt, outside its retry schedule, whatever
    /// its status (delivered, exhausted and skipped ones included). Its attempt count is kept, so
    /// if that attempt fails and the policy is spent it is exhausted again. Until that attempt
    /// it shows as [`DeliveryStatus::Pending`]. Fails with [`StoreError::Conflict`] if it is
    /// in flight, [`StoreError::NotFound`] if unknown.
    fn redeliver(
        &self,
        id: DeliveryId,
        now: SystemTime,
    ) -> impl Future<Output = Result<Delivery, StoreError>> + Send;

    /// Requeues (due at `now`, as [`redeliver`](Store::redeliver) does) every exhausted or
    /// skipped delivery of `subscription` created in `[since, until)`. Returns how many.
    fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Resolves when *another process* sharing this store may have added work or changed
    /// subscriptions, so that idle workers wake at once instead of at their next poll and
    /// reload their subscriptions. Stores used by one process never resolve (the default);
    /// PostgreSQL uses LISTEN/NOTIFY.
    fn changed(&self) -> impl Future<Output = Change> + Send {
        std::future::pending()
    }
}
