//! [`Routes`]: the runtime's cache of subscriptions, indexed by the event names they take, so
//! that `send` looks only at the subscriptions an event can match rather than at every one.

use std::collections::HashMap;
use std::sync::Arc;

use crate::webhooks::SubscriptionState;
use crate::{EventPattern, Message, SubscriptionId};

/// The subscriptions, by id and by pattern.
#[derive(Default)]
pub(crate) struct Routes {
    states: HashMap<SubscriptionId, Arc<SubscriptionState>>,
    /// `resource:action` → the subscriptions with that exact pattern.
    exact: HashMap<String, Vec<SubscriptionId>>,
    /// `resource:` (the text before `*`) → the subscriptions with that wildcard pattern.
    prefix: HashMap<String, Vec<SubscriptionId>>,
    /// The subscriptions to every event (`*`).
    all: Vec<SubscriptionId>,
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
        let id = state.subscription.id;
        self.remove(id);
        for pattern in &state.patterns {
            let list = match key(pattern) {
                Key::Exact(name) => self.exact.entry(name.to_owned()).or_default(),
                Key::Prefix(prefix) => self.prefix.entry(prefix.to_owned()).or_default(),
                Key::All => &mut self.all,
            };
            // A subscription that repeats a pattern is filed once.
            if !list.contains(&id) {
                list.push(id);
            }
        }
        self.states.insert(id, state);
    }

    /// Removes a subscription; returns it if it was there.
    pub(crate) fn remove(&mut self, id: SubscriptionId) -> Option<Arc<SubscriptionState>> {
        let state = self.states.remove(&id)?;
        for pattern in &state.patterns {
            match key(pattern) {
                Key::Exact(name) => unfile(&mut self.exact, name, id),
                Key::Prefix(prefix) => unfile(&mut self.prefix, prefix, id),
                Key::All => self.all.retain(|s| *s != id),
            }
        }
        Some(state)
    }

    /// One subscription.
    pub(crate) fn get(&self, id: SubscriptionId) -> Option<&Arc<SubscriptionState>> {
        self.states.get(&id)
    }

    /// Every subscription.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<SubscriptionState>> {
        self.states.values()
    }

    /// The subscriptions an event goes to (its name matches a pattern, and it carries every
    /// label the subscription names), oldest first.
    pub(crate) fn matching(&self, message: &Message) -> Vec<&Arc<SubscriptionState>> {
        let name = message.event_type();
        let mut ids: Vec<SubscriptionId> = self.all.clone();
        if let Some(list) = self.exact.get(name) {
            ids.extend_from_slice(list);
        }
        // A wildcard's text ends with a separator, so only the prefixes of the name that end
        // with one can be filed.
        for (end, byte) in name.bytes().enumerate() {
            if matches!(byte, b':' | b'.')
                && let Some(list) = self.prefix.get(&name[..=end])
            {
                ids.extend_from_slice(list);
            }
        }
        // A subscription with several patterns can be found through more than one.
        ids.sort_unstable();
        ids.dedup();
        ids.iter()
            .filter_map(|id| self.states.get(id))
            .filter(|state| message.labels().contains_all(&state.subscription.labels))
            .collect()
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

fn unfile(map: &mut HashMap<String, Vec<SubscriptionId>>, key: &str, id: SubscriptionId) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|s| *s != id);
        if list.is_empty() {
            map.remove(key);
        }
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
