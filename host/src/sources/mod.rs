//! Where events come from. Every source hands the redaction stage batches
//! of [`Input`]s through the one [`Source`] trait, and learns through
//! [`Source::commit`] when a batch is durable further on (in the redacted
//! log and the dead-letter store), so it can move its own position:
//!
//! - [`log`]: the raw log, filled by the [`ingest`] service (`wasmtel
//!   serve`) and by `wasmtel dlq replay`;
//! - [`jsonl`]: a JSONL file (position kept in a checkpoint) or standard
//!   input;
//! - [`kafka`]: a Kafka topic in a consumer group (`wasmtel worker`;
//!   offsets committed only after the events are in the redacted log).
//!
//! Every source checks events against the configured
//! [`EventLimits`](crate::event::limits::EventLimits) before they go on, so
//! later stages only see events they can process.

pub mod ingest;
pub mod jsonl;
pub mod kafka;
pub mod log;

use std::time::Duration;

use crate::event::Record;

/// Marks an origin as a position of a direct source (a file offset), as
/// opposed to a raw log sequence number.
pub const DIRECT_ORIGIN: u64 = 1 << 63;

/// One thing a source read.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An event that passed the source's checks, and the source position
    /// just after it (see [`crate::event::codec::Entry::Event`]).
    Event {
        /// The event and its id.
        record: Record,
        /// Where the source stands after it.
        origin: u64,
    },
    /// An event still in its log encoding ([`crate::event::codec`]), decoded
    /// by the redaction stage's workers (off the reading thread).
    Encoded {
        /// The log record's bytes.
        payload: Vec<u8>,
        /// Where the source stands after it.
        origin: u64,
        /// An id for it if it cannot be decoded (e.g. `raw-log:17`).
        id: String,
    },
    /// A JSONL line, checked and redacted on its text by the redaction
    /// stage's workers (off the reading thread), see
    /// [`crate::transforms::redact::LineRecord`].
    Line {
        /// The line (without its newline).
        text: String,
        /// Its id unless the line has one (`<file>:<line>`).
        id: String,
        /// Where the source stands after it.
        origin: u64,
        /// How to parse it.
        rules: jsonl::LineRules,
    },
    /// Input that is not a usable event: dead-lettered with the reason.
    Malformed {
        /// An id for it (e.g. `events.jsonl:17`).
        id: String,
        /// Why it was not accepted.
        reason: String,
        /// What was read, as text.
        raw: String,
    },
}

/// Inputs read together, and the token that commits them.
#[derive(Debug)]
pub struct SourceBatch {
    /// The inputs, in source order.
    pub inputs: Vec<Input>,
    /// Passed to [`Source::commit`] once the batch is durable downstream.
    pub token: u64,
}

/// What [`Source::next_batch`] found.
#[derive(Debug)]
pub enum Poll {
    /// Some input.
    Batch(SourceBatch),
    /// Nothing right now; ask again.
    Idle,
    /// The input has ended (end of file or of standard input).
    End,
}

/// A source's failure (the redaction stage fails and is restarted).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The raw log failed.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// Anything else (e.g. the Kafka client).
    #[error("{0}")]
    Other(String),
}

/// Where the redaction stage reads from.
pub trait Source: Send {
    /// The source's name, for logs and dead-letter records.
    fn name(&self) -> &str;

    /// Up to `max` inputs, waiting at most `wait` for the first.
    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Poll, SourceError>;

    /// Everything up to and including the batch with `token` is durable
    /// downstream: the source may move its own position past it.
    fn commit(&mut self, token: u64) -> Result<(), SourceError>;

    /// On start: the redacted log already holds events up to `origin` from
    /// this source (written just before a crash, before the source's own
    /// position moved); skip them so they are not delivered twice.
    fn skip_to(&mut self, origin: u64) -> Result<(), SourceError>;

    /// Whether `origin` is one of this source's positions.
    fn owns(&self, origin: u64) -> bool;
}
