//! The `wasmtel` binary: the quickstart job, one-shot `redact`, and clear
//! configuration errors.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

fn wasmtel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmtel"));
    cmd.env("WASMTEL_LOG", "warn");
    cmd
}

/// The quickstart config, with its state folder moved to `dir`.
fn quickstart_in(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/quickstart.toml")).unwrap();
    let examples = repo().join("examples");
    let text = text
        .replace("../target/quickstart-state", &dir.join("state").display().to_string())
        .replace(
            "\"sample-events.jsonl\"",
            &format!("{:?}", examples.join("sample-events.jsonl").display().to_string()),
        )
        .replace(
            "\"sample-data/seed.sql\"",
            &format!("{:?}", examples.join("sample-data/seed.sql").display().to_string()),
        );
    let path = dir.join("quickstart.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn quickstart_runs_the_main_job() {
    let dir = tempdir();
    let config = quickstart_in(dir.path());
    let out = wasmtel().args(["run", "--once", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reports: Vec<_> = lines.iter().filter(|l| l.get("report").is_some()).collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["report"]["counts"].as_array().unwrap().len(), 27);
    let events: Vec<_> = lines.iter().filter(|l| l.get("report").is_none()).collect();
    assert_eq!(events.len(), 58, "60 sample lines, 2 malformed");
    let all = events.iter().map(|e| e.to_string()).collect::<String>();
    for pii in ["@example.com", "4111 1111 1111 1111", "4111111111111111", "GB82WEST12345698765432"] {
        assert!(!all.contains(pii), "{pii} leaked to stdout");
    }
    assert!(stderr.contains("events in:        60") && stderr.contains("dead-lettered:    2"), "{stderr}");
    let dead = dead_letters(&dir.path().join("state"));
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d["stage"] == "source"));
    let audit = read_jsonl(&dir.path().join("state/audit.jsonl"));
    assert!(!audit.is_empty());
    for record in &audit {
        for key in ["eventId", "module", "moduleSha256", "ruleId", "fieldPath", "action", "count"] {
            assert!(record.get(key).is_some(), "audit record lacks {key}: {record}");
        }
        assert!(!record.to_string().contains("@example.com"), "audit holds a value: {record}");
    }
    let file_events = read_jsonl(&dir.path().join("state/events.jsonl"));
    assert_eq!(file_events.len(), 58);
    // A JSONL sink writes the event model (shape = "event", the default):
    // every line has its id first and a createdAt, whatever the input had.
    for e in &file_events {
        let first = e.as_object().unwrap().keys().next().unwrap();
        assert_eq!(first, "id", "{e}");
        assert!(e["createdAt"].is_string(), "{e}");
    }
}

