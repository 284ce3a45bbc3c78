//! The dead-letter store: events that could not be processed or delivered,
//! each with the stage, the component and the reason, in
//! `<state_dir>/dead-letter/` — a durable log like the others (segment
//! files 0600 in a 0700 folder, CRC-framed records, synced appends).
//!
//! It holds events as received (un-redacted when a redactor failed on them,
//! so they can be replayed once the cause is fixed), so it is private and
//! never a sink. It is bounded: past `max_bytes` the oldest segment is
//! removed and its records are counted as dropped (in `dropped`, and in the
//! log). Every record has a stable id (its sequence number) for `wasmtel dlq
//! show ID`; [`replay`] sends records through the full path again.

pub mod replay;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::DeadLetterConfig;
use crate::log::{Cursor, Log, LogError, LogOptions, peek};

/// Where in the flow an event was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The input could not be parsed or is over the event limits.
    Source,
    /// A log record could not be read back.
    Log,
    /// A redactor failed on the event (alone).
    Redact,
    /// A sink refused the event (or it was moved out of a full log).
    Sink,
}

impl Stage {
    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Log => "log",
            Stage::Redact => "redact",
            Stage::Sink => "sink",
        }
    }
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// When it was given up on.
    pub ts: DateTime<Utc>,
    /// Where.
    pub stage: Stage,
    /// Which source, redactor or sink.
    pub component: String,
    /// Why.
    pub reason: String,
    /// The event's id.
    pub event_id: String,
    /// The event's JSON form (with its id), when it is an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
    /// What was read, when it is not an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl DeadLetter {
    /// A dead letter for an event, stamped now.
    pub fn event(stage: Stage, component: &str, reason: &str, record: &crate::event::Record) -> DeadLetter {
        DeadLetter {
            ts: Utc::now(),
            stage,
            component: component.to_string(),
            reason: reason.to_string(),
            event_id: record.id.clone(),
            event: Some(record.to_json()),
            raw: None,
        }
    }

    /// A dead letter for an event that is still the JSON text it was read
    /// as (a JSONL line): kept as that JSON when it parses, else as text.
    pub fn line(stage: Stage, component: &str, reason: &str, id: &str, text: &str) -> DeadLetter {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(event) => DeadLetter {
                ts: Utc::now(),
                stage,
                component: component.to_string(),
                reason: reason.to_string(),
                event_id: id.to_string(),
                event: Some(event),
                raw: None,
            },
            Err(_) => DeadLetter::raw(stage, component, reason, id, text),
        }
    }

    /// A dead letter for input that is not an event, stamped now.
    pub fn raw(stage: Stage, component: &str, reason: &str, id: &str, raw: &str) -> DeadLetter {
        DeadLetter {
            ts: Utc::now(),
            stage,
            component: component.to_string(),
            reason: reason.to_string(),
            event_id: id.to_string(),
            event: None,
            raw: Some(raw.to_string()),
        }
    }
}

/// A failure of the dead-letter store.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The log under it failed.
    #[error("dead-letter store: {0}")]
    Log(#[from] LogError),
    /// A small bookkeeping file failed.
    #[error("dead-letter store: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The store's folder under a state folder.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("dead-letter")
}

/// The dead-letter store, open for appending (by the process holding the
/// state folder's lock).
pub struct DeadLetterStore {
    log: Log,
    /// Marks the oldest kept record; moving it removes segments (rotation).
    kept: Mutex<Cursor>,
    max_bytes: u64,
    chunk_bytes: usize,
    dropped_file: PathBuf,
}

impl DeadLetterStore {
    /// Opens (creating) the store in `<state_dir>/dead-letter`.
    pub fn open(state_dir: &Path, config: DeadLetterConfig) -> Result<DeadLetterStore, DeadLetterError> {
        let dir = dir(state_dir);
        let options = LogOptions {
            segment_bytes: config.segment_bytes,
            max_bytes: u64::MAX / 2,
            max_events: u64::MAX / 2,
            sync: true,
        };
        let (log, _) = Log::open(&dir, options)?;
        let kept = log.cursor("kept")?;
        Ok(DeadLetterStore {
            log,
            kept: Mutex::new(kept),
            max_bytes: config.max_bytes,
            chunk_bytes: (config.segment_bytes / 2).max(1) as usize,
            dropped_file: dir.join("dropped"),
        })
    }

