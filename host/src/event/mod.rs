//! The telemetry event model and its JSON form.
//!
//! Readers accept lowerCamelCase and snake_case field names (as protobuf JSON
//! parsers do); writers use lowerCamelCase. `metadata` is a JSON object and
//! `createdAt` RFC 3339. See `shared/spec/ingest.md`.
//!
//! An [`Event`] travels through the pipeline inside a [`Record`], which adds
//! its id: assigned once where the event enters (or taken from the input's
//! `id` field) and kept end to end, so a consumer can drop the duplicates a
//! crash may re-deliver. [`limits`] says what every later stage can process;
//! [`codec`] is the binary form the durable logs store.

pub mod codec;
pub mod limits;
pub mod scan;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::config::UnknownFields;

/// One telemetry event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Organization the event belongs to.
    pub org_id: String,
    /// Pseudonymous user id.
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Session id.
    pub session_id: String,
    /// Kind of event.
    pub event_type: String,
    /// Producer of the event.
    pub source: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Free-form metadata (a JSON object).
    pub metadata: Map<String, Value>,
}

/// An event and its id: the unit every stage after the source handles.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The event's id, unique per event and stable across re-deliveries
    /// (see [`valid_id`]).
    pub id: String,
    /// The event.
    pub event: Event,
}

impl Record {
    /// The JSON form with the id first: `{"id": ..., "orgId": ..., ...}`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::with_capacity(9);
        object.insert("id".into(), Value::String(self.id.clone()));
        if let Value::Object(fields) = self.event.to_json() {
            object.extend(fields);
        }
        Value::Object(object)
    }

    /// [`Record::to_json`] as one line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
    }
}

/// The JSON form of a record, written straight from its fields (no tree
/// is built): the same text as [`Record::to_json`].
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("id", &self.id)?;
        for ((camel, _), value) in STRING_FIELDS.iter().zip(self.event.string_fields()) {
            map.serialize_entry(camel, value)?;
        }
        map.serialize_entry("createdAt", &format_time(self.event.created_at))?;
        map.serialize_entry("metadata", &self.event.metadata)?;
        map.end()
    }
}

/// A new event id: a UUIDv7 (time-ordered), its random bits from a fast
/// thread-local generator rather than a system call per event.
pub fn new_id() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let random = fastrand::u128(..).to_le_bytes();
    let bytes: [u8; 10] = random[..10].try_into().expect("10 of 16 bytes");
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid().to_string()
}

/// Longest event id accepted.
pub const MAX_ID_BYTES: usize = 128;

/// Whether `id` is a usable event id: 1 to [`MAX_ID_BYTES`] bytes of
/// `[A-Za-z0-9._:@/+=-]`, so it can go into a Kafka header, Loki structured
/// metadata or a file name without escaping, and cannot carry free text.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES && id.bytes().all(id_byte)
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:@/+=-".contains(&b)
}

/// `text` made into a valid id part: other characters become `_`, cut to
/// `max` bytes (used for ids derived from file names).
pub fn id_part(text: &str, max: usize) -> String {
    let mut out: String = text.bytes().map(|b| if id_byte(b) { b as char } else { '_' }).collect();
    out.truncate(max);
    if out.is_empty() { "_".into() } else { out }
}

/// Why an input could not become an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("expected a JSON object per event")]
    NotObject,
    /// A field has the wrong type or value.
    #[error("field `{field}`: {message}")]
    Field {
        /// The field's JSON name.
        field: &'static str,
        /// What was expected and found.
        message: String,
    },
    /// Top-level fields the event model does not have (`unknown_fields =
    /// "reject"`).
    #[error(
        "unknown top-level field(s) {0}: expected only the event fields (orgId, userId, deviceId, sessionId, eventType, source, createdAt, metadata)"
    )]
    Unknown(String),
}

fn field_error(field: &'static str, message: String) -> EventError {
    EventError::Field { field, message }
}

/// Takes an `id` field out of an input object, if it has a usable one.
pub fn take_id(object: &mut Map<String, Value>) -> Result<Option<String>, EventError> {
    match object.remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if valid_id(&id) => Ok(Some(id)),
        Some(Value::String(_)) => {
            Err(field_error("id", format!("expected 1 to {MAX_ID_BYTES} characters of [A-Za-z0-9._:@/+=-]")))
        }
        Some(other) => Err(field_error("id", format!("expected a string, found {}", kind(&other)))),
    }
}

/// The string fields of an event, in wire order, with their JSON names.
pub const STRING_FIELDS: [(&str, &str); 6] = [
    ("orgId", "org_id"),
    ("userId", "user_id"),
    ("deviceId", "device_id"),
    ("sessionId", "session_id"),
    ("eventType", "event_type"),
    ("source", "source"),
];

impl Event {
    /// The string fields, in the order of [`STRING_FIELDS`].
    pub fn string_fields(&self) -> [&String; 6] {
        [&self.org_id, &self.user_id, &self.device_id, &self.session_id, &self.event_type, &self.source]
    }

    /// Mutable access to the string fields, in the order of [`STRING_FIELDS`].
    pub fn string_fields_mut(&mut self) -> [&mut String; 6] {
        [
            &mut self.org_id,
            &mut self.user_id,
            &mut self.device_id,
            &mut self.session_id,
            &mut self.event_type,
            &mut self.source,
        ]
    }

    /// Parses one JSON line. `now` fills a missing `createdAt`.
    pub fn from_json_line(line: &str, unknown: UnknownFields, now: DateTime<Utc>) -> Result<Event, EventError> {
        let value: Value = serde_json::from_str(line).map_err(|e| EventError::Json(e.to_string()))?;
        Event::from_json(value, unknown, now)
    }

