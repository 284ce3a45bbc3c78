//! Golden vectors for redactor modules: `wasmtel test-module` runs a module
//! over a JSONL file of `{"name", "input", "expect"}` cases through the same
//! redaction stage `run` uses, and reports each case that differs. A module
//! author tests a build in one command; a policy team pins what a module must
//! (and must not) redact.
//!
//! `input` is an event in its JSON form. `expect` lists top-level fields of
//! the redacted event that must equal the given values (fields not named are
//! not compared), or is the string `"fail-closed"` when the batch must be
//! refused.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use crate::config::UnknownFields;
use crate::event::{Event, Record};
use crate::transforms::redact::{FindingSource, Packed, RedactionChain};

/// One case that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The case's name (or its line number).
    pub name: String,
    /// What differed.
    pub detail: String,
}

/// The outcome of a vector file.
#[derive(Debug, Default)]
pub struct VectorReport {
    /// Cases run.
    pub total: usize,
    /// Cases that did not hold.
    pub failures: Vec<Mismatch>,
}

/// A vector file that cannot be run: which line and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VectorFileError(pub String);

/// Runs every case in `text` (JSONL) against `redactor`.
pub fn run(redactor: Arc<dyn FindingSource>, text: &str) -> Result<VectorReport, VectorFileError> {
    run_text(redactor, text).map_err(VectorFileError)
}

fn run_text(redactor: Arc<dyn FindingSource>, text: &str) -> Result<VectorReport, String> {
    let chain = RedactionChain::new(vec![redactor]);
    let mut batch = Packed::default();
    let mut report = VectorReport::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let case: Value = serde_json::from_str(line).map_err(|e| format!("line {}: not valid JSON: {e}", n + 1))?;
        let name = case["name"].as_str().map(String::from).unwrap_or_else(|| format!("line {}", n + 1));
        let input = Event::from_json(case["input"].clone(), UnknownFields::Preserve, Utc::now())
            .map_err(|e| format!("{name}: `input` is not an event: {e}"))?;
        let expect = &case["expect"];
        report.total += 1;
        let id = crate::event::id_part(&name, 100);
        let outcome = chain.redact(vec![Record { id, event: input }], &mut batch);
        let mut fail = |detail: String| report.failures.push(Mismatch { name: name.clone(), detail });
        let result = match outcome.rejected.into_iter().next() {
            Some(rejected) => Err(rejected),
            None => Ok(outcome.passed),
        };
        match (result, expect) {
            (Err(_), Value::String(s)) if s == "fail-closed" => {}
            (Err(failed), _) => fail(format!("the event failed closed: {}", failed.failure)),
            (Ok(_), Value::String(s)) if s == "fail-closed" => {
                fail("expected the event to fail closed, but it passed".into())
            }
            (Ok(passed), Value::Object(fields)) => {
                let got = passed[0].event().to_json();
                for (key, want) in fields {
                    if &got[key] != want {
                        fail(format!("`{key}`: expected {want}, got {}", got[key]));
                    }
                }
            }
            (Ok(_), other) => {
                return Err(format!("{name}: `expect` must be an object of fields or \"fail-closed\", found {other}"));
            }
        }
    }
    Ok(report)
}
