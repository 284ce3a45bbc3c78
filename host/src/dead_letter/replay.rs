//! `wasmtel dlq replay`: sends dead-lettered events through the full path
//! again (raw log → redaction → every sink), e.g. after a redactor fix.
//!
//! Replay is idempotent: a dead letter is replayed at most once (its id goes
//! into `dead-letter/replayed`, synced, after its event is in the raw log),
//! and one replay sends each event id at most once even when the store holds
//! several dead letters for it. An event that fails again comes back as a
//! new dead letter, which a later replay can pick up. Input that still is
//! not a valid event (the raw text of a malformed line) is counted and left
//! alone.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::{DeadLetterError, Stage, Stored, dir, read};
use crate::config::UnknownFields;
use crate::event::codec::{NO_ORIGIN, event_bytes};
use crate::event::limits::EventLimits;
use crate::event::{Event, Record, valid_id};
use crate::log::Log;

/// Which dead letters to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those whose reason, stage or component contains this text.
    pub reason: Option<String>,
    /// Only those dead-lettered at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether `stored` is selected.
    pub fn matches(&self, stored: &Stored) -> bool {
        let l = &stored.letter;
        let reason_ok = self
            .reason
            .as_deref()
            .is_none_or(|r| l.reason.contains(r) || l.component.contains(r) || l.stage.as_str() == r);
        reason_ok && self.since.is_none_or(|t| l.ts >= t)
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events put back into the raw log.
    pub replayed: u64,
    /// Selected dead letters replayed before (skipped).
    pub already_replayed: u64,
    /// Selected dead letters whose event id this replay already sent.
    pub duplicate_ids: u64,
    /// Selected dead letters that still are not valid events (skipped).
    pub not_events: u64,
}

/// The ids of dead letters replayed so far.
pub fn replayed(state_dir: &Path) -> Result<BTreeSet<u64>, DeadLetterError> {
    let path = dir(state_dir).join("replayed");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(source) => Err(DeadLetterError::Io { context: format!("cannot read {}", path.display()), source }),
    }
}

/// The event a dead letter holds, checked as a source would.
fn event_of(stored: &Stored, limits: &EventLimits) -> Option<Record> {
    let l = &stored.letter;
    let text = match (&l.event, &l.raw) {
        (Some(event), _) => event.to_string(),
        (None, Some(raw)) => raw.clone(),
        (None, None) => return None,
    };
    let (id, event) = Event::from_json_line_with_id(&text, UnknownFields::Preserve, Utc::now()).ok()?;
    limits.check(&event).ok()?;
    let id = id.or_else(|| valid_id(&l.event_id).then(|| l.event_id.clone()))?;
    Some(Record { id, event })
}

/// Replays the selected dead letters of `state_dir` into `raw` (the state
/// folder's raw log, opened by the caller, who holds the folder's lock).
pub fn replay(
    state_dir: &Path,
    raw: &Log,
    filter: &Filter,
    limits: &EventLimits,
) -> Result<ReplayReport, DeadLetterError> {
    let done = replayed(state_dir)?;
    let mut report = ReplayReport::default();
    let mut ids = BTreeSet::new();
    let mut chosen: Vec<(u64, Record)> = Vec::new();
    read(state_dir, |stored| {
        if !filter.matches(&stored) {
            return;
        }
        if done.contains(&stored.id) {
            report.already_replayed += 1;
            return;
        }
        match event_of(&stored, limits) {
            None => report.not_events += 1,
            Some(record) if !ids.insert(record.id.clone()) => report.duplicate_ids += 1,
            Some(record) => chosen.push((stored.id, record)),
        }
        if stored.letter.stage == Stage::Sink {
            tracing::debug!(id = stored.id, "a sink-stage dead letter goes to every sink again");
        }
    })?;
    let path = dir(state_dir).join("replayed");
    let io = |source| DeadLetterError::Io { context: format!("cannot write {}", path.display()), source };
    let mut marks = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    for chunk in chosen.chunks(1000) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(|(_, r)| event_bytes(r, NO_ORIGIN)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        raw.append(&refs)?;
        let text: String = chunk.iter().map(|(id, _)| format!("{id}\n")).collect();
        marks.write_all(text.as_bytes()).and_then(|()| marks.sync_data()).map_err(io)?;
        report.replayed += chunk.len() as u64;
    }
    Ok(report)
}
