//! [`Routes`]: the runtime's cache of subscriptions, indexed by the event names they take, so
//! that `send` looks only at the subscriptions an event can match rather than at every one.

use std::collections::HashMap;
use std::sync::Arc;

use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::runtime::rate_limit::RateLimiter;
use crate::{Error, EventPattern, Message, Subscription, SubscriptionId};

/// The subscriptions, by id and by pattern.
#[derive(Default)]
pub(crate) struct Routes {
    states: HashMap<SubscriptionId, Arc<SubscriptionState>>,
    /// `resource:action` → the subscriptions with that exact pattern.
    exact: HashMap<String, Bucket>,
    /// `resource:` (the text before `*`) → the subscriptions with that wildcard pattern.
    prefix: HashMap<String, Bucket>,
    /// The subscriptions to every event (`*`).
    all: Bucket,
    /// The store's version of the subscriptions this copy holds: `send` hands it to the store,
    /// which refuses the deliveries if the subscriptions have moved since.
    pub(crate) version: u64,
}

/// The subscriptions filed under one pattern, split by label: with many tenants, most
/// subscriptions to a name are scoped to one tenant's label, and an event carries only a few.
#[derive(Default)]
struct Bucket {
    /// Not scoped by any label.
    unscoped: Vec<Arc<SubscriptionState>>,
    /// Scoped: filed under one of their labels (name → value), since an event must carry all.
    scoped: HashMap<String, HashMap<String, Vec<Arc<SubscriptionState>>>>,
}

impl Bucket {
    fn list(&mut self, state: &SubscriptionState) -> &mut Vec<Arc<SubscriptionState>> {
        match state.subscription.labels.iter().next() {
            None => &mut self.unscoped,
            Some((name, value)) => self
                .scoped
                .entry(name.to_owned())
                .or_default()
                .entry(value.to_owned())
                .or_default(),
        }
    }

    fn insert(&mut self, state: &Arc<SubscriptionState>) {
        let list = self.list(state);
        // A subscription that repeats a pattern is filed once.
        if !list
            .iter()
            .any(|s| s.subscription.id == state.subscription.id)
        {
            list.push(state.clone());
        }
    }

    fn remove(&mut self, state: &SubscriptionState) {
        let id = state.subscription.id;
        self.list(state).retain(|s| s.subscription.id != id);
        if let Some((name, value)) = state.subscription.labels.iter().next()
            && let Some(values) = self.scoped.get_mut(name)
        {
            if values.get(value).is_some_and(Vec::is_empty) {
                values.remove(value);
            }
            if values.is_empty() {
                self.scoped.remove(name);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.unscoped.is_empty() && self.scoped.is_empty()
    }

    /// The subscriptions here that an event with these labels may go to.
    fn candidates<'a>(&'a self, message: &Message, out: &mut Vec<&'a Arc<SubscriptionState>>) {
        out.extend(self.unscoped.iter());
        if self.scoped.is_empty() {
            return;
        }
        for (name, value) in message.labels().iter() {
            if let Some(list) = self.scoped.get(name).and_then(|values| values.get(value)) {
                out.extend(list.iter());
            }
        }
    }
}

/// Where a pattern is filed.
enum Key<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    All,
}

fn key(pattern: &EventPattern) -> Key<'_> {
    if let Some(name) = pattern.as_exact() {
        Key::Exact(name)
    } else if let Some(prefix) = pattern.as_prefix() {
        Key::Prefix(prefix)
    } else {
        Key::All
    }
}

impl Routes {
    /// Adds a subscription, replacing the one with the same id.
    pub(crate) fn insert(&mut self, state: Arc<SubscriptionState>) {
        self.remove(state.subscription.id);
        for pattern in &state.patterns {
            let bucket = match key(pattern) {
                Key::Exact(name) => self.exact.entry(name.to_owned()).or_default(),
                Key::Prefix(prefix) => self.prefix.entry(prefix.to_owned()).or_default(),
                Key::All => &mut self.all,
            };
            bucket.insert(&state);
        }
        self.states.insert(state.subscription.id, state);
    }

    /// Removes a subscription; returns it if it was there.
    pub(crate) fn remove(&mut self, id: SubscriptionId) -> Option<Arc<SubscriptionState>> {
        let state = self.states.remove(&id)?;
        for pattern in &state.patterns {
            match key(pattern) {
                Key::Exact(name) => unfile(&mut self.exact, name, &state),
                Key::Prefix(prefix) => unfile(&mut self.prefix, prefix, &state),
                Key::All => self.all.remove(&state),
            }
        }
        Some(state)
    }

    /// A subscription's runtime state, by id.
    pub(crate) fn get(&self, id: SubscriptionId) -> Option<&Arc<SubscriptionState>> {
        self.states.get(&id)
    }

