//! Input that is hostile yet valid — far-future timestamps, deep or wide
//! metadata, huge keys, bad ids, 4 MiB pathological requests, a file mixing
//! good lines with poison ones — against a real `wasmtel serve` over gRPC
//! and a real `wasmtel redact`: it is refused naming the field and the
//! limit, or processed; everything answered OK is delivered or
//! dead-lettered with a reason; good events are never taken down with bad
//! ones; the host keeps serving.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tonic::Code;
use wasmtel::proto::ingest as pb;
use wasmtel::proto::ingest::telemetry_service_client::TelemetryServiceClient;

use crate::common::*;
use crate::reporting::server_runtime;

fn ev(org: &str, metadata: &[u8]) -> pb::TelemetryEvent {
    pb::TelemetryEvent {
        org_id: org.into(),
        user_id: "jane@example.com".into(),
        event_type: "login".into(),
        source: "sdk".into(),
        metadata: metadata.to_vec(),
        ..Default::default()
    }
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn out_of_range_and_oversized_events_are_refused_naming_the_field_and_the_limit() {
    let dir = tempdir();
    let addr = free_port();
    let _server = serve(&serve_config(dir.path(), addr), addr);
    let rt = server_runtime();
    let refusals = rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        let mut cases: Vec<(&str, pb::TelemetryEvent)> = Vec::new();
        let mut far = ev("o", b"{}");
        far.created_at = Some(prost_types::Timestamp { seconds: 253_402_300_800, nanos: 0 }); // year 10000
        cases.push(("year 10000", far));
        let mut early = ev("o", b"{}");
        early.created_at = Some(prost_types::Timestamp { seconds: -62_135_596_801, nanos: 0 }); // year 0
        cases.push(("year 0", early));
        cases.push(("126 levels", ev("o", nested(126).as_bytes())));
        let wide_key = json!({"k".repeat(50_000): {"a": 1}}).to_string();
        cases.push(("a 50 KB key", ev("o", wide_key.as_bytes())));
        let members: serde_json::Map<String, Value> = (0..20_000).map(|i| (format!("m{i}"), json!(i))).collect();
        cases.push(("20,000 members", ev("o", json!({"k": members}).to_string().as_bytes())));
        cases.push(("a 300 KB value", ev("o", json!({"v": "x".repeat(300_000)}).to_string().as_bytes())));
        let mut long_user = ev("o", b"{}");
        long_user.user_id = "u".repeat(300_000);
        cases.push(("a 300 KB user id", long_user));
        let mut bad_id = ev("o", b"{}");
        bad_id.id = "has spaces and ünïcode".into();
        cases.push(("a bad id", bad_id));
        let mut refusals = Vec::new();
        for (name, bad) in cases {
            // A good event rides along: the request is refused whole.
            let events = vec![ev("o", b"{\"ok\":true}"), bad];
            let err = client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events }).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err:?}");
            refusals.push((name, err.message().to_string()));
        }
        client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("after", b"{}")) }).await.unwrap();
        refusals
    });
    let expect = [
        ("year 10000", "events[1].created_at: year 10000 is outside 1 to 9999"),
        ("year 0", "events[1].created_at: year 0 is outside 1 to 9999"),
        ("126 levels", "nested deeper than 64 levels"),
        ("a 50 KB key", "a key of 50000 bytes exceeds the limit of 1024 bytes"),
        ("20,000 members", "more than 10000 keys and values"),
        ("a 300 KB value", "300000 bytes exceed the limit of 262144 bytes"),
        ("a 300 KB user id", "events[1].user_id: 300000 bytes exceed the limit of 262144 bytes"),
        ("a bad id", "events[1].id: expected 1 to 128 characters"),
    ];
    for ((name, message), (_, want)) in refusals.iter().zip(expect) {
        assert!(message.contains(want), "{name}: {message:?} should contain {want:?}");
        assert!(message.contains("events[1]"), "{name}: names the event: {message}");
    }
    let out = dir.path().join("out.jsonl");
    wait_for("the event sent after the refusals", || read_jsonl(&out).len() == 1);
    assert_eq!(read_jsonl(&out)[0]["orgId"], "after", "nothing of a refused request was accepted");
}

