//! Packing events into a redactor [`Batch`]: every scannable text (string
//! fields, metadata keys, metadata string and number values) is copied into
//! one buffer once, with a field table pointing into it and a table of path
//! steps (each naming its parent) so paths cost O(event bytes), however deep
//! or wide the event.
//!
//! [`visit`] defines the order of an event's nodes, shared with `apply` and
//! the audit path rendering: every top-level string field (empty or not),
//! then for every metadata entry its key and, depth first, its scalar values.
//! A node's position in that order (its *ordinal*) does not change when a
//! redactor rewrites texts, so a finding of the first redactor in a chain can
//! be located in the event the last one returns.

use serde_json::{Map, Value};

use super::Document;
use crate::event::{Event, STRING_FIELDS};
use crate::runtime::redactor::{Batch, Field, FieldPart, PathStep};

/// Names of the top-level path steps, in the order of [`STRING_FIELDS`] and
/// then `metadata`; the first seven entries of every batch's `paths`.
pub const TOP_STEPS: [&str; 7] = ["orgId", "userId", "deviceId", "sessionId", "eventType", "source", "metadata"];
/// Index of the `metadata` step.
pub const METADATA_STEP: u32 = 6;

/// A batch and what the host needs to apply its findings.
#[derive(Debug)]
pub struct Packed {
    /// The batch handed to the guest.
    pub batch: Batch,
    /// Per field: its ordinal within its event (see the module docs).
    pub ordinals: Vec<u32>,
}

impl Default for Packed {
    fn default() -> Self {
        Packed {
            batch: Batch {
                event_count: 0,
                buffer: Vec::with_capacity(1 << 16),
                paths: Vec::with_capacity(1024),
                fields: Vec::with_capacity(1024),
            },
            ordinals: Vec::with_capacity(1024),
        }
    }
}

/// Packs events into `packed` (reusing its allocations) until the buffer
/// would pass `max_bytes`; returns how many were packed — at least one
/// when `events` is not empty, since an event cannot be split.
pub fn pack<'a, D: Document + 'a>(docs: impl Iterator<Item = &'a D>, max_bytes: usize, packed: &mut Packed) -> usize {
    let batch = &mut packed.batch;
    batch.buffer.clear();
    batch.fields.clear();
    batch.paths.clear();
    packed.ordinals.clear();
    for name in TOP_STEPS {
        let start = batch.buffer.len() as u32;
        batch.buffer.extend_from_slice(name.as_bytes());
        batch.paths.push(PathStep { parent: None, name_start: start, name_len: name.len() as u32, index: None });
    }
    let mut count = 0u32;
    for doc in docs {
        let marks = (batch.buffer.len(), batch.fields.len(), batch.paths.len());
        let mut packer = Packer { batch: &mut *batch, ordinals: &mut packed.ordinals, event: count, ordinal: 0 };
        doc.pack(&mut packer);
        if count > 0 && batch.buffer.len() > max_bytes {
            batch.buffer.truncate(marks.0);
            batch.fields.truncate(marks.1);
            batch.paths.truncate(marks.2);
            packed.ordinals.truncate(marks.1);
            break;
        }
        count += 1;
        if batch.buffer.len() > max_bytes {
            break;
        }
    }
    batch.event_count = count;
    count as usize
}

/// Appends one document's fields and path steps to a batch.
pub struct Packer<'a> {
    batch: &'a mut Batch,
    ordinals: &'a mut Vec<u32>,
    event: u32,
    /// Ordinal of the next field added (see the module docs); a document
    /// that numbers its nodes itself sets it before each [`Packer::field`].
    pub ordinal: u32,
}

