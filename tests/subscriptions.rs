//! Subscriptions: the pattern × label scoping matrix, the management API, validation errors and
//! the SSRF guard's refusals by default.

mod common;

use std::collections::BTreeSet;

use common::{BearAttack, RandomNumber, builder, wait_for};
use webhooks::store::{AttemptErrorKind, DeliveryStatus, MemoryStore};
use webhooks::testing::TestReceiver;
use webhooks::{Error, Notification, Subscription, SubscriptionId, Webhooks};

#[tokio::test]
async fn scoping_matrix_of_patterns_and_labels() {
    let hooks = builder().build().await.unwrap();
    let url = "http://127.0.0.1:9/";
    let mut subs = Vec::new();
    for (name, sub) in [
        ("all", Subscription::new(url).unwrap()),
        ("star", Subscription::new(url).unwrap().events(["*"])),
        (
            "numbers",
            Subscription::new(url).unwrap().events(["random_number:*"]),
        ),
        (
            "reported",
            Subscription::new(url)
                .unwrap()
                .events(["bear_attack:reported"]),
        ),
        (
            "bears",
            Subscription::new(url).unwrap().events(["bear_attack:*"]),
        ),
        (
            "denver",
            Subscription::new(url).unwrap().label("county", "denver"),
        ),
        (
            "denver_bears",
            Subscription::new(url)
                .unwrap()
                .events(["bear_attack:*"])
                .label("county", "denver"),
        ),
        (
            "boulder_reported",
            Subscription::new(url)
                .unwrap()
                .events(["bear_attack:reported"])
                .label("county", "boulder"),
        ),
        (
            "two_labels",
            Subscription::new(url)
                .unwrap()
                .label("county", "denver")
                .label("state", "co"),
        ),
        (
            "either",
            Subscription::new(url)
                .unwrap()
                .events(["random_number:generate", "bear_attack:resolved"]),
        ),
    ] {
        // Disabled so nothing is actually sent: deliveries are still created (as skipped).
        let sub = hooks.subscribe(sub).await.unwrap();
        hooks.disable(sub.id()).await.unwrap();
        subs.push((name, sub.id()));
    }
    let name_of = |id: SubscriptionId| subs.iter().find(|(_, s)| *s == id).unwrap().0;

    async fn matched(
        hooks: &Webhooks,
        id: webhooks::MessageId,
        name_of: impl Fn(SubscriptionId) -> &'static str,
    ) -> BTreeSet<&'static str> {
        hooks
            .deliveries(id)
            .await
            .unwrap()
            .into_iter()
            .map(|d| name_of(d.subscription_id))
            .collect()
    }
    let set = |names: &[&'static str]| names.iter().copied().collect::<BTreeSet<_>>();

    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    assert_eq!(
        matched(&hooks, id, name_of).await,
        set(&["all", "star", "numbers", "either"])
    );

    let id = hooks
        .send(&BearAttack::Reported {
            id: 1,
            county: "denver".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        matched(&hooks, id, name_of).await,
        set(&["all", "star", "reported", "bears", "denver", "denver_bears"])
    );

    let id = hooks
        .send(&BearAttack::Reported {
            id: 2,
            county: "boulder".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        matched(&hooks, id, name_of).await,
        set(&["all", "star", "reported", "bears", "boulder_reported"])
    );

    let id = hooks
        .send(&BearAttack::Resolved {
            id: 1,
            county: "denver".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        matched(&hooks, id, name_of).await,
        set(&["all", "star", "bears", "denver", "denver_bears", "either"])
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn an_event_nobody_wants_is_recorded_with_no_deliveries() {
    let hooks = builder().build().await.unwrap();
    hooks
        .subscribe(
            Subscription::new("http://127.0.0.1:9/")
                .unwrap()
                .events(["bear_attack:*"]),
        )
        .await
        .unwrap();
    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    assert!(hooks.deliveries(id).await.unwrap().is_empty());
    hooks.shutdown().await;
}

#[tokio::test]
async fn list_get_update_disable_enable_delete() {
    let hooks = builder().build().await.unwrap();
    let a = hooks
        .subscribe(Subscription::new("http://127.0.0.1:9/a").unwrap())
        .await
        .unwrap();
    let b = hooks
        .subscribe(
            Subscription::new("http://127.0.0.1:9/b")
                .unwrap()
                .description("bee"),
        )
        .await
        .unwrap();
    let listed: Vec<_> = hooks
        .subscriptions()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(listed, [a.id(), b.id()]);
    assert_eq!(
        hooks.subscription(b.id()).await.unwrap().description_text(),
        Some("bee")
    );

    let updated = hooks
        .update(
            hooks
                .subscription(a.id())
                .await
                .unwrap()
                .events(["random_number:*"]),
        )
        .await
        .unwrap();
    assert_eq!(updated.event_patterns(), ["random_number:*"]);
    assert_eq!(
        hooks.subscription(a.id()).await.unwrap().event_patterns(),
        ["random_number:*"]
    );

    assert!(!hooks.disable(a.id()).await.unwrap().is_enabled());
    assert!(!hooks.subscription(a.id()).await.unwrap().is_enabled());
    assert!(hooks.enable(a.id()).await.unwrap().is_enabled());

    hooks.delete(b.id()).await.unwrap();
    assert!(
        matches!(hooks.subscription(b.id()).await, Err(Error::SubscriptionNotFound(id)) if id == b.id())
    );
    assert!(matches!(
        hooks.delete(b.id()).await,
        Err(Error::SubscriptionNotFound(_))
    ));
    assert!(matches!(
        hooks.disable(b.id()).await,
        Err(Error::SubscriptionNotFound(_))
    ));
    let unknown = Subscription::new("http://127.0.0.1:9/").unwrap();
    assert!(matches!(
        hooks.update(unknown).await,
        Err(Error::SubscriptionNotFound(_))
    ));
    hooks.shutdown().await;
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_typed_errors() {
    for bad in [
        "not a url",
        "ftp://example.com/",
        "mailto:a@example.com",
        "/relative",
        "",
    ] {
        assert!(
            matches!(Subscription::new(bad), Err(Error::InvalidUrl { .. })),
            "{bad:?}"
        );
    }
    let hooks = builder().build().await.unwrap();
    let url = "http://127.0.0.1:9/";
    let cases = [
        Subscription::new(url).unwrap().events(["Random:*"]),
        Subscription::new(url).unwrap().events(["a*"]),
        Subscription::new(url)
            .unwrap()
            .header("webhook-signature", "forged"),
        Subscription::new(url)
            .unwrap()
            .header("content-type", "text/plain"),
        Subscription::new(url).unwrap().header("bad header", "x"),
        Subscription::new(url)
            .unwrap()
            .header("x-ok", "line\nbreak"),
        Subscription::new(url).unwrap().rate_limit(0),
        Subscription::new(url).unwrap().max_in_flight(0),
    ];
    for sub in cases {
        let err = hooks.subscribe(sub.clone()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidPattern { .. }
                    | Error::InvalidHeader { .. }
                    | Error::InvalidConfig { .. }
            ),
            "{sub:?}: {err:?}"
        );
        assert!(err.is_invalid_input(), "{err:?}");
    }
    assert!(
        hooks.subscriptions().await.unwrap().is_empty(),
        "nothing invalid was stored"
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .unwrap();
    for url in [
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let err = hooks
            .subscribe(Subscription::new(url).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Blocked(_)), "{url}: {err:?}");
        assert!(
            err.to_string().contains("allow_private_networks"),
            "the error says how to opt out: {err}"
        );
    }
    hooks.shutdown().await;
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused_at_send_time() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .retry(webhooks::RetryPolicy::never())
        .build()
        .await
        .unwrap();
    // `localhost` is a name: allowed at subscribe time, refused when it resolves to loopback.
    let url = format!("http://localhost:{}/", receiver.addr().port());
    hooks
        .subscribe(Subscription::new(url).unwrap())
        .await
        .unwrap();
    let mut notifications = hooks.notifications();
    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Exhausted { .. }).then_some(())
    })
    .await;
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Exhausted);
    let attempt = hooks.attempts(delivery.id).await.unwrap().remove(0);
    assert_eq!(
        attempt.error,
        Some(AttemptErrorKind::Blocked),
        "{attempt:?}"
    );
    assert_eq!(receiver.count(), 0);
    hooks.shutdown().await;
}

#[tokio::test]
async fn https_only_refuses_plain_http() {
    let hooks = Webhooks::builder()
        .store(MemoryStore::new())
        .https_only()
        .build()
        .await
        .unwrap();
    let err = hooks
        .subscribe(Subscription::new("http://example.com/").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Blocked(_)), "{err:?}");
    hooks
        .subscribe(Subscription::new("https://example.com/").unwrap())
        .await
        .unwrap();
    hooks.shutdown().await;
}

