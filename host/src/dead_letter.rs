//! The dead-letter store: events that could not be processed or delivered,
//! with the reason, as JSONL in `<state_dir>/dead-letter.jsonl`. It holds the
//! event as received (un-redacted, so it can be replayed once the cause is
//! fixed), so the file is created owner-only (0600) and is never a sink.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Value, json};

use crate::jsonl::JsonlFile;

/// Where in the flow an event was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The input could not be parsed.
    Source,
    /// A redactor failed; the batch failed closed.
    Redact,
    /// A sink refused the event.
    Sink,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Redact => "redact",
            Stage::Sink => "sink",
        }
    }
}

/// Appends dead letters.
pub struct DeadLetters {
    file: JsonlFile,
    count: u64,
}

impl DeadLetters {
    /// Opens (creating) `<state_dir>/dead-letter.jsonl`.
    pub fn open(state_dir: &Path) -> std::io::Result<DeadLetters> {
        Ok(DeadLetters { file: JsonlFile::open_private(&state_dir.join("dead-letter.jsonl"))?, count: 0 })
    }

    /// The file written to.
    pub fn path(&self) -> &PathBuf {
        self.file.path()
    }

    /// How many records were written by this process.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records one event (`payload` is the parsed event or the raw line).
    pub fn record(
        &mut self,
        stage: Stage,
        component: &str,
        reason: &str,
        event_id: &str,
        payload: Value,
    ) -> std::io::Result<()> {
        let key = if payload.is_string() { "raw" } else { "event" };
        let mut record = json!({
            "ts": crate::event::format_time(Utc::now()),
            "stage": stage.as_str(),
            "component": component,
            "reason": reason,
            "eventId": event_id,
        });
        record[key] = payload;
        self.file.write_value(&record)?;
        self.count += 1;
        Ok(())
    }

    /// Flushes to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
