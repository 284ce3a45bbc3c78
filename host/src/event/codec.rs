//! The binary form of what the durable logs hold: one entry per log record.
//!
//! ```text
//! kind     u8      1 = event, 2 = report
//! event:   origin  u64 LE   source position after this event (u64::MAX: none)
//!          id      varint length + UTF-8
//!          seconds i64 LE, nanos u32 LE   createdAt
//!          6 × (varint length + UTF-8)    orgId, userId, deviceId, sessionId, eventType, source
//!          metadata varint length + compact JSON text of the object
//! report:  the report as JSON
//! line:    origin  u64 LE, id varint length + UTF-8,
//!          seconds i64 LE, nanos u32 LE   when it was read (a missing createdAt)
//!          text    varint length + UTF-8   a redacted JSON line, as written
//! ```
//!
//! Decoding checks everything (UTF-8, lengths, the timestamp, the JSON
//! object) and reports what is wrong instead of panicking or skipping, so an
//! unreadable record can be dead-lettered with the reason.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Event, Record};
use crate::report::Report;

const KIND_EVENT: u8 = 1;
const KIND_REPORT: u8 = 2;
const KIND_LINE: u8 = 3;

/// "No source position" in [`Entry::Event`].
pub const NO_ORIGIN: u64 = u64::MAX;

/// One decoded log entry.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // events are the common case; reports are boxed
pub enum Entry {
    /// An event, and where its source stood after it.
    Event {
        /// The record.
        record: Record,
        /// The source position after this event ([`NO_ORIGIN`] if none).
        origin: u64,
    },
    /// A collector report (for sinks that take reports).
    Report(Box<Report>),
    /// A redacted JSON line kept as written (the shape-preserving path of
    /// JSONL sources), and where its source stood after it.
    Line {
        /// The event id.
        id: String,
        /// The line's text.
        text: String,
        /// The source position after this line.
        origin: u64,
        /// When the line was read: its `createdAt` if it has none.
        received: DateTime<Utc>,
    },
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log record cannot be decoded: {0}")]
pub struct DecodeError(pub String);

/// Appends the encoding of an event record to `out`.
pub fn encode_event(record: &Record, origin: u64, out: &mut Vec<u8>) {
    out.push(KIND_EVENT);
    out.extend_from_slice(&origin.to_le_bytes());
    put_str(out, &record.id);
    let event = &record.event;
    out.extend_from_slice(&event.created_at.timestamp().to_le_bytes());
    out.extend_from_slice(&event.created_at.timestamp_subsec_nanos().to_le_bytes());
    for field in event.string_fields() {
        put_str(out, field);
    }
    let json = serde_json::to_string(&event.metadata).expect("a JSON map always serializes");
    put_str(out, &json);
}

/// The encoding of an event record.
pub fn event_bytes(record: &Record, origin: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_event(record, origin, &mut out);
    out
}

/// The encoding of a redacted line (see [`Entry::Line`]).
pub fn line_bytes(id: &str, text: &str, origin: u64, received: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + id.len() + 32);
    out.push(KIND_LINE);
    out.extend_from_slice(&origin.to_le_bytes());
    put_str(&mut out, id);
    out.extend_from_slice(&received.timestamp().to_le_bytes());
    out.extend_from_slice(&received.timestamp_subsec_nanos().to_le_bytes());
    put_str(&mut out, text);
    out
}

/// The encoding of a report.
pub fn report_bytes(report: &Report) -> Vec<u8> {
    let mut out = vec![KIND_REPORT];
    serde_json::to_writer(&mut out, report).expect("a report always serializes");
    out
}

/// The origin of an encoded event entry, without decoding the rest
/// (`None` for a report or bytes that are not an entry).
pub fn origin(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [KIND_EVENT | KIND_LINE, rest @ ..] if rest.len() >= 8 => Some(u64::from_le_bytes(rest[..8].try_into().ok()?)),
        _ => None,
    }
}

