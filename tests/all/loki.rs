//! The Loki sink against the Loki stand-in (`wasmtel::devtools::loki`), and
//! the stand-in's own faithfulness to Loki's validation.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use wasmtel::devtools::loki::{LokiStub, State, handle};

use crate::common::*;
use crate::reporting::server_runtime;

/// A config: builtin redactor, then a Loki sink with `sink` settings,
/// reading `in.jsonl` (with a checkpoint, so [`feed`] can add to it).
fn pipeline(dir: &std::path::Path, endpoint: &str, sink: &str) -> wasmtel::config::LoadedConfig {
    let toml = format!(
        r#"state_dir = "state"
[events]
path = "in.jsonl"
[[redactors]]
name = "pii"
module = "builtin:redactor-pii"
[[sinks]]
kind = "loki"
endpoint = "{endpoint}"
{sink}
[sinks.retry]
initial_backoff_ms = 10
max_backoff_ms = 50
"#
    );
    wasmtel::config::parse(&dir.join("loki.toml"), &toml).unwrap()
}

/// Appends `lines` to the input and runs once over what is new.
fn feed(loaded: &wasmtel::config::LoadedConfig, lines: &str) -> wasmtel::stats::Stats {
    use std::io::Write;
    let path = loaded.file.parent().unwrap().join("in.jsonl");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(lines.as_bytes()).unwrap();
    run_once(loaded)
}

fn events(n: usize, at: chrono::DateTime<Utc>) -> String {
    (0..n)
        .map(|i| {
            let e = json!({"orgId": format!("org-{}", i % 2), "userId": format!("user-{i}@example.com"), "sessionId": format!("s-{i}"),
                "eventType": "login", "source": "sdk", "createdAt": wasmtel::event::format_time(at + Duration::milliseconds(i as i64)),
                "metadata": {"seq": i}});
            format!("{e}\n")
        })
        .collect()
}

#[test]
fn events_arrive_as_streams_with_low_cardinality_labels() {
    for (encoding, extra) in [("protobuf", ""), ("json", "gzip = true\n")] {
        let dir = tempdir();
        let rt = server_runtime();
        let stub = rt.block_on(LokiStub::start()).unwrap();
        let sink = format!(
            "encoding = \"{encoding}\"\n{extra}tenant = \"team-a\"\nstructured_metadata = [\"user_id\", \"session_id\"]\n"
        );
        let p = pipeline(dir.path(), &stub.endpoint(), &sink);
        let stats = feed(&p, &events(20, Utc::now()));
        assert_eq!(stats.events_out, 20, "{encoding}");
        let state = stub.state();
        let labels: Vec<&String> = state.streams.keys().collect();
        assert_eq!(
            labels,
            [
                r#"{event_type="login", job="wasmtel", org_id="org-0", source="sdk"}"#,
                r#"{event_type="login", job="wasmtel", org_id="org-1", source="sdk"}"#
            ]
        );
        let all: Vec<_> = state.streams.values().flatten().collect();
        assert_eq!(all.len(), 20);
        let line: Value = serde_json::from_str(&all[0].line).unwrap();
        assert_eq!(line["userId"], "<EMAIL>", "{encoding}: lines are redacted events");
        assert!(
            all.iter().all(|e| e.structured.iter().any(|(k, v)| k == "session_id" && v.starts_with("s-"))),
            "{encoding}"
        );
        assert!(state.tenants.iter().all(|t| t.as_deref() == Some("team-a")));
    }
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    stub.state().faults.extend([429, 500]);
    let p = pipeline(dir.path(), &stub.endpoint(), "");
    let stats = feed(&p, &events(5, Utc::now()));
    assert_eq!(stub.state().requests, 3, "429, 500, then 204");
    assert_eq!(stub.state().lines().len(), 5);
    assert_eq!(stats.dead_lettered(), 0);
}

#[test]
fn only_the_entries_loki_refuses_are_dead_lettered() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    let p = pipeline(dir.path(), &stub.endpoint(), "");
    let now = Utc::now();
    feed(&p, &events(4, now));
    // Two hours behind the streams' newest entries: Loki refuses these as
    // "too far behind" (the client cannot know), but stores the other stream's.
    let mut late = events(4, now - Duration::hours(2));
    late.push_str(&format!(
        "{}\n",
        json!({"orgId": "org-9", "eventType": "login", "source": "sdk", "metadata": {"seq": 99}})
    ));
    feed(&p, &late);
    let dead = dead_letters(&dir.path().join("state"));
    assert_eq!(dead.len(), 4, "{dead:#?}");
    assert!(
        dead.iter().all(|d| d["stage"] == "sink" && d["reason"].as_str().unwrap().contains("too far behind")),
        "{dead:#?}"
    );
    let state = stub.state();
    assert_eq!(state.lines().len(), 5, "the 4 first events and the valid late one");
}