impl Packer<'_> {
    /// Packs an event in the order of the module docs.
    pub fn event(&mut self, event: &Event) {
        for (step, value) in event.string_fields().into_iter().enumerate() {
            if !value.is_empty() {
                self.field(FieldPart::Value, step as u32, value);
            }
            self.ordinal += 1;
        }
        self.map(&event.metadata, METADATA_STEP);
    }

    /// Adds a field at the current ordinal; returns where its text starts
    /// in the buffer.
    pub fn field(&mut self, part: FieldPart, path: u32, text: &str) -> u32 {
        let buffer = &mut self.batch.buffer;
        let text_start = buffer.len() as u32;
        buffer.extend_from_slice(text.as_bytes());
        self.batch.fields.push(Field { event: self.event, part, path, text_start, text_len: text.len() as u32 });
        self.ordinals.push(self.ordinal);
        text_start
    }

    /// Adds a path step under `parent` (named by `name_len` buffer bytes
    /// at `name_start`, or an array position); returns its index.
    pub fn step(&mut self, parent: u32, name_start: u32, name_len: u32, index: Option<u32>) -> u32 {
        self.batch.paths.push(PathStep { parent: Some(parent), name_start, name_len, index });
        (self.batch.paths.len() - 1) as u32
    }

    fn map(&mut self, map: &Map<String, Value>, step: u32) {
        for (key, value) in map {
            let key_start = self.field(FieldPart::Key, step, key);
            self.ordinal += 1;
            if !matches!(value, Value::Bool(_) | Value::Null) {
                let child = self.step(step, key_start, key.len() as u32, None);
                self.value(value, child);
            } else {
                self.ordinal += 1;
            }
        }
    }

    fn value(&mut self, value: &Value, step: u32) {
        match value {
            Value::String(s) => {
                if !s.is_empty() {
                    self.field(FieldPart::Value, step, s);
                }
                self.ordinal += 1;
            }
            Value::Number(n) => {
                self.field(FieldPart::Value, step, &n.to_string());
                self.ordinal += 1;
            }
            Value::Bool(_) | Value::Null => self.ordinal += 1,
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if matches!(item, Value::Bool(_) | Value::Null) {
                        self.ordinal += 1;
                    } else {
                        let child = self.step(step, 0, 0, Some(i as u32));
                        self.value(item, child);
                    }
                }
            }
            Value::Object(map) => self.map(map, step),
        }
    }
}

/// Appends a path segment for object key `key` to `path`.
pub(super) fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if simple {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).expect("a string always serializes"));
        path.push(']');
    }
}

/// Appends `[index]` to `path`.
pub(super) fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
}

/// Renders the paths of the nodes at `wanted` ordinals (sorted ascending)
/// of `event`: the field path of a value (`metadata.headers.authorization`,
/// `userId`), or for a key the path of the object holding it. Keys appear as
/// `event` has them, so rendering the event the whole chain produced puts
/// no key that any redactor removed into an audit record.
pub fn render_paths(event: &Event, wanted: &[u32]) -> Vec<String> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut renderer = Renderer { wanted, out: &mut out, ordinal: 0 };
    for (name, _) in STRING_FIELDS {
        renderer.node(name);
    }
    renderer.map(&event.metadata, &mut String::from("metadata"));
    out
}

struct Renderer<'a> {
    wanted: &'a [u32],
    out: &'a mut Vec<String>,
    ordinal: u32,
}

impl Renderer<'_> {
    fn done(&self) -> bool {
        self.out.len() == self.wanted.len()
    }

    fn node(&mut self, path: &str) {
        while self.wanted.get(self.out.len()) == Some(&self.ordinal) {
            self.out.push(path.to_string());
        }
        self.ordinal += 1;
    }

    fn map(&mut self, map: &Map<String, Value>, path: &mut String) {
        for (key, value) in map {
            if self.done() {
                return;
            }
            self.node(path);
            let len = path.len();
            push_key(path, key);
            self.value(value, path);
            path.truncate(len);
        }
    }

    fn value(&mut self, value: &Value, path: &mut String) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    push_index(path, i);
                    self.value(item, path);
                    path.truncate(len);
                }
            }
            Value::Object(map) => self.map(map, path),
            _ => self.node(path),
        }
    }
}

/// Writes into `out` the part of a field's path the PII rules use (as the
/// `redactor-pii` guest does): the nearest named step, array positions
/// skipped, under `metadata.` when the field is nested — e.g.
/// `metadata.authorization` or `userId`. O(depth), never the full path.
pub fn short_path(batch: &Batch, step: u32, out: &mut String) {
    out.clear();
    let Some(mut at) = batch.paths.get(step as usize) else { return };
    let nested = at.parent.is_some();
    for _ in 0..batch.paths.len() {
        match (at.name_len, at.parent) {
            (0, Some(parent)) => match batch.paths.get(parent as usize) {
                Some(p) => at = p,
                None => return,
            },
            _ => break,
        }
    }
    let name = batch.buffer.get(at.name_start as usize..(at.name_start + at.name_len) as usize).unwrap_or(&[]);
    if nested {
        out.push_str("metadata.");
    }
    out.push_str(std::str::from_utf8(name).unwrap_or(""));
}
