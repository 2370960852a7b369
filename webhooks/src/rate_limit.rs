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
}
