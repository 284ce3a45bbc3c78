//! Process-wide counters of happenings outside any one run's [`Stats`]
//! (crate::stats::Stats): what the logs repaired when they were opened.

use std::sync::atomic::AtomicU64;

/// Torn log tails cut off when a log was opened (left by a crash).
pub static LOG_TAILS_CUT: AtomicU64 = AtomicU64::new(0);
