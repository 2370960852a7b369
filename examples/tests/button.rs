//! The `random_number_button` example end to end, in a real headless browser: the compiled
//! example runs as a child process sending to a `TestReceiver`; Debian's chromium, driven
//! through chromedriver's WebDriver HTTP API, presses the button and watches the delivery log
//! on the page until the delivery shows as delivered. The receiver must have got the number the
//! page shows.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `CHROMIUM` and `CHROMEDRIVER` override the paths). Without them the test
//! fails: it never passes untested.

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

mod browser;
mod child;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use browser::{Browser, Chromedriver, DEADLINE, Lines};
use serde_json::Value;
use webhooks::testing::{Reply, TestReceiver};

/// An example binary, built by `cargo test -p webhooks-examples` (see `child::binary`).
fn example(name: &str) -> PathBuf {
    child::binary(name)
}

/// Kills the example when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the page shows: the number last sent, and the log's rows, newest first.
const PAGE_STATE: &str = r##"
const out = document.getElementById("number");
const rows = [...document.querySelectorAll("#log tbody tr")].map(row => ({
  message: row.dataset.message,
  status: row.dataset.status,
  number: row.querySelector(".number").textContent,
  url: row.querySelector(".url").textContent,
  attempts: row.querySelector(".attempts").textContent,
  responses: row.querySelector(".responses").textContent,
}));
return {
  number: out.dataset.number || null,
  message: out.dataset.message || null,
  text: out.textContent,
  error: document.getElementById("error").textContent,
  rows,
};
"##;

/// The row of the message last sent, if it is delivered.
fn delivered_row(state: &Value) -> Option<&Value> {
    let message = state["message"].as_str()?;
    state["rows"]
        .as_array()?
        .iter()
        .find(|row| row["message"] == message && row["status"] == "delivered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_button_sends_a_number_and_the_page_shows_it_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start().await.unwrap();
    // The first request fails: the page must follow the retry to delivered.
    receiver.script([Reply::status(500)]);

    let mut app = Command::new(example("random_number_button"))
        .args(["--port", "0", "--url", &receiver.url(), "--db"])
        .arg(dir.path().join("webhooks.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let app_lines = Lines::new(app.stdout.take().unwrap());
    let _app = Killed(app);
    let page = app_lines.wait_for_line("random_number_button", "listening on ");
    assert!(
        app_lines
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("private networks allowed")),
        "the example says that it allows private networks"
    );

    let driver = Chromedriver::start();

    let browser = Browser::start(&driver, &dir.path().join("chromium-profile")).await;
    browser.go(&page).await;
    let title = browser.call(reqwest::Method::GET, "/title", None).await;
    assert_eq!(title, "Random number button");

    // First press: 500, then delivered on the retry.
    browser.click("#send").await;
    let state = browser
        .wait_until("the first number delivered", PAGE_STATE, |s| {
            delivered_row(s).is_some()
        })
        .await;
    let first_message = state["message"].as_str().unwrap().to_owned();
    let first_number: u32 = state["number"].as_str().unwrap().parse().unwrap();
    assert!(first_number < 1000);
    assert_eq!(state["text"], format!("Sent {first_number}"));
    let row = delivered_row(&state).unwrap();
    assert_eq!(row["number"], first_number.to_string());
    assert_eq!(row["url"], receiver.url());
    assert_eq!(row["attempts"], "2");
    assert_eq!(row["responses"], "500, 200");
    assert_eq!(state["error"], "");

    let requests = receiver.wait_for(2, DEADLINE).await.unwrap();
    for request in &requests {
        assert_eq!(request.webhook_id(), Some(first_message.as_str()));
        let body = request.json().unwrap();
        assert_eq!(body["event"], "random_number:generate");
        assert_eq!(
            body["data"], first_number,
            "the receiver got the number the page shows"
        );
    }

    // Second press: a new number, delivered at once, listed above the first.
    browser.click("#send").await;
    let state = browser
        .wait_until("the second number delivered", PAGE_STATE, |s| {
            s["message"] != first_message.as_str() && delivered_row(s).is_some()
        })
        .await;
    let second_number: u32 = state["number"].as_str().unwrap().parse().unwrap();
    let row = delivered_row(&state).unwrap();
    assert_eq!(row["number"], second_number.to_string());
    assert_eq!(row["attempts"], "1");
    assert_eq!(row["responses"], "200");
    let rows = state["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["message"], state["message"]);
    assert_eq!(rows[1]["message"], first_message.as_str());

    let requests = receiver.wait_for(3, DEADLINE).await.unwrap();
    assert_eq!(requests[2].webhook_id(), state["message"].as_str());
    assert_eq!(requests[2].json().unwrap()["data"], second_number);

    browser.close().await;
}
