//! The shape-preserving path against the event-model path: unit cases,
//! and a differential property test over generated lines with escapes,
//! unicode, deep nesting, duplicate keys and numbers in every form.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::event::Record;
use crate::event::scan::scan;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, Finding};
use crate::transforms::redact::{FindingSource, Packed, RedactionChain, field_text};

/// Replaces every `sec` and every `77` in every packed text.
struct Words;

impl FindingSource for Words {
    fn name(&self) -> &str {
        "words"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        let mut out = Vec::new();
        for i in 0..batch.fields.len() {
            let text = field_text(batch, i);
            for (word, rule, replacement) in [("sec", "word", "<W>"), ("77", "digits", "<D\"\\>")] {
                let mut from = 0;
                while let Some(at) = text[from..].find(word) {
                    let start = from + at;
                    out.push(Finding {
                        field: i as u32,
                        start: start as u32,
                        end: (start + word.len()) as u32,
                        rule_id: rule.into(),
                        replacement: replacement.into(),
                    });
                    from = start + word.len();
                }
            }
        }
        Ok(out)
    }
}

fn chain() -> RedactionChain {
    RedactionChain::new(vec![Arc::new(Words), Arc::new(Words)])
}

fn line(text: &str) -> LineRecord {
    LineRecord::parse(text, "t:1".into(), UnknownFields::Preserve, &EventLimits::default()).unwrap()
}

fn redact_line(text: &str) -> (String, Vec<String>) {
    let outcome = chain().redact(vec![line(text)], &mut Packed::default());
    assert!(outcome.rejected.is_empty());
    let paths = outcome.audit.iter().map(|a| format!("{}:{}:{}", a.field_path, a.part, a.rule_id)).collect();
    (outcome.passed[0].text().to_string(), paths)
}

#[test]
fn a_line_without_findings_is_written_as_read() {
    let text = r#"{ "org_id":"o1", "created_at":"2026-01-02T03:04:05+02:00", "n": 1.50e3,
        "metadata": {"b": [1, true, null, {"é": "\u00e9\/"}], "a": -0} }"#;
    assert_eq!(redact_line(text).0, text.trim());
}

#[test]
fn only_the_found_text_changes() {
    let text =
        r#"{"user_id":"a sec b","created_at":"2026-01-02T03:04:05+02:00","metadata":{"k":"x77y","n":1770,"z":1e0}}"#;
    let (out, paths) = redact_line(text);
    assert_eq!(
        out,
        r#"{"user_id":"a <W> b","created_at":"2026-01-02T03:04:05+02:00","metadata":{"k":"x<D\"\\>y","n":"1<D\"\\>0","z":1e0}}"#
    );
    assert_eq!(paths, ["userId:value:word", "metadata.k:value:digits", "metadata.n:value:digits"]);
}

