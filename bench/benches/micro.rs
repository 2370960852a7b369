//! Micro-benchmarks (`cargo bench -p webhooks-bench`):
//!
//! - `message/*`: building and serializing a message with `#[derive(WebhookEvent)]` +
//!   `Message::new`, against hand-written serde_json producing the same bytes.
//! - `sign/*`: a Standard Webhooks signature over a typical and a large body.
//! - `match_10k/*`: one event against 10,000 subscriptions, with the public `EventPattern` and
//!   `Labels::contains_all` as the runtime uses them, and through `Webhooks::send_message`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use webhooks::store::MemoryStore;
use webhooks::{EventPattern, Labels, Message, MessageId, Secret, Subscription, Webhooks};

#[allow(dead_code)] // shared with the end-to-end bench, which uses all of it
#[path = "../src/event.rs"]
mod event;

use event::InvoicePaid;

/// `InvoicePaid` without its label: the same body, to see what extracting labels costs.
#[derive(Serialize, webhooks::WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct InvoicePaidNoLabel(InvoicePaid);

/// The compact envelope, written by hand as an application without the derive would.
#[derive(Serialize)]
struct HandEnvelope<'a, T> {
    id: &'a str,
    event: &'static str,
    data: &'a T,
}

/// The same body as `Message::new`, with serde_json and a struct envelope.
fn hand_written(id: MessageId, event: &InvoicePaid) -> serde_json::Result<Vec<u8>> {
    let id = id.to_string();
    serde_json::to_vec(&HandEnvelope {
        id: &id,
        event: "invoice:paid",
        data: event,
    })
}

fn message(c: &mut Criterion) {
    let event = InvoicePaid::sample(42);
    // The same bytes, or the comparison means nothing.
    let message = Message::new(&event).expect("the event serializes");
    let hand = hand_written(message.id(), &event).expect("the event serializes");
    assert_eq!(
        String::from_utf8_lossy(message.body()),
        String::from_utf8_lossy(&hand),
        "the hand-written body differs from the derive's"
    );

    let mut group = c.benchmark_group("message");
    group.throughput(criterion::Throughput::Bytes(hand.len() as u64));
    group.bench_function("derive: Message::new", |b| {
        b.iter(|| Message::new(black_box(&event)))
    });
    let unlabelled = InvoicePaidNoLabel(event.clone());
    let plain = Message::new(&unlabelled).expect("the event serializes");
    let hand_plain = hand_written(plain.id(), &event).expect("the event serializes");
    assert_eq!(
        String::from_utf8_lossy(plain.body()),
        String::from_utf8_lossy(&hand_plain),
        "the unlabelled event's body differs"
    );
    group.bench_function("derive without a label: Message::new", |b| {
        b.iter(|| Message::new(black_box(&unlabelled)))
    });
    group.bench_function("hand-written: MessageId::new + serde_json::to_vec", |b| {
        b.iter(|| hand_written(MessageId::new(), black_box(&event)))
    });
    group.finish();
}

fn sign(c: &mut Criterion) {
    let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        .parse()
        .expect("a valid secret");
    let typical = Message::new(&InvoicePaid::sample(42))
        .expect("the event serializes")
        .body()
        .clone();
    let large = vec![b'x'; 16 * 1024];
    let id = MessageId::new().to_string();
    let mut group = c.benchmark_group("sign");
    for (name, body) in [("typical body", typical.as_ref()), ("16 KiB body", &large)] {
        group.throughput(criterion::Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{name} ({} B)", body.len()), |b| {
            b.iter(|| secret.sign(black_box(&id), black_box(1_614_265_330), black_box(body)))
        });
    }
    group.finish();
}

/// 10,000 subscriptions: a third `resource{r}:paid`, a third `resource{r}:*` (100 other
/// resources), a third `invoice:paid` scoped to one of 1,000 accounts; 1 in 500 takes every event
/// of one account (`*`). The event measured is an `invoice:paid` of an account nobody subscribed
/// to: its name matches 3,346 of them, its labels none, so it is stored with no delivery.
fn subscriptions() -> Vec<(String, Option<String>)> {
    (0..10_000u32)
        .map(|i| {
            let account = format!("acct_{:06}", i % 1000);
            match i % 3 {
                _ if i % 500 == 0 => ("*".to_owned(), Some(account)),
                0 => (format!("resource{}:paid", i % 100), None),
                1 => (format!("resource{}:*", i % 100), None),
                _ => ("invoice:paid".to_owned(), Some(account)),
            }
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let subs: Vec<(Vec<EventPattern>, Labels)> = subscriptions()
        .into_iter()
        .map(|(pattern, account)| {
            let patterns = vec![pattern.parse().expect("a valid pattern")];
            let mut labels = Labels::new();
            if let Some(account) = account {
                labels.insert("account", account);
            }
            (patterns, labels)
        })
        .collect();
    let event = InvoicePaid {
        account: "acct_nobody".to_owned(),
        ..InvoicePaid::sample(1)
    };
    let message = Message::new(&event).expect("the event serializes");
    let matches = |m: &Message| {
        subs.iter()
            .filter(|(patterns, labels)| {
                patterns.iter().any(|p| p.matches(m.event_type()))
                    && m.labels().contains_all(labels)
            })
            .count()
    };
    let mut group = c.benchmark_group("match_10k");
    group.bench_function(
        format!(
            "EventPattern + Labels::contains_all, Vec ({} match)",
            matches(&message)
        ),
        |b| b.iter(|| matches(black_box(&message))),
    );

    // The runtime's own path: `send_message` scans its subscription cache, then stores the
    // message (with no delivery: nothing wakes the dispatcher, whose own scan of every
    // subscription per wake-up would otherwise be measured too).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let hooks = rt.block_on(async {
        let hooks = Webhooks::builder()
            .store(MemoryStore::new())
            .send_only()
            .allow_private_networks()
            .build()
            .await
            .expect("a runtime");
        for (pattern, account) in subscriptions() {
            let mut sub = Subscription::new("http://127.0.0.1:9/hooks")
                .expect("a valid URL")
                .events([pattern]);
            if let Some(account) = account {
                sub = sub.label("account", account);
            }
            hooks.subscribe(sub).await.expect("a valid subscription");
        }
        hooks
    });
    group.bench_function("Webhooks::send_message, send_only, MemoryStore", |b| {
        b.to_async(&rt).iter(|| async {
            let message = Message::new(&event).expect("the event serializes");
            hooks.send_message(&message).await.expect("accepted")
        })
    });
    group.bench_function("(Message::new alone, to subtract)", |b| {
        b.iter(|| Message::new(black_box(&event)))
    });
    group.finish();
    rt.block_on(hooks.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = message, sign, matching
}
criterion_main!(benches);
