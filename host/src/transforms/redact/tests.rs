//! Unit tests of packing, validation and application with in-process
//! finding sources (the WASM path is tested end to end in `tests/all`).

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::config::UnknownFields;
use crate::event::Event;

/// Replaces every occurrence of `word` in every field.
struct WordSource(&'static str);

impl FindingSource for WordSource {
    fn name(&self) -> &str {
        "word"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        let mut out = Vec::new();
        for i in 0..batch.fields.len() {
            let text = apply::field_text(batch, i);
            for (start, _) in text.match_indices(self.0) {
                out.push(finding(i as u32, start as u32, (start + self.0.len()) as u32, "<W>"));
            }
        }
        Ok(out)
    }
}

/// Returns a fixed list of findings.
struct Fixed(Vec<Finding>);

impl FindingSource for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, _: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        Ok(self.0.clone())
    }
}

fn finding(field: u32, start: u32, end: u32, replacement: &str) -> Finding {
    Finding { field, start, end, rule_id: "word".into(), replacement: replacement.into() }
}

fn event(json: serde_json::Value) -> Event {
    Event::from_json(json, UnknownFields::Reject, Utc::now()).unwrap()
}

fn records(events: Vec<Event>) -> Vec<Record> {
    events.into_iter().enumerate().map(|(i, event)| Record { id: format!("t:{i}"), event }).collect()
}

/// Runs one source; `Ok` when every event passed, else the rejected ones.
#[allow(clippy::result_large_err)]
fn run(source: impl FindingSource + 'static, events: Vec<Event>) -> Result<Outcome, Outcome> {
    let outcome = RedactionChain::new(vec![Arc::new(source)]).redact(records(events), &mut Packed::default());
    if outcome.rejected.is_empty() { Ok(outcome) } else { Err(outcome) }
}

#[test]
fn replaces_in_every_kind_of_field() {
    let e = event(json!({
        "orgId": "org-pii", "userId": "pii@example.com",
        "metadata": {"msg": "has pii inside", "list": ["pii", 5, {"deep": "pii"}], "pii": true, "n": 42}
    }));
    let passed = run(WordSource("pii"), vec![e]).unwrap();
    let out = passed.passed[0].event().to_json();
    assert_eq!(out["orgId"], "org-<W>");
    assert_eq!(out["userId"], "<W>@example.com");
    assert_eq!(out["metadata"]["msg"], "has <W> inside");
    assert_eq!(out["metadata"]["list"], json!(["<W>", 5, {"deep": "<W>"}]));
    assert_eq!(out["metadata"]["<W>"], true, "keys are redacted too");
    assert_eq!(out["metadata"]["n"], 42);
    assert!(!out.to_string().contains("pii"));
    assert_eq!(passed.findings_per_rule["word"], 6);
}

#[test]
fn numbers_with_findings_become_strings() {
    let e = event(json!({"metadata": {"card": 4111111111111111u64}}));
    let passed = run(WordSource("1111"), vec![e]).unwrap();
    assert_eq!(passed.passed[0].event().metadata["card"], "4<W><W><W>111");
}

#[test]
fn audit_paths_never_contain_redacted_keys() {
    let e = event(json!({"metadata": {"pii-key": {"inner": "pii value"}}}));
    let passed = run(WordSource("pii"), vec![e]).unwrap();
    let paths: Vec<_> = passed.audit.iter().map(|a| (a.field_path.as_str(), a.part)).collect();
    assert_eq!(paths, [("metadata", "key"), ("metadata[\"<W>-key\"].inner", "value")]);
    assert!(passed.audit.iter().all(|a| a.event_id == "t:0" && a.module == "word" && a.count == 1));
}

