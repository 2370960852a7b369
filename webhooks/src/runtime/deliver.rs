//! One delivery attempt, start to end: wait for the subscription's limits, send (signed, by
//! [`crate::sender`]), decide what the outcome means (delivered, retry when, exhausted, disable),
//! record it in the store, and notify.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::Notification;
use crate::runtime::observe::StoreCall;
use crate::runtime::sender::Outcome;
use crate::runtime::slots::Acquire;
use crate::runtime::{routing::SubscriptionState, shared::Shared};
use crate::store::{Attempt, AttemptErrorKind, AttemptOutcome, Claim, Next};
use crate::subscription::DisableReason;

/// Gives the delivery's place back however the task ends, panics included.
struct Held {
    state: Arc<SubscriptionState>,
    shared: Arc<Shared>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Only when the dispatcher would claim: waking it on every completion costs a loop
        // each.
        let (id, limit) = (self.state.subscription.id, self.state.hold);
        if self.shared.slots.unhold(id, limit) {
            self.shared.wake.notify_one();
        }
    }
}

/// Delivers a claim the dispatcher counted as held ([`RequestSlots::hold`]).
///
/// [`RequestSlots::hold`]: crate::runtime::slots::RequestSlots::hold
pub(crate) async fn deliver(shared: Arc<Shared>, claim: Claim, state: Arc<SubscriptionState>) {
    stage!(DeliverStart, claim.message.id().as_uuid().as_u128(), 0);
    let _held = Held {
        state: state.clone(),
        shared: shared.clone(),
    };
    let Ok(_permit) = state.permits.acquire().await else {
        return;
    };
    // The send slot the store's claim gave it under the subscription's rate limit, shared by
    // every worker.
    if let Some(not_before) = claim.not_before
        && let Ok(wait) = not_before.duration_since(SystemTime::now())
    {
        tokio::time::sleep(wait).await;
    }
    // The in-process limiter stays as a second guard.
    if let Some(limiter) = &state.limiter {
        let start = limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(Instant::now());
        tokio::time::sleep_until(start.into()).await;
    }
    // Last, so that a delivery waiting for its subscription's turn takes no request slot; a
    // fair share of them (see `slots.rs`), so that a slow endpoint cannot take every one.
    let _sending = match shared.slots.acquire(state.subscription.id) {
        Acquire::Ready(slot) => slot,
        Acquire::Wait(waiter) => {
            // Waiting gave the dispatcher its place back: it may claim others' work.
            if shared.slots.can_claim() {
                shared.wake.notify_one();
            }
            match waiter.wait().await {
                Some(slot) => slot,
                None => return,
            }
        }
    };

    let delivery = &claim.delivery;
    let number = delivery.attempts + 1;
    let span = tracing::info_span!(
        "webhook_attempt",
        message_id = %delivery.message_id,
        subscription_id = %delivery.subscription_id,
        delivery_id = %delivery.id,
        attempt = number,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    async {
        let at = crate::time::now_millis();
        stage!(RequestStart, claim.message.id().as_uuid().as_u128(), 0);
        let outcome = shared
            .sender
            .send(&claim.message, &state.subscription)
            .await;
        let span = tracing::Span::current();
        span.record("latency_ms", outcome.latency.as_millis() as u64);
        let (result, retry_after) = match &outcome.result {
            Ok(answer) => {
                span.record("status", answer.status);
                let answered = AttemptOutcome::Answered {
                    status: answer.status,
                    body: answer.body.clone(),
                };
                (answered, answer.retry_after)
            }
            Err(failure) => {
                let failed = AttemptOutcome::Failed {
                    kind: failure.kind,
                    message: failure.message.clone(),
                };
                (failed, None)
            }
        };
        let attempt = Attempt::new(delivery.id, number, at, outcome.latency, result);
        let (status, error) = (attempt.status_code, attempt.error);
        let next = decide(&shared, &state, &outcome, number, error, retry_after);
        match error {
            None => tracing::debug!("delivered"),
            Some(kind) => tracing::info!(error = %kind, ?next, "attempt failed"),
        }

        let recorded = match shared
            .store
            .record_attempt(claim.lease, &attempt, next)
            .await
        {
            Ok(recorded) => recorded,
            Err(error) => {
                // Not recorded: the lease lapses and the delivery is attempted again
                // (at least once, never lost).
                shared.observe.store_error(StoreCall::Record);
                tracing::error!(%error, "could not record a webhook attempt");
                return;
            }
        };
        if !recorded.applied {
            tracing::warn!(
                "lease lost before the attempt was recorded; another worker holds the delivery"
            );
            return;
        }
        shared
            .observe
            .attempt(next, outcome.latency, delivery.next_attempt_at, at);
        notify(
            &shared,
            &claim,
            number,
            status,
            error,
            next,
            outcome.latency,
        );

        let subscription = delivery.subscription_id;
        if status == Some(410) {
            if let Err(error) = shared.disable(subscription, DisableReason::Gone).await {
                tracing::error!(%error, "could not disable a subscription that answered 410");
            }
        } else if matches!(next, Next::RetryAt(_) | Next::Exhausted)
            && let Some(reason) = shared
                .config
                .auto_disable
                .verdict(&recorded.health, SystemTime::now())
            && let Err(error) = shared.disable(subscription, reason).await
        {
            tracing::error!(%error, "could not auto-disable a failing subscription");
        }
    }
    .instrument(span)
    .await;
}

/// What an attempt's outcome means for the delivery.
fn decide(
    shared: &Shared,
    state: &SubscriptionState,
    outcome: &Outcome,
    number: u32,
    error: Option<AttemptErrorKind>,
    retry_after: Option<Duration>,
) -> Next {
    let Some(kind) = error else {
        return Next::Delivered;
    };
    let status = outcome.result.as_ref().ok().map(|a| a.status);
    if status == Some(410) {
        return Next::Skipped;
    }
    // Disabled while this attempt was in flight: keep it as skipped, recoverable.
    let disabled = shared
        .subscription_state(state.subscription.id)
        .is_some_and(|s| !s.subscription.is_enabled());
    if disabled {
        return Next::Skipped;
    }
    let policy = state
        .subscription
        .retry
        .as_ref()
        .unwrap_or(&shared.config.retry);
    let Some(mut delay) = policy.delay_after(number) else {
        return Next::Exhausted;
    };
    if status == Some(429) || kind == AttemptErrorKind::Timeout {
        delay = delay.max(shared.config.slow_down_floor);
    }
    if let Some(asked) = retry_after {
        // Never sooner than the schedule, never later than the configured cap.
        delay = delay.max(asked.min(shared.config.max_retry_after));
    }
    Next::RetryAt(SystemTime::now() + delay)
}

fn notify(
    shared: &Shared,
    claim: &Claim,
    attempt: u32,
    status: Option<u16>,
    error: Option<AttemptErrorKind>,
    next: Next,
    latency: Duration,
) {
    let (delivery, message, subscription) = (
        claim.delivery.id,
        claim.delivery.message_id,
        claim.delivery.subscription_id,
    );
    let notification = match (next, error) {
        (Next::Delivered, _) => Notification::Delivered {
            delivery,
            message,
            subscription,
            attempt,
            status: status.unwrap_or_default(),
            latency,
        },
        (Next::RetryAt(next_attempt_at), error) => Notification::AttemptFailed {
            delivery,
            message,
            subscription,
            attempt,
            status,
            error: error.unwrap_or(AttemptErrorKind::Request),
            next_attempt_at,
        },
        (Next::Exhausted, _) => Notification::Exhausted {
            delivery,
            message,
            subscription,
            attempts: attempt,
        },
        (Next::Skipped, _) => Notification::Skipped {
            delivery,
            message,
            subscription,
        },
    };
    // No receivers is fine: notifications are for whoever listens.
    let _ = shared.notifications.send(notification);
}
