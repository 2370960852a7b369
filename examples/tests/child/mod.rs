//! Runs an example binary as a child process, as a user would, and watches its output.
//!
//! Output is read line by line on threads and published through a `watch` channel, so that a
//! test waits for a condition with a deadline instead of sleeping. The child is killed when the
//! [`Example`] is dropped, so a failing test leaves nothing running.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long a test waits for anything that should take a moment.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The environment variables the examples read: removed, so that the test's own environment
/// cannot change what is tested.
const EXAMPLE_ENV: &[&str] = &[
    "PORT",
    "STATUS_CODE",
    "SECONDS_TO_SLEEP",
    "WEBHOOK_SECRET",
    "SMS_GATEWAY_URL",
    "RUST_LOG",
];

/// What a child printed so far.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Both streams reached their end.
    pub closed: [bool; 2],
}

impl Output {
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A running example.
pub struct Example {
    name: String,
    child: Child,
    output: watch::Receiver<Output>,
}

/// The binary of an example: `cargo test -p webhooks-examples` builds the examples into
/// `target/<profile>/examples/`, beside this test's `target/<profile>/deps/`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let build = format!(
        "build it with `cargo build -p webhooks-examples --example {name}` (`cargo test -p \
         webhooks-examples` builds it)"
    );
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "the example binary {} is missing: {build}",
                binary.display()
            )
        });
    // A stale binary would test yesterday's example.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{name}.rs"));
    if let Ok(edited) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        assert!(
            edited <= built,
            "the example binary {} is older than {}: {build}",
            binary.display(),
            source.display()
        );
    }
    binary
}

impl Example {
    /// Starts `name` with `args` and `env` (on top of the test's environment, minus the
    /// variables the examples read).
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Example {
        let mut command = Command::new(binary(name));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in EXAMPLE_ENV {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = watch::channel(Output::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        read_lines(stdout, tx.clone(), 0);
        read_lines(stderr, tx, 1);
        Example {
            name: name.to_owned(),
            child,
            output: rx,
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> Output {
        self.output.borrow().clone()
    }

    /// Waits until `condition` holds of the output, at most [`DEADLINE`]; panics with the
    /// output otherwise.
    pub async fn wait_for(&mut self, what: &str, condition: impl Fn(&Output) -> bool) -> Output {
        let result = tokio::time::timeout(DEADLINE, self.output.wait_for(|o| condition(o)))
            .await
            .map(|found| found.map(|output| output.clone()));
        match result {
            Ok(Ok(output)) => output,
            _ => panic!(
                "{}: no {what} within {DEADLINE:?}; output so far:\n{}",
                self.name,
                self.describe()
            ),
        }
    }

    /// The URL of a server example, from its `listening on http://...` line.
    pub async fn listening_url(&mut self) -> String {
        let output = self
            .wait_for("`listening on` line", |o| {
                o.stderr.contains("listening on http://")
            })
            .await;
        let line = output
            .stderr
            .lines()
            .find(|l| l.contains("listening on http://"))
            .expect("the line just seen");
        let url = &line[line.find("http://").expect("the URL just seen")..];
        url.trim().to_owned()
    }

    /// Waits for it to exit, at most `deadline`, and for its output to be complete.
    pub async fn exit(&mut self, deadline: Duration) -> (ExitStatus, Output) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                break status;
            }
            assert!(
                started.elapsed() < deadline,
                "{} did not exit within {deadline:?}; output so far:\n{}",
                self.name,
                self.describe()
            );
            // Polling the process: std has no async wait, and the deadline bounds it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let output = self
            .wait_for("end of output", |o| o.closed == [true, true])
            .await;
        (status, output)
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn describe(&self) -> String {
        let output = self.output();
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            output.stdout, output.stderr
        )
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lines(stream: impl Read + Send + 'static, tx: watch::Sender<Output>, index: usize) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            tx.send_modify(|output| {
                let text = if index == 0 {
                    &mut output.stdout
                } else {
                    &mut output.stderr
                };
                text.push_str(&line);
                text.push('\n');
            });
        }
        tx.send_modify(|output| output.closed[index] = true);
    });
}

/// An HTTP client that never goes through a proxy: the tests talk to 127.0.0.1.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("an HTTP client")
}
