//! The `catalog` example's HTML page in a real headless browser: the example writes the page,
//! Debian's chromium (driven through chromedriver's WebDriver HTTP API, as in `button.rs`) opens
//! it from a file, and the test reads back the text a reader sees: every event name and a
//! description. The page is self-contained, so no server is needed.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/chromium.sh`; `CHROMIUM` and
//! `CHROMEDRIVER` override the paths). Without them the test fails: it never passes untested.

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

mod child;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A program the test needs, from the environment or its Debian path; missing is a failure.
fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: this test drives a real browser (`bash .ci/chromium.sh`), or set {var}",
        path.display()
    );
    path
}

/// chromedriver, killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One WebDriver command; returns its `value`, or fails the test with WebDriver's error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let mut answer: Value = response.json().await.unwrap();
    assert!(
        status.is_success(),
        "WebDriver {method} {url} failed ({status}): {answer:#}"
    );
    answer["value"].take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_page_shows_every_event() {
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = tool("CHROMIUM", "/usr/bin/chromium");
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(child::binary("catalog"))
        .arg("--html")
        .output()
        .expect("run the catalog example");
    assert!(output.status.success());
    let page = dir.path().join("events.html");
    std::fs::write(&page, &output.stdout).unwrap();

    let mut driver = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chromedriver");
    let stdout = driver.stdout.take().unwrap();
    let driver = Killed(driver);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, port)) = line.split_once("started successfully on port ") {
                let _ = tx.send(port.trim_end_matches('.').to_owned());
            }
        }
    });
    let port: u16 = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromedriver's port")
        .parse()
        .unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let capabilities = json!({
        "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", dir.path().join("profile").display()),
                ],
            },
        }},
    });
    let session = call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/session"),
        Some(capabilities),
    )
    .await;
    let session = format!("{base}/session/{}", session["sessionId"].as_str().unwrap());
    let url = format!("file://{}", page.display());
    call(
        &http,
        reqwest::Method::POST,
        &format!("{session}/url"),
        Some(json!({ "url": url })),
    )
    .await;
    let title = call(
        &http,
        reqwest::Method::GET,
        &format!("{session}/title"),
        None,
    )
    .await;
    assert_eq!(title, "Webhook events");
    // What a reader sees: innerText leaves out what CSS hides.
    let text = call(
        &http,
        reqwest::Method::POST,
        &format!("{session}/execute/sync"),
        Some(json!({ "script": "return document.body.innerText;", "args": [] })),
    )
    .await;
    let text = text.as_str().unwrap();
    for visible in [
        "bear_attack:reported",
        "bear_attack:archived",
        "random_number:generate",
        "A ranger reported an attack.",
        "Deprecated. use bear_attack:reported",
        "Verifying signatures",
        "webhook-signature",
    ] {
        assert!(
            text.contains(visible),
            "the page shows {visible:?}; it shows:\n{text}"
        );
    }
    call(&http, reqwest::Method::DELETE, &session, None).await;
    drop(driver);
}
