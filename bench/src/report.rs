//! The table: one row per measurement, each ratio to the reference measured just before it in
//! the same run (the baseline, or the same scenario without what this one adds), and each
//! target marked met or not.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Result;
use crate::backlog::Backlog;
use crate::scenarios::{Latency, Percentiles, Rate, SendCost};

/// What a scenario measured.
pub(crate) enum Figure {
    Rate(Rate),
    /// A rate, and what else the scenario checked: `note` says what it found, `ok` whether
    /// that is as it must be (no delivery lost, the backlog left alone). A failed check fails
    /// the row's target.
    Checked {
        rate: Rate,
        note: String,
        ok: bool,
    },
    Latency(Latency),
    Send(SendCost),
    Backlog(Backlog),
}

/// What a row is held to.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    None,
    /// Throughput at least this ratio of the row's reference.
    Ratio(f64),
    /// p99 latency at most `ms` milliseconds, and at most `times` the reference's p99 (the
    /// bare client's at the same rate).
    P99 {
        ms: f64,
        times: f64,
    },
    /// Only the check of a [`Figure::Checked`] (this text says what it is).
    Check(&'static str),
    /// Peak RSS at most this many megabytes (10^6 bytes).
    RssMb(f64),
}

struct Row {
    scenario: String,
    work: String,
    outcome: std::result::Result<Figure, String>,
    target: Target,
    /// What this row's ratio is to.
    reference: Option<Reference>,
}

/// What a row is compared with, measured just before it in the same run: a rate (per second)
/// for throughputs, a p99 (seconds) for latencies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reference {
    pub(crate) value: f64,
    /// How the ratio column names it: `0.93 × empty queue`.
    pub(crate) name: &'static str,
}

impl Reference {
    pub(crate) fn new(value: f64, name: &'static str) -> Reference {
        Reference { value, name }
    }

    /// The rate of a throughput scenario, as the reference of the next one.
    pub(crate) fn rate(figure: &Result<Rate>, name: &'static str) -> Option<Reference> {
        figure
            .as_ref()
            .ok()
            .map(|rate| Reference::new(rate.per_sec(), name))
    }
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
    pub(crate) fn baseline(&mut self, work: String, figure: Result<Rate>) -> Option<Reference> {
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
                Some(Reference::new(rate.per_sec(), "baseline"))
            }
            Err(error) => {
                eprintln!("   baseline failed: {error}");
                self.baseline_errors.push(error.to_string());
                None
            }
        }
    }

    /// Records a scenario's outcome; `reference` was measured just before it.
    pub(crate) fn add(
        &mut self,
        scenario: String,
        work: String,
        figure: Result<Figure>,
        target: Target,
        reference: Option<Reference>,
    ) {
        let outcome = figure.map_err(|e| e.to_string());
        match &outcome {
            Ok(figure) => match ratio(figure, reference) {
                Some(ratio) => eprintln!("   {}; {ratio}", describe(figure)),
                None => eprintln!("   {}", describe(figure)),
            },
            Err(error) => eprintln!("   failed: {error}"),
        }
        self.rows.push(Row {
            scenario,
            work,
            outcome,
            target,
            reference,
        });
    }

    pub(crate) fn skipped(&mut self, scenario: String, work: String, why: String) {
        eprintln!("   {why}");
        self.rows.push(Row {
            scenario,
            work,
            outcome: Err(why),
            target: Target::None,
            reference: None,
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
                "1.00 × baseline".into(),
                "—".into(),
                "—".into(),
            ]);
        }
        for row in &self.rows {
            let (result, ratio, verdict) = match &row.outcome {
                Ok(figure) => {
                    let ratio = ratio(figure, row.reference);
                    (
                        describe(figure),
                        ratio.as_ref().map_or("—".into(), Ratio::to_string),
                        verdict(figure, ratio.map(|r| r.value), row.target),
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
        let header = ["scenario", "work", "result", "ratio", "target", "met"].map(String::from);
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

/// A row's figure over its reference's.
struct Ratio {
    value: f64,
    of: &'static str,
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} × {}", self.value, self.of)
    }
}

/// Throughputs over the reference's rate; latencies' p99 over the reference's p99.
fn ratio(figure: &Figure, reference: Option<Reference>) -> Option<Ratio> {
    let reference = reference.filter(|r| r.value > 0.0)?;
    let value = match figure {
        Figure::Rate(rate) | Figure::Checked { rate, .. } => rate.per_sec(),
        Figure::Latency(l) => l.delivery.p99.as_secs_f64(),
        Figure::Send(_) | Figure::Backlog(_) => return None,
    };
    Some(Ratio {
        value: value / reference.value,
        of: reference.name,
    })
}

fn target_text(target: Target) -> String {
    match target {
        Target::None => "—".into(),
        Target::Ratio(r) => format!("≥ {r:.2}"),
        Target::P99 { ms, times } => format!("p99 ≤ {ms} ms and ≤ {times}× bare"),
        Target::RssMb(mb) => format!("RSS ≤ {mb} MB"),
        Target::Check(what) => what.into(),
    }
}

fn verdict(figure: &Figure, ratio: Option<f64>, target: Target) -> String {
    // A failed check fails the row whatever its figure: the measurement is not what it says.
    if let Figure::Checked { ok: false, .. } = figure
        && !matches!(target, Target::None)
    {
        return "**no**".into();
    }
    let met = match (target, figure) {
        (Target::None, _) => return "—".into(),
        (Target::Ratio(want), _) => ratio.map(|r| r >= want),
        (Target::P99 { ms, times }, Figure::Latency(l)) => {
            let within_ms = l.delivery.p99.as_secs_f64() * 1e3 <= ms;
            match ratio {
                _ if !within_ms => Some(false),
                Some(r) => Some(r <= times),
                // No bare p99 to compare with: only half of the target could be judged.
                None => None,
            }
        }
        (Target::RssMb(mb), Figure::Backlog(b)) => Some(mb_of_kb(b.peak_rss_kb) <= mb),
        (Target::Check(_), Figure::Checked { ok, .. }) => Some(*ok),
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
        Figure::Rate(rate) => describe_rate(rate),
        Figure::Checked { rate, note, .. } => format!("{}; {note}", describe_rate(rate)),
        Figure::Latency(l) => format!(
            "{}; {} itself: p50 {}, p99 {}",
            percentiles(&l.delivery),
            l.send_is,
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

fn describe_rate(rate: &Rate) -> String {
    format!(
        "{} ({} in {:.2} s{})",
        per_sec(rate.per_sec(), "deliveries"),
        count(rate.count),
        rate.secs,
        cpu_each(rate)
    )
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
