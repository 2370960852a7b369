//! [`RequestSlots`]: the process's `max_in_flight` requests, shared fairly among the
//! subscriptions that have work here, and the count of deliveries the dispatcher holds.
//!
//! A single first-come semaphore let one slow endpoint take every slot: its requests last
//! seconds, everybody else's milliseconds, so each slot freed by a fast request was sooner or
//! later taken by a slow one and kept. Here:
//!
//! - a subscription is *active* while it holds deliveries in this process, and between two
//!   batches while the store may still have work for it (until a claim that was not full
//!   gives it none); its **share** is `max_in_flight / active` (rounded up);
//! - a subscription under its share gets a free slot at once; above it, only if enough slots
//!   stay free for every other active subscription under its share to start one request (so a
//!   busy subscription may use what the others do not need, and a hanging one cannot take what
//!   they will need);
//! - a freed slot goes to the waiting subscription with the fewest requests in flight (the
//!   oldest waiter among equals);
//! - the dispatcher holds at most twice a subscription's share of its deliveries
//!   ([`View::may_claim`]), twice `max_in_flight` deliveries that are not waiting for a request
//!   slot (a delivery waiting for one gives its place back, so the others' work is still
//!   claimed), and four times `max_in_flight` in all.
//!
//! These are this process's resources. A subscription's own limits (`max_in_flight`, the rate
//! limit) are kept by the store over every worker, and by `SubscriptionState`'s semaphore here.
//!
//! One file past 600 lines on purpose: the counts, the indexes kept beside them (so that no
//! call walks every active subscription) and the test that checks every index against a
//! recount after each change are one invariant, read in one place.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::SubscriptionId;

/// The request slots and the dispatcher's count of held deliveries.
pub(crate) struct RequestSlots {
    /// `max_in_flight`.
    capacity: usize,
    inner: Mutex<Inner>,
}

/// Every per-subscription count is also kept in an index, so that no call walks the active
/// subscriptions (there may be thousands, each with a little work): releases, claims and
/// acquisitions cost the same with one subscription as with ten thousand.
struct Inner {
    /// Requests in flight.
    in_use: usize,
    /// Deliveries held (claimed and not finished).
    held: usize,
    /// Of those, waiting for a request slot.
    waiting: usize,
    /// The active subscriptions: those holding deliveries (or slots, or waiting for one).
    subs: HashMap<SubscriptionId, Sub>,
    /// Orders waiters.
    next_ticket: u64,
    /// Counts the dispatcher's claims.
    epoch: u64,
    /// How many active subscriptions have `i` requests in flight (the last entry: at least
    /// that many): who is under a share, without walking them.
    by_in_use: Vec<usize>,
    /// The subscriptions with waiters, by (requests in flight, first waiter's ticket): the
    /// first is the one a freed slot goes to.
    queue: BTreeSet<(usize, u64, SubscriptionId)>,
    /// The subscriptions with `linger` set, for [`RequestSlots::settle`].
    lingering: Vec<SubscriptionId>,
    /// The subscriptions holding deliveries: the only ones the dispatcher may exclude.
    holding: HashSet<SubscriptionId>,
}

#[derive(Default)]
struct Sub {
    held: usize,
    in_use: usize,
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
    /// It may have more work in the store: the dispatcher's claims gave it some, and none has
    /// shown since that it has none left. It stays active, between one batch and the next, so
    /// that a slow subscription does not take the slots back each time the others' held
    /// deliveries run out.
    linger: bool,
    /// The claim (`Inner::epoch`) that last gave it a delivery.
    claimed_in: u64,
}

impl Sub {
    fn is_idle(&self) -> bool {
        self.held == 0 && self.in_use == 0 && self.waiters.is_empty() && !self.linger
    }
}

impl Inner {
    fn new(capacity: usize) -> Self {
        Inner {
            in_use: 0,
            held: 0,
            waiting: 0,
            subs: HashMap::new(),
            next_ticket: 0,
            epoch: 0,
            by_in_use: vec![0; capacity + 1],
            queue: BTreeSet::new(),
            lingering: Vec::new(),
            holding: HashSet::new(),
        }
    }

    fn share(&self, capacity: usize) -> usize {
        capacity.div_ceil(self.subs.len().max(1)).max(1)
    }

    fn bucket(&self, in_use: usize) -> usize {
        in_use.min(self.by_in_use.len() - 1)
    }

