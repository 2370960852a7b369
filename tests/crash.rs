//! Durability: a process that sends through `SqliteStore` is killed with SIGKILL part-way; a
//! new process on the same file delivers the rest. Every accepted event arrives at least once,
//! and a repeat carries the same `webhook-id`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use webhooks::testing::{Reply, TestReceiver};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// Kills the child if the test fails before it does.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_sender_loses_nothing_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");
    let db = db.to_str().unwrap();
    let receiver = TestReceiver::start().await.unwrap();
    // Slow answers: the first process dies with requests in flight and most not yet sent.
    receiver.reply(Reply::status(200).delay(Duration::from_secs(2)));

    let mut first = Killed(
        Command::new(WORKER)
            .args(["sqlite-send", db, &receiver.url(), "200"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = first.0.stdout.take().unwrap();
    // Read ids as they are accepted, on a thread: the pipe is blocking.
    let accepted = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            ids.push(line);
            if ids.len() == 120 {
                break;
            }
        }
        ids
    });
    let accepted: Vec<String> = tokio::task::spawn_blocking(move || accepted.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        accepted.len(),
        120,
        "the sender accepted 120 events before being killed"
    );
    first.0.kill().unwrap(); // SIGKILL: no shutdown, leases held, work in flight
    first.0.wait().unwrap();
    // The kill happened while answers were pending; the file is left as a crash leaves it.

    receiver.reply(Reply::status(200));
    let second = Command::new(WORKER)
        .args(["sqlite-resume", db])
        .status()
        .unwrap();
    assert!(second.success(), "the second process drained the store");

    let requests = receiver.requests();
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for request in &requests {
        let id = request.webhook_id().unwrap().to_owned();
        // The body names the same message as the header: a repeat is the same message.
        assert_eq!(request.json().unwrap()["id"], id.as_str());
        *arrivals.entry(id).or_default() += 1;
    }
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|id| !arrivals.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    let repeats: usize = arrivals.values().map(|n| n - 1).sum();
    let distinct: BTreeSet<&String> = arrivals.keys().collect();
    println!(
        "{} accepted, {} distinct arrivals, {repeats} repeats (in flight at the kill)",
        accepted.len(),
        distinct.len()
    );
}
