//! Packing events into a redactor [`Batch`]: every scannable text (string
//! fields, metadata keys, metadata string and number values) is copied into
//! one buffer, with a field table pointing into it.
//!
//! The traversal order defined by [`visit_event`] is shared with `apply`, so
//! field *n* of the batch is the *n*-th text the visitor meets.

use serde_json::{Map, Value};

use crate::event::{Event, STRING_FIELDS};
use crate::runtime::redactor::{Batch, Field, FieldPart};

/// Appends a path segment for object key `key` to `path`.
pub(super) fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if simple {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

/// Appends `[index]` to `path`.
pub(super) fn push_index(path: &mut String, index: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{index}]");
}

/// Packs `events` into `batch`, reusing its allocations.
pub fn pack<'a>(events: impl ExactSizeIterator<Item = &'a Event>, batch: &mut Batch) {
    batch.buffer.clear();
    batch.fields.clear();
    batch.event_count = events.len() as u32;
    let mut path = String::with_capacity(64);
    for (index, event) in events.enumerate() {
        let mut packer = Packer { batch, event: index as u32 };
        for ((name, _), value) in STRING_FIELDS.iter().zip(event.string_fields()) {
            if !value.is_empty() {
                packer.push(FieldPart::Value, name, value);
            }
        }
        path.clear();
        path.push_str("metadata");
        packer.map(&event.metadata, &mut path);
    }
}

struct Packer<'a> {
    batch: &'a mut Batch,
    event: u32,
}

impl Packer<'_> {
    fn push(&mut self, part: FieldPart, path: &str, text: &str) {
        let buffer = &mut self.batch.buffer;
        let path_start = buffer.len() as u32;
        buffer.extend_from_slice(path.as_bytes());
        let text_start = buffer.len() as u32;
        buffer.extend_from_slice(text.as_bytes());
        self.batch.fields.push(Field {
            event: self.event,
            part,
            path_start,
            path_len: path.len() as u32,
            text_start,
            text_len: text.len() as u32,
        });
    }

    fn map(&mut self, map: &Map<String, Value>, path: &mut String) {
        for (key, value) in map {
            self.push(FieldPart::Key, path, key);
            let len = path.len();
            push_key(path, key);
            self.value(value, path);
            path.truncate(len);
        }
    }

    fn value(&mut self, value: &Value, path: &mut String) {
        match value {
            Value::String(s) => {
                if !s.is_empty() {
                    self.push(FieldPart::Value, path, s)
                }
            }
            Value::Number(n) => self.push(FieldPart::Value, path, &n.to_string()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    push_index(path, i);
                    self.value(item, path);
                    path.truncate(len);
                }
            }
            Value::Object(map) => self.map(map, path),
            Value::Bool(_) | Value::Null => {}
        }
    }
}
