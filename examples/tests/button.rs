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

mod child;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webhooks::testing::{Reply, TestReceiver};

/// How long anything may take (the first start of chromium included).
const DEADLINE: Duration = Duration::from_secs(60);

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An example binary, built by `cargo test -p webhooks-examples` (see `child::binary`).
fn example(name: &str) -> PathBuf {
    child::binary(name)
}

/// A program the test needs, from the environment or its Debian path; missing is a failure.
fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: this test drives a real browser. Install Debian's chromium and \
         chromedriver (`apt-get install -y chromium chromium-driver`), or set {var} to its path",
        path.display()
    );
    path
}

/// A child process's stdout, line by line, read by a thread: `wait_for_line` waits with a
/// deadline, and everything read is kept for failure messages.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    fn new(stdout: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                // The test may have stopped listening; keep draining so the child never blocks.
                let _ = tx.send(line);
            }
        });
        Lines { rx, seen }
    }

    /// The part after `prefix` of the first line containing it.
    fn wait_for_line(&self, what: &str, prefix: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e) => panic!(
                    "{what} did not print {prefix:?} ({e}); its output:\n{}",
                    self.seen.lock().unwrap().join("\n")
                ),
            }
        }
    }
}

/// Kills the example when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver; asked to shut down (closing its browsers) when the test ends, killed if it
/// does not.
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Drop cannot await: a plain blocking request to its /shutdown endpoint.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn start(driver: &Chromedriver, profile: &Path) -> Browser {
        let http = reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .unwrap();
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
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
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }},
        });
        let base = format!("http://127.0.0.1:{}", driver.port);
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await;
        let id = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn click(&self, css: &str) {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        let element = found[ELEMENT]
            .as_str()
            .expect("an element reference")
            .to_owned();
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Polls the page until `done` accepts what [`PAGE_STATE`] returns.
    async fn wait_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let state = self.script(PAGE_STATE).await;
            if done(&state) {
                return state;
            }
            assert!(
                Instant::now() < end,
                "the page never showed {what}; it shows {state:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
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
    let mut answer: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: not JSON ({e})"));
    assert!(
        status.is_success(),
        "WebDriver {method} {url} failed ({status}): {answer:#}"
    );
    answer["value"].take()
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
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
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

    let mut driver = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chromedriver");
    let driver_lines = Lines::new(driver.stdout.take().unwrap());
    let port = driver_lines.wait_for_line("chromedriver", "started successfully on port ");
    let port: u16 = port
        .trim_end_matches('.')
        .parse()
        .expect("chromedriver's port");
    let driver = Chromedriver {
        child: driver,
        port,
    };

    let browser = Browser::start(&driver, &dir.path().join("chromium-profile")).await;
    browser.go(&page).await;
    let title = browser.call(reqwest::Method::GET, "/title", None).await;
    assert_eq!(title, "Random number button");

    // First press: 500, then delivered on the retry.
    browser.click("#send").await;
    let state = browser
        .wait_until("the first number delivered", |s| delivered_row(s).is_some())
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
        .wait_until("the second number delivered", |s| {
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