#[test]
fn colliding_redacted_keys_stay_distinct() {
    let e = event(json!({"metadata": {"a-pii": 1, "b-pii": 2, "<W>-pii": 3}}));
    let passed = run(WordSource("a-pii"), vec![e.clone()]).unwrap();
    assert_eq!(passed.passed[0].event().metadata.len(), 3);
    let e2 = event(json!({"metadata": {"x1": 1, "x2": 2}}));
    // Both keys become "<W>": the second is suffixed, no value is lost.
    let passed = run(WordSource("x"), vec![e2]).unwrap();
    let keys: Vec<_> = passed.passed[0].event().metadata.keys().cloned().collect();
    assert_eq!(keys, ["<W>1", "<W>2"]);
    let passed = run(
        Fixed(vec![finding(0, 0, 2, "K"), finding(2, 0, 2, "K")]),
        vec![event(json!({"metadata": {"x1": 1, "x2": 2}}))],
    )
    .unwrap();
    let keys: Vec<_> = passed.passed[0].event().metadata.keys().cloned().collect();
    assert_eq!(keys, ["K", "K#2"]);
}

#[test]
fn invalid_findings_fail_closed() {
    let events = vec![event(json!({"orgId": "añb", "userId": "pii"})), event(json!({"orgId": "x"}))];
    let cases = [
        (vec![finding(0, 0, 9, "<X>")], "outside"),
        (vec![finding(0, 0, 2, "<X>")], "splits"),
        (vec![finding(1, 0, 2, "<X>"), finding(1, 1, 3, "<X>")], "overlap"),
        (vec![finding(9, 0, 1, "<X>")], "out of range"),
        (vec![finding(0, 2, 1, "<X>")], "reversed"),
        (vec![finding(1, 0, 0, "<X>")], "empty"),
        (vec![Finding { field: 0, start: 0, end: 1, rule_id: "bad id!".into(), replacement: "x".into() }], "rule id"),
        (
            vec![Finding { field: 0, start: 0, end: 4, rule_id: "r".into(), replacement: "<añb>".into() }],
            "contains the text",
        ),
    ];
    for (findings, expected) in cases {
        let failed = run(Fixed(findings), events.clone()).unwrap_err();
        assert!(failed.passed.is_empty() || failed.passed.len() == 1);
        let first = failed.rejected.iter().find(|r| r.record.id == "t:0").expect("the first event is rejected");
        assert_eq!(first.record.event, events[0], "the input comes back untouched");
        assert_eq!(first.module, "fixed");
        let reason = first.failure.to_string();
        assert!(reason.contains(expected), "{reason} should mention {expected}");
    }
}