    /// Appends dead letters (one synced write) and rotates if the store is
    /// over its size; returns their ids.
    pub fn record(&self, letters: &[DeadLetter]) -> Result<std::ops::Range<u64>, DeadLetterError> {
        if letters.is_empty() {
            let next = self.log.next_seq();
            return Ok(next..next);
        }
        let payloads: Vec<Vec<u8>> =
            letters.iter().map(|l| serde_json::to_vec(l).expect("a dead letter serializes")).collect();
        // Appends of at most half a segment, so rotation can drop the
        // oldest records even when one batch dead-letters a lot.
        let mut start = None;
        let mut end = 0;
        let mut chunk: Vec<&[u8]> = Vec::new();
        let mut bytes = 0;
        for (i, p) in payloads.iter().enumerate() {
            chunk.push(p);
            bytes += p.len();
            if bytes >= self.chunk_bytes || i + 1 == payloads.len() {
                let ids = self.log.append(&chunk)?;
                start.get_or_insert(ids.start);
                end = ids.end;
                chunk.clear();
                bytes = 0;
                self.rotate()?;
            }
        }
        // One line per call, not per event: a flood of bad input must not
        // flood the log too.
        let first = &letters[0];
        tracing::warn!(
            count = letters.len(),
            stage = first.stage.as_str(),
            component = %first.component,
            event_id = %first.event_id,
            "dead-lettered {} event(s), the first because: {}",
            letters.len(),
            first.reason
        );
        for l in letters {
            tracing::debug!(stage = l.stage.as_str(), component = %l.component, event_id = %l.event_id, "dead-lettered: {}", l.reason);
        }
        Ok(start.unwrap_or(end)..end)
    }

    /// Removes the oldest segments while the store is over `max_bytes`.
    fn rotate(&self) -> Result<(), DeadLetterError> {
        while self.log.disk_bytes() > self.max_bytes {
            let bases = self.log.segment_bases();
            let (Some(&first), Some(&second)) = (bases.first(), bases.get(1)) else { break };
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            kept.commit(second, 0)?;
            let dropped = dropped(&self.dropped_file) + (second - first);
            let io = |source| DeadLetterError::Io { context: "cannot count dropped records".into(), source };
            std::fs::write(&self.dropped_file, dropped.to_string()).map_err(io)?;
            tracing::warn!(
                records = second - first,
                total = dropped,
                "the dead-letter store is full: removed its oldest segment (see dead_letter.max_bytes)"
            );
        }
        Ok(())
    }
}

/// Records rotated out of the store so far.
pub fn dropped(file: &Path) -> u64 {
    std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// A stored dead letter and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Its id (sequence number in the store).
    pub id: u64,
    /// The record.
    pub letter: DeadLetter,
}

/// Reads the dead letters of a state folder without taking its lock (a
/// running process may be appending); calls `each` for every one, oldest
/// first. Unreadable records are skipped and counted in the return value.
pub fn read(state_dir: &Path, mut each: impl FnMut(Stored)) -> Result<u64, DeadLetterError> {
    let dir = dir(state_dir);
    let mut unreadable = 0;
    let kept = peek::summary(&dir)?.cursors.get("kept").map_or(0, |(p, _)| *p);
    peek::records(&dir, |id, payload| {
        if id >= kept {
            match serde_json::from_slice(payload) {
                Ok(letter) => each(Stored { id, letter }),
                Err(_) => unreadable += 1,
            }
        }
        true
    })?;
    Ok(unreadable)
}

/// Counts of a state folder's dead-letter store, for `wasmtel status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records kept.
    pub kept: u64,
    /// Bytes of its files.
    pub bytes: u64,
    /// Records rotated out so far.
    pub dropped: u64,
    /// Records already replayed.
    pub replayed: u64,
}

/// What a state folder's dead-letter store holds.
pub fn counts(state_dir: &Path) -> Result<Counts, DeadLetterError> {
    let dir = dir(state_dir);
    let summary = peek::summary(&dir)?;
    let first = summary.cursors.get("kept").map_or(summary.first_seq(), |(p, _)| *p).max(summary.first_seq());
    Ok(Counts {
        kept: summary.next_seq.saturating_sub(first),
        bytes: summary.bytes(),
        dropped: dropped(&dir.join("dropped")),
        replayed: replay::replayed(state_dir)?.len() as u64,
    })
}
