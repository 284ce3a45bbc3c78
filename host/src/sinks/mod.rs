//! Where redacted events and reports go. Every sink takes only
//! [`Redacted`](crate::guard::Redacted) events. Today: [`jsonl`] (a file, or
//! standard output).

pub mod jsonl;

use crate::config::{self, Stream};
use crate::guard::Redacted;
use crate::report::Report;

/// A delivery target.
pub trait Sink: Send {
    /// Name for logs and summaries.
    fn name(&self) -> &str;
    /// Whether it takes events, reports, or both.
    fn accepts(&self, stream: Stream) -> bool;
    /// Delivers events (in order).
    fn send_events(&mut self, events: &[Redacted]) -> std::io::Result<()>;
    /// Delivers one report.
    fn send_report(&mut self, report: &Report) -> std::io::Result<()>;
    /// Pushes anything buffered out.
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Builds the configured sinks.
pub fn build(configs: &[config::Sink]) -> std::io::Result<Vec<Box<dyn Sink>>> {
    configs
        .iter()
        .map(|c| -> std::io::Result<Box<dyn Sink>> {
            Ok(match c {
                config::Sink::Stdout { streams } => {
                    Box::new(jsonl::JsonlSink::stdout(streams.clone()))
                }
                config::Sink::Jsonl { path, streams } => {
                    Box::new(jsonl::JsonlSink::file(path, streams.clone())?)
                }
            })
        })
        .collect()
}
