//! Delivery over real HTTP on 127.0.0.1: headers and signatures, retries, `Retry-After`, 410,
//! redirects, timeouts, the response cap, ordering, isolation of slow endpoints, rate limits,
//! auto-disable, secret rotation, Ed25519 signing keys, `send_to` and shutdown.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    BearAttack, DEADLINE, RandomNumber, Setup, assert_rate, builder, collect_until, fast_retries,
    wait_for,
};
use webhooks::signing::{SecretKind, VerifyError};
use webhooks::store::{AttemptErrorKind, DeliveryStatus, SqliteStore};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{
    AutoDisable, DisableReason, Error, Notification, RetryPolicy, Secret, Subscription, Verifier,
};

#[tokio::test]
async fn request_has_exact_headers_body_and_a_valid_signature() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = builder().build().await.unwrap();
    let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
    let sub = hooks
        .subscribe(
            Subscription::new(receiver.url_with_path("/hooks/in?x=1"))
                .unwrap()
                .secret(secret.clone())
                .header("x-customer", "42"),
        )
        .await
        .unwrap();
    assert_eq!(sub.signing_secret(), &secret);

    let id = hooks.send(&RandomNumber(863)).await.unwrap();
    let request = receiver.wait_for(1, DEADLINE).await.unwrap().remove(0);

    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path, "/hooks/in?x=1",
        "the URL's path and query are kept"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("webhooks/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.header("x-customer"), Some("42"));
    assert_eq!(request.webhook_id(), Some(id.to_string().as_str()));
    let expected_body = format!(r#"{{"id":"{id}","event":"random_number:generate","data":863}}"#);
    assert_eq!(std::str::from_utf8(&request.body).unwrap(), expected_body);
    let timestamp: u64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        now.abs_diff(timestamp) < 60,
        "timestamp {timestamp} vs now {now}"
    );
    let signature = request.header("webhook-signature").unwrap();
    assert!(
        signature.starts_with("v1,") && !signature.contains(' '),
        "{signature}"
    );

    // Our verifier accepts it...
    Verifier::new(secret.clone())
        .verify_headers(&request.headers, &request.body)
        .unwrap();
    // ...and so does the independent reference implementation.
    let reference = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
    reference.verify(&request.body, &request.headers).unwrap();
    hooks.shutdown().await;
}

#[tokio::test]
async fn failures_are_retried_until_success_with_a_stable_webhook_id() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder()).await;
    receiver.script([
        Reply::status(500),
        Reply::drop_connection(),
        Reply::status(503),
    ]);

    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    let seen = collect_until(&mut notifications, |n| {
        n.iter()
            .any(|n| matches!(n, Notification::Delivered { .. }))
    })
    .await;

    let failures: Vec<_> = seen
        .iter()
        .filter_map(|n| match n {
            Notification::AttemptFailed {
                attempt,
                status,
                error,
                ..
            } => Some((*attempt, *status, *error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [
            (1, Some(500), AttemptErrorKind::Status),
            (2, None, AttemptErrorKind::Request),
            (3, Some(503), AttemptErrorKind::Status),
        ]
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    let answered: Vec<_> = requests.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [Some(500), None, Some(503), Some(200)]);
    assert!(
        requests
            .iter()
            .all(|r| r.webhook_id() == Some(id.to_string().as_str()))
    );

    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert_eq!(delivery.attempts, 4);
    let attempts = hooks.attempts(delivery.id).await.unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(statuses, [Some(500), None, Some(503), Some(200)]);
    hooks.shutdown().await;
}

#[tokio::test]
async fn exhausted_after_the_last_attempt_and_kept() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder().retry(fast_retries(2))).await;
    receiver.reply(Reply::status(500).body("nope"));

    let id = hooks.send(&RandomNumber(2)).await.unwrap();
    let attempts = wait_for(&mut notifications, |n| match n {
        Notification::Exhausted { attempts, .. } => Some(*attempts),
        _ => None,
    })
    .await;
    assert_eq!(attempts, 3);
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Exhausted);
    let attempts = hooks.attempts(delivery.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(&attempts[0].response_body[..], b"nope");
    assert_eq!(receiver.count(), 3);
    hooks.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder()).await;
    receiver.script([Reply::status(429).retry_after(1)]);

    hooks.send(&RandomNumber(3)).await.unwrap();
    let requests = receiver.wait_for(2, DEADLINE).await.unwrap();
    let gap = requests[1].at.duration_since(requests[0].at).unwrap();
    // The schedule says 20 ms; the endpoint asked for 1 s.
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Delivered { .. }).then_some(())
    })
    .await;
    hooks.shutdown().await;
}

