//! The dead-letter store and the logs under it, through the `wasmtel`
//! binary: `dlq list | show | replay` (idempotent by dead letter and event
//! id), rotation of a full store (counted), `status`, a sink that is behind
//! a full log with `when_full = "dead_letter"`, a corrupted log record
//! dead-lettered with its reason, a torn tail cut, and a state folder left
//! by an earlier version taken over without loss.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common::*;

fn wasmtel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmtel")).args(args).env("WASMTEL_LOG", "error").output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A run config reading `in.jsonl` into `out.jsonl` through `redactor`
/// (a module path) with `behavior`.
fn run_config(dir: &Path, redactor: &str, extra: &str) -> String {
    let text = format!(
        "state_dir = \"state\"\n{extra}\n[events]\npath = \"in.jsonl\"\n[[redactors]]\nname = \"r\"\nmodule = \"{redactor}\"\n[redactors.config]\nbehavior = \"markers\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn dead_letters_are_listed_shown_and_replayed_once_after_a_fix() {
    let dir = tempdir();
    let lines: Vec<String> = (0..10)
        .map(|i| {
            let m = if i % 3 == 0 { "PANIC" } else { "fine" };
            json!({"id": format!("e{i}"), "orgId": "o", "metadata": {"m": m, "note": "secret"}}).to_string()
        })
        .chain(["not json".to_string()])
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), lines.join("\n") + "\n").unwrap();
    let config = run_config(dir.path(), wasmtel::guests::REDACTOR_HOSTILE, "");
    ok(wasmtel(&["run", "--once", "--config", &config]));
    assert_eq!(read_jsonl(&dir.path().join("out.jsonl")).len(), 6);

    let listed = ok(wasmtel(&["dlq", "list", "--config", &config, "--json"]));
    let letters: Vec<Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 5, "{listed}");
    let redact: Vec<&Value> = letters.iter().filter(|l| l["stage"] == "redact").collect();
    assert_eq!(redact.len(), 4);
    assert!(letters.iter().all(|l| l["replayed"] == false));
    let table = ok(wasmtel(&["dlq", "list", "--config", &config, "--reason", "trap"]));
    assert_eq!(table.lines().count(), 4, "{table}");
    let id = redact[0]["id"].as_u64().unwrap().to_string();
    let shown: Value = serde_json::from_str(&ok(wasmtel(&["dlq", "show", "--config", &config, &id]))).unwrap();
    assert_eq!(shown["event"]["metadata"]["m"], "PANIC", "the event as received");
    assert!(shown["reason"].as_str().unwrap().contains("trap"), "{shown}");
    let status = ok(wasmtel(&["status", "--config", &config, "--json"]));
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["dead_letters"], 5);

    // The redactor is fixed (here: the builtin one), the dead letters are
    // replayed, and the next run delivers them — once.
    let fixed = run_config(dir.path(), "builtin:redactor-pii", "");
    let out = wasmtel(&["dlq", "replay", "--config", &fixed, "--reason", "redact"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 4 event(s)"), "{out:?}");
    let again = wasmtel(&["dlq", "replay", "--config", &fixed, "--reason", "redact"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("replayed 0 event(s)"), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("4 already replayed"), "{again:?}");
    ok(wasmtel(&["run", "--once", "--config", &fixed]));
    let out_ids: Vec<String> =
        read_jsonl(&dir.path().join("out.jsonl")).iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    let mut sorted = out_ids.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>(), "every event, once");
    let listed = ok(wasmtel(&["dlq", "list", "--config", &fixed, "--json"]));
    let replayed = listed.lines().filter(|l| l.contains("\"replayed\":true")).count();
    assert_eq!(replayed, 4);
}

#[test]
fn a_full_dead_letter_store_rotates_and_counts_what_it_dropped() {
    let dir = tempdir();
    let lines: String = (0..400).map(|i| format!("not json {i} {}\n", "x".repeat(200))).collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    let config =
        run_config(dir.path(), "builtin:redactor-pii", "[dead_letter]\nmax_bytes = 16384\nsegment_bytes = 4096");
    ok(wasmtel(&["run", "--once", "--config", &config]));
    let status: Value = serde_json::from_str(&ok(wasmtel(&["status", "--config", &config, "--json"]))).unwrap();
    let kept = status["dead_letters"].as_u64().unwrap();
    let dropped = status["dead_letters_dropped"].as_u64().unwrap();
    assert_eq!(kept + dropped, 400, "{status}");
    assert!(dropped > 0 && status["dead_letter_bytes"].as_u64().unwrap() <= 16384 + 4096, "{status}");
    let listed = ok(wasmtel(&["dlq", "list", "--config", &config, "--json"]));
    let first: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert!(first["raw"].as_str().unwrap().starts_with(&format!("not json {dropped} ")), "the oldest went first");
}

#[test]
fn a_corrupt_record_is_dead_lettered_and_a_torn_tail_is_cut() {
    let dir = tempdir();
    let lines: String =
        (0..30).map(|i| format!("{}\n", json!({"id": format!("e{i}"), "orgId": "o", "metadata": {"i": i}}))).collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    // A Loki sink that is down keeps the events in the redacted log.
    let config = run_config(
        dir.path(),
        "builtin:redactor-pii",
        "[pipeline]\ndrain_timeout_ms = 500\n[[sinks]]\nkind = \"loki\"\nendpoint = \"http://127.0.0.1:9\"\n[sinks.retry]\nmax_attempts = 1",
    );
    ok(wasmtel(&["run", "--once", "--config", &config]));
    let seg_dir = dir.path().join("state/log/redacted");
    let segment = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let len = bytes.len();
    // Flip a byte in the middle (one record's payload) and append a torn
    // half-record at the end, as a crash mid-write would leave.
    bytes[len / 2] ^= 0xff;
    let head = bytes[..30].to_vec();
    bytes.extend_from_slice(&head);
    std::fs::write(&segment, &bytes).unwrap();

    // The Loki sink now works (pointing at a JSONL file instead).
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "kind = \"loki\"\nendpoint = \"http://127.0.0.1:9\"",
        "kind = \"jsonl\"\nname = \"loki\"\npath = \"loki.jsonl\"",
    );
    let text = text.replace("[sinks.retry]\nmax_attempts = 1", "");
    std::fs::write(&config, text).unwrap();
    ok(wasmtel(&["run", "--once", "--config", &config]));
    let delivered = read_jsonl(&dir.path().join("loki.jsonl")).len();
    let dead = dead_letters(&dir.path().join("state"));
    let log_dead: Vec<&Value> = dead.iter().filter(|d| d["stage"] == "log").collect();
    assert_eq!(log_dead.len(), 1, "{dead:#?}");
    assert!(log_dead[0]["reason"].as_str().unwrap().contains("unreadable bytes in the redacted log"), "{dead:#?}");
    assert_eq!(delivered, 29, "every other event arrived");
}

