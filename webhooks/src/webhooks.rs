//! [`Webhooks`]: the handle applications keep, and its [`Builder`].

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::{AutoDisable, Config};
use crate::rate_limit::RateLimiter;
use crate::routing::Routes;
use crate::sender::{Sender, SenderConfig};
use crate::ssrf::NetworkPolicy;
use crate::store::{
    Attempt, Delivery, DeliveryQuery, DynStore, Enqueue, Enqueued, Idempotency, NewDelivery, Page,
    Store, StoreError, Versioned,
};
use crate::subscription::{DisableReason, Disabled};
use crate::{
    DeliveryId, Envelope, Error, EventPattern, Message, MessageId, Notification, RetryPolicy,
    Secret, SendOptions, Subscription, SubscriptionId, WebhookEvent,
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

/// What the dispatcher, the delivery tasks and the handle share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) config: Config,
    pub(crate) sender: Sender,
    pub(crate) subscriptions: RwLock<Routes>,
    pub(crate) notifications: broadcast::Sender<Notification>,
    /// New work, or room for more.
    pub(crate) wake: Notify,
    /// Slots for deliveries held (claimed and not finished), across subscriptions: twice
    /// `max_in_flight`, so that the next batch is claimed while the current one is sent and a
    /// store round trip never leaves the connections idle.
    pub(crate) global: Arc<tokio::sync::Semaphore>,
    /// Slots for requests in flight: `max_in_flight`.
    pub(crate) sending: tokio::sync::Semaphore,
    pub(crate) stop: watch::Sender<bool>,
}

/// A subscription as the runtime holds it: compiled patterns, and its share of the limits.
pub(crate) struct SubscriptionState {
    pub(crate) subscription: Subscription,
    pub(crate) patterns: Vec<EventPattern>,
    /// At most this many held (claimed and not finished): its limit on requests in flight,
    /// which the store's claim also enforces over every worker.
    pub(crate) hold: usize,
    pub(crate) held: std::sync::atomic::AtomicUsize,
    /// Its limit on requests in flight.
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) limiter: Option<Mutex<RateLimiter>>,
}

/// How many deliveries are held for `in_flight` requests: twice as many, so that claiming the
/// next batch overlaps sending the current one.
pub(crate) fn hold_capacity(in_flight: usize) -> usize {
    in_flight.saturating_mul(2)
}

impl Shared {
    /// Whether enough global slots are free for the dispatcher to claim: all of them, or a
    /// quarter, so that claims come in batches rather than one per completion.
    pub(crate) fn can_claim(&self) -> bool {
        let max = hold_capacity(self.config.max_in_flight);
        let available = self.global.available_permits();
        available == max || available >= (max / 4).max(1)
    }
}

impl SubscriptionState {
    /// Whether this subscription has room enough to be claimed for: idle, or a quarter of its
    /// slots free (the same hysteresis as [`Shared::can_claim`]).
    pub(crate) fn can_claim(&self) -> bool {
        let held = self.held.load(std::sync::atomic::Ordering::Acquire);
        held == 0 || self.hold.saturating_sub(held) >= (self.hold / 4).max(1)
    }

    pub(crate) fn new(subscription: Subscription, config: &Config) -> Result<Self, Error> {
        let patterns = subscription.validate()?;
        // The store leases at most this many of its deliveries over all workers (and, when it
        // is ordered, one per ordering key); in this process it is also the request limit.
        let limit = subscription
            .max_in_flight
            .unwrap_or(config.max_in_flight_per_subscription)
            .max(1);
        let hold = limit;
        Ok(SubscriptionState {
            limiter: subscription
                .rate_limit
                .map(|r| Mutex::new(RateLimiter::new(r, Instant::now()))),
            subscription,
            patterns,
            hold,
            held: Default::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
        })
    }

    /// When the rate limiter lets the next request go, if it is later than `now`.
    pub(crate) fn rate_limited_until(&self, now: Instant) -> Option<Instant> {
        let limiter = self.limiter.as_ref()?;
        let ready = limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ready_at(now);
        (ready > now).then_some(ready)
    }
}

/// Configures and starts a [`Webhooks`] runtime.
pub struct Builder {
    store: Option<Arc<dyn DynStore>>,
    config: Config,
}

