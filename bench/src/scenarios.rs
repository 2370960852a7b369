//! The scenarios. Each measures one thing end to end against the receiver process and returns
//! its figures; none asserts anything about time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::task::JoinSet;
use webhooks::{Message, Subscription, Webhooks};

use crate::Result;
use crate::control::Receiver;
use crate::event::{InvoicePaid, account_label};
use crate::stores::{Ctx, StoreKind, fresh};

/// How long without any delivery before a scenario gives up.
pub(crate) const STALL: Duration = Duration::from_secs(60);

/// Unix time in nanoseconds, the clock the receiver stamps arrivals with.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn secs_between(start_ns: u64, end_ns: u64) -> f64 {
    end_ns.saturating_sub(start_ns) as f64 / 1e9
}

/// A rate: `count` requests in `secs`, and the CPU time this (sending) process used meanwhile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub(crate) count: u64,
    pub(crate) secs: f64,
    pub(crate) cpu_secs: Option<f64>,
    /// The CPU time the PostgreSQL server used meanwhile, when it runs on this machine.
    pub(crate) server_cpu_secs: Option<f64>,
}

/// CPU time (user + system) this process has used, from /proc/self/stat (clock ticks of 10 ms,
/// as on every Linux configuration this runs on).
pub(crate) fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The CPU time (user + system, in seconds) a PostgreSQL server on this machine has used: its
/// postmaster with the children it reaped, and its live children (backends, WAL writer,
/// checkpointer, autovacuum). `postmaster` is its pid; see [`postmaster_of`].
pub(crate) fn server_cpu_secs(postmaster: u32) -> Option<f64> {
    let (_, own) = proc_stat(postmaster, true)?;
    let mut ticks = own;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between listing and reading: skip it (its time moves to the
        // postmaster's reaped children).
        if let Some((parent, child)) = proc_stat(pid, false)
            && parent == postmaster
        {
            ticks += child;
        }
    }
    Some(ticks as f64 / 100.0)
}

/// The CPU time (user + system, in seconds) process `pid` has used: a worker child's.
pub(crate) fn pid_cpu_secs(pid: u32) -> Option<f64> {
    Some(proc_stat(pid, false)?.1 as f64 / 100.0)
}

/// The parent of a backend (the postmaster), if that backend runs on this machine.
pub(crate) fn postmaster_of(backend: u32) -> Option<u32> {
    Some(proc_stat(backend, false)?.0)
}

/// `(ppid, utime + stime [+ cutime + cstime])` of a process, in clock ticks.
fn proc_stat(pid: u32, with_children: bool) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let mut ticks = field(11)? + field(12)?;
    if with_children {
        ticks += field(13)? + field(14)?;
    }
    Some((fields.get(1)?.parse().ok()?, ticks))
}

impl Rate {
    /// CPU time of the sending process per request, in microseconds.
    pub(crate) fn cpu_us_each(&self) -> Option<f64> {
        Some(self.cpu_secs? * 1e6 / self.count.max(1) as f64)
    }

    /// CPU time of the PostgreSQL server per request, in microseconds.
    pub(crate) fn server_cpu_us_each(&self) -> Option<f64> {
        Some(self.server_cpu_secs? * 1e6 / self.count.max(1) as f64)
    }

    pub(crate) fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.count as f64 / self.secs
        } else {
            0.0
        }
    }
}

fn cpu_since(start: Option<f64>) -> Option<f64> {
    Some(process_cpu_secs()? - start?)
}

pub(crate) fn server_since(postmaster: Option<u32>, start: Option<f64>) -> Option<f64> {
    Some(server_cpu_secs(postmaster?)? - start?)
}

/// A latency distribution.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Percentiles {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Percentiles {
    /// Of a non-empty sample (sorted here).
    fn of(mut sample: Vec<Duration>) -> Option<Percentiles> {
        sample.sort_unstable();
        let at = |q: f64| sample[((sample.len() - 1) as f64 * q).round() as usize];
        Some(Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: *sample.last()?,
        })
    }
}