    /// Every subscription's runtime state, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<SubscriptionState>> {
        self.states.values()
    }

    /// The subscriptions an event goes to (its name matches a pattern, and it carries every
    /// label the subscription names), oldest first.
    pub(crate) fn matching(&self, message: &Message) -> Vec<&Arc<SubscriptionState>> {
        let name = message.event_type();
        let mut found = Vec::new();
        self.all.candidates(message, &mut found);
        if let Some(bucket) = self.exact.get(name) {
            bucket.candidates(message, &mut found);
        }
        // A wildcard's text ends with a separator, so only the prefixes of the name that end
        // with one can be filed.
        for (end, byte) in name.bytes().enumerate() {
            if matches!(byte, b':' | b'.')
                && let Some(bucket) = self.prefix.get(&name[..=end])
            {
                bucket.candidates(message, &mut found);
            }
        }
        found.retain(|state| message.labels().contains_all(&state.subscription.labels));
        // A subscription with several patterns can be found through more than one.
        found.sort_unstable_by_key(|state| state.subscription.id);
        found.dedup_by_key(|state| state.subscription.id);
        found
    }
}

impl FromIterator<Arc<SubscriptionState>> for Routes {
    fn from_iter<I: IntoIterator<Item = Arc<SubscriptionState>>>(states: I) -> Self {
        let mut routes = Routes::default();
        for state in states {
            routes.insert(state);
        }
        routes
    }
}

fn unfile(map: &mut HashMap<String, Bucket>, key: &str, state: &SubscriptionState) {
    if let Some(bucket) = map.get_mut(key) {
        bucket.remove(state);
        if bucket.is_empty() {
            map.remove(key);
        }
    }
}

/// A subscription as the runtime holds it: compiled patterns, and its share of the limits.
pub(crate) struct SubscriptionState {
    pub(crate) subscription: Subscription,
    pub(crate) patterns: Vec<EventPattern>,
    /// At most this many held (claimed and not finished): its limit on requests in flight,
    /// which the store's claim also enforces over every worker.
    pub(crate) hold: usize,
    /// Its limit on requests in flight.
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    pub(crate) limiter: Option<Mutex<RateLimiter>>,
}

impl SubscriptionState {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::{Labels, Subscription};

    fn state(patterns: &[&str], account: Option<&str>) -> Arc<SubscriptionState> {
        let mut subscription = Subscription::new("https://example.com/hooks")
            .unwrap()
            .events(patterns.iter().copied());
        if let Some(account) = account {
            subscription = subscription.label("account", account);
        }
        Arc::new(SubscriptionState::new(subscription, &Config::default()).unwrap())
    }

    fn message(name: &'static str, account: &str) -> Message {
        let mut labels = Labels::new();
        labels.insert("account", account);
        if account == "a" {
            labels.insert("region", "eu");
        }
        Message::from_parts(
            crate::MessageId::new(),
            std::time::SystemTime::now(),
            name,
            labels,
            b"{}".to_vec(),
        )
    }

    /// The index finds exactly what checking every subscription's patterns and labels finds.
    #[test]
    fn index_agrees_with_a_scan() {
        let patterns: &[&[&str]] = &[
            &["*"],
            &["invoice:paid"],
            &["invoice:*"],
            &["invoice:paid", "invoice:*"],
            &["invoice.line:*", "invoice:paid"],
            &["invoice.line:added"],
            &["invoice.*"],
            &["customer:*", "customer:created"],
            &["invoice:paid", "invoice:paid"],
        ];
        let mut routes = Routes::default();
        let mut all = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            for account in [None, Some("a"), Some("b")] {
                let s = state(p, account);
                all.push((i, s.clone()));
                routes.insert(s);
            }
        }
        // Scoped by two labels: filed under one, matched on both.
        for region in ["eu", "us"] {
            let s = state(&["invoice:*"], Some("a"));
            let s = Arc::new(
                SubscriptionState::new(
                    s.subscription.clone().label("region", region),
                    &Config::default(),
                )
                .unwrap(),
            );
            all.push((99, s.clone()));
            routes.insert(s);
        }
        // One removed, one replaced: the index follows.
        let gone = all.remove(4).1.subscription.id;
        assert!(routes.remove(gone).is_some());
        assert!(routes.remove(gone).is_none());
        let replaced = all[0].1.subscription.clone().events(["customer:created"]);
        let replaced = Arc::new(SubscriptionState::new(replaced, &Config::default()).unwrap());
        all[0].1 = replaced.clone();
        routes.insert(replaced);

        let mut found = 0;
        for name in [
            "invoice:paid",
            "invoice:void",
            "invoice.line:added",
            "invoice.line:removed",
            "customer:created",
            "other:thing",
        ] {
            for account in ["a", "b", "c"] {
                let m = message(name, account);
                let mut want: Vec<SubscriptionId> = all
                    .iter()
                    .map(|(_, s)| s)
                    .filter(|s| {
                        s.patterns.iter().any(|p| p.matches(name))
                            && m.labels().contains_all(&s.subscription.labels)
                    })
                    .map(|s| s.subscription.id)
                    .collect();
                want.sort_unstable();
                let got: Vec<SubscriptionId> = routes
                    .matching(&m)
                    .iter()
                    .map(|s| s.subscription.id)
                    .collect();
                assert_eq!(got, want, "{name} for account {account}");
                found += got.len();
            }
        }
        assert!(
            found > 50,
            "the cases match often enough to mean something: {found}"
        );
    }
}
