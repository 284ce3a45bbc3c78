//! A misbehaving guest (`guest/redactor-hostile`) never takes the host down
//! and never lets un-redacted data out: every failure fails its batch closed,
//! and the same module serves the next batch.

use std::sync::Arc;

use serde_json::json;
use wasmtel::config::Limits;
use wasmtel::runtime::GuestFailure;
use wasmtel::transforms::redact::FindingSource;

use crate::common::*;

const LIMITS: Limits = Limits { deadline_ms: 50, memory_mib: 16 };

fn hostile(behavior: &str) -> Arc<dyn FindingSource> {
    Arc::new(redactor("hostile", wasmtel::guests::REDACTOR_HOSTILE, LIMITS, &[("behavior", behavior)]))
}

fn events_with_secret() -> Vec<wasmtel::event::Event> {
    vec![
        event(json!({"orgId": "o1", "userId": "añb secret", "metadata": {"note": "the secret is here"}})),
        event(json!({"orgId": "o2", "metadata": {"k": "another secret"}})),
    ]
}

/// Asserts every event failed closed with `expected`, coming back untouched.
fn assert_fails_closed(behavior: &str, expected: fn(&GuestFailure) -> bool) {
    let module = hostile(behavior);
    let input = events_with_secret();
    let failed = redact_with(module.clone(), input.clone()).expect_err("the events must fail");
    // Each event is tried alone; `mid-char` only has a character to split
    // in the first one, so the second (alone) gets a valid finding and passes.
    let rejected = if behavior == "mid-char" { 1 } else { input.len() };
    assert_eq!(failed.rejected.len(), rejected, "{behavior}: each event tried alone");
    assert_eq!(failed.passed.len(), input.len() - rejected, "{behavior}");
    for (r, original) in failed.rejected.iter().zip(&input) {
        assert!(expected(&r.failure), "{behavior}: unexpected failure {:?}", r.failure);
        assert_eq!(&r.record.event, original, "{behavior}: the dead-letter payload is the untouched input");
        assert_eq!(r.module, "hostile");
    }
    // The host and the module keep serving: the next call fails the same
    // way (the guest is still hostile) instead of crashing or hanging.
    let again = redact_with(module, input).expect_err("still failing closed");
    assert_eq!(again.rejected[0].failure.kind(), failed.rejected[0].failure.kind());
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    assert_fails_closed("loop", |f| matches!(f, GuestFailure::Timeout { deadline_ms: 50 }));
}

#[test]
fn memory_hog_is_capped() {
    assert_fails_closed("hog", |f| matches!(f, GuestFailure::MemoryCap { cap_mib: 16 }));
}

#[test]
fn panic_is_a_contained_trap() {
    assert_fails_closed("panic", |f| matches!(f, GuestFailure::Trap(_)));
}

#[test]
fn plugin_error_fails_closed() {
    assert_fails_closed("error", |f| matches!(f, GuestFailure::PluginError(m) if m.contains("refuses")));
}

#[test]
fn invalid_spans_are_rejected() {
    for behavior in ["out-of-range", "overlap", "mid-char", "bad-field"] {
        assert_fails_closed(behavior, |f| matches!(f, GuestFailure::InvalidFinding(_)));
    }
}

#[test]
fn a_trapping_batch_does_not_poison_the_next() {
    let module = hostile("panic-on-marker");
    let bad = vec![event(json!({"orgId": "o", "metadata": {"m": "PANIC secret"}}))];
    let failed = redact_with(module.clone(), bad).unwrap_err();
    assert!(matches!(failed.rejected[0].failure, GuestFailure::Trap(_)));
    let good = vec![event(json!({"orgId": "o", "metadata": {"m": "a secret word"}}))];
    let passed = redact_with(module, good).expect("a fresh instance serves the next batch");
    assert_eq!(passed.passed[0].event().metadata["m"], "a <WORD> word");
}

#[test]
fn well_behaved_mode_redacts() {
    let passed = redact_with(hostile("none"), events_with_secret()).unwrap();
    for e in &passed.passed {
        assert!(!e.event().to_json_line().contains("secret"));
    }
    assert_eq!(passed.findings_per_rule["word"], 3);
}

/// The whole run: a hostile module in the stage graph puts nothing
/// un-redacted in the sink, dead-letters every event it fails on with the
/// reason, and the run completes.
#[test]
fn pipeline_with_hostile_guests_leaks_nothing() {
    for behavior in ["loop", "hog", "panic", "out-of-range", "overlap", "mid-char", "error"] {
        let dir = tempdir();
        let events: String = (0..10)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"orgId": "o", "userId": format!("u{i}"), "metadata": {"m": format!("secret {i} ü")}})
                )
            })
            .collect();
        std::fs::write(dir.path().join("in.jsonl"), events).unwrap();
        let toml = format!(
            r#"
state_dir = "state"
[limits]
deadline_ms = 50
memory_mib = 16
[events]
path = "in.jsonl"
[[redactors]]
name = "hostile"
module = "{module}"
batch_size = 4
[redactors.config]
behavior = "{behavior}"
[[sinks]]
kind = "jsonl"
path = "out.jsonl"
"#,
            module = wasmtel::guests::REDACTOR_HOSTILE
        );
        std::fs::write(dir.path().join("wasmtel.toml"), toml).unwrap();
        let loaded = wasmtel::config::load(&dir.path().join("wasmtel.toml")).unwrap();
        let stats = run_once(&loaded);
        assert_eq!(stats.events_out, 0, "{behavior}");
        assert_eq!(stats.dead_redact, 10, "{behavior}: all 10 events dead-lettered");
        let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap_or_default();
        assert!(!out.contains("secret"), "{behavior}: un-redacted data reached the sink");
        let dead = dead_letters(&dir.path().join("state"));
        assert_eq!(dead.len(), 10);
        assert!(dead.iter().all(|d| d["stage"] == "redact"
            && d["component"] == "hostile"
            && !d["reason"].as_str().unwrap().is_empty()));
    }
}

