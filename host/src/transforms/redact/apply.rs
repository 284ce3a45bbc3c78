//! Checking and applying a guest's findings.
//!
//! Every finding is validated before anything changes: the field must exist,
//! the span must be non-empty, inside the text, on character boundaries and
//! not overlap another; rule ids must be short identifiers and replacements
//! short and free of the text they replace. One bad finding fails the call
//! (the chain then narrows the failure down to the events causing it).
//! Valid findings are applied by walking each event in the same order as
//! [`super::pack`], matching fields by their ordinal.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Document;
use super::pack::Packed;
use crate::event::Event;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, FieldPart, Finding};

/// Longest replacement accepted.
pub const MAX_REPLACEMENT: usize = 512;
/// Longest rule id accepted.
pub const MAX_RULE_ID: usize = 64;

/// One redacted field, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Index of the event in the slice handed to [`apply`].
    pub event: usize,
    /// The node's ordinal in its event (see [`super::pack`]); the audit path
    /// is rendered from it once the whole chain has run.
    pub ordinal: u32,
    /// Key or value.
    pub part: FieldPart,
    /// Rule id and how many spans it replaced in this field.
    pub rules: BTreeMap<String, u32>,
}

/// Validates findings against the batch; returns them grouped by field and
/// sorted by start, or the reason the batch must fail closed.
pub fn validate(batch: &Batch, mut findings: Vec<Finding>) -> Result<BTreeMap<u32, Vec<Finding>>, GuestFailure> {
    let bad = |msg: String| Err(GuestFailure::InvalidFinding(msg));
    // Spans are non-empty and disjoint, so there cannot be more findings
    // than bytes of text: refuse a flood before sorting it.
    if findings.len() > batch.buffer.len() {
        return bad(format!(
            "{} findings for a batch of {} bytes: more findings than bytes of text",
            findings.len(),
            batch.buffer.len()
        ));
    }
    findings.sort_by_key(|f| (f.field, f.start));
    let mut grouped: BTreeMap<u32, Vec<Finding>> = BTreeMap::new();
    for f in findings {
        let Some(field) = batch.fields.get(f.field as usize) else {
            return bad(format!("field index {} is out of range (batch has {} fields)", f.field, batch.fields.len()));
        };
        let text = field_text(batch, f.field as usize);
        if f.start >= f.end {
            return bad(format!("empty or reversed span {}..{} in field {}", f.start, f.end, f.field));
        }
        if f.end > field.text_len {
            return bad(format!("span {}..{} is outside field {} ({} bytes)", f.start, f.end, f.field, field.text_len));
        }
        if !text.is_char_boundary(f.start as usize) || !text.is_char_boundary(f.end as usize) {
            return bad(format!("span {}..{} in field {} splits a UTF-8 character", f.start, f.end, f.field));
        }
        if f.rule_id.is_empty()
            || f.rule_id.len() > MAX_RULE_ID
            || !f.rule_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad(format!(
                "rule id {:?} is not 1-{MAX_RULE_ID} characters of [A-Za-z0-9._-]",
                truncate(&f.rule_id)
            ));
        }
        if f.replacement.len() > MAX_REPLACEMENT {
            return bad(format!("replacement of rule {} is longer than {MAX_REPLACEMENT} bytes", f.rule_id));
        }
        let original = &text[f.start as usize..f.end as usize];
        if original.len() >= 4 && f.replacement.contains(original) {
            return bad(format!("replacement of rule {} contains the text it replaces", f.rule_id));
        }
        let list = grouped.entry(f.field).or_default();
        if let Some(prev) = list.last()
            && prev.end > f.start
        {
            return bad(format!(
                "spans {}..{} and {}..{} overlap in field {}",
                prev.start, prev.end, f.start, f.end, f.field
            ));
        }
        list.push(f);
    }
    Ok(grouped)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The text of field `index`.
pub fn field_text(batch: &Batch, index: usize) -> &str {
    let f = &batch.fields[index];
    let bytes = &batch.buffer[f.text_start as usize..(f.text_start + f.text_len) as usize];
    // The host built the buffer from `&str`s, so each text is valid UTF-8.
    std::str::from_utf8(bytes).expect("packed field text is UTF-8")
}

/// `text` with the (sorted, validated) findings replaced.
pub(super) fn replace(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start as usize]);
        out.push_str(&f.replacement);
        at = f.end as usize;
    }
    out.push_str(&text[at..]);
    out
}

/// A changed document's index in the batch, and the document or why it
/// fails closed.
pub type Applied<D> = (usize, Result<D, GuestFailure>);