#[test]
fn a_state_folder_of_the_earlier_version_is_taken_over_without_loss() {
    let dir = tempdir();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("spool")).unwrap();
    let spooled: String = (0..5)
        .map(|i| format!("{}\n", json!({"id": format!("ingest:{i}"), "event": {"orgId": "o", "userId": "jane@example.com", "metadata": {"i": i}}})))
        .collect();
    std::fs::write(state.join("spool/events.jsonl"), &spooled).unwrap();
    // The first two were processed before the upgrade.
    let consumed: usize = spooled.lines().take(2).map(|l| l.len() + 1).sum();
    std::fs::write(state.join("spool/consumed"), consumed.to_string()).unwrap();
    std::fs::write(
        state.join("dead-letter.jsonl"),
        format!("{}\n", json!({"ts": "2026-11-30T00:00:00Z", "stage": "source", "component": "in", "reason": "old", "eventId": "in:1", "raw": "x"})),
    )
    .unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "").unwrap();
    let config = run_config(dir.path(), "builtin:redactor-pii", "");
    ok(wasmtel(&["run", "--once", "--config", &config]));
    let ids: Vec<String> =
        read_jsonl(&dir.path().join("out.jsonl")).iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["ingest:2", "ingest:3", "ingest:4"]);
    assert!(!std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap().contains("jane@"));
    let dead = dead_letters(&state);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "old");
    assert!(state.join("spool.migrated").exists() && state.join("dead-letter.jsonl.migrated").exists());
}

#[test]
fn a_sink_behind_a_full_log_with_when_full_dead_letter_lets_the_others_go_on() {
    let dir = tempdir();
    let lines: String = (0..1000)
        .map(|i| format!("{}\n", json!({"id": format!("e{i}"), "orgId": "o", "metadata": {"i": i}})))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    let config = run_config(
        dir.path(),
        "builtin:redactor-pii",
        "[log]\nmax_events = 100\nsegment_bytes = 4096\nmax_bytes = 65536\n[pipeline]\ndrain_timeout_ms = 1000\n[[sinks]]\nkind = \"loki\"\nendpoint = \"http://127.0.0.1:9\"\nwhen_full = \"dead_letter\"\n[sinks.retry]\nmax_attempts = 1",
    );
    ok(wasmtel(&["run", "--once", "--config", &config]));
    assert_eq!(read_jsonl(&dir.path().join("out.jsonl")).len(), 1000, "the JSONL sink got everything");
    let state = dir.path().join("state");
    let dead = dead_letters(&state);
    assert!(!dead.is_empty());
    assert!(
        dead.iter().all(|d| d["stage"] == "sink"
            && d["component"] == "loki"
            && d["reason"].as_str().unwrap().contains("when_full")),
        "{:#?}",
        &dead[..2]
    );
    let lag = wasmtel::status::read(&state).unwrap().redacted.readers["loki"].lag;
    assert_eq!(dead.len() as u64 + lag, 1000, "each of Loki's events is dead-lettered or still waiting for it");
}