    /// Changes subscription `id` (made active if it was not), keeping the indexes in step.
    fn with_sub<R>(&mut self, id: SubscriptionId, f: impl FnOnce(&mut Sub) -> R) -> R {
        let last = self.by_in_use.len() - 1;
        let sub = match self.subs.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.by_in_use[0] += 1;
                e.insert(Sub::default())
            }
        };
        let (in_use, first) = (sub.in_use, sub.waiters.front().map(|(t, _)| *t));
        let (linger, held) = (sub.linger, sub.held);
        let out = f(sub);
        let (now_in_use, now_first) = (sub.in_use, sub.waiters.front().map(|(t, _)| *t));
        if !linger && sub.linger {
            self.lingering.push(id);
        }
        if (held == 0) != (sub.held == 0) {
            if held == 0 {
                self.holding.insert(id);
            } else {
                self.holding.remove(&id);
            }
        }
        if in_use != now_in_use {
            self.by_in_use[in_use.min(last)] -= 1;
            self.by_in_use[now_in_use.min(last)] += 1;
        }
        if (in_use, first) != (now_in_use, now_first) {
            if let Some(t) = first {
                self.queue.remove(&(in_use, t, id));
            }
            if let Some(t) = now_first {
                self.queue.insert((now_in_use, t, id));
            }
        }
        out
    }

    /// How many active subscriptions other than `id` are under their share.
    fn others_under(&self, share: usize, id: &SubscriptionId) -> usize {
        // Buckets below `share` hold exactly those counts (`share` is at most the capacity).
        let under: usize = self.by_in_use[..self.bucket(share)].iter().sum();
        let mine = self.subs.get(id).is_some_and(|s| s.in_use < share);
        under - usize::from(mine)
    }

    /// Whether subscription `id` may take a free slot now.
    fn grantable(&self, capacity: usize, id: &SubscriptionId) -> bool {
        if self.in_use >= capacity {
            return false;
        }
        let share = self.share(capacity);
        let mine = self.subs.get(id).map_or(0, |s| s.in_use);
        // Above its share: only leaving a slot for each other subscription under its share.
        mine < share || capacity - self.in_use > self.others_under(share, id)
    }

    /// Hands free slots to waiters: the subscription with the fewest requests in flight first.
    fn grant(&mut self, capacity: usize) {
        while self.waiting > 0 && self.in_use < capacity {
            // The fewest in flight: if even it may not have a slot, nobody may.
            let Some(&(_, _, id)) = self.queue.first() else {
                return;
            };
            if !self.grantable(capacity, &id) {
                return;
            }
            let Some(waiter) = self.with_sub(id, |sub| sub.waiters.pop_front()) else {
                return;
            };
            self.waiting -= 1;
            // A waiter that is gone removed itself under the lock; a send cannot fail, but if
            // it did the slot simply stays free.
            if waiter.1.send(()).is_ok() {
                self.with_sub(id, |sub| sub.in_use += 1);
                self.in_use += 1;
            }
        }
    }

    /// Whether the indexes agree with the counts (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut by_in_use = vec![0; self.by_in_use.len()];
        let mut queue = BTreeSet::new();
        for (id, sub) in &self.subs {
            by_in_use[self.bucket(sub.in_use)] += 1;
            if let Some((t, _)) = sub.waiters.front() {
                queue.insert((sub.in_use, *t, *id));
            }
        }
        assert_eq!(by_in_use, self.by_in_use);
        assert_eq!(queue, self.queue);
        let mut lingering: Vec<_> = self
            .subs
            .iter()
            .filter(|(_, s)| s.linger)
            .map(|(id, _)| *id)
            .collect();
        let mut indexed = self.lingering.clone();
        lingering.sort_unstable();
        indexed.sort_unstable();
        assert_eq!(lingering, indexed);
        let holding: HashSet<_> = self
            .subs
            .iter()
            .filter(|(_, s)| s.held > 0)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(holding, self.holding);
        let in_use: usize = self.subs.values().map(|s| s.in_use).sum();
        let waiting: usize = self.subs.values().map(|s| s.waiters.len()).sum();
        assert_eq!((in_use, waiting), (self.in_use, self.waiting));
    }

    fn forget_if_idle(&mut self, id: &SubscriptionId) {
        if self.subs.get(id).is_some_and(Sub::is_idle) {
            // Idle: no request in flight, no waiter, not lingering; only bucket 0 counts it.
            self.subs.remove(id);
            self.by_in_use[0] -= 1;
        }
    }
}

/// A request slot taken; given back when dropped.
pub(crate) struct RequestSlot<'a> {
    slots: &'a RequestSlots,
    id: SubscriptionId,
}

impl Drop for RequestSlot<'_> {
    fn drop(&mut self) {
        self.slots.release(self.id);
    }
}

