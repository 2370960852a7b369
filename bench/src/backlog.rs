//! The backlog scenario: a million deliveries pending to a dead endpoint, then the endpoint
//! comes back. It runs in a child process of its own (`webhooks-bench backlog-child`), so that
//! the peak RSS it reports (`VmHWM`) is the sending process's for this scenario alone, not the
//! leftovers of the scenarios before it.
//!
//! 1. Fill: one runtime (SQLite) sends `count` events to one subscription whose endpoint is a
//!    port nothing listens on; meanwhile it keeps attempting them: every attempt fails
//!    (connection refused) and is retried 1 s later (the retry policy of this scenario).
//! 2. Dead: the endpoint stays dead `dead_secs` more.
//! 3. Back: the receiver starts on that port; the drain time runs from then to the last
//!    delivery it sees.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use webhooks::store::SqliteStore;
use webhooks::{RetryPolicy, Subscription, Webhooks};

use crate::Result;
use crate::child::spawn_child;
use crate::control::Receiver;
use crate::scenarios::{STALL, free_port, now_ns, send_all};
use crate::stores::remove_sqlite;

/// What the backlog scenario measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backlog {
    pub(crate) count: u64,
    pub(crate) fill_secs: f64,
    pub(crate) drain_secs: f64,
    /// Peak RSS of the whole child process, fill included (kB).
    pub(crate) peak_rss_kb: u64,
    /// Peak RSS once the backlog was filled, before delivering (kB).
    pub(crate) fill_rss_kb: u64,
}

/// Runs the scenario in a child process and reads its result.
pub(crate) async fn run(
    count: u64,
    concurrency: usize,
    dir: &Path,
    dead_secs: u64,
) -> Result<Backlog> {
    let (mut child, mut lines) = spawn_child("the backlog child", Stdio::null(), |command| {
        command
            .arg("backlog-child")
            .args(["--count", &count.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--dead-secs", &dead_secs.to_string()])
            .arg("--dir")
            .arg(dir);
    })?;
    let mut result = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(fields) = line.strip_prefix("RESULT ") {
            result = Some(parse(fields)?);
        }
    }
    let status = child.wait().await?;
    match result {
        Some(result) if status.success() => Ok(result),
        _ => Err(format!("the backlog child failed ({status})").into()),
    }
}

fn parse(fields: &str) -> Result<Backlog> {
    let get = |key: &str| -> Result<f64> {
        fields
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {key} in the backlog child's result {fields:?}").into())
    };
    Ok(Backlog {
        count: get("count")? as u64,
        fill_secs: get("fill_secs")?,
        drain_secs: get("drain_secs")?,
        peak_rss_kb: get("peak_rss_kb")? as u64,
        fill_rss_kb: get("fill_rss_kb")? as u64,
    })
}

/// A `kB` field of /proc/self/status, such as `VmHWM` (peak RSS).
pub(crate) fn proc_status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

/// The child's side: runs the scenario and prints `RESULT key=value ...` on stdout.
pub(crate) async fn child(
    count: u64,
    concurrency: usize,
    dir: PathBuf,
    dead_secs: u64,
) -> Result<()> {
    let path = dir.join("backlog.db");
    remove_sqlite(&path);
    let result = phases(&path, count, concurrency, dead_secs).await;
    remove_sqlite(&path);
    let b = result?;
    #[allow(clippy::print_stdout)] // the parent reads this line
    {
        println!(
            "RESULT count={} fill_secs={:.3} drain_secs={:.3} peak_rss_kb={} fill_rss_kb={}",
            b.count, b.fill_secs, b.drain_secs, b.peak_rss_kb, b.fill_rss_kb
        );
    }
    Ok(())
}

async fn phases(path: &Path, count: u64, concurrency: usize, dead_secs: u64) -> Result<Backlog> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}/backlog");
    let store = SqliteStore::open(path).await?;
    let hooks = Webhooks::builder()
        .store(store)
        .allow_private_networks()
        .max_in_flight(concurrency)
        .max_in_flight_per_subscription(concurrency)
        .retry(RetryPolicy::schedule(vec![Duration::from_secs(1); 30]).jitter(0.0))
        .build()
        .await?;
    let result = async {
        hooks
            .subscribe(Subscription::new(&url)?.events(["invoice:*"]))
            .await?;

        eprintln!("backlog: sending {count} events to a dead endpoint");
        let started = Instant::now();
        send_all(&hooks, concurrency, count).await?;
        let fill_secs = started.elapsed().as_secs_f64();
        let fill_rss_kb = proc_status_kb("VmHWM")?;
        eprintln!("backlog: sent in {fill_secs:.1} s; the endpoint stays dead {dead_secs} s more");
        tokio::time::sleep(Duration::from_secs(dead_secs)).await;

        eprintln!("backlog: the endpoint is back; draining");
        let receiver = Receiver::start(port).await?;
        let up = now_ns();
        let drained = receiver.wait_for(count, STALL).await;
        receiver.stop().await;
        let last = drained?;
        Ok(Backlog {
            count,
            fill_secs,
            drain_secs: last.saturating_sub(up) as f64 / 1e9,
            peak_rss_kb: proc_status_kb("VmHWM")?,
            fill_rss_kb,
        })
    }
    .await;
    hooks.shutdown().await;
    result
}
