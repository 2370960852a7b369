//! [`Webhooks`]: the handle applications keep. It sits on top of the background work in
//! [`crate::runtime`], which never refers back to it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::runtime::routing::SubscriptionState;
use crate::runtime::shared::{Shared, not_found};
use crate::store::{
    Attempt, Delivery, DeliveryQuery, Enqueue, Enqueued, Idempotency, Page, StoreError,
};
use crate::subscription::DisableReason;
use crate::{
    DeliveryId, Error, Message, MessageId, Notification, Secret, SendOptions, Subscription,
    SubscriptionId, WebhookEvent,
};

/// Sends webhook events to the subscriptions that match them, in the background.
///
/// `send` returns once the store has accepted the message; background workers on the current
/// tokio runtime then deliver it to every matching subscription, signed, retried until it
/// succeeds or the retry policy is spent. Cloning is cheap: every clone is the same runtime.
///
/// ```
/// use serde::Serialize;
/// use webhooks::{Subscription, WebhookEvent, Webhooks, store::MemoryStore};
///
/// #[derive(Serialize, WebhookEvent)]
/// #[webhook(resource = "random_number", action = "generate")]
/// struct RandomNumber(u32);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), webhooks::Error> {
/// let hooks = Webhooks::builder().store(MemoryStore::new()).build().await?;
/// let sub = hooks
///     .subscribe(Subscription::new("https://example.com/hooks")?.events(["random_number:*"]))
///     .await?;
/// let id = hooks.send(&RandomNumber(863)).await?;
/// # let _ = (sub, id);
/// hooks.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Webhooks {
    handle: Arc<Handle>,
}

