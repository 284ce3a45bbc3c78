//! The redaction stage: records → packed batches → each redactor in turn →
//! validated findings applied → [`Redacted`] records plus audit records.
//!
//! Failures are isolated to the events that cause them. When a redactor
//! fails on a batch (trap, deadline, memory cap, plugin error, an invalid
//! finding), the batch is split in halves and each half is tried again,
//! until the failing events stand alone: only they are rejected (for the
//! dead-letter store, as received), every other event goes on. Batches are
//! also cut by bytes before a call (`max_bytes`), so one large event never
//! drags a whole batch past a guest's memory cap.
//!
//! Audit paths are rendered once the whole chain has run, from the events it
//! produced, so no key any redactor removed appears in an audit record.

mod apply;
mod guest_log;
mod native;
mod pack;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

pub use apply::{FieldChange, apply, field_text, validate};
pub use native::NativeRedactor;
pub use pack::{Packed, TOP_STEPS, pack, render_paths, short_path};

use crate::audit::AuditRecord;
use crate::config::DEFAULT_BATCH_SIZE;
use crate::event::{Event, Record};
use crate::guard::Redacted;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, FieldPart, Finding, RedactorModule};
use crate::runtime::state::GuestLine;

/// Default most bytes of packed text per guest call.
pub const DEFAULT_BATCH_BYTES: usize = 4 << 20;

/// Anything that turns a packed batch into findings: a WASM module, or the
/// same rules compiled natively (the benchmark baseline).
pub trait FindingSource: Send + Sync {
    /// Name for audit records.
    fn name(&self) -> &str;
    /// SHA-256 of the code, for audit records.
    fn sha256(&self) -> &str;
    /// Key id of the code's verified signer, for audit records (default:
    /// `None`, unsigned).
    fn signer(&self) -> Option<&str> {
        None
    }
    /// Scans a batch.
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure>;
    /// Log lines the redactor wrote and the host held back (default none).
    fn take_log_lines(&self) -> Vec<GuestLine> {
        Vec::new()
    }
}

impl FindingSource for RedactorModule {
    fn name(&self) -> &str {
        &self.source().name
    }
    fn sha256(&self) -> &str {
        &self.source().sha256
    }
    fn signer(&self) -> Option<&str> {
        self.source().signer()
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        self.redact(batch)
    }
    fn take_log_lines(&self) -> Vec<GuestLine> {
        RedactorModule::take_log_lines(self)
    }
}

/// An event a redactor failed on, alone: it goes to the dead-letter store.
#[derive(Debug)]
pub struct Rejected {
    /// The record as it came in.
    pub record: Record,
    /// The redactor that failed.
    pub module: String,
    /// Why.
    pub failure: GuestFailure,
}

/// What redacting a set of records produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The records that passed every redactor, in input order.
    pub passed: Vec<Redacted>,
    /// For each passed record, its index in the input.
    pub passed_index: Vec<usize>,
    /// The records a redactor failed on, each tried alone.
    pub rejected: Vec<Rejected>,
    /// One record per redacted field and rule, for passed records only.
    pub audit: Vec<AuditRecord>,
    /// Spans replaced in passed records, per rule id.
    pub findings_per_rule: BTreeMap<String, u64>,
    /// Failed guest calls: module and failure kind (one per call, including
    /// the calls made while narrowing a failure down).
    pub failed_calls: Vec<(String, &'static str)>,
}

/// A redactor in a chain, with its batch bounds.
#[derive(Clone)]
pub struct ChainLink {
    /// The redactor.
    pub source: Arc<dyn FindingSource>,
    /// Most events per call (default 256).
    pub max_events: usize,
    /// Most bytes of packed text per call (default 4 MiB); a single larger
    /// event is still sent, alone.
    pub max_bytes: usize,
}

impl ChainLink {
    /// A link with the default bounds.
    pub fn new(source: Arc<dyn FindingSource>) -> ChainLink {
        ChainLink { source, max_events: DEFAULT_BATCH_SIZE, max_bytes: DEFAULT_BATCH_BYTES }
    }
}

/// Redactors applied in order.
#[derive(Clone)]
pub struct RedactionChain {
    links: Vec<ChainLink>,
}

/// A change made by redactor `module` (an index into the chain).
struct Change {
    module: usize,
    field: FieldChange,
}

impl RedactionChain {
    /// A chain of the given redactors with default bounds.
    pub fn new(redactors: Vec<Arc<dyn FindingSource>>) -> RedactionChain {
        RedactionChain { links: redactors.into_iter().map(ChainLink::new).collect() }
    }

    /// A chain of redactors with their own bounds.
    pub fn with_links(links: Vec<ChainLink>) -> RedactionChain {
        RedactionChain { links }
    }

