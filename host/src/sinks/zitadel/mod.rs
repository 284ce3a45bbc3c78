//! The ZITADEL-compatible gRPC reporter: delivers collector reports to a
//! `zitadel.analytics.v2beta.TelemetryService` (ReportBaseInformation, then
//! ReportResourceCounts in bulk-size batches chained by report ID), with the
//! retry policy of `shared/spec/zitadel-telemetry.md`.
//!
//! Every report is first written to the sink's outbox ([`crate::queue`]);
//! delivery then drains the outbox oldest first. A report that cannot be
//! delivered now stays there for the next run; one the receiver refuses as
//! invalid moves to `rejected/`. Failures are logged and counted, never
//! returned to the host application. Honors the reporting opt-out.

mod client;
mod config;
mod deliver;

use std::path::Path;
use std::time::Duration;

pub use config::{DEFAULT_BULK_SIZE, DEFAULT_TIMEOUT_MS, ZitadelConfig};
pub use deliver::{Delivery, Stop, base_request, count_message};

use super::Sink;
use crate::config::Stream;
use crate::guard::Redacted;
use crate::installation::ReportingSwitch;
use crate::queue::{Outbox, PendingReport};
use crate::report::Report;

/// What the sink did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReporterStats {
    /// Reports fully delivered.
    pub delivered: u64,
    /// Reports left in the outbox for a later run.
    pub deferred: u64,
    /// Reports the receiver refused (moved to `rejected/`).
    pub rejected: u64,
}

/// The gRPC reporter sink.
pub struct ZitadelSink {
    config: ZitadelConfig,
    outbox: Outbox,
    system_id: String,
    client: Option<client::Client>,
    runtime: tokio::runtime::Runtime,
    switch: ReportingSwitch,
    stats: ReporterStats,
}

impl ZitadelSink {
    /// Opens the outbox and prepares a lazily connecting client.
    pub fn new(config: ZitadelConfig, state_dir: &Path, switch: ReportingSwitch) -> anyhow::Result<ZitadelSink> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let outbox = Outbox::open(state_dir, &config.name)?;
        let system_id = crate::installation::system_id(state_dir)?;
        Ok(ZitadelSink { config, outbox, system_id, client: None, runtime, switch, stats: ReporterStats::default() })
    }

    /// Counters.
    pub fn stats(&self) -> &ReporterStats {
        &self.stats
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Tries to deliver everything in the outbox, oldest first. Stops at the
    /// first report that cannot be delivered now (later ones would fail the
    /// same way), leaving it and the rest for the next run.
    pub fn drain(&mut self) -> anyhow::Result<()> {
        if self.switch.stopped() {
            return Ok(());
        }
        if self.client.is_none() {
            // The lazily connecting channel spawns its worker on this runtime.
            let _runtime = self.runtime.enter();
            self.client = Some(client::build(&self.config)?);
        }
        let client = self.client.as_ref().expect("client was just built");
        for path in self.outbox.pending()? {
            let mut pending = self.outbox.load(&path)?;
            let outbox = &self.outbox;
            let mut delivery = Delivery {
                client,
                policy: &self.config.retry,
                system_id: &self.system_id,
                bulk_size: self.config.bulk_size,
                timeout: Duration::from_millis(self.config.timeout_ms),
            };
            let result = self.runtime.block_on(delivery.run(&mut pending, |p| {
                if let Err(e) = outbox.update(&path, p) {
                    tracing::error!(file = %path.display(), "cannot save report progress: {e}");
                }
            }));
            match result {
                Ok(()) => {
                    outbox.complete(&path)?;
                    self.stats.delivered += 1;
                    tracing::info!(sink = %self.config.name, counts = pending.report.counts.len(), "report delivered");
                }
                Err(Stop::Rejected(status)) => {
                    pending.last_error =
                        Some(format!("{}: {}", crate::retry::code_name(status.code()), status.message()));
                    let kept = outbox.reject(&path, &pending)?;
                    self.stats.rejected += 1;
                    tracing::error!(sink = %self.config.name, kept = %kept.display(), "the receiver refused the report as invalid ({}); kept for inspection, not retried", status.message());
                }
                Err(Stop::Deferred(status)) => {
                    pending.last_error =
                        Some(format!("{}: {}", crate::retry::code_name(status.code()), status.message()));
                    outbox.update(&path, &pending)?;
                    self.stats.deferred += 1;
                    tracing::warn!(sink = %self.config.name, code = crate::retry::code_name(status.code()), "report not delivered now ({}); kept for the next run", status.message());
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Sink for ZitadelSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Reports
    }

    fn send_events(&mut self, _events: &[Redacted]) -> std::io::Result<crate::sinks::Refused> {
        Ok(Vec::new())
    }

    fn send_report(&mut self, report: &Report) -> std::io::Result<()> {
        self.outbox.push(&PendingReport::new(report.clone()))?;
        if let Err(e) = self.drain() {
            tracing::error!(sink = %self.config.name, "report delivery failed: {e:#}; the report stays in the outbox");
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Err(e) = self.drain() {
            tracing::error!(sink = %self.config.name, "report delivery failed: {e:#}");
        }
        Ok(())
    }
}