/// Owns the background work; stops it when the last `Webhooks` clone is dropped.
struct Handle {
    shared: Arc<Shared>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.shared();
        let subscriptions = shared
            .subscriptions
            .read()
            .map(|routes| (routes.iter().count(), routes.version))
            .unwrap_or_default();
        f.debug_struct("Webhooks")
            .field("subscriptions", &subscriptions.0)
            .field("subscriptions_version", &subscriptions.1)
            .field("send_only", &shared.config.send_only)
            .field("shut_down", &*shared.stop.borrow())
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The handle of a runtime `Builder::build` started (`dispatcher`: `None` when send-only).
    pub(crate) fn from_parts(shared: Arc<Shared>, dispatcher: Option<JoinHandle<()>>) -> Self {
        Webhooks {
            handle: Arc::new(Handle {
                shared,
                dispatcher: Mutex::new(dispatcher),
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Stores a subscription and starts delivering to it. Returns it as stored.
    ///
    /// Fails if its patterns, headers or limits are invalid, if its secret cannot sign
    /// ([`Error::SecretCannotSign`]: an Ed25519 public key), or if its URL names an address the
    /// network policy refuses (IP literals are checked here; names when they are resolved).
    pub async fn subscribe(&self, subscription: Subscription) -> Result<Subscription, Error> {
        let shared = self.shared();
        shared.config.network.check_url(&subscription.url)?;
        shared.check_catalog(&subscription)?;
        let state = SubscriptionState::new(subscription, &shared.config)?;
        let version = shared
            .store
            .insert_subscription(&state.subscription)
            .await?;
        let subscription = state.subscription.clone();
        shared.apply(Some(state), subscription.id, version).await;
        Ok(subscription)
    }

    /// Replaces a subscription's settings: URL, event patterns, labels, headers, ordering,
    /// limits, retry policy and description. Returns it as stored.
    ///
    /// Whether it is enabled, its secrets and its health are *not* taken from `subscription`:
    /// they change only through [`enable`](Self::enable), [`disable`](Self::disable),
    /// [`rotate_secret`](Self::rotate_secret) and delivery outcomes. So a copy read before
    /// one of those (here or in another process) can be changed and passed back without
    /// undoing it.
    pub async fn update(&self, subscription: Subscription) -> Result<Subscription, Error> {
        let shared = self.shared();
        shared.config.network.check_url(&subscription.url)?;
        shared.check_catalog(&subscription)?;
        SubscriptionState::new(subscription.clone(), &shared.config)?;
        let id = subscription.id;
        let stored = shared
            .store
            .update_subscription(&subscription)
            .await
            .map_err(not_found(id))?;
        let subscription = shared.applied(stored).await;
        shared.wake.notify_one();
        Ok(subscription)
    }

    /// One subscription, as stored (secrets and disabled state included). Fails with
    /// [`Error::SubscriptionNotFound`] for an unknown id.
    pub async fn subscription(&self, id: SubscriptionId) -> Result<Subscription, Error> {
        self.shared()
            .store
            .subscription(id)
            .await?
            .ok_or(Error::SubscriptionNotFound(id))
    }

    /// Every subscription, oldest first.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, Error> {
        Ok(self.shared().store.subscriptions().await?.value)
    }

    /// Stops deliveries to a subscription; what is pending is kept as skipped.
    pub async fn disable(&self, id: SubscriptionId) -> Result<Subscription, Error> {
        self.shared().disable(id, DisableReason::Manual).await
    }

    /// Resumes deliveries to a disabled subscription (new messages; use `recover` for the
    /// skipped ones). Its health starts afresh.
    pub async fn enable(&self, id: SubscriptionId) -> Result<Subscription, Error> {
        let shared = self.shared();
        let stored = shared
            .store
            .enable_subscription(id)
            .await
            .map_err(not_found(id))?;
        let subscription = shared.applied(stored).await;
        shared.wake.notify_one();
        Ok(subscription)
    }

    /// Deletes a subscription, with its deliveries.
    pub async fn delete(&self, id: SubscriptionId) -> Result<(), Error> {
        let shared = self.shared();
        let Some(version) = shared.store.delete_subscription(id).await? else {
            return Err(Error::SubscriptionNotFound(id));
        };
        shared.apply(None, id, version).await;
        Ok(())
    }

    /// Makes `secret` (or a generated symmetric one) the subscription's secret. The previous one
    /// keeps signing beside it for the rotation overlap (24 h by default), so receivers can
    /// switch without losing a message. The two may be of different kinds: during a rotation
    /// from `whsec_` to an Ed25519 key, requests carry both a `v1,` and a `v1a,` signature.
    ///
    /// Fails with [`Error::SecretCannotSign`] for an Ed25519 public key (`whpk_`), which only
    /// verifies.
    pub async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: Option<Secret>,
    ) -> Result<Subscription, Error> {
        let shared = self.shared();
        let secret = secret.unwrap_or_else(Secret::generate);
        crate::subscription::check_signs(&secret)?;
        let stored = shared
            .store
            .rotate_secret(
                id,
                &secret,
                crate::time::now_millis(),
                shared.config.rotation_overlap,
            )
            .await
            .map_err(not_found(id))?;
        Ok(shared.applied(stored).await)
    }

    /// Sends an event to every subscription that matches it. Returns once the store has
    /// accepted the message; delivery happens in the background.
    ///
    /// An event that no subscription matches is not an error: the message is recorded with no
    /// deliveries.
    ///
    /// Every subscription change that returned before this call, in any process sharing the
    /// store, is taken into account: the store refuses deliveries matched against an older
    /// set of subscriptions, and the runtime then matches again.
    ///
    /// Fails with [`Error::MessageTooLarge`] if the body exceeds
    /// [`Builder::max_message_size`](crate::Builder::max_message_size), storing nothing.
    pub async fn send<E: WebhookEvent + ?Sized>(&self, event: &E) -> Result<MessageId, Error> {
        let message = Message::with_envelope(event, self.shared().config.envelope)?;
        self.send_message_with(&message, &SendOptions::new()).await
    }

    /// [`send`](Self::send) with options: an idempotency key, an ordering key.
    ///
    /// ```no_run
    /// # use serde::Serialize;
    /// # use webhooks::{SendOptions, WebhookEvent, Webhooks};
    /// # #[derive(Serialize, WebhookEvent)]
    /// # #[webhook(resource = "order", action = "paid")]
    /// # struct OrderPaid { order: u64 }
    /// # async fn run(hooks: Webhooks) -> Result<(), webhooks::Error> {
    /// let options = SendOptions::new().idempotency_key("order-42:paid");
    /// let first = hooks.send_with(&OrderPaid { order: 42 }, &options).await?;
    /// let again = hooks.send_with(&OrderPaid { order: 42 }, &options).await?; // stores nothing
    /// assert_eq!(first, again);
    /// # Ok(()) }
    /// ```
    pub async fn send_with<E: WebhookEvent + ?Sized>(
        &self,
        event: &E,
        options: &SendOptions,
    ) -> Result<MessageId, Error> {
        let message = Message::with_envelope(event, self.shared().config.envelope)?;
        self.send_message_with(&message, options).await
    }

    /// Sends a message built beforehand with [`Message::new`].
    pub async fn send_message(&self, message: &Message) -> Result<MessageId, Error> {
        self.send_message_with(message, &SendOptions::new()).await
    }

    /// Sends a message built beforehand, with options. Returns the id of the message stored:
    /// with an idempotency key already used within the window, the first message's.
    pub async fn send_message_with(
        &self,
        message: &Message,
        options: &SendOptions,
    ) -> Result<MessageId, Error> {
        self.enqueue(message, options, None).await
    }

    /// Sends a message to one subscription only, whatever its event patterns and labels: a
    /// test event for the endpoint's owner, or a message meant for one customer. Returns once
    /// the store has accepted it.
    ///
    /// Fails with [`Error::SubscriptionNotFound`] for an unknown id and
    /// [`Error::SubscriptionDisabled`] for a disabled subscription, storing nothing.
    ///
    /// ```no_run
    /// # use serde::Serialize;
    /// # use webhooks::{Message, WebhookEvent, Webhooks, SubscriptionId};
    /// # #[derive(Serialize, WebhookEvent)]
    /// # #[webhook(resource = "random_number", action = "generate")]
    /// # struct RandomNumber(u32);
    /// # async fn run(hooks: Webhooks, id: SubscriptionId) -> Result<(), webhooks::Error> {
    /// let message = Message::new(&RandomNumber(4))?;
    /// hooks.send_to(id, &message).await?; // to this endpoint alone
    /// # Ok(()) }
    /// ```
    pub async fn send_to(
        &self,
        subscription: SubscriptionId,
        message: &Message,
    ) -> Result<MessageId, Error> {
        self.enqueue(message, &SendOptions::new(), Some(subscription))
            .await
    }

    /// Stores a message with its deliveries: to the subscriptions that match it, or to
    /// `target` alone.
    async fn enqueue(
        &self,
        message: &Message,
        options: &SendOptions,
        target: Option<SubscriptionId>,
    ) -> Result<MessageId, Error> {
        let shared = self.shared();
        if *shared.stop.borrow() {
            return Err(Error::ShutDown);
        }
        options.validate()?;
        shared.check_size(message)?;
        let keyed;
        let message = match &options.ordering_key {
            Some(key) => {
                keyed = message.clone().with_ordering_key(key.clone())?;
                &keyed
            }
            None => message,
        };
        let idempotency = options.idempotency_key.as_ref().map(|key| {
            let since = std::time::SystemTime::now()
                .checked_sub(shared.config.idempotency_window)
                .unwrap_or(std::time::UNIX_EPOCH);
            Idempotency::new(key.clone(), since)
        });
        let mut stale = 0;
        loop {
            let (deliveries, version) = match target {
                None => shared.deliveries_for(message),
                Some(id) => match shared.delivery_to(id) {
                    Some(found) => found?,
                    // Perhaps made by another process since our copy was loaded.
                    None if stale == 0 => {
                        stale += 1;
                        shared.reload_subscriptions().await?;
                        continue;
                    }
                    None => return Err(Error::SubscriptionNotFound(id)),
                },
            };
            let mut enqueue = Enqueue::new(message, &deliveries, version);
            if let Some(idempotency) = &idempotency {
                enqueue = enqueue.idempotency(idempotency.clone());
            }
            match shared.store.enqueue(&enqueue).await {
                Ok(Enqueued::Stored) => {
                    shared.observe.sent(deliveries.len());
                    // With too few free slots the dispatcher would not claim anyway; a
                    // completion wakes it once there is room.
                    if !deliveries.is_empty() && shared.slots.can_claim() {
                        shared.wake.notify_one();
                    }
                    return Ok(message.id());
                }
                Ok(Enqueued::Duplicate(first)) => return Ok(first),
                // The subscriptions moved since our copy was loaded (another process changed
                // them): nothing was stored; load them and match again.
                Err(StoreError::Stale { .. }) if stale < MAX_STALE_RETRIES => {
                    stale += 1;
                    shared.reload_subscriptions().await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The deliveries of a message, one per matching subscription.
    pub async fn deliveries(&self, message: MessageId) -> Result<Vec<Delivery>, Error> {
        Ok(self.shared().store.message_deliveries(message).await?)
    }

    /// One delivery, as the log shows it; `None` for an unknown id.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, Error> {
        Ok(self.shared().store.delivery(id).await?)
    }

    /// A message as stored: its event name, labels, ordering key and the exact body its
    /// deliveries send (and that their signatures cover); `None` for an unknown id, or one
    /// purged by retention.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, Error> {
        Ok(self.shared().store.message(id).await?)
    }

    /// The attempts of a delivery, first first.
    pub async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, Error> {
        Ok(self.shared().store.attempts(id).await?)
    }

    /// The delivery log: deliveries matching `query`, newest first, one page at a time (pass
    /// `page.next` to [`DeliveryQuery::after`] for the next).
    pub async fn delivery_log(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, Error> {
        Ok(self.shared().store.query_deliveries(query).await?)
    }

    /// The first page (100, newest first) of everything exhausted or skipped: nothing vanishes
    /// silently. For the next page, pass the page's `next` cursor to
    /// [`undelivered_after`](Self::undelivered_after) until it is `None`:
    ///
    /// ```no_run
    /// # async fn run(hooks: webhooks::Webhooks) -> Result<(), webhooks::Error> {
    /// let mut page = hooks.undelivered().await?;
    /// loop {
    ///     for delivery in &page.items {
    ///         println!("{} {} {}", delivery.id, delivery.status, delivery.event_type);
    ///     }
    ///     let Some(next) = page.next else { break };
    ///     page = hooks.undelivered_after(next).await?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// [`DeliveryQuery::undelivered`] with [`delivery_log`](Self::delivery_log) filters further.
    pub async fn undelivered(&self) -> Result<Page<Delivery>, Error> {
        self.delivery_log(&DeliveryQuery::undelivered()).await
    }

    /// The page of undelivered deliveries after `cursor` (see [`undelivered`](Self::undelivered)).
    pub async fn undelivered_after(
        &self,
        cursor: crate::store::Cursor,
    ) -> Result<Page<Delivery>, Error> {
        self.delivery_log(&DeliveryQuery::undelivered().after(cursor))
            .await
    }

    /// One more attempt of a delivery, now, outside its retry schedule (whatever its status).
    /// Fails if its subscription is disabled (enable it, or use [`recover`](Self::recover)) or
    /// if it is in flight.
    pub async fn redeliver(&self, id: DeliveryId) -> Result<Delivery, Error> {
        let shared = self.shared();
        let delivery = shared
            .store
            .delivery(id)
            .await?
            .ok_or(Error::DeliveryNotFound(id))?;
        let subscription = self.subscription(delivery.subscription_id).await?;
        if !subscription.is_enabled() {
            return Err(Error::SubscriptionDisabled(subscription.id));
        }
        let delivery = shared
            .store
            .redeliver(id, std::time::SystemTime::now())
            .await?;
        shared.wake.notify_one();
        Ok(delivery)
    }

    /// After the owner of an endpoint fixed it: re-enables the subscription and requeues every
    /// exhausted or skipped delivery to it created in `[since, until)`. Returns how many.
    pub async fn recover(
        &self,
        subscription: SubscriptionId,
        since: std::time::SystemTime,
        until: std::time::SystemTime,
    ) -> Result<u64, Error> {
        let shared = self.shared();
        if !self.subscription(subscription).await?.is_enabled() {
            self.enable(subscription).await?;
        }
        let count = shared
            .store
            .recover(subscription, since, until, std::time::SystemTime::now())
            .await
            .map_err(not_found(subscription))?;
        shared.wake.notify_one();
        Ok(count)
    }

    /// Retention: deletes messages older than `age` whose deliveries all succeeded, with their
    /// deliveries and attempts. Undelivered ones are kept until resolved. Returns how many
    /// messages were deleted.
    pub async fn purge(&self, age: Duration) -> Result<u64, Error> {
        let before = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        Ok(self.shared().store.purge(before).await?)
    }

    /// A stream of what happens to deliveries (see [`Notification`]). Each receiver gets every
    /// notification sent after it subscribed; one that lags too far behind misses some and is
    /// told so by `RecvError::Lagged`.
    pub fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.shared().notifications.subscribe()
    }

    /// Stops claiming new work and waits for requests in flight to finish, at most the
    /// shutdown timeout (30 s by default). Work not finished stays in the store: a durable store
    /// delivers it after a restart.
    pub async fn shutdown(&self) {
        self.shared().stop.send_replace(true);
        let dispatcher = self
            .handle
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(dispatcher) = dispatcher
            && let Err(error) = dispatcher.await
        {
            tracing::error!(%error, "the webhook dispatcher ended abnormally");
        }
    }
}

/// How often `send` matches again after the store said the subscriptions moved, before it
/// gives up with [`StoreError::Stale`] (only under a storm of subscription changes).
const MAX_STALE_RETRIES: u32 = 8;

#[cfg(feature = "sqlite")]
impl Webhooks {
    /// A runtime with the defaults on a durable [`SqliteStore`](crate::store::SqliteStore) in
    /// the file at `path` (created if missing): the one-line setup. Use the builder with
    /// [`SqliteStore::open`](crate::store::SqliteStore::open) to change other settings.
    ///
    /// Fails if the file is already open, here or in another process (see
    /// [`SqliteStore`](crate::store::SqliteStore)).
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Webhooks, Error> {
        Webhooks::builder()
            .store(crate::store::SqliteStore::open(path).await?)
            .build()
            .await
    }
}

// The transactional outbox of the PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
impl Webhooks {
    /// Sends an event as part of the application's own transaction on `tx`: the message and its
    /// deliveries are committed, or rolled back, with the application's writes. Nothing is
    /// delivered before the commit; after it, every worker sharing the store is woken
    /// (NOTIFY is delivered on commit), this runtime included.
    ///
    /// The runtime's store must be a [`PostgresStore`](crate::store::PostgresStore) on the same
    /// database; pass the transaction as `&mut tx` (a `sqlx::Transaction<'_, Postgres>`).
    /// Subscriptions are matched as [`send`](Self::send) matches them: if they changed since
    /// this runtime loaded them, it loads them again and matches again, within the same
    /// transaction. If this fails, the transaction is aborted, as after any failed statement:
    /// roll it back.
    ///
    /// The transaction must be READ COMMITTED (PostgreSQL's default). Until it ends it holds a
    /// shared lock on the subscriptions' version, so subscription changes (in any process)
    /// wait for it: keep such transactions short, and do not change subscriptions from inside
    /// one.
    ///
    /// ```no_run
    /// # use serde::Serialize;
    /// # use webhooks::{WebhookEvent, Webhooks, store::PostgresStore};
    /// # #[derive(Serialize, WebhookEvent)]
    /// # #[webhook(resource = "random_number", action = "generate")]
    /// # struct RandomNumber(u32);
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
    /// let pool = store.pool().clone();
    /// let hooks = Webhooks::builder().store(store).build().await?;
    ///
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO numbers (value) VALUES (863)").execute(&mut *tx).await?;
    /// hooks.send_in_tx(&mut tx, &RandomNumber(863)).await?;
    /// tx.commit().await?; // the webhook goes out now, or never if this fails
    /// # Ok(()) }
    /// ```
    pub async fn send_in_tx<E: WebhookEvent + ?Sized>(
        &self,
        tx: &mut sqlx::PgConnection,
        event: &E,
    ) -> Result<MessageId, Error> {
        let shared = self.shared();
        if *shared.stop.borrow() {
            return Err(Error::ShutDown);
        }
        let any = shared.store.as_any();
        let store = any
            .downcast_ref::<crate::store::PostgresStore>()
            .or_else(|| {
                any.downcast_ref::<Arc<crate::store::PostgresStore>>()
                    .map(|shared| &**shared)
            })
            .ok_or_else(|| {
                Error::config(
                    "store",
                    "send_in_tx needs the runtime's store to be a PostgresStore",
                )
            })?;
        let message = Message::with_envelope(event, shared.config.envelope)?;
        shared.check_size(&message)?;
        let mut stale = 0;
        loop {
            let (deliveries, version) = shared.deliveries_for(&message);
            // A stale set is reported without failing the statement, so the application's
            // transaction stays usable for the next try.
            match store
                .enqueue_in(tx, &Enqueue::new(&message, &deliveries, version))
                .await
            {
                Ok(_) => return Ok(message.id()),
                Err(StoreError::Stale { .. }) if stale < MAX_STALE_RETRIES => {
                    stale += 1;
                    shared.reload_subscriptions().await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}