/// An event entry with its metadata left as the JSON text it is stored as
/// (for the redaction stage, which scans it instead of building a tree).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The source position after this event.
    pub origin: u64,
    /// The event id.
    pub id: String,
    /// `createdAt`: seconds since the epoch.
    pub seconds: i64,
    /// `createdAt`: nanoseconds.
    pub nanos: u32,
    /// The string fields, in the order of [`super::STRING_FIELDS`].
    pub fields: [String; 6],
    /// The metadata object as compact JSON text (not checked here).
    pub metadata: String,
}

impl RawEvent {
    /// The encoding (as [`encode_event`] writes it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.metadata.len() + 96);
        out.push(KIND_EVENT);
        out.extend_from_slice(&self.origin.to_le_bytes());
        put_str(&mut out, &self.id);
        out.extend_from_slice(&self.seconds.to_le_bytes());
        out.extend_from_slice(&self.nanos.to_le_bytes());
        for field in &self.fields {
            put_str(&mut out, field);
        }
        put_str(&mut out, &self.metadata);
        out
    }
}

impl RawEvent {
    /// A record's entry, its metadata written as compact JSON.
    pub fn from_record(record: &Record, origin: u64) -> RawEvent {
        let e = &record.event;
        RawEvent {
            origin,
            id: record.id.clone(),
            seconds: e.created_at.timestamp(),
            nanos: e.created_at.timestamp_subsec_nanos(),
            fields: e.string_fields().map(String::clone),
            metadata: serde_json::to_string(&e.metadata).expect("a JSON map always serializes"),
        }
    }

    /// The event in the event model (its metadata parsed).
    pub fn into_record(self) -> Result<Record, DecodeError> {
        let created_at = DateTime::from_timestamp(self.seconds, self.nanos)
            .ok_or_else(|| DecodeError(format!("timestamp {}.{} is out of range", self.seconds, self.nanos)))?;
        let metadata: Map<String, Value> = serde_json::from_str(&self.metadata)
            .map_err(|e| DecodeError(format!("metadata is not a JSON object: {e}")))?;
        let [org_id, user_id, device_id, session_id, event_type, source] = self.fields;
        let event = Event { org_id, user_id, device_id, session_id, event_type, source, created_at, metadata };
        Ok(Record { id: self.id, event })
    }
}

/// Decodes an event entry, leaving its metadata as text; `Ok(None)` for an
/// entry of another kind. Everything but the metadata is checked as
/// [`decode`] checks it.
pub fn decode_raw_event(bytes: &[u8]) -> Result<Option<RawEvent>, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    match r.u8()? {
        KIND_EVENT => {}
        KIND_REPORT | KIND_LINE => return Ok(None),
        other => return Err(DecodeError(format!("unknown entry kind {other}"))),
    }
    let origin = u64::from_le_bytes(r.array()?);
    let id = r.str()?.to_string();
    let at = r.time()?;
    let (seconds, nanos) = (at.timestamp(), at.timestamp_subsec_nanos());
    let mut fields: [String; 6] = Default::default();
    for slot in &mut fields {
        *slot = r.str()?.to_string();
    }
    let metadata = r.str()?.to_string();
    if r.at != bytes.len() {
        return Err(DecodeError(format!("{} unexpected bytes after the event", bytes.len() - r.at)));
    }
    Ok(Some(RawEvent { origin, id, seconds, nanos, fields, metadata }))
}

