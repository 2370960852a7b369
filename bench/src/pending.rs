//! Throughput with a backlog already pending: does the store's cost per delivery grow with the
//! number of deliveries waiting in it?
//!
//! The backlog is made the way it builds up in production: a customer's endpoint is failing,
//! and its deliveries wait for their next retry. One runtime (the one measured afterwards, as
//! an application keeps running while one of its endpoints is down):
//!
//! 1. Fill: one subscription, scoped to an account of its own (`account` label), points at a
//!    receiver process that answers `503` to everything; its retry policy waits 10 h after the
//!    first failure. `backlog` events of that account are sent; the runtime attempts each once
//!    (the failing receiver counts the attempts), records the failure, and leaves the delivery
//!    pending (status `failed`) until its retry, 10 h later.
//! 2. Settle: the fill is over when the failing receiver has counted `backlog` attempts and the
//!    store lists no delivery of that subscription as pending or in flight, so every failure
//!    is recorded.
//! 3. Reference: the 1-subscription throughput on a fresh, empty store of the same kind, now
//!    (the machine's load drifts over the minutes the fill takes).
//! 4. Measure: a subscription on the healthy receiver is added to the filled runtime, and the
//!    same `events` events as the reference are sent (accounts other than the backlog's, so
//!    none of them adds to it).
//! 5. Check: the failing receiver's count has not moved, so none of the backlog was claimed
//!    during the measurement (it would have been, had its retry been due): the measured
//!    runtime did the same work as the reference, beside a store holding `backlog` more
//!    pending deliveries, their messages and their failed attempts.
//!
//! Why not deliveries that were never attempted: a pending delivery is due at once, so the
//! runtime would (rightly) spend the measurement delivering them, and its rate would be shared
//! with them. Deliveries waiting for a retry are the backlog that stays: a store must not slow
//! down because of them.

use std::time::{Duration, Instant};

use webhooks::{
    DeliveryQuery, DeliveryStatus, RetryPolicy, Subscription, SubscriptionId, Webhooks,
};

use crate::Result;
use crate::control::Receiver;
use crate::event::{InvoicePaid, account_label};
use crate::report::Figure;
use crate::scenarios::{Rate, STALL, measure, send_events, throughput};
use crate::stores::{Ctx, StoreKind, fresh};

/// The account the backlog's events and subscription are scoped to: none of the measured
/// events is of it (they use accounts below 1,000,000).
const BACKLOG_ACCOUNT: u64 = 999_999_999;

/// How long the backlog's deliveries wait for their retry: far beyond any run.
const RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// What the scenario measured: the empty store's rate (the reference), and the rate with the
/// backlog pending, checked.
pub(crate) struct Pending {
    pub(crate) empty: Result<Rate>,
    pub(crate) loaded: Result<Figure>,
}

/// Fills a store of `kind` with `backlog` pending deliveries, then measures `events` events to
/// one subscription against the same on an empty store.
pub(crate) async fn run(
    ctx: &Ctx,
    receiver: &Receiver,
    kind: StoreKind,
    backlog: u64,
    events: u64,
) -> Pending {
    let failing = match Receiver::start_with(0, 0, 503).await {
        Ok(failing) => failing,
        Err(error) => {
            return Pending {
                empty: Err(format!("not measured: {error}").into()),
                loaded: Err(error),
            };
        }
    };
    let name = format!("pending-{}", kind.name().to_lowercase());
    let outcome = async {
        let fresh = fresh(ctx, kind, &name, ctx.builder()).await?;
        let hooks = fresh.builder.build().await?;
        let result = async {
            let fill = fill(ctx, &hooks, &failing, backlog).await?;
            let empty = throughput(ctx, receiver, kind, events, 1).await;
            if empty.is_err() {
                return Ok((empty, Err("not measured: the reference failed".into())));
            }
            hooks
                .subscribe(Subscription::new(receiver.url("/hooks/0"))?.events(["invoice:*"]))
                .await?;
            let loaded = measure(
                ctx,
                receiver,
                &hooks,
                fresh.postmaster,
                events,
                events,
                InvoicePaid::sample,
            )
            .await;
            let touched = failing.count().await?.0.saturating_sub(backlog);
            let loaded = loaded.map(|rate| Figure::Checked {
                rate,
                note: format!(
                    "{} pending, filled in {fill:.0} s; {} of them attempted meanwhile",
                    crate::report::count(backlog),
                    crate::report::count(touched)
                ),
                ok: touched == 0,
            });
            Ok::<_, crate::BoxError>((empty, loaded))
        }
        .await;
        hooks.shutdown().await;
        drop(hooks);
        fresh.cleanup.run().await;
        result
    }
    .await;
    failing.stop().await;
    match outcome {
        Ok((empty, loaded)) => Pending { empty, loaded },
        Err(error) => Pending {
            empty: Err(format!("not measured: {error}").into()),
            loaded: Err(error),
        },
    }
}

/// Steps 1 and 2: returns how long the fill took, in seconds.
async fn fill(ctx: &Ctx, hooks: &Webhooks, failing: &Receiver, backlog: u64) -> Result<f64> {
    let subscription = hooks
        .subscribe(
            Subscription::new(failing.url("/backlog"))?
                .events(["invoice:paid"])
                .label("account", account_label(BACKLOG_ACCOUNT))
                .retry(RetryPolicy::schedule([RETRY_AFTER]).jitter(0.0)),
        )
        .await?;
    failing.reset(false).await?;
    eprintln!("   filling: {backlog} deliveries to an endpoint answering 503");
    let started = Instant::now();
    send_events(hooks, ctx.concurrency, backlog, |n| {
        InvoicePaid::of_account(n, BACKLOG_ACCOUNT)
    })
    .await?;
    failing.wait_for(backlog, STALL).await?;
    settle(hooks, subscription.id()).await?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("   filled in {secs:.1} s");
    Ok(secs)
}

/// Waits until no delivery of `subscription` is pending or in flight: every attempt the failing
/// receiver counted has been recorded, and what is left waits for its retry.
async fn settle(hooks: &Webhooks, subscription: SubscriptionId) -> Result<()> {
    let query = DeliveryQuery::new()
        .subscription(subscription)
        .status(DeliveryStatus::Pending)
        .status(DeliveryStatus::InFlight)
        .limit(1);
    let started = Instant::now();
    loop {
        if hooks.delivery_log(&query).await?.items.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= STALL {
            return Err(format!(
                "the backlog's attempts were not all recorded within {} s",
                STALL.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
