//! [`MemoryStore`]: everything in RAM. For tests, demos and applications that can afford to lose
//! undelivered webhooks on restart; the durable stores implement the same contract.
//!
//! One file past 600 lines on purpose: it is the reference implementation of the contract, and
//! every operation reads and writes the same maps under one lock, so the rules are read in one
//! place.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{
    Attempt, Claim, ClaimRequest, Claimed, Cursor, Delivery, DeliveryQuery, DeliveryStatus,
    Enqueue, Enqueued, Entity, Health, LeaseId, Next, ORDERED_WINDOW, Page, QueueStats, Recorded,
    Store, StoreError, Versioned,
};
use crate::runtime::rate_limit::Slots;
use crate::subscription::Disabled;
use crate::{DeliveryId, Message, MessageId, Secret, Subscription, SubscriptionId};

/// A [`Store`] in memory. Nothing survives the process.
///
/// ```
/// # async fn run() -> Result<(), webhooks::Error> {
/// use webhooks::{Webhooks, store::MemoryStore};
///
/// let hooks = Webhooks::builder().store(MemoryStore::new()).build().await?;
/// # hooks.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Subscriptions by id; UUID v7 ids sort oldest first.
    subscriptions: BTreeMap<SubscriptionId, (Subscription, Health)>,
    /// The version of the subscriptions: one more with every change.
    version: u64,
    /// Leased deliveries per subscription (every claim's), for its `max_in_flight`.
    leases_by_subscription: HashMap<SubscriptionId, usize>,
    /// A rate-limited subscription's next free send slot, in unix microseconds.
    next_slot: HashMap<SubscriptionId, u64>,
    /// Idempotency keys: the message stored with each, and when.
    keys: HashMap<String, (MessageId, SystemTime)>,
    messages: HashMap<MessageId, Message>,
    deliveries: HashMap<DeliveryId, Record>,
    by_message: HashMap<MessageId, Vec<DeliveryId>>,
    /// The unfinished deliveries of each subscription that has any, in id order: claims go
    /// round them from where the last one stopped.
    queues: BTreeMap<SubscriptionId, Queue>,
    /// Leased deliveries and when their lease lapses.
    leased: HashMap<DeliveryId, SystemTime>,
    /// The same leases by when they lapse, so that a claim finds the lapsed ones without
    /// reading every lease.
    lapses: BTreeSet<(SystemTime, DeliveryId)>,
    next_seq: u64,
    /// The subscription after which the next claim starts, so that every one gets its turn.
    rotation: Option<SubscriptionId>,
}

struct Record {
    delivery: Delivery,
    /// Send order of the message: what ordered subscriptions follow.
    seq: u64,
    lease: Option<(LeaseId, SystemTime)>,
    /// Requeued by hand (redeliver, recover) and not attempted since: shown as pending.
    requeued: bool,
    attempts: Vec<Attempt>,
}