/// The body of the messages, as the runtime builds it: what the baseline posts.
pub(crate) fn sample_body() -> Result<Bytes> {
    Ok(Message::new(&InvoicePaid::sample(0))?.body().clone())
}

/// The physical baseline: plain reqwest, `concurrency` requests in flight, `count` POSTs of
/// the same body to the same receiver. From the first request to the last arrival.
pub(crate) async fn baseline(ctx: &Ctx, receiver: &Receiver, count: u64) -> Result<Rate> {
    receiver.reset(false).await?;
    let body = sample_body()?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(15))
        .build()?;
    let url = receiver.url("/baseline");
    let next = Arc::new(AtomicU64::new(0));
    let cpu = process_cpu_secs();
    let start = now_ns();
    let mut tasks = JoinSet::new();
    for _ in 0..ctx.concurrency {
        let (client, url, body, next) = (client.clone(), url.clone(), body.clone(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let response = client
                    .post(&url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                response.bytes().await?;
                if !status.is_success() {
                    return Err(format!("the receiver answered {status}").into());
                }
            }
            Ok::<(), crate::BoxError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let last = receiver.wait_for(count, STALL).await?;
    Ok(Rate {
        count,
        secs: secs_between(start, last),
        cpu_secs: cpu_since(cpu),
        server_cpu_secs: None,
    })
}

/// Sends `events` events from `senders` tasks, as fast as `send` accepts them.
pub(crate) async fn send_all(hooks: &Webhooks, senders: usize, events: u64) -> Result<()> {
    send_events(hooks, senders, events, InvoicePaid::sample).await
}

/// Sends `events` events, the `n`th made by `event(n)`, from `senders` tasks, as fast as
/// `send` accepts them.
pub(crate) async fn send_events<F>(
    hooks: &Webhooks,
    senders: usize,
    events: u64,
    event: F,
) -> Result<()>
where
    F: Fn(u64) -> InvoicePaid + Send + Sync + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let event = Arc::new(event);
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let (hooks, next, event) = (hooks.clone(), next.clone(), event.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return Ok::<(), crate::BoxError>(());
                }
                hooks.send(&event(n)).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Throughput: `events` events to `subscriptions` subscriptions (all on the receiver), from the
/// first `send` to the last delivery the receiver sees. Counts deliveries.
pub(crate) async fn throughput(
    ctx: &Ctx,
    receiver: &Receiver,
    kind: StoreKind,
    events: u64,
    subscriptions: u64,
) -> Result<Rate> {
    receiver.reset(false).await?;
    let name = format!("throughput-{}-{subscriptions}", kind.name().to_lowercase());
    let fresh = fresh(ctx, kind, &name, ctx.builder()).await?;
    let hooks = fresh.builder.build().await?;
    let result = async {
        for n in 0..subscriptions {
            let url = receiver.url(&format!("/hooks/{n}"));
            hooks
                .subscribe(Subscription::new(url)?.events(["invoice:*"]))
                .await?;
        }
        let deliveries = events * subscriptions;
        measure(
            ctx,
            receiver,
            &hooks,
            fresh.postmaster,
            events,
            deliveries,
            InvoicePaid::sample,
        )
        .await
    }
    .await;
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// The measurement every throughput scenario shares, once its subscriptions are in place:
/// `events` events (the `n`th made by `event(n)`) sent from `ctx.concurrency` tasks; from the
/// first `send` to the `deliveries`th request the receiver counts. The receiver's count is
/// reset first, so only this measurement's deliveries count.
pub(crate) async fn measure<F>(
    ctx: &Ctx,
    receiver: &Receiver,
    hooks: &Webhooks,
    postmaster: Option<u32>,
    events: u64,
    deliveries: u64,
    event: F,
) -> Result<Rate>
where
    F: Fn(u64) -> InvoicePaid + Send + Sync + 'static,
{
    receiver.reset(false).await?;
    let server = postmaster.and_then(server_cpu_secs);
    let cpu = process_cpu_secs();
    let start = now_ns();
    send_events(hooks, ctx.concurrency, events, event).await?;
    let last = receiver.wait_for(deliveries, STALL).await?;
    Ok(Rate {
        count: deliveries,
        secs: secs_between(start, last),
        cpu_secs: cpu_since(cpu),
        server_cpu_secs: server_since(postmaster, server),
    })
}

/// Subscribes every one of `subscriptions`, `parallel` at a time (setting up 10,000 one
/// after the other would take longer than the measurement; it is not measured).
async fn subscribe_all(
    hooks: &Webhooks,
    subscriptions: Vec<Subscription>,
    parallel: usize,
) -> Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(subscriptions));
    let mut tasks = JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (hooks, queue) = (hooks.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(subscription) = next else {
                    return Ok::<(), crate::BoxError>(());
                };
                hooks.subscribe(subscription).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// `subscriptions` subscriptions on the receiver, each to `invoice:paid` of one account (its
/// `account` label), and `events` events spread over the accounts in turn: each event matches
/// exactly one subscription, so there are as many deliveries as events, as in the
/// 1-subscription scenario this one is compared with.
pub(crate) async fn many_subscriptions(
    ctx: &Ctx,
    receiver: &Receiver,
    kind: StoreKind,
    events: u64,
    subscriptions: u64,
) -> Result<Rate> {
    let name = format!("many-{}-{subscriptions}", kind.name().to_lowercase());
    let fresh = fresh(ctx, kind, &name, ctx.builder()).await?;
    let hooks = fresh.builder.build().await?;
    let result = async {
        let mut all = Vec::with_capacity(subscriptions as usize);
        for n in 0..subscriptions {
            let url = receiver.url(&format!("/hooks/{n}"));
            all.push(
                Subscription::new(url)?
                    .events(["invoice:paid"])
                    .label("account", account_label(n)),
            );
        }
        let started = Instant::now();
        subscribe_all(&hooks, all, 16).await?;
        eprintln!(
            "   {subscriptions} subscriptions made in {:.1} s (not measured)",
            started.elapsed().as_secs_f64()
        );
        let accounts = subscriptions.max(1);
        measure(
            ctx,
            receiver,
            &hooks,
            fresh.postmaster,
            events,
            events,
            move |n| InvoicePaid::of_account(n, n % accounts),
        )
        .await
    }
    .await;
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// What the slow-endpoint scenario measured: the healthy endpoints' rate, and how many
/// deliveries the slow one had answered by then.
pub(crate) struct SlowEndpoint {
    pub(crate) healthy: Rate,
    pub(crate) slow_answered: u64,
}

/// `healthy` subscriptions on the receiver, and with `slow` another one on a receiver of its
/// own that answers each request after `slow_delay`: `events` events, each to all of them.
/// The rate is the healthy ones' deliveries, from the first `send` to the last of those (the
/// slow one's are still under way then, as they would be in production; they are counted
/// separately and left pending at the end).
pub(crate) async fn slow_endpoint(
    ctx: &Ctx,
    receiver: &Receiver,
    kind: StoreKind,
    events: u64,
    healthy: u64,
    slow: Option<&Receiver>,
) -> Result<SlowEndpoint> {
    let name = format!(
        "slow-{}-{healthy}{}",
        kind.name().to_lowercase(),
        if slow.is_some() { "-1" } else { "" }
    );
    let fresh = fresh(ctx, kind, &name, ctx.builder()).await?;
    let hooks = fresh.builder.build().await?;
    let result = async {
        for n in 0..healthy {
            let url = receiver.url(&format!("/hooks/{n}"));
            hooks
                .subscribe(Subscription::new(url)?.events(["invoice:*"]))
                .await?;
        }
        if let Some(slow) = slow {
            slow.reset(false).await?;
            hooks
                .subscribe(Subscription::new(slow.url("/slow"))?.events(["invoice:*"]))
                .await?;
        }
        let rate = measure(
            ctx,
            receiver,
            &hooks,
            fresh.postmaster,
            events,
            events * healthy,
            InvoicePaid::sample,
        )
        .await?;
        let slow_answered = match slow {
            Some(slow) => slow.count().await?.0,
            None => 0,
        };
        Ok(SlowEndpoint {
            healthy: rate,
            slow_answered,
        })
    }
    .await;
    // The slow endpoint's deliveries still pending stay in the store, which is removed; those
    // in flight are answered within the shutdown timeout (2 s each).
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// Latency at a steady rate: from `send` returning to the receiver seeing the request.
pub(crate) struct Latency {
    pub(crate) delivery: Percentiles,
    /// How long `send` itself took (for the bare client: the request's round trip).
    pub(crate) send: Percentiles,
    /// What `send` is: `send`, or `request` for the bare client.
    pub(crate) send_is: &'static str,
}

/// `rate` events a second for `secs`, each sent by its own task at its tick (open loop: a slow
/// `send` does not delay the next one).
pub(crate) async fn latency(
    ctx: &Ctx,
    receiver: &Receiver,
    kind: StoreKind,
    rate: u64,
    secs: f64,
) -> Result<Latency> {
    let name = format!("latency-{}", kind.name().to_lowercase());
    let fresh = fresh(ctx, kind, &name, ctx.builder()).await?;
    let hooks = fresh.builder.build().await?;
    let result = async {
        hooks
            .subscribe(Subscription::new(receiver.url("/latency"))?.events(["invoice:*"]))
            .await?;
        // Warm up: connections open, statements prepared.
        receiver.reset(false).await?;
        for n in 0..100 {
            hooks.send(&InvoicePaid::sample(n)).await?;
        }
        receiver.wait_for(100, STALL).await?;

        receiver.reset(true).await?;
        if ctx.stages {
            crate::stages::start();
        }
        let count = ((rate as f64 * secs).round() as u64).max(1);
        let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = JoinSet::new();
        for n in 0..count {
            ticker.tick().await;
            let hooks = hooks.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let id = hooks.send(&InvoicePaid::sample(n)).await?;
                Ok::<_, crate::BoxError>((id, now_ns(), started.elapsed()))
            });
        }
        let mut sent = Vec::with_capacity(count as usize);
        while let Some(done) = tasks.join_next().await {
            sent.push(done??);
        }
        receiver.wait_for(count, STALL).await?;
        let stamps = if ctx.stages {
            crate::stages::stop()
        } else {
            Vec::new()
        };
        let arrivals = receiver.arrivals().await?;
        let mut delivery = Vec::with_capacity(sent.len());
        let mut send = Vec::with_capacity(sent.len());
        let mut times = Vec::with_capacity(sent.len());
        for (id, returned, took) in sent {
            let arrived = arrivals
                .get(&id.to_string())
                .ok_or_else(|| format!("message {id} was not received"))?;
            // The dispatcher may deliver before `send` has returned to its caller: 0 then.
            delivery.push(Duration::from_nanos(arrived.saturating_sub(returned)));
            send.push(took);
            times.push(crate::stages::Sent {
                key: id.as_uuid().as_u128(),
                returned,
                arrived: *arrived,
            });
        }
        if ctx.stages {
            crate::stages::report(&name, &times, &stamps);
        }
        Ok(Latency {
            delivery: Percentiles::of(delivery).ok_or("no latency sample")?,
            send: Percentiles::of(send).ok_or("no send sample")?,
            send_is: "send",
        })
    }
    .await;
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// The bare client at the latency scenarios' rate: plain reqwest (set up as the baseline's)
/// POSTs the same body to the same receiver, `rate` requests a second for `secs`, each from its
/// own task at its tick (open loop), after the same warm-up of 100. Latency is from just
/// before the request is made to the receiver's arrival stamp: the floor under a delivery's
/// latency on this machine, network stack, HTTP and both runtimes' scheduling included.
pub(crate) async fn bare_latency(receiver: &Receiver, rate: u64, secs: f64) -> Result<Latency> {
    let body = sample_body()?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(15))
        .build()?;
    let url = receiver.url("/bare");
    // Each request carries its own `webhook-id`, so the receiver stamps each one apart.
    let post = |client: reqwest::Client, url: String, body: Bytes, id: String| async move {
        let response = client
            .post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            return Err::<(), crate::BoxError>(format!("the receiver answered {status}").into());
        }
        Ok(())
    };

    receiver.reset(false).await?;
    for n in 0..100 {
        post(
            client.clone(),
            url.clone(),
            body.clone(),
            format!("warm_{n}"),
        )
        .await?;
    }
    receiver.wait_for(100, STALL).await?;

    receiver.reset(true).await?;
    let count = ((rate as f64 * secs).round() as u64).max(1);
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    for n in 0..count {
        ticker.tick().await;
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let id = format!("bare_{n}");
            let started_ns = now_ns();
            let started = Instant::now();
            post(client, url, body, id.clone()).await?;
            Ok::<_, crate::BoxError>((id, started_ns, started.elapsed()))
        });
    }
    let mut sent = Vec::with_capacity(count as usize);
    while let Some(done) = tasks.join_next().await {
        sent.push(done??);
    }
    receiver.wait_for(count, STALL).await?;
    let arrivals = receiver.arrivals().await?;
    let mut delivery = Vec::with_capacity(sent.len());
    let mut round_trip = Vec::with_capacity(sent.len());
    for (id, started, took) in sent {
        let arrived = arrivals
            .get(&id)
            .ok_or_else(|| format!("request {id} was not received"))?;
        delivery.push(Duration::from_nanos(arrived.saturating_sub(started)));
        round_trip.push(took);
    }
    Ok(Latency {
        delivery: Percentiles::of(delivery).ok_or("no latency sample")?,
        send: Percentiles::of(round_trip).ok_or("no request sample")?,
        send_is: "request",
    })
}

