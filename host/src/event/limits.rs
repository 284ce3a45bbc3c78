//! What every stage after a source can process: the limits an event must
//! stay within to be accepted at all. Sources (gRPC, HTTP, JSONL files,
//! Kafka) check them before anything is acknowledged, so an event answered
//! OK can always be stored in the log, read back, packed for a redactor and
//! rendered for a sink. The `[event_limits]` table of the configuration sets
//! them; the defaults are the constants below.

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Event, STRING_FIELDS};

/// Default most bytes of one event (its fields and metadata as JSON text).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// Default deepest nesting of objects and arrays inside `metadata`.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default most keys plus values inside `metadata`.
pub const DEFAULT_MAX_FIELDS: usize = 10_000;
/// Default longest object key inside `metadata`, in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;
/// Default longest string value (top-level fields included), in bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256 * 1024;
/// The deepest nesting any configuration may allow: the JSON parser that
/// reads metadata back refuses more than 128 levels.
pub const HARD_MAX_DEPTH: usize = 100;

/// `[event_limits]`: what an accepted event may contain.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventLimits {
    /// Most bytes of one event, counted as its JSON text (default 1 MiB).
    #[serde(default = "default_event_bytes")]
    pub max_event_bytes: usize,
    /// Deepest nesting of objects and arrays in `metadata` (default 64;
    /// at most 100).
    #[serde(default = "default_depth")]
    pub max_depth: usize,
    /// Most object keys plus values in `metadata` (default 10000).
    #[serde(default = "default_fields")]
    pub max_fields: usize,
    /// Longest object key in `metadata`, in bytes (default 1024).
    #[serde(default = "default_key_bytes")]
    pub max_key_bytes: usize,
    /// Longest string value, top-level fields included, in bytes (default
    /// 262144).
    #[serde(default = "default_value_bytes")]
    pub max_value_bytes: usize,
}

fn default_event_bytes() -> usize {
    DEFAULT_MAX_EVENT_BYTES
}
fn default_depth() -> usize {
    DEFAULT_MAX_DEPTH
}
fn default_fields() -> usize {
    DEFAULT_MAX_FIELDS
}
fn default_key_bytes() -> usize {
    DEFAULT_MAX_KEY_BYTES
}
fn default_value_bytes() -> usize {
    DEFAULT_MAX_VALUE_BYTES
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_fields: DEFAULT_MAX_FIELDS,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// An event over a limit: which field, and what the limit is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LimitError {
    /// The field, e.g. `metadata.a.b` or `createdAt`.
    pub field: String,
    /// What is wrong, naming the limit.
    pub message: String,
}

/// A timestamp outside the years RFC 3339 can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("year {0} is outside 1 to 9999 (RFC 3339 cannot write it)")]
pub struct YearOutOfRange(pub i32);

/// Checks that `t` is in the years 1 to 9999 (what RFC 3339 can write).
pub fn check_time(t: DateTime<Utc>) -> Result<(), YearOutOfRange> {
    if (1..=9999).contains(&t.year()) { Ok(()) } else { Err(YearOutOfRange(t.year())) }
}

impl EventLimits {
    /// Checks the settings themselves; returns the key and the expectation.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_depth == 0 || self.max_depth > HARD_MAX_DEPTH {
            return Err(("max_depth", format!("expected a nesting depth from 1 to {HARD_MAX_DEPTH}")));
        }
        for (key, value) in [
            ("max_event_bytes", self.max_event_bytes),
            ("max_fields", self.max_fields),
            ("max_key_bytes", self.max_key_bytes),
            ("max_value_bytes", self.max_value_bytes),
        ] {
            if value == 0 || value > 64 << 20 {
                return Err((key, "expected a number from 1 to 67108864".into()));
            }
        }
        Ok(())
    }

    /// Checks one event against every limit.
    pub fn check(&self, event: &Event) -> Result<(), LimitError> {
        let err = |field: &str, message: String| Err(LimitError { field: field.to_string(), message });
        if let Err(e) = check_time(event.created_at) {
            return err("createdAt", e.to_string());
        }
        let mut size = 64;
        for ((name, _), value) in STRING_FIELDS.iter().zip(event.string_fields()) {
            if value.len() > self.max_value_bytes {
                return err(name, format!("{} bytes exceed the limit of {} bytes", value.len(), self.max_value_bytes));
            }
            size += value.len() + name.len() + 6;
        }
        let mut walk = Walk { limits: self, fields: 0, size };
        walk.map(&event.metadata, 1, &mut String::from("metadata"))?;
        if walk.size > self.max_event_bytes {
            return err(
                "event",
                format!("about {} bytes exceed the limit of {} bytes per event", walk.size, self.max_event_bytes),
            );
        }
        Ok(())
    }
}

