//! The ingest service (`wasmtel serve`) with a real tonic client over a
//! socket: events reach the sinks redacted, malformed requests are refused
//! whole, a stalled sink turns into RESOURCE_EXHAUSTED instead of growth,
//! acknowledged events survive `kill -9`, and tokens map to organizations.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tonic::Code;
use wasmtel::devtools::loki::LokiStub;
use wasmtel::proto::ingest as pb;
use wasmtel::proto::ingest::telemetry_service_client::TelemetryServiceClient;

use crate::common::*;
use crate::reporting::server_runtime;

pub(crate) fn config(dir: &Path, sinks: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"state_dir = "state"
[ingest]
{extra}
[[redactors]]
name = "pii"
module = "builtin:redactor-pii"
{sinks}
"#
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the service in-process; returns its address and a stopper.
pub(crate) fn start(rt: &tokio::runtime::Runtime, path: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let loaded = wasmtel::config::load(path).unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        wasmtel::sources::ingest::serve(&loaded, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap()
    });
    (addr, stop)
}

pub(crate) fn ev(org: &str, metadata: serde_json::Value) -> pb::TelemetryEvent {
    pb::TelemetryEvent {
        org_id: org.into(),
        user_id: "jane@example.com".into(),
        event_type: "login".into(),
        source: "sdk".into(),
        metadata: metadata.to_string().into_bytes(),
        ..Default::default()
    }
}

/// Lines of a JSONL sink that are client events (not request telemetry).
fn client_events(path: &Path) -> Vec<serde_json::Value> {
    read_jsonl(path).into_iter().filter(|l| l["eventType"] != "grpc_request").collect()
}

#[test]
fn single_and_batch_emits_reach_the_sink_redacted() {
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", ""));
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        client
            .emit_telemetry_event(pb::EmitTelemetryEventRequest {
                event: Some(ev("o1", json!({"note": "call +49 151 23456789"}))),
            })
            .await
            .unwrap();
        let batch = (0..3).map(|i| ev("o2", json!({"ip": "203.0.113.5", "i": i}))).collect();
        let r = client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events: batch }).await.unwrap();
        assert_eq!(r.into_inner().accepted, 3);
        client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: None }).await.unwrap();
    });
    let out = dir.path().join("out.jsonl");
    wait_for("4 events in the sink", || client_events(&out).len() == 4);
    let text = std::fs::read_to_string(&out).unwrap();
    for pii in ["jane@example.com", "203.0.113.5", "23456789"] {
        assert!(!text.contains(pii), "{pii} reached the sink");
    }
    let lines = read_jsonl(&out);
    assert!(
        lines.iter().all(|l| l["createdAt"].as_str().is_some_and(|t| t.starts_with("20"))),
        "createdAt set server-side"
    );
}

#[test]
fn malformed_requests_are_refused_whole() {
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", ""));
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        let mut bad = ev("o", json!({}));
        bad.metadata = b"not json".to_vec();
        let err = client
            .batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events: vec![ev("o", json!({"ok": 1})), bad] })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains("events[1].metadata") && err.message().contains("not valid JSON"),
            "{}",
            err.message()
        );
        let mut array = ev("o", json!({}));
        array.metadata = b"[1, 2]".to_vec();
        let err = client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(array) }).await.unwrap_err();
        assert!(err.message().contains("event.metadata: expected a JSON object, found an array"), "{}", err.message());
        let big = (0..501).map(|_| ev("o", json!({}))).collect();
        let err = client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events: big }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("limit of 500 (max_batch)"), "{}", err.message());
        let mut huge = ev("o", json!({}));
        huge.metadata = json!({"blob": "x".repeat(5 << 20)}).to_string().into_bytes();
        let err = client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(huge) }).await.unwrap_err();
        assert!(matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted), "over max_message_bytes: {err:?}");
        client
            .emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("after", json!({}))) })
            .await
            .unwrap();
    });
    let out = dir.path().join("out.jsonl");
    wait_for("the valid event", || !client_events(&out).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let lines = client_events(&out);
    assert_eq!(lines.len(), 1, "nothing of a refused request was accepted: {lines:?}");
    assert_eq!(lines[0]["orgId"], "after");
}

/// The lag of the redaction stage on the raw log of a state folder.
fn raw_backlog(state: &Path) -> u64 {
    wasmtel::status::read(state).unwrap().raw.readers.get("redaction").map_or(u64::MAX, |r| r.lag)
}