/// A turn in the queue for a request slot ([`RequestSlots::acquire`] found none free).
pub(crate) struct Waiter<'a> {
    slots: &'a RequestSlots,
    id: SubscriptionId,
    ticket: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl<'a> Waiter<'a> {
    /// Waits for the slot to be handed over.
    pub(crate) async fn wait(mut self) -> Option<RequestSlot<'a>> {
        let rx = self.rx.as_mut()?;
        rx.await.ok()?;
        self.rx = None;
        Some(RequestSlot {
            slots: self.slots,
            id: self.id,
        })
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        // Given up (its task ended): leave the queue, or give back a slot handed over meanwhile.
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut inner = self.slots.lock();
        let ticket = self.ticket;
        let queued = inner.subs.contains_key(&self.id).then(|| {
            inner.with_sub(self.id, |sub| {
                let at = sub.waiters.iter().position(|(t, _)| *t == ticket)?;
                sub.waiters.remove(at)
            })
        });
        let queued = queued.flatten();
        if queued.is_some() {
            inner.waiting -= 1;
            inner.forget_if_idle(&self.id);
        } else if rx.try_recv().is_ok() {
            drop(inner);
            self.slots.release(self.id);
        }
    }
}

/// What [`RequestSlots::acquire`] found.
pub(crate) enum Acquire<'a> {
    /// A slot, at once.
    Ready(RequestSlot<'a>),
    /// None free for this subscription: wait for one.
    Wait(Waiter<'a>),
}

impl RequestSlots {
    /// Slots for `capacity` requests in flight (`max_in_flight`).
    pub(crate) fn new(capacity: usize) -> Self {
        RequestSlots {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::new(capacity.max(1))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request slot for subscription `id`, which holds the delivery (see [`Self::hold`]).
    pub(crate) fn acquire(&self, id: SubscriptionId) -> Acquire<'_> {
        let mut inner = self.lock();
        if inner.waiting == 0 && inner.grantable(self.capacity, &id) {
            inner.in_use += 1;
            inner.with_sub(id, |sub| sub.in_use += 1);
            return Acquire::Ready(RequestSlot { slots: self, id });
        }
        let (tx, mut rx) = oneshot::channel();
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.waiting += 1;
        inner.with_sub(id, |sub| sub.waiters.push_back((ticket, tx)));
        // Its turn may be now (others wait only for their share), or this arrival's.
        inner.grant(self.capacity);
        if rx.try_recv().is_ok() {
            return Acquire::Ready(RequestSlot { slots: self, id });
        }
        Acquire::Wait(Waiter {
            slots: self,
            id,
            ticket,
            rx: Some(rx),
        })
    }

    fn release(&self, id: SubscriptionId) {
        let mut inner = self.lock();
        inner.in_use = inner.in_use.saturating_sub(1);
        if inner.subs.contains_key(&id) {
            inner.with_sub(id, |sub| sub.in_use = sub.in_use.saturating_sub(1));
        }
        inner.forget_if_idle(&id);
        inner.grant(self.capacity);
    }

    /// Counts a delivery of subscription `id` as held by the dispatcher (claimed here).
    pub(crate) fn hold(&self, id: SubscriptionId) {
        let mut inner = self.lock();
        inner.held += 1;
        let epoch = inner.epoch;
        inner.with_sub(id, |sub| {
            sub.held += 1;
            sub.linger = true;
            sub.claimed_in = epoch;
        });
    }

    /// After a claim (its deliveries [`hold`](Self::hold)): if it was not `full`, every
    /// subscription it did not `exclude` (sorted) and gave nothing has no work left in the
    /// store, and stops being active once it holds nothing.
    pub(crate) fn settle(&self, exclude: &[SubscriptionId], full: bool) {
        let mut inner = self.lock();
        let epoch = inner.epoch;
        inner.epoch += 1;
        if full {
            return;
        }
        // Only the lingering ones: after this, those left are this claim's and the excluded.
        let mut done = Vec::new();
        let Inner {
            subs, lingering, ..
        } = &mut *inner;
        lingering.retain(|id| {
            let Some(sub) = subs.get_mut(id) else {
                return false;
            };
            if sub.claimed_in != epoch && exclude.binary_search(id).is_err() {
                sub.linger = false;
                done.push(*id);
                return false;
            }
            true
        });
        for id in &done {
            inner.forget_if_idle(id);
        }
        if !done.is_empty() {
            // Fewer active subscriptions: the others' shares grew.
            inner.grant(self.capacity);
        }
    }

    /// A held delivery of subscription `id`, whose own limit is `limit`, is finished. Returns
    /// whether the dispatcher should be woken: it would claim now, and either it could not
    /// before this release or it may claim for this subscription (waking it on every
    /// completion would cost a loop, and a thread hand-off, each).
    pub(crate) fn unhold(&self, id: SubscriptionId, limit: usize) -> bool {
        let mut inner = self.lock();
        let before = self.can_claim_in(&inner);
        inner.held = inner.held.saturating_sub(1);
        if inner.subs.contains_key(&id) {
            inner.with_sub(id, |sub| sub.held = sub.held.saturating_sub(1));
        }
        inner.forget_if_idle(&id);
        // One active subscription fewer: the others' shares grew.
        inner.grant(self.capacity);
        self.can_claim_in(&inner) && (!before || may_claim(&inner, self.capacity, &id, limit))
    }

    /// How many deliveries the dispatcher may claim now: twice `max_in_flight` not waiting
    /// for a request slot, four times in all.
    pub(crate) fn room(&self) -> usize {
        let inner = self.lock();
        self.room_in(&inner)
    }

    fn room_in(&self, inner: &Inner) -> usize {
        let busy = inner.held.saturating_sub(inner.waiting);
        let hold = self.capacity.saturating_mul(2);
        hold.saturating_sub(busy)
            .min(self.capacity.saturating_mul(4).saturating_sub(inner.held))
    }

    /// Whether the dispatcher should claim: nothing held, or a quarter of its room free, so
    /// that claims come in batches rather than one per completion.
    pub(crate) fn can_claim(&self) -> bool {
        self.can_claim_in(&self.lock())
    }

    fn can_claim_in(&self, inner: &Inner) -> bool {
        let room = self.room_in(inner);
        room > 0 && (inner.held == 0 || room >= (self.capacity / 2).max(1))
    }

    /// The counts per subscription, read together (the dispatcher's exclusions).
    pub(crate) fn view(&self) -> View<'_> {
        View {
            capacity: self.capacity,
            inner: self.lock(),
        }
    }

    /// Requests in flight now (tests).
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.lock().in_use
    }
}