#[derive(Default)]
struct Queue {
    /// Unleased, unfinished deliveries by (due, seq).
    ready: BTreeSet<(SystemTime, u64, DeliveryId)>,
    /// Every unfinished delivery (leased or not) by seq: the first is an ordered
    /// subscription's head.
    unfinished: BTreeSet<(u64, DeliveryId)>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("subscriptions", &inner.subscriptions.len())
            .field("messages", &inner.messages.len())
            .field("deliveries", &inner.deliveries.len())
            .field("leased", &inner.leased.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the store, so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The status as shown: the stored state, plus in flight (leased) and failed (retrying).
fn view(record: &Record) -> Delivery {
    let mut delivery = record.delivery.clone();
    if delivery.status == DeliveryStatus::Pending {
        if record.lease.is_some() {
            delivery.status = DeliveryStatus::InFlight;
        } else if delivery.attempts > 0 && !record.requeued {
            delivery.status = DeliveryStatus::Failed;
        }
    }
    delivery
}

fn not_found(entity: Entity, id: impl ToString) -> StoreError {
    StoreError::not_found(entity, id)
}

impl Inner {
    /// A subscription changed: the next version.
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Forgets a delivery's lease.
    fn unlease(&mut self, id: DeliveryId) {
        if let Some(until) = self.leased.remove(&id)
            && self.lapses.remove(&(until, id))
            && let Some(record) = self.deliveries.get(&id)
            && let Some(count) = self
                .leases_by_subscription
                .get_mut(&record.delivery.subscription_id)
        {
            *count = count.saturating_sub(1);
        }
        if let Some(record) = self.deliveries.get_mut(&id) {
            record.lease = None;
        }
    }

    /// Leased deliveries of a subscription.
    fn leases_of(&self, subscription: SubscriptionId) -> usize {
        self.leases_by_subscription
            .get(&subscription)
            .copied()
            .unwrap_or(0)
    }

    /// Takes a delivery out of its subscription's queue, keeping any lease (a disabled
    /// subscription's delivery in flight stays leased until its attempt is recorded).
    fn dequeue(&mut self, id: DeliveryId, status: DeliveryStatus) {
        let Some(record) = self.deliveries.get_mut(&id) else {
            return;
        };
        let sub = record.delivery.subscription_id;
        if let Some(queue) = self.queues.get_mut(&sub) {
            if let Some(due) = record.delivery.next_attempt_at {
                queue.ready.remove(&(due, record.seq, id));
            }
            queue.unfinished.remove(&(record.seq, id));
            if queue.unfinished.is_empty() {
                self.queues.remove(&sub);
            }
        }
        record.delivery.status = status;
        record.delivery.next_attempt_at = None;
    }

    /// Ends a delivery's life in the queue (delivered, exhausted, skipped).
    fn finish(&mut self, id: DeliveryId, status: DeliveryStatus) {
        self.dequeue(id, status);
        self.unlease(id);
    }

    /// Makes a delivery due at `now` again, whatever its state (not in flight).
    fn requeue(&mut self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        let record = self
            .deliveries
            .get_mut(&id)
            .ok_or_else(|| not_found(Entity::Delivery, id))?;
        if record.lease.is_some() {
            return Err(StoreError::conflict(Entity::Delivery, id, "is in flight"));
        }
        let queue = self
            .queues
            .entry(record.delivery.subscription_id)
            .or_default();
        if let Some(due) = record.delivery.next_attempt_at {
            queue.ready.remove(&(due, record.seq, id));
        }
        queue.ready.insert((now, record.seq, id));
        queue.unfinished.insert((record.seq, id));
        record.delivery.status = DeliveryStatus::Pending;
        record.delivery.next_attempt_at = Some(now);
        record.requeued = true;
        Ok(view(record))
    }

    /// Makes deliveries whose lease lapsed claimable again.
    fn reclaim_lapsed(&mut self, now: SystemTime) {
        let lapsed: Vec<DeliveryId> = self
            .lapses
            .iter()
            .take_while(|(until, _)| *until <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in lapsed {
            self.unlease(id);
            // A skipped one (its subscription was disabled meanwhile) stays out of the queue.
            if let Some(record) = self.deliveries.get_mut(&id)
                && record.delivery.status == DeliveryStatus::Pending
                && let (Some(due), Some(queue)) = (
                    record.delivery.next_attempt_at,
                    self.queues.get_mut(&record.delivery.subscription_id),
                )
            {
                queue.ready.insert((due, record.seq, id));
            }
        }
    }

    fn lease(
        &mut self,
        id: DeliveryId,
        request: &ClaimRequest,
        not_before: Option<SystemTime>,
        out: &mut Vec<Claim>,
    ) {
        let Some(record) = self.deliveries.get_mut(&id) else {
            return;
        };
        let Some(message) = self.messages.get(&record.delivery.message_id) else {
            return;
        };
        if let (Some(due), Some(queue)) = (
            record.delivery.next_attempt_at,
            self.queues.get_mut(&record.delivery.subscription_id),
        ) {
            queue.ready.remove(&(due, record.seq, id));
        }
        let lease = LeaseId::new();
        // The builder keeps leases to at most a day; an unrepresentable one must not panic.
        let until = request
            .now
            .checked_add(request.lease)
            .unwrap_or(request.now);
        record.lease = Some((lease, until));
        let sub = record.delivery.subscription_id;
        out.push(Claim {
            delivery: view(record),
            message: message.clone(),
            lease,
            lease_until: until,
            not_before,
        });
        if let Some(before) = self.leased.insert(id, until) {
            self.lapses.remove(&(before, id));
        }
        self.lapses.insert((until, id));
        *self.leases_by_subscription.entry(sub).or_default() += 1;
    }
}

impl Store for MemoryStore {
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        if inner.subscriptions.contains_key(&subscription.id) {
            return Err(StoreError::conflict(
                Entity::Subscription,
                subscription.id,
                "already exists",
            ));
        }
        inner
            .subscriptions
            .insert(subscription.id, (subscription.clone(), Health::default()));
        Ok(inner.bump())
    }

    async fn update_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let mut inner = self.lock();
        let entry = inner
            .subscriptions
            .get_mut(&subscription.id)
            .ok_or_else(|| not_found(Entity::Subscription, subscription.id))?;
        entry.0.set_settings(subscription);
        let stored = entry.0.clone();
        Ok(Versioned::new(stored, inner.bump()))
    }

    async fn enable_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let mut inner = self.lock();
        let entry = inner
            .subscriptions
            .get_mut(&id)
            .ok_or_else(|| not_found(Entity::Subscription, id))?;
        if entry.0.disabled.take().is_some() {
            entry.1 = Health::default();
        }
        let stored = entry.0.clone();
        Ok(Versioned::new(stored, inner.bump()))
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        disabled: Disabled,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let mut inner = self.lock();
        let entry = inner
            .subscriptions
            .get_mut(&id)
            .ok_or_else(|| not_found(Entity::Subscription, id))?;
        entry.0.disabled = Some(disabled);
        let subscription = entry.0.clone();
        let waiting: Vec<DeliveryId> = inner
            .queues
            .get(&id)
            .map(|q| q.unfinished.iter().map(|(_, d)| *d).collect())
            .unwrap_or_default();
        // In flight ones too: their attempt is still recorded, and only a success changes
        // them from skipped (see the module docs of `store`).
        for delivery in waiting {
            inner.dequeue(delivery, DeliveryStatus::Skipped);
        }
        Ok(Versioned::new(subscription, inner.bump()))
    }

