//! Unit tests of packing, validation and application with in-process
//! finding sources (the WASM path is tested end to end in `tests/all`).

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::config::UnknownFields;

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

fn run(source: impl FindingSource + 'static, events: Vec<Event>) -> Result<Passed, Failed> {
    let ids: Vec<String> = (0..events.len()).map(|i| format!("t:{i}")).collect();
    RedactionChain::new(vec![Arc::new(source)]).redact(events, &ids, &mut new_batch())
}

#[test]
fn replaces_in_every_kind_of_field() {
    let e = event(json!({
        "orgId": "org-pii", "userId": "pii@example.com",
        "metadata": {"msg": "has pii inside", "list": ["pii", 5, {"deep": "pii"}], "pii": true, "n": 42}
    }));
    let passed = run(WordSource("pii"), vec![e]).unwrap();
    let out = passed.events[0].event().to_json();
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
    assert_eq!(passed.events[0].event().metadata["card"], "4<W><W><W>111");
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
    assert_eq!(passed.events[0].event().metadata.len(), 3);
    let e2 = event(json!({"metadata": {"x1": 1, "x2": 2}}));
    // Both keys become "<W>": the second is suffixed, no value is lost.
    let passed = run(WordSource("x"), vec![e2]).unwrap();
    let keys: Vec<_> = passed.events[0].event().metadata.keys().cloned().collect();
    assert_eq!(keys, ["<W>1", "<W>2"]);
    let passed = run(
        Fixed(vec![finding(0, 0, 2, "K"), finding(2, 0, 2, "K")]),
        vec![event(json!({"metadata": {"x1": 1, "x2": 2}}))],
    )
    .unwrap();
    let keys: Vec<_> = passed.events[0].event().metadata.keys().cloned().collect();
    assert_eq!(keys, ["K", "K#2"]);
}

#[test]
fn invalid_findings_fail_the_batch_closed() {
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
        assert_eq!(failed.events, events, "the input comes back untouched");
        assert_eq!(failed.module, "fixed");
        let reason = failed.failure.to_string();
        assert!(reason.contains(expected), "{reason} should mention {expected}");
    }
}

#[test]
fn events_without_findings_are_unchanged() {
    let e = event(json!({"orgId": "clean", "metadata": {"a": {"b": [1, 2]}}}));
    let passed = run(WordSource("zzz"), vec![e.clone()]).unwrap();
    assert_eq!(passed.events[0].event(), &e);
    assert!(passed.audit.is_empty());
}

#[test]
fn chain_applies_redactors_in_order() {
    let chain = RedactionChain::new(vec![Arc::new(WordSource("ab")), Arc::new(WordSource("<W>c"))]);
    let passed = chain.redact(vec![event(json!({"orgId": "abc"}))], &["t:0".into()], &mut new_batch()).unwrap();
    assert_eq!(passed.events[0].event().org_id, "<W>");
    assert_eq!(passed.audit.len(), 2);
}
