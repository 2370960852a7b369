//! [`RetryPolicy`]: when a failed delivery is tried again, and when it is given up (exhausted).

use std::time::{Duration, SystemTime};

/// When to try a failed delivery again.
///
/// The default follows Svix: after the first attempt, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
/// 10 h (8 attempts over about 27.6 hours), each delay varied by ±20 % so that receivers coming
/// back from an outage are not hit by every retry at once. After the last attempt the delivery
/// is *exhausted*: kept, visible and recoverable, never dropped.
///
/// ```
/// use std::time::Duration;
/// use webhooks::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts(), 8);
///
/// // Three retries, 1 s apart, no jitter.
/// let policy = RetryPolicy::schedule([Duration::from_secs(1); 3]).jitter(0.0);
/// assert_eq!(policy.delay_after(1), Some(Duration::from_secs(1)));
/// assert_eq!(policy.delay_after(4), None); // exhausted
///
/// // Exponential: 1 s, 2 s, 4 s, … capped at 1 min, 10 attempts in all.
/// let policy = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(60), 10);
/// assert_eq!(policy.max_attempts(), 10);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub(crate) kind: Kind,
    pub(crate) jitter: f64,
}

/// The shape of the delays (read by the stores' stored form, `store::sql`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Schedule(Vec<Duration>),
    Exponential {
        initial: Duration,
        max_delay: Duration,
        max_attempts: u32,
    },
}

impl Default for RetryPolicy {
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        RetryPolicy::schedule(
            [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .map(Duration::from_secs),
        )
    }
}

impl RetryPolicy {
    /// An explicit schedule: the delay before each retry. `schedule([])` never retries.
    /// Jitter defaults to ±20 %.
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        RetryPolicy {
            kind: Kind::Schedule(delays.into_iter().collect()),
            jitter: 0.2,
        }
    }

    /// Exponential backoff: `initial`, doubling up to `max_delay`, for `max_attempts` attempts in
    /// all (the first one included). Jitter defaults to ±20 %.
    pub fn exponential(initial: Duration, max_delay: Duration, max_attempts: u32) -> Self {
        RetryPolicy {
            kind: Kind::Exponential {
                initial,
                max_delay,
                max_attempts: max_attempts.max(1),
            },
            jitter: 0.2,
        }
    }

    /// No retries: one attempt, then exhausted.
    pub fn never() -> Self {
        RetryPolicy::schedule([])
    }

    /// Varies each delay by up to ± `fraction` (0.0 to 1.0; clamped).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Attempts in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        match &self.kind {
            Kind::Schedule(delays) => u32::try_from(delays.len()).unwrap_or(u32::MAX - 1) + 1,
            Kind::Exponential { max_attempts, .. } => *max_attempts,
        }
    }

    /// The delay before the next attempt, once `attempts` attempts have failed, before jitter;
    /// `None` when the delivery is exhausted.
    pub fn base_delay_after(&self, attempts: u32) -> Option<Duration> {
        if attempts == 0 || attempts >= self.max_attempts() {
            return None;
        }
        match &self.kind {
            Kind::Schedule(delays) => delays.get(attempts as usize - 1).copied(),
            Kind::Exponential {
                initial, max_delay, ..
            } => {
                let factor = 2u32.checked_pow(attempts - 1).unwrap_or(u32::MAX);
                Some(
                    initial
                        .checked_mul(factor)
                        .unwrap_or(*max_delay)
                        .min(*max_delay),
                )
            }
        }
    }

    /// [`base_delay_after`](Self::base_delay_after) with jitter applied.
    pub fn delay_after(&self, attempts: u32) -> Option<Duration> {
        let base = self.base_delay_after(attempts)?;
        if self.jitter == 0.0 {
            return Some(base);
        }
        // A uniform factor in [1 - jitter, 1 + jitter].
        let unit = random_unit();
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Some(base.mul_f64(factor.max(0.0)))
    }
}

/// A float in [0, 1) from the OS random source (one call per failed attempt: cheap enough, and
/// no generator state to share between tasks).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` header value: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_svix() {
        let policy = RetryPolicy::default();
        let base: Vec<u64> = (1..8)
            .map(|n| policy.base_delay_after(n).unwrap().as_secs())
            .collect();
        assert_eq!(base, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(policy.base_delay_after(8), None);
        assert_eq!(policy.max_attempts(), 8);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = policy.delay_after(2).unwrap().as_secs_f64();
            assert!((240.0..=360.0).contains(&d), "{d}");
            seen.insert(d.to_bits());
        }
        assert!(seen.len() > 100, "jitter varies the delay");
    }

    #[test]
    fn exponential_caps() {
        let policy = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(10), 40)
            .jitter(0.0);
        let delays: Vec<u64> = (1..7)
            .map(|n| policy.delay_after(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.delay_after(39), Some(Duration::from_secs(10)));
        assert_eq!(policy.delay_after(40), None);
    }

    #[test]
    fn never_retries() {
        assert_eq!(RetryPolicy::never().max_attempts(), 1);
        assert_eq!(RetryPolicy::never().delay_after(1), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 04:30:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 04:31:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 04:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "soon", "1.5"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
