//! The `redactor-pii` component, end to end through the sandbox: one vector
//! per rule (and hard negatives), pseudonym mode, and the labeled corpus in
//! `tests/corpus/` (recall ≥ 97%, hard negatives changed ≤ 2%).

use serde_json::{Value, json};

use crate::common::*;

/// Redacts one `metadata.text` value through the WASM redactor.
fn redact_text(text: &str) -> String {
    redact_texts(&[text]).pop().unwrap()
}

fn redact_texts(texts: &[&str]) -> Vec<String> {
    let events = texts.iter().map(|t| event(json!({"metadata": {"text": t}}))).collect();
    let passed = redact_with(pii_redactor(&[]), events).expect("redaction succeeds");
    passed.passed.iter().map(|e| e.event().metadata["text"].as_str().unwrap().to_string()).collect()
}

#[test]
fn each_rule_replaces_only_the_pii() {
    let cases = [
        ("mail jane.doe+billing@example.com now", "mail <EMAIL> now"),
        ("call +49 151 23456789 today", "call <PHONE> today"),
        ("from 203.0.113.57:443", "from <IPV4>:443"),
        ("peer [2001:db8::1]:8080 closed", "peer [<IPV6>]:8080 closed"),
        ("card 4111 1111 1111 1111 declined", "card <CREDIT_CARD> declined"),
        ("iban GB82 WEST 1234 5698 7654 32 ok", "iban <IBAN> ok"),
        ("ssn 123-45-6789 on file", "ssn <SSN> on file"),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer <TOKEN>"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key <CLOUD_KEY> used"),
        ("dsn postgres://app:s3cr3t@db:5432/main", "dsn postgres://<CREDENTIAL>@db:5432/main"),
    ];
    let inputs: Vec<&str> = cases.iter().map(|(i, _)| *i).collect();
    for (out, (input, expected)) in redact_texts(&inputs).iter().zip(cases) {
        assert_eq!(out, expected, "input: {input}");
    }
}

#[test]
fn jwts_and_obfuscated_pii_are_found() {
    let jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let out = redact_text(&format!("token={jwt}"));
    assert!(!out.contains("eyJ"), "{out}");
    for obfuscated in
        ["john%40example.com", "john [at] example [dot] com", "j\u{200B}ohn@exa\u{200D}mple.com", "john＠example.com"]
    {
        let out = redact_text(&format!("contact {obfuscated} please"));
        assert_eq!(out, "contact <EMAIL> please", "input: {obfuscated}");
    }
    let out = redact_text("tel ０１５１ ２３４５６７８９");
    assert!(!out.contains('２'), "{out}");
}

#[test]
fn hard_negatives_are_untouched() {
    let negatives = [
        "request 550e8400-e29b-41d4-a716-446655440000 done",
        "upgraded to v1.2.3 and 10.0.19045",
        "at 2024-01-15T10:30:00Z took 1500ms",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "order 4111111111111112 shipped",
        "pod api-7d9f8b6c5-x2x9z restarted",
        "std::io::Error at Foo.java:42",
    ];
    for (out, input) in redact_texts(&negatives).iter().zip(negatives) {
        assert_eq!(out, input);
    }
}

#[test]
fn pii_in_keys_and_top_level_fields_is_redacted() {
    let e = event(json!({
        "orgId": "org-1", "userId": "jane@example.com",
        "metadata": {"jane@example.com": {"visits": 3}, "headers": {"authorization": "Bearer abc.def.ghi-123456"}}
    }));
    let passed = redact_with(pii_redactor(&[]), vec![e]).unwrap();
    let out = passed.passed[0].event().to_json_line();
    assert!(!out.contains("jane@example.com") && !out.contains("abc.def.ghi-123456"), "{out}");
    assert_eq!(passed.passed[0].event().user_id, "<EMAIL>");
    assert!(passed.audit.iter().all(|a| !a.field_path.contains("jane")), "audit paths carry no PII");
    assert!(passed.audit.iter().any(|a| a.part == "key" && a.rule_id == "email"));
}

#[test]
fn pseudonyms_are_keyed_joinable_and_carry_the_key_id() {
    let run = |key: &str| -> Vec<String> {
        let module = pii_redactor(&[("mode", "pseudonym"), ("hmac_key", key), ("hmac_key_id", "2026-q4")]);
        let events = vec![
            event(json!({"metadata": {"text": "a jane@example.com"}})),
            event(json!({"metadata": {"text": "b jane@example.com"}})),
        ];
        let passed = redact_with(module, events).unwrap();
        passed.passed.iter().map(|e| e.event().metadata["text"].as_str().unwrap().to_string()).collect()
    };
    let first = run("key-one");
    assert!(first[0].starts_with("a <EMAIL:2026-q4:"), "{}", first[0]);
    assert!(!first[0].contains("jane"));
    assert_eq!(first[0][2..], first[1][2..], "same value, same pseudonym");
    assert_ne!(run("key-two")[0], first[0], "another key, another pseudonym");
}

#[test]
fn pseudonym_mode_without_a_key_fails_closed() {
    let module = pii_redactor(&[("mode", "pseudonym")]);
    let failed = redact_with(module, vec![event(json!({"userId": "jane@example.com"}))]).unwrap_err();
    assert!(failed.rejected[0].failure.to_string().contains("hmac_key"), "{}", failed.rejected[0].failure);
}

fn corpus(name: &str) -> Vec<Value> {
    read_jsonl(&repo().join("tests/corpus").join(name))
}

#[test]
fn corpus_recall_and_precision_through_wasm() {
    let positives = corpus("pii.jsonl");
    let negatives = corpus("negatives.jsonl");
    assert!(positives.len() >= 200 && negatives.len() >= 150, "corpus present");
    let texts: Vec<&str> = positives.iter().map(|p| p["text"].as_str().unwrap()).collect();
    let outputs = redact_texts(&texts);
    let (mut total, mut missed) = (0, Vec::new());
    for (p, out) in positives.iter().zip(&outputs) {
        for value in p["pii"].as_array().unwrap() {
            total += 1;
            let value = value.as_str().unwrap();
            if out.contains(value) {
                missed.push(format!("{value:?} in {out:?}"));
            }
        }
    }
    let recall = 1.0 - missed.len() as f64 / total as f64;
    assert!(recall >= 0.97, "recall {recall:.3}; missed:\n{}", missed.join("\n"));

    let texts: Vec<&str> = negatives.iter().map(|n| n["text"].as_str().unwrap()).collect();
    let outputs = redact_texts(&texts);
    let changed: Vec<_> = texts.iter().zip(&outputs).filter(|(a, b)| *a != *b).collect();
    let rate = changed.len() as f64 / texts.len() as f64;
    assert!(rate <= 0.02, "{:.3} of hard negatives changed: {changed:?}", rate);
}