    /// True when no redactor is configured.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Runs `records` through every redactor, then writes the log lines the
    /// redactors wrote meanwhile, redacted by the same chain
    /// ([`guest_log`]). `scratch` is reused between calls.
    pub fn redact(&self, records: Vec<Record>, scratch: &mut Packed) -> Outcome {
        let outcome = self.redact_records(records, scratch);
        guest_log::write_redacted(self, scratch);
        outcome
    }

    /// The links, in order.
    fn links(&self) -> &[ChainLink] {
        &self.links
    }

    fn redact_records(&self, records: Vec<Record>, scratch: &mut Packed) -> Outcome {
        let n = records.len();
        // Copy on write: `changed[i]` exists once a redactor changed event i;
        // `records` stay as received for the dead-letter store.
        let mut changed: Vec<Option<Event>> = vec![None; n];
        let mut failed: Vec<Option<(usize, GuestFailure)>> = (0..n).map(|_| None).collect();
        let mut changes: Vec<Change> = Vec::new();
        let mut outcome = Outcome::default();
        for (k, link) in self.links.iter().enumerate() {
            let alive: Vec<usize> = (0..n).filter(|i| failed[*i].is_none()).collect();
            let mut stack: Vec<Vec<usize>> =
                alive.chunks(link.max_events.max(1)).rev().map(<[usize]>::to_vec).collect();
            while let Some(mut group) = stack.pop() {
                let current = |i: &usize| changed[*i].as_ref().unwrap_or(&records[*i].event);
                let packed = pack(group.iter().map(current), link.max_bytes, scratch);
                if packed < group.len() {
                    stack.push(group.split_off(packed));
                }
                let result = link.source.find(&scratch.batch).and_then(|f| validate(&scratch.batch, f));
                match result {
                    Ok(findings) if findings.is_empty() => {}
                    Ok(findings) => {
                        let events: Vec<&Event> = group.iter().map(current).collect();
                        let (new, fields) = apply(&events, scratch, &findings);
                        for (j, event) in new {
                            changed[group[j]] = Some(event);
                        }
                        for mut field in fields {
                            field.event = group[field.event];
                            changes.push(Change { module: k, field });
                        }
                    }
                    Err(failure) => {
                        outcome.failed_calls.push((link.source.name().to_string(), failure.kind()));
                        if group.len() == 1 {
                            failed[group[0]] = Some((k, failure));
                        } else {
                            let right = group.split_off(group.len() / 2);
                            stack.push(right);
                            stack.push(group);
                        }
                    }
                }
            }
        }
        self.finish(records, changed, failed, changes, outcome)
    }

    /// Seals the passed records, renders their audit records and collects
    /// the rejected ones.
    fn finish(
        &self,
        records: Vec<Record>,
        changed: Vec<Option<Event>>,
        failed: Vec<Option<(usize, GuestFailure)>>,
        mut changes: Vec<Change>,
        mut outcome: Outcome,
    ) -> Outcome {
        changes.retain(|c| failed[c.field.event].is_none());
        changes.sort_by_key(|c| (c.field.event, c.field.ordinal));
        let now = Utc::now();
        let mut at = 0;
        for (i, (record, (event, failure))) in records.into_iter().zip(changed.into_iter().zip(failed)).enumerate() {
            if let Some((k, failure)) = failure {
                let module = self.links[k].source.name().to_string();
                outcome.rejected.push(Rejected { record, module, failure });
                continue;
            }
            let record = Record { id: record.id, event: event.unwrap_or(record.event) };
            let start = at;
            while at < changes.len() && changes[at].field.event == i {
                at += 1;
            }
            let mine = &changes[start..at];
            if !mine.is_empty() {
                let ordinals: Vec<u32> = mine.iter().map(|c| c.field.ordinal).collect();
                let paths = render_paths(&record.event, &ordinals);
                for (change, path) in mine.iter().zip(paths) {
                    let source = &self.links[change.module].source;
                    for (rule, count) in &change.field.rules {
                        *outcome.findings_per_rule.entry(rule.clone()).or_default() += u64::from(*count);
                        outcome.audit.push(AuditRecord {
                            ts: now,
                            event_id: record.id.clone(),
                            module: source.name().to_string(),
                            module_sha256: source.sha256().to_string(),
                            signer: source.signer().map(str::to_string),
                            rule_id: rule.clone(),
                            field_path: path.clone(),
                            part: match change.field.part {
                                FieldPart::Key => "key",
                                FieldPart::Value => "value",
                            },
                            action: "replaced",
                            count: *count,
                        });
                    }
                }
            }
            outcome.passed.push(Redacted::seal(record));
            outcome.passed_index.push(i);
        }
        outcome
    }
}

#[cfg(test)]
mod tests;
