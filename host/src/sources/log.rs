//! The raw log as a source: events the ingest service accepted (and events
//! `wasmtel dlq replay` put back), read in order with the durable cursor
//! `redaction`. A record that cannot be read back (a corrupt region, or
//! bytes that do not decode) becomes [`Input::Malformed`] with the reason, so
//! it is dead-lettered, never skipped silently.

use std::sync::Arc;
use std::time::Duration;

use super::{DIRECT_ORIGIN, Input, Poll, Source, SourceBatch, SourceError};
use crate::event::codec::NO_ORIGIN;
use crate::log::{Cursor, Item, Log, Reader};

/// The cursor name the redaction stage reads the raw log with.
pub const CURSOR: &str = "redaction";

/// Most bytes read per batch (decoded, a batch takes several times this in
/// memory; the redaction stage holds a few batches at a time).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Reads the raw log.
pub struct LogSource {
    log: Arc<Log>,
    cursor: Cursor,
    reader: Reader,
    items: Vec<Item>,
    /// Position after each batch handed out and not yet committed.
    pending: Vec<(u64, u64)>,
    next_token: u64,
    /// End once everything there is has been read (when nothing appends
    /// to the log while the stage runs: every mode but `serve`).
    finite: bool,
}

impl LogSource {
    /// Reads `log` from where the `redaction` cursor stands; with `finite`,
    /// the source ends once it has read everything the log holds.
    pub fn new(log: Arc<Log>, finite: bool) -> Result<LogSource, SourceError> {
        let mut cursor = log.cursor(CURSOR)?;
        cursor.commit(cursor.position(), 0)?;
        let reader = log.reader(cursor.position());
        Ok(LogSource { log, cursor, reader, items: Vec::new(), pending: Vec::new(), next_token: 0, finite })
    }

    fn input(item: Item) -> Input {
        match item {
            Item::Record { seq, payload } => Input::Encoded { payload, origin: seq + 1, id: format!("raw-log:{seq}") },
            Item::Corrupt { segment, offset, len, reason, bytes } => Input::Malformed {
                id: format!("raw-log:{}:{offset}", segment.file_name().unwrap_or_default().to_string_lossy()),
                reason: format!("{len} unreadable bytes in the raw log: {reason}"),
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            },
        }
    }
}

impl Source for LogSource {
    fn name(&self) -> &str {
        "raw-log"
    }

    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Poll, SourceError> {
        self.items.clear();
        if self.reader.read(max, MAX_BATCH_BYTES, &mut self.items)? == 0 {
            if self.finite {
                return Ok(Poll::End);
            }
            self.log.wait_durable(self.reader.position(), wait);
            if self.reader.read(max, MAX_BATCH_BYTES, &mut self.items)? == 0 {
                return Ok(Poll::Idle);
            }
        }
        let inputs = self.items.drain(..).map(LogSource::input).collect();
        let token = self.next_token;
        self.next_token += 1;
        self.pending.push((token, self.reader.position()));
        Ok(Poll::Batch(SourceBatch { inputs, token }))
    }

    fn commit(&mut self, token: u64) -> Result<(), SourceError> {
        let Some(i) = self.pending.iter().position(|(t, _)| *t == token) else { return Ok(()) };
        let position = self.pending[i].1;
        self.pending.drain(..=i);
        self.cursor.commit(position, 0)?;
        Ok(())
    }

    fn skip_to(&mut self, origin: u64) -> Result<(), SourceError> {
        if origin > self.reader.position() {
            tracing::info!(
                from = self.reader.position(),
                to = origin,
                "the redacted log already holds these raw events; skipping them"
            );
            self.reader = self.log.reader(origin);
            self.cursor.commit(origin.min(self.log.next_seq()), 0)?;
        }
        Ok(())
    }

    fn owns(&self, origin: u64) -> bool {
        origin != NO_ORIGIN && origin & DIRECT_ORIGIN == 0
    }
}