#[tokio::test]
async fn out_of_range_settings_are_clear_errors() {
    use std::time::Duration;
    for (builder, named) in [
        (builder().lease(Duration::ZERO), "lease"),
        (builder().lease(Duration::MAX), "lease"),
        (builder().max_in_flight(0), "max_in_flight"),
        (
            builder().max_in_flight_per_subscription(0),
            "max_in_flight_per_subscription",
        ),
        // A request could outlive its lease and be claimed by another worker.
        (
            builder()
                .timeout(Duration::from_secs(20))
                .lease(Duration::from_secs(30)),
            "lease",
        ),
        (builder().max_message_size(0), "max_message_size"),
        (
            builder()
                .retention(Some(Duration::from_secs(3600)))
                .idempotency_window(Duration::from_secs(7200)),
            "idempotency_window",
        ),
    ] {
        let err = builder.build().await.err().unwrap();
        assert!(
            matches!(err, Error::InvalidConfig { setting, .. } if setting == named),
            "{named}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }
    // The boundary is allowed: a lease of exactly twice the timeout.
    builder()
        .timeout(Duration::from_secs(15))
        .lease(Duration::from_secs(30))
        .build()
        .await
        .unwrap()
        .shutdown()
        .await;
}

#[tokio::test]
async fn builder_without_a_store_is_a_clear_error() {
    let err = Webhooks::builder().build().await.err().unwrap();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                setting: "store",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_catalog_refuses_patterns_that_match_no_event_and_suggests_the_nearest() {
    let hooks = webhooks::Webhooks::builder()
        .store(MemoryStore::new())
        .catalog(webhooks::Catalog::new().event::<RandomNumber>())
        .build()
        .await
        .unwrap();
    let url = "https://example.com/hooks";
    for (pattern, suggested) in [
        ("random_numbr:generate", Some("random_number:generate")),
        ("random_numbr:*", Some("random_number:*")),
        ("invoice:paid", None),
    ] {
        let err = hooks
            .subscribe(Subscription::new(url).unwrap().events([pattern]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::UnknownEventType { pattern: p, suggestion } if p == pattern
                    && suggestion.as_deref() == suggested
            ),
            "{pattern}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }
    assert!(
        hooks.subscriptions().await.unwrap().is_empty(),
        "nothing stored"
    );

    // What the catalog has goes through, and an update is checked as a subscribe is.
    for pattern in ["random_number:generate", "random_number:*", "*"] {
        hooks
            .subscribe(Subscription::new(url).unwrap().events([pattern]))
            .await
            .unwrap();
    }
    let sub = hooks
        .subscribe(Subscription::new(url).unwrap())
        .await
        .unwrap();
    let err = hooks
        .update(sub.events(["random_number:generated"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEventType { .. }), "{err:?}");
    hooks.shutdown().await;
}
