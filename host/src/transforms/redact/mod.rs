//! The redaction stage: events → packed batch → each redactor in turn →
//! validated findings applied → [`Redacted`] events plus audit records.
//!
//! A batch that any redactor fails on (trap, timeout, memory cap, plugin
//! error, invalid finding) fails **closed**: [`RedactionChain::redact`]
//! returns the untouched input for the dead-letter store and nothing for the
//! sinks.

mod apply;
mod native;
mod pack;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

pub use apply::{FieldChange, apply, validate};
pub use native::NativeRedactor;
pub use pack::pack;

use crate::audit::AuditRecord;
use crate::event::Event;
use crate::guard::Redacted;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, FieldPart, Finding, RedactorModule};

/// Anything that turns a packed batch into findings: a WASM module, or the
/// same rules compiled natively (the benchmark baseline).
pub trait FindingSource: Send + Sync {
    /// Name for audit records.
    fn name(&self) -> &str;
    /// SHA-256 of the code, for audit records.
    fn sha256(&self) -> &str;
    /// Scans a batch.
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure>;
}

impl FindingSource for RedactorModule {
    fn name(&self) -> &str {
        &self.source().name
    }
    fn sha256(&self) -> &str {
        &self.source().sha256
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        self.redact(batch)
    }
}

/// A batch that failed closed.
#[derive(Debug)]
pub struct Failed {
    /// The events as they came in (for the dead-letter store).
    pub events: Vec<Event>,
    /// The redactor that failed.
    pub module: String,
    /// Why.
    pub failure: GuestFailure,
}

/// A batch that passed every redactor.
#[derive(Debug, Default)]
pub struct Passed {
    /// The redacted events, in input order.
    pub events: Vec<Redacted>,
    /// One record per redacted field and rule.
    pub audit: Vec<AuditRecord>,
    /// Spans replaced, per rule id.
    pub findings_per_rule: BTreeMap<String, u64>,
}

/// Redactors applied in order.
pub struct RedactionChain {
    redactors: Vec<Arc<dyn FindingSource>>,
}

impl RedactionChain {
    /// A chain of the given redactors. Use [`RedactionChain::is_empty`] to
    /// refuse running without any.
    pub fn new(redactors: Vec<Arc<dyn FindingSource>>) -> RedactionChain {
        RedactionChain { redactors }
    }

    /// True when no redactor is configured.
    pub fn is_empty(&self) -> bool {
        self.redactors.is_empty()
    }

    /// Runs `events` (identified by `ids` in audit records) through every
    /// redactor. `batch` is scratch space reused between calls.
    pub fn redact(&self, events: Vec<Event>, ids: &[String], batch: &mut Batch) -> Result<Passed, Failed> {
        debug_assert_eq!(events.len(), ids.len());
        // Copy on write: only events with findings are cloned (into
        // `changed`); `events` stays as received for failing closed.
        let mut changed: Vec<Option<Event>> = vec![None; events.len()];
        let mut passed = Passed::default();
        let now = Utc::now();
        for redactor in &self.redactors {
            pack(events.iter().zip(&changed).map(|(original, c)| c.as_ref().unwrap_or(original)), batch);
            let outcome = redactor.find(batch).and_then(|findings| validate(batch, findings));
            let findings = match outcome {
                Ok(findings) => findings,
                Err(failure) => {
                    return Err(Failed { events, module: redactor.name().to_string(), failure });
                }
            };
            if findings.is_empty() {
                continue;
            }
            for change in apply(&events, &mut changed, batch, &findings) {
                for (rule, count) in change.rules {
                    *passed.findings_per_rule.entry(rule.clone()).or_default() += u64::from(count);
                    passed.audit.push(AuditRecord {
                        ts: now,
                        event_id: ids[change.event].clone(),
                        module: redactor.name().to_string(),
                        module_sha256: redactor.sha256().to_string(),
                        rule_id: rule,
                        field_path: change.path.clone(),
                        part: match change.part {
                            FieldPart::Key => "key",
                            FieldPart::Value => "value",
                        },
                        action: "replaced",
                        count,
                    });
                }
            }
        }
        passed.events =
            events.into_iter().zip(changed).map(|(original, c)| Redacted::seal(c.unwrap_or(original))).collect();
        Ok(passed)
    }
}

/// An empty batch to reuse.
pub fn new_batch() -> Batch {
    Batch { event_count: 0, buffer: Vec::with_capacity(1 << 16), fields: Vec::with_capacity(1024) }
}

#[cfg(test)]
mod tests;
