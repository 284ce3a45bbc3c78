//! What comes back from Loki (or anything answering on its URL): any status
//! and body must be classified without a panic, quote at most 500
//! characters, and be retried only for 429 and 5xx. Also Loki label sets as
//! the sink parses them from configured or stored text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel::config::UnknownFields;
use wasmtel::event::Event;
use wasmtel::sinks::loki::encode::{labels, sanitize_value, try_parse_labels};
use wasmtel::sinks::loki::service::{Answer, classify};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 1000;
    let body = &data[2..];
    let answer = classify(status, body);
    match &answer {
        Answer::Accepted => assert!((200..300).contains(&status)),
        Answer::Refused(reason) | Answer::Failed(reason) | Answer::Retryable(_, reason) => {
            assert!(reason.starts_with(&format!("HTTP {status}: ")));
            assert!(reason.chars().count() <= 500 + 12, "a reason quoted more than 500 characters");
        }
    }
    assert_eq!(matches!(answer, Answer::Retryable(..)), status == 429 || (500..600).contains(&status));
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(labels) = try_parse_labels(text) {
            assert!(labels.iter().all(|(name, _)| !name.contains('=')), "a label name holds '='");
        }
        let clean = sanitize_value(text);
        assert!(clean.len() <= 2048 && !clean.chars().any(char::is_control), "a label value Loki would refuse");
        // Labels rendered from an event parse back to the values sanitized.
        let mut parts = text.splitn(3, '\u{0}');
        let (org, kind, source) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let event = serde_json::json!({"orgId": org, "eventType": kind, "source": source});
        let Ok(event) = Event::from_json(event, UnknownFields::Preserve, chrono::DateTime::UNIX_EPOCH) else { return };
        let rendered = labels(&event, "wasmtel");
        let expected: Vec<(String, String)> =
            [("job", "wasmtel"), ("org_id", org), ("event_type", kind), ("source", source)]
                .into_iter()
                .map(|(name, value)| (name.to_string(), sanitize_value(value)))
                .filter(|(_, value)| !value.is_empty())
                .collect();
        assert_eq!(try_parse_labels(&rendered), Some(expected), "rendered labels do not parse back: {rendered}");
    }
});
