//! The egress guard: sinks accept only [`Redacted`] records, and only the
//! redaction stage (or the redacted log, which only the redaction stage
//! writes) can make one. Un-redacted data cannot reach a sink by mistake —
//! the type system refuses the code that would do it.

use crate::event::{Event, Record};

/// A record that has passed every configured redactor.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted(Record);

impl Redacted {
    /// Seals a record. Only the redaction stage, and the reader of the
    /// redacted log it writes, call this.
    pub(crate) fn seal(record: Record) -> Redacted {
        Redacted(record)
    }

    /// The event's id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The redacted event.
    pub fn event(&self) -> &Event {
        &self.0.event
    }

    /// The redacted record.
    pub fn record(&self) -> &Record {
        &self.0
    }

    /// Gives up the seal (e.g. to serialize).
    pub fn into_record(self) -> Record {
        self.0
    }
}

/// A JSON line that has passed every configured redactor, patched in place
/// ([`crate::transforms::redact::LineRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactedLine {
    id: String,
    text: String,
}

impl RedactedLine {
    /// Seals a line. Only the redaction stage, and the reader of the
    /// redacted log it writes, call this.
    pub(crate) fn seal(id: String, text: String) -> RedactedLine {
        RedactedLine { id, text }
    }

    /// The event's id (the line's own `id` field, or the one its source gave it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The redacted line (no newline).
    pub fn text(&self) -> &str {
        &self.text
    }
}
