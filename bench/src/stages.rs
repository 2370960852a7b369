//! `--stages`: where a delivery's time goes in the latency scenarios, from the runtime's stage
//! stamps (`webhooks::stages`, recorded only while a latency scenario measures) and the
//! receiver's arrival stamps. Printed after the scenario, to stdout: for each stage, its p50,
//! p99 and max over every delivery, and its mean over the slowest 1 % (the tail); then what
//! the SQLite writer thread did meanwhile.
//!
//! A delivery's stages, in order (each from the end of the one before):
//!
//! - `until asked`: `send` returned to its caller → the dispatcher asks for the claim that
//!   got it (0 when the dispatcher asked before `send` returned);
//! - `claim queued`: → the writer thread starts that claim (SQLite; waiting behind a round);
//! - `claim runs`: → the writer thread finished it;
//! - `claim returns`: → the dispatcher has the claim back;
//! - `to request`: → the delivery's request starts (task spawned, limits passed);
//! - `request`: → the receiver stamps its arrival.
//!
//! For PostgreSQL the writer's stages are absent: `claim queued` + `claim runs` + `claim
//! returns` are one, `claim`.

use std::collections::HashMap;
use std::time::Duration;

use webhooks::stages::{Stage, Stamp};

/// One delivery's times, unix ns: `send` returned, the receiver's arrival.
pub(crate) struct Sent {
    pub(crate) key: u128,
    pub(crate) returned: u64,
    pub(crate) arrived: u64,
}

/// Starts recording.
pub(crate) fn start() {
    let _ = webhooks::stages::take();
    webhooks::stages::enable(true);
}

/// Stops recording; the stamps.
pub(crate) fn stop() -> Vec<Stamp> {
    webhooks::stages::enable(false);
    webhooks::stages::take()
}

fn ms(ns: u64) -> String {
    format!("{:.3}", Duration::from_nanos(ns).as_secs_f64() * 1e3)
}

