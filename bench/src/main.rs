//! The end-to-end benchmark of `webhooks`: every scenario in one run, on 127.0.0.1, against a
//! receiver in a separate process, printed as one table with each throughput as a ratio to a
//! plain reqwest client measured in the same run.
//!
//! ```text
//! cargo run --release -p webhooks-bench                       # everything, full size
//! cargo run --release -p webhooks-bench -- --scale 0.1        # a quick run: a tenth of the work
//! cargo run --release -p webhooks-bench -- --only memory,sqlite --postgres postgres://...
//! ```
//!
//! Scenarios (`--only`, comma-separated; groups `throughput`, `subs10k`, `pending`, `latency`,
//! `send`): `baseline`, `memory`, `sqlite`, `postgres`, `fanout`, `subs10k-memory`,
//! `subs10k-sqlite`, `subs10k-postgres`, `slow-endpoint`, `metrics`, `pending-memory`, `pending-sqlite`,
//! `pending-postgres`, `workers-postgres`, `latency-bare`, `latency-sqlite`,
//! `latency-postgres`, `send-sqlite`, `send-postgres`, `backlog`. Each scenario with a ratio
//! runs what it is compared with just before itself (the baseline; the same scenario without
//! what this one adds; the bare client at the latency rate), and its ratio is to that one: the
//! machine's load drifts less in between.
#![allow(clippy::print_stdout)] // this program's output is its figures

mod backlog;
mod child;
mod control;
mod event;
mod metrics_cost;
mod pending;
mod receiver_server;
mod report;
mod scenarios;
mod stages;
mod stores;
mod workers;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::control::Receiver;
use crate::report::{Figure, Reference, Report, Target};
use crate::stores::{Ctx, StoreKind};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T> = std::result::Result<T, BoxError>;

/// Every scenario, in the order they run.
const SCENARIOS: &[&str] = &[
    "baseline",
    "memory",
    "sqlite",
    "postgres",
    "fanout",
    "subs10k-memory",
    "subs10k-sqlite",
    "subs10k-postgres",
    "slow-endpoint",
    "metrics",
    "pending-memory",
    "pending-sqlite",
    "pending-postgres",
    "workers-postgres",
    "latency-bare",
    "latency-sqlite",
    "latency-postgres",
    "send-sqlite",
    "send-postgres",
    "backlog",
];

