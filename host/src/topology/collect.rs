//! The collectors stage: runs collector modules on their schedules (on its
//! own thread: guest calls and SQL are blocking) and hands each report to
//! every report sink's outbox ([`ReportInbox`]), and to the redacted log
//! when an event sink (a JSONL file, say) also takes reports. It never
//! waits for a report to be delivered: the report sinks' own tasks do that.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::codec;
use crate::log::Log;
use crate::report::Report;
use crate::runtime::collector::CollectorModule;
use crate::schedule::Schedule;
use crate::sinks::report::ReportInbox;
use crate::stats::Stats;

use super::StageError;

/// A collector and when it is next due.
pub struct ScheduledCollector {
    /// The module.
    pub module: CollectorModule,
    /// Its schedule.
    pub schedule: Schedule,
    /// When it is next due.
    pub next: DateTime<Utc>,
}

/// Collectors and where their reports go.
pub struct Collectors {
    /// The collectors.
    pub collectors: Vec<ScheduledCollector>,
    /// Every report sink's inbox.
    pub inboxes: Vec<ReportInbox>,
    /// The redacted log, when an event sink takes reports.
    pub redacted: Option<Arc<Log>>,
    /// Shared counters.
    pub stats: Arc<Mutex<Stats>>,
}

impl Collectors {
    /// Runs every collector that is due (or all of them, with `all`) and
    /// hands its report on.
    pub fn run_due(&mut self, all: bool) -> Result<(), StageError> {
        let now = Utc::now();
        for c in &mut self.collectors {
            if !all && c.next > now {
                continue;
            }
            c.next = c.schedule.next_after(now);
            let name = c.module.source().name.to_string();
            let collected_at = Utc::now();
            match c.module.collect() {
                Ok(collected) => {
                    let report = Report {
                        collector: name,
                        module_sha256: c.module.source().sha256.to_string(),
                        collected_at,
                        base: collected.base,
                        counts: collected.counts,
                    };
                    let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                    stats.reports += 1;
                    stats.counts_reported += report.counts.len() as u64;
                    drop(stats);
                    for inbox in &self.inboxes {
                        inbox.push(&report).map_err(|e| StageError::Io {
                            context: format!("cannot put a report into the outbox of sink {}", inbox.name()),
                            source: e,
                        })?;
                    }
                    if let Some(log) = &self.redacted {
                        log.append(&[&codec::report_bytes(&report)])?;
                    }
                }
                Err(failure) => {
                    self.stats.lock().unwrap_or_else(|p| p.into_inner()).collector_failures += 1;
                    tracing::error!(collector = %name, kind = failure.kind(), "collection failed: {failure}");
                }
            }
        }
        Ok(())
    }

    /// How long until the next collector is due (`None` without collectors).
    pub fn next_in(&self) -> Option<Duration> {
        self.collectors.iter().map(|c| (c.next - Utc::now()).to_std().unwrap_or(Duration::ZERO)).min()
    }

    /// Runs collectors on their schedules until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), StageError> {
        while !stop.load(Ordering::SeqCst) {
            self.run_due(false)?;
            let Some(wait) = self.next_in() else { return Ok(()) };
            let until = std::time::Instant::now() + wait;
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100).min(until - std::time::Instant::now()));
            }
        }
        Ok(())
    }
}
