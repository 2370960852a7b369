//! [`DynStore`]: the object-safe form of [`Store`] that the runtime holds.

use std::time::{Duration, SystemTime};

use super::{
    Attempt, BoxFuture, Change, ClaimRequest, Claimed, Delivery, DeliveryQuery, Enqueue, Enqueued,
    LeaseId, Next, Page, Recorded, Store, StoreError, Versioned,
};
use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};

/// The object-safe form of [`Store`] that the runtime holds (`Arc<dyn DynStore>`), so that
/// `Webhooks` is one type whatever the store.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn insert_subscription<'a>(
        &'a self,
        s: &'a Subscription,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    fn update_subscription<'a>(
        &'a self,
        s: &'a Subscription,
    ) -> BoxFuture<'a, Result<Versioned<Subscription>, StoreError>>;
    fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Versioned<Subscription>, StoreError>>;
    fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> BoxFuture<'_, Result<Versioned<Subscription>, StoreError>>;
    fn rotate_secret<'a>(
        &'a self,
        id: SubscriptionId,
        secret: &'a Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> BoxFuture<'a, Result<Versioned<Subscription>, StoreError>>;
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;
    fn subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Option<Subscription>, StoreError>>;
    fn subscriptions(&self) -> BoxFuture<'_, Result<Versioned<Vec<Subscription>>, StoreError>>;
    fn enqueue<'a>(&'a self, e: &'a Enqueue<'a>) -> BoxFuture<'a, Result<Enqueued, StoreError>>;
    fn claim<'a>(&'a self, r: &'a ClaimRequest) -> BoxFuture<'a, Result<Claimed, StoreError>>;
    fn record_attempt<'a>(
        &'a self,
        lease: LeaseId,
        a: &'a Attempt,
        next: Next,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>>;
    fn next_due(&self, now: SystemTime) -> BoxFuture<'_, Result<Option<SystemTime>, StoreError>>;
    fn delivery(&self, id: DeliveryId) -> BoxFuture<'_, Result<Option<Delivery>, StoreError>>;
    fn message(&self, id: MessageId) -> BoxFuture<'_, Result<Option<Message>, StoreError>>;
    fn message_deliveries(&self, id: MessageId)
    -> BoxFuture<'_, Result<Vec<Delivery>, StoreError>>;
    fn attempts(&self, id: DeliveryId) -> BoxFuture<'_, Result<Vec<Attempt>, StoreError>>;
    fn purge(&self, before: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn changed(&self) -> BoxFuture<'_, Change>;
    fn query_deliveries<'a>(
        &'a self,
        q: &'a DeliveryQuery,
    ) -> BoxFuture<'a, Result<Page<Delivery>, StoreError>>;
    fn redeliver(
        &self,
        id: DeliveryId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<Delivery, StoreError>>;
    fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// The store itself, so that the runtime can reach what one store alone offers
    /// (`Webhooks::send_in_tx` downcasts to `PostgresStore`).
    #[cfg(feature = "postgres")]
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<S: Store> DynStore for S {
    fn insert_subscription<'a>(
        &'a self,
        s: &'a Subscription,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(Store::insert_subscription(self, s))
    }
    fn update_subscription<'a>(
        &'a self,
        s: &'a Subscription,
    ) -> BoxFuture<'a, Result<Versioned<Subscription>, StoreError>> {
        Box::pin(Store::update_subscription(self, s))
    }
    fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Versioned<Subscription>, StoreError>> {
        Box::pin(Store::enable_subscription(self, id))
    }
    fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> BoxFuture<'_, Result<Versioned<Subscription>, StoreError>> {
        Box::pin(Store::disable_subscription(self, id, disabled))
    }
    fn rotate_secret<'a>(
        &'a self,
        id: SubscriptionId,
        secret: &'a Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> BoxFuture<'a, Result<Versioned<Subscription>, StoreError>> {
        Box::pin(Store::rotate_secret(self, id, secret, now, overlap))
    }
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(Store::delete_subscription(self, id))
    }
    fn subscription(
        &self,
        id: SubscriptionId,
    ) -> BoxFuture<'_, Result<Option<Subscription>, StoreError>> {
        Box::pin(Store::subscription(self, id))
    }
    fn subscriptions(&self) -> BoxFuture<'_, Result<Versioned<Vec<Subscription>>, StoreError>> {
        Box::pin(Store::subscriptions(self))
    }
    fn enqueue<'a>(&'a self, e: &'a Enqueue<'a>) -> BoxFuture<'a, Result<Enqueued, StoreError>> {
        Box::pin(Store::enqueue(self, e))
    }
    fn claim<'a>(&'a self, r: &'a ClaimRequest) -> BoxFuture<'a, Result<Claimed, StoreError>> {
        Box::pin(Store::claim(self, r))
    }
    fn record_attempt<'a>(
        &'a self,
        lease: LeaseId,
        a: &'a Attempt,
        next: Next,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>> {
        Box::pin(Store::record_attempt(self, lease, a, next))
    }
    fn next_due(&self, now: SystemTime) -> BoxFuture<'_, Result<Option<SystemTime>, StoreError>> {
        Box::pin(Store::next_due(self, now))
    }
    fn delivery(&self, id: DeliveryId) -> BoxFuture<'_, Result<Option<Delivery>, StoreError>> {
        Box::pin(Store::delivery(self, id))
    }
    fn message(&self, id: MessageId) -> BoxFuture<'_, Result<Option<Message>, StoreError>> {
        Box::pin(Store::message(self, id))
    }
    fn message_deliveries(
        &self,
        id: MessageId,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, StoreError>> {
        Box::pin(Store::message_deliveries(self, id))
    }
    fn attempts(&self, id: DeliveryId) -> BoxFuture<'_, Result<Vec<Attempt>, StoreError>> {
        Box::pin(Store::attempts(self, id))
    }
    fn purge(&self, before: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(Store::purge(self, before))
    }
    fn changed(&self) -> BoxFuture<'_, Change> {
        Box::pin(Store::changed(self))
    }
    fn query_deliveries<'a>(
        &'a self,
        q: &'a DeliveryQuery,
    ) -> BoxFuture<'a, Result<Page<Delivery>, StoreError>> {
        Box::pin(Store::query_deliveries(self, q))
    }
    fn redeliver(
        &self,
        id: DeliveryId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<Delivery, StoreError>> {
        Box::pin(Store::redeliver(self, id, now))
    }
    fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(Store::recover(self, subscription, since, until, now))
    }
    #[cfg(feature = "postgres")]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