/// Applies validated findings to the documents packed into `packed` (the
/// batch's event `i` is `docs[i]`). Copy on write: only a document with
/// findings is changed and returned (with its index; or why it cannot be,
/// see [`Document::apply`]), so the inputs stay as they were for failing
/// closed. Also returns one [`FieldChange`] per
/// changed field.
pub fn apply<D: Document>(
    docs: &[&D],
    packed: &Packed,
    findings: &BTreeMap<u32, Vec<Finding>>,
) -> (Vec<Applied<D>>, Vec<FieldChange>) {
    let batch = &packed.batch;
    let mut changed = Vec::new();
    let mut changes = Vec::new();
    let mut next_field = 0usize;
    for (index, original) in docs.iter().enumerate() {
        // The fields of one event are contiguous.
        let first = next_field;
        while next_field < batch.fields.len() && batch.fields[next_field].event as usize == index {
            next_field += 1;
        }
        if findings.range(first as u32..next_field as u32).next().is_none() {
            continue;
        }
        let mut fields = DocFields {
            batch,
            findings,
            ordinals: &packed.ordinals[first..next_field],
            first: first as u32,
            cursor: 0,
            event: index,
            changes: &mut changes,
        };
        let doc = original.apply(&mut fields);
        debug_assert_eq!(fields.cursor, next_field - first, "apply met different fields than pack");
        changed.push((index, doc));
    }
    (changed, changes)
}

/// One document's packed fields and their findings, met in ordinal order
/// by [`Document::apply`].
pub struct DocFields<'a> {
    batch: &'a Batch,
    findings: &'a BTreeMap<u32, Vec<Finding>>,
    /// Ordinals of this document's packed fields, ascending.
    ordinals: &'a [u32],
    /// Batch index of this document's first field.
    first: u32,
    /// Next of this document's fields to meet.
    cursor: usize,
    event: usize,
    changes: &'a mut Vec<FieldChange>,
}

impl<'a> DocFields<'a> {
    /// The ordinals of the packed fields, ascending.
    pub fn ordinals(&self) -> &'a [u32] {
        self.ordinals
    }

    /// Meets the node at `ordinal` (nodes must be met in ascending order):
    /// its findings if it was packed and has any, recorded as a
    /// [`FieldChange`].
    pub fn take(&mut self, ordinal: u32) -> Option<&'a [Finding]> {
        while self.ordinals.get(self.cursor).is_some_and(|o| *o < ordinal) {
            self.cursor += 1;
        }
        if self.ordinals.get(self.cursor) != Some(&ordinal) {
            return None;
        }
        let index = self.first + self.cursor as u32;
        self.cursor += 1;
        let list = self.findings.get(&index)?;
        let mut rules = BTreeMap::new();
        for f in list {
            *rules.entry(f.rule_id.clone()).or_insert(0) += 1;
        }
        let part = self.batch.fields[index as usize].part;
        self.changes.push(FieldChange { event: self.event, ordinal, part, rules });
        Some(list)
    }

    /// Meets the node at `ordinal`; its new text if it has findings.
    fn next_text(&mut self, ordinal: u32, text: &str) -> Option<String> {
        self.take(ordinal).map(|list| replace(text, list))
    }
}

/// Applies an event's findings by walking it in the order of
/// [`super::pack`].
pub(super) fn apply_event(event: &Event, fields: &mut DocFields<'_>) -> Event {
    let mut event = event.clone();
    let mut walker = Walker { fields, ordinal: 0 };
    for value in event.string_fields_mut() {
        if let Some(new) = walker.next_text(value) {
            *value = new;
        }
    }
    let metadata = std::mem::take(&mut event.metadata);
    event.metadata = walker.map(metadata);
    event
}

struct Walker<'a, 'b> {
    fields: &'a mut DocFields<'b>,
    /// Ordinal of the next node.
    ordinal: u32,
}

impl Walker<'_, '_> {
    /// Visits the next node; returns its new text if it was packed and has
    /// findings.
    fn next_text(&mut self, text: &str) -> Option<String> {
        let ordinal = self.ordinal;
        self.ordinal += 1;
        self.fields.next_text(ordinal, text)
    }

    fn map(&mut self, map: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::with_capacity(map.len());
        for (key, mut value) in map {
            let key = match self.next_text(&key) {
                Some(new) => unique_key(&out, new),
                None => unique_key(&out, key),
            };
            self.value(&mut value);
            out.insert(key, value);
        }
        out
    }

    fn value(&mut self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(new) = self.next_text(s) {
                    *s = new;
                }
            }
            Value::Number(n) => {
                if let Some(new) = self.next_text(&n.to_string()) {
                    *value = Value::String(new);
                }
            }
            Value::Bool(_) | Value::Null => self.ordinal += 1,
            Value::Array(items) => items.iter_mut().for_each(|item| self.value(item)),
            Value::Object(map) => {
                let taken = std::mem::take(map);
                *map = self.map(taken);
            }
        }
    }
}

/// `key`, or `key#2`, `key#3`, ... if an earlier key of the object already has
/// that name (two e-mail keys both become `<EMAIL>`).
fn unique_key(map: &Map<String, Value>, key: String) -> String {
    if !map.contains_key(&key) {
        return key;
    }
    (2..).map(|n| format!("{key}#{n}")).find(|k| !map.contains_key(k)).expect("some suffix is free")
}
