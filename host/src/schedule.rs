//! When collectors run. Three forms, all in UTC:
//!
//! - `every <duration>`: at start, then every interval (`every 24h`,
//!   `every 15m`, `every 1h30m`);
//! - `daily at HH:MM`: once a day (`daily at 02:00`);
//! - `cron <min> <hour> <day-of-month> <month> <day-of-week>`: a standard
//!   five-field cron expression with `*`, lists, ranges and steps
//!   (`cron 0 2 * * *`, `cron */15 8-18 * * 1-5`).

use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Span, Timelike, Utc};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Run at start, then every interval.
    Every(Duration),
    /// Run at the times a cron expression matches.
    Cron(Cron),
}

/// Longest `every` interval accepted: ten years. Longer ones would push the
/// next run past what a timestamp can hold.
const MAX_INTERVAL: Duration = Duration::from_secs(3650 * 86_400);

const HINT: &str = "expected \"every 24h\", \"daily at 02:00\" or \"cron 0 2 * * *\"";

/// A schedule expression that cannot be parsed; says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

impl Schedule {
    /// Parses a schedule expression; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse_text(text).map_err(ScheduleError)
    }

    fn parse_text(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("every ") {
            let interval = parse_duration(rest.trim()).ok_or_else(|| {
                format!("expected a duration such as 24h, 15m, 90s or 1h30m after \"every\", found {rest:?}")
            })?;
            if interval.is_zero() {
                return Err("the interval must be longer than zero".into());
            }
            if interval > MAX_INTERVAL {
                return Err(format!("the interval must be at most 3650d (ten years), found {rest:?}"));
            }
            return Ok(Schedule::Every(interval));
        }
        if let Some(rest) = text.strip_prefix("daily at ") {
            let (h, m) = rest
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("expected HH:MM after \"daily at\", found {rest:?}"))?;
            let (h, m): (u32, u32) = match (h.parse(), m.parse()) {
                (Ok(h), Ok(m)) if h < 24 && m < 60 => (h, m),
                _ => return Err(format!("expected HH:MM (00:00 to 23:59) after \"daily at\", found {rest:?}")),
            };
            return Cron::parse_text(&format!("{m} {h} * * *")).map(Schedule::Cron);
        }
        if let Some(rest) = text.strip_prefix("cron ") {
            return Cron::parse_text(rest).map(Schedule::Cron);
        }
        Err(format!("{HINT}, found {text:?}"))
    }

    /// The first run at or after `start` (for `every`: `start` itself).
    pub fn first(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every(_) => start,
            Schedule::Cron(c) => c.next_after(start - Span::minutes(1)),
        }
    }

    /// The run after one at `last`.
    pub fn next_after(&self, last: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every(d) => last + Span::from_std(*d).unwrap_or(Span::days(1)),
            Schedule::Cron(c) => c.next_after(last),
        }
    }
}

/// A five-field cron expression as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    any_day: bool,
    any_weekday: bool,
}

impl Cron {
    /// Parses `min hour dom month dow`.
    pub fn parse(expr: &str) -> Result<Cron, ScheduleError> {
        Cron::parse_text(expr).map_err(ScheduleError)
    }

    fn parse_text(expr: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [min, hour, dom, month, dow] = fields[..] else {
            return Err(format!(
                "a cron expression has five fields (minute hour day-of-month month day-of-week), found {expr:?}"
            ));
        };
        let weekdays = field(dow, 0, 7, "day-of-week")?;
        // 7 is Sunday too.
        let weekdays = ((weekdays | (weekdays >> 7)) & 0x7f) as u8;
        Ok(Cron {
            minutes: field(min, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")? as u32,
            days: field(dom, 1, 31, "day-of-month")? as u32,
            months: field(month, 1, 12, "month")? as u16,
            weekdays,
            any_day: dom == "*",
            any_weekday: dow == "*",
        })
    }

    fn day_matches(&self, t: DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            // Both restricted: cron runs when either matches.
            (false, false) => dom || dow,
        }
    }