#[test]
fn a_stalled_sink_turns_into_resource_exhausted_and_nothing_is_lost() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    stub.state().faults.extend(std::iter::repeat_n(500, 100_000));
    let sinks = format!(
        "[log]\nmax_events = 20\n[[sinks]]\nkind = \"loki\"\nendpoint = \"{}\"\n[sinks.retry]\nmax_attempts = 3\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n",
        stub.endpoint()
    );
    let (addr, _stop) = start(&rt, &config(dir.path(), &sinks, "request_telemetry = false\nmax_batch = 10"));
    let state = dir.path().join("state");
    let send = |round: u32| {
        rt.block_on(async {
            let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
            let batch = (0..10).map(|i| ev("o", json!({"seq": round * 10 + i}))).collect();
            client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events: batch }).await
        })
    };
    // Each log holds 20 events: 20 go through redaction into the redacted
    // log (where Loki's sink is stuck), 20 more wait in the raw log.
    for round in 0..2 {
        assert_eq!(send(round).unwrap().into_inner().accepted, 10);
    }
    wait_for("the first 20 events redacted", || raw_backlog(&state) == 0);
    for round in 2..4 {
        assert_eq!(send(round).unwrap().into_inner().accepted, 10);
    }
    for round in 4..8 {
        let e = send(round).unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("retry with backoff"), "{}", e.message());
    }
    // The sink recovers: everything accepted arrives, nothing refused does.
    stub.state().faults.clear();
    wait_for("the 40 accepted events in Loki", || stub.state().lines().len() == 40);
    let seqs: std::collections::BTreeSet<u64> = stub
        .state()
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["metadata"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..40).collect());
}

#[test]
fn unredactable_batches_are_dead_lettered_never_delivered() {
    let dir = tempdir();
    let rt = server_runtime();
    let text = format!(
        "state_dir = \"state\"\n[ingest]\n[[redactors]]\nname = \"hostile\"\nmodule = \"{}\"\n[redactors.config]\nbehavior = \"panic\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n",
        wasmtel::guests::REDACTOR_HOSTILE
    );
    std::fs::write(dir.path().join("serve.toml"), text).unwrap();
    let (addr, _stop) = start(&rt, &dir.path().join("serve.toml"));
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        client
            .batch_emit_telemetry(pb::BatchEmitTelemetryRequest {
                events: vec![ev("o", json!({})), ev("o", json!({}))],
            })
            .await
            .unwrap();
    });
    let state = dir.path().join("state");
    let logins = || dead_letters(&state).into_iter().filter(|d| d["event"]["eventType"] == "login").collect::<Vec<_>>();
    wait_for("2 dead letters", || logins().len() == 2);
    assert!(logins().iter().all(|d| d["stage"] == "redact"));
    assert!(read_jsonl(&dir.path().join("out.jsonl")).is_empty());
}

/// The client events (`login`) Loki holds.
fn logins(stub: &LokiStub) -> Vec<serde_json::Value> {
    stub.state()
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["eventType"] == "login")
        .collect()
}

fn serve_process(config: &Path, addr: SocketAddr) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(config)
        .env("WASMTEL_LOG", "warn")
        .env("TEST_INGEST_TOKENS", "tok-a=org-a, tok-b=org-b")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the server", || std::net::TcpStream::connect(addr).is_ok());
    KillOnDrop(child)
}

#[test]
fn acknowledged_events_survive_kill_9_and_tokens_map_to_organizations() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    stub.state().faults.extend(std::iter::repeat_n(503, 100_000));
    let addr = free_port();
    let sinks = format!(
        "[[sinks]]\nkind = \"loki\"\nendpoint = \"{}\"\n[sinks.retry]\nmax_attempts = 100000\nmax_elapsed_ms = 600000\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n",
        stub.endpoint()
    );
    let path = config(dir.path(), &sinks, &format!("listen = \"{addr}\"\ntokens_env = \"TEST_INGEST_TOKENS\""));
    let mut server = serve_process(&path, addr);
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        let err = client
            .emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("", json!({}))) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let with_token = |e: pb::BatchEmitTelemetryRequest, token: &str| {
            let mut r = tonic::Request::new(e);
            r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            r
        };
        let err = client
            .batch_emit_telemetry(with_token(
                pb::BatchEmitTelemetryRequest { events: vec![ev("", json!({}))] },
                "no-such-token",
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "an unknown token");
        let err = client
            .batch_emit_telemetry(with_token(
                pb::BatchEmitTelemetryRequest { events: vec![ev("org-b", json!({}))] },
                "tok-a",
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("events[0].org_id"), "{}", err.message());
        let events = (0..10).map(|i| ev(if i % 2 == 0 { "" } else { "org-a" }, json!({"seq": i}))).collect();
        let r =
            client.batch_emit_telemetry(with_token(pb::BatchEmitTelemetryRequest { events }, "tok-a")).await.unwrap();
        assert_eq!(r.into_inner().accepted, 10);
    });
    // Acknowledged, not yet delivered (Loki is failing): kill -9.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    assert!(logins(&stub).is_empty(), "nothing was delivered before the kill");
    stub.state().faults.clear();
    let _server = serve_process(&path, addr);
    wait_for("the 10 acknowledged events after the restart", || logins(&stub).len() == 10);
    let orgs: Vec<String> = logins(&stub).iter().map(|v| v["orgId"].as_str().unwrap().to_string()).collect();
    assert!(orgs.iter().all(|o| o == "org-a"), "the token's organization is set on events without one: {orgs:?}");
}

