//! A per-subscription rate limit: requests spaced evenly, `1/rate` apart.

use std::time::{Duration, Instant};

/// Spaces requests at least `interval` apart. Evenly spaced rather than bursty, so that "at most
/// N per second" holds over any window, which is what receivers' own limits check.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    /// When the next request may start.
    next: Instant,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32, now: Instant) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: now,
        }
    }

    /// Reserves the next slot; returns when it starts.
    pub(crate) fn reserve(&mut self, now: Instant) -> Instant {
        let start = self.next.max(now);
        self.next = start + self.interval;
        start
    }

    /// When a request reserved now would start.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        self.next.max(now)
    }
}

/// The send slots of a rate-limited subscription, as the stores' claims hand them out to every
/// worker: `1/rate` apart, from the first free slot on, and none later than half a lease after
/// the claim, so that every delivery claimed is sent before its lease lapses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slots {
    /// Microseconds between two slots (rounded up: "at most n per second" holds).
    pub(crate) interval_us: u64,
    /// The first slot to give, in unix microseconds.
    pub(crate) first_us: u64,
    /// How many slots may be given.
    pub(crate) available: usize,
}

impl Slots {
    /// The slots a claim at `now_us` with `lease` may give, when the subscription's next free
    /// slot is `next_us` (0 if it never had one).
    pub(crate) fn new(per_second: u32, next_us: u64, now_us: u64, lease: Duration) -> Self {
        let interval_us = 1_000_000u64.div_ceil(u64::from(per_second.max(1)));
        let first_us = next_us.max(now_us);
        let horizon_us =
            now_us.saturating_add(u64::try_from(lease.as_micros() / 2).unwrap_or(u64::MAX));
        let available = if first_us > horizon_us {
            0
        } else {
            usize::try_from((horizon_us - first_us) / interval_us + 1).unwrap_or(usize::MAX)
        };
        Slots {
            interval_us,
            first_us,
            available,
        }
    }

    /// The `i`-th slot given (from 0), in unix microseconds.
    pub(crate) fn slot(&self, i: usize) -> u64 {
        self.first_us + self.interval_us * i as u64
    }

    /// The next free slot after `given` slots were handed out.
    pub(crate) fn next_after(&self, given: usize) -> u64 {
        self.slot(given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_evenly() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(4, now);
        let starts: Vec<Duration> = (0..5).map(|_| limiter.reserve(now) - now).collect();
        assert_eq!(starts, [0, 250, 500, 750, 1000].map(Duration::from_millis));
        assert_eq!(limiter.ready_at(now) - now, Duration::from_millis(1250));
        // Idle time is not banked into a burst.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later + Duration::from_millis(250));
    }

    #[test]
    fn slots_fit_within_half_a_lease() {
        let lease = Duration::from_secs(10);
        // 2 per second from now: slots at 0, 0.5 s, ..., 5 s: eleven.
        let slots = Slots::new(2, 0, 1_000_000, lease);
        assert_eq!(slots.interval_us, 500_000);
        assert_eq!(slots.available, 11);
        assert_eq!(slots.slot(3), 2_500_000);
        // Slots already handed out up to 4 s ahead: two more fit.
        let slots = Slots::new(2, 5_000_000, 1_000_000, lease);
        assert_eq!(slots.available, 3);
        // Beyond the horizon: none.
        assert_eq!(Slots::new(2, 7_000_000, 1_000_000, lease).available, 0);
        // 3 per second: rounded up, never faster.
        assert_eq!(Slots::new(3, 0, 0, lease).interval_us, 333_334);
    }
}