    /// The first matching minute strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = (t + Span::minutes(1)).with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t);
        // Eight years covers every valid expression (Feb 29 on a weekday).
        let limit = t + Span::days(366 * 8);
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
                t = t
                    .with_day(1)
                    .and_then(|d| d.with_year(y))
                    .and_then(|d| d.with_month(m))
                    .and_then(|d| d.with_hour(0))
                    .and_then(|d| d.with_minute(0))
                    .unwrap_or(limit);
                continue;
            }
            if !self.day_matches(t) {
                t = (t + Span::days(1)).with_hour(0).and_then(|d| d.with_minute(0)).unwrap_or(limit);
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + Span::hours(1)).with_minute(0).unwrap_or(limit);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Span::minutes(1);
                continue;
            }
            return t;
        }
        limit
    }
}

/// Parses one cron field into a bit set over `lo..=hi`.
fn field(text: &str, lo: u32, hi: u32, name: &str) -> Result<u64, String> {
    let bad =
        || format!("cron {name} field {text:?}: expected *, a number {lo}-{hi}, a range a-b, a list a,b or a step */n");
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(bad)?),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
        } else {
            let a: u32 = range.parse().map_err(|_| bad())?;
            (a, if step > 1 { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(bad());
        }
        for v in (a..=b).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// Parses `1h30m`, `15m`, `90s`, `500ms`, `2d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        total = total.checked_add(unit)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_intervals() {
        assert_eq!(Schedule::parse("every 24h"), Ok(Schedule::Every(Duration::from_secs(86_400))));
        assert_eq!(Schedule::parse("every 1h30m"), Ok(Schedule::Every(Duration::from_secs(5_400))));
        assert_eq!(Schedule::parse("every 500ms"), Ok(Schedule::Every(Duration::from_millis(500))));
        let s = Schedule::parse("every 1h").unwrap();
        assert_eq!(s.first(at("2026-01-01T10:17:00Z")), at("2026-01-01T10:17:00Z"));
        assert_eq!(s.next_after(at("2026-01-01T10:17:00Z")), at("2026-01-01T11:17:00Z"));
    }

    #[test]
    fn daily_at_two() {
        let s = Schedule::parse("daily at 02:00").unwrap();
        assert_eq!(s.first(at("2026-01-01T10:17:00Z")), at("2026-01-02T02:00:00Z"));
        assert_eq!(s.first(at("2026-01-01T01:59:30Z")), at("2026-01-01T02:00:00Z"));
        assert_eq!(s.first(at("2026-01-01T02:00:00Z")), at("2026-01-01T02:00:00Z"));
        assert_eq!(s.next_after(at("2026-01-01T02:00:00Z")), at("2026-01-02T02:00:00Z"));
    }

    #[test]
    fn cron_expressions() {
        let s = Schedule::parse("cron */15 8-18 * * 1-5").unwrap();
        // 2026-01-03 is a Saturday: next is Monday 08:00.
        assert_eq!(s.next_after(at("2026-01-02T18:50:00Z")), at("2026-01-05T08:00:00Z"));
        assert_eq!(s.next_after(at("2026-01-05T08:00:00Z")), at("2026-01-05T08:15:00Z"));
        let s = Schedule::parse("cron 0 0 29 2 *").unwrap();
        assert_eq!(s.next_after(at("2026-03-01T00:00:00Z")), at("2028-02-29T00:00:00Z"));
        let s = Schedule::parse("cron 30 4 1,15 * 0").unwrap();
        // Day-of-month OR Sunday: 2026-01-04 is a Sunday.
        assert_eq!(s.next_after(at("2026-01-02T00:00:00Z")), at("2026-01-04T04:30:00Z"));
        assert_eq!(Schedule::parse("cron 0 12 * 12 7"), Schedule::parse("cron 0 12 * 12 0"));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        let err = Schedule::parse("daily").unwrap_err();
        assert!(err.0.contains("every 24h") && err.0.contains("daily at 02:00"), "{err}");
        assert!(Schedule::parse("every 5 parsecs").is_err());
        assert!(Schedule::parse("every 0s").is_err());
        let err = Schedule::parse("every 2562047788015215h").unwrap_err();
        assert!(err.0.contains("at most 3650d"), "{err}");
        let longest = Schedule::parse("every 3650d").unwrap();
        assert!(longest.next_after(Utc::now()) > Utc::now());
        assert!(Schedule::parse("daily at 25:00").is_err());
        assert!(Schedule::parse("cron 60 * * * *").unwrap_err().0.contains("minute"));
        assert!(Schedule::parse("cron * * *").unwrap_err().0.contains("five fields"));
    }
}