#[test]
fn garbage_on_the_socket_does_not_stop_the_service() {
    use std::io::{Read, Write};
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", ""));
    for junk in [
        &b"\x00\x01garbage\xff"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(junk);
        let _ = s.read(&mut [0u8; 128]);
    }
    rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest { service: "wasmtel.ingest.v1.TelemetryService".into() })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        TelemetryServiceClient::new(channel)
            .emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("o", json!({}))) })
            .await
            .unwrap();
    });
}

#[test]
fn served_rpcs_become_grpc_request_events_except_skipped_ones() {
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", ""));
    rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
        let mut client = TelemetryServiceClient::new(channel);
        client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("o", json!({}))) }).await.unwrap();
        let mut bad = ev("o", json!({}));
        bad.metadata = b"{".to_vec();
        client.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(bad) }).await.unwrap_err();
    });
    let out = dir.path().join("out.jsonl");
    wait_for("two grpc_request events", || {
        read_jsonl(&out).iter().filter(|l| l["eventType"] == "grpc_request").count() == 2
    });
    let lines = read_jsonl(&out);
    let requests: Vec<_> = lines.iter().filter(|l| l["eventType"] == "grpc_request").collect();
    assert!(
        requests.iter().all(|r| r["source"] == "grpc_interceptor"
            && r["metadata"]["full_method"] == "/wasmtel.ingest.v1.TelemetryService/EmitTelemetryEvent"
            && r["metadata"]["duration_ms"].as_f64().is_some()
            && r["metadata"]["client_ip"] == "127.0.0.1"),
        "{requests:#?}"
    );
    let codes: Vec<_> = requests.iter().map(|r| r["metadata"]["status_code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"OK") && codes.contains(&"INVALID_ARGUMENT"), "{codes:?}");
    assert!(!std::fs::read_to_string(&out).unwrap().contains("grpc.health.v1"), "the health check is skipped");
}

#[test]
fn http_json_ingest_and_metrics() {
    let dir = tempdir();
    let rt = server_runtime();
    let http = free_port();
    let extra = format!("http_listen = \"{http}\"\nmax_batch = 3");
    let (_addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", &extra));
    wait_for("the HTTP listener", || std::net::TcpStream::connect(http).is_ok());
    let url = format!("http://{http}/v1/events");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let post = |body: serde_json::Value| client.post(&url).json(&body).send();
        let one = json!({"event": "signup", "payload": {"eventProperties": {"plan": "pro"}, "userProperties": {"email": "jane@example.com"}}});
        let r = post(one.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["accepted"], 1);
        let r = post(json!([one.clone(), {"event": "click"}])).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = post(json!([one.clone(), {"event": "x", "payload": "nope"}])).await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("events[1].payload"));
        let r = post(json!([one.clone(), one.clone(), one.clone(), one.clone()])).await.unwrap();
        assert_eq!(r.status(), 413, "more than max_batch");
        let r = client.post(&url).body("{not json").send().await.unwrap();
        assert_eq!(r.status(), 400);
    });
    let out = dir.path().join("out.jsonl");
    wait_for("3 HTTP events", || client_events(&out).len() == 3);
    let events = client_events(&out);
    assert_eq!(events[0]["eventType"], "signup");
    assert_eq!(events[0]["source"], "http");
    assert_eq!(events[0]["metadata"]["userProperties"]["email"], "<EMAIL>");
    let fetch =
        || rt.block_on(async { reqwest::get(format!("http://{http}/metrics")).await.unwrap().text().await.unwrap() });
    // The counters are refreshed after each processed batch.
    wait_for("the metrics to count the batch", || fetch().contains("wasmtel_events_delivered_total 3"));
    let metrics = fetch();
    for name in [
        "wasmtel_events_received_total",
        "wasmtel_events_delivered_total",
        "wasmtel_redaction_findings_total{rule=\"email\"}",
        "wasmtel_queue_depth",
        "wasmtel_guest_call_seconds_bucket{le=\"+Inf\"}",
        "wasmtel_guest_call_seconds_count",
        "wasmtel_sink_events_sent_total{sink=",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    assert!(
        metrics.contains("wasmtel_events_received_total 3") && metrics.contains("wasmtel_events_delivered_total 3"),
        "{metrics}"
    );
}

