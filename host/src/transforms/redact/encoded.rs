//! Events from the raw log (`serve`, `dlq replay`) redacted without
//! building a tree: the log stores the string fields as they are and the
//! metadata as compact JSON text, so the text is scanned and patched like a
//! JSONL line ([`LineRecord`]) and the entry is written back with only the
//! redacted bytes changed.
//!
//! Ordinals: the six string fields are 0 to 5 (packed when not empty), the
//! metadata's tokens follow from 6, in the order of [`super::pack`]'s event
//! packing, so a redactor sees exactly what it would see for the parsed
//! [`Event`](crate::event::Event).

use super::apply::replace;
use super::line::LineRecord;
use super::{DocFields, Document, Packer};
use crate::event::STRING_FIELDS;
use crate::event::codec::RawEvent;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::FieldPart;

/// Ordinal of the metadata's first token.
const METADATA_BASE: u32 = STRING_FIELDS.len() as u32;

/// An event from the raw log on its way through the redaction chain.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRecord {
    /// Everything but the metadata (its `metadata` is empty until sealed).
    raw: RawEvent,
    metadata: LineRecord,
}

impl EncodedRecord {
    /// Takes a decoded entry; the reason if its metadata is not a JSON
    /// object.
    pub fn new(mut raw: RawEvent) -> Result<EncodedRecord, String> {
        let text = std::mem::take(&mut raw.metadata);
        match LineRecord::metadata(text, METADATA_BASE) {
            Some(metadata) => Ok(EncodedRecord { raw, metadata }),
            None => Err("the log record cannot be decoded: metadata is not a JSON object".into()),
        }
    }

    /// The entry as it came in (for the dead-letter store).
    pub fn into_raw(self) -> RawEvent {
        let (_, text) = self.metadata.into_parts();
        RawEvent { metadata: text, ..self.raw }
    }
}

impl Document for EncodedRecord {
    type Sealed = RawEvent;

    fn id(&self) -> &str {
        &self.raw.id
    }

    fn pack(&self, p: &mut Packer<'_>) {
        for (step, value) in self.raw.fields.iter().enumerate() {
            if !value.is_empty() {
                p.ordinal = step as u32;
                p.field(FieldPart::Value, step as u32, value);
            }
        }
        self.metadata.pack(p);
    }

    fn apply(&self, fields: &mut DocFields<'_>) -> Result<Self, GuestFailure> {
        let mut raw = self.raw.clone();
        for (ordinal, value) in raw.fields.iter_mut().enumerate() {
            if let Some(list) = fields.take(ordinal as u32) {
                *value = replace(value, list);
            }
        }
        Ok(EncodedRecord { raw, metadata: self.metadata.apply(fields)? })
    }

    fn render_paths(&self, wanted: &[u32]) -> Vec<String> {
        let split = wanted.partition_point(|w| *w < METADATA_BASE);
        let mut out: Vec<String> = wanted[..split].iter().map(|w| STRING_FIELDS[*w as usize].0.to_string()).collect();
        out.extend(self.metadata.render_paths(&wanted[split..]));
        out
    }

    fn seal(self) -> RawEvent {
        self.into_raw()
    }
}