/// One bad event among many: only it is dead-lettered (with the reason),
/// every other event of its batch is delivered, redacted — for every kind
/// of guest failure.
#[test]
fn only_the_events_a_guest_fails_on_are_dead_lettered() {
    let module = Arc::new(redactor(
        "markers",
        wasmtel::guests::REDACTOR_HOSTILE,
        Limits { deadline_ms: 50, memory_mib: 16 },
        &[("behavior", "markers")],
    ));
    let mut input: Vec<_> =
        (0..200).map(|i| event(json!({"orgId": "o", "metadata": {"m": format!("secret {i}")}}))).collect();
    let bad = [(7, "PANIC"), (50, "SPIN"), (51, "HOG"), (120, "BADSPAN"), (199, "PANIC")];
    for (i, marker) in bad {
        input[i].metadata.insert("x".into(), json!(marker));
    }
    let chain = wasmtel::transforms::redact::RedactionChain::new(vec![module]);
    let outcome = chain.redact(records(input), &mut wasmtel::transforms::redact::Packed::default());
    let rejected: Vec<(&str, &'static str)> =
        outcome.rejected.iter().map(|r| (r.record.id.as_str(), r.failure.kind())).collect();
    assert_eq!(
        rejected,
        [
            ("test:8", "trap"),
            ("test:51", "timeout"),
            ("test:52", "memory-cap"),
            ("test:121", "invalid-finding"),
            ("test:200", "trap")
        ]
    );
    assert_eq!(outcome.passed.len(), 195);
    for p in &outcome.passed {
        assert!(!p.event().to_json_line().contains("secret"), "{:?}", p.event());
    }
}

#[test]
fn a_core_module_is_refused_with_a_hint() {
    let source = wasmtel::runtime::ModuleSource::from_bytes("core", "core.wasm", Arc::from(&b"\0asm\x01\0\0\0"[..]));
    let err =
        wasmtel::runtime::redactor::RedactorModule::new(runtime(), source, LIMITS, Default::default()).err().unwrap();
    assert!(format!("{err:#}").contains("not a component"), "{err:#}");
}

#[test]
fn a_collector_is_not_a_redactor() {
    let source = wasmtel::runtime::ModuleSource::resolve("c", wasmtel::guests::COLLECTOR_SQL, None).unwrap();
    let err =
        wasmtel::runtime::redactor::RedactorModule::new(runtime(), source, LIMITS, Default::default()).err().unwrap();
    assert!(format!("{err:#}").contains("does not implement the `redactor` world"), "{err:#}");
}

#[test]
fn a_pinned_digest_must_match() {
    let err = wasmtel::runtime::ModuleSource::resolve("h", wasmtel::guests::REDACTOR_HOSTILE, Some(&"0".repeat(64)))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("pins"), "{err:#}");
    let ok = wasmtel::runtime::ModuleSource::resolve("h", wasmtel::guests::REDACTOR_HOSTILE, None).unwrap();
    assert!(wasmtel::runtime::ModuleSource::resolve("h", wasmtel::guests::REDACTOR_HOSTILE, Some(&ok.sha256)).is_ok());
}

#[test]
fn a_module_reaches_only_what_it_was_granted() {
    let probe = |grants: wasmtel::config::ModuleGrants| -> String {
        let source = wasmtel::runtime::ModuleSource::resolve("probe", wasmtel::guests::REDACTOR_HOSTILE, None).unwrap();
        let module = wasmtel::runtime::redactor::RedactorModule::with_grants(
            runtime(),
            source,
            LIMITS,
            config(&[("behavior", "probe")]),
            grants,
        )
        .unwrap();
        let failed = redact_with(Arc::new(module), vec![event(json!({"orgId": "o"}))]).unwrap_err();
        failed.rejected[0].failure.to_string()
    };
    // No ambient authority: no environment, no files.
    let nothing = probe(Default::default());
    assert!(
        nothing.contains("env=None") && nothing.contains("file=None") && nothing.contains("root=None"),
        "{nothing}"
    );

    let dir = tempdir();
    std::fs::write(dir.path().join("secret.txt"), "granted").unwrap();
    let granted = probe(wasmtel::config::ModuleGrants {
        env: vec!["CARGO_PKG_NAME".into()],
        dirs: vec![wasmtel::config::DirGrant { host: dir.path().to_path_buf(), guest: "/grant".into() }],
        ..Default::default()
    });
    assert!(granted.contains("env=Some(\"wasmtel\")") && granted.contains("file=Some(\"granted\")"), "{granted}");
}
