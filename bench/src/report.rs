//! The table: one row per measurement, throughputs as ratios to the baseline of the same run,
//! and each target marked met or not.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Result;
use crate::backlog::Backlog;
use crate::scenarios::{Latency, Percentiles, Rate, SendCost};

/// What a scenario measured.
pub(crate) enum Figure {
    Rate(Rate),
    Latency(Latency),
    Send(SendCost),
    Backlog(Backlog),
}

/// What a row is held to.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    None,
    /// Throughput at least this ratio of the baseline.
    Ratio(f64),
    /// p99 latency at most this many milliseconds.
    P99Ms(f64),
    /// Peak RSS at most this many megabytes (10^6 bytes).
    RssMb(f64),
}

struct Row {
    scenario: String,
    work: String,
    outcome: std::result::Result<Figure, String>,
    target: Target,
    /// The baseline measured just before this scenario (requests/s), for its ratio.
    base: Option<f64>,
}

pub(crate) struct Report {
    concurrency: usize,
    /// Every baseline run (requests/s), and the work of one.
    baselines: Vec<f64>,
    /// Sending-process CPU per request of each baseline run (µs).
    baseline_cpu: Vec<f64>,
    baseline_work: Option<String>,
    baseline_errors: Vec<String>,
    rows: Vec<Row>,
}

