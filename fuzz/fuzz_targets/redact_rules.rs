//! The redaction path with the built-in PII rules: JSON lines (hostile but
//! valid JSON is the interesting case) are parsed as events, packed, scanned
//! by the rules compiled natively, and the findings validated and applied.
//! The built-in rules must never produce a finding the host refuses, every
//! event must come out (passed or rejected, never lost), in order.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use wasmtel::config::UnknownFields;
use wasmtel::event::limits::EventLimits;
use wasmtel::event::{Event, Record};
use wasmtel::transforms::redact::{FindingSource, NativeRedactor, Packed, RedactionChain};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = EventLimits::default();
    let records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let event = Event::from_json_line(line, UnknownFields::Preserve, common::now()).ok()?;
            limits.check(&event).ok()?;
            Some(Record { id: format!("e{i}"), event })
        })
        .collect();
    if records.is_empty() {
        return;
    }
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let rules: Arc<dyn FindingSource> = Arc::new(NativeRedactor::new(pii_rules::RuleSet::all()));
    let outcome = RedactionChain::new(vec![rules]).redact(records, &mut Packed::default());
    if let Some(rejected) = outcome.rejected.first() {
        panic!("the built-in rules produced a finding the host refused: {}", rejected.failure);
    }
    let out: Vec<&str> = outcome.passed.iter().map(|r| r.id()).collect();
    assert_eq!(out, ids, "events were lost or reordered by redaction");
    for (i, redacted) in outcome.passed.iter().enumerate() {
        assert_eq!(outcome.passed_index[i], i);
        serde_json::from_str::<serde_json::Value>(&redacted.record().to_json_line())
            .expect("a redacted event serializes to JSON");
    }
    for audit in &outcome.audit {
        assert!(ids.contains(&audit.event_id), "an audit record names an unknown event");
        assert!(audit.count > 0, "an audit record counts no span");
    }
});
