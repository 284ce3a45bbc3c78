//! Where redacted events and reports go. Every sink takes only
//! [`Redacted`](crate::guard::Redacted) events. Event sinks: [`jsonl`] (a
//! file, or standard output), [`kafka`], [`loki`]. Report sinks: [`zitadel`]
//! (gRPC TelemetryService reporter) and [`http_report`] (HTTP JSON reporter).

pub mod http_report;
pub mod jsonl;
pub mod kafka;
pub mod loki;
pub mod report_sink;
pub mod zitadel;

use std::path::Path;

use crate::config::{self, Stream};
use crate::guard::Redacted;
use crate::report::Report;

/// Events a sink refused: index into the batch and the reason.
pub type Refused = Vec<(usize, String)>;

/// A delivery target.
pub trait Sink: Send {
    /// Name for logs and summaries.
    fn name(&self) -> &str;
    /// Whether it takes events, reports, or both.
    fn accepts(&self, stream: Stream) -> bool;
    /// Delivers events (in order). `Err` means none were delivered; `Ok`
    /// lists the ones the destination refused (index into `events`, reason),
    /// which the caller dead-letters.
    fn send_events(&mut self, events: &[Redacted]) -> std::io::Result<Refused>;
    /// Delivers one report.
    fn send_report(&mut self, report: &Report) -> std::io::Result<()>;
    /// Pushes anything buffered out.
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Builds the configured sinks. When reporting is switched off
/// (`opt_out` says why) the report sinks are not built at all, so nothing
/// is transmitted, and the run says so once.
pub fn build(configs: &[config::Sink], state_dir: &Path, opt_out: Option<&str>) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let switch = crate::installation::ReportingSwitch::default();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut skipped = 0;
    for c in configs {
        match c {
            config::Sink::Stdout { streams } => sinks.push(Box::new(jsonl::JsonlSink::stdout(streams.clone()))),
            config::Sink::Jsonl { path, streams } => {
                sinks.push(Box::new(jsonl::JsonlSink::file(path, streams.clone())?))
            }
            config::Sink::Kafka(k) => sinks.push(Box::new(kafka::KafkaSink::new(k.clone())?)),
            config::Sink::Loki(l) => sinks.push(Box::new(loki::LokiSink::new(l.clone())?)),
            config::Sink::Zitadel(_) | config::Sink::HttpReport(_) if opt_out.is_some() => skipped += 1,
            config::Sink::Zitadel(z) => {
                sinks.push(Box::new(zitadel::ZitadelSink::new(z.clone(), state_dir, switch.clone())?))
            }
            config::Sink::HttpReport(h) => {
                sinks.push(Box::new(http_report::HttpReportSink::new(h.clone(), state_dir, switch.clone())?))
            }
        }
    }
    if let (Some(reason), true) = (opt_out, skipped > 0) {
        tracing::warn!("reporting is switched off ({reason}): {skipped} report sink(s) will transmit nothing");
    }
    Ok(sinks)
}
