//! The HTTP JSON reporter against a real HTTP server on loopback (axum):
//! the body it sends, retries on 5xx/429, no retry on other 4xx, and the
//! `disable_scout` answer stopping every report sink of the process.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};
use wasmtel::config;
use wasmtel::sinks;

use crate::common::*;
use crate::reporting::{report, server_runtime};

/// Answers with the scripted (status, body) pairs, then 200 `{}`; records bodies.
#[derive(Default)]
struct Endpoint {
    answers: Mutex<VecDeque<(u16, Value)>>,
    bodies: Mutex<Vec<Value>>,
}

fn start(rt: &tokio::runtime::Runtime, endpoint: Arc<Endpoint>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/report",
        axum::routing::post(move |Json(body): Json<Value>| {
            let endpoint = endpoint.clone();
            async move {
                endpoint.bodies.lock().unwrap().push(body);
                let (status, answer) = endpoint.answers.lock().unwrap().pop_front().unwrap_or((200, json!({})));
                (StatusCode::from_u16(status).unwrap(), Json(answer))
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn sinks_toml(addr: SocketAddr, extra_sinks: &str) -> String {
    format!(
        r#"
[[sinks]]
kind = "http_report"
url = "http://{addr}/report"
application = "wasmtel-test"
[sinks.metadata]
deployment = "ci"
collector = "static value loses"
[sinks.retry]
initial_backoff_ms = 10
max_backoff_ms = 50
{extra_sinks}"#
    )
}

fn build(dir: &std::path::Path, toml: &str) -> Vec<wasmtel::sinks::report::ReportSink> {
    let loaded = config::parse(&dir.join("test.toml"), toml).unwrap();
    sinks::report::build(&loaded.config.sinks, dir, None).unwrap()
}

#[test]
fn posts_the_report_and_retries_server_errors() {
    let dir = tempdir();
    let rt = server_runtime();
    let endpoint = Arc::new(Endpoint::default());
    endpoint.answers.lock().unwrap().extend([
        (503, json!({})),
        (429, json!({})),
        (200, json!({"latest_version": "99.0.0"})),
    ]);
    let addr = start(&rt, endpoint.clone());
    let mut sinks = build(dir.path(), &sinks_toml(addr, ""));
    send(&mut sinks[0], &report(3));
    let bodies = endpoint.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3, "503 and 429 are retried, then delivered once");
    let body = &bodies[2];
    let system_id = std::fs::read_to_string(dir.path().join("system-id")).unwrap();
    assert_eq!(body["install_id"], system_id.trim());
    assert_eq!(body["application"], "wasmtel-test");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["metadata"]["deployment"], "ci", "static metadata merged in");
    assert_eq!(body["metadata"]["collector"], "test", "the report's own value wins on a shared key");
    assert_eq!(body["metadata"]["counts"].as_array().unwrap().len(), 3);
    assert_eq!(body["metadata"]["base"]["version"], "v9.9.9");
    assert!(
        std::fs::read_dir(dir.path().join("outbox/http_report/pending")).unwrap().next().is_none(),
        "nothing left behind"
    );
}

#[test]
fn client_errors_are_not_retried() {
    let dir = tempdir();
    let rt = server_runtime();
    let endpoint = Arc::new(Endpoint::default());
    endpoint.answers.lock().unwrap().push_back((400, json!({"error": "bad"})));
    let addr = start(&rt, endpoint.clone());
    let mut sinks = build(dir.path(), &sinks_toml(addr, ""));
    send(&mut sinks[0], &report(3));
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 1);
    let rejected: Vec<_> = std::fs::read_dir(dir.path().join("outbox/http_report/rejected")).unwrap().collect();
    assert_eq!(rejected.len(), 1, "kept for inspection");
}

#[test]
fn disable_scout_stops_all_reporting_for_the_process() {
    let dir = tempdir();
    let rt = server_runtime();
    let endpoint = Arc::new(Endpoint::default());
    endpoint.answers.lock().unwrap().push_back((200, json!({"disable_scout": true})));
    let addr = start(&rt, endpoint.clone());
    // A gRPC reporter in the same pipeline, pointing at a scripted server.
    let script = Arc::new(crate::reporting::Script::default());
    let grpc = crate::reporting::start_scripted(&rt, script.clone());
    let toml = sinks_toml(addr, &format!("\n[[sinks]]\nkind = \"zitadel\"\nendpoint = \"http://{grpc}\"\n"));
    let mut sinks = build(dir.path(), &toml);
    for r in [report(2), report(3)] {
        for sink in &mut sinks {
            send(sink, &r);
        }
    }
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 1, "nothing after the endpoint asked to stop");
    assert_eq!(
        script.base_calls.load(Ordering::SeqCst) + script.counts_calls.load(Ordering::SeqCst),
        0,
        "the other report sink stopped too"
    );
}