#[tokio::test]
async fn slow_down_floor_applies_to_429_and_timeouts() {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.script([Reply::status(429)]);
    let floor = Duration::from_secs(3600);
    let hooks = builder().slow_down_floor(floor).build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let mut notifications = hooks.notifications();

    let sent = SystemTime::now();
    hooks.send(&RandomNumber(4)).await.unwrap();
    let next = wait_for(&mut notifications, |n| match n {
        Notification::AttemptFailed {
            next_attempt_at, ..
        } => Some(*next_attempt_at),
        _ => None,
    })
    .await;
    assert!(next >= sent + floor, "a 429 waits at least the floor");
    hooks.shutdown().await;
}

#[tokio::test]
async fn gone_disables_the_subscription_and_later_deliveries_are_skipped() {
    let Setup {
        receiver,
        hooks,
        subscription: sub,
        mut notifications,
        ..
    } = Setup::start(builder()).await;
    receiver.reply(Reply::status(410));

    let first = hooks.send(&RandomNumber(5)).await.unwrap();
    let reason = wait_for(&mut notifications, |n| match n {
        Notification::SubscriptionDisabled {
            subscription,
            reason,
        } if *subscription == sub.id() => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisableReason::Gone);
    let stored = hooks.subscription(sub.id()).await.unwrap();
    assert!(!stored.is_enabled());
    assert_eq!(stored.disabled().unwrap().reason, DisableReason::Gone);
    assert_eq!(
        hooks.deliveries(first).await.unwrap()[0].status,
        DeliveryStatus::Skipped
    );

    let later = hooks.send(&RandomNumber(6)).await.unwrap();
    let deliveries = hooks.deliveries(later).await.unwrap();
    assert_eq!(deliveries.len(), 1, "kept, not dropped");
    assert_eq!(deliveries[0].status, DeliveryStatus::Skipped);
    assert_eq!(receiver.count(), 1);
    hooks.shutdown().await;
}

#[tokio::test]
async fn redirects_are_failures_and_never_followed() {
    let target = TestReceiver::start().await.unwrap();
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder().retry(RetryPolicy::never())).await;
    receiver.reply(Reply::status(307).header("location", target.url()));

    let id = hooks.send(&RandomNumber(7)).await.unwrap();
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Exhausted { .. }).then_some(())
    })
    .await;
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    let attempts = hooks.attempts(delivery.id).await.unwrap();
    assert_eq!(attempts[0].status_code, Some(307));
    assert_eq!(attempts[0].error, Some(AttemptErrorKind::Status));
    assert_eq!(target.count(), 0, "the redirect was not followed");
    hooks.shutdown().await;
}

#[tokio::test]
async fn timeouts_fail_the_attempt() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder().timeout(Duration::from_millis(200))).await;
    receiver.script([Reply::status(200).delay(Duration::from_secs(5))]);

    let id = hooks.send(&RandomNumber(8)).await.unwrap();
    let error = wait_for(&mut notifications, |n| match n {
        Notification::AttemptFailed { error, .. } => Some(*error),
        _ => None,
    })
    .await;
    assert_eq!(error, AttemptErrorKind::Timeout);
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Delivered { .. }).then_some(())
    })
    .await;
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    let attempts = hooks.attempts(delivery.id).await.unwrap();
    assert!(
        attempts[0].latency < Duration::from_secs(2),
        "{:?}",
        attempts[0].latency
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn response_body_is_kept_up_to_the_cap() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder()).await;
    receiver.reply(Reply::status(200).body(vec![b'x'; 100_000]));

    let id = hooks.send(&RandomNumber(9)).await.unwrap();
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Delivered { .. }).then_some(())
    })
    .await;
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    let attempt = hooks.attempts(delivery.id).await.unwrap().remove(0);
    assert_eq!(attempt.response_body.len(), 16 * 1024);
    hooks.shutdown().await;
}