/// The slots' counts, locked.
pub(crate) struct View<'a> {
    capacity: usize,
    inner: MutexGuard<'a, Inner>,
}

impl View<'_> {
    /// Deliveries of subscription `id` held here.
    pub(crate) fn held(&self, id: &SubscriptionId) -> usize {
        self.inner.subs.get(id).map_or(0, |s| s.held)
    }

    /// The subscriptions holding deliveries here: every other one [`may_claim`](Self::may_claim).
    pub(crate) fn holding(&self) -> impl Iterator<Item = &SubscriptionId> {
        self.inner.holding.iter()
    }

    /// Whether the dispatcher may claim for subscription `id`, whose own limit is `limit`: it
    /// holds nothing, or a quarter of what it may hold is free (twice its share, at most its
    /// limit).
    pub(crate) fn may_claim(&self, id: &SubscriptionId, limit: usize) -> bool {
        may_claim(&self.inner, self.capacity, id, limit)
    }
}

/// [`View::may_claim`].
fn may_claim(inner: &Inner, capacity: usize, id: &SubscriptionId, limit: usize) -> bool {
    let held = inner.subs.get(id).map_or(0, |s| s.held);
    if held == 0 {
        return true;
    }
    let most = inner.share(capacity).saturating_mul(2).min(limit).max(1);
    most.saturating_sub(held) >= (most / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(a: Acquire<'_>) -> RequestSlot<'_> {
        match a {
            Acquire::Ready(slot) => slot,
            Acquire::Wait(_) => panic!("expected a free slot"),
        }
    }

    fn waiting(a: Acquire<'_>) -> Waiter<'_> {
        match a {
            Acquire::Ready(_) => panic!("expected to wait"),
            Acquire::Wait(w) => w,
        }
    }

    /// A subscription that took every slot while it was alone gives each back to the others as
    /// its requests end, and then gets no more than its share.
    #[tokio::test]
    async fn freed_slots_go_to_the_subscription_with_fewest_in_flight() {
        let slots = RequestSlots::new(4);
        let (slow, fast) = (SubscriptionId::new(), SubscriptionId::new());
        slots.hold(slow);
        let mut slow_slots: Vec<_> = (0..4).map(|_| ready(slots.acquire(slow))).collect();
        assert_eq!(slots.in_use(), 4);
        // Both wait; the fast one is served first although it came later.
        slots.hold(slow);
        let slow_waits = waiting(slots.acquire(slow));
        slots.hold(fast);
        let fast_waits = waiting(slots.acquire(fast));
        slow_slots.pop();
        let fast_slot = fast_waits.wait().await.expect("handed over");
        assert_eq!(slots.in_use(), 4);
        // Two active: a share of 2. The slow one, at 3, waits while the fast one is under it.
        slow_slots.pop();
        let more_fast = ready(slots.acquire(fast));
        drop((fast_slot, more_fast));
        // One of the fast one's ended: one slot free, kept for the fast one (under its share).
        // The second ended: two free, one more than the fast one needs, so the slow one gets
        // one beyond its share.
        let slow_slot = slow_waits.wait().await.expect("handed over");
        assert_eq!(slots.in_use(), 3);
        drop((slow_slot, slow_slots));
        assert_eq!(slots.in_use(), 0);
    }

    /// Above its share, a subscription leaves a slot for each other one under it.
    #[test]
    fn a_busy_subscription_leaves_room_for_the_others() {
        let slots = RequestSlots::new(4);
        let (busy, a, b) = (
            SubscriptionId::new(),
            SubscriptionId::new(),
            SubscriptionId::new(),
        );
        for id in [busy, a, b] {
            slots.hold(id);
        }
        // Share: 2. Busy takes 2 freely; a third would leave 1 slot for two others.
        let _taken: Vec<_> = (0..2).map(|_| ready(slots.acquire(busy))).collect();
        let third = waiting(slots.acquire(busy));
        let _a = ready(slots.acquire(a));
        let _b = ready(slots.acquire(b));
        assert_eq!(slots.in_use(), 4);
        drop(third);
        let inner = slots.lock();
        assert_eq!(inner.waiting, 0, "a waiter that gives up leaves the queue");
    }

    /// Deliveries waiting for a request slot give the dispatcher their place back, up to four
    /// times `max_in_flight` held in all.
    #[test]
    fn waiting_deliveries_do_not_stop_claims_up_to_the_cap() {
        let slots = RequestSlots::new(2);
        let id = SubscriptionId::new();
        assert_eq!(slots.room(), 4);
        for _ in 0..4 {
            slots.hold(id);
        }
        assert_eq!(slots.room(), 0);
        let _in_flight: Vec<_> = (0..2).map(|_| ready(slots.acquire(id))).collect();
        let _waiting: Vec<_> = (0..2).map(|_| waiting(slots.acquire(id))).collect();
        assert_eq!(slots.room(), 2);
        for _ in 0..2 {
            slots.hold(id);
        }
        assert_eq!(slots.room(), 0, "four times max_in_flight held");
        let view = slots.view();
        assert_eq!(view.held(&id), 6);
        assert!(!view.may_claim(&id, 64));
        assert!(view.may_claim(&SubscriptionId::new(), 64));
    }

    /// The indexes that spare walking every subscription (counts by requests in flight, the
    /// waiters' order, the lingering ones) follow every change, through a long mixed run.
    #[test]
    fn indexes_follow_every_change() {
        let slots = RequestSlots::new(4);
        let ids: Vec<_> = (0..5).map(|_| SubscriptionId::new()).collect();
        let mut taken = Vec::new();
        let mut waits = Vec::new();
        let mut held = vec![0usize; ids.len()];
        // A fixed pseudo-random sequence (xorshift): the same run every time.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x >> 8) as usize % ids.len();
            let id = ids[i];
            match x % 7 {
                0 => {
                    slots.hold(id);
                    held[i] += 1;
                }
                1 if held[i] > 0 => {
                    slots.unhold(id, 8);
                    held[i] -= 1;
                }
                2 => match slots.acquire(id) {
                    Acquire::Ready(slot) => taken.push(slot),
                    Acquire::Wait(w) => waits.push(w),
                },
                3 if !taken.is_empty() => drop(taken.swap_remove((x >> 16) as usize % taken.len())),
                4 if !waits.is_empty() => drop(waits.swap_remove((x >> 16) as usize % waits.len())),
                5 => {
                    let mut exclude = vec![ids[(x >> 20) as usize % ids.len()]];
                    exclude.sort_unstable();
                    slots.settle(&exclude, x & (1 << 30) != 0);
                }
                _ => {}
            }
            let inner = slots.lock();
            inner.check();
            assert!(inner.in_use <= 4);
        }
        drop(waits);
        drop(taken);
        for (i, n) in held.into_iter().enumerate() {
            for _ in 0..n {
                slots.unhold(ids[i], 8);
            }
        }
        // A claim that gave nothing, after the one that gave the last holds: no work left.
        slots.settle(&[], false);
        slots.settle(&[], false);
        let inner = slots.lock();
        inner.check();
        assert!(
            inner.subs.is_empty(),
            "every subscription idle is forgotten"
        );
    }
}
