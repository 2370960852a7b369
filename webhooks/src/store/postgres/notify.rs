//! LISTEN/NOTIFY: the channel of a schema; the wake-ups this store sends after its group
//! commits; and the listener task that hears the other workers (restoring its connection when
//! it is lost) and keeps what it heard for [`Store::changed`](crate::store::Store::changed).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;

use super::group_commit::OnDrop;
use super::{Core, query};
use crate::store::Change;

/// The longest wait between two attempts to restore the LISTEN connection.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(5);

/// The NOTIFY channel of a schema: readable when it fits PostgreSQL's 63-byte limit, else a
/// hash that every process computes alike.
pub(super) fn channel_name(schema: &str) -> String {
    let name = format!("webhooks:{schema}");
    if name.len() <= 63 {
        return name;
    }
    format!("webhooks:{:016x}", stable_hash(schema))
}

/// FNV-1a: stable across processes, platforms and versions (unlike std's hasher).
pub(super) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Tells the other workers that there is new work: `$1`, `$2`: channel and payload.
pub(super) const WAKE: &str = "SELECT pg_notify($1, $2)";

impl Core {
    /// A payload for this store's own notifications: the others act on it, this one ignores it.
    pub(super) fn own(&self, kind: &str) -> String {
        format!("{kind} {}", self.instance)
    }

    /// Tells the other workers that there is new work, soon: one notification covers every
    /// commit made while the previous one was being sent.
    ///
    /// Outside the transactions that made the work: a transaction that notifies holds
    /// PostgreSQL's database-wide NOTIFY lock from its commit until its commit record is on
    /// disk, so commits that notify cannot share a WAL flush. This one writes nothing else, so
    /// its commit waits for no flush and holds the lock only briefly.
    pub(super) fn wake_others(self: &Arc<Self>) {
        let start = {
            let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            wake.owed = true;
            !std::mem::replace(&mut wake.sending, true)
        };
        if start {
            tokio::spawn(self.clone().send_wakes());
        }
    }

    /// Sends wake-ups until none is owed. One that fails is retried (the other workers would
    /// otherwise wait for their next poll), until the store is dropped.
    async fn send_wakes(self: Arc<Self>) {
        let mut guard = OnDrop(Some(|| {
            self.wake.lock().unwrap_or_else(|p| p.into_inner()).sending = false;
        }));
        let mut backoff = Duration::from_millis(50);
        loop {
            {
                let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
                if !std::mem::take(&mut wake.owed) {
                    wake.sending = false;
                    guard.disarm();
                    return;
                }
            }
            let sent = query(&self.sql.wake)
                .bind(self.channel.as_str())
                .bind(self.own("work"))
                .execute(&self.pool)
                .await;
            match sent {
                Ok(_) => backoff = Duration::from_millis(50),
                // The guard gives up the role.
                Err(sqlx::Error::PoolClosed) => return,
                Err(_) if self.closed.load(Ordering::Acquire) => return,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "webhook store: cannot notify the other workers");
                    self.wake.lock().unwrap_or_else(|p| p.into_inner()).owed = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_LISTEN_BACKOFF);
                }
            }
        }
    }
}

/// Whether the other workers are owed a wake-up, and whether a task is sending it.
#[derive(Default)]
pub(super) struct WakeState {
    owed: bool,
    sending: bool,
}

/// What the listener heard and nobody has taken yet. Kept (not broadcast) so that a
/// notification arriving while the dispatcher is busy claiming wakes it on its next wait.
#[derive(Default)]
pub(super) struct Signals {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    work: bool,
    subscriptions: bool,
}

impl Signals {
    fn raise(&self, work: bool, subscriptions: bool) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.work |= work;
            pending.subscriptions |= subscriptions;
        }
        self.notify.notify_waiters();
    }

    fn take(&self) -> Option<Change> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Subscriptions first: the dispatcher reloads them, then claims anyway.
        if std::mem::take(&mut pending.subscriptions) {
            Some(Change::Subscriptions)
        } else if std::mem::take(&mut pending.work) {
            Some(Change::Work)
        } else {
            None
        }
    }

    pub(super) async fn wait(&self) -> Change {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so that a raise in between is not missed.
            notified.as_mut().enable();
            if let Some(change) = self.take() {
                return change;
            }
            notified.await;
        }
    }

    /// A payload is `<kind>` or `<kind> <instance>`.
    fn heard(&self, payload: &str, instance: &str) {
        let (kind, origin) = payload.split_once(' ').unwrap_or((payload, ""));
        if origin == instance {
            return;
        }
        match kind {
            "work" => self.raise(true, false),
            "subscriptions" => self.raise(false, true),
            // From a newer version: look at everything.
            _ => self.raise(true, true),
        }
    }
}

pub(super) async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Hears notifications for as long as the store lives, and restores the connection when it is
/// lost (a database restart, a proxy's timeout). Whatever was notified meanwhile is lost, so
/// after a reconnection everyone is told to look at everything.
pub(super) async fn run_listener(
    mut listener: PgListener,
    pool: PgPool,
    channel: String,
    instance: String,
    signals: Arc<Signals>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => signals.heard(notification.payload(), &instance),
            Ok(None) => {
                // sqlx reconnected (and listens again) by itself.
                tracing::warn!("webhook store: the LISTEN connection was lost and restored");
                signals.raise(true, true);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "webhook store: the LISTEN connection failed; reconnecting");
                // A fresh listener rather than the old one: after some errors sqlx keeps its
                // dead connection.
                drop(listener);
                let mut backoff = Duration::from_millis(100);
                listener = loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool, &channel).await {
                        Ok(listener) => break listener,
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(error) => {
                            tracing::warn!(%error, retry_in = ?backoff, "webhook store: cannot LISTEN");
                            backoff = (backoff * 2).min(MAX_LISTEN_BACKOFF);
                        }
                    }
                };
                tracing::info!("webhook store: listening again");
                signals.raise(true, true);
            }
        }
    }
}
