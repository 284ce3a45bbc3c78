//! Taking over a state folder written by an earlier wasmtel: events its
//! spool (`spool/events.jsonl`) had accepted and not yet processed move into
//! the raw log, and its `dead-letter.jsonl` records into the dead-letter
//! store; the old files are then renamed (`*.migrated`) so nothing is taken
//! twice and nothing acknowledged is lost across the upgrade.

use std::path::Path;

use chrono::Utc;

use crate::config::UnknownFields;
use crate::dead_letter::{DeadLetter, DeadLetterStore};
use crate::event::codec::{NO_ORIGIN, event_bytes};
use crate::event::{Event, Record, valid_id};
use crate::log::Log;

/// Migrates what an earlier version left in `state_dir`.
pub fn old_state(state_dir: &Path, raw: &Log, dead: &DeadLetterStore) -> anyhow::Result<()> {
    let spool = state_dir.join("spool");
    let events = spool.join("events.jsonl");
    if events.exists() {
        let text = std::fs::read_to_string(&events)?;
        let consumed: usize = std::fs::read_to_string(spool.join("consumed"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
            .min(text.len());
        let mut payloads = Vec::new();
        let mut letters = Vec::new();
        for (n, line) in text.get(consumed..).unwrap_or("").lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap_or(serde_json::Value::Null);
            let id = value["id"].as_str().filter(|id| valid_id(id)).map(str::to_string).unwrap_or(format!("spool:{n}"));
            match Event::from_json(value["event"].clone(), UnknownFields::Preserve, Utc::now()) {
                Ok(event) => payloads.push(event_bytes(&Record { id, event }, NO_ORIGIN)),
                Err(reason) => letters.push(DeadLetter::raw(
                    crate::dead_letter::Stage::Log,
                    "spool",
                    &format!("an event of the old spool cannot be read: {reason}"),
                    &id,
                    line,
                )),
            }
        }
        for chunk in payloads.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            raw.append(&refs)?;
        }
        dead.record(&letters)?;
        tracing::info!(events = payloads.len(), "moved the events of the old spool into the raw log");
        std::fs::rename(&spool, state_dir.join("spool.migrated"))?;
    }
    let old_dead = state_dir.join("dead-letter.jsonl");
    if old_dead.exists() {
        let text = std::fs::read_to_string(&old_dead)?;
        let letters: Vec<DeadLetter> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        dead.record(&letters)?;
        tracing::info!(records = letters.len(), "moved dead-letter.jsonl into the dead-letter store");
        std::fs::rename(&old_dead, state_dir.join("dead-letter.jsonl.migrated"))?;
    }
    Ok(())
}
