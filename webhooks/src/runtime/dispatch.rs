//! The dispatcher: claims due deliveries from the store, within the global and per-subscription
//! limits, and starts a [`crate::deliver`] task for each. One per `Webhooks` runtime.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;

use crate::SubscriptionId;
use crate::runtime::observe::{self, StoreCall};
use crate::runtime::shared::Shared;
use crate::store::{Change, ClaimRequest};

/// Runs until the runtime stops, then lets the requests in flight finish (bounded).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    let mut stop = shared.stop.subscribe();
    // After a store error, wait longer each time (up to 30 s): the store heals, we follow.
    let mut store_backoff = Duration::from_millis(100);
    let mut last_purge = Instant::now();
    let mut last_sample: Option<Instant> = None;
    // Kept across iterations: the loop runs once per batch of completions, and re-creating a
    // timer and the store's change future each time costs more than the loop itself.
    let mut changed = shared.store.changed();
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);

    loop {
        if *stop.borrow_and_update() {
            break;
        }
        while let Some(result) = tasks.try_join_next() {
            report(result);
        }

        if let Some(age) = shared.config.retention
            && last_purge.elapsed() >= shared.config.purge_interval
        {
            last_purge = Instant::now();
            tokio::spawn(purge(shared.clone(), age));
        }
        if observe::SAMPLES_QUEUE
            && last_sample.is_none_or(|at| at.elapsed() >= observe::QUEUE_SAMPLE_INTERVAL)
        {
            last_sample = Some(Instant::now());
            tokio::spawn(sample_queue(shared.clone()));
        }

        let mut wait = shared.config.poll_interval;
        let free = shared.slots.room().min(shared.config.claim_batch);
        // As per subscription: with work in flight, wait until a quarter of the room is free
        // rather than claiming a handful at a time.
        if free > 0 && shared.slots.can_claim() {
            let (exclude, rate_limited_until) = exclusions(&shared);
            let mut request = ClaimRequest::new(
                SystemTime::now(),
                free,
                // The store leases at most this many of a subscription's deliveries (or its own
                // limit), counting every worker's leases.
                shared.config.max_in_flight_per_subscription,
                shared.config.lease,
            );
            request.exclude = exclude;
            let started = Instant::now();
            stage!(ClaimAsk, 0, 0);
            match shared.store.claim(&request).await {
                Ok(claimed) => {
                    stage!(ClaimReturn, 0, claimed.claims.len() as u32);
                    shared
                        .observe
                        .claimed(claimed.claims.len(), started.elapsed());
                    store_backoff = Duration::from_millis(100);
                    // Subscriptions changed since our copy (here or in another process): send
                    // with the settings and secrets the store has now.
                    shared.refresh(claimed.subscriptions_version).await;
                    let claims = claimed.claims;
                    let full = claims.len() == request.limit;
                    let claimed = !claims.is_empty();
                    for claim in claims {
                        stage!(Claimed, claim.delivery.message_id.as_uuid().as_u128(), 0);
                        let Some(state) = shared.subscription_state(claim.delivery.subscription_id)
                        else {
                            // Deleted meanwhile: the store dropped it with the subscription.
                            continue;
                        };
                        // Within the room asked for (the claim's limit): every claim is held.
                        shared.slots.hold(state.subscription.id);
                        tasks.spawn(crate::runtime::deliver::deliver(
                            shared.clone(),
                            claim,
                            state,
                        ));
                    }
                    shared.slots.settle(&request.exclude, full);
                    if full {
                        // There may be more due right now.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    if let Some(until) = rate_limited_until {
                        wait = wait.min(until.saturating_duration_since(Instant::now()));
                    }
                    // Only when the claim came back empty: otherwise its completions wake us,
                    // and asking costs a store round trip per claim.
                    if request.exclude.is_empty() && !claimed {
                        stage!(NextDueAsk, 0, 0);
                        let next_due = shared.store.next_due(SystemTime::now()).await;
                        stage!(NextDueReturn, 0, 0);
                        match next_due {
                            Ok(Some(due)) => {
                                let until = due
                                    .duration_since(SystemTime::now())
                                    .unwrap_or(Duration::ZERO);
                                // Something is due but was not claimable (its ordered
                                // predecessor is in flight): a completion will wake us.
                                if !until.is_zero() {
                                    wait = wait.min(until);
                                }
                            }
                            Ok(None) => {}
                            Err(error) => {
                                shared.observe.store_error(StoreCall::NextDue);
                                tracing::warn!(%error, "webhook store: next_due failed");
                            }
                        }
                    }
                }
                Err(error) => {
                    shared.observe.store_error(StoreCall::Claim);
                    tracing::error!(%error, retry_in = ?store_backoff, "webhook store: claim failed");
                    wait = store_backoff;
                    store_backoff = (store_backoff * 2).min(Duration::from_secs(30));
                }
            }
        }

        // A later deadline than the armed one only costs a spurious iteration; re-arming the
        // timer on every iteration would cost more.
        let deadline = tokio::time::Instant::now() + wait;
        if timer.is_elapsed() || deadline < timer.deadline() {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            change = &mut changed => {
                changed = shared.store.changed();
                if change == Change::Subscriptions
                    && let Err(error) = shared.reload_subscriptions().await
                {
                    tracing::warn!(%error, "could not reload webhook subscriptions");
                }
            }
            _ = &mut timer => {}
            _ = stop.changed() => {}
            // Not `tasks.join_next()`: it would wake this loop at every completion, a thread
            // hand-off per delivery. Finished tasks are reaped at the top of the loop; a
            // completion that leaves room wakes it through `wake`.
        }
        stage!(Wake, 0, 0);
    }

    // Shutting down: no more claims; let what is in flight finish, within the timeout.
    let drain = async {
        while let Some(result) = tasks.join_next().await {
            report(result);
        }
    };
    if tokio::time::timeout(shared.config.shutdown_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            abandoned = tasks.len(),
            "webhook shutdown timed out; unfinished deliveries stay in the store"
        );
        tasks.abort_all();
    }
}

