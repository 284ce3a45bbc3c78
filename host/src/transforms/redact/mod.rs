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
mod encoded;
mod guest_log;
pub mod line;
mod native;
mod pack;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

pub use apply::{DocFields, FieldChange, apply, field_text, validate};
pub use encoded::EncodedRecord;
pub use line::LineRecord;
pub use native::NativeRedactor;
pub use pack::{Packed, Packer, TOP_STEPS, pack, render_paths, short_path};

use crate::audit::AuditRecord;
use crate::config::DEFAULT_BATCH_SIZE;
use crate::event::Record;
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

/// What the chain redacts: a [`LineRecord`] (a JSON line patched in place,
/// so what has no findings keeps its exact text), an [`EncodedRecord`] (a
/// raw-log entry, its metadata text patched the same way), or a parsed
/// event [`Record`] (tools such as `test-module`, and guest log lines).
pub trait Document: Sized {
    /// What a document becomes once every redactor passed it.
    type Sealed;
    /// The event id, for audit records.
    fn id(&self) -> &str;
    /// Adds the document's texts to a batch, each at its ordinal.
    fn pack(&self, packer: &mut Packer<'_>);
    /// The document with the findings of its packed fields applied; an
    /// error fails the document closed (it is dead-lettered, never let out
    /// half redacted).
    fn apply(&self, fields: &mut DocFields<'_>) -> Result<Self, GuestFailure>;
    /// Audit paths of the nodes at `wanted` ordinals (ascending), as the
    /// event model names them (`userId`, `metadata.headers.authorization`).
    fn render_paths(&self, wanted: &[u32]) -> Vec<String>;
    /// Marks the document redacted.
    fn seal(self) -> Self::Sealed;
}

impl Document for Record {
    type Sealed = Redacted;
    fn id(&self) -> &str {
        &self.id
    }
    fn pack(&self, packer: &mut Packer<'_>) {
        packer.event(&self.event);
    }
    fn apply(&self, fields: &mut DocFields<'_>) -> Result<Self, GuestFailure> {
        Ok(Record { id: self.id.clone(), event: apply::apply_event(&self.event, fields) })
    }
    fn render_paths(&self, wanted: &[u32]) -> Vec<String> {
        render_paths(&self.event, wanted)
    }
    fn seal(self) -> Redacted {
        Redacted::seal(self)
    }
}

/// A document a redactor failed on, alone: it goes to the dead-letter store.
#[derive(Debug)]
pub struct Rejected<D = Record> {
    /// The document as it came in.
    pub record: D,
    /// The redactor that failed.
    pub module: String,
    /// Why.
    pub failure: GuestFailure,
}

/// What redacting a set of documents produced.
#[derive(Debug)]
pub struct Outcome<D: Document = Record> {
    /// The documents that passed every redactor, in input order.
    pub passed: Vec<D::Sealed>,
    /// For each passed document, its index in the input.
    pub passed_index: Vec<usize>,
    /// The documents a redactor failed on, each tried alone.
    pub rejected: Vec<Rejected<D>>,
    /// One record per redacted field and rule, for passed records only.
    pub audit: Vec<AuditRecord>,
    /// Spans replaced in passed records, per rule id.
    pub findings_per_rule: BTreeMap<String, u64>,
    /// Failed guest calls: module and failure kind (one per call, including
    /// the calls made while narrowing a failure down).
    pub failed_calls: Vec<(String, &'static str)>,
}

impl<D: Document> Default for Outcome<D> {
    fn default() -> Self {
        Outcome {
            passed: Vec::new(),
            passed_index: Vec::new(),
            rejected: Vec::new(),
            audit: Vec::new(),
            findings_per_rule: BTreeMap::new(),
            failed_calls: Vec::new(),
        }
    }
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

    /// Runs `docs` through every redactor, then writes the log lines the
    /// redactors wrote meanwhile, redacted by the same chain
    /// ([`guest_log`]). `scratch` is reused between calls.
    pub fn redact<D: Document>(&self, docs: Vec<D>, scratch: &mut Packed) -> Outcome<D> {
        let outcome = self.redact_records(docs, scratch);
        guest_log::write_redacted(self, scratch);
        outcome
    }

    /// The links, in order.
    fn links(&self) -> &[ChainLink] {
        &self.links
    }

    fn redact_records<D: Document>(&self, records: Vec<D>, scratch: &mut Packed) -> Outcome<D> {
        let n = records.len();
        // Copy on write: `changed[i]` exists once a redactor changed document
        // i; `records` stay as received for the dead-letter store.
        let mut changed: Vec<Option<D>> = (0..n).map(|_| None).collect();
        let mut failed: Vec<Option<(usize, GuestFailure)>> = (0..n).map(|_| None).collect();
        let mut changes: Vec<Change> = Vec::new();
        let mut outcome = Outcome::default();
        for (k, link) in self.links.iter().enumerate() {
            let alive: Vec<usize> = (0..n).filter(|i| failed[*i].is_none()).collect();
            let mut stack: Vec<Vec<usize>> =
                alive.chunks(link.max_events.max(1)).rev().map(<[usize]>::to_vec).collect();
            while let Some(mut group) = stack.pop() {
                let current = |i: &usize| changed[*i].as_ref().unwrap_or(&records[*i]);
                let packed = pack(group.iter().map(current), link.max_bytes, scratch);
                if packed < group.len() {
                    stack.push(group.split_off(packed));
                }
                let result = link.source.find(&scratch.batch).and_then(|f| validate(&scratch.batch, f));
                match result {
                    Ok(findings) if findings.is_empty() => {}
                    Ok(findings) => {
                        let events: Vec<&D> = group.iter().map(current).collect();
                        let (new, fields) = apply(&events, scratch, &findings);
                        for (j, applied) in new {
                            match applied {
                                Ok(doc) => changed[group[j]] = Some(doc),
                                Err(failure) => {
                                    outcome.failed_calls.push((link.source.name().to_string(), failure.kind()));
                                    failed[group[j]] = Some((k, failure));
                                }
                            }
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
    fn finish<D: Document>(
        &self,
        records: Vec<D>,
        changed: Vec<Option<D>>,
        failed: Vec<Option<(usize, GuestFailure)>>,
        mut changes: Vec<Change>,
        mut outcome: Outcome<D>,
    ) -> Outcome<D> {
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
            let record = event.unwrap_or(record);
            let start = at;
            while at < changes.len() && changes[at].field.event == i {
                at += 1;
            }
            let mine = &changes[start..at];
            if !mine.is_empty() {
                let ordinals: Vec<u32> = mine.iter().map(|c| c.field.ordinal).collect();
                let paths = record.render_paths(&ordinals);
                for (change, path) in mine.iter().zip(paths) {
                    let source = &self.links[change.module].source;
                    for (rule, count) in &change.field.rules {
                        *outcome.findings_per_rule.entry(rule.clone()).or_default() += u64::from(*count);
                        outcome.audit.push(AuditRecord {
                            ts: now,
                            event_id: record.id().to_string(),
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
            outcome.passed.push(record.seal());
            outcome.passed_index.push(i);
        }
        outcome
    }
}

#[cfg(test)]
mod tests;
