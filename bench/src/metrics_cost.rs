//! What the runtime's metrics cost: the memory store's throughput (the scenario where the
//! runtime's own cost per delivery shows most) with a Prometheus recorder installed, over the
//! same throughput with none installed (the facade's calls then return at once).
//!
//! A recorder is installed once per process and for good, so each run is a child process of
//! this executable (`webhooks-bench metrics-child`, hidden) that sends to the bench's receiver
//! and prints its figures. The two kinds of run alternate in pairs, in turn first and second
//! (ABBA), so that the machine's drift falls on both alike; each pair gives a ratio, and the row
//! reports their median and range beside the medians' ratio.

use std::process::Stdio;
use std::time::Duration;

use crate::Result;
use crate::child::{next_line, spawn_child};
use crate::control::Receiver;
use crate::scenarios::{self, Rate};
use crate::stores::{Ctx, StoreKind};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the recorder's histograms are folded into its summaries, as the exporter's own
/// HTTP listener would do.
const UPKEEP: Duration = Duration::from_secs(5);

/// The figures of the two kinds of run.
pub(crate) struct MetricsCost {
    /// The median run without a recorder.
    pub(crate) without: Rate,
    /// The median run with the Prometheus recorder.
    pub(crate) with: Rate,
    /// With over without, pair by pair, sorted.
    pub(crate) pair_ratios: Vec<f64>,
    /// Whether every run with the recorder counted all its deliveries there.
    pub(crate) counted: bool,
}

/// `pairs` pairs of runs of `events` events each, against `receiver`.
pub(crate) async fn run(
    ctx: &Ctx,
    receiver: &Receiver,
    events: u64,
    pairs: usize,
) -> Result<MetricsCost> {
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut pair_ratios = Vec::new();
    let mut counted = true;
    for pair in 0..pairs.max(1) {
        // ABBA: the recorder runs second in even pairs, first in odd ones.
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut rates = [None, None];
        for recorder in order {
            let (rate, all_counted) = child_run(ctx, receiver, events, recorder).await?;
            eprintln!(
                "   {} recorder: {:.0} deliveries/s{}",
                if recorder { "with a" } else { "without a" },
                rate.per_sec(),
                rate.cpu_us_each()
                    .map(|us| format!(", {us:.0} µs CPU each"))
                    .unwrap_or_default()
            );
            counted &= all_counted;
            rates[usize::from(recorder)] = Some(rate);
        }
        if let [Some(off), Some(on)] = rates {
            if off.per_sec() > 0.0 {
                pair_ratios.push(on.per_sec() / off.per_sec());
            }
            without.push(off);
            with.push(on);
        }
    }
    pair_ratios.sort_by(f64::total_cmp);
    Ok(MetricsCost {
        without: median(without).ok_or("no run without a recorder")?,
        with: median(with).ok_or("no run with a recorder")?,
        pair_ratios,
        counted,
    })
}

/// The run whose rate is the median (the lower one of an even count).
fn median(mut rates: Vec<Rate>) -> Option<Rate> {
    rates.sort_by(|a, b| a.per_sec().total_cmp(&b.per_sec()));
    let middle = rates.len().checked_sub(1)? / 2;
    rates.into_iter().nth(middle)
}

/// Runs one child and reads its figures: the rate, and whether the recorder (if any) counted
/// every delivery.
async fn child_run(
    ctx: &Ctx,
    receiver: &Receiver,
    events: u64,
    recorder: bool,
) -> Result<(Rate, bool)> {
    let what = "a metrics run";
    let (mut child, mut output) = spawn_child(what, Stdio::null(), |command| {
        command
            .args(["metrics-child", "--receiver", &receiver.url("")])
            .args(["--events", &events.to_string()])
            .args(["--concurrency", &ctx.concurrency.to_string()]);
        if recorder {
            command.arg("--recorder");
        }
    })?;
    let line = next_line(&mut output, what, scenarios::STALL * 4).await?;
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("a metrics run exited with {status}").into());
    }
    parse(&line).ok_or_else(|| format!("unexpected line from a metrics run: {line:?}").into())
}

/// `rate COUNT SECS CPU_SECS|- COUNTED` → the rate and whether all was counted.
fn parse(line: &str) -> Option<(Rate, bool)> {
    let mut parts = line.strip_prefix("rate ")?.split_whitespace();
    let count = parts.next()?.parse().ok()?;
    let secs = parts.next()?.parse().ok()?;
    let cpu_secs = match parts.next()? {
        "-" => None,
        cpu => Some(cpu.parse().ok()?),
    };
    let counted = parts.next()? == "counted";
    Some((
        Rate {
            count,
            secs,
            cpu_secs,
            server_cpu_secs: None,
        },
        counted,
    ))
}

/// The child's side: the memory store's 1-subscription throughput against the receiver at
/// `receiver` (its base URL), with a Prometheus recorder installed first when `recorder`.
/// Prints one line of figures (see [`parse`]).
pub(crate) async fn child(
    receiver: String,
    events: u64,
    concurrency: usize,
    recorder: bool,
) -> Result<()> {
    let handle = if recorder {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Some(handle)
    } else {
        None
    };
    let receiver = Receiver::attach(&receiver)?;
    let dir = tempfile::Builder::new()
        .prefix("webhooks-bench-metrics-")
        .tempdir()?;
    let ctx = Ctx {
        concurrency,
        scale: 1.0,
        postgres: None,
        dir: dir.path().to_path_buf(),
        run_id: std::process::id().to_string(),
        stages: false,
    };
    let rate = scenarios::throughput(&ctx, &receiver, StoreKind::Memory, events, 1).await?;
    let counted = match &handle {
        Some(handle) => delivered(handle) >= events,
        None => true,
    };
    #[allow(clippy::print_stdout)] // the parent reads this line
    {
        println!(
            "rate {} {} {} {}",
            rate.count,
            rate.secs,
            rate.cpu_secs
                .map_or_else(|| "-".to_owned(), |cpu| cpu.to_string()),
            if counted { "counted" } else { "missed" }
        );
    }
    Ok(())
}

/// The delivered attempts the recorder counted, from its Prometheus text.
fn delivered(handle: &PrometheusHandle) -> u64 {
    handle
        .render()
        .lines()
        .filter(|line| {
            line.starts_with(webhooks::metrics::ATTEMPTS) && line.contains("outcome=\"delivered\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}
