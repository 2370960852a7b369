//! Timestamps: RFC 3339 text for the Standard envelope and logs, unix seconds for signatures.
//! Twenty lines of calendar arithmetic instead of a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `now`, truncated to whole milliseconds so that it survives a round trip through any store.
pub(crate) fn now_millis() -> SystemTime {
    from_unix_millis(unix_millis(SystemTime::now()))
}

/// Milliseconds since the unix epoch (negative before it).
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Microseconds since the Unix epoch (0 before it): the rate limit's slots.
pub(crate) fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The time `micros` microseconds after the Unix epoch.
pub(crate) fn from_unix_micros(micros: u64) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros)
}

/// The inverse of [`unix_millis`].
pub(crate) fn from_unix_millis(millis: i64) -> SystemTime {
    if millis >= 0 {
        UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
    }
}

/// `2026-11-24T04:30:43.123Z`: RFC 3339 in UTC with milliseconds.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let millis = unix_millis(time);
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        for (millis, expected) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_614_265_330_000, "2021-02-25T15:02:10.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_795_494_643_999, "2026-11-24T04:30:43.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (253_402_300_799_000, "9999-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(rfc3339(from_unix_millis(millis)), expected, "{millis}");
        }
    }

    #[test]
    fn millis_round_trip() {
        for millis in [0, 1, -1, 1_700_000_000_123, -86_400_001] {
            assert_eq!(unix_millis(from_unix_millis(millis)), millis);
        }
    }
}
