//! [`Shared`]: what the dispatcher, the delivery tasks and the handle share, and how the
//! runtime's copy of the subscriptions follows the store's.

use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, broadcast, watch};

use crate::config::Config;
use crate::runtime::observe::Observer;
use crate::runtime::routing::{Routes, SubscriptionState};
use crate::runtime::sender::Sender;
use crate::runtime::slots::RequestSlots;
use crate::store::{DynStore, NewDelivery, StoreError, Versioned};
use crate::subscription::{DisableReason, Disabled};
use crate::{Error, Message, Notification, Subscription, SubscriptionId};

/// What the dispatcher, the delivery tasks and the handle share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) config: Config,
    pub(crate) sender: Sender,
    pub(crate) subscriptions: RwLock<Routes>,
    pub(crate) notifications: broadcast::Sender<Notification>,
    /// New work, or room for more.
    pub(crate) wake: Notify,
    /// The process's request slots, shared fairly among subscriptions, and the count of
    /// deliveries held (claimed and not finished).
    pub(crate) slots: RequestSlots,
    pub(crate) stop: watch::Sender<bool>,
    /// What the runtime reports to the `metrics` facade (nothing without the feature).
    pub(crate) observe: Observer,
}

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

pub(crate) fn not_found(id: SubscriptionId) -> impl FnOnce(StoreError) -> Error {
    move |e| match e {
        StoreError::NotFound {
            entity: crate::store::Entity::Subscription,
            ..
        } => Error::SubscriptionNotFound(id),
        other => Error::Store(other),
    }
}

/// The runtime's view of stored subscriptions.
pub(crate) fn load_subscriptions(stored: Versioned<Vec<Subscription>>, config: &Config) -> Routes {
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
    pub(crate) async fn apply(
        &self,
        state: Option<SubscriptionState>,
        id: SubscriptionId,
        version: u64,
    ) {
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
    pub(crate) async fn applied(&self, stored: Versioned<Subscription>) -> Subscription {
        let subscription = stored.value;
        let id = subscription.id;
        match SubscriptionState::new(subscription.clone(), &self.config) {
            Ok(state) => self.apply(Some(state), id, stored.version).await,
            Err(_) => self.refresh(stored.version).await,
        }
        subscription
    }

    /// Refuses a subscription whose patterns match nothing in the catalog, if one was given.
    pub(crate) fn check_catalog(&self, subscription: &Subscription) -> Result<(), Error> {
        match &self.config.catalog {
            Some(catalog) => catalog.check_patterns(subscription.event_patterns()),
            None => Ok(()),
        }
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

    /// The delivery of a message to subscription `id` alone, with the version of the copy it
    /// was found in: `None` if the copy does not have it, an error if it is disabled.
    pub(crate) fn delivery_to(
        &self,
        id: SubscriptionId,
    ) -> Option<Result<(Vec<NewDelivery>, u64), Error>> {
        let subscriptions = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        let state = subscriptions.get(id)?;
        if !state.subscription.is_enabled() {
            return Some(Err(Error::SubscriptionDisabled(id)));
        }
        Some(Ok((
            vec![NewDelivery::new(id, false)],
            subscriptions.version,
        )))
    }

    /// The catalog of event types subscriptions may name (`Builder::catalog`), if one was given.
    #[cfg(feature = "axum")]
    pub(crate) fn catalog(&self) -> Option<&Arc<crate::Catalog>> {
        self.config.catalog.as_ref()
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