/// `wasmtel redact` with the builtin redactor over `input`, state in `dir`:
/// its standard output and standard error (it must succeed).
fn redact(dir: &std::path::Path, input: &str) -> (String, String) {
    let mut child = wasmtel()
        .args(["redact", "--module", "builtin:redactor-pii", "--state-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn redact_changes_only_the_pii_and_keeps_the_shape() {
    let dir = tempdir();
    let lines = [
        r#"{"org_id":"o1","created_at":"2026-01-02T03:04:05+02:00","metadata":{"z":1.50e3,"a":[true,null],"note":"mail jane.doe@example.com now"}}"#,
        r#"  { "orgId" : "o2",  "metadata" : {"n": 10, "msg":"nothing to see", "esc":"café \/"} }"#,
        r#"{"orgId":"o3","extra":{"ip":"192.0.2.1"},"metadata":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#,
    ];
    let (stdout, stderr) = redact(dir.path(), &(lines.join("\n") + "\n"));
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got[0], lines[0].replace("jane.doe@example.com", "<EMAIL>"), "only the e-mail changes");
    assert_eq!(got[1], lines[1].trim(), "a line without PII is written as read");
    assert_eq!(got[2], lines[2].replace("192.0.2.1", "<IPV4>"), "an unknown top-level field is scanned too");
    assert!(stderr.contains("3 in, 3 out, 0 dead-lettered"), "{stderr}");
    let audit = read_jsonl(&dir.path().join("audit.jsonl"));
    let paths: Vec<&str> = audit.iter().map(|a| a["fieldPath"].as_str().unwrap()).collect();
    assert_eq!(paths, ["metadata.note", "metadata.extra.ip"], "audit paths in the event model's names");
}

#[test]
fn redact_keeps_order_and_dead_letters_bad_lines() {
    let dir = tempdir();
    let input = "{\"orgId\":\"1\",\"userId\":\"a@example.com\"}\nnot json\n{\"orgId\":\"2\"}\n{\"orgId\":\"3\",\"metadata\":{\"ip\":\"192.0.2.1\"}}\n";
    let (stdout, stderr) = redact(dir.path(), input);
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let orgs: Vec<_> = lines.iter().map(|l| l["orgId"].as_str().unwrap()).collect();
    assert_eq!(orgs, ["1", "2", "3"]);
    assert_eq!(lines[0]["userId"], "<EMAIL>");
    assert_eq!(lines[2]["metadata"]["ip"], "<IPV4>");
    assert!(stderr.contains("4 in, 3 out, 1 dead-lettered"), "{stderr}");
    assert_eq!(dead_letters(dir.path()).len(), 1);
}

fn check(toml: &str) -> String {
    let dir = tempdir();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = wasmtel().args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success(), "config {toml:?} should be rejected");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_file_key_and_expectation() {
    let err = check("[limits]\ndeadline_ms = \"fast\"\n");
    assert!(err.contains("bad.toml") && err.contains("limits.deadline_ms") && err.contains("expected"), "{err}");
    let err = check("[limits]\ndeadline_ms = 0\n");
    assert!(err.contains("limits.deadline_ms") && err.contains("1 to 600000"), "{err}");
    let err = check("[[collectors]]\nname = \"c\"\nmodule = \"builtin:collector-sql\"\nsources = [\"nope\"]\n");
    assert!(err.contains("collectors[0].sources[0]") && err.contains("no data source named"), "{err}");
    let err = check("[[collectors]]\nname = \"c\"\nmodule = \"builtin:collector-sql\"\nschedule = \"sometimes\"\n");
    assert!(err.contains("collectors[0].schedule") && err.contains("every 24h"), "{err}");
    let err = check("[[redactors]]\nname = \"r\"\nmodule = \"missing.wasm\"\n");
    assert!(err.contains("redactors[0].module") && err.contains("cannot read"), "{err}");
    let err = check("[[redactors]]\nname = \"r\"\nmodule = \"builtin:redactor-pii\"\nsha256 = \"abc\"\n");
    assert!(err.contains("redactors[0].sha256") && err.contains("64 hex"), "{err}");
    let err = check("[events]\npath = \"x.jsonl\"\n");
    assert!(err.contains("redactors") && err.contains("un-redacted"), "{err}");
    let err = check("unknown_key = 1\n");
    assert!(err.contains("unknown field") && err.contains("unknown_key"), "{err}");
    let err = check("[[sinks]]\nkind = \"carrier-pigeon\"\n");
    assert!(err.contains("sinks[0]") && err.contains("carrier-pigeon"), "{err}");
    let err = check("this is not toml");
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn test_module_runs_golden_vectors() {
    let vectors = repo().join("guest/redactor-pii/vectors.jsonl");
    let out = wasmtel()
        .args(["test-module", "--module", "builtin:redactor-pii", "--vectors"])
        .arg(&vectors)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("15 passed, 0 failed"), "{stdout}");

    let dir = tempdir();
    let wrong = dir.path().join("wrong.jsonl");
    std::fs::write(&wrong, "{\"name\":\"claims no redaction\",\"input\":{\"userId\":\"a@example.com\"},\"expect\":{\"userId\":\"a@example.com\"}}\n").unwrap();
    let out =
        wasmtel().args(["test-module", "--module", "builtin:redactor-pii", "--vectors"]).arg(&wrong).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("FAIL claims no redaction: `userId`"), "{stdout}");
}

#[test]
fn config_errors_point_at_the_line() {
    let err = check("[limits]\ndeadline_ms = 5\n\n[limits]\nmemory_mib = 3\n");
    assert!(err.contains("line 4"), "{err}");
    let err = check("state_dir = \"s\"\n[limits]\ndeadline_ms = \"soon\"\n");
    assert!(err.contains("limits.deadline_ms") && err.contains("line 3"), "{err}");
}
