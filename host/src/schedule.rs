//! When collectors run: `every <duration>` schedules (e.g. `every 24h`,
//! `every 15m`, `every 1h30m`).

use std::time::Duration;

/// A parsed schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Run at start, then every interval.
    Every(Duration),
}

impl Schedule {
    /// Parses a schedule expression; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("every ") else {
            return Err(format!(
                "expected a schedule like \"every 24h\" or \"every 15m\", found {text:?}"
            ));
        };
        let interval = parse_duration(rest.trim()).ok_or_else(|| {
            format!(
                "expected a duration such as 24h, 15m, 90s or 1h30m after \"every\", found {rest:?}"
            )
        })?;
        if interval.is_zero() {
            return Err("the interval must be longer than zero".into());
        }
        Ok(Schedule::Every(interval))
    }
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

    #[test]
    fn parses_intervals() {
        assert_eq!(
            Schedule::parse("every 24h"),
            Ok(Schedule::Every(Duration::from_secs(86_400)))
        );
        assert_eq!(
            Schedule::parse("every 1h30m"),
            Ok(Schedule::Every(Duration::from_secs(5_400)))
        );
        assert_eq!(
            Schedule::parse("every 500ms"),
            Ok(Schedule::Every(Duration::from_millis(500)))
        );
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        let err = Schedule::parse("daily").unwrap_err();
        assert!(err.contains("every 24h"), "{err}");
        assert!(Schedule::parse("every 5 parsecs").is_err());
        assert!(Schedule::parse("every 0s").is_err());
    }
}
