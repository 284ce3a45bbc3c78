//! Findings as a hostile redactor could return them: arbitrary field
//! indexes, spans, rule ids and replacements against a batch packed from
//! fuzzed events. `validate` must refuse whatever is unsafe to apply, and
//! what it lets through must be in range, on character boundaries, disjoint
//! and free of the replaced text; `apply` must then change only events that
//! had findings. The same findings through a whole redaction chain must
//! leave every event either passed or rejected with an invalid-finding reason.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasmtel::config::UnknownFields;
use wasmtel::event::{Event, Record};
use wasmtel::runtime::GuestFailure;
use wasmtel::runtime::redactor::{Batch, Finding};
use wasmtel::transforms::redact::{FindingSource, Packed, RedactionChain, apply, field_text, pack, validate};

/// A finding as drawn from the input; `field` is taken modulo the batch's
/// field count plus one, so out-of-range indexes still occur.
#[derive(Debug, Clone, Arbitrary)]
struct RawFinding {
    field: u16,
    start: u16,
    end: u16,
    rule_id: String,
    replacement: String,
}

#[derive(Debug, Arbitrary)]
struct Input {
    events: Vec<String>,
    findings: Vec<RawFinding>,
}

fn findings_for(batch: &Batch, raw: &[RawFinding]) -> Vec<Finding> {
    let modulus = batch.fields.len() as u32 + 1;
    raw.iter()
        .map(|f| Finding {
            field: u32::from(f.field) % modulus,
            start: u32::from(f.start),
            end: u32::from(f.end),
            rule_id: f.rule_id.clone(),
            replacement: f.replacement.clone(),
        })
        .collect()
}

/// A redactor that returns the fuzzed findings for whatever batch it gets.
struct Hostile(Vec<RawFinding>);

impl FindingSource for Hostile {
    fn name(&self) -> &str {
        "hostile"
    }
    fn sha256(&self) -> &str {
        "fuzz"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        Ok(findings_for(batch, &self.0))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let events: Vec<Event> = input
        .events
        .iter()
        .filter_map(|line| Event::from_json_line(line, UnknownFields::Preserve, common::now()).ok())
        .collect();
    if events.is_empty() {
        return;
    }
    let records: Vec<Record> =
        events.into_iter().enumerate().map(|(i, event)| Record { id: format!("e{i}"), event }).collect();
    let mut packed = Packed::default();
    let n = pack(records.iter(), usize::MAX, &mut packed);
    assert_eq!(n, records.len(), "an unbounded pack left events out");
    let findings = findings_for(&packed.batch, &input.findings);
    if let Ok(grouped) = validate(&packed.batch, findings) {
        for (field, spans) in &grouped {
            let text = field_text(&packed.batch, *field as usize);
            let mut end = 0;
            for f in spans {
                assert!(f.start < f.end, "validate let an empty span through");
                assert!(f.start >= end, "validate let overlapping spans through");
                end = f.end;
                let span =
                    text.get(f.start as usize..f.end as usize).expect("validate let a span off the text through");
                // Spans of 4 bytes and more: a shorter one (`a`) may well
                // occur in a placeholder (`<EMAIL>`) without undoing anything.
                if span.len() >= 4 {
                    assert!(!f.replacement.contains(span), "validate let a replacement keep the replaced text");
                }
            }
        }
        let refs: Vec<&Record> = records.iter().collect();
        let (changed, _changes) = apply(&refs, &packed, &grouped);
        for (index, _) in &changed {
            let has = grouped.keys().any(|f| packed.batch.fields[*f as usize].event as usize == *index);
            assert!(has, "apply changed event {index}, which had no findings");
        }
    }
    let n = records.len();
    let hostile: Arc<dyn FindingSource> = Arc::new(Hostile(input.findings));
    let outcome = RedactionChain::new(vec![hostile]).redact(records, &mut Packed::default());
    assert_eq!(outcome.passed.len() + outcome.rejected.len(), n, "an event was lost");
    for rejected in &outcome.rejected {
        assert!(
            matches!(rejected.failure, GuestFailure::InvalidFinding(_)),
            "unexpected failure: {}",
            rejected.failure
        );
    }
});
