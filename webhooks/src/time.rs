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

/// Reads an RFC 3339 time such as `2026-11-24T04:30:43.123Z` or `2026-11-24T05:30:43+01:00`
/// (the Standard envelope's `timestamp`). Fractions finer than a nanosecond are dropped; a leap
/// second (`:60`) is read as the next second. `None` if the text is not RFC 3339.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        Some(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let [b'.', fraction @ ..] = rest {
        let len = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, d) in fraction[..len].iter().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (hours, minutes) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let time = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    Some(time + Duration::from_nanos(u64::from(nanos)))
}

/// (year, month, day) to days since 1970-01-01: the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn parses_rfc3339() {
        for millis in [
            0,
            1_614_265_330_000,
            951_782_400_123,
            1_795_494_643_999,
            -1,
            253_402_300_799_000,
        ] {
            let time = from_unix_millis(millis);
            assert_eq!(parse_rfc3339(&rfc3339(time)), Some(time), "{millis}");
        }
        let at = |text| parse_rfc3339(text).map(unix_millis);
        assert_eq!(at("2021-02-25T16:02:10+01:00"), Some(1_614_265_330_000));
        assert_eq!(at("2021-02-25t14:32:10.5-00:30"), Some(1_614_265_330_500));
        assert_eq!(
            at("2021-02-25 15:02:10.123456789Z"),
            Some(1_614_265_330_123)
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.000000001Z"),
            Some(UNIX_EPOCH + Duration::from_nanos(1))
        );
        for bad in [
            "",
            "2021-02-25",
            "2021-02-25T15:02:10",
            "2021-02-25T15:02:10.Z",
            "2021-02-30T15:02:10Z",
            "2021-13-01T15:02:10Z",
            "2021-02-25T24:00:00Z",
            "2021-02-25T15:02:10+1:00",
            "2021-02-25T15:02:10Zjunk",
            "+021-02-25T15:02:10Z",
            "2021-02-25T15:02:10+24:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn millis_round_trip() {
        for millis in [0, 1, -1, 1_700_000_000_123, -86_400_001] {
            assert_eq!(unix_millis(from_unix_millis(millis)), millis);
        }
    }
}
