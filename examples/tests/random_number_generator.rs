//! `random_number_generator` as a user runs it: a child process on a fresh SQLite file,
//! delivering over real HTTP to `TestReceiver`s; killed and run again to finish its work.

mod child;

use std::time::Duration;

use child::{DEADLINE, Example};
use webhooks::store::{SqliteStore, Store};
use webhooks::testing::{Reply, TestReceiver};
use webhooks::{Secret, Verifier};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn numbers(stdout: &str) -> Vec<u64> {
    let mut numbers: Vec<u64> = stdout
        .lines()
        .map(|line| {
            line.parse()
                .unwrap_or_else(|_| panic!("stdout has only numbers, not {line:?}"))
        })
        .collect();
    assert!(numbers.iter().all(|n| *n < 1000), "{numbers:?}");
    numbers.sort_unstable();
    numbers
}

/// The numbers in the requests with a valid signature, sorted.
fn received(requests: &[webhooks::testing::ReceivedRequest]) -> Vec<u64> {
    let mut numbers: Vec<u64> = requests
        .iter()
        .filter(|r| r.signature_ok())
        .map(|r| {
            let json = r.json().expect("a JSON body");
            assert_eq!(json["event"], "random_number:generate");
            json["data"].as_u64().expect("a number")
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn sends_signed_numbers_to_every_url_and_exits_zero() {
    let secret: Secret = SECRET.parse().unwrap();
    let first = TestReceiver::start().await.unwrap();
    let second = TestReceiver::start().await.unwrap();
    for receiver in [&first, &second] {
        receiver.verify_with(Verifier::new(secret.clone()));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");

    let mut generator = Example::start(
        "random_number_generator",
        &[
            "--url",
            &first.url(),
            "--url",
            &second.url(),
            "--secret",
            SECRET,
            "--count",
            "4",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    let (status, output) = generator.exit(DEADLINE).await;
    assert!(status.success(), "{}", generator.describe());

    let printed = numbers(&output.stdout);
    assert_eq!(printed.len(), 4, "exactly N numbers on stdout");
    for receiver in [&first, &second] {
        let requests = receiver.wait_for(4, DEADLINE).await.unwrap();
        assert_eq!(requests.len(), 4);
        assert_eq!(received(&requests), printed, "each number, signed");
    }
    assert!(
        output
            .stderr
            .contains("summary: 8 delivered, 0 failed, 0 still pending"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("allow_private_networks"),
        "says the SSRF guard is off"
    );
}

#[tokio::test]
async fn signs_with_v1a_when_given_an_ed25519_signing_key() {
    let signing_key = Secret::generate_ed25519();
    let public_key = signing_key.public_key().unwrap();
    let receiver = TestReceiver::start().await.unwrap();
    receiver.verify_with(Verifier::new(public_key.clone()));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");

    let mut generator = Example::start(
        "random_number_generator",
        &[
            "--url",
            &receiver.url(),
            "--secret",
            &signing_key.expose(),
            "--count",
            "3",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    let (status, output) = generator.exit(DEADLINE).await;
    assert!(status.success(), "{}", generator.describe());
    // It tells what the receiver needs: the public key, never the signing key.
    assert!(
        output.stderr.contains(&format!(
            "the receiver's WEBHOOK_SECRET is the public key: {}",
            public_key.expose()
        )),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("whsk_"), "{}", output.stderr);

    let requests = receiver.wait_for(3, DEADLINE).await.unwrap();
    assert_eq!(
        received(&requests),
        numbers(&output.stdout),
        "each number, signed"
    );
    for request in &requests {
        let signature = request.header("webhook-signature").unwrap();
        assert!(
            signature.starts_with("v1a,") && !signature.contains(' '),
            "{signature}"
        );
    }
}

#[tokio::test]
async fn refuses_a_public_key_which_cannot_sign() {
    let public_key = Secret::generate_ed25519().public_key().unwrap().expose();
    let receiver = TestReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");

    let mut generator = Example::start(
        "random_number_generator",
        &[
            "--url",
            &receiver.url(),
            "--count",
            "1",
            "--db",
            db.to_str().unwrap(),
        ],
        &[("WEBHOOK_SECRET", &public_key)],
    );
    let (status, output) = generator.exit(DEADLINE).await;
    assert!(!status.success(), "{}", generator.describe());
    assert_eq!(output.stdout, "", "nothing sent");
    assert!(
        output
            .stderr
            .contains("needs a `whsec_` secret or a `whsk_` signing key"),
        "{}",
        output.stderr
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn exits_non_zero_when_the_receiver_fails_everything() {
    let receiver = TestReceiver::start().await.unwrap();
    receiver.reply(Reply::status(500));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");

    let mut generator = Example::start(
        "random_number_generator",
        &[
            "--url",
            &receiver.url(),
            "--count",
            "2",
            "--wait",
            "1",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    let (status, output) = generator.exit(DEADLINE).await;
    assert!(!status.success(), "{}", generator.describe());
    assert_eq!(numbers(&output.stdout).len(), 2);
    assert!(receiver.count() >= 2, "it tried");
    assert!(
        output.stderr.contains("summary: 0 delivered"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("run again"), "{}", output.stderr);
}

#[tokio::test]
async fn a_second_run_finishes_what_a_killed_run_left_without_duplicating_subscriptions() {
    let receiver = TestReceiver::start().await.unwrap();
    // The first run's requests hang: nothing can be delivered before it is killed.
    receiver.reply(Reply::status(200).delay(Duration::from_secs(120)));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webhooks.db");
    let db_arg = db.to_str().unwrap();
    let url = receiver.url();

    let mut first = Example::start(
        "random_number_generator",
        &[
            "--url", &url, "--secret", SECRET, "--count", "3", "--db", db_arg,
        ],
        &[],
    );
    let output = first
        .wait_for("3 numbers", |o| o.stdout.lines().count() == 3)
        .await;
    let printed = numbers(&output.stdout);
    // At least one delivery is in flight (leased) when the process dies.
    receiver.wait_for(1, DEADLINE).await.unwrap();
    first.kill();
    let before = receiver.count();

    // The second run: the receiver answers at once and knows only a new secret, which the
    // stored subscription must take.
    receiver.reply(Reply::status(200));
    receiver.verify_with(Verifier::new(OTHER_SECRET.parse().unwrap()));
    let mut second = Example::start(
        "random_number_generator",
        &[
            "--url",
            &url,
            "--secret",
            OTHER_SECRET,
            "--count",
            "0",
            "--db",
            db_arg,
        ],
        &[],
    );
    let (status, output) = second.exit(DEADLINE).await;
    assert!(status.success(), "{}", second.describe());
    assert_eq!(output.stdout, "", "--count 0 sends nothing new");
    assert!(
        output.stderr.contains("resuming 3 deliveries left pending"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("summary: 3 delivered, 0 failed, 0 still pending"),
        "{}",
        output.stderr
    );

    // Each number delivered once, signed with the new secret: one subscription, not two.
    let requests = receiver.requests();
    assert_eq!(received(&requests[before..]), printed);
    let store = SqliteStore::open(&db).await.unwrap();
    let subscriptions = store.subscriptions().await.unwrap().value;
    assert_eq!(subscriptions.len(), 1, "{subscriptions:#?}");
    assert_eq!(
        subscriptions[0].signing_secret(),
        &OTHER_SECRET.parse::<Secret>().unwrap()
    );
}
