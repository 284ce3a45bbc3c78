//! Report sinks: collector reports go to a sink's [`outbox`] first, then the
//! outbox is drained oldest first through a [`Deliver`] implementation
//! ([`zitadel`]: the gRPC TelemetryService reporter; [`http`]: the HTTP JSON
//! reporter). Each report sink runs on its own task ([`ReportSink::run`]),
//! apart from the event path: a receiver that is down or slow delays only
//! the reports, never an event, and a shutdown stops it at once (progress
//! is saved after every accepted step, so nothing is lost).
//!
//! A report that cannot be delivered now stays in the outbox and is tried
//! again later (and stops the drain: later ones would fail the same way);
//! one the receiver refuses as invalid moves to `rejected/`. Failures are
//! logged and counted, never returned to the host application. A shared
//! [`ReportingSwitch`] stops every report sink when a receiver asks.

pub mod http;
pub mod outbox;
pub mod zitadel;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use outbox::{Outbox, PendingReport};

use super::BoxFuture;
use crate::config;
use crate::installation::ReportingSwitch;
use crate::report::Report;

/// Why a delivery stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Refused as invalid: keep for inspection, do not retry.
    Rejected(String),
    /// Not delivered now: keep and try again later.
    Deferred(String),
}

/// Saves a report's progress after a step the receiver accepted.
pub type Save<'a> = &'a mut (dyn FnMut(&PendingReport) + Send);

/// One way to deliver a report (the protocol part of a report sink).
pub trait Deliver: Send {
    /// Delivers `pending`, calling `save` after every step the receiver
    /// accepted, so an interrupted delivery resumes there.
    fn deliver<'a>(&'a mut self, pending: &'a mut PendingReport, save: Save<'a>) -> BoxFuture<'a, Result<(), Stop>>;
}

/// What a report sink did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReporterStats {
    /// Reports fully delivered.
    pub delivered: u64,
    /// Times a report was left in the outbox for later.
    pub deferred: u64,
    /// Reports the receiver refused (moved to `rejected/`).
    pub rejected: u64,
}

/// How long a deferred report waits before the sink tries again, unless a
/// new report arrives first.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(60);

/// A report sink: an outbox drained through a [`Deliver`].
pub struct ReportSink {
    name: String,
    deliver: Box<dyn Deliver>,
    outbox: Outbox,
    switch: ReportingSwitch,
    stats: ReporterStats,
    wake: Arc<tokio::sync::Notify>,
}

/// Where collectors put reports for one report sink: its outbox, and a
/// nudge for its task. Cheap to clone.
#[derive(Clone)]
pub struct ReportInbox {
    name: String,
    outbox: Outbox,
    switch: ReportingSwitch,
    wake: Arc<tokio::sync::Notify>,
}

impl ReportInbox {
    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Puts a report into the outbox (durably) and wakes the sink's task;
    /// nothing when reporting was switched off.
    pub fn push(&self, report: &Report) -> std::io::Result<()> {
        if self.switch.stopped() {
            return Ok(());
        }
        self.outbox.push(&PendingReport::new(report.clone()))?;
        self.wake.notify_one();
        Ok(())
    }
}

impl ReportSink {
    /// A sink named `name` with its outbox under `state_dir`.
    pub fn open(
        name: &str,
        deliver: Box<dyn Deliver>,
        state_dir: &Path,
        switch: ReportingSwitch,
    ) -> std::io::Result<ReportSink> {
        Ok(ReportSink {
            name: name.to_string(),
            deliver,
            outbox: Outbox::open(state_dir, name)?,
            switch,
            stats: ReporterStats::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Where collectors put reports for this sink.
    pub fn inbox(&self) -> ReportInbox {
        ReportInbox {
            name: self.name.clone(),
            outbox: self.outbox.clone(),
            switch: self.switch.clone(),
            wake: Arc::clone(&self.wake),
        }
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters.
    pub fn stats(&self) -> &ReporterStats {
        &self.stats
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Puts a report into the outbox (durably); [`ReportSink::drain`]
    /// delivers it.
    pub fn push(&self, report: &Report) -> std::io::Result<()> {
        self.inbox().push(report)
    }

    /// Delivers what the outbox holds, oldest first, until one cannot be
    /// delivered now; returns whether the outbox is empty afterwards.
    pub async fn drain(&mut self) -> std::io::Result<bool> {
        for path in self.outbox.pending()? {
            if self.switch.stopped() {
                return Ok(true);
            }
            let mut pending = self.outbox.load(&path)?;
            let outbox = self.outbox.clone();
            let file = path.clone();
            let mut save = move |p: &PendingReport| {
                if let Err(e) = outbox.update(&file, p) {
                    tracing::error!(file = %file.display(), "cannot save report progress: {e}");
                }
            };
            match self.deliver.deliver(&mut pending, &mut save).await {
                Ok(()) => {
                    self.outbox.complete(&path)?;
                    self.stats.delivered += 1;
                    tracing::info!(sink = %self.name, counts = pending.report.counts.len(), "report delivered");
                }
                Err(Stop::Rejected(reason)) => {
                    pending.last_error = Some(reason.clone());
                    let kept = self.outbox.reject(&path, &pending)?;
                    self.stats.rejected += 1;
                    tracing::error!(sink = %self.name, kept = %kept.display(), "the receiver refused the report as invalid ({reason}); kept for inspection, not retried");
                }
                Err(Stop::Deferred(reason)) => {
                    pending.last_error = Some(reason.clone());
                    self.outbox.update(&path, &pending)?;
                    self.stats.deferred += 1;
                    tracing::warn!(sink = %self.name, "report not delivered now ({reason}); kept in the outbox for a later attempt");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The sink's task: drains the outbox at start, whenever a report
    /// arrives and every [`RETRY_INTERVAL`] while something is left, until
    /// `shutdown` completes — at once, even in the middle of a delivery.
    /// With `once`, it returns after the first drain.
    pub async fn run(mut self, once: bool, shutdown: impl Future<Output = ()>) -> ReporterStats {
        tokio::pin!(shutdown);
        let wake = Arc::clone(&self.wake);
        loop {
            let drained = tokio::select! {
                _ = &mut shutdown => break,
                result = self.drain() => result,
            };
            if once {
                break;
            }
            let wait = match drained {
                Ok(true) => Duration::from_secs(86_400),
                Ok(false) => RETRY_INTERVAL,
                Err(e) => {
                    tracing::error!(sink = %self.name, "cannot read the report outbox: {e}");
                    RETRY_INTERVAL
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.stats
    }
}

/// Builds the configured report sinks. When reporting is switched off
/// (`opt_out` says why) none is built, so nothing is transmitted, and the
/// run says so once.
pub fn build(configs: &[config::Sink], state_dir: &Path, opt_out: Option<&str>) -> anyhow::Result<Vec<ReportSink>> {
    let switch = ReportingSwitch::default();
    let mut sinks = Vec::new();
    let mut skipped = 0;
    for c in configs {
        match c {
            config::Sink::Zitadel(_) | config::Sink::HttpReport(_) if opt_out.is_some() => skipped += 1,
            config::Sink::Zitadel(z) => sinks.push(zitadel::sink(z.clone(), state_dir, switch.clone())?),
            config::Sink::HttpReport(h) => sinks.push(http::sink(h.clone(), state_dir, switch.clone())?),
            _ => {}
        }
    }
    if let (Some(reason), true) = (opt_out, skipped > 0) {
        tracing::warn!("reporting is switched off ({reason}): {skipped} report sink(s) will transmit nothing");
    }
    Ok(sinks)
}
