//! Time helpers: the current wall-clock time and parsing of the
//! `created_at` values that base-information queries return.

use crate::wasmtel::telemetry::types::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds in one second.
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// Returns the current wall-clock time as a WIT timestamp.
///
/// Times before the Unix epoch (a badly set clock) are represented with a
/// negative `seconds` and non-negative `nanos`, as the WIT type requires.
pub(crate) fn now() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp { seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), nanos: d.subsec_nanos() },
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                Timestamp { seconds: -secs, nanos: 0 }
            } else {
                Timestamp { seconds: -secs - 1, nanos: NANOS_PER_SEC - d.subsec_nanos() }
            }
        }
    }
}

/// Converts fractional Unix seconds to a timestamp; `None` when the value is
/// not finite or out of range.
pub(crate) fn from_unix_f64(value: f64) -> Option<Timestamp> {
    // 2^63, exactly representable: every finite value in [-2^63, 2^63)
    // floors to a valid i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&value) {
        return None;
    }
    let floor = value.floor();
    let mut seconds = floor as i64;
    let mut nanos = ((value - floor) * f64::from(NANOS_PER_SEC)).round() as u32;
    if nanos >= NANOS_PER_SEC {
        seconds = seconds.checked_add(1)?;
        nanos = 0;
    }
    Some(Timestamp { seconds, nanos })
}

/// Parses an RFC 3339 date-time such as `2024-05-01T12:30:00Z` or
/// `2024-05-01T14:30:00.250+02:00`.
///
/// Leniencies, for the text SQL databases produce: the date/time separator
/// may be `T`, `t` or a space, and a missing offset means UTC (SQLite's
/// `datetime()` prints `2024-05-01 12:30:00`). Fractions beyond nanoseconds
/// are truncated. Returns a message describing the problem on failure.
pub(crate) fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let mut p = Parser { bytes: text.trim().as_bytes(), pos: 0 };
    let year = p.digits(4, "year")?;
    p.expect(b'-')?;
    let month = p.digits(2, "month")?;
    p.expect(b'-')?;
    let day = p.digits(2, "day")?;
    match p.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err("expected `T` between date and time".to_owned()),
    }
    let hour = p.digits(2, "hour")?;
    p.expect(b':')?;
    let minute = p.digits(2, "minute")?;
    p.expect(b':')?;
    let second = p.digits(2, "second")?;

    let mut nanos: u32 = 0;
    if p.peek() == Some(b'.') {
        p.pos += 1;
        let mut count = 0;
        while let Some(c @ b'0'..=b'9') = p.peek() {
            if count < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            count += 1;
            p.pos += 1;
        }
        if count == 0 {
            return Err("expected digits after `.`".to_owned());
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }

    let offset_seconds: i64 = match p.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = p.digits(2, "offset hour")?;
            p.expect(b':')?;
            let om = p.digits(2, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err("offset out of range".to_owned());
            }
            let magnitude = i64::from(oh) * 3600 + i64::from(om) * 60;
            if sign == b'+' { magnitude } else { -magnitude }
        }
        Some(_) => return Err("expected `Z` or an offset like `+02:00`".to_owned()),
    };
    if p.peek().is_some() {
        return Err("unexpected text after the date-time".to_owned());
    }

    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(format!("day {day} out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range".to_owned());
    }

    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second) - offset_seconds;
    Ok(Timestamp { seconds, nanos })
}

/// A cursor over the bytes of a date-time string.
struct Parser<'a> {
    /// The text being parsed.
    bytes: &'a [u8],
    /// Index of the next unread byte.
    pos: usize,
}

impl Parser<'_> {
    /// The next byte without consuming it.
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes and returns the next byte.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    /// Consumes `b` or fails.
    fn expect(&mut self, b: u8) -> Result<(), String> {
        match self.next() {
            Some(got) if got == b => Ok(()),
            _ => Err(format!("expected `{}`", char::from(b))),
        }
    }

    /// Consumes exactly `n` ASCII digits and returns their value.
    fn digits(&mut self, n: usize, what: &str) -> Result<u32, String> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.next() {
                Some(c @ b'0'..=b'9') => value = value * 10 + u32::from(c - b'0'),
                _ => return Err(format!("expected {n} digits for the {what}")),
            }
        }
        Ok(value)
    }
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1..=12) of `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    //! Unit tests for the time helpers.

    use super::*;

    /// UTC, offsets, fractions and the lenient forms parse to the right instant.
    #[test]
    fn parses_utc_and_offsets() {
        let t = parse_rfc3339("2023-11-14T22:13:20Z").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 0));
        let t = parse_rfc3339("2023-11-15T00:13:20.5+02:00").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 500_000_000));
        let t = parse_rfc3339("2023-11-14T20:13:20.123456789123-02:00").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_789));
        let t = parse_rfc3339("1970-01-01 00:00:00").unwrap();
        assert_eq!((t.seconds, t.nanos), (0, 0));
        let t = parse_rfc3339("2024-02-29t00:00:00z").unwrap();
        assert_eq!(t.seconds, 1_709_164_800);
        let t = parse_rfc3339("1969-12-31T23:59:59Z").unwrap();
        assert_eq!(t.seconds, -1);
    }

    /// Malformed or out-of-range date-times are rejected.
    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00.Z",
            "2023-01-01T00:00:00+0200",
            "2023-01-01T00:00:00Zjunk",
            "2023-01-01",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} should fail");
        }
    }

    /// Fractional Unix seconds split into seconds and nanos; non-finite values fail.
    #[test]
    fn converts_fractional_seconds() {
        let t = from_unix_f64(1.25).unwrap();
        assert_eq!((t.seconds, t.nanos), (1, 250_000_000));
        let t = from_unix_f64(-0.5).unwrap();
        assert_eq!((t.seconds, t.nanos), (-1, 500_000_000));
        assert!(from_unix_f64(f64::NAN).is_none());
        assert!(from_unix_f64(1e30).is_none());
    }

    /// The clock reads a plausible time.
    #[test]
    fn now_is_after_2020() {
        assert!(now().seconds > 1_577_836_800);
    }
}
