//! The shape-preserving path (`wasmtel redact`, JSONL sources): JSON lines
//! are checked on their tokens, redacted with the built-in rules and patched
//! in place. A line the fast check accepts must be an event the event model
//! accepts too (sinks read it back); the rules never produce a finding the
//! host refuses; every redacted line is still an acceptable event; a line
//! without findings comes out byte for byte.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use wasmtel::config::UnknownFields;
use wasmtel::event::Event;
use wasmtel::event::limits::EventLimits;
use wasmtel::transforms::redact::{FindingSource, LineRecord, NativeRedactor, Packed, RedactionChain};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = EventLimits::default();
    let model_accepts = |line: &str| {
        Event::from_json_line_with_id(line, UnknownFields::Preserve, common::now())
            .ok()
            .is_some_and(|(_, event)| limits.check(&event).is_ok())
    };
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Ok(record) = LineRecord::parse(line, format!("e{i}"), UnknownFields::Preserve, &limits) {
            assert!(model_accepts(line.trim()), "the line check accepted what the event model refuses: {line}");
            lines.push(record);
        }
    }
    if lines.is_empty() {
        return;
    }
    let inputs: Vec<String> = lines.iter().map(|l| l.text().to_string()).collect();
    let rules: Arc<dyn FindingSource> = Arc::new(NativeRedactor::new(pii_rules::RuleSet::all()));
    let outcome = RedactionChain::new(vec![rules]).redact(lines, &mut Packed::default());
    if let Some(rejected) = outcome.rejected.first() {
        panic!("the built-in rules produced a finding the host refused: {}", rejected.failure);
    }
    for (line, i) in outcome.passed.iter().zip(&outcome.passed_index) {
        let out = line.text();
        assert!(model_accepts(out), "a redacted line is no longer an acceptable event: {out}");
        assert!(LineRecord::parse(out, String::new(), UnknownFields::Preserve, &limits).is_ok());
        if !outcome.audit.iter().any(|a| a.event_id == line.id()) {
            assert_eq!(out, inputs[*i], "a line without findings changed");
        }
    }
});
