//! `Store for Arc<S>`: one store shared by several runtimes in one process.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    Attempt, Change, ClaimRequest, Claimed, Delivery, DeliveryQuery, Enqueue, Enqueued, LeaseId,
    Next, Page, Recorded, Store, StoreError, Versioned,
};
use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};

/// A shared store is a store: several runtimes (or a runtime and a tool) in one process can
/// use one [`MemoryStore`](super::MemoryStore) or `SqliteStore` as workers on one
/// PostgreSQL do.
///
/// ```
/// # async fn run() -> Result<(), webhooks::Error> {
/// use std::sync::Arc;
/// use webhooks::{Webhooks, store::MemoryStore};
///
/// let store = Arc::new(MemoryStore::new());
/// let web = Webhooks::builder().store(store.clone()).send_only().build().await?;
/// let worker = Webhooks::builder().store(store).build().await?;
/// # web.shutdown().await; worker.shutdown().await;
/// # Ok(()) }
/// ```
impl<S: Store> Store for Arc<S> {
    fn insert_subscription(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        S::insert_subscription(self, subscription)
    }
    fn update_subscription(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send {
        S::update_subscription(self, subscription)
    }
    fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send {
        S::enable_subscription(self, id)
    }
    fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send {
        S::disable_subscription(self, id, disabled)
    }
    fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> impl Future<Output = Result<Versioned<Subscription>, StoreError>> + Send {
        S::rotate_secret(self, id, secret, now, overlap)
    }
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        S::delete_subscription(self, id)
    }
    fn subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<Subscription>, StoreError>> + Send {
        S::subscription(self, id)
    }
    fn subscriptions(
        &self,
    ) -> impl Future<Output = Result<Versioned<Vec<Subscription>>, StoreError>> + Send {
        S::subscriptions(self)
    }
    fn enqueue(
        &self,
        enqueue: &Enqueue<'_>,
    ) -> impl Future<Output = Result<Enqueued, StoreError>> + Send {
        S::enqueue(self, enqueue)
    }
    fn claim(
        &self,
        request: &ClaimRequest,
    ) -> impl Future<Output = Result<Claimed, StoreError>> + Send {
        S::claim(self, request)
    }
    fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send {
        S::record_attempt(self, lease, attempt, next)
    }
    fn next_due(
        &self,
        now: SystemTime,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send {
        S::next_due(self, now)
    }
    fn delivery(
        &self,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send {
        S::delivery(self, id)
    }
    fn message(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Option<Message>, StoreError>> + Send {
        S::message(self, id)
    }
    fn message_deliveries(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send {
        S::message_deliveries(self, id)
    }
    fn attempts(
        &self,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Vec<Attempt>, StoreError>> + Send {
        S::attempts(self, id)
    }
    fn purge(&self, before: SystemTime) -> impl Future<Output = Result<u64, StoreError>> + Send {
        S::purge(self, before)
    }
    fn query_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> impl Future<Output = Result<Page<Delivery>, StoreError>> + Send {
        S::query_deliveries(self, query)
    }
    fn redeliver(
        &self,
        id: DeliveryId,
        now: SystemTime,
    ) -> impl Future<Output = Result<Delivery, StoreError>> + Send {
        S::redeliver(self, id, now)
    }
    fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        S::recover(self, subscription, since, until, now)
    }
    fn changed(&self) -> impl Future<Output = Change> + Send {
        S::changed(self)
    }
}