    async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &Secret,
        now: SystemTime,
        overlap: Duration,
    ) -> Result<Versioned<Subscription>, StoreError> {
        let mut inner = self.lock();
        let entry = inner
            .subscriptions
            .get_mut(&id)
            .ok_or_else(|| not_found(Entity::Subscription, id))?;
        entry.0.rotate(secret.clone(), now, overlap);
        let stored = entry.0.clone();
        Ok(Versioned::new(stored, inner.bump()))
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<Option<u64>, StoreError> {
        let mut inner = self.lock();
        if inner.subscriptions.remove(&id).is_none() {
            return Ok(None);
        }
        inner.queues.remove(&id);
        inner.leases_by_subscription.remove(&id);
        inner.next_slot.remove(&id);
        let gone: Vec<DeliveryId> = inner
            .deliveries
            .iter()
            .filter(|(_, r)| r.delivery.subscription_id == id)
            .map(|(d, _)| *d)
            .collect();
        for delivery in gone {
            if let Some(until) = inner.leased.remove(&delivery) {
                inner.lapses.remove(&(until, delivery));
            }
            if let Some(record) = inner.deliveries.remove(&delivery)
                && let Some(list) = inner.by_message.get_mut(&record.delivery.message_id)
            {
                list.retain(|d| *d != delivery);
            }
        }
        Ok(Some(inner.bump()))
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Ok(self.lock().subscriptions.get(&id).map(|(s, _)| s.clone()))
    }

    async fn subscriptions(&self) -> Result<Versioned<Vec<Subscription>>, StoreError> {
        let inner = self.lock();
        let subscriptions = inner
            .subscriptions
            .values()
            .map(|(s, _)| s.clone())
            .collect();
        Ok(Versioned::new(subscriptions, inner.version))
    }

    async fn enqueue(&self, enqueue: &Enqueue<'_>) -> Result<Enqueued, StoreError> {
        let (message, deliveries) = (enqueue.message, enqueue.deliveries);
        let mut inner = self.lock();
        if enqueue.subscriptions_version != inner.version {
            return Err(StoreError::Stale {
                version: inner.version,
            });
        }
        if let Some(idempotency) = &enqueue.idempotency
            && let Some((first, at)) = inner.keys.get(&idempotency.key)
            && *at >= idempotency.since
        {
            return Ok(Enqueued::Duplicate(*first));
        }
        let id = message.id();
        if inner.messages.contains_key(&id) {
            return Err(StoreError::conflict(Entity::Message, id, "already exists"));
        }
        let mut fresh = HashSet::with_capacity(deliveries.len());
        for new in deliveries {
            if !inner.subscriptions.contains_key(&new.subscription_id) {
                return Err(not_found(Entity::Subscription, new.subscription_id));
            }
            // A reused id would leave two queue entries for one record.
            if inner.deliveries.contains_key(&new.id) || !fresh.insert(new.id) {
                return Err(StoreError::conflict(
                    Entity::Delivery,
                    new.id,
                    "already exists",
                ));
            }
        }
        if let Some(idempotency) = &enqueue.idempotency {
            inner
                .keys
                .insert(idempotency.key.clone(), (id, message.timestamp()));
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let now = message.timestamp();
        inner.messages.insert(id, message.clone());
        let mut ids = Vec::with_capacity(deliveries.len());
        for new in deliveries {
            // The version matched, so the caller saw the subscription's state; checked again
            // all the same, as the SQL stores do in their statement.
            let skipped = new.skipped
                || inner
                    .subscriptions
                    .get(&new.subscription_id)
                    .is_some_and(|(s, _)| s.disabled.is_some());
            let status = if skipped {
                DeliveryStatus::Skipped
            } else {
                DeliveryStatus::Pending
            };
            let due = (!skipped).then_some(now);
            let delivery = Delivery {
                id: new.id,
                message_id: id,
                subscription_id: new.subscription_id,
                event_type: message.event_type().to_owned(),
                status,
                attempts: 0,
                next_attempt_at: due,
                created_at: now,
                last_attempt_at: None,
            };
            if let Some(due) = due {
                let queue = inner.queues.entry(new.subscription_id).or_default();
                queue.ready.insert((due, seq, new.id));
                queue.unfinished.insert((seq, new.id));
            }
            inner.deliveries.insert(
                new.id,
                Record {
                    delivery,
                    seq,
                    lease: None,
                    requeued: false,
                    attempts: Vec::new(),
                },
            );
            ids.push(new.id);
        }
        inner.by_message.insert(id, ids);
        Ok(Enqueued::Stored)
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let mut inner = self.lock();
        let now = request.now;
        inner.reclaim_lapsed(now);
        // The exclusions, sorted (the runtime sorts them; another caller may not).
        let sorted_exclude;
        let exclude: &[SubscriptionId] = if request.exclude.is_sorted() {
            &request.exclude
        } else {
            let mut copy = request.exclude.clone();
            copy.sort_unstable();
            sorted_exclude = copy;
            &sorted_exclude
        };
        let mut out = Vec::new();
        // Round the subscriptions with work from where the last claim stopped, and stop when
        // the claim is full: a claim reads the subscriptions it serves, not every one.
        let count = inner.queues.len();
        // Two passes: first at most an even part of the limit each, so that one subscription's
        // backlog does not fill a claim that others have work for; then what is left.
        let even = request.limit.div_ceil(count.max(1));
        let mut cursor = inner.rotation;
        let mut visited = 0;
        let mut started_at = None;
        while visited < 2 * count && out.len() < request.limit {
            let pass = visited / count;
            visited += 1;
            let next = match cursor {
                Some(c) => inner
                    .queues
                    .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                    .next()
                    .or_else(|| inner.queues.iter().next()),
                None => inner.queues.iter().next(),
            };
            let Some((&sub, _)) = next else { break };
            cursor = Some(sub);
            started_at.get_or_insert(sub);
            if pass == 0 {
                inner.rotation = Some(sub);
            }
            if exclude.binary_search(&sub).is_ok() {
                continue;
            }
            let Some((subscription, _)) = inner.subscriptions.get(&sub) else {
                continue;
            };
            if subscription.disabled.is_some() {
                continue;
            }
            let limit = subscription
                .max_in_flight
                .unwrap_or(request.per_subscription)
                .max(1);
            let mut room = limit
                .saturating_sub(inner.leases_of(sub))
                .min(request.limit - out.len());
            if pass == 0 {
                room = room.min(even);
            }
            let slots = subscription.rate_limit.map(|rate| {
                let next = inner.next_slot.get(&sub).copied().unwrap_or(0);
                Slots::new(rate, next, crate::time::unix_micros(now), request.lease)
            });
            if let Some(slots) = &slots {
                room = room.min(slots.available);
            }
            if room == 0 {
                continue;
            }
            let ordered = subscription.ordered;
            let Some(queue) = inner.queues.get(&sub) else {
                continue;
            };
            let picks: Vec<DeliveryId> = if ordered {
                // Per ordering key, only its oldest unfinished delivery, and only when no
                // delivery of that key is in flight (one claimed before the subscription
                // became ordered may be a later one).
                let key_of = |record: &Record| {
                    inner
                        .messages
                        .get(&record.delivery.message_id)
                        .and_then(Message::ordering_key)
                };
                let mut seen: HashSet<Option<&str>> = queue
                    .unfinished
                    .iter()
                    .take(ORDERED_WINDOW)
                    .filter_map(|(_, id)| inner.deliveries.get(id))
                    .filter(|record| record.lease.is_some())
                    .map(key_of)
                    .collect();
                let mut picks = Vec::new();
                for (_, id) in queue.unfinished.iter().take(ORDERED_WINDOW) {
                    let Some(record) = inner.deliveries.get(id) else {
                        continue;
                    };
                    if !seen.insert(key_of(record)) {
                        continue;
                    }
                    if record.lease.is_none()
                        && record.delivery.next_attempt_at.is_some_and(|d| d <= now)
                    {
                        picks.push(*id);
                        if picks.len() == room {
                            break;
                        }
                    }
                }
                picks
            } else {
                queue
                    .ready
                    .iter()
                    .take_while(|(due, _, _)| *due <= now)
                    .take(room)
                    .map(|e| e.2)
                    .collect()
            };
            let given = picks.len();
            for (i, id) in picks.into_iter().enumerate() {
                let not_before = slots.map(|s| crate::time::from_unix_micros(s.slot(i)));
                inner.lease(id, request, not_before, &mut out);
            }
            if let Some(slots) = slots
                && given > 0
            {
                inner.next_slot.insert(sub, slots.next_after(given));
            }
        }
        if visited >= count {
            // Went all the way round: the next claim starts one further.
            inner.rotation = started_at;
        }
        Ok(Claimed::new(out, inner.version))
    }

    async fn record_attempt(
        &self,
        lease: LeaseId,
        attempt: &Attempt,
        next: Next,
    ) -> Result<Recorded, StoreError> {
        let mut inner = self.lock();
        let id = attempt.delivery_id;
        let record = inner
            .deliveries
            .get_mut(&id)
            .ok_or_else(|| not_found(Entity::Delivery, id))?;
        record.attempts.push(attempt.clone());
        let sub = record.delivery.subscription_id;
        let applied = record.lease.is_some_and(|(held, _)| held == lease);
        if applied {
            record.delivery.attempts = record.delivery.attempts.max(attempt.number);
            record.delivery.last_attempt_at = Some(attempt.at);
            record.requeued = false;
            // Disabled while in flight (skipped already), or since the worker decided: only a
            // success changes that.
            let skipped = record.delivery.status == DeliveryStatus::Skipped;
            let disabled = inner
                .subscriptions
                .get(&sub)
                .is_some_and(|(s, _)| s.disabled.is_some());
            match next {
                Next::Delivered => inner.finish(id, DeliveryStatus::Delivered),
                _ if skipped || (disabled && matches!(next, Next::RetryAt(_))) => {
                    inner.finish(id, DeliveryStatus::Skipped)
                }
                Next::Exhausted => inner.finish(id, DeliveryStatus::Exhausted),
                Next::Skipped => inner.finish(id, DeliveryStatus::Skipped),
                Next::RetryAt(at) => {
                    inner.unlease(id);
                    if let Some(record) = inner.deliveries.get_mut(&id) {
                        record.delivery.next_attempt_at = Some(at);
                        let seq = record.seq;
                        if let Some(queue) = inner.queues.get_mut(&sub) {
                            queue.ready.insert((at, seq, id));
                        }
                    }
                }
            }
        }
        let health = match inner.subscriptions.get_mut(&sub) {
            Some((_, health)) => {
                if applied {
                    match next {
                        Next::Delivered => *health = Health::default(),
                        Next::RetryAt(_) => {
                            health.failing_since.get_or_insert(attempt.at);
                        }
                        Next::Exhausted => {
                            health.failing_since.get_or_insert(attempt.at);
                            health.consecutive_exhausted += 1;
                        }
                        Next::Skipped => {}
                    }
                }
                *health
            }
            None => Health::default(),
        };
        Ok(Recorded { health, applied })
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let inner = self.lock();
        let unfinished = inner
            .queues
            .values()
            .map(|q| q.unfinished.len())
            .sum::<usize>();
        let oldest_due = inner
            .queues
            .values()
            .filter_map(|q| q.ready.first().map(|(due, _, _)| *due))
            .min();
        Ok(QueueStats::new(unfinished as u64, oldest_due))
    }

    async fn next_due(&self, now: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        let inner = self.lock();
        let mut earliest = inner.lapses.first().map(|(until, _)| *until);
        for (sub, queue) in &inner.queues {
            let ordered = inner.subscriptions.get(sub).is_some_and(|(s, _)| s.ordered);
            let due = if ordered {
                // The earliest head of a key with nothing in flight.
                let mut seen: HashSet<Option<&str>> = HashSet::new();
                queue
                    .unfinished
                    .iter()
                    .take(ORDERED_WINDOW)
                    .filter_map(|(_, id)| inner.deliveries.get(id))
                    .filter(|r| {
                        seen.insert(
                            inner
                                .messages
                                .get(&r.delivery.message_id)
                                .and_then(Message::ordering_key),
                        )
                    })
                    .filter(|r| r.lease.is_none())
                    .filter_map(|r| r.delivery.next_attempt_at)
                    .min()
            } else {
                queue.ready.first().map(|e| e.0)
            };
            if let Some(due) = due {
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        Ok(earliest.map(|e| e.max(now)))
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        Ok(self.lock().deliveries.get(&id).map(view))
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        Ok(self.lock().messages.get(&id).cloned())
    }

    async fn message_deliveries(&self, id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_message
            .get(&id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|d| inner.deliveries.get(d))
                    .map(view)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn attempts(&self, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        Ok(self
            .lock()
            .deliveries
            .get(&id)
            .map(|r| r.attempts.clone())
            .unwrap_or_default())
    }

    async fn purge(&self, before: SystemTime) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        inner.keys.retain(|_, (_, at)| *at >= before);
        let Inner {
            messages,
            deliveries,
            by_message,
            ..
        } = &mut *inner;
        let done: Vec<MessageId> = messages
            .values()
            .filter(|m| m.timestamp() < before)
            .map(Message::id)
            .filter(|id| {
                by_message.get(id).is_none_or(|ds| {
                    ds.iter().all(|d| {
                        deliveries
                            .get(d)
                            .is_none_or(|r| r.delivery.status == DeliveryStatus::Delivered)
                    })
                })
            })
            .collect();
        for id in &done {
            messages.remove(id);
            for delivery in by_message.remove(id).unwrap_or_default() {
                deliveries.remove(&delivery);
            }
        }
        Ok(done.len() as u64)
    }

    async fn query_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let inner = self.lock();
        let empty = crate::Labels::new();
        let mut found: Vec<Delivery> = inner
            .deliveries
            .values()
            .map(view)
            .filter(|d| query.cursor.is_none_or(|c| c.precedes(d)))
            .filter(|d| {
                let labels = inner
                    .messages
                    .get(&d.message_id)
                    .map_or(&empty, |m| m.labels());
                query.matches(d, labels)
            })
            .filter(|d| {
                // A delivery's subscription is deleted with it: it always has one here.
                let labels = inner
                    .subscriptions
                    .get(&d.subscription_id)
                    .map_or(&empty, |(s, _)| s.labels());
                query.matches_subscription(labels)
            })
            .collect();
        found.sort_unstable_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        found.truncate(query.page_size());
        let next = (found.len() == query.page_size())
            .then(|| found.last().map(Cursor::after))
            .flatten();
        Ok(Page::new(found, next))
    }

    async fn redeliver(&self, id: DeliveryId, now: SystemTime) -> Result<Delivery, StoreError> {
        let mut inner = self.lock();
        // A lapsed lease holds nothing: its delivery may be requeued.
        inner.reclaim_lapsed(now);
        inner.requeue(id, now)
    }

    async fn recover(
        &self,
        subscription: SubscriptionId,
        since: SystemTime,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        if !inner.subscriptions.contains_key(&subscription) {
            return Err(not_found(Entity::Subscription, subscription));
        }
        // As the SQL stores: lapsed leases hold nothing, and a skipped delivery still in
        // flight refuses the whole recovery before anything is requeued.
        inner.reclaim_lapsed(now);
        let ids: Vec<DeliveryId> = inner
            .deliveries
            .values()
            .filter(|r| {
                let d = &r.delivery;
                d.subscription_id == subscription
                    && matches!(
                        d.status,
                        DeliveryStatus::Exhausted | DeliveryStatus::Skipped
                    )
                    && d.created_at >= since
                    && d.created_at < until
            })
            .map(|r| r.delivery.id)
            .collect();
        if let Some(busy) = ids
            .iter()
            .find(|id| inner.deliveries.get(id).is_some_and(|r| r.lease.is_some()))
        {
            return Err(StoreError::conflict(Entity::Delivery, busy, "is in flight"));
        }
        for id in &ids {
            inner.requeue(*id, now)?;
        }
        Ok(ids.len() as u64)
    }
}