#[test]
fn oversized_and_old_lines_never_reach_loki() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    let p = pipeline(dir.path(), &stub.endpoint(), "max_line_bytes = 400\n");
    let big = json!({"orgId": "o", "metadata": {"blob": "x".repeat(1000)}});
    let old = json!({"orgId": "o", "createdAt": wasmtel::event::format_time(Utc::now() - Duration::hours(200))});
    feed(&p, &format!("{big}\n{old}\n{}\n", json!({"orgId": "o"})));
    let dead = dead_letters(&dir.path().join("state"));
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("max_line_bytes") && reasons[1].contains("older than Loki accepts"), "{reasons:?}");
    assert_eq!(stub.state().lines().len(), 1);
    assert_eq!(stub.state().refused, 0, "nothing was sent to be rejected");

    let dir = tempdir();
    let p = pipeline(dir.path(), &stub.endpoint(), "max_line_bytes = 400\noversized_lines = \"truncate\"\n");
    feed(&p, &format!("{big}\n"));
    assert!(stub.state().lines().iter().any(|l| l.len() == 400));
}

fn headers(content_type: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    h
}

fn json_push(stream: Value, values: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"streams": [{"stream": stream, "values": values}]})).unwrap()
}

#[test]
fn the_stand_in_validates_like_loki() {
    let now = Utc::now().timestamp_nanos_opt().unwrap().to_string();
    let mut s = State::default();
    let ok = json_push(json!({"job": "x"}), json!([[now, "a"]]));
    assert_eq!(handle(&mut s, &headers(None), &ok).0, StatusCode::BAD_REQUEST, "no Content-Type");
    assert_eq!(handle(&mut s, &headers(Some("application/json")), &ok).0, StatusCode::NO_CONTENT);
    assert_eq!(
        handle(&mut s, &headers(Some("application/json")), &ok).0,
        StatusCode::NO_CONTENT,
        "an exact duplicate is dropped with 204"
    );
    assert_eq!(s.duplicates, 1);
    let empty = serde_json::to_vec(&json!({"streams": []})).unwrap();
    assert_eq!(handle(&mut s, &headers(Some("application/json")), &empty).0, StatusCode::UNPROCESSABLE_ENTITY);
    let numeric = json_push(json!({"job": "x"}), json!([[1, "a"]]));
    assert_eq!(
        handle(&mut s, &headers(Some("application/json")), &numeric).0,
        StatusCode::BAD_REQUEST,
        "numeric timestamps"
    );
    let bad_name = json_push(json!({"1job": "x"}), json!([[now, "a"]]));
    assert_eq!(handle(&mut s, &headers(Some("application/json")), &bad_name).0, StatusCode::BAD_REQUEST);
    let many: serde_json::Map<String, Value> = (0..16).map(|i| (format!("l{i}"), json!("v"))).collect();
    assert_eq!(
        handle(&mut s, &headers(Some("application/json")), &json_push(Value::Object(many), json!([[now, "a"]]))).0,
        StatusCode::BAD_REQUEST
    );
    let long_line = json_push(json!({"job": "x"}), json!([[now, "b".repeat(300 * 1024)], [now, "c"]]));
    let (status, body) = handle(&mut s, &headers(Some("application/json")), &long_line);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("line too long") && body.contains("total ignored: 1 out of 2"), "{body}");
    assert!(s.lines().contains(&"c"), "the valid entry of a partially refused request is stored");
    assert_eq!(handle(&mut s, &headers(Some("application/x-protobuf")), b"not snappy").0, StatusCode::BAD_REQUEST);
}

#[test]
fn the_grafana_dashboard_queries_the_wasmtel_streams() {
    let text = std::fs::read_to_string(repo().join("dashboards/wasmtel-loki.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 4);
    for panel in panels {
        assert_eq!(panel["datasource"]["type"], "loki", "{}", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains(r#"{job="$job""#), "{expr}");
            // Only labels the sink sets are used as stream selectors.
            for label in ["user_id", "session_id", "device_id"] {
                assert!(!expr.contains(&format!("{label}=")), "{expr}");
            }
        }
    }
    let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert!(
        titles.iter().any(|t| t.contains("by event type"))
            && titles.iter().any(|t| t.contains("by rule"))
            && titles.iter().any(|t| t.contains("Errors"))
    );
}
