//! Guest log lines through the redaction chain. A redactor sees raw PII, so
//! the lines it writes through `log` are held back by the host
//! ([`crate::runtime::state::LogBudget`]) and written to the host's log only
//! after the whole chain has redacted them, each as the `message` of a
//! `guest_log` event. A line the chain fails on is withheld (its length is
//! logged instead): fail closed, as for events. Lines written while log
//! lines are being redacted wait for the next batch.

use serde_json::{Map, Value};

use super::RedactionChain;
use super::pack::Packed;
use crate::event::{Event, Record};
use crate::runtime::state::GuestLine;

/// Redacts and writes every held line of the chain's redactors.
pub(super) fn write_redacted(chain: &RedactionChain, scratch: &mut Packed) {
    let lines: Vec<GuestLine> = chain.links().iter().flat_map(|l| l.source.take_log_lines()).collect();
    if lines.is_empty() {
        return;
    }
    let records = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut metadata = Map::new();
            metadata.insert("message".into(), Value::String(line.message.clone()));
            let event = Event {
                org_id: String::new(),
                user_id: String::new(),
                device_id: String::new(),
                session_id: String::new(),
                event_type: "guest_log".into(),
                source: line.module.to_string(),
                created_at: chrono::Utc::now(),
                metadata,
            };
            Record { id: format!("log-{i}"), event }
        })
        .collect();
    let outcome = chain.redact_records(records, scratch);
    let mut redacted: Vec<Option<String>> = vec![None; lines.len()];
    for (passed, i) in outcome.passed.iter().zip(&outcome.passed_index) {
        redacted[*i] = passed.event().metadata.get("message").and_then(Value::as_str).map(str::to_string);
    }
    for (line, text) in lines.iter().zip(redacted) {
        let module = &*line.module;
        let Some(text) = text else {
            tracing::warn!(
                module,
                bytes = line.message.len(),
                "guest log line withheld: the redaction chain failed on it"
            );
            continue;
        };
        match line.level {
            tracing::Level::ERROR => tracing::error!(module, "{text}"),
            tracing::Level::WARN => tracing::warn!(module, "{text}"),
            tracing::Level::INFO => tracing::info!(module, "{text}"),
            _ => tracing::debug!(module, "{text}"),
        }
    }
}