#[tokio::test]
async fn ordered_subscription_keeps_send_order_through_failures() {
    let receiver = TestReceiver::start().await.unwrap();
    // The first message fails twice: the later ones must wait behind it.
    receiver.script([Reply::status(500), Reply::status(500)]);
    let hooks = builder().build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap().ordered(true))
        .await
        .unwrap();

    for n in 0..6 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    let requests = receiver.wait_for(8, DEADLINE).await.unwrap();
    let order: Vec<u64> = requests
        .iter()
        .map(|r| r.json().unwrap()["data"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [0, 0, 0, 1, 2, 3, 4, 5]);
    hooks.shutdown().await;
}

#[tokio::test]
async fn a_slow_subscriber_does_not_delay_a_healthy_one() {
    let slow = TestReceiver::start().await.unwrap();
    slow.reply(Reply::status(200).delay(Duration::from_secs(3)));
    let healthy = TestReceiver::start().await.unwrap();
    let hooks = builder()
        .max_in_flight_per_subscription(4)
        .timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let slow_sub = hooks
        .subscribe(Subscription::new(slow.url()).unwrap())
        .await
        .unwrap();
    let healthy_sub = hooks
        .subscribe(Subscription::new(healthy.url()).unwrap())
        .await
        .unwrap();
    let mut notifications = hooks.notifications();

    for n in 0..40 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    let seen = collect_until(&mut notifications, |seen| {
        seen.iter()
            .filter(|n| matches!(n, Notification::Delivered { subscription, .. } if *subscription == healthy_sub.id()))
            .count()
            == 40
    })
    .await;
    // Every healthy delivery finished before the slow endpoint's first attempt did.
    assert!(
        !seen.iter().any(|n| matches!(
            n,
            Notification::AttemptFailed { subscription, .. } | Notification::Delivered { subscription, .. }
                if *subscription == slow_sub.id()
        )),
        "{seen:#?}"
    );
    assert!(
        slow.count() <= 4,
        "per-subscription limit: {} requests in flight",
        slow.count()
    );
    hooks.shutdown().await;
}