/// Fails any batch holding a field with `marker`; redacts `pii` otherwise.
struct FailsOn(&'static str, std::sync::atomic::AtomicUsize);

impl FindingSource for FailsOn {
    fn name(&self) -> &str {
        "fails-on"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if (0..batch.fields.len()).any(|i| apply::field_text(batch, i).contains(self.0)) {
            return Err(GuestFailure::Trap("marker".into()));
        }
        WordSource("pii").find(batch)
    }
}

#[test]
fn a_failing_event_is_isolated_from_its_batch() {
    let mut events: Vec<Event> = (0..200).map(|i| event(json!({"orgId": format!("o{i}"), "userId": "pii"}))).collect();
    for i in [3, 77, 150] {
        events[i].metadata.insert("bad".into(), json!("BOOM"));
    }
    let source = FailsOn("BOOM", Default::default());
    let chain = RedactionChain::with_links(vec![ChainLink { max_events: 256, ..ChainLink::new(Arc::new(source)) }]);
    let outcome = chain.redact(records(events), &mut Packed::default());
    let rejected: Vec<&str> = outcome.rejected.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(rejected, ["t:3", "t:77", "t:150"]);
    assert_eq!(outcome.passed.len(), 197);
    assert!(outcome.passed.iter().all(|p| p.event().user_id == "<W>"), "the rest is redacted");
    let ids: Vec<&str> = outcome.passed.iter().map(|p| p.id()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|id| id[2..].parse::<u32>().unwrap());
    assert_eq!(ids, sorted, "input order is kept");
    assert!(outcome.failed_calls.len() >= 3 && outcome.failed_calls.len() < 40, "{}", outcome.failed_calls.len());
    assert!(outcome.rejected.iter().all(|r| r.record.event.user_id == "pii"), "rejected events come back as received");
}

/// Records the largest batch buffer it was called with.
struct Measures(std::sync::Mutex<Vec<(u32, usize)>>);

impl FindingSource for Measures {
    fn name(&self) -> &str {
        "measures"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        self.0.lock().unwrap().push((batch.event_count, batch.buffer.len()));
        Ok(Vec::new())
    }
}

#[test]
fn batches_are_cut_by_bytes_and_packing_is_linear_in_event_size() {
    // One wide event: a 50 KB key holding 20,000 small members. Copying the
    // path per field would need a gigabyte; referenced steps need ~its size.
    let members: serde_json::Map<String, serde_json::Value> =
        (0..20_000).map(|i| (format!("m{i}"), json!(i))).collect();
    let wide = Record { id: "w".into(), event: event(json!({"metadata": {"k".repeat(50_000): members}})) };
    let mut packed = Packed::default();
    assert_eq!(pack(std::iter::once(&wide), usize::MAX, &mut packed), 1);
    assert!(packed.batch.buffer.len() < 400_000, "buffer {} bytes", packed.batch.buffer.len());
    assert!(packed.batch.paths.len() < 20_100);

    let source = Arc::new(Measures(Default::default()));
    let link = ChainLink { source: source.clone(), max_events: 1000, max_bytes: 10_000 };
    let small: Vec<Event> =
        (0..100).map(|i| event(json!({"metadata": {"text": format!("{i}{}", "x".repeat(500))}}))).collect();
    let outcome = RedactionChain::with_links(vec![link]).redact(records(small), &mut Packed::default());
    assert_eq!(outcome.passed.len(), 100);
    let calls = source.0.lock().unwrap();
    assert!(calls.len() >= 5, "{calls:?}");
    assert!(calls.iter().all(|(n, bytes)| *bytes <= 10_000 + 600 || *n == 1), "{calls:?}");
    assert_eq!(calls.iter().map(|(n, _)| *n).sum::<u32>(), 100);
}

#[test]
fn audit_paths_hold_no_key_a_later_redactor_removed() {
    // The first redactor redacts a value below a key only the second one
    // recognizes as PII: the first one's audit path must not show that key.
    let chain = RedactionChain::new(vec![Arc::new(WordSource("secret")), Arc::new(WordSource("jane"))]);
    let e = event(json!({"metadata": {"jane@example.com": {"note": "secret"}}}));
    let outcome = chain.redact(records(vec![e]), &mut Packed::default());
    assert_eq!(outcome.audit.len(), 2);
    for a in &outcome.audit {
        assert!(!a.field_path.contains("jane"), "{a:?}");
    }
    let first = outcome.audit.iter().find(|a| a.field_path.ends_with(".note")).expect("the value's record");
    assert_eq!(first.field_path, "metadata[\"<W>@example.com\"].note");
}

#[test]
fn events_without_findings_are_unchanged() {
    let e = event(json!({"orgId": "clean", "metadata": {"a": {"b": [1, 2]}}}));
    let passed = run(WordSource("zzz"), vec![e.clone()]).unwrap();
    assert_eq!(passed.passed[0].event(), &e);
    assert!(passed.audit.is_empty());
}

#[test]
fn chain_applies_redactors_in_order() {
    let chain = RedactionChain::new(vec![Arc::new(WordSource("ab")), Arc::new(WordSource("<W>c"))]);
    let passed = chain.redact(records(vec![event(json!({"orgId": "abc"}))]), &mut Packed::default());
    assert_eq!(passed.passed[0].event().org_id, "<W>");
    assert_eq!(passed.audit.len(), 2);
}
