//! The delivery log and replay through `Webhooks`: filters, pagination, undelivered,
//! redeliver and recover, over real HTTP.

mod common;

use std::time::{Duration, SystemTime};

use common::{BearAttack, DEADLINE, RandomNumber, Setup, builder, wait_for};
use webhooks::store::{DeliveryQuery, DeliveryStatus};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Error, Notification, RetryPolicy, Subscription};

#[tokio::test]
async fn log_filters_and_pages_newest_first() {
    let hooks = builder().build().await.unwrap();
    let url = "http://127.0.0.1:9/";
    let a = hooks
        .subscribe(Subscription::new(url).unwrap())
        .await
        .unwrap();
    let b = hooks
        .subscribe(Subscription::new(url).unwrap().events(["bear_attack:*"]))
        .await
        .unwrap();
    // Disabled: deliveries are created skipped and stay put, so the log is stable.
    hooks.disable(a.id()).await.unwrap();
    hooks.disable(b.id()).await.unwrap();

    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(hooks.send(&RandomNumber(n)).await.unwrap());
    }
    for (id, county) in [(1, "denver"), (2, "boulder"), (3, "denver")] {
        sent.push(
            hooks
                .send(&BearAttack::Reported {
                    id,
                    county: county.into(),
                })
                .await
                .unwrap(),
        );
    }

    // Everything: 5 + 3×2 deliveries, newest message first.
    let all = hooks.delivery_log(&DeliveryQuery::new()).await.unwrap();
    assert_eq!(all.items.len(), 11);
    assert!(all.next.is_none());
    assert_eq!(all.items[0].message_id, *sent.last().unwrap());
    assert_eq!(all.items[10].message_id, sent[0]);
    assert!(
        all.items
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) >= (w[1].created_at, w[1].id))
    );

    let only_b = hooks
        .delivery_log(&DeliveryQuery::new().subscription(b.id()))
        .await
        .unwrap();
    assert_eq!(only_b.items.len(), 3);
    let bears = hooks
        .delivery_log(&DeliveryQuery::new().event_type("bear_attack:reported"))
        .await
        .unwrap();
    assert_eq!(bears.items.len(), 6);
    let denver = hooks
        .delivery_log(&DeliveryQuery::new().label("county", "denver"))
        .await
        .unwrap();
    assert_eq!(denver.items.len(), 4);
    let none = hooks
        .delivery_log(&DeliveryQuery::new().status(DeliveryStatus::Delivered))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let window = hooks
        .delivery_log(&DeliveryQuery::new().between(
            SystemTime::now() + Duration::from_secs(60),
            SystemTime::now() + Duration::from_secs(120),
        ))
        .await
        .unwrap();
    assert!(window.items.is_empty());

    // Pages of 4, following the cursor (also through its text form), cover everything once.
    let mut seen = Vec::new();
    let mut query = DeliveryQuery::new().limit(4);
    loop {
        let page = hooks.delivery_log(&query).await.unwrap();
        seen.extend(page.items.iter().map(|d| d.id));
        match page.next {
            Some(cursor) => {
                query = DeliveryQuery::new()
                    .limit(4)
                    .after(cursor.to_string().parse().unwrap())
            }
            None => break,
        }
    }
    assert_eq!(seen, all.items.iter().map(|d| d.id).collect::<Vec<_>>());

    let undelivered = hooks.undelivered().await.unwrap();
    assert_eq!(
        undelivered.items.len(),
        11,
        "skipped deliveries are listed, never lost"
    );
    hooks.shutdown().await;
}

#[tokio::test]
async fn redeliver_makes_one_more_attempt_now() {
    let Setup {
        receiver,
        hooks,
        mut notifications,
        ..
    } = Setup::start(builder().retry(RetryPolicy::never())).await;
    receiver.script([Reply::status(500)]);

    let id = hooks.send(&RandomNumber(1)).await.unwrap();
    let delivery = wait_for(&mut notifications, |n| match n {
        Notification::Exhausted { delivery, .. } => Some(*delivery),
        _ => None,
    })
    .await;
    assert_eq!(hooks.undelivered().await.unwrap().items[0].id, delivery);

    let requeued = hooks.redeliver(delivery).await.unwrap();
    assert_eq!(
        requeued.status,
        DeliveryStatus::Pending,
        "requeued by hand: pending until its next attempt"
    );
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Delivered { .. }).then_some(())
    })
    .await;
    let delivery = hooks.deliveries(id).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert_eq!(delivery.attempts, 2);
    assert!(hooks.undelivered().await.unwrap().items.is_empty());
    assert!(matches!(
        hooks.redeliver(webhooks::DeliveryId::new()).await,
        Err(Error::DeliveryNotFound(_))
    ));
    hooks.shutdown().await;
}

#[tokio::test]
async fn recover_requeues_a_window_and_re_enables() {
    let Setup {
        receiver,
        hooks,
        subscription: sub,
        mut notifications,
        ..
    } = Setup::start(builder()).await;
    receiver.reply(Reply::status(410));

    let start = SystemTime::now() - Duration::from_secs(1);
    hooks.send(&RandomNumber(1)).await.unwrap();
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::SubscriptionDisabled { .. }).then_some(())
    })
    .await;
    for n in 2..5 {
        hooks.send(&RandomNumber(n)).await.unwrap();
    }
    assert_eq!(hooks.undelivered().await.unwrap().items.len(), 4);
    // A redelivery to a disabled subscription is refused with a clear error.
    let first = hooks.undelivered().await.unwrap().items[0].id;
    assert!(matches!(
        hooks.redeliver(first).await,
        Err(Error::SubscriptionDisabled(_))
    ));

    // The owner fixed the endpoint.
    receiver.reply(Reply::status(204));
    let recovered = hooks
        .recover(sub.id(), start, SystemTime::now() + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(recovered, 4);
    assert!(hooks.subscription(sub.id()).await.unwrap().is_enabled());
    let requests = receiver.wait_for(5, DEADLINE).await.unwrap();
    let mut numbers: Vec<u64> = requests[1..]
        .iter()
        .map(|r| r.json().unwrap()["data"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);
    hooks.shutdown().await;
}

#[tokio::test]
async fn purge_keeps_what_is_not_delivered() {
    let receiver = TestReceiver::start().await.unwrap();
    let hooks = builder().build().await.unwrap();
    let ok = hooks
        .subscribe(
            Subscription::new(receiver.url())
                .unwrap()
                .events(["random_number:*"]),
        )
        .await
        .unwrap();
    let off = hooks
        .subscribe(
            Subscription::new(receiver.url())
                .unwrap()
                .events(["bear_attack:*"]),
        )
        .await
        .unwrap();
    hooks.disable(off.id()).await.unwrap();
    let mut notifications = hooks.notifications();
    let delivered = hooks.send(&RandomNumber(1)).await.unwrap();
    wait_for(&mut notifications, |n| {
        matches!(n, Notification::Delivered { .. }).then_some(())
    })
    .await;
    let skipped = hooks
        .send(&BearAttack::Reported {
            id: 1,
            county: "x".into(),
        })
        .await
        .unwrap();

    assert_eq!(
        hooks.purge(Duration::from_secs(3600)).await.unwrap(),
        0,
        "nothing old enough"
    );
    assert_eq!(hooks.purge(Duration::ZERO).await.unwrap(), 1);
    assert!(hooks.deliveries(delivered).await.unwrap().is_empty());
    assert_eq!(
        hooks.deliveries(skipped).await.unwrap().len(),
        1,
        "undelivered work is kept"
    );
    let _ = ok;
    hooks.shutdown().await;
}