/// Retention, off the claim path: a long purge must not hold deliveries back.
async fn purge(shared: Arc<Shared>, age: Duration) {
    let before = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match shared.store.purge(before).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "purged delivered webhook messages past retention"),
        Err(error) => tracing::warn!(%error, "webhook retention purge failed"),
    }
}

/// Reports the queue's depth and lag (feature `metrics`): one count in the store, off the
/// dispatcher's loop.
async fn sample_queue(shared: Arc<Shared>) {
    match shared.store.queue_stats().await {
        Ok(stats) => shared.observe.queue(stats, SystemTime::now()),
        Err(error) => {
            shared.observe.store_error(StoreCall::QueueStats);
            tracing::warn!(%error, "webhook store: queue_stats failed");
        }
    }
}

/// The subscriptions with no room for more work now, and when the earliest rate limit lifts.
fn exclusions(shared: &Shared) -> (Vec<SubscriptionId>, Option<Instant>) {
    let now = Instant::now();
    let mut exclude = Vec::new();
    let mut earliest: Option<Instant> = None;
    let subscriptions = shared
        .subscriptions
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let slots = shared.slots.view();
    // Only those holding deliveries: any other may be claimed for (and has none waiting for
    // a rate limit), so a claim costs the same with ten thousand subscriptions as with one.
    for id in slots.holding() {
        let Some(state) = subscriptions.get(*id) else {
            continue;
        };
        let held = slots.held(id);
        // Claim for a busy subscription only once a quarter of what it may hold is free
        // (claiming one delivery per completion would cost a store round trip each), and never
        // more than twice its fair share of the request slots (a slow endpoint's deliveries
        // would wait for a slot, and past their lease).
        if !slots.may_claim(id, state.hold) {
            exclude.push(*id);
        } else if held > 0
            && let Some(until) = state.rate_limited_until(now)
        {
            // Held work is still waiting for its slot; claim more when it is sent.
            exclude.push(*id);
            earliest = Some(earliest.map_or(until, |e| e.min(until)));
        }
    }
    exclude.sort_unstable();
    (exclude, earliest)
}

fn report(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result
        && error.is_panic()
    {
        tracing::error!(%error, "a webhook delivery task panicked; its lease will lapse and it will be retried");
    }
}
