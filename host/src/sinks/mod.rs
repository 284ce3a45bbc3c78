//! Where redacted events and reports go.
//!
//! Event sinks ([`jsonl`]: a file or standard output, [`kafka`], [`loki`])
//! implement [`EventSink`]: they take batches of [`Item`]s — only
//! [`Redacted`] events, and reports for sinks that take them — read from the
//! redacted log by the topology's one delivery loop, which keeps each sink's
//! cursor, retries, and dead-letters what a sink refuses. Report sinks
//! ([`report`]: the ZITADEL gRPC reporter and the HTTP JSON reporter) drain
//! their own outbox on their own task, so a down receiver never delays events.

pub mod jsonl;
pub mod kafka;
pub mod loki;
pub mod report;

use std::future::Future;
use std::pin::Pin;

use crate::config::{self, Stream};
use crate::guard::{Redacted, RedactedLine};
use crate::report::Report;

/// A boxed future, as [`EventSink::send`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One thing delivered to an event sink.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // events are the common case; reports are boxed
pub enum Item {
    /// A redacted event.
    Event(Redacted),
    /// A redacted JSON line, as written (only for sinks that
    /// [take lines](EventSink::takes_lines); others get it as an event).
    Line(RedactedLine),
    /// A collector report (only for sinks whose `streams` include reports).
    Report(Box<Report>),
}

/// What a sink did with a batch: everything not listed was delivered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Items the destination refused for good (index into the batch, its
    /// reason): they go to the dead-letter store.
    pub refused: Vec<(usize, String)>,
    /// Items not delivered now because the destination is unavailable
    /// (index, reason): the delivery loop sends them again after a backoff,
    /// for as long as it takes.
    pub retry: Vec<(usize, String)>,
}

/// A fault of the sink itself, not of its destination (a file that cannot
/// be written, standard output closed): the sink's stage fails and the
/// supervisor restarts it from its cursor.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SinkError {
        let context = context.into();
        move |source| SinkError::Io { context, source }
    }
}

/// A delivery target for events (and, for JSONL sinks, reports).
pub trait EventSink: Send + Sync {
    /// The sink's name (its cursor's name, in logs and metrics).
    fn name(&self) -> &str;

    /// Whether it takes `stream`.
    fn accepts(&self, stream: Stream) -> bool;

    /// Whether it takes redacted JSON lines as written ([`Item::Line`]);
    /// a sink that does not gets each line read into an event (default).
    fn takes_lines(&self) -> bool {
        false
    }

    /// Delivers `items` in order. Items not listed in the result were
    /// delivered; `Err` is a fault of the sink itself.
    fn send<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<Sent, SinkError>>;

    /// Called once before the first batch with the value last saved beside
    /// the sink's cursor ([`EventSink::checkpoint`]); returns how many items
    /// after the cursor the destination already holds (a file written just
    /// before a crash), which are then not sent again. Default: none.
    fn resume(&mut self, _saved: u64) -> Result<u64, SinkError> {
        Ok(0)
    }

    /// A value saved beside the cursor after every batch (a file's length).
    fn checkpoint(&self) -> u64 {
        0
    }
}

/// The configured event sinks (report-only sinks are built by [`report`]).
pub fn build_event_sinks(configs: &[config::Sink]) -> Result<Vec<Box<dyn EventSink>>, SinkError> {
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    for c in configs {
        match c {
            config::Sink::Stdout { name, streams, shape, .. } => {
                sinks.push(Box::new(jsonl::JsonlSink::stdout(name, streams.clone(), *shape)))
            }
            config::Sink::Jsonl { name, path, streams, sync, shape, .. } => {
                sinks.push(Box::new(jsonl::JsonlSink::file(name, path, streams.clone(), *sync, *shape)?))
            }
            config::Sink::Kafka(k) => sinks.push(Box::new(kafka::KafkaSink::new(k.clone())?)),
            config::Sink::Loki(l) => sinks.push(Box::new(loki::LokiSink::new(l.clone())?)),
            config::Sink::Zitadel(_) | config::Sink::HttpReport(_) => {}
        }
    }
    Ok(sinks)
}
