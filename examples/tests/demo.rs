//! `demo` as a newcomer runs it: one process, no set-up, exits 0 within seconds and prints the
//! story and the delivery log.

mod child;

use std::time::Duration;

use child::Example;

#[tokio::test]
async fn runs_to_completion_and_prints_the_delivery_log() {
    let mut demo = Example::start("demo", &[], &[]);
    // Retries are 200 ms apart: a few seconds are plenty, even on a slow machine.
    let (status, output) = demo.exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{}", demo.describe());
    let stdout = &output.stdout;

    // The story: the receiver saw signed requests; the first one failed and was retried.
    assert!(stdout.contains("signature valid"), "{stdout}");
    assert!(!stdout.contains("INVALID"), "{stdout}");
    assert!(
        stdout.contains("bear_attack:reported #1: attempt 1 failed (503)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bear_attack:reported #1: delivered on attempt 2 (200"),
        "{stdout}"
    );
    // The label scope: Boulder's report went nowhere.
    assert!(
        stdout.contains("#2 (county=boulder)  -> no delivery"),
        "{stdout}"
    );

    // The table: a header, then the three deliveries, oldest first.
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("STATUS"))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(table.len(), 4, "{stdout}");
    for column in [
        "STATUS",
        "ATTEMPTS",
        "EVENT",
        "SUBSCRIPTION",
        "LAST RESPONSE",
    ] {
        assert!(table[0].contains(column), "{}", table[0]);
    }
    let rows: Vec<Vec<&str>> = table[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[2])).collect();
    assert_eq!(
        summary,
        [
            ("delivered", "2", "bear_attack:reported"),
            ("delivered", "1", "bear_attack:resolved"),
            ("delivered", "1", "bear_attack:reported"),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r[3].starts_with("sub_") && r[4..] == ["200", "OK"])
    );
    assert!(
        stdout.contains("undelivered (exhausted or skipped): none"),
        "{stdout}"
    );
}
