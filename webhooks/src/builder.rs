//! [`Builder`]: configures and starts a [`Webhooks`] runtime.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

use crate::config::{AutoDisable, Config};
use crate::runtime::observe::Observer;
use crate::runtime::sender::{Sender, SenderConfig};
use crate::runtime::shared::{Shared, load_subscriptions};
use crate::runtime::slots::RequestSlots;
use crate::ssrf::NetworkPolicy;
use crate::store::{DynStore, Store};
use crate::{Envelope, Error, RetryPolicy, Webhooks};

/// Configures and starts a [`Webhooks`] runtime.
#[must_use = "a Builder does nothing until `.build().await`"]
pub struct Builder {
    store: Option<Arc<dyn DynStore>>,
    config: Config,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("store", &self.store.as_ref().map(|_| "set"))
            .field("config", &self.config)
            .finish()
    }
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
    /// batch is ready when a request ends; the requests themselves never exceed this. They are
    /// shared fairly among the subscriptions that have work: one may use more than its share
    /// only while the others do not need it, so a slow endpoint cannot take every slot.
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
    /// [`SendOptions::idempotency_key`](crate::SendOptions::idempotency_key)). At most the retention, which purges older keys.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.config.idempotency_window = window;
        self
    }

    /// The event types this application sends: `subscribe` and `update` then refuse a
    /// pattern that matches none of them ([`Error::UnknownEventType`], with the nearest name
    /// suggested), so a typo fails where it is made instead of silently receiving nothing.
    ///
    /// ```
    /// # use serde::Serialize;
    /// # use webhooks::{Catalog, Error, Subscription, WebhookEvent, Webhooks, store::MemoryStore};
    /// # #[derive(Serialize, WebhookEvent)]
    /// # #[webhook(resource = "random_number", action = "generate")]
    /// # struct RandomNumber(u32);
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), webhooks::Error> {
    /// let hooks = Webhooks::builder()
    ///     .store(MemoryStore::new())
    ///     .catalog(Catalog::new().event::<RandomNumber>())
    ///     .build()
    ///     .await?;
    /// let typo = Subscription::new("https://example.com/hooks")?.events(["random_numbr:generate"]);
    /// let error = hooks.subscribe(typo).await.unwrap_err();
    /// assert!(matches!(
    ///     error,
    ///     Error::UnknownEventType { suggestion: Some(ref s), .. } if s == "random_number:generate"
    /// ));
    /// # hooks.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn catalog(mut self, catalog: crate::Catalog) -> Self {
        self.config.catalog = Some(Arc::new(catalog));
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
            slots: RequestSlots::new(config_max_in_flight),
            stop,
            observe: Observer::default(),
        });
        // A send-only process starts no dispatcher: other processes deliver.
        let dispatcher = (!shared.config.send_only)
            .then(|| tokio::spawn(crate::runtime::dispatch::run(shared.clone())));
        Ok(Webhooks::from_parts(shared, dispatcher))
    }
}