impl Report {
    pub(crate) fn new(concurrency: usize) -> Report {
        Report {
            concurrency,
            baselines: Vec::new(),
            baseline_cpu: Vec::new(),
            baseline_work: None,
            baseline_errors: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Records a baseline run; returns its rate, for the ratio of the scenario that follows.
    pub(crate) fn baseline(&mut self, work: String, figure: Result<Rate>) -> Option<f64> {
        self.baseline_work = Some(work);
        match figure {
            Ok(rate) => {
                eprintln!(
                    "   baseline: {}{}",
                    per_sec(rate.per_sec(), "requests"),
                    cpu_each(&rate)
                );
                self.baselines.push(rate.per_sec());
                self.baseline_cpu.extend(rate.cpu_us_each());
                Some(rate.per_sec())
            }
            Err(error) => {
                eprintln!("   baseline failed: {error}");
                self.baseline_errors.push(error.to_string());
                None
            }
        }
    }

    /// Records a scenario's outcome; `base` is the baseline measured just before it.
    pub(crate) fn add(
        &mut self,
        scenario: String,
        work: String,
        figure: Result<Figure>,
        target: Target,
        base: Option<f64>,
    ) {
        let outcome = figure.map_err(|e| e.to_string());
        match &outcome {
            Ok(figure) => eprintln!("   {}", describe(figure)),
            Err(error) => eprintln!("   failed: {error}"),
        }
        self.rows.push(Row {
            scenario,
            work,
            outcome,
            target,
            base,
        });
    }

    pub(crate) fn skipped(&mut self, scenario: String, work: String, why: String) {
        eprintln!("   {why}");
        self.rows.push(Row {
            scenario,
            work,
            outcome: Err(why),
            target: Target::None,
            base: None,
        });
    }

    /// The table, in Markdown.
    pub(crate) fn table(&self) -> String {
        let mut lines: Vec<[String; 6]> = Vec::new();
        if let Some(work) = &self.baseline_work {
            let mut rates = self.baselines.clone();
            rates.sort_by(f64::total_cmp);
            let mut cpu = self.baseline_cpu.clone();
            cpu.sort_by(f64::total_cmp);
            let cpu = cpu
                .get(cpu.len() / 2)
                .map_or(String::new(), |us| format!("; {us:.0} µs CPU each"));
            let result = match rates.as_slice() {
                [] => format!("failed: {}", self.baseline_errors.join("; ")),
                [one] => format!("{}{cpu}", per_sec(*one, "requests")),
                [first, .., last] => format!(
                    "{} (median of {} runs, {}–{}){cpu}",
                    per_sec(rates[rates.len() / 2], "requests"),
                    rates.len(),
                    count(first.round() as u64),
                    count(last.round() as u64)
                ),
            };
            lines.push([
                format!("baseline: plain reqwest, {} in flight", self.concurrency),
                work.clone(),
                result,
                "1.00".into(),
                "—".into(),
                "—".into(),
            ]);
        }
        for row in &self.rows {
            let (result, ratio, verdict) = match &row.outcome {
                Ok(figure) => {
                    let ratio = match (figure, row.base) {
                        (Figure::Rate(rate), Some(b)) => Some(rate.per_sec() / b),
                        _ => None,
                    };
                    (
                        describe(figure),
                        ratio.map_or("—".into(), |r| format!("{r:.2}")),
                        verdict(figure, ratio, row.target),
                    )
                }
                Err(why) => (why.clone(), "—".into(), "—".into()),
            };
            lines.push([
                row.scenario.clone(),
                row.work.clone(),
                result,
                ratio,
                target_text(row.target),
                verdict,
            ]);
        }
        let header =
            ["scenario", "work", "result", "× baseline", "target", "met"].map(String::from);
        let mut widths = header.clone().map(|h| h.chars().count());
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut write_line = |cells: &[String; 6]| {
            out.push('|');
            for (cell, w) in cells.iter().zip(widths) {
                let pad = w - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out.push('\n');
        };
        write_line(&header);
        write_line(&widths.map(|w| "-".repeat(w)));
        for line in &lines {
            write_line(line);
        }
        out
    }
}

fn target_text(target: Target) -> String {
    match target {
        Target::None => "—".into(),
        Target::Ratio(r) => format!("≥ {r:.2}"),
        Target::P99Ms(ms) => format!("p99 ≤ {ms} ms"),
        Target::RssMb(mb) => format!("RSS ≤ {mb} MB"),
    }
}

fn verdict(figure: &Figure, ratio: Option<f64>, target: Target) -> String {
    let met = match (target, figure) {
        (Target::None, _) => return "—".into(),
        (Target::Ratio(want), _) => ratio.map(|r| r >= want),
        (Target::P99Ms(ms), Figure::Latency(l)) => Some(l.delivery.p99.as_secs_f64() * 1e3 <= ms),
        (Target::RssMb(mb), Figure::Backlog(b)) => Some(mb_of_kb(b.peak_rss_kb) <= mb),
        _ => None,
    };
    match met {
        Some(true) => "yes".into(),
        Some(false) => "**no**".into(),
        None => "—".into(),
    }
}

fn mb_of_kb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

fn describe(figure: &Figure) -> String {
    match figure {
        Figure::Rate(rate) => format!(
            "{} ({} in {:.2} s{})",
            per_sec(rate.per_sec(), "deliveries"),
            count(rate.count),
            rate.secs,
            cpu_each(rate)
        ),
        Figure::Latency(l) => format!(
            "{}; send itself: p50 {}, p99 {}",
            percentiles(&l.delivery),
            ms(l.send.p50),
            ms(l.send.p99)
        ),
        Figure::Send(s) => format!(
            "{}; each: p50 {}, p99 {}{}",
            per_sec(s.rate.per_sec(), "events"),
            ms(s.send.p50),
            ms(s.send.p99),
            cpu_each(&s.rate)
        ),
        Figure::Backlog(b) => format!(
            "peak RSS {:.0} MB ({:.0} MB after filling); drained in {:.1} s ({}); filled in {:.1} s",
            mb_of_kb(b.peak_rss_kb),
            mb_of_kb(b.fill_rss_kb),
            b.drain_secs,
            per_sec(b.count as f64 / b.drain_secs.max(1e-9), "deliveries"),
            b.fill_secs
        ),
    }
}

/// `; 41 µs CPU each`: the sending process's CPU time per request (and the PostgreSQL
/// server's, when measured).
fn cpu_each(rate: &Rate) -> String {
    let own = rate
        .cpu_us_each()
        .map_or(String::new(), |us| format!("; {us:.0} µs CPU each"));
    let server = rate
        .server_cpu_us_each()
        .map_or(String::new(), |us| format!(" + {us:.0} µs in PostgreSQL"));
    format!("{own}{server}")
}

fn percentiles(p: &Percentiles) -> String {
    format!("p50 {}, p99 {}, max {}", ms(p.p50), ms(p.p99), ms(p.max))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn per_sec(rate: f64, what: &str) -> String {
    format!("{} {what}/s", count(rate.round() as u64))
}

/// `1234567` as `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `nproc` and the CPU model, from /proc/cpuinfo.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}