/// A 4 MiB request of each pathological shape within the limits (many
/// fields, deep and wide, many events with many numbers) is taken and
/// delivered with bounded memory, or refused; the server never dies.
#[test]
fn a_4_mib_pathological_request_is_handled_with_bounded_memory() {
    let dir = tempdir();
    let addr = free_port();
    let server = serve(&serve_config(dir.path(), addr), addr);
    let pid = server.0.id();
    let rt = server_runtime();
    let baseline = rss_mib(pid);
    let accepted = rt.block_on(async {
        let mut client =
            TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap().max_encoding_message_size(8 << 20);
        let mut accepted = 0;
        // (a) 500 events of ~7 KB, each 1,600 small fields: close to 4 MiB,
        //     every event within the limits.
        let fields: serde_json::Map<String, Value> = (0..800).map(|i| (format!("{i}"), json!(i % 10))).collect();
        let wide = json!({"w": fields}).to_string();
        let a: Vec<_> = (0..500).map(|_| ev("wide", wide.as_bytes())).collect();
        // (b) 64 levels deep, each level with 40 keys of 100 bytes.
        let mut deep = json!(1);
        for level in 0..63 {
            let mut m: serde_json::Map<String, Value> =
                (0..40).map(|i| (format!("{level}-{i}-{}", "k".repeat(90)), json!("v"))).collect();
            m.insert("next".into(), deep);
            deep = Value::Object(m);
        }
        let b = vec![ev("deep", deep.to_string().as_bytes())];
        // (c) one event near the 1 MiB limit: four 250 KB strings of e-mails.
        let text = "jane@example.com ".repeat(14_700);
        let c = vec![ev("big", json!({"a": text, "b": text, "c": text, "d": text}).to_string().as_bytes())];
        for events in [a, b, c] {
            let n = events.len() as u32;
            match client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events }).await {
                Ok(r) => {
                    assert_eq!(r.into_inner().accepted, n);
                    accepted += n;
                }
                Err(e) => {
                    assert!(
                        matches!(e.code(), Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange),
                        "{e:?}"
                    )
                }
            }
        }
        accepted
    });
    assert!(accepted >= 500, "the requests within the limits were taken ({accepted})");
    let out = dir.path().join("out.jsonl");
    let state = dir.path().join("state");
    wait_for("every accepted event delivered or dead-lettered", || {
        read_jsonl(&out).len() + dead_letters(&state).len() == accepted as usize
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("jane@example.com"), "no e-mail left");
    let grown = rss_mib(pid) - baseline;
    assert!(grown < 600.0, "the server grew by {grown:.0} MiB for 12 MiB of requests");
    assert!(std::net::TcpStream::connect(addr).is_ok(), "still serving");
}

/// `wasmtel redact` over a file of 200 good events with 13 hostile lines
/// mixed in: the 200 come out in order, redacted; the 13 are dead-lettered,
/// each with its own reason.
#[test]
fn redact_delivers_every_good_event_of_a_file_with_hostile_lines() {
    let dir = tempdir();
    let mut lines: Vec<String> = (0..200)
        .map(|i| {
            json!({"id": format!("good-{i}"), "orgId": "o", "metadata": {"note": format!("a secret {i}")}}).to_string()
        })
        .collect();
    let hostile = [
        json!({"id": "panic", "metadata": {"m": "PANIC"}}).to_string(),
        json!({"id": "spin", "metadata": {"m": "SPIN"}}).to_string(),
        json!({"id": "hog", "metadata": {"m": "HOG"}}).to_string(),
        json!({"id": "badspan", "metadata": {"m": "BADSPAN"}}).to_string(),
        format!("{{\"id\":\"deep\",\"metadata\":{}}}", nested(126)),
        json!({"id": "far", "createdAt": "9999-12-31T23:59:59Z"}).to_string().replace("9999", "+10000"),
        json!({"id": "key", "metadata": {"k".repeat(2000): 1}}).to_string(),
        json!({"id": "value", "metadata": {"v": "x".repeat(300_000)}}).to_string(),
        "{\"id\":\"trunc\",\"metadata\":{".to_string(),
        "[1,2,3]".to_string(),
        json!({"id": "bad id!", "orgId": "o"}).to_string(),
        "{\"id\":\"num\",\"metadata\":{\"n\":1e400}}".to_string(),
        "\u{feff}{\"id\":\"bom\",\"orgId\":\"o\"}".to_string(),
    ];
    for (i, h) in hostile.iter().enumerate() {
        lines.insert(i * 15 + 3, h.clone());
    }
    let input = lines.join("\n") + "\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["redact", "--module", wasmtel::guests::REDACTOR_HOSTILE, "--set", "behavior=markers", "--state-dir"])
        .arg(dir.path())
        .env("WASMTEL_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..200).map(|i| format!("good-{i}")).collect();
    assert_eq!(ids, want, "every good event, in input order");
    let dead = dead_letters(dir.path());
    assert_eq!(dead.len(), 13, "{dead:#?}");
    assert!(dead.iter().all(|d| !d["reason"].as_str().unwrap().is_empty()));
    let redact_stage = dead.iter().filter(|d| d["stage"] == "redact").count();
    assert_eq!(redact_stage, 4, "the four markers failed the guest, alone: {dead:#?}");
    assert!(stderr.contains("213 in, 200 out, 13 dead-lettered"), "{stderr}");
}