#[test]
fn a_flood_against_a_stalled_sink_keeps_memory_bounded() {
    let dir = tempdir();
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    stub.state().faults.extend(std::iter::repeat_n(503, 1_000_000));
    let addr = free_port();
    let sinks = format!(
        "[[sinks]]\nkind = \"loki\"\nendpoint = \"{}\"\n[sinks.retry]\nmax_attempts = 1000000\nmax_elapsed_ms = 3600000\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n",
        stub.endpoint()
    );
    let path = config(
        dir.path(),
        &format!("[log]\nmax_events = 2000\n{sinks}"),
        &format!("listen = \"{addr}\"\nrequest_telemetry = false"),
    );
    let server = serve_process(&path, addr);
    let pid = server.0.id();
    let baseline = rss_mib(pid);
    let (accepted, refused) = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..4 {
            tasks.push(tokio::spawn(async move {
                let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
                let (mut accepted, mut refused) = (0u32, 0u32);
                for round in 0..40 {
                    let events = (0..500)
                        .map(|i| ev("o", json!({"c": c, "round": round, "i": i, "pad": "x".repeat(400)})))
                        .collect();
                    match client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events }).await {
                        Ok(r) => accepted += r.into_inner().accepted,
                        Err(e) => {
                            assert_eq!(e.code(), Code::ResourceExhausted);
                            refused += 500;
                        }
                    }
                }
                (accepted, refused)
            }));
        }
        let mut totals = (0, 0);
        for t in tasks {
            let (a, r) = t.await.unwrap();
            totals = (totals.0 + a, totals.1 + r);
        }
        totals
    });
    let after = rss_mib(pid);
    // At most what the two logs hold (2000 waiting for redaction, 2000 for
    // the stuck sink) was accepted; the rest was refused, not buffered.
    assert!((2000..=4000).contains(&accepted), "accepted {accepted}");
    assert_eq!(accepted + refused, 80_000);
    assert!(after - baseline < 150.0, "RSS grew from {baseline:.0} to {after:.0} MiB under an 80k-event flood");
}

#[test]
fn server_reflection_lists_the_ingest_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", ""));
    let services = rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
        let response = stream.message().await.unwrap().unwrap();
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    });
    assert!(services.iter().any(|s| s == "wasmtel.ingest.v1.TelemetryService"), "{services:?}");
}

#[test]
fn tls_and_the_kafka_sink() {
    use rdkafka::Message;
    let dir = tempdir();
    crate::reporting_e2e::certificates(dir.path());
    let broker = crate::kafka::Broker::start(&["ingest:1"]);
    let rt = server_runtime();
    let sinks = format!("[[sinks]]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopic = \"ingest\"", broker.addr());
    let (addr, _stop) = start(
        &rt,
        &config(dir.path(), &sinks, "tls_cert = \"server.pem\"\ntls_key = \"server.key\"\nrequest_telemetry = false"),
    );
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    rt.block_on(async {
        // Plain text is refused by a TLS server.
        let plain = TelemetryServiceClient::connect(format!("http://{addr}")).await;
        let refused = match plain {
            Err(_) => true,
            Ok(mut c) => {
                c.emit_telemetry_event(pb::EmitTelemetryEventRequest { event: Some(ev("o", json!({}))) }).await.is_err()
            }
        };
        assert!(refused, "a plain-text client must not get through");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("localhost");
        let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let events = (0..5).map(|i| ev("org-k", json!({"i": i, "ip": "203.0.113.77"}))).collect();
        TelemetryServiceClient::new(channel)
            .batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events })
            .await
            .unwrap();
    });
    let consumer = crate::kafka::consumer(&broker, "ingest-test", "ingest");
    let mut values = Vec::new();
    let started = Instant::now();
    while values.len() < 5 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            assert_eq!(m.key(), Some(&b"org-k"[..]), "keyed by organization");
        }
    }
    assert_eq!(values.len(), 5, "all 5 events reached Kafka");
    for v in &values {
        assert!(!v.contains("203.0.113.77") && !v.contains("jane@example.com"), "{v}");
        assert!(v.contains("\"orgId\":\"org-k\"") && v.contains("\"eventType\":\"login\""), "{v}");
    }
}