/// An endpoint that reads each request and answers only once the test releases it: a
/// subscriber that hangs. Counts the requests it holds.
struct Hanging {
    url: String,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl Hanging {
    async fn start() -> std::io::Result<Hanging> {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hang", listener.local_addr()?);
        let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let counter = held.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (held, mut released) = (counter.clone(), released.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        // One request: its head, then its body.
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            match stream.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        held.fetch_add(1, Ordering::SeqCst);
                        if released.wait_for(|released| *released).await.is_err() {
                            return;
                        }
                        let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                        if stream.get_mut().write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Hanging { url, held, release })
    }

    fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// With every request slot of the process free to any subscription, a hanging endpoint's
/// requests, which never end, would take them one by one until none was left for the others.
/// Each subscription with work has its share.
#[tokio::test]
async fn a_hanging_subscriber_does_not_take_every_request_slot() {
    let hanging = Hanging::start().await.unwrap();
    let healthy = [
        TestReceiver::start().await.unwrap(),
        TestReceiver::start().await.unwrap(),
        TestReceiver::start().await.unwrap(),
    ];
    // Per subscription, the default 64: the hanging one alone may fill the 8 slots.
    let hooks = builder()
        .max_in_flight(8)
        .timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(Subscription::new(hanging.url.clone()).unwrap())
        .await
        .unwrap();
    for receiver in &healthy {
        hooks
            .subscribe(Subscription::new(receiver.url()).unwrap())
            .await
            .unwrap();
    }

    for n in 0..40 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    // Every healthy subscription gets all of its deliveries while the other one hangs.
    for receiver in &healthy {
        let requests = receiver.wait_for(40, DEADLINE).await.unwrap();
        assert_eq!(requests.len(), 40);
    }
    // It was sent to, and held those requests all along.
    assert!(
        hanging.held() >= 1,
        "the hanging endpoint was never sent to"
    );

    hanging.release.send_replace(true);
    hooks.shutdown().await;
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = builder().build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap().rate_limit(20))
        .await
        .unwrap();

    let since = SystemTime::now();
    for n in 0..10 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    let requests = receiver.wait_for(10, DEADLINE).await.unwrap();
    // Not the gap between two arrivals: a request that leaves late (a loaded machine) arrives
    // close to the next one. See `assert_rate`.
    let times: Vec<SystemTime> = requests.iter().map(|r| r.at).collect();
    assert_rate(since, &times, 20);
    hooks.shutdown().await;
}

#[tokio::test]
async fn auto_disable_after_consecutive_exhausted_deliveries() {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(500));
    let hooks = builder()
        .retry(RetryPolicy::never())
        .auto_disable(AutoDisable {
            after_failing_for: None,
            after_exhausted: Some(2),
        })
        .build()
        .await
        .unwrap();
    let sub = hooks
        .subscribe(Subscription::new(receiver.url()).unwrap().ordered(true))
        .await
        .unwrap();
    let mut notifications = hooks.notifications();

