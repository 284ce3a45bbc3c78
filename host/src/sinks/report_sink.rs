//! What the report sinks share: every report goes to the sink's outbox
//! ([`crate::queue`]) first, then the outbox is drained oldest first through
//! a [`Deliver`] implementation (gRPC or HTTP). A report that cannot be
//! delivered now stays for the next run (and stops the drain: later ones
//! would fail the same way); one the receiver refuses as invalid moves to
//! `rejected/`. Failures are logged and counted, never returned to the host
//! application. A shared [`ReportingSwitch`] stops every report sink when a
//! receiver asks.

use std::path::Path;

use super::{Refused, Sink};
use crate::config::Stream;
use crate::guard::Redacted;
use crate::installation::ReportingSwitch;
use crate::queue::{Outbox, PendingReport};
use crate::report::Report;

/// Why a delivery stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Refused as invalid: keep for inspection, do not retry.
    Rejected(String),
    /// Not delivered now: keep and try again on the next run.
    Deferred(String),
}

/// One way to deliver a report (the protocol part of a report sink).
pub trait Deliver: Send {
    /// Delivers `pending`, calling `save` after every step the receiver
    /// accepted, so an interrupted delivery resumes there.
    fn deliver(&mut self, pending: &mut PendingReport, save: &mut dyn FnMut(&PendingReport)) -> Result<(), Stop>;
}

/// What a report sink did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReporterStats {
    /// Reports fully delivered.
    pub delivered: u64,
    /// Reports left in the outbox for a later run.
    pub deferred: u64,
    /// Reports the receiver refused (moved to `rejected/`).
    pub rejected: u64,
}

/// A report sink: an outbox drained through `D`.
pub struct ReportSink<D> {
    name: String,
    deliver: D,
    outbox: Outbox,
    switch: ReportingSwitch,
    stats: ReporterStats,
}

impl<D: Deliver> ReportSink<D> {
    /// A sink named `name` with its outbox under `state_dir`.
    pub fn open(name: &str, deliver: D, state_dir: &Path, switch: ReportingSwitch) -> std::io::Result<Self> {
        Ok(ReportSink {
            name: name.to_string(),
            deliver,
            outbox: Outbox::open(state_dir, name)?,
            switch,
            stats: ReporterStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> &ReporterStats {
        &self.stats
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Delivers what the outbox holds, oldest first, until one cannot be
    /// delivered now.
    pub fn drain(&mut self) -> std::io::Result<()> {
        for path in self.outbox.pending()? {
            if self.switch.stopped() {
                break;
            }
            let mut pending = self.outbox.load(&path)?;
            let outbox = &self.outbox;
            let mut save = |p: &PendingReport| {
                if let Err(e) = outbox.update(&path, p) {
                    tracing::error!(file = %path.display(), "cannot save report progress: {e}");
                }
            };
            match self.deliver.deliver(&mut pending, &mut save) {
                Ok(()) => {
                    outbox.complete(&path)?;
                    self.stats.delivered += 1;
                    tracing::info!(sink = %self.name, counts = pending.report.counts.len(), "report delivered");
                }
                Err(Stop::Rejected(reason)) => {
                    pending.last_error = Some(reason.clone());
                    let kept = outbox.reject(&path, &pending)?;
                    self.stats.rejected += 1;
                    tracing::error!(sink = %self.name, kept = %kept.display(), "the receiver refused the report as invalid ({reason}); kept for inspection, not retried");
                }
                Err(Stop::Deferred(reason)) => {
                    pending.last_error = Some(reason.clone());
                    outbox.update(&path, &pending)?;
                    self.stats.deferred += 1;
                    tracing::warn!(sink = %self.name, "report not delivered now ({reason}); kept for the next run");
                    break;
                }
            }
        }
        Ok(())
    }
}

impl<D: Deliver> Sink for ReportSink<D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Reports
    }

    fn send_events(&mut self, _events: &[Redacted]) -> std::io::Result<Refused> {
        Ok(Vec::new())
    }

    fn send_report(&mut self, report: &Report) -> std::io::Result<()> {
        if self.switch.stopped() {
            return Ok(());
        }
        self.outbox.push(&PendingReport::new(report.clone()))?;
        self.flush()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Err(e) = self.drain() {
            tracing::error!(sink = %self.name, "report delivery failed: {e}; the report stays in the outbox");
        }
        Ok(())
    }
}