#[derive(Parser)]
#[command(
    name = "webhooks-bench",
    about = "End-to-end benchmarks of webhooks, as ratios to a plain reqwest client"
)]
struct Cli {
    /// Run only these scenarios (comma-separated): baseline, memory, sqlite, postgres, fanout,
    /// subs10k-memory, subs10k-sqlite, subs10k-postgres, slow-endpoint, metrics, pending-memory,
    /// pending-sqlite, pending-postgres, workers-postgres, latency-bare, latency-sqlite,
    /// latency-postgres, send-sqlite, send-postgres, backlog; or the groups throughput,
    /// subs10k, pending, latency, send.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Multiply every count (events, seconds, subscriptions, backlogs) by this: 0.1 for a quick
    /// run, 0.05 for a smoke test.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// PostgreSQL to run the PostgreSQL scenarios on (a fresh schema per scenario, dropped
    /// after); they are skipped without it.
    #[arg(long, env = "WEBHOOKS_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Requests in flight at once: the runtime's `max_in_flight` and
    /// `max_in_flight_per_subscription`, and the baseline's concurrency.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Where the SQLite files go (default: a temporary directory), removed afterwards.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How long the backlog's endpoint stays dead once delivery has started, in seconds.
    #[arg(long, default_value_t = 3)]
    dead_secs: u64,
    /// How many pairs of runs (without and with a metrics recorder) the `metrics` scenario
    /// makes; the row gives their median.
    #[arg(long, default_value_t = 5)]
    metrics_pairs: usize,
    /// Skip the baselines and the bare latency runs (to profile a scenario alone): no ratios
    /// to them then. The references of the other ratios still run.
    #[arg(long, hide = true)]
    no_baseline: bool,
    /// After each latency scenario, print where a delivery's time went, stage by stage (send
    /// returned, claim asked, queued and run on the SQLite writer thread, returned, request
    /// started, arrival): p50, p99 and max of each, and what the writer thread did meanwhile.
    /// Off by default; the runtime records nothing without it.
    #[arg(long)]
    stages: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the receiver (the bench starts it as a child process).
    Receiver {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Keep running when stdin closes.
        #[arg(long)]
        detached: bool,
        /// Wait this long before answering each webhook (a slow endpoint).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Answer each webhook with this status (a failing endpoint, with 503).
        #[arg(long, default_value_t = 204)]
        status: u16,
    },
    /// Runs the backlog scenario in this process (the bench starts it as a child process).
    #[command(hide = true)]
    BacklogChild {
        #[arg(long)]
        count: u64,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        dead_secs: u64,
    },
    /// A worker process of the `workers-postgres` scenario: a runtime on the schema that
    /// delivers until stdin closes. The URL is read from WEBHOOKS_BENCH_POSTGRES_URL.
    /// One run of the `metrics` scenario (the bench starts it as a child process): the memory
    /// store's throughput against the receiver at `--receiver`, with a Prometheus recorder
    /// installed when `--recorder`.
    #[command(hide = true)]
    MetricsChild {
        #[arg(long)]
        receiver: String,
        #[arg(long)]
        events: u64,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        recorder: bool,
    },
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        schema: String,
        #[arg(long)]
        concurrency: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Receiver {
            port,
            detached,
            delay_ms,
            status,
        }) => receiver_server::Behaviour::new(delay_ms, status)
            .and_then(|behaviour| receiver_server::run(port, !detached, behaviour)),
        Some(Command::BacklogChild {
            count,
            concurrency,
            dir,
            dead_secs,
        }) => {
            runtime().and_then(|rt| rt.block_on(backlog::child(count, concurrency, dir, dead_secs)))
        }
        Some(Command::MetricsChild {
            receiver,
            events,
            concurrency,
            recorder,
        }) => runtime().and_then(|rt| {
            rt.block_on(metrics_cost::child(receiver, events, concurrency, recorder))
        }),
        Some(Command::Worker {
            schema,
            concurrency,
        }) => runtime().and_then(|rt| rt.block_on(workers::child(schema, concurrency))),
        None => runtime().and_then(|rt| rt.block_on(bench(cli))),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webhooks-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime an application would use: multi-threaded, one worker per core.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The scenarios `--only` selects.
fn select(only: &[String]) -> Result<Vec<&'static str>> {
    if only.is_empty() {
        return Ok(SCENARIOS.to_vec());
    }
    let mut wanted: Vec<&str> = Vec::new();
    for name in only {
        let name = name.trim();
        let group: &[&str] = match name {
            "all" => SCENARIOS,
            "throughput" => &["memory", "sqlite", "postgres"],
            "subs10k" => &["subs10k-memory", "subs10k-sqlite", "subs10k-postgres"],
            "pending" => &["pending-memory", "pending-sqlite", "pending-postgres"],
            "latency" => &["latency-sqlite", "latency-postgres"],
            "send" => &["send-sqlite", "send-postgres"],
            _ => match SCENARIOS.iter().find(|s| **s == name) {
                Some(one) => std::slice::from_ref(one),
                None => {
                    return Err(format!(
                        "unknown scenario {name:?}; known: {}, and the groups throughput, \
                         subs10k, pending, latency, send, all",
                        SCENARIOS.join(", ")
                    )
                    .into());
                }
            },
        };
        wanted.extend(group);
    }
    Ok(SCENARIOS
        .iter()
        .copied()
        .filter(|s| wanted.contains(s))
        .collect())
}