    for n in 0..3 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    let reason = wait_for(&mut notifications, |n| match n {
        Notification::SubscriptionDisabled { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisableReason::ConsecutiveExhausted(2));
    assert!(!hooks.subscription(sub.id()).await.unwrap().is_enabled());
    // The third message was not attempted: it is kept as skipped.
    assert_eq!(receiver.count(), 2);
    hooks.shutdown().await;
}

#[tokio::test]
async fn auto_disable_after_failing_for_a_period() {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(500));
    let hooks = builder()
        .auto_disable(AutoDisable {
            after_failing_for: Some(Duration::from_millis(50)),
            after_exhausted: None,
        })
        .retry(RetryPolicy::schedule(vec![Duration::from_millis(30); 100]).jitter(0.0))
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let mut notifications = hooks.notifications();

    hooks.send(&RandomNumber(1)).await.unwrap();
    let reason = wait_for(&mut notifications, |n| match n {
        Notification::SubscriptionDisabled { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, DisableReason::FailingSince(_)),
        "{reason:?}"
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_overlap() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = builder()
        .rotation_overlap(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let sub = hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let old = sub.signing_secret().clone();
    let new = Secret::generate();
    let rotated = hooks
        .rotate_secret(sub.id(), Some(new.clone()))
        .await
        .unwrap();
    assert_eq!(rotated.signing_secret(), &new);

    hooks.send(&RandomNumber(1)).await.unwrap();
    let request = receiver.wait_for(1, DEADLINE).await.unwrap().remove(0);
    let signature = request.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    Verifier::new(old.clone())
        .verify_headers(&request.headers, &request.body)
        .unwrap();
    Verifier::new(new.clone())
        .verify_headers(&request.headers, &request.body)
        .unwrap();

    // With no overlap the old secret stops signing at once.
    let hooks2 = builder()
        .rotation_overlap(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let receiver2 = TestReceiver::start().await.unwrap();
    let sub2 = hooks2
        .subscribe(
            Subscription::new(receiver2.url())
                .unwrap()
                .secret(old.clone()),
        )
        .await
        .unwrap();
    hooks2
        .rotate_secret(sub2.id(), Some(new.clone()))
        .await
        .unwrap();
    hooks2.send(&RandomNumber(2)).await.unwrap();
    let request = receiver2.wait_for(1, DEADLINE).await.unwrap().remove(0);
    assert!(
        Verifier::new(old)
            .verify_headers(&request.headers, &request.body)
            .is_err()
    );
    Verifier::new(new)
        .verify_headers(&request.headers, &request.body)
        .unwrap();
    hooks.shutdown().await;
    hooks2.shutdown().await;
}

#[tokio::test]
async fn an_ed25519_signing_key_signs_v1a_that_its_public_key_verifies() {
    // SQLite, so the key also goes through the stored text form (`whsk_…`) and back.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("webhooks.db"))
        .await
        .unwrap();
    let hooks = builder()
        .store(store)
        .rotation_overlap(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let receiver = TestReceiver::start().await.unwrap();
    let signing_key = Secret::generate_ed25519();
    // The receiver gets only the public key, as text.
    let public_key: Secret = signing_key.public_key().unwrap().expose().parse().unwrap();
    receiver.verify_with(Verifier::new(public_key.clone()));

    // A public key cannot sign: refused, and nothing stored.
    let refused = hooks
        .subscribe(
            Subscription::new(receiver.url())
                .unwrap()
                .secret(public_key.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::SecretCannotSign {
                kind: SecretKind::Ed25519PublicKey
            }
        ),
        "{refused}"
    );
    assert!(refused.is_invalid_input());
    assert!(hooks.subscriptions().await.unwrap().is_empty());

    let sub = hooks
        .subscribe(
            Subscription::new(receiver.url())
                .unwrap()
                .secret(signing_key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        hooks.subscription(sub.id()).await.unwrap().signing_secret(),
        &signing_key
    );
    hooks.send(&RandomNumber(863)).await.unwrap();
    let request = receiver.wait_for(1, DEADLINE).await.unwrap().remove(0);
    let signature = request.header("webhook-signature").unwrap();
    assert!(
        signature.starts_with("v1a,") && !signature.contains(' '),
        "{signature}"
    );
    assert_eq!(request.signature, Some(Ok(())));
    // A symmetric secret finds nothing it can check.
    assert_eq!(
        Verifier::new(Secret::generate()).verify_headers(&request.headers, &request.body),
        Err(VerifyError::NoSignatures)
    );

    // Rotating to the public key is refused as well; the signing key stays.
    let refused = hooks
        .rotate_secret(sub.id(), Some(public_key.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::SecretCannotSign { .. }),
        "{refused}"
    );
    assert_eq!(
        hooks.subscription(sub.id()).await.unwrap().signing_secret(),
        &signing_key
    );

    // Rotating to a `whsec_` secret: during the overlap, one entry of each version.
    let symmetric = Secret::generate();
    hooks
        .rotate_secret(sub.id(), Some(symmetric.clone()))
        .await
        .unwrap();
    hooks.send(&RandomNumber(864)).await.unwrap();
    let request = receiver.wait_for(2, DEADLINE).await.unwrap().remove(1);
    let signature = request.header("webhook-signature").unwrap();
    let versions: Vec<&str> = signature
        .split(' ')
        .map(|entry| entry.split_once(',').unwrap().0)
        .collect();
    assert_eq!(versions, ["v1", "v1a"], "{signature}");
    assert_eq!(
        request.signature,
        Some(Ok(())),
        "the public key still verifies"
    );
    Verifier::new(symmetric.clone())
        .verify_headers(&request.headers, &request.body)
        .unwrap();
    // The reference implementation checks the `v1` entry and ignores the other.
    let reference = standardwebhooks::Webhook::new(&symmetric.expose()).unwrap();
    reference.verify(&request.body, &request.headers).unwrap();
    hooks.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_attempts_finish_and_refuses_new_sends() {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(200).delay(Duration::from_millis(300)));
    let hooks = builder().build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();

    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    receiver.wait_for(1, DEADLINE).await.unwrap();
    hooks.shutdown().await;
    assert_eq!(
        hooks.deliveries(id).await.unwrap()[0].status,
        DeliveryStatus::Delivered
    );
    assert!(matches!(
        hooks.send(&RandomNumber(2)).await,
        Err(webhooks::Error::ShutDown)
    ));
}

#[tokio::test]
async fn fan_out_sends_the_same_bytes_to_every_matching_subscription() {
    let receivers = [
        TestReceiver::start().await.unwrap(),
        TestReceiver::start().await.unwrap(),
        TestReceiver::start().await.unwrap(),
    ];
    let hooks = builder().build().await.unwrap();
    for receiver in &receivers {
        hooks
            .subscribe(
                Subscription::new(receiver.url())
                    .unwrap()
                    .events(["bear_attack:*"]),
            )
            .await
            .unwrap();
    }
    hooks
        .send(&BearAttack::Reported {
            id: 1,
            county: "denver".into(),
        })
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for receiver in &receivers {
        bodies.push(receiver.wait_for(1, DEADLINE).await.unwrap().remove(0).body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    hooks.shutdown().await;
}

#[tokio::test]
async fn a_send_only_runtime_stores_but_never_delivers() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = builder().send_only().build().await.unwrap();
    hooks
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    assert_eq!(
        hooks.deliveries(id).await.unwrap()[0].status,
        DeliveryStatus::Pending
    );
    // A delivering runtime, started after, gets its event through first: had the send-only
    // one a dispatcher, event 1 (woken at once on send) would have arrived before event 2.
    let delivering = builder().build().await.unwrap();
    delivering
        .subscribe(Subscription::new(receiver.url()).unwrap())
        .await
        .unwrap();
    delivering.send(&RandomNumber(2)).await.unwrap();
    let requests = receiver.wait_for(1, DEADLINE).await.unwrap();
    assert_eq!(
        requests[0].json().unwrap()["data"],
        2,
        "only the delivering runtime sent"
    );
    assert_eq!(
        hooks.deliveries(id).await.unwrap()[0].status,
        DeliveryStatus::Pending
    );
    assert_eq!(receiver.count(), 1);
    hooks.shutdown().await;
    delivering.shutdown().await;
}

#[tokio::test]
async fn send_to_reaches_one_subscription_alone_whatever_its_patterns() {
    let chosen = TestReceiver::start().await.unwrap();
    let other = TestReceiver::start().await.unwrap();
    let hooks = builder().build().await.unwrap();
    // The chosen one does not even subscribe to the event: a test event reaches it anyway.
    let target = hooks
        .subscribe(
            Subscription::new(chosen.url())
                .unwrap()
                .events(["bear_attack:*"]),
        )
        .await
        .unwrap();
    hooks
        .subscribe(Subscription::new(other.url()).unwrap())
        .await
        .unwrap();

    let mut notifications = hooks.notifications();
    let message = webhooks::Message::new(&RandomNumber(4)).unwrap();
    let id = hooks.send_to(target.id(), &message).await.unwrap();
    assert_eq!(id, message.id());
    let request = chosen.wait_for(1, DEADLINE).await.unwrap().remove(0);
    assert_eq!(request.webhook_id(), Some(id.to_string().as_str()));
    let deliveries = hooks.deliveries(id).await.unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "one delivery, to the chosen subscription"
    );
    assert_eq!(deliveries[0].subscription_id, target.id());
    let delivered_to = wait_for(&mut notifications, |n| match n {
        Notification::Delivered {
            message,
            subscription,
            ..
        } if *message == id => Some(*subscription),
        _ => None,
    })
    .await;
    assert_eq!(delivered_to, target.id());
    assert!(
        other.requests().is_empty(),
        "the other subscription got nothing"
    );

    // Disabled or unknown: refused, nothing stored.
    hooks.disable(target.id()).await.unwrap();
    let refused = webhooks::Message::new(&RandomNumber(5)).unwrap();
    let error = hooks.send_to(target.id(), &refused).await.unwrap_err();
    assert!(matches!(error, Error::SubscriptionDisabled(id) if id == target.id()));
    assert!(hooks.deliveries(refused.id()).await.unwrap().is_empty());
    let unknown = webhooks::SubscriptionId::new();
    let error = hooks.send_to(unknown, &refused).await.unwrap_err();
    assert!(matches!(error, Error::SubscriptionNotFound(id) if id == unknown));
    hooks.shutdown().await;
}