impl Webhooks {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder {
            store: None,
            config: Config::default(),
        }
    }
}

impl Builder {
    /// Where state lives. Required.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The body's shape (default [`Envelope::Compact`]).
    pub fn envelope(mut self, envelope: Envelope) -> Self {
        self.config.envelope = envelope;
        self
    }

    /// The retry policy of subscriptions that have none of their own.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Which destinations may be reached (default: public addresses only, http and https).
    pub fn network_policy(mut self, policy: NetworkPolicy) -> Self {
        self.config.network = policy;
        self
    }

    /// Allows private, loopback and other special addresses: for development and tests only.
    pub fn allow_private_networks(mut self) -> Self {
        self.config.network = self.config.network.allow_private_networks();
        self
    }

    /// Refuses plain `http` endpoints.
    pub fn https_only(mut self) -> Self {
        self.config.network = self.config.network.https_only();
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long a whole request may take, answer included (default 15 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Requests in flight at once, over every subscription (default 512).
    ///
    /// The runtime claims up to twice as many deliveries from the store, so that the next
    /// batch is ready when a request ends; the requests themselves never exceed this.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Requests in flight at once to one subscription, unless it sets its own (default 64).
    pub fn max_in_flight_per_subscription(mut self, max: usize) -> Self {
        self.config.max_in_flight_per_subscription = max;
        self
    }

    /// How long a claimed delivery stays reserved for this worker (default 60 s). A worker that
    /// dies holds its deliveries this long at most.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How often an idle worker looks for due work it was not told about (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How much of a response body is kept with the attempt (default 16 KiB).
    pub fn response_body_limit(mut self, bytes: usize) -> Self {
        self.config.response_body_limit = bytes;
        self
    }

    /// The least wait after a `429 Too Many Requests` or a timeout (default 60 s).
    pub fn slow_down_floor(mut self, floor: Duration) -> Self {
        self.config.slow_down_floor = floor;
        self
    }

    /// The longest `Retry-After` honoured (default 24 h); longer ones are cut to it.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// When failing subscriptions are disabled (default: failing for 5 days).
    pub fn auto_disable(mut self, rule: AutoDisable) -> Self {
        self.config.auto_disable = rule;
        self
    }

    /// How long a rotated-out secret keeps signing beside the new one (default 24 h).
    pub fn rotation_overlap(mut self, overlap: Duration) -> Self {
        self.config.rotation_overlap = overlap;
        self
    }

    /// Delivered messages older than this are purged automatically, hourly (default 30 days;
    /// `None` keeps everything). Undelivered ones are kept until resolved.
    pub fn retention(mut self, age: Option<Duration>) -> Self {
        self.config.retention = age;
        self
    }

    /// How long `shutdown` waits for requests in flight (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// The largest message body `send` accepts, in bytes (default 1 MiB). A larger one is
    /// refused with [`Error::MessageTooLarge`] before anything is stored. For scale: Svix caps
    /// a payload at about 350 KB, Hook0 at 512 KiB, and many receivers refuse bodies over
    /// 1 MiB; a large document is better sent as a link the receiver fetches.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// How long an idempotency key is remembered (default 24 h; see
    /// [`SendOptions::idempotency_key`]). At most the retention, which purges older keys.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.config.idempotency_window = window;
        self
    }

    /// Only enqueue: start no delivery workers in this process. With a store shared by several
    /// processes (PostgreSQL), web servers can send while dedicated worker processes deliver.
    pub fn send_only(mut self) -> Self {
        self.config.send_only = true;
        self
    }

    /// Starts the runtime: loads the subscriptions and spawns the workers on the current tokio
    /// runtime.
    pub async fn build(self) -> Result<Webhooks, Error> {
        let store = self
            .store
            .ok_or_else(|| Error::config("store", "no store: call `.store(...)` on the builder"))?;
        let config = self.config;
        config.validate()?;
        let sender = Sender::new(SenderConfig {
            policy: config.network.clone(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            body_limit: config.response_body_limit,
            user_agent: concat!("webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        })?;
        let subscriptions = load_subscriptions(store.subscriptions().await?, &config);
        let (notifications, _) = broadcast::channel(config.notification_capacity);
        let config_max_in_flight = config.max_in_flight;
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            config,
            sender,
            subscriptions: RwLock::new(subscriptions),
            notifications,
            wake: Notify::new(),
            global: Arc::new(tokio::sync::Semaphore::new(hold_capacity(
                config_max_in_flight,
            ))),
            sending: tokio::sync::Semaphore::new(config_max_in_flight),
            stop,
        });
        // A send-only process starts no dispatcher: other processes deliver.
        let dispatcher =
            (!shared.config.send_only).then(|| tokio::spawn(crate::dispatch::run(shared.clone())));
        Ok(Webhooks {
            handle: Arc::new(Handle {
                shared,
                dispatcher: Mutex::new(dispatcher),
            }),
        })
    }
}

impl AutoDisable {
    /// Whether a subscription with this health must be disabled now, and why.
    pub(crate) fn verdict(
        &self,
        health: &crate::store::Health,
        now: std::time::SystemTime,
    ) -> Option<DisableReason> {
        if let (Some(limit), Some(since)) = (self.after_failing_for, health.failing_since)
            && now.duration_since(since).is_ok_and(|d| d >= limit)
        {
            return Some(DisableReason::FailingSince(since));
        }
        match self.after_exhausted {
            Some(n) if health.consecutive_exhausted >= n => Some(
                DisableReason::ConsecutiveExhausted(health.consecutive_exhausted),
            ),
            _ => None,
        }
    }
}

impl Webhooks {
    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Stores a subscription and starts delivering to it. Returns it as stored.
    ///
    /// Fails if its patterns, headers or limits are invalid, or if its URL names an address the
    /// network policy refuses (IP literals are checked here; names when they are resolved).
    pub async fn subscribe(&self, subscription: Subscription) -> Result<Subscription, Error> {
        let shared = self.shared();
        shared.config.network.check_url(&subscription.url)?;
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

    /// One subscription.
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

    /// Makes `secret` (or a generated one) the subscription's secret. The previous one keeps
    /// signing beside it for the rotation overlap (24 h by default), so receivers can switch
    /// without losing a message.
    pub async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: Option<Secret>,
    ) -> Result<Subscription, Error> {
        let shared = self.shared();
        let secret = secret.unwrap_or_else(Secret::generate);
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
    /// [`Builder::max_message_size`], storing nothing.
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
            let (deliveries, version) = shared.deliveries_for(message);
            let mut enqueue = Enqueue::new(message, &deliveries, version);
            if let Some(idempotency) = &idempotency {
                enqueue = enqueue.idempotency(idempotency.clone());
            }
            match shared.store.enqueue(&enqueue).await {
                Ok(Enqueued::Stored) => {
                    // With too few free slots the dispatcher would not claim anyway; a
                    // completion wakes it once there is room.
                    if !deliveries.is_empty() && shared.can_claim() {
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

    /// One delivery.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, Error> {
        Ok(self.shared().store.delivery(id).await?)
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

/// Whether two versions of a subscription behave the same (so its runtime state can be kept).
fn same_settings(a: &Subscription, b: &Subscription) -> bool {
    a.url == b.url
        && a.events == b.events
        && a.labels == b.labels
        && a.headers == b.headers
        && a.ordered == b.ordered
        && a.rate_limit == b.rate_limit
        && a.max_in_flight == b.max_in_flight
        && a.retry == b.retry
        && a.disabled == b.disabled
        && a.secrets == b.secrets
}

fn not_found(id: SubscriptionId) -> impl FnOnce(StoreError) -> Error {
    move |e| match e {
        StoreError::NotFound {
            entity: crate::store::Entity::Subscription,
            ..
        } => Error::SubscriptionNotFound(id),
        other => Error::Store(other),
    }
}

/// The runtime's view of stored subscriptions.
fn load_subscriptions(stored: Versioned<Vec<Subscription>>, config: &Config) -> Routes {
    let mut subscriptions = Routes::default();
    subscriptions.version = stored.version;
    for subscription in stored.value {
        let id = subscription.id;
        match SubscriptionState::new(subscription, config) {
            Ok(state) => {
                subscriptions.insert(Arc::new(state));
            }
            // Stored by an older version with looser rules: keep serving the others.
            Err(error) => {
                tracing::error!(subscription = %id, %error, "invalid stored subscription ignored")
            }
        }
    }
    subscriptions
}

impl Shared {
    /// Reloads the subscriptions from the store (another process changed them). States of
    /// unchanged subscriptions are kept, so their in-flight counts stay right.
    pub(crate) async fn reload_subscriptions(&self) -> Result<(), Error> {
        let stored = self.store.subscriptions().await?;
        let fresh = load_subscriptions(stored, &self.config);
        let mut cache = self
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        // A concurrent reload may have brought a newer set already.
        if fresh.version < cache.version {
            return Ok(());
        }
        let old = std::mem::take(&mut *cache);
        let version = fresh.version;
        *cache = fresh
            .iter()
            .map(|state| {
                old.get(state.subscription.id)
                    .filter(|o| same_settings(&o.subscription, &state.subscription))
                    .unwrap_or(state)
                    .clone()
            })
            .collect();
        cache.version = version;
        Ok(())
    }

    /// Reloads the subscriptions if the store's `version` is newer than the copy's.
    pub(crate) async fn refresh(&self, version: u64) {
        let current = self
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .version;
        if version > current
            && let Err(error) = self.reload_subscriptions().await
        {
            tracing::warn!(%error, "could not reload webhook subscriptions");
        }
    }

    /// Applies a change this process made (`state` of subscription `id`, or its deletion) that
    /// took the store to `version`: in place when it is the next version, by a reload when
    /// another change came between.
    async fn apply(&self, state: Option<SubscriptionState>, id: SubscriptionId, version: u64) {
        {
            let mut cache = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if version <= cache.version {
                return; // a reload brought it already
            }
            if version == cache.version + 1 {
                match state {
                    Some(state) => cache.insert(Arc::new(state)),
                    None => {
                        cache.remove(id);
                    }
                }
                cache.version = version;
                return;
            }
        }
        self.refresh(version).await;
    }

    /// [`apply`](Self::apply) for a subscription as the store returned it; returns it.
    async fn applied(&self, stored: Versioned<Subscription>) -> Subscription {
        let subscription = stored.value;
        let id = subscription.id;
        match SubscriptionState::new(subscription.clone(), &self.config) {
            Ok(state) => self.apply(Some(state), id, stored.version).await,
            Err(_) => self.refresh(stored.version).await,
        }
        subscription
    }

    /// Refuses a message larger than the configured limit.
    pub(crate) fn check_size(&self, message: &Message) -> Result<(), Error> {
        let size = message.body().len();
        let limit = self.config.max_message_size;
        if size > limit {
            return Err(Error::MessageTooLarge {
                event_type: message.event_type().to_owned(),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// The deliveries of a message: one per matching subscription, skipped if it is disabled,
    /// and the version of the subscriptions they were matched against. (Shared by
    /// `send_message` and `send_in_tx`.)
    pub(crate) fn deliveries_for(&self, message: &Message) -> (Vec<NewDelivery>, u64) {
        let subscriptions = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        let deliveries = subscriptions
            .matching(message)
            .into_iter()
            .map(|state| NewDelivery::new(state.subscription.id, !state.subscription.is_enabled()))
            .collect();
        (deliveries, subscriptions.version)
    }

    pub(crate) fn subscription_state(&self, id: SubscriptionId) -> Option<Arc<SubscriptionState>> {
        self.subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Disables a subscription in the store and the cache, and tells the listeners.
    pub(crate) async fn disable(
        &self,
        id: SubscriptionId,
        reason: DisableReason,
    ) -> Result<Subscription, Error> {
        let disabled = Disabled {
            at: crate::time::now_millis(),
            reason: reason.clone(),
        };
        let stored = self
            .store
            .disable_subscription(id, disabled)
            .await
            .map_err(not_found(id))?;
        let subscription = self.applied(stored).await;
        if reason != DisableReason::Manual {
            tracing::warn!(subscription = %id, %reason, "subscription disabled");
        }
        let _ = self.notifications.send(Notification::SubscriptionDisabled {
            subscription: id,
            reason,
        });
        Ok(subscription)
    }
}

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
    /// Subscriptions are matched as [`send`](Self::send) matches them; one deleted meanwhile is
    /// left out rather than failing the transaction. If this fails, the transaction is aborted,
    /// as after any failed statement: roll it back.
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