/// What `send` alone costs.
pub(crate) struct SendCost {
    pub(crate) rate: Rate,
    pub(crate) send: Percentiles,
}

/// `count` events accepted by `send` from `senders` tasks, durable commit included, nothing
/// delivered: the runtime is `send_only` (as a web server sending into a shared store runs), so
/// each send stores its message and one pending delivery, which no worker attempts.
pub(crate) async fn send_cost(
    ctx: &Ctx,
    kind: StoreKind,
    senders: usize,
    count: u64,
) -> Result<SendCost> {
    let name = format!("send-{}-{senders}", kind.name().to_lowercase());
    let fresh = fresh(ctx, kind, &name, ctx.builder().send_only()).await?;
    let hooks = fresh.builder.build().await?;
    let result = async {
        let dead = format!("http://127.0.0.1:{}/dead", free_port()?);
        hooks
            .subscribe(Subscription::new(dead)?.events(["invoice:*"]))
            .await?;
        let next = Arc::new(AtomicU64::new(0));
        let server = fresh.postmaster.and_then(server_cpu_secs);
        let cpu = process_cpu_secs();
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..senders {
            let (hooks, next) = (hooks.clone(), next.clone());
            tasks.spawn(async move {
                let mut took = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return Ok::<_, crate::BoxError>(took);
                    }
                    let one = Instant::now();
                    hooks.send(&InvoicePaid::sample(n)).await?;
                    took.push(one.elapsed());
                }
            });
        }
        let mut took = Vec::with_capacity(count as usize);
        while let Some(done) = tasks.join_next().await {
            took.extend(done??);
        }
        let secs = started.elapsed().as_secs_f64();
        Ok(SendCost {
            rate: Rate {
                count,
                secs,
                cpu_secs: cpu_since(cpu),
                server_cpu_secs: server_since(fresh.postmaster, server),
            },
            send: Percentiles::of(took).ok_or("no send sample")?,
        })
    }
    .await;
    hooks.shutdown().await;
    drop(hooks);
    fresh.cleanup.run().await;
    result
}

/// A port that nothing listens on (it was free a moment ago).
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    Ok(listener.local_addr()?.port())
}
