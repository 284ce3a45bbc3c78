//! The retry policy for report delivery: which gRPC status codes are worth
//! another attempt, and how long to wait (exponential backoff with jitter,
//! bounded by a maximum number of attempts and a maximum elapsed time).
//! The table it implements is in `shared/spec/zitadel-telemetry.md`.

use std::time::Duration;

use serde::Deserialize;
use tonic::Code;

/// Retry settings (`[sinks.retry]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Attempts per call when the server answers INTERNAL.
    pub internal_max_attempts: u32,
    /// Wait before the second attempt, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Give up when the next attempt would start later than this after the
    /// first, in milliseconds.
    pub max_elapsed_ms: u64,
    /// Extra status codes to retry (e.g. `["ABORTED"]`), beyond the table.
    pub extra_retry_codes: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            internal_max_attempts: 2,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
            max_elapsed_ms: 60_000,
            extra_retry_codes: Vec::new(),
        }
    }
}

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Start a new report (ReportBaseInformation), once.
    NewReport,
    /// Stop: the call cannot succeed as it is.
    GiveUp,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based) failed with `code`,
    /// `elapsed` after the first attempt started.
    pub fn decide(&self, code: Code, attempt: u32, elapsed: Duration) -> Decision {
        let limit = match code {
            Code::DeadlineExceeded | Code::ResourceExhausted | Code::Unavailable => self.max_attempts,
            Code::Internal => self.internal_max_attempts.min(self.max_attempts),
            Code::FailedPrecondition => return Decision::NewReport,
            Code::InvalidArgument | Code::NotFound => return Decision::GiveUp,
            other if self.extra_retry_codes.iter().any(|c| c.eq_ignore_ascii_case(code_name(other))) => {
                self.max_attempts
            }
            _ => return Decision::GiveUp,
        };
        if attempt >= limit {
            return Decision::GiveUp;
        }
        let wait = self.backoff(attempt);
        if elapsed + wait > Duration::from_millis(self.max_elapsed_ms) {
            return Decision::GiveUp;
        }
        Decision::Retry(wait)
    }

    /// The wait after attempt `attempt`: `initial * 2^(attempt-1)`, capped,
    /// then jittered to between half and all of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30));
        let capped = exp.min(self.max_backoff_ms);
        let jittered = capped / 2 + fastrand::u64(0..=capped - capped / 2);
        Duration::from_millis(jittered)
    }
}

/// The canonical upper-case name of a status code (`UNAVAILABLE`, ...).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;

    #[test]
    fn follows_the_spec_table() {
        let p = RetryPolicy::default();
        for code in [Code::DeadlineExceeded, Code::ResourceExhausted, Code::Unavailable, Code::Internal] {
            assert!(matches!(p.decide(code, 1, T0), Decision::Retry(_)), "{code:?}");
        }
        assert_eq!(p.decide(Code::InvalidArgument, 1, T0), Decision::GiveUp);
        assert_eq!(p.decide(Code::NotFound, 1, T0), Decision::GiveUp);
        assert_eq!(p.decide(Code::FailedPrecondition, 1, T0), Decision::NewReport);
        assert_eq!(p.decide(Code::PermissionDenied, 1, T0), Decision::GiveUp);
        assert_eq!(p.decide(Code::Aborted, 1, T0), Decision::GiveUp);
    }

    #[test]
    fn bounds_attempts_and_elapsed_time() {
        let p = RetryPolicy::default();
        assert!(matches!(p.decide(Code::Unavailable, 4, T0), Decision::Retry(_)));
        assert_eq!(p.decide(Code::Unavailable, 5, T0), Decision::GiveUp);
        assert_eq!(p.decide(Code::Internal, 2, T0), Decision::GiveUp, "INTERNAL is retried a bounded number of times");
        assert_eq!(p.decide(Code::Unavailable, 1, Duration::from_secs(60)), Decision::GiveUp);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let first = p.backoff(1).as_millis();
            assert!((100..=200).contains(&first), "{first}");
            let third = p.backoff(3).as_millis();
            assert!((400..=800).contains(&third), "{third}");
            assert!(p.backoff(20).as_millis() <= 10_000);
        }
    }

    #[test]
    fn extra_codes_are_configurable() {
        let p = RetryPolicy { extra_retry_codes: vec!["aborted".into()], ..RetryPolicy::default() };
        assert!(matches!(p.decide(Code::Aborted, 1, T0), Decision::Retry(_)));
    }
}
