//! The `catalog` example's HTML page in a real headless browser: the example writes the page,
//! Debian's chromium (driven through chromedriver's WebDriver HTTP API, as in `button.rs`) opens
//! it from a file, and the test reads back the text a reader sees: every event name and a
//! description. The page is self-contained, so no server is needed.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/chromium.sh`; `CHROMIUM` and
//! `CHROMEDRIVER` override the paths). Without them the test fails: it never passes untested.

#![allow(clippy::unwrap_used)] // in a test, a failed unwrap is a failed test

mod browser;
mod child;

use std::process::Command;

use browser::{Browser, Chromedriver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_page_shows_every_event() {
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(child::binary("catalog"))
        .arg("--html")
        .output()
        .expect("run the catalog example");
    assert!(output.status.success());
    let page = dir.path().join("events.html");
    std::fs::write(&page, &output.stdout).unwrap();

    let driver = Chromedriver::start();
    let browser = Browser::start(&driver, &dir.path().join("profile")).await;
    browser.go(&format!("file://{}", page.display())).await;
    assert_eq!(browser.title().await, "Webhook events");
    // What a reader sees: innerText leaves out what CSS hides.
    let text = browser.script("return document.body.innerText;").await;
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
    browser.close().await;
    drop(driver);
}
