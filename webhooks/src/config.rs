//! The runtime's settings, with the defaults the reference systems chose.

use std::time::Duration;

use crate::ssrf::NetworkPolicy;
use crate::subscription::DisableReason;
use crate::{Envelope, RetryPolicy};

/// When a subscription that keeps failing is disabled.
///
/// Svix disables an endpoint whose every attempt has failed for 5 days; that is the default.
/// Disabled subscriptions keep their deliveries as *skipped*, recoverable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoDisable {
    /// Disable when every attempt has failed for this long (`None`: never for this reason).
    pub after_failing_for: Option<Duration>,
    /// Disable after this many exhausted deliveries in a row (`None`: never for this reason).
    pub after_exhausted: Option<u32>,
}

impl Default for AutoDisable {
    fn default() -> Self {
        AutoDisable {
            after_failing_for: Some(Duration::from_secs(5 * 24 * 3600)),
            after_exhausted: None,
        }
    }
}

impl AutoDisable {
    /// Never disable automatically (410 Gone still disables).
    pub fn never() -> Self {
        AutoDisable {
            after_failing_for: None,
            after_exhausted: None,
        }
    }
}

/// Everything the builder sets.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) envelope: Envelope,
    pub(crate) retry: RetryPolicy,
    pub(crate) network: NetworkPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_in_flight_per_subscription: usize,
    pub(crate) claim_batch: usize,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) response_body_limit: usize,
    pub(crate) slow_down_floor: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) auto_disable: AutoDisable,
    pub(crate) rotation_overlap: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) notification_capacity: usize,
    pub(crate) retention: Option<Duration>,
    /// No dispatcher: this process only enqueues.
    pub(crate) send_only: bool,
    pub(crate) purge_interval: Duration,
    /// The largest body `send` accepts.
    pub(crate) max_message_size: usize,
    /// How long an idempotency key is remembered.
    pub(crate) idempotency_window: Duration,
    /// The event types subscriptions may name (`Builder::catalog`); `None`: any.
    pub(crate) catalog: Option<std::sync::Arc<crate::Catalog>>,
}

/// The default [`Config::max_message_size`]: 1 MiB. Svix caps a payload at about 350 KB and
/// Hook0 at 512 KiB; 1 MiB leaves room for larger documents while still refusing what no
/// receiver should be sent (many receivers reject bodies over 1 MiB themselves).
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            envelope: Envelope::Compact,
            retry: RetryPolicy::default(),
            network: NetworkPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_in_flight: 512,
            max_in_flight_per_subscription: 64,
            claim_batch: 256,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            response_body_limit: 16 * 1024,
            slow_down_floor: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(24 * 3600),
            auto_disable: AutoDisable::default(),
            rotation_overlap: Duration::from_secs(24 * 3600),
            shutdown_timeout: Duration::from_secs(30),
            notification_capacity: 1024,
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
            send_only: false,
            purge_interval: Duration::from_secs(3600),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            idempotency_window: Duration::from_secs(24 * 3600),
            catalog: None,
        }
    }
}

impl Config {
    /// Checks the settings that depend on each other; names the one to change.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        use crate::Error;
        if self.max_in_flight == 0 {
            return Err(Error::config("max_in_flight", "must be at least 1"));
        }
        if self.max_in_flight_per_subscription == 0 {
            return Err(Error::config(
                "max_in_flight_per_subscription",
                "must be at least 1",
            ));
        }
        // A day at most: a longer lease only delays recovery from a dead worker, and stores add
        // it to the current time.
        if self.lease < Duration::from_secs(1) || self.lease > Duration::from_secs(24 * 3600) {
            return Err(Error::config(
                "lease",
                "the lease must be between 1 second and 24 hours",
            ));
        }
        // A request still running when its lease lapses can be claimed and sent again by
        // another worker; twice the timeout leaves room for the wait for a request slot.
        if self.lease < self.timeout.saturating_mul(2) {
            return Err(Error::config(
                "lease",
                format!(
                    "the lease ({:?}) must be at least twice the request timeout ({:?}), so \
                     that a request ends before another worker may claim its delivery",
                    self.lease, self.timeout
                ),
            ));
        }
        if self.max_message_size == 0 {
            return Err(Error::config("max_message_size", "must be at least 1 byte"));
        }
        if let Some(retention) = self.retention
            && self.idempotency_window > retention
        {
            return Err(Error::config(
                "idempotency_window",
                "must not be longer than the retention, which purges older keys",
            ));
        }
        Ok(())
    }
}

impl AutoDisable {
    /// Whether a subscription with this health must be disabled now, and why.
    pub(crate) fn verdict(
        &self,
        health: &crate::store::Health,
        now: std::time::SystemTime,
    ) -> Option<DisableReason> {
        if let (Some(limit), Some(since)) = (self.after_failing_for, health.failing_since)
            && now.duration_since(since).is_ok_and(|d| d >= limit)
        {
            return Some(DisableReason::FailingSince(since));
        }
        match self.after_exhausted {
            Some(n) if health.consecutive_exhausted >= n => Some(
                DisableReason::ConsecutiveExhausted(health.consecutive_exhausted),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults README's "What happens next, by default" states.
    #[test]
    fn defaults_are_what_the_readme_says() {
        let config = Config::default();
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.response_body_limit, 16 * 1024);
        assert_eq!(config.max_message_size, 1024 * 1024);
        assert_eq!(config.max_in_flight, 512);
        assert_eq!(config.max_in_flight_per_subscription, 64);
        assert_eq!(config.slow_down_floor, Duration::from_secs(60));
        assert_eq!(config.max_retry_after, Duration::from_secs(24 * 3600));
        assert_eq!(config.rotation_overlap, Duration::from_secs(24 * 3600));
        assert_eq!(config.idempotency_window, Duration::from_secs(24 * 3600));
        assert_eq!(
            config.auto_disable.after_failing_for,
            Some(Duration::from_secs(5 * 24 * 3600))
        );
        config.validate().unwrap();
    }
}
