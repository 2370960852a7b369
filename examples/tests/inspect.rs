//! The `inspect` example against a real SQLite store: data made by running deliveries through
//! `Webhooks` against test receivers (one delivered, one exhausted, one skipped), then every
//! command run as a child process, its table and its JSON checked, and the requeuing commands'
//! effect checked through the store.

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

mod child;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use webhooks::store::{DeliveryQuery, DeliveryStatus, SqliteStore, Store};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{DeliveryId, Notification, RetryPolicy, Subscription, WebhookEvent, Webhooks};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack", action = "reported")]
struct BearAttack {
    id: u64,
    #[webhook(label)]
    county: String,
}

/// An example binary, built by `cargo test -p webhooks-examples` (see `child::binary`).
fn example(name: &str) -> PathBuf {
    child::binary(name)
}

/// Which store `inspect` opens: its leading arguments.
struct Target(Vec<OsString>);

impl Target {
    fn sqlite(path: &Path) -> Target {
        Target(vec!["--db".into(), path.into()])
    }

    #[cfg(feature = "postgres")]
    fn postgres(url: &str, schema: &str) -> Target {
        Target(vec![
            "--postgres".into(),
            url.into(),
            "--schema".into(),
            schema.into(),
        ])
    }
}

/// Runs `inspect <target> <args>` to completion (at most [`DEADLINE`]).
fn inspect(target: &Target, args: &[&str]) -> Output {
    let mut child = Command::new(example("inspect"))
        .args(&target.0)
        .args(args)
        .env_remove("WEBHOOKS_DB")
        .env_remove("WEBHOOKS_POSTGRES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inspect");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait for inspect").is_some() {
            return child.wait_with_output().expect("inspect's output");
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("inspect {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command that must succeed; returns its stdout.
fn ok(db: &Target, args: &[&str]) -> String {
    let output = inspect(db, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "inspect {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs a command with `--json`; returns the parsed output.
fn ok_json(db: &Target, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(db, &args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("inspect {args:?}: not JSON ({e}):\n{stdout}"))
}

/// Runs a command that must fail; returns its stderr.
fn fails(db: &Target, args: &[&str]) -> String {
    let output = inspect(db, args);
    assert!(
        !output.status.success(),
        "inspect {args:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The ids of a `deliveries`/`undelivered` JSON page, in order.
fn ids(page: &Value) -> Vec<String> {
    page["deliveries"]
        .as_array()
        .expect("a `deliveries` array")
        .iter()
        .map(|d| d["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The table row that mentions `needle`.
fn row<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle} in:\n{table}"))
}

struct Data {
    delivered: DeliveryId,
    exhausted: DeliveryId,
    skipped: DeliveryId,
    sub_ok: String,
    sub_fail: String,
    sub_off: String,
}

/// One delivered (to `ok`), one exhausted (`fail` answers 500), one skipped (a disabled
/// subscription); then the runtime is shut down and the store closed.
async fn make_data(db: &Path, ok: &TestReceiver, fail: &TestReceiver) -> Data {
    let store = SqliteStore::open(db).await.expect("open the store");
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks() // the receivers are on 127.0.0.1
        .retry(RetryPolicy::never())
        .build()
        .await
        .expect("start the runtime");
    let sub_ok = hooks
        .subscribe(
            Subscription::new(ok.url())
                .unwrap()
                .events(["random_number:*"]),
        )
        .await
        .unwrap();
    let sub_fail = hooks
        .subscribe(
            Subscription::new(fail.url())
                .unwrap()
                .events(["bear_attack:*"])
                .label("county", "denver"),
        )
        .await
        .unwrap();
    let sub_off = hooks
        .subscribe(
            Subscription::new(ok.url_with_path("off"))
                .unwrap()
                .events(["random_number:*"]),
        )
        .await
        .unwrap();
    hooks.disable(sub_off.id()).await.unwrap();

    let mut notifications = hooks.notifications();
    hooks.send(&RandomNumber(7)).await.unwrap();
    hooks
        .send(&BearAttack {
            id: 1,
            county: "denver".into(),
        })
        .await
        .unwrap();
    let (mut delivered, mut exhausted) = (None, None);
    tokio::time::timeout(DEADLINE, async {
        while delivered.is_none() || exhausted.is_none() {
            match notifications.recv().await {
                Ok(Notification::Delivered { delivery, .. }) => delivered = Some(delivery),
                Ok(Notification::Exhausted { delivery, .. }) => exhausted = Some(delivery),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("notifications ended: {e}"),
            }
        }
    })
    .await
    .expect("one delivered and one exhausted within the deadline");
    let skipped = hooks
        .delivery_log(&DeliveryQuery::new().status(DeliveryStatus::Skipped))
        .await
        .unwrap()
        .items[0]
        .id;
    hooks.shutdown().await;
    drop(hooks); // releases the store file for `inspect`
    Data {
        delivered: delivered.unwrap(),
        exhausted: exhausted.unwrap(),
        skipped,
        sub_ok: sub_ok.id().to_string(),
        sub_fail: sub_fail.id().to_string(),
        sub_off: sub_off.id().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_lists_and_requeues() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("webhooks.db");
    let db = Target::sqlite(&db_path);
    let ok_receiver = TestReceiver::start().await.unwrap();
    ok_receiver.reply(Reply::status(200).body("thanks"));
    let fail_receiver = TestReceiver::start().await.unwrap();
    fail_receiver.reply(Reply::status(500).body("boom: out of numbers"));
    let data = make_data(&db_path, &ok_receiver, &fail_receiver).await;
    let sent = (ok_receiver.count(), fail_receiver.count());
    assert_eq!(sent, (1, 1));
    let (delivered, exhausted, skipped) = (
        data.delivered.to_string(),
        data.exhausted.to_string(),
        data.skipped.to_string(),
    );

    // subscriptions
    let table = ok(&db, &["subscriptions"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("URL") && header.contains("STATE"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        row(&table, &data.sub_ok).contains("random_number:*"),
        "{table}"
    );
    let fail_row = row(&table, &data.sub_fail);
    assert!(
        fail_row.contains("county=denver") && fail_row.ends_with("enabled"),
        "{table}"
    );
    assert!(
        row(&table, &data.sub_off).contains("disabled through the API"),
        "{table}"
    );
    let json = ok_json(&db, &["subscriptions"]);
    let subs = json.as_array().expect("an array of subscriptions");
    assert_eq!(subs.len(), 3);
    let by_id = |id: &str| subs.iter().find(|s| s["id"] == id).expect("listed").clone();
    assert_eq!(
        by_id(&data.sub_fail)["labels"],
        serde_json::json!({"county": "denver"})
    );
    assert_eq!(
        by_id(&data.sub_fail)["events"],
        serde_json::json!(["bear_attack:*"])
    );
    assert_eq!(by_id(&data.sub_fail)["url"], fail_receiver.url());
    assert_eq!(by_id(&data.sub_ok)["enabled"], true);
    assert_eq!(by_id(&data.sub_off)["enabled"], false);
    assert!(
        by_id(&data.sub_off)["disabled"]["reason"]
            .as_str()
            .unwrap()
            .contains("through the API")
    );

    // deliveries: all, newest first (the bear attack was sent last).
    let all = ok_json(&db, &["deliveries"]);
    assert_eq!(ids(&all).len(), 3);
    assert_eq!(ids(&all)[0], exhausted);
    assert!(all["next"].is_null());
    let first = &all["deliveries"][0];
    assert_eq!(first["status"], "exhausted");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["event"], "bear_attack:reported");
    assert_eq!(first["subscription_id"], data.sub_fail.as_str());
    let table = ok(&db, &["deliveries"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(row(&table, &exhausted).contains(" exhausted "), "{table}");
    assert!(row(&table, &delivered).contains(" delivered "), "{table}");
    assert!(row(&table, &skipped).contains(" skipped "), "{table}");
    // The table is aligned: every row's status starts in the header's STATUS column.
    let column = table.lines().next().unwrap().find("STATUS").unwrap();
    for line in table.lines().skip(1) {
        let status = &line[column..];
        assert!(
            ["exhausted", "delivered", "skipped"]
                .iter()
                .any(|s| status.starts_with(s)),
            "misaligned: {line}"
        );
    }

    // Filters.
    assert_eq!(
        ids(&ok_json(&db, &["deliveries", "--status", "exhausted"])),
        [exhausted.as_str()]
    );
    let mut two = ids(&ok_json(
        &db,
        &["deliveries", "--status", "delivered", "--status", "skipped"],
    ));
    two.sort();
    let mut expected = vec![delivered.clone(), skipped.clone()];
    expected.sort();
    assert_eq!(two, expected);
    assert_eq!(
        ids(&ok_json(
            &db,
            &["deliveries", "--event", "random_number:generate"]
        ))
        .len(),
        2
    );
    assert_eq!(
        ids(&ok_json(&db, &["deliveries", "--label", "county=denver"])),
        [exhausted.as_str()]
    );
    assert_eq!(
        ids(&ok_json(
            &db,
            &["deliveries", "--subscription", &data.sub_ok]
        )),
        [delivered.as_str()]
    );
    assert!(ok(&db, &["deliveries", "--label", "county=boulder"]).contains("no deliveries"));

    // Pages: a full page prints its cursor; following it reaches the rest, once each.
    let page1 = ok_json(&db, &["deliveries", "--limit", "2"]);
    let cursor = page1["next"]
        .as_str()
        .expect("a full page has a next cursor")
        .to_owned();
    assert!(
        ok(&db, &["deliveries", "--limit", "2"]).contains(&format!("next page: --after {cursor}"))
    );
    let page2 = ok_json(&db, &["deliveries", "--limit", "2", "--after", &cursor]);
    assert!(page2["next"].is_null());
    assert_eq!([ids(&page1), ids(&page2)].concat(), ids(&all));

    // Bad input: clear errors, non-zero exit.
    let error = fails(&db, &["deliveries", "--status", "bogus"]);
    assert!(
        error.contains("unknown status \"bogus\"") && error.contains("exhausted"),
        "{error}"
    );
    let error = fails(&db, &["deliveries", "--label", "county"]);
    assert!(error.contains("NAME=VALUE"), "{error}");
    let error = fails(&db, &["deliveries", "--after", "yesterday"]);
    assert!(error.contains("invalid cursor"), "{error}");

    // undelivered: the exhausted and the skipped one.
    let mut undelivered = ids(&ok_json(&db, &["undelivered"]));
    undelivered.sort();
    let mut expected = vec![exhausted.clone(), skipped.clone()];
    expected.sort();
    assert_eq!(undelivered, expected);

    // attempts
    let attempts = ok_json(&db, &["attempts", &exhausted]);
    let attempt = &attempts.as_array().expect("an array of attempts")[0];
    assert_eq!(attempt["number"], 1);
    assert_eq!(attempt["status_code"], 500);
    assert_eq!(attempt["error"], "status");
    assert_eq!(attempt["response_body"], "boom: out of numbers");
    assert!(attempt["latency_ms"].is_u64());
    let table = ok(&db, &["attempts", &exhausted]);
    let line = row(&table, "boom");
    assert!(
        line.contains("500") && line.contains(" status ") && line.contains(" ms"),
        "{table}"
    );
    let table = ok(&db, &["attempts", &delivered]);
    assert!(row(&table, "thanks").contains("200"), "{table}");
    assert!(ok(&db, &["attempts", &skipped]).contains("no attempts yet"));
    let unknown = DeliveryId::new().to_string();
    let error = fails(&db, &["attempts", &unknown]);
    assert!(
        error.contains(&format!("delivery {unknown} not found")),
        "{error}"
    );
    let error = fails(&db, &["attempts", "dlv_nope"]);
    assert!(error.contains("invalid delivery id"), "{error}");

    // redeliver: refused while the subscription is disabled, with the way out.
    let error = fails(&db, &["redeliver", &skipped]);
    assert!(
        error.contains("is disabled") && error.contains("recover"),
        "{error}"
    );
    let out = ok(&db, &["redeliver", &exhausted]);
    assert!(out.contains(&format!("requeued {exhausted}")), "{out}");
    {
        let store = SqliteStore::open(&db_path).await.expect("reopen the store");
        let requeued = store
            .delivery(data.exhausted)
            .await
            .unwrap()
            .expect("still there");
        assert!(
            !requeued.status.is_final(),
            "pending again: {:?}",
            requeued.status
        );
        assert!(
            requeued
                .next_attempt_at
                .is_some_and(|t| t <= SystemTime::now()),
            "due now"
        );
        assert_eq!(requeued.attempts, 1, "its attempts are kept");
        store.close().await;
    }

    // recover: enables the subscription and requeues its skipped delivery.
    let hour_ago = (SystemTime::now() - Duration::from_secs(3600))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let out = ok(&db, &["recover", &data.sub_off, "--since", &hour_ago]);
    assert!(out.contains(&format!("enabled {}", data.sub_off)), "{out}");
    assert!(out.contains("requeued 1 "), "{out}");
    {
        let store = SqliteStore::open(&db_path).await.expect("reopen the store");
        let sub = store
            .subscription(data.sub_off.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(sub.is_enabled());
        let requeued = store.delivery(data.skipped).await.unwrap().unwrap();
        assert_eq!(requeued.status, DeliveryStatus::Pending);
        assert!(
            store
                .query_deliveries(&DeliveryQuery::undelivered())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        store.close().await;
    }
    // Again, as JSON, over an RFC 3339 window: nothing left to requeue, nothing to enable.
    let json = ok_json(
        &db,
        &[
            "recover",
            &data.sub_off,
            "--since",
            "2020-01-01T01:00:00.250+01:00",
        ],
    );
    assert_eq!(json["requeued"], 0);
    assert_eq!(json["re_enabled"], false, "already enabled");
    assert_eq!(
        json["since"], "2020-01-01T00:00:00.250Z",
        "offsets are applied"
    );
    let error = fails(
        &db,
        &[
            "recover",
            &data.sub_off,
            "--since",
            "2026-01-02T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert!(
        error.contains("--until must be later than --since"),
        "{error}"
    );
    let unknown = webhooks::SubscriptionId::new().to_string();
    let error = fails(&db, &["recover", &unknown, "--since", "0"]);
    assert!(
        error.contains(&format!("subscription {unknown} not found")),
        "{error}"
    );
    let error = fails(&db, &["recover", &data.sub_off, "--since", "last tuesday"]);
    assert!(error.contains("invalid time"), "{error}");
    let error = fails(
        &db,
        &["recover", &data.sub_off, "--since", "2026-02-30T00:00:00Z"],
    );
    assert!(error.contains("invalid time"), "{error}");

    // Inspecting never sent anything.
    assert_eq!((ok_receiver.count(), fail_receiver.count()), sent);

    // A store in use by a running application: the store's own error.
    let running = SqliteStore::open(&db_path).await.unwrap();
    let error = fails(&db, &["subscriptions"]);
    assert!(
        error.contains("cannot open the SQLite store") && error.contains("already open"),
        "{error}"
    );
    running.close().await;
    let error = fails(
        &Target::sqlite(&dir.path().join("missing.db")),
        &["subscriptions"],
    );
    assert!(error.contains("does not exist"), "{error}");
}

/// A PostgreSQL schema of the test's own, dropped with everything in it when the test ends.
#[cfg(feature = "postgres")]
struct PgSchema {
    url: String,
    name: String,
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await, and runs inside the test's runtime: a runtime of its own, on a
        // thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// Waits for the delivery of `id` to succeed.
#[cfg(feature = "postgres")]
async fn delivered(rx: &mut tokio::sync::broadcast::Receiver<Notification>, id: &str) {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match rx.recv().await {
                Ok(Notification::Delivered { delivery, .. }) if delivery.to_string() == id => {
                    return;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("notifications ended: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id} was not delivered within {DEADLINE:?}"));
}

/// PostgreSQL is shared: the application keeps running while `inspect` works on the same store,
/// and sends what `redeliver` and `recover` requeue at once.
///
/// Needs `WEBHOOKS_TEST_POSTGRES_URL` (as the library's PostgreSQL tests); without it the test
/// says it was skipped and passes.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requeued_work_is_sent_by_the_running_application() {
    const URL_VAR: &str = "WEBHOOKS_TEST_POSTGRES_URL";
    let Ok(url) = std::env::var(URL_VAR) else {
        println!("skipped: {URL_VAR} is not set");
        return;
    };
    let schema = PgSchema {
        url: url.clone(),
        name: format!("webhooks_inspect_{}", DeliveryId::new().as_uuid().simple()),
    };
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(500));
    let store = webhooks::store::PostgresStore::connect_with(&url, &schema.name)
        .await
        .unwrap();
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .retry(RetryPolicy::never())
        .build()
        .await
        .unwrap();
    hooks
        .subscribe(
            Subscription::new(receiver.url())
                .unwrap()
                .events(["random_number:*"]),
        )
        .await
        .unwrap();
    let off = hooks
        .subscribe(
            Subscription::new(receiver.url_with_path("off"))
                .unwrap()
                .events(["bear_attack:*"]),
        )
        .await
        .unwrap();
    hooks.disable(off.id()).await.unwrap();
    let mut notifications = hooks.notifications();
    hooks.send(&RandomNumber(5)).await.unwrap();
    hooks
        .send(&BearAttack {
            id: 2,
            county: "boulder".into(),
        })
        .await
        .unwrap();
    let exhausted = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(Notification::Exhausted { delivery, .. }) = notifications.recv().await {
                return delivery.to_string();
            }
        }
    })
    .await
    .expect("exhausted within the deadline");

    let target = Target::postgres(&url, &schema.name);
    let undelivered = ids(&ok_json(&target, &["undelivered"]));
    assert_eq!(undelivered.len(), 2, "{undelivered:?}");
    let skipped = undelivered
        .iter()
        .find(|id| **id != exhausted)
        .unwrap()
        .clone();

    // The endpoint is fixed; the application, still running, sends what is requeued.
    receiver.reply(Reply::status(200));
    let out = ok(&target, &["redeliver", &exhausted]);
    assert!(out.contains(&format!("requeued {exhausted}")), "{out}");
    delivered(&mut notifications, &exhausted).await;
    let out = ok(&target, &["recover", &off.id().to_string(), "--since", "0"]);
    assert!(
        out.contains(&format!("enabled {}", off.id())) && out.contains("requeued 1 "),
        "{out}"
    );
    delivered(&mut notifications, &skipped).await;

    assert!(ids(&ok_json(&target, &["undelivered"])).is_empty());
    let attempts = ok_json(&target, &["attempts", &exhausted]);
    let codes: Vec<&Value> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [500, 200]);
    let subscriptions = ok_json(&target, &["subscriptions"]);
    assert!(
        subscriptions
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["enabled"] == true)
    );
    hooks.shutdown().await;
    drop(hooks);
    drop(schema);
}