/// A walk over metadata, counting fields and bytes.
struct Walk<'a> {
    limits: &'a EventLimits,
    fields: usize,
    size: usize,
}

impl Walk<'_> {
    fn fail(&self, path: &str, message: String) -> Result<(), LimitError> {
        Err(LimitError { field: path.to_string(), message })
    }

    /// Counts one field; fails past `max_fields` or `max_event_bytes` (so a
    /// huge event stops the walk early).
    fn count(&mut self, path: &str, bytes: usize) -> Result<(), LimitError> {
        self.fields += 1;
        self.size += bytes + 4;
        if self.fields > self.limits.max_fields {
            return self.fail(path, format!("more than {} keys and values in metadata", self.limits.max_fields));
        }
        if self.size > self.limits.max_event_bytes {
            return self.fail("event", format!("more than {} bytes per event", self.limits.max_event_bytes));
        }
        Ok(())
    }

    fn map(&mut self, map: &Map<String, Value>, depth: usize, path: &mut String) -> Result<(), LimitError> {
        if depth > self.limits.max_depth {
            return self.fail(path, format!("nested deeper than {} levels", self.limits.max_depth));
        }
        for (key, value) in map {
            let len = path.len();
            // Paths in errors stay short even for long keys.
            path.push('.');
            path.extend(key.chars().take(40));
            if key.len() > self.limits.max_key_bytes {
                return self.fail(
                    path,
                    format!("a key of {} bytes exceeds the limit of {} bytes", key.len(), self.limits.max_key_bytes),
                );
            }
            self.count(path, key.len())?;
            self.value(value, depth, path)?;
            path.truncate(len);
        }
        Ok(())
    }

    fn value(&mut self, value: &Value, depth: usize, path: &mut String) -> Result<(), LimitError> {
        match value {
            Value::String(s) => {
                if s.len() > self.limits.max_value_bytes {
                    return self.fail(
                        path,
                        format!("{} bytes exceed the limit of {} bytes", s.len(), self.limits.max_value_bytes),
                    );
                }
                self.count(path, s.len() + 2)
            }
            Value::Number(_) => self.count(path, 20),
            Value::Bool(_) | Value::Null => self.count(path, 5),
            Value::Array(items) => {
                if depth + 1 > self.limits.max_depth {
                    return self.fail(path, format!("nested deeper than {} levels", self.limits.max_depth));
                }
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.value(item, depth + 1, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => self.map(map, depth + 1, path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnknownFields;
    use serde_json::json;

    fn event(v: Value) -> Event {
        Event::from_json(v, UnknownFields::Reject, Utc::now()).unwrap()
    }

    fn nested(depth: usize) -> Value {
        let mut v = json!("x");
        for _ in 0..depth {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn depth_is_limited() {
        let limits = EventLimits::default();
        // `metadata` itself is the first level.
        assert!(limits.check(&event(json!({"metadata": nested(64)}))).is_ok());
        let e = limits.check(&event(json!({"metadata": nested(65)}))).unwrap_err();
        assert!(e.message.contains("deeper than 64"), "{e}");
    }

    #[test]
    fn keys_values_fields_and_size_are_limited() {
        let limits = EventLimits { max_event_bytes: 2000, max_fields: 10, ..Default::default() };
        let long_key = "k".repeat(2000);
        let e = limits.check(&event(json!({"metadata": {long_key: 1}}))).unwrap_err();
        assert!(e.message.contains("key of 2000 bytes"), "{e}");
        let many: Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!(i))).collect();
        let e = limits.check(&event(json!({"metadata": many}))).unwrap_err();
        assert!(e.message.contains("more than 10 keys"), "{e}");
        let e = limits.check(&event(json!({"metadata": {"a": "v".repeat(3000)}}))).unwrap_err();
        assert!(e.message.contains("per event"), "{e}");
        let e = EventLimits::default().check(&event(json!({"userId": "u".repeat(300_000)}))).unwrap_err();
        assert_eq!(e.field, "userId");
    }

    #[test]
    fn years_outside_rfc3339_are_refused() {
        let mut e = event(json!({}));
        e.created_at = DateTime::from_timestamp(253_402_300_800, 0).unwrap(); // 10000-01-01
        let err = EventLimits::default().check(&e).unwrap_err();
        assert_eq!(err.field, "createdAt");
        e.created_at = DateTime::from_timestamp(-62_135_596_801, 0).unwrap(); // 0000-12-31
        assert!(EventLimits::default().check(&e).is_err());
    }
}