/// Decodes one entry.
pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    match r.u8()? {
        KIND_EVENT => {
            let raw = decode_raw_event(bytes)?.ok_or_else(|| DecodeError("not an event entry".into()))?;
            let origin = raw.origin;
            Ok(Entry::Event { record: raw.into_record()?, origin })
        }
        KIND_LINE => {
            let origin = u64::from_le_bytes(r.array()?);
            let id = r.str()?.to_string();
            let received = r.time()?;
            let text = r.str()?.to_string();
            if r.at != bytes.len() {
                return Err(DecodeError(format!("{} unexpected bytes after the line", bytes.len() - r.at)));
            }
            Ok(Entry::Line { id, text, origin, received })
        }
        KIND_REPORT => serde_json::from_slice(&bytes[1..])
            .map(|r| Entry::Report(Box::new(r)))
            .map_err(|e| DecodeError(format!("report is not valid: {e}"))),
        other => Err(DecodeError(format!("unknown entry kind {other}"))),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| {
            DecodeError(format!("truncated: {n} bytes needed at offset {} of {}", self.at, self.bytes.len()))
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// A timestamp: seconds i64 LE, nanos u32 LE, checked.
    fn time(&mut self) -> Result<DateTime<Utc>, DecodeError> {
        let seconds = i64::from_le_bytes(self.array()?);
        let nanos = u32::from_le_bytes(self.array()?);
        DateTime::from_timestamp(seconds, nanos)
            .ok_or_else(|| DecodeError(format!("timestamp {seconds}.{nanos} is out of range")))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError("a length is longer than 10 bytes".into()))
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("a length is too large".into()))?;
        std::str::from_utf8(self.take(len)?).map_err(|e| DecodeError(format!("text is not UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnknownFields;
    use crate::event::limits::EventLimits;
    use chrono::Utc;
    use proptest::prelude::*;

    fn record(v: Value) -> Record {
        Record { id: "t:1".into(), event: Event::from_json(v, UnknownFields::Reject, Utc::now()).unwrap() }
    }

    #[test]
    fn round_trips_events_and_reports() {
        let r = record(serde_json::json!({"orgId": "o", "metadata": {"a": [1, 2.5, {"b": null}], "é": "ü"}}));
        assert_eq!(decode(&event_bytes(&r, 7)).unwrap(), Entry::Event { record: r, origin: 7 });
        let report = Report {
            collector: "c".into(),
            module_sha256: "s".into(),
            collected_at: Utc::now(),
            base: None,
            counts: vec![],
        };
        assert_eq!(decode(&report_bytes(&report)).unwrap(), Entry::Report(Box::new(report)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = event_bytes(&record(serde_json::json!({"metadata": {"k": "v"}})), 1);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        assert!(decode(&[9]).is_err());
        let mut extra = good.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
    }

    /// JSON values as ingest could accept them (depth bounded).
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("\\PC{0,10}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any event the limits accept survives the log round trip byte for
        /// byte: encoded, appended, read back, decoded, encoded again.
        #[test]
        fn accepted_events_round_trip(
            fields in prop::array::uniform6(any::<String>()),
            seconds in -62_135_596_800i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
            metadata in prop::collection::vec(("\\PC{0,10}", json_value()), 0..8),
            id in "[A-Za-z0-9._:@/+=-]{1,40}",
            origin in any::<u64>(),
        ) {
            let [org_id, user_id, device_id, session_id, event_type, source] = fields;
            let event = Event {
                org_id, user_id, device_id, session_id, event_type, source,
                created_at: DateTime::from_timestamp(seconds, nanos).unwrap(),
                metadata: metadata.into_iter().collect(),
            };
            prop_assume!(EventLimits::default().check(&event).is_ok());
            let record = Record { id, event };
            let bytes = event_bytes(&record, origin);
            // Through a real log: appended, synced, read back.
            let dir = tempfile::tempdir().unwrap();
            let (log, _) = crate::log::Log::open(dir.path(), crate::log::LogOptions::default()).unwrap();
            log.append(&[&bytes]).unwrap();
            let mut items = Vec::new();
            log.reader(0).read(10, 1 << 30, &mut items).unwrap();
            let Some(crate::log::Item::Record { payload, .. }) = items.pop() else { panic!("no record read back") };
            prop_assert_eq!(&payload, &bytes, "the log returns the bytes it was given");
            let back = decode(&payload).unwrap();
            let Entry::Event { record: decoded, origin: o } = back else { panic!("not an event") };
            prop_assert_eq!(o, origin);
            prop_assert_eq!(&decoded, &record);
            prop_assert_eq!(event_bytes(&decoded, origin), bytes);
        }
    }
}
