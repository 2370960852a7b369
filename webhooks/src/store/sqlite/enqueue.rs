//! Where a delivery is enqueued: `enqueue` hands its message and deliveries to the writer thread
//! (`writer.rs`) and waits for the round that commits them; [`Round::enqueue`] decides, within
//! the round, whether it is stored, stale, a duplicate or a conflict, and lays out its rows for
//! the round's write ([`Writes`]).

use tokio::sync::oneshot;

use super::batch::Cell;
use super::writer::{Job, Round, Writes};
use super::{SqliteStore, writer_gone};
use crate::store::sql::{conflict, json, millis, millis_ceil, not_found};
use crate::store::{
    DeliveryStatus, Enqueue, Enqueued, Entity, Idempotency, NewDelivery, StoreError,
};
use crate::{Message, MessageId};

/// One `enqueue` waiting for its commit.
pub(super) struct EnqueueJob {
    pub(super) message: Message,
    pub(super) deliveries: Vec<NewDelivery>,
    /// The subscriptions' version the deliveries were matched against.
    pub(super) version: u64,
    pub(super) idempotency: Option<Idempotency>,
    pub(super) done: oneshot::Sender<Result<Enqueued, StoreError>>,
}

/// `Store::enqueue`: waits for the round that commits it (or answers it is stale or a duplicate).
pub(super) async fn enqueue(
    store: &SqliteStore,
    enqueue: &Enqueue<'_>,
) -> Result<Enqueued, StoreError> {
    let (done, result) = oneshot::channel();
    let job = EnqueueJob {
        message: enqueue.message.clone(),
        deliveries: enqueue.deliveries.to_vec(),
        version: enqueue.subscriptions_version,
        idempotency: enqueue.idempotency.clone(),
        done,
    };
    store.inner.send(Job::Enqueue(job))?;
    result.await.unwrap_or_else(|_| Err(writer_gone()))
}

impl Round {
    /// Decides an enqueue as committing it alone after the previous ones would, as
    /// [`MemoryStore`](crate::store::MemoryStore) does: its rows are pushed to `writes` if it is
    /// stored.
    pub(super) fn enqueue<'a>(
        &mut self,
        job: &'a EnqueueJob,
        writes: &mut Writes<'a>,
    ) -> Result<Enqueued, StoreError> {
        if job.version != self.version {
            return Err(StoreError::Stale {
                version: self.version,
            });
        }
        if let Some(idempotency) = &job.idempotency
            && let Some((first, at)) = self.keys.get(&idempotency.key)
            && *at >= millis_ceil(idempotency.since)
        {
            return Ok(Enqueued::Duplicate(MessageId::from_uuid(*first)));
        }
        let message = &job.message;
        let id = message.id().as_uuid();
        if self.messages.contains(&id) {
            return Err(conflict(Entity::Message, message.id(), "already exists"));
        }
        for (n, new) in job.deliveries.iter().enumerate() {
            if !self
                .subscriptions
                .contains_key(&new.subscription_id.as_uuid())
            {
                return Err(not_found(Entity::Subscription, new.subscription_id));
            }
            if self.deliveries.contains(&new.id.as_uuid())
                || job.deliveries[..n].iter().any(|d| d.id == new.id)
            {
                return Err(conflict(Entity::Delivery, new.id, "already exists"));
            }
        }
        let labels = json(message.labels())?;
        let created = millis(message.timestamp());
        self.last_seq += 1;
        let seq = self.last_seq;
        self.messages.insert(id);
        writes.messages.push([
            Cell::Int(seq),
            Cell::Id(id),
            Cell::Int(created),
            Cell::Text(message.event_type()),
            Cell::String(labels),
            Cell::Bytes(&message.body()[..]),
            Cell::OptText(message.ordering_key()),
        ]);
        for new in &job.deliveries {
            self.deliveries.insert(new.id.as_uuid());
            // The version matched, so the caller saw the subscription's state; checked again
            // all the same, as the other stores do.
            let disabled = self
                .subscriptions
                .get(&new.subscription_id.as_uuid())
                .copied()
                .unwrap_or(false);
            let (status, due) = if new.skipped || disabled {
                (DeliveryStatus::Skipped, None)
            } else {
                (DeliveryStatus::Pending, Some(created))
            };
            writes.deliveries.push([
                Cell::Id(new.id.as_uuid()),
                Cell::Int(seq),
                Cell::Id(new.subscription_id.as_uuid()),
                Cell::Int(created),
                Cell::Name(status.as_str()),
                Cell::OptInt(due),
                Cell::OptText(message.ordering_key()),
            ]);
        }
        if let Some(idempotency) = &job.idempotency {
            self.keys.insert(idempotency.key.clone(), (id, created));
            writes.keys.push([
                Cell::Text(&idempotency.key),
                Cell::Id(id),
                Cell::Int(created),
            ]);
        }
        Ok(Enqueued::Stored)
    }
}
