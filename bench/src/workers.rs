//! PostgreSQL with the deliveries done by several worker processes: what a second worker
//! process adds (or costs) on this machine, and that sharing a store loses and duplicates no
//! delivery.
//!
//! The bench process is the one sender: a `send_only` runtime on a fresh schema, sending as the
//! throughput scenarios do. The workers are child processes of this executable
//! (`webhooks-bench worker`, hidden), each a full runtime on the same schema with the same
//! settings, which claim and deliver. The 1-worker reference runs the same way, with one child,
//! so that the two differ only in the number of workers. The receiver records every request's
//! `webhook-id` (the message id `send` returned): a message never received is lost, one
//! received twice is duplicated.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::task::JoinSet;
use webhooks::store::PostgresStore;
use webhooks::{MessageId, Subscription, Webhooks};

use crate::Result;
use crate::child::{next_line, spawn_child};
use crate::control::Receiver;
use crate::event::InvoicePaid;
use crate::report::Figure;
use crate::scenarios::{
    Rate, STALL, now_ns, pid_cpu_secs, process_cpu_secs, server_cpu_secs, server_since,
};
use crate::stores::{Ctx, StoreKind, fresh, throughput_builder};

/// The environment variable the workers read the PostgreSQL URL from (not an argument: a
/// password in it would show in `ps`).
const URL_VAR: &str = "WEBHOOKS_BENCH_POSTGRES_URL";

/// How long the receiver must stay quiet after the last expected delivery before the ids are
/// compared: a duplicate sent late still shows.
const QUIET: Duration = Duration::from_secs(2);

/// `events` events sent by this process, delivered by `workers` worker processes.
pub(crate) async fn run(
    ctx: &Ctx,
    receiver: &Receiver,
    workers: usize,
    events: u64,
) -> Result<Figure> {
    let url = ctx
        .postgres
        .clone()
        .ok_or("no PostgreSQL URL (--postgres or WEBHOOKS_BENCH_POSTGRES_URL)")?;
    let name = format!("workers-{workers}");
    let fresh = fresh(ctx, StoreKind::Postgres, &name, ctx.builder().send_only()).await?;
    let schema = crate::stores::schema(ctx, &name);
    let hooks = fresh.builder.build().await?;
    let mut children = Vec::new();
    let result = async {
        hooks
            .subscribe(Subscription::new(receiver.url("/hooks/0"))?.events(["invoice:*"]))
            .await?;
        for _ in 0..workers {
            children.push(start_worker(&url, &schema, ctx.concurrency).await?);
        }
        let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
        receiver.reset(true).await?;

        let workers_cpu = workers_cpu_secs(&pids);
        let server = fresh.postmaster.and_then(server_cpu_secs);
        let cpu = process_cpu_secs();
        let start = now_ns();
        let sent = send_collecting(&hooks, ctx.concurrency, events).await?;
        let last = receiver.wait_for(events, STALL).await?;
        let secs = last.saturating_sub(start) as f64 / 1e9;
        let cpu_secs = match (
            process_cpu_secs(),
            cpu,
            workers_cpu_secs(&pids),
            workers_cpu,
        ) {
            (Some(end), Some(start), Some(w_end), Some(w_start)) => {
                Some(end - start + w_end - w_start)
            }
            _ => None,
        };
        let rate = Rate {
            count: events,
            secs,
            cpu_secs,
            server_cpu_secs: server_since(fresh.postmaster, server),
        };

        quiet(receiver).await?;
        let arrivals = receiver.arrival_list().await?;
        let received: HashSet<&str> = arrivals.iter().map(|(id, _)| id.as_str()).collect();
        let lost = sent
            .iter()
            .filter(|id| !received.contains(id.to_string().as_str()))
            .count();
        let duplicated = arrivals.len() - received.len();
        let strangers = received.len() + lost - sent.len();
        let mut note = format!(
            "{workers} worker process{}; {lost} lost, {duplicated} duplicated",
            if workers == 1 { "" } else { "es" }
        );
        if strangers > 0 {
            note.push_str(&format!(", {strangers} not sent in this run"));
        }
        Ok(Figure::Checked {
            rate,
            note,
            ok: lost == 0 && duplicated == 0 && strangers == 0,
        })
    }
    .await;
    for child in children {
        stop_worker(child).await;
    }
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// Sends `events` events from `senders` tasks, as the throughput scenarios do, and returns the
/// ids `send` gave them.
async fn send_collecting(hooks: &Webhooks, senders: usize, events: u64) -> Result<Vec<MessageId>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let (hooks, next) = (hooks.clone(), next.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return Ok::<_, crate::BoxError>(ids);
                }
                ids.push(hooks.send(&InvoicePaid::sample(n)).await?);
            }
        });
    }
    let mut ids = Vec::with_capacity(events as usize);
    while let Some(done) = tasks.join_next().await {
        ids.extend(done??);
    }
    Ok(ids)
}

/// Waits until the receiver's count has not moved for [`QUIET`].
async fn quiet(receiver: &Receiver) -> Result<()> {
    let mut seen = receiver.count().await?.0;
    let mut since = Instant::now();
    while since.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = receiver.count().await?.0;
        if count != seen {
            (seen, since) = (count, Instant::now());
        }
    }
    Ok(())
}

/// The CPU time the workers have used, in seconds.
fn workers_cpu_secs(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|pid| pid_cpu_secs(*pid)).sum()
}

/// Starts a worker process and waits until its runtime is built.
async fn start_worker(url: &str, schema: &str, concurrency: usize) -> Result<Child> {
    let what = "a worker";
    let (child, mut output) = spawn_child(what, Stdio::piped(), |command| {
        command
            .args(["worker", "--schema", schema])
            .args(["--concurrency", &concurrency.to_string()])
            .env(URL_VAR, url);
    })?;
    let line = next_line(&mut output, what, Duration::from_secs(60)).await?;
    if line != "ready" {
        return Err(format!("unexpected first line from a worker: {line:?}").into());
    }
    Ok(child)
}

/// Asks a worker to shut down (its stdin closes) and waits for it; kills it if it takes longer
/// than its runtime's shutdown timeout.
async fn stop_worker(mut child: Child) {
    drop(child.stdin.take());
    match tokio::time::timeout(Duration::from_secs(40), child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => eprintln!("   a worker exited with {status}"),
        Ok(Err(error)) => eprintln!("   could not wait for a worker: {error}"),
        Err(_) => {
            eprintln!("   a worker did not stop within 40 s: killed");
            let _ = child.kill().await;
        }
    }
}

/// The worker's side: a runtime on `schema` that delivers until its stdin closes. Prints
/// `ready` once the runtime is built.
pub(crate) async fn child(schema: String, concurrency: usize) -> Result<()> {
    let url = std::env::var(URL_VAR).map_err(|_| format!("worker: {URL_VAR} is not set"))?;
    let store = PostgresStore::connect_with(&url, &schema)
        .await
        .map_err(|e| format!("worker: cannot connect the PostgreSQL store: {e}"))?;
    let hooks = throughput_builder(concurrency).store(store).build().await?;
    #[allow(clippy::print_stdout)] // the parent waits for this line
    {
        println!("ready");
    }
    // The parent holds the other end: its closing (or the parent's exit) ends the worker,
    // after a clean shutdown (in-flight deliveries recorded, leases released). A blocking read
    // on a thread of its own, as the receiver does: tokio's stdin is not compiled in.
    let (closed, wait) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = wait.await;
    hooks.shutdown().await;
    Ok(())
}
