//! The bench's side of the receiver: starts it as a child process (this same executable, run as
//! `webhooks-bench receiver`) and talks to its control endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Child;

use crate::Result;
use crate::child::{next_line, spawn_child};

/// A running receiver process. Killed when dropped; it also exits by itself when this process
/// ends (its stdin closes).
pub(crate) struct Receiver {
    /// The process, when this one started it (not when attached to another's).
    child: Option<Child>,
    addr: SocketAddr,
    client: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver on `port` (0: any free port) and waits until it listens.
    pub(crate) async fn start(port: u16) -> Result<Receiver> {
        Receiver::start_with(port, 0, 204).await
    }

    /// Starts a receiver that waits `delay_ms` before answering each webhook with `status`: an
    /// unhealthy endpoint (see `receiver_server::Behaviour`). A process of its own, on a port
    /// of its own, as another customer's endpoint would be another host.
    pub(crate) async fn start_with(port: u16, delay_ms: u64, status: u16) -> Result<Receiver> {
        let what = "the receiver";
        let (child, mut output) = spawn_child(what, Stdio::piped(), |command| {
            command
                .args(["receiver", "--port", &port.to_string()])
                .args(["--delay-ms", &delay_ms.to_string()])
                .args(["--status", &status.to_string()]);
        })?;
        let line = next_line(&mut output, what, Duration::from_secs(30)).await?;
        let addr: SocketAddr = line
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the receiver: {line:?}"))?;
        Ok(Receiver {
            child: Some(child),
            addr,
            client: control_client()?,
        })
    }

    /// A receiver another process started, at `base` (`http://ADDR`, as [`url`](Self::url)
    /// gives with an empty path): for a child process of the bench that sends to the bench's
    /// receiver.
    pub(crate) fn attach(base: &str) -> Result<Receiver> {
        let addr = base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("not a receiver's address: {base:?}"))?;
        Ok(Receiver {
            child: None,
            addr,
            client: control_client()?,
        })
    }

    /// A webhook URL on this receiver.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Zeroes the count; with `record`, keeps the arrival time of each `webhook-id`.
    pub(crate) async fn reset(&self, record: bool) -> Result<()> {
        let query = if record { "?record=1" } else { "" };
        self.client
            .post(self.url(&format!("/reset{query}")))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Requests received since the last reset, and when the last one arrived (unix ns).
    pub(crate) async fn count(&self) -> Result<(u64, u64)> {
        let text = self
            .client
            .get(self.url("/count"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut parts = text.split_whitespace().map(str::parse::<u64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(count)), Some(Ok(last))) => Ok((count, last)),
            _ => Err(format!("unexpected /count answer: {text:?}").into()),
        }
    }

    /// Waits until `target` requests have arrived; returns when the last one did (unix ns).
    /// Fails if the count stops growing for `stall` (nothing is delivered any more).
    pub(crate) async fn wait_for(&self, target: u64, stall: Duration) -> Result<u64> {
        let mut seen = 0;
        let mut progress = Instant::now();
        loop {
            let (count, last) = self.count().await?;
            if count >= target {
                return Ok(last);
            }
            if count > seen {
                seen = count;
                progress = Instant::now();
            } else if progress.elapsed() >= stall {
                return Err(format!(
                    "stalled: {count} of {target} requests received, none in the last {} s",
                    stall.as_secs()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The recorded arrivals, by `webhook-id` (unix ns). A webhook received twice keeps its
    /// last arrival: see [`arrival_list`](Self::arrival_list) to count duplicates.
    pub(crate) async fn arrivals(&self) -> Result<HashMap<String, u64>> {
        Ok(self.arrival_list().await?.into_iter().collect())
    }

    /// Every recorded arrival, `(webhook-id, unix ns)`, one per request received.
    pub(crate) async fn arrival_list(&self) -> Result<Vec<(String, u64)>> {
        let text = self
            .client
            .get(self.url("/arrivals"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut arrivals = Vec::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(id, at)| Some((id.to_owned(), at.parse().ok()?)));
            arrivals.push(parsed.ok_or_else(|| format!("unexpected arrival line: {line:?}"))?);
        }
        Ok(arrivals)
    }

    /// Ends the process.
    pub(crate) async fn stop(mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill().await;
        }
    }
}

/// The client that talks to a receiver's control endpoints.
fn control_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build the control client: {e}"))?)
}
