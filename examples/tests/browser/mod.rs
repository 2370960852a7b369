//! What the browser tests share: chromedriver started on a free port, a WebDriver session
//! driven over its HTTP API, and a child process's output read line by line with a deadline.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long anything may take (the first start of chromium included).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// WebDriver's key for an element reference.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A program the test needs, from the environment or its Debian path; missing is a failure.
pub fn tool(var: &str, default: &str) -> PathBuf {
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
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    pub fn new(stdout: ChildStdout) -> Self {
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
    pub fn wait_for_line(&self, what: &str, prefix: &str) -> String {
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

/// chromedriver; asked to shut down (closing its browsers) when the test ends, killed if it
/// does not.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    /// Starts chromedriver on a free port (fails the test if it is not installed).
    pub fn start() -> Chromedriver {
        let mut driver = Command::new(tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        let lines = Lines::new(driver.stdout.take().expect("piped"));
        let port = lines.wait_for_line("chromedriver", "started successfully on port ");
        let port: u16 = port
            .trim_end_matches('.')
            .parse()
            .expect("chromedriver's port");
        Chromedriver {
            child: driver,
            port,
        }
    }
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
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    pub async fn start(driver: &Chromedriver, profile: &Path) -> Browser {
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

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The reference of the first element `css` selects (fails the test if there is none).
    pub async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .expect("an element reference")
            .to_owned()
    }

    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Empties the input `css` selects.
    pub async fn clear(&self, css: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into the element `css` selects, as a user's keystrokes.
    pub async fn type_text(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The page's title.
    pub async fn title(&self) -> Value {
        self.call(reqwest::Method::GET, "/title", None).await
    }

    /// Polls the page until `done` accepts what `script` returns.
    pub async fn wait_until(
        &self,
        what: &str,
        script: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let state = self.script(script).await;
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

    pub async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

/// One WebDriver command; returns its `value`, or fails the test with WebDriver's error.
pub async fn call(
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
