//! Checking and applying a guest's findings.
//!
//! Every finding is validated before anything changes: the field must exist,
//! the span must be non-empty, inside the text, on character boundaries and
//! not overlap another; rule ids must be short identifiers and replacements
//! short and free of the text they replace. One bad finding rejects the whole
//! batch (the caller fails it closed). Valid findings are applied by walking
//! each event in the same order as [`super::pack`], which also yields the
//! audit path of each field with keys already redacted.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::pack::{push_index, push_key};
use crate::event::{Event, STRING_FIELDS};
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, FieldPart, Finding};

/// Longest replacement accepted.
pub const MAX_REPLACEMENT: usize = 512;
/// Longest rule id accepted.
pub const MAX_RULE_ID: usize = 64;

/// One redacted field, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Index of the event in the batch.
    pub event: usize,
    /// The field path, rendered with redacted keys.
    pub path: String,
    /// Key or value.
    pub part: FieldPart,
    /// Rule id and how many spans it replaced in this field.
    pub rules: BTreeMap<String, u32>,
}

/// Validates findings against the batch; returns them grouped by field and
/// sorted by start, or the reason the batch must fail closed.
pub fn validate(batch: &Batch, mut findings: Vec<Finding>) -> Result<BTreeMap<u32, Vec<Finding>>, GuestFailure> {
    let bad = |msg: String| Err(GuestFailure::InvalidFinding(msg));
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
fn replace(text: &str, findings: &[Finding]) -> String {
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

/// Applies validated findings to the events packed into `batch`, returning
/// one [`FieldChange`] per changed field. Event `i` is `changed[i]` if an
/// earlier redactor changed it, else `originals[i]`; an event gets a copy in
/// `changed` only when it has findings (copy on write), so clean events are
/// never cloned and `originals` stays untouched for failing closed.
pub fn apply(
    originals: &[Event],
    changed: &mut [Option<Event>],
    batch: &Batch,
    findings: &BTreeMap<u32, Vec<Finding>>,
) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    // Field ranges per event: the fields of one event are contiguous.
    let mut next_field = 0usize;
    for index in 0..originals.len() {
        let first = next_field;
        while next_field < batch.fields.len() && batch.fields[next_field].event as usize == index {
            next_field += 1;
        }
        let has_findings = findings.range(first as u32..next_field as u32).next().is_some();
        if !has_findings {
            continue;
        }
        let event = changed[index].get_or_insert_with(|| originals[index].clone());
        let mut walker = Walker { findings, cursor: first as u32, event: index, changes: &mut changes };
        for ((name, _), value) in STRING_FIELDS.iter().zip(event.string_fields_mut()) {
            if !value.is_empty()
                && let Some(new) = walker.next_text(FieldPart::Value, name, value)
            {
                *value = new;
            }
        }
        let mut path = String::from("metadata");
        let metadata = std::mem::take(&mut event.metadata);
        event.metadata = walker.map(metadata, &mut path);
        debug_assert_eq!(walker.cursor as usize, next_field, "apply walked a different number of fields than pack");
    }
    changes
}

struct Walker<'a> {
    findings: &'a BTreeMap<u32, Vec<Finding>>,
    cursor: u32,
    event: usize,
    changes: &'a mut Vec<FieldChange>,
}

impl Walker<'_> {
    /// Consumes the next field; returns its new text if it had findings.
    fn next_text(&mut self, part: FieldPart, path: &str, text: &str) -> Option<String> {
        let index = self.cursor;
        self.cursor += 1;
        let list = self.findings.get(&index)?;
        let mut rules = BTreeMap::new();
        for f in list {
            *rules.entry(f.rule_id.clone()).or_insert(0) += 1;
        }
        self.changes.push(FieldChange { event: self.event, path: path.to_string(), part, rules });
        Some(replace(text, list))
    }

    fn map(&mut self, map: Map<String, Value>, path: &mut String) -> Map<String, Value> {
        let mut out = Map::with_capacity(map.len());
        for (key, mut value) in map {
            let key = match self.next_text(FieldPart::Key, path, &key) {
                Some(new) => unique_key(&out, new),
                None => unique_key(&out, key),
            };
            let len = path.len();
            push_key(path, &key);
            self.value(&mut value, path);
            path.truncate(len);
            out.insert(key, value);
        }
        out
    }

    fn value(&mut self, value: &mut Value, path: &mut String) {
        match value {
            Value::String(s) => {
                if !s.is_empty()
                    && let Some(new) = self.next_text(FieldPart::Value, path, s)
                {
                    *s = new;
                }
            }
            Value::Number(n) => {
                if let Some(new) = self.next_text(FieldPart::Value, path, &n.to_string()) {
                    *value = Value::String(new);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    push_index(path, i);
                    self.value(item, path);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                let taken = std::mem::take(map);
                *map = self.map(taken, path);
            }
            Value::Bool(_) | Value::Null => {}
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
