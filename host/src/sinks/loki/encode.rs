//! Turning events into Loki entries and push bodies.
//!
//! Stream labels are `job` (configured), `org_id`, `event_type` and
//! `source` — low-cardinality fields only; their values are sanitized
//! (control characters replaced, cut to Loki's 2048-byte limit, empty values
//! left out). The line is the event's JSON; the timestamp its `createdAt`.
//! The event's id (`event_id`, by default), user, session and device ids go
//! to structured metadata if configured, never to labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{DateTime, Utc};
use prost::Message;

use super::config::{LokiConfig, OversizedLines};
use crate::event::Event;
use crate::guard::Redacted;
use crate::proto::logproto;

/// Longest label value Loki accepts.
pub const MAX_LABEL_VALUE: usize = 2048;

/// One entry ready to push.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Index of the event in the caller's batch.
    pub index: usize,
    /// Rendered label set, e.g. `{job="wasmtel", org_id="o1"}`.
    pub labels: String,
    /// Timestamp.
    pub ts: DateTime<Utc>,
    /// The line.
    pub line: String,
    /// Structured metadata pairs.
    pub structured: Vec<(String, String)>,
}

/// A label value Loki accepts: no control characters, at most 2048 bytes.
pub fn sanitize_value(value: &str) -> String {
    let mut out: String = value.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.len() > MAX_LABEL_VALUE {
        let mut cut = MAX_LABEL_VALUE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The stream label set of an event.
pub fn labels(event: &Event, job: &str) -> String {
    let mut out = String::from("{");
    for (name, value) in
        [("job", job), ("org_id", &event.org_id), ("event_type", &event.event_type), ("source", &event.source)]
    {
        let value = sanitize_value(value);
        if value.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

fn structured(id: &str, event: &Event, fields: &[String]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter_map(|f| {
            let value = match f.as_str() {
                "event_id" => id.to_string(),
                "user_id" => event.user_id.clone(),
                "session_id" => event.session_id.clone(),
                "device_id" => event.device_id.clone(),
                other => match event.metadata.get(other.strip_prefix("metadata.")?)? {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                },
            };
            (!value.is_empty()).then(|| (f.replace('.', "_"), value))
        })
        .collect()
}

/// Entries for `events`, plus the events that must not be sent (index, reason).
pub fn prepare(events: &[&Redacted], config: &LokiConfig, now: DateTime<Utc>) -> (Vec<Entry>, Vec<(usize, String)>) {
    let mut entries = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    let oldest = now - chrono::Duration::hours(config.reject_older_than_hours as i64);
    let newest = now + chrono::Duration::minutes(10);
    for (index, redacted) in events.iter().enumerate() {
        let event = redacted.event();
        if event.created_at < oldest {
            refused.push((
                index,
                format!(
                    "createdAt {} is older than Loki accepts ({}h)",
                    crate::event::format_time(event.created_at),
                    config.reject_older_than_hours
                ),
            ));
            continue;
        }
        if event.created_at > newest {
            refused.push((
                index,
                format!(
                    "createdAt {} is more than 10 minutes in the future",
                    crate::event::format_time(event.created_at)
                ),
            ));
            continue;
        }
        let mut line = redacted.record().to_json_line();
        if line.len() > config.max_line_bytes {
            match config.oversized_lines {
                OversizedLines::DeadLetter => {
                    refused.push((
                        index,
                        format!("line of {} bytes exceeds max_line_bytes ({})", line.len(), config.max_line_bytes),
                    ));
                    continue;
                }
                OversizedLines::Truncate => {
                    let mut cut = config.max_line_bytes;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
            }
        }
        entries.push(Entry {
            index,
            labels: labels(event, &config.job),
            ts: event.created_at,
            line,
            structured: structured(redacted.id(), event, &config.structured_metadata),
        });
    }
    (entries, refused)
}

/// Entries grouped by stream, each stream's entries in time order.
fn streams<'a>(entries: &[&'a Entry]) -> BTreeMap<&'a str, Vec<&'a Entry>> {
    let mut streams: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        streams.entry(e.labels.as_str()).or_default().push(e);
    }
    for list in streams.values_mut() {
        list.sort_by_key(|e| e.ts);
    }
    streams
}

/// A snappy block-compressed `logproto.PushRequest`.
pub fn protobuf_body(entries: &[&Entry]) -> Vec<u8> {
    let request = logproto::PushRequest {
        streams: streams(entries)
            .into_iter()
            .map(|(labels, list)| logproto::StreamAdapter {
                labels: labels.to_string(),
                entries: list
                    .into_iter()
                    .map(|e| logproto::EntryAdapter {
                        timestamp: Some(prost_types::Timestamp {
                            seconds: e.ts.timestamp(),
                            nanos: e.ts.timestamp_subsec_nanos() as i32,
                        }),
                        line: e.line.clone(),
                        structured_metadata: e
                            .structured
                            .iter()
                            .map(|(n, v)| logproto::LabelPairAdapter { name: n.clone(), value: v.clone() })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).expect("snappy compression of an in-memory buffer")
}

/// The JSON push body (optionally gzip-compressed).
pub fn json_body(entries: &[&Entry], gzip: bool) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = streams(entries)
        .into_iter()
        .map(|(labels, list)| {
            let stream: serde_json::Map<String, serde_json::Value> =
                parse_labels(labels).into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            let values: Vec<serde_json::Value> = list
                .into_iter()
                .map(|e| {
                    let ns = e.ts.timestamp_nanos_opt().unwrap_or_default().to_string();
                    if e.structured.is_empty() {
                        serde_json::json!([ns, e.line])
                    } else {
                        let sm: serde_json::Map<String, serde_json::Value> = e
                            .structured
                            .iter()
                            .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
                            .collect();
                        serde_json::json!([ns, e.line, sm])
                    }
                })
                .collect();
            serde_json::json!({"stream": stream, "values": values})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "streams": streams })).expect("JSON of strings");
    if !gzip {
        return body;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&body).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// Parses a Prometheus label set `{a="x", b="y"}`; `None` on a syntax error.
pub fn try_parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.peek().copied().filter(|c| *c != '=' && !c.is_whitespace()) {
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

/// Like [`try_parse_labels`], for label sets this module rendered.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    try_parse_labels(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnknownFields;

    fn event(json: serde_json::Value) -> Event {
        Event::from_json(json, UnknownFields::Preserve, Utc::now()).unwrap()
    }

    #[test]
    fn labels_are_sanitized_and_low_cardinality() {
        let e = event(
            serde_json::json!({"orgId": "o\"1\\x\n", "userId": "u-123", "sessionId": "s-9", "eventType": "", "source": "sdk"}),
        );
        let l = labels(&e, "wasmtel");
        assert_eq!(l, r#"{job="wasmtel", org_id="o\"1\\x", source="sdk"}"#);
        assert!(!l.contains("u-123") && !l.contains("s-9"), "ids stay out of labels");
        assert_eq!(
            parse_labels(&l),
            [("job".into(), "wasmtel".into()), ("org_id".into(), "o\"1\\x".into()), ("source".into(), "sdk".into())]
        );
        let long = "x".repeat(5000);
        assert_eq!(sanitize_value(&long).len(), MAX_LABEL_VALUE);
    }

    #[test]
    fn label_parser_rejects_bad_syntax() {
        assert!(try_parse_labels("{a=\"b\"").is_none());
        assert!(try_parse_labels("{a=b}").is_none());
        assert_eq!(try_parse_labels("{}"), Some(vec![]));
    }
}