    /// Parses one JSON line that may carry its own `id`; returns it beside
    /// the event.
    pub fn from_json_line_with_id(
        line: &str,
        unknown: UnknownFields,
        now: DateTime<Utc>,
    ) -> Result<(Option<String>, Event), EventError> {
        let value: Value = serde_json::from_str(line).map_err(|e| EventError::Json(e.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(EventError::NotObject);
        };
        let id = take_id(&mut object)?;
        Ok((id, Event::from_json(Value::Object(object), unknown, now)?))
    }

    /// Builds an event from its JSON form.
    pub fn from_json(value: Value, unknown: UnknownFields, now: DateTime<Utc>) -> Result<Event, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::NotObject);
        };
        let mut take = |camel: &str, snake: &str| -> Option<Value> {
            let a = object.remove(camel);
            let b = if camel != snake { object.remove(snake) } else { None };
            a.or(b)
        };
        let mut strings: [String; 6] = Default::default();
        for (slot, (camel, snake)) in strings.iter_mut().zip(STRING_FIELDS) {
            match take(camel, snake) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = s,
                Some(other) => {
                    return Err(field_error(camel, format!("expected a string, found {}", kind(&other))));
                }
            }
        }
        let created_at = match take("createdAt", "created_at") {
            None | Some(Value::Null) => now,
            Some(Value::String(s)) => {
                let t = DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| {
                        field_error("createdAt", format!("expected an RFC 3339 timestamp, found {s:?} ({e})"))
                    })?
                    .with_timezone(&Utc);
                limits::check_time(t).map_err(|e| field_error("createdAt", e.to_string()))?;
                t
            }
            Some(other) => {
                return Err(field_error("createdAt", format!("expected an RFC 3339 string, found {}", kind(&other))));
            }
        };
        let mut metadata = match take("metadata", "metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(field_error("metadata", format!("expected a JSON object, found {}", kind(&other))));
            }
        };
        if !object.is_empty() {
            match unknown {
                UnknownFields::Reject => {
                    let names: Vec<_> = object.keys().cloned().collect();
                    return Err(EventError::Unknown(names.join(", ")));
                }
                UnknownFields::Preserve => {
                    for (k, v) in object {
                        metadata.entry(k).or_insert(v);
                    }
                }
            }
        }
        let [org_id, user_id, device_id, session_id, event_type, source] = strings;
        Ok(Event { org_id, user_id, device_id, session_id, event_type, source, created_at, metadata })
    }

    /// The JSON form (lowerCamelCase).
    pub fn to_json(&self) -> Value {
        let mut object = Map::with_capacity(8);
        for ((camel, _), value) in STRING_FIELDS.iter().zip(self.string_fields()) {
            object.insert((*camel).to_string(), Value::String(value.clone()));
        }
        object.insert("createdAt".into(), Value::String(format_time(self.created_at)));
        object.insert("metadata".into(), Value::Object(self.metadata.clone()));
        Value::Object(object)
    }

    /// The JSON form as one line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        self.to_json().to_string()
    }
}

/// RFC 3339 with as many fractional digits as needed, `Z` for UTC.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A word for the JSON type of `v`, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_camel_and_snake_case() {
        let a = Event::from_json_line(
            r#"{"orgId":"o","eventType":"login","createdAt":"2026-01-01T00:00:00Z"}"#,
            UnknownFields::Reject,
            now(),
        )
        .unwrap();
        let b = Event::from_json_line(
            r#"{"org_id":"o","event_type":"login","created_at":"2026-01-01T00:00:00Z"}"#,
            UnknownFields::Reject,
            now(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.org_id, "o");
    }

    #[test]
    fn fills_created_at_and_round_trips() {
        let e = Event::from_json_line(r#"{"orgId":"o","metadata":{"a":[1,{"b":"c"}]}}"#, UnknownFields::Reject, now())
            .unwrap();
        assert_eq!(e.created_at, now());
        let back = Event::from_json_line(&e.to_json_line(), UnknownFields::Reject, now()).unwrap();
        assert_eq!(back, e);
        assert!(e.to_json_line().contains(r#""createdAt":"2026-01-02T03:04:05Z""#));
    }

    #[test]
    fn rejects_bad_shapes_with_the_field_name() {
        let err = Event::from_json_line(r#"{"metadata":"x"}"#, UnknownFields::Preserve, now()).unwrap_err().to_string();
        assert!(err.contains("`metadata`") && err.contains("object"), "{err}");
        let err = Event::from_json_line(r#"{"orgId":5}"#, UnknownFields::Preserve, now()).unwrap_err().to_string();
        assert!(err.contains("`orgId`"), "{err}");
        let err = Event::from_json_line(r#"{"createdAt":"yesterday"}"#, UnknownFields::Preserve, now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("RFC 3339"), "{err}");
        assert!(Event::from_json_line("not json", UnknownFields::Preserve, now()).is_err());
    }

    #[test]
    fn a_record_serializes_like_its_json_form() {
        let e = Event::from_json_line(
            r#"{"orgId":"o","metadata":{"b":[1,{"c":"é"}],"a":2.5}}"#,
            UnknownFields::Reject,
            now(),
        )
        .unwrap();
        let r = Record { id: "x:1".into(), event: e };
        assert_eq!(r.to_json_line(), r.to_json().to_string());
    }

    #[test]
    fn unknown_fields_follow_the_policy() {
        let line = r#"{"orgId":"o","extra":1}"#;
        let kept = Event::from_json_line(line, UnknownFields::Preserve, now()).unwrap();
        assert_eq!(kept.metadata["extra"], 1);
        let err = Event::from_json_line(line, UnknownFields::Reject, now()).unwrap_err().to_string();
        assert!(err.contains("extra"), "{err}");
    }
}
