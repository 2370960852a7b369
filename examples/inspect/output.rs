//! What `inspect` prints: tables for people, JSON with `--json`.

use std::time::SystemTime;

use serde_json::{Value, json};
use webhooks::Subscription;
use webhooks::store::{Attempt, Delivery, Page};

pub(crate) fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A `Value` always serializes; say so rather than print nothing if that ever changes.
        Err(error) => eprintln!("error: cannot write JSON: {error}"),
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; the last is not padded.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub(crate) fn state(subscription: &Subscription) -> String {
    match subscription.disabled() {
        None => "enabled".to_owned(),
        Some(disabled) => format!("disabled {}: {}", rfc3339(disabled.at), disabled.reason),
    }
}

pub(crate) fn events(subscription: &Subscription) -> Vec<String> {
    match subscription.event_patterns() {
        [] => vec!["*".to_owned()],
        patterns => patterns.to_vec(),
    }
}

pub(crate) fn labels(subscription: &Subscription) -> Vec<String> {
    subscription
        .labels()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

pub(crate) fn print_subscriptions(subscriptions: &[Subscription]) {
    if subscriptions.is_empty() {
        println!("no subscriptions");
        return;
    }
    let rows: Vec<Vec<String>> = subscriptions
        .iter()
        .map(|s| {
            let labels = labels(s);
            vec![
                s.id().to_string(),
                s.url().to_string(),
                events(s).join(","),
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels.join(",")
                },
                state(s),
            ]
        })
        .collect();
    print_table(&["ID", "URL", "EVENTS", "LABELS", "STATE"], &rows);
}

pub(crate) fn subscription_json(s: &Subscription) -> Value {
    let labels: serde_json::Map<String, Value> = s
        .labels()
        .iter()
        .map(|(name, value)| (name.to_owned(), Value::from(value)))
        .collect();
    json!({
        "id": s.id(),
        "url": s.url().as_str(),
        "events": events(s),
        "labels": labels,
        "description": s.description_text(),
        "created_at": rfc3339(s.created_at()),
        "enabled": s.is_enabled(),
        "disabled": s.disabled().map(|d| json!({
            "at": rfc3339(d.at),
            "reason": d.reason.to_string(),
        })),
    })
}

pub(crate) fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "message_id": d.message_id,
        "subscription_id": d.subscription_id,
        "event": d.event_type,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "created_at": rfc3339(d.created_at),
        "last_attempt_at": d.last_attempt_at.map(rfc3339),
        "next_attempt_at": d.next_attempt_at.map(rfc3339),
    })
}

pub(crate) fn print_page(page: &Page<Delivery>, json: bool) {
    if json {
        print_json(&json!({
            "deliveries": page.items.iter().map(delivery_json).collect::<Vec<_>>(),
            "next": page.next.map(|c| c.to_string()),
        }));
        return;
    }
    if page.items.is_empty() {
        println!("no deliveries");
    } else {
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|d| {
                vec![
                    d.id.to_string(),
                    rfc3339(d.created_at),
                    d.status.to_string(),
                    d.attempts.to_string(),
                    d.next_attempt_at.map_or_else(|| "-".to_owned(), rfc3339),
                    d.event_type.clone(),
                    d.subscription_id.to_string(),
                    d.message_id.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "CREATED",
                "STATUS",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "EVENT",
                "SUBSCRIPTION",
                "MESSAGE",
            ],
            &rows,
        );
    }
    if let Some(cursor) = page.next {
        println!("next page: --after {cursor}");
    }
}

/// The start of a response body (or failure message) on one line: at most `max` characters,
/// control characters shown as spaces.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

pub(crate) fn print_attempts(attempts: &[Attempt]) {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            let body = String::from_utf8_lossy(&a.response_body);
            // The response when there is one; otherwise why there was none.
            let detail = if body.is_empty() {
                a.error_message.as_deref().unwrap_or("")
            } else {
                &body
            };
            vec![
                a.number.to_string(),
                rfc3339(a.at),
                a.status_code
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                format!("{} ms", a.latency.as_millis()),
                a.error.map_or_else(|| "-".to_owned(), |e| e.to_string()),
                excerpt(detail, 60),
            ]
        })
        .collect();
    print_table(
        &["#", "AT", "STATUS", "LATENCY", "ERROR", "RESPONSE"],
        &rows,
    );
}

pub(crate) fn attempt_json(a: &Attempt) -> Value {
    json!({
        "number": a.number,
        "at": rfc3339(a.at),
        "status_code": a.status_code,
        "latency_ms": u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
        "error": a.error.map(|e| e.as_str()),
        "error_message": a.error_message,
        "response_body": String::from_utf8_lossy(&a.response_body),
    })
}

/// `2026-11-24T04:30:43.123Z`: RFC 3339 in UTC, to the millisecond.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(timestamp) => format!("{timestamp:.3}"),
        // Outside jiff's range (years -9999 to 9999): not a time a store holds.
        Err(_) => format!("{time:?}"),
    }
}