/// p50, p99, max of a sample (sorted here), in ns.
fn pct(mut v: Vec<u64>) -> (u64, u64, u64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

fn row(name: &str, v: Vec<u64>, tail: &[usize]) {
    let mean_tail = if tail.is_empty() {
        0
    } else {
        tail.iter().map(|&i| v[i]).sum::<u64>() / tail.len() as u64
    };
    let (p50, p99, max) = pct(v);
    println!(
        "  {name:<28} p50 {:>8} ms  p99 {:>8} ms  max {:>8} ms  slowest 1 %: mean {:>8} ms",
        ms(p50),
        ms(p99),
        ms(max),
        ms(mean_tail)
    );
}

/// The stamps of `stage`, in time order.
fn times(stamps: &[Stamp], stage: Stage) -> Vec<u64> {
    let mut v: Vec<u64> = stamps
        .iter()
        .filter(|s| s.stage == stage)
        .map(|s| s.ns)
        .collect();
    v.sort_unstable();
    v
}

/// `(start, end, n)` intervals: each `start` stamp with the first `end` stamp after it.
fn intervals(stamps: &[Stamp], start: Stage, end: Stage) -> Vec<(u64, u64, u32)> {
    let ends = times(stamps, end);
    let mut out = Vec::new();
    for s in stamps.iter().filter(|s| s.stage == start) {
        let i = ends.partition_point(|&e| e < s.ns);
        if let Some(&e) = ends.get(i) {
            out.push((s.ns, e, s.n));
        }
    }
    out.sort_unstable();
    out
}

/// The last of `sorted` at or before `t`.
fn last_before(sorted: &[u64], t: u64) -> Option<u64> {
    let i = sorted.partition_point(|&x| x <= t);
    i.checked_sub(1).map(|i| sorted[i])
}

/// The first of `sorted` at or after `t`.
fn first_after(sorted: &[u64], t: u64) -> Option<u64> {
    sorted.get(sorted.partition_point(|&x| x < t)).copied()
}

/// Prints the breakdown.
pub(crate) fn report(name: &str, sent: &[Sent], stamps: &[Stamp]) {
    let asks = times(stamps, Stage::ClaimAsk);
    let returns = times(stamps, Stage::ClaimReturn);
    let wakes = times(stamps, Stage::Wake);
    let writer_claims = intervals(stamps, Stage::WriterClaimStart, Stage::WriterClaimEnd);
    let writer_starts: Vec<u64> = writer_claims.iter().map(|c| c.0).collect();
    let sqlite = !writer_claims.is_empty();
    let mut claimed = HashMap::new();
    let mut request = HashMap::new();
    for s in stamps {
        match s.stage {
            Stage::Claimed => {
                claimed.insert(s.key, s.ns);
            }
            Stage::RequestStart => {
                request.insert(s.key, s.ns);
            }
            _ => {}
        }
    }
    let rounds = intervals(stamps, Stage::RoundStart, Stage::RoundEnd);
    let commits = intervals(stamps, Stage::CommitStart, Stage::RoundEnd);
    let writes = intervals(stamps, Stage::WritesStart, Stage::WritesEnd);

    // Per delivery.
    let mut total = Vec::new();
    let mut until_asked = Vec::new();
    let mut woke_late = Vec::new();
    let mut queued = Vec::new();
    let mut runs = Vec::new();
    let mut back = Vec::new();
    let mut claim = Vec::new();
    let mut to_request = Vec::new();
    let mut req = Vec::new();
    let mut behind_round = Vec::new();
    let mut asked_before_return = 0usize;
    let mut missing = 0usize;
    for d in sent {
        let (Some(&got), Some(&started)) = (claimed.get(&d.key), request.get(&d.key)) else {
            missing += 1;
            continue;
        };
        let Some(ask) = last_before(&asks, got) else {
            missing += 1;
            continue;
        };
        let ret = first_after(&returns, ask).unwrap_or(got);
        let from = d.returned;
        if ask < from {
            asked_before_return += 1;
        }
        total.push(d.arrived.saturating_sub(from));
        until_asked.push(ask.saturating_sub(from));
        // The dispatcher's wake before its ask, when it came after `send` returned: how long
        // the wait took to end.
        let wake = last_before(&wakes, ask).unwrap_or(ask);
        woke_late.push(wake.saturating_sub(from));
        claim.push(ret.saturating_sub(ask.max(from)));
        if sqlite {
            let i = writer_starts.partition_point(|&s| s < ask);
            let (ws, we, _) = writer_claims.get(i).copied().unwrap_or((ask, ret, 0));
            queued.push(ws.saturating_sub(ask.max(from)));
            runs.push(we.saturating_sub(ws.max(from)));
            back.push(ret.saturating_sub(we.max(from)));
            // Whether a round (or other writes) was running when the claim was asked for.
            let busy = rounds
                .iter()
                .chain(writes.iter())
                .any(|&(s, e, _)| s <= ask && ask < e);
            behind_round.push(u64::from(busy));
        }
        to_request.push(started.saturating_sub(ret.max(from)));
        req.push(d.arrived.saturating_sub(started.max(from)));
    }
    // The slowest 1 % by total.
    let mut order: Vec<usize> = (0..total.len()).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(total[i]));
    let tail: Vec<usize> = order[..total.len().div_ceil(100)].to_vec();

    println!("-- stages, {name}: {} deliveries", total.len());
    if missing > 0 {
        println!("  ({missing} deliveries had no stamps: claimed before recording started)");
    }
    println!(
        "  the dispatcher asked before `send` returned for {asked_before_return} (their \
         `until asked` is 0)"
    );
    row("total (send → arrival)", total.clone(), &tail);
    row("  until asked", until_asked, &tail);
    row("    (of which: until woken)", woke_late, &tail);
    if sqlite {
        row("  claim queued on writer", queued, &tail);
        row("  claim runs on writer", runs, &tail);
        row("  claim returns", back, &tail);
    } else {
        row("  claim", claim, &tail);
    }
    row("  to request", to_request, &tail);
    row("  request (→ arrival)", req, &tail);
    if sqlite {
        let n = behind_round.len().max(1);
        let busy = behind_round.iter().sum::<u64>();
        let busy_tail = tail.iter().filter(|&&i| behind_round[i] == 1).count();
        println!(
            "  claims asked while the writer ran a round or other writes: {busy} of {n} \
             deliveries ({:.0} %); of the slowest 1 %: {busy_tail} of {}",
            busy as f64 * 100.0 / n as f64,
            tail.len()
        );
        let secs = stamps
            .first()
            .zip(stamps.last())
            .map_or(1.0, |(a, b)| (b.ns.saturating_sub(a.ns)) as f64 / 1e9)
            .max(1e-3);
        let round_len: Vec<u64> = rounds.iter().map(|&(s, e, _)| e - s).collect();
        let commit_len: Vec<u64> = commits.iter().map(|&(s, e, _)| e - s).collect();
        let jobs: Vec<u64> = rounds.iter().map(|&(_, _, n)| u64::from(n)).collect();
        let claim_len: Vec<u64> = writer_claims.iter().map(|&(s, e, _)| e - s).collect();
        let busy_ns: u64 = round_len.iter().sum::<u64>()
            + claim_len.iter().sum::<u64>()
            + writes.iter().map(|&(s, e, _)| e - s).sum::<u64>();
        println!(
            "  writer thread: {:.0} rounds/s, {:.0} claims/s, {:.0} other writes/s; busy {:.0} % \
             of the time",
            rounds.len() as f64 / secs,
            writer_claims.len() as f64 / secs,
            writes.iter().filter(|w| w.2 > 0).count() as f64 / secs,
            busy_ns as f64 / 1e7 / secs
        );
        let (j50, j99, jmax) = pct(jobs);
        println!("  jobs per round: p50 {j50}, p99 {j99}, max {jmax}");
        row("round (read, write, commit)", round_len, &[]);
        row("  of which commit", commit_len, &[]);
        row("claim on writer", claim_len, &[]);
        let long: Vec<&(u64, u64, u32)> = rounds
            .iter()
            .filter(|&&(s, e, _)| e - s > 5_000_000)
            .collect();
        println!("  rounds over 5 ms: {}", long.len());
    }
}