#[test]
fn escaped_strings_and_keys_are_decoded_redacted_and_escaped_again() {
    let text = r#"{"metadata":{"\u0073ec":"a\u0073ec\n","sec":"plain","xsec":null}}"#;
    let (out, paths) = redact_line(text);
    assert_eq!(out, r#"{"metadata":{"<W>":"a<W>\n","<W>#2":"plain","x<W>":null}}"#);
    assert_eq!(paths, ["metadata:key:word", "metadata[\"<W>\"]:value:word", "metadata:key:word", "metadata:key:word"]);
}

#[test]
fn unknown_top_level_fields_are_metadata_and_refused_when_asked() {
    let (out, paths) = redact_line(r#"{"extra":{"deep":["sec"]}}"#);
    assert_eq!(out, r#"{"extra":{"deep":["<W>"]}}"#);
    assert_eq!(paths, ["metadata.extra.deep[0]:value:word"]);
    let err =
        LineRecord::parse(r#"{"extra":1}"#, "i".into(), UnknownFields::Reject, &EventLimits::default()).unwrap_err();
    assert!(err.contains("unknown top-level field(s) extra"), "{err}");
}

#[test]
fn refusals_name_the_field_as_the_event_model_does() {
    let limits = EventLimits::default();
    let bad = |text: &str| LineRecord::parse(text, "i".into(), UnknownFields::Preserve, &limits).unwrap_err();
    assert!(bad("[1]").contains("JSON object"));
    assert!(bad("{\"orgId\":5}").contains("`orgId`"));
    assert!(bad("{\"createdAt\":\"10000-01-01T00:00:00Z\"}").contains("createdAt"));
    assert!(bad("{\"id\":\"a b\"}").contains("`id`"));
    assert!(bad("{\"metadata\":[]}").contains("`metadata`"));
    assert!(bad("not json").contains("JSON"));
    let deep = format!("{{\"metadata\":{}1{}}}", "{\"a\":".repeat(70), "}".repeat(70));
    assert!(bad(&deep).contains("deeper than 64"));
    let given = line(r#"{"id":"mine-1","orgId":"o"}"#);
    assert_eq!(given.id(), "mine-1");
}

/// Renames every packed key to a fixed name.
struct RenameKeys(&'static str);

impl FindingSource for RenameKeys {
    fn name(&self) -> &str {
        "rename"
    }
    fn sha256(&self) -> &str {
        "00"
    }
    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        Ok((0..batch.fields.len())
            .filter(|i| batch.fields[*i].part == crate::runtime::redactor::FieldPart::Key)
            .map(|i| Finding {
                field: i as u32,
                start: 0,
                end: batch.fields[i].text_len,
                rule_id: "rename".into(),
                replacement: self.0.into(),
            })
            .collect())
    }
}

fn renamed(text: &str, to: &'static str) -> String {
    let chain = RedactionChain::new(vec![Arc::new(RenameKeys(to))]);
    let outcome = chain.redact(vec![line(text)], &mut Packed::default());
    assert!(outcome.rejected.is_empty());
    outcome.passed[0].text().to_string()
}

#[test]
fn a_redacted_key_never_becomes_an_event_field_or_hides_another_key() {
    // Unknown top-level fields and metadata are one namespace in the event model.
    assert_eq!(renamed(r#"{"x":1,"orgId":"o"}"#, "orgId"), r#"{"orgId#2":1,"orgId":"o"}"#);
    assert_eq!(renamed(r#"{"x":1}"#, "metadata"), r#"{"metadata#2":1}"#);
    assert_eq!(renamed(r#"{"x":1,"metadata":{"y":2}}"#, "k"), r#"{"k":1,"metadata":{"k#2":2}}"#);
    // Nested objects are their own namespace.
    assert_eq!(
        renamed(r#"{"metadata":{"a":{"p":1,"q":2}}}"#, "orgId"),
        r#"{"metadata":{"orgId":{"orgId":1,"orgId#2":2}}}"#
    );
}

#[test]
fn thousands_of_colliding_key_renames_get_distinct_names() {
    let keys: Vec<String> = (0..3000).map(|i| format!("\"k{i}\":{i}")).collect();
    let out = renamed(&format!("{{\"metadata\":{{{}}}}}", keys.join(",")), "same");
    let back = Event::from_json_line(&out, UnknownFields::Preserve, chrono::Utc::now()).unwrap();
    assert_eq!(back.metadata.len(), 3000, "no key hides another");
    assert_eq!(back.metadata["same#3000"], 2999);
}

#[test]
fn the_last_id_given_counts_as_in_the_event_model() {
    assert_eq!(line(r#"{"id":"a","id":null}"#).id(), "t:1");
    assert_eq!(line(r#"{"id":null,"id":"b"}"#).id(), "b");
}

/// A JSON value as generated: objects may repeat keys, numbers keep their text.
#[derive(Debug, Clone)]
enum J {
    Str(String),
    Num(&'static str),
    Bool(bool),
    Null,
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

const NUMBERS: [&str; 14] = [
    "0",
    "-0",
    "12",
    "-7",
    "1.5",
    "1e2",
    "1E-2",
    "77",
    "1770.0",
    "12345678901234567890",
    "-9223372036854775808",
    "3.14e10",
    "0.0000077",
    "770000000000000000000000",
];

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("sec".to_string()),
            Just("77".to_string()),
            Just("é".to_string()),
            Just("\u{1F600}".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\n".to_string()),
            Just("/".to_string()),
            "[a-z ]{1,4}",
        ],
        0..5,
    )
    .prop_map(|parts| parts.concat())
}

fn value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        text().prop_map(J::Str),
        proptest::sample::select(&NUMBERS[..]).prop_map(J::Num),
        any::<bool>().prop_map(J::Bool),
        Just(J::Null),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            proptest::collection::vec((text(), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// A line: some event fields (either spelling), metadata, unknown keys.
fn event_line() -> impl Strategy<Value = (Vec<(String, J)>, u64)> {
    let field = prop_oneof![
        Just("orgId"),
        Just("org_id"),
        Just("userId"),
        Just("user_id"),
        Just("deviceId"),
        Just("sessionId"),
        Just("event_type"),
        Just("source"),
    ];
    let created = prop_oneof![
        Just("2026-01-02T03:04:05Z"),
        Just("2026-01-02T03:04:05.123456+02:00"),
        Just("2026-01-02t03:04:05-00:30"),
        Just("yesterday"),
    ];
    (
        proptest::collection::vec(
            (field, prop_oneof![8 => text().prop_map(J::Str), 2 => Just(J::Null), 1 => Just(J::Num("5"))]),
            0..4,
        ),
        created,
        prop_oneof![
            12 => proptest::collection::vec((text(), value()), 0..6).prop_map(J::Obj),
            1 => Just(J::Arr(Vec::new())),
            1 => Just(J::Null),
        ],
        proptest::collection::vec(("x_[a-z]{1,3}", value()), 0..3),
        any::<u64>(),
    )
        .prop_map(|(fields, created, metadata, unknown, seed)| {
            let mut top: Vec<(String, J)> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            top.push(("created_at".into(), J::Str(created.into())));
            top.push(("metadata".into(), metadata));
            top.extend(unknown);
            let mut rng = fastrand::Rng::with_seed(seed);
            rng.shuffle(&mut top);
            (top, seed)
        })
}

/// Writes `j` as JSON, escaping some characters that need no escape and
/// adding whitespace, as `rng` decides.
fn write(j: &J, rng: &mut fastrand::Rng, out: &mut String) {
    let ws = |rng: &mut fastrand::Rng, out: &mut String| {
        if rng.u8(..4) == 0 {
            out.push_str([" ", "\n", "\t ", "\r\n"][rng.usize(..4)]);
        }
    };
    match j {
        J::Str(s) => write_str(s, rng, out),
        J::Num(n) => out.push_str(n),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Null => out.push_str("null"),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                write(item, rng, out);
            }
            out.push(']');
        }
        J::Obj(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                write_str(k, rng, out);
                out.push(':');
                ws(rng, out);
                write(v, rng, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, rng: &mut fastrand::Rng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '/' if rng.bool() => out.push_str("\\/"),
            c if rng.u8(..8) == 0 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn has_duplicate_keys(j: &J) -> bool {
    match j {
        J::Obj(entries) => {
            let mut keys: Vec<&String> = entries.iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.windows(2).any(|w| w[0] == w[1]) || entries.iter().any(|(_, v)| has_duplicate_keys(v))
        }
        J::Arr(items) => items.iter().any(has_duplicate_keys),
        _ => false,
    }
}

/// Every string and key of a line, decoded.
fn texts(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    scan(line, &mut tokens).unwrap();
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Str(s) | Token::Key(s) => Some(s.value(line).into_owned()),
            _ => None,
        })
        .collect()
}

/// Audit records without timestamps, sorted.
fn audit_of(audit: &[crate::audit::AuditRecord]) -> Vec<(String, String, &'static str, String, u32)> {
    let mut out: Vec<_> =
        audit.iter().map(|a| (a.event_id.clone(), a.field_path.clone(), a.part, a.rule_id.clone(), a.count)).collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn the_line_path_agrees_with_the_event_model((top, seed) in event_line()) {
        // `org_id` beside `orgId` is a duplicate too: the event model keeps one.
        let mut names = std::collections::HashSet::new();
        let top_duplicates = !top.iter().all(|(k, _)| match classify(k) {
            Top::Field(i) => names.insert(STRING_FIELDS[i].0.to_string()),
            _ => names.insert(k.clone()),
        });
        let doc = J::Obj(top);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut text = String::new();
        write(&doc, &mut rng, &mut text);
        let limits = EventLimits::default();
        let now = chrono::Utc::now();
        let model = Event::from_json_line_with_id(&text, UnknownFields::Preserve, now);
        let fast = LineRecord::parse(&text, "t:1".into(), UnknownFields::Preserve, &limits);
        let duplicates = top_duplicates || has_duplicate_keys(&doc);
        if !duplicates {
            prop_assert_eq!(model.is_ok(), fast.is_ok(), "{} {:?}", text, fast);
        }
        let (Ok((_, event)), Ok(fast)) = (model, fast) else { return Ok(()) };
        let slow = chain().redact(vec![Record { id: "t:1".into(), event }], &mut Packed::default());
        let fast = chain().redact(vec![fast], &mut Packed::default());
        let out = fast.passed[0].text().to_string();
        // Nothing found is left anywhere, duplicates included.
        for t in texts(&out) {
            prop_assert!(!t.contains("sec"), "{} left in {}", t, out);
        }
        if fast.audit.is_empty() {
            prop_assert_eq!(&out, text.trim(), "a line without findings is written as read");
        }
        if !duplicates {
            prop_assert_eq!(&fast.findings_per_rule, &slow.findings_per_rule);
            prop_assert_eq!(audit_of(&fast.audit), audit_of(&slow.audit));
            let mut back = Event::from_json_line_with_id(&out, UnknownFields::Preserve, now).unwrap().1;
            let expected = slow.passed[0].event();
            back.created_at = expected.created_at;
            prop_assert_eq!(&back, expected, "{}", out);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Raw-log entries redacted on their metadata text agree with the same
    /// entries decoded into events; an entry without findings is written
    /// back byte for byte.
    #[test]
    fn raw_log_entries_agree_with_the_event_model((top, seed) in event_line()) {
        use crate::event::codec;
        use crate::transforms::redact::EncodedRecord;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut text = String::new();
        write(&J::Obj(top), &mut rng, &mut text);
        let Ok((_, event)) = Event::from_json_line_with_id(&text, UnknownFields::Preserve, chrono::Utc::now()) else {
            return Ok(());
        };
        let record = Record { id: "t:1".into(), event };
        let bytes = codec::event_bytes(&record, 7);
        let slow = chain().redact(vec![record], &mut Packed::default());
        let raw = codec::decode_raw_event(&bytes).unwrap().unwrap();
        let fast = chain().redact(vec![EncodedRecord::new(raw).unwrap()], &mut Packed::default());
        prop_assert_eq!(&fast.findings_per_rule, &slow.findings_per_rule);
        prop_assert_eq!(audit_of(&fast.audit), audit_of(&slow.audit));
        let out = fast.passed[0].to_bytes();
        if fast.audit.is_empty() {
            prop_assert_eq!(&out, &bytes);
        }
        let codec::Entry::Event { record: back, origin } = codec::decode(&out).unwrap() else { panic!("an event") };
        prop_assert_eq!(origin, 7);
        prop_assert_eq!(&back, slow.passed[0].record());
    }
}