async fn bench(cli: Cli) -> Result<()> {
    let selected = select(&cli.only)?;
    if !(cli.scale > 0.0 && cli.scale.is_finite()) {
        return Err(format!("--scale must be a positive number, not {}", cli.scale).into());
    }
    if cli.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let tmp = match &cli.dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("webhooks-bench-")
            .tempdir_in(dir),
        None => tempfile::Builder::new().prefix("webhooks-bench-").tempdir(),
    }
    .map_err(|e| format!("cannot create a directory for the SQLite stores: {e}"))?;
    let ctx = Ctx {
        concurrency: cli.concurrency,
        scale: cli.scale,
        postgres: cli.postgres.clone(),
        dir: tmp.path().to_path_buf(),
        run_id: format!(
            "{}_{}",
            std::process::id(),
            scenarios::now_ns() / 1_000_000_000
        ),
        stages: cli.stages,
    };
    let machine = report::machine();
    eprintln!(
        "webhooks-bench: {machine}; scale {}, {} in flight; scenarios: {}",
        ctx.scale,
        ctx.concurrency,
        selected.join(", ")
    );

    let receiver = Receiver::start(0).await?;
    let mut report = Report::new(ctx.concurrency);
    let throughput_events = ctx.scaled(100_000, 1_000);
    let baseline_work = format!("{} POSTs", report::count(throughput_events));
    for &scenario in &selected {
        eprintln!("-- {scenario}");
        match scenario {
            "baseline" => {
                let figure = scenarios::baseline(&ctx, &receiver, throughput_events).await;
                report.baseline(baseline_work.clone(), figure);
            }
            "memory" | "sqlite" | "postgres" => {
                let (kind, target) = match scenario {
                    "memory" => (StoreKind::Memory, 0.8),
                    "sqlite" => (StoreKind::Sqlite, 0.5),
                    _ => (StoreKind::Postgres, 0.25),
                };
                let name = format!("throughput, {}", kind.name());
                let work = format!(
                    "{} events × 1 subscription",
                    report::count(throughput_events)
                );
                if let Some(skip) = skip(&ctx, kind) {
                    report.skipped(name, work, skip);
                    continue;
                }
                let base = if cli.no_baseline {
                    None
                } else {
                    let figure = scenarios::baseline(&ctx, &receiver, throughput_events).await;
                    report.baseline(baseline_work.clone(), figure)
                };
                let figure =
                    scenarios::throughput(&ctx, &receiver, kind, throughput_events, 1).await;
                report.add(
                    name,
                    work,
                    figure.map(Figure::Rate),
                    Target::Ratio(target),
                    base,
                );
            }
            "fanout" => {
                let events = ctx.scaled(1_000, 10);
                let work = format!("{} events × 100 subscriptions", report::count(events));
                let base = if cli.no_baseline {
                    None
                } else {
                    let figure = scenarios::baseline(&ctx, &receiver, throughput_events).await;
                    report.baseline(baseline_work.clone(), figure)
                };
                let figure =
                    scenarios::throughput(&ctx, &receiver, StoreKind::Sqlite, events, 100).await;
                report.add(
                    "fan-out, SQLite".into(),
                    work,
                    figure.map(Figure::Rate),
                    Target::Ratio(0.5),
                    base,
                );
            }
            "subs10k-memory" | "subs10k-sqlite" | "subs10k-postgres" => {
                let kind = match scenario {
                    "subs10k-memory" => StoreKind::Memory,
                    "subs10k-sqlite" => StoreKind::Sqlite,
                    _ => StoreKind::Postgres,
                };
                // As many events as the throughput scenarios, 10 to each subscription.
                let subscriptions = ctx.scaled(10_000, 100);
                let events = throughput_events;
                let reference_name = format!("throughput, {}, 1 subscription", kind.name());
                let reference_work = format!("{} events × 1 subscription", report::count(events));
                let name = format!(
                    "{} subscriptions, {}",
                    report::count(subscriptions),
                    kind.name()
                );
                let work = format!(
                    "{} events, each matching 1 of {}",
                    report::count(events),
                    report::count(subscriptions)
                );
                if let Some(skip) = skip(&ctx, kind) {
                    report.skipped(name, work, skip);
                    continue;
                }
                let one = scenarios::throughput(&ctx, &receiver, kind, events, 1).await;
                let reference = Reference::rate(&one, "1 subscription");
                report.add(
                    reference_name,
                    reference_work,
                    one.map(Figure::Rate),
                    Target::None,
                    None,
                );
                let figure =
                    scenarios::many_subscriptions(&ctx, &receiver, kind, events, subscriptions)
                        .await;
                report.add(
                    name,
                    work,
                    figure.map(Figure::Rate),
                    Target::Ratio(0.8),
                    reference,
                );
            }
            "slow-endpoint" => {
                let kind = StoreKind::Sqlite;
                let events = ctx.scaled(10_000, 100);
                let delay = Duration::from_secs(2);
                let slow = match Receiver::start_with(0, delay.as_millis() as u64, 204).await {
                    Ok(slow) => slow,
                    Err(error) => {
                        report.add(
                            "slow endpoint".into(),
                            "—".into(),
                            Err(error),
                            Target::None,
                            None,
                        );
                        continue;
                    }
                };
                let nine = scenarios::slow_endpoint(&ctx, &receiver, kind, events, 9, None).await;
                let reference = nine
                    .as_ref()
                    .ok()
                    .map(|n| Reference::new(n.healthy.per_sec(), "without it"));
                report.add(
                    format!("9 endpoints, {}", kind.name()),
                    format!("{} events × 9 subscriptions", report::count(events)),
                    nine.map(|n| Figure::Rate(n.healthy)),
                    Target::None,
                    None,
                );
                let ten =
                    scenarios::slow_endpoint(&ctx, &receiver, kind, events, 9, Some(&slow)).await;
                slow.stop().await;
                report.add(
                    format!("9 endpoints + 1 answering after 2 s, {}", kind.name()),
                    format!(
                        "{} events × 10 subscriptions; the 9's deliveries",
                        report::count(events)
                    ),
                    ten.map(|t| Figure::Checked {
                        rate: t.healthy,
                        note: format!(
                            "the slow one answered {} meanwhile",
                            report::count(t.slow_answered)
                        ),
                        ok: true,
                    }),
                    Target::Ratio(0.9),
                    reference,
                );
            }
            "metrics" => {
                let events = throughput_events;
                let work = format!("{} events × 1 subscription", report::count(events));
                match metrics_cost::run(&ctx, &receiver, events, cli.metrics_pairs).await {
                    Ok(cost) => {
                        let reference = Some(Reference::new(cost.without.per_sec(), "no recorder"));
                        let ratios = &cost.pair_ratios;
                        let note = format!(
                            "median of {} runs each; pair by pair {}; the recorder {}",
                            ratios.len(),
                            match (ratios.first(), ratios.get(ratios.len() / 2), ratios.last()) {
                                (Some(low), Some(mid), Some(high)) => {
                                    format!("{mid:.3} ({low:.3}–{high:.3})")
                                }
                                _ => "—".to_owned(),
                            },
                            if cost.counted {
                                "counted every delivery"
                            } else {
                                "MISSED deliveries"
                            }
                        );
                        report.add(
                            "throughput, memory, metrics without a recorder".into(),
                            work.clone(),
                            Ok(Figure::Rate(cost.without)),
                            Target::None,
                            None,
                        );
                        report.add(
                            "throughput, memory, Prometheus recorder installed".into(),
                            work,
                            Ok(Figure::Checked {
                                rate: cost.with,
                                note,
                                ok: cost.counted,
                            }),
                            Target::Ratio(0.98),
                            reference,
                        );
                    }
                    Err(error) => report.add(
                        "throughput, memory, Prometheus recorder installed".into(),
                        work,
                        Err(error),
                        Target::Ratio(0.98),
                        None,
                    ),
                }
            }
            "pending-memory" | "pending-sqlite" | "pending-postgres" => {
                let kind = match scenario {
                    "pending-memory" => StoreKind::Memory,
                    "pending-sqlite" => StoreKind::Sqlite,
                    _ => StoreKind::Postgres,
                };
                let backlog = ctx.scaled(1_000_000, 1_000);
                let events = throughput_events;
                let name = format!(
                    "throughput, {}, {} pending",
                    kind.name(),
                    report::count(backlog)
                );
                let work = format!("{} events × 1 subscription", report::count(events));
                if let Some(skip) = skip(&ctx, kind) {
                    report.skipped(name, work, skip);
                    continue;
                }
                let outcome = pending::run(&ctx, &receiver, kind, backlog, events).await;
                let reference = Reference::rate(&outcome.empty, "empty queue");
                report.add(
                    format!("throughput, {}, empty queue", kind.name()),
                    work.clone(),
                    outcome.empty.map(Figure::Rate),
                    Target::None,
                    None,
                );
                report.add(name, work, outcome.loaded, Target::Ratio(0.8), reference);
            }
            "workers-postgres" => {
                let events = throughput_events;
                let work = format!(
                    "{} events × 1 subscription, 1 sender",
                    report::count(events)
                );
                let name = "PostgreSQL, 2 worker processes".to_owned();
                if let Some(skip) = skip(&ctx, StoreKind::Postgres) {
                    report.skipped(name, work, skip);
                    continue;
                }
                let check = Target::Check("none lost or duplicated");
                let one = workers::run(&ctx, &receiver, 1, events).await;
                let reference = match &one {
                    Ok(Figure::Checked { rate, .. }) => {
                        Some(Reference::new(rate.per_sec(), "1 worker"))
                    }
                    _ => None,
                };
                report.add(
                    "PostgreSQL, 1 worker process".into(),
                    work.clone(),
                    one,
                    check,
                    None,
                );
                let two = workers::run(&ctx, &receiver, 2, events).await;
                report.add(name, work, two, check, reference);
            }
            "latency-bare" => {
                let secs = latency_secs(&ctx);
                let figure = scenarios::bare_latency(&receiver, 1_000, secs).await;
                report.add(
                    "latency, bare reqwest".into(),
                    format!("1,000 requests/s for {secs:.0} s"),
                    figure.map(Figure::Latency),
                    Target::None,
                    None,
                );
            }
            "latency-sqlite" | "latency-postgres" => {
                let (kind, target, times) = if scenario == "latency-sqlite" {
                    (StoreKind::Sqlite, 3.0, 4.0)
                } else {
                    (StoreKind::Postgres, 5.0, 8.0)
                };
                let secs = latency_secs(&ctx);
                let name = format!("latency, {}", kind.name());
                let work = format!("1,000 events/s for {secs:.0} s");
                if let Some(skip) = skip(&ctx, kind) {
                    report.skipped(name, work, skip);
                    continue;
                }
                // The bare client at the same rate, just before, as the baseline is for the
                // throughput scenarios.
                let bare = if cli.no_baseline {
                    None
                } else {
                    let bare = scenarios::bare_latency(&receiver, 1_000, secs).await;
                    let reference = bare
                        .as_ref()
                        .ok()
                        .map(|b| Reference::new(b.delivery.p99.as_secs_f64(), "bare p99"));
                    report.add(
                        "latency, bare reqwest".into(),
                        format!("1,000 requests/s for {secs:.0} s"),
                        bare.map(Figure::Latency),
                        Target::None,
                        None,
                    );
                    reference
                };
                let figure = scenarios::latency(&ctx, &receiver, kind, 1_000, secs).await;
                report.add(
                    name,
                    work,
                    figure.map(Figure::Latency),
                    Target::P99 { ms: target, times },
                    bare,
                );
            }
            "send-sqlite" | "send-postgres" => {
                let kind = if scenario == "send-sqlite" {
                    StoreKind::Sqlite
                } else {
                    StoreKind::Postgres
                };
                for (senders, count) in [(1, ctx.scaled(2_000, 100)), (64, ctx.scaled(20_000, 640))]
                {
                    let name =
                        format!("send, {}, {senders} sender{}", kind.name(), plural(senders));
                    let work = format!("{} events, nothing delivered", report::count(count));
                    if let Some(skip) = skip(&ctx, kind) {
                        report.skipped(name, work, skip);
                        continue;
                    }
                    let figure = scenarios::send_cost(&ctx, kind, senders, count).await;
                    report.add(name, work, figure.map(Figure::Send), Target::None, None);
                }
            }
            "backlog" => {
                let count = ctx.scaled(1_000_000, 1_000);
                let figure = backlog::run(count, ctx.concurrency, &ctx.dir, cli.dead_secs).await;
                report.add(
                    "backlog, SQLite".into(),
                    format!("{} deliveries to a dead endpoint", report::count(count)),
                    figure.map(Figure::Backlog),
                    Target::RssMb(150.0),
                    None,
                );
            }
            other => return Err(format!("no such scenario {other}").into()),
        }
        // Let the store's files and the sockets settle before the next one.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    receiver.stop().await;

    println!("webhooks-bench: {machine}");
    println!(
        "scale {}, {} requests in flight; each ratio is to what it names (the baseline, the same \
         scenario without what the row adds, the bare client), measured just before that \
         scenario, in this run",
        ctx.scale, ctx.concurrency
    );
    println!();
    print!("{}", report.table());
    Ok(())
}

/// How long the latency scenarios run: 10 s, scaled, at least 1 s.
fn latency_secs(ctx: &Ctx) -> f64 {
    (10.0 * ctx.scale).max(1.0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Why a scenario cannot run, if it cannot.
fn skip(ctx: &Ctx, kind: StoreKind) -> Option<String> {
    (kind == StoreKind::Postgres && ctx.postgres.is_none())
        .then(|| "skipped: no --postgres URL (or WEBHOOKS_BENCH_POSTGRES_URL)".to_owned())
}
