//! Security hardening, from outside: who can write into the log, tokens
//! from a file that change without a restart, TLS that is never silently
//! off, mutual TLS on gRPC and HTTP, receiver tokens bound to systems, and
//! config values that would weaken delivery, hang or overflow.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use tonic::Code;
use wasmtel::proto::ingest as pb;
use wasmtel::proto::ingest::telemetry_service_client::TelemetryServiceClient;
use wasmtel::proto::zitadel as zpb;

use crate::common::*;
use crate::ingest::{config, ev, start};
use crate::reporting::server_runtime;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Calls `path` (any method name) with an empty message.
async fn call_any(channel: tonic::transport::Channel, path: &str, token: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(request, path.parse().unwrap(), codec).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
}

#[test]
fn an_unauthenticated_flood_does_not_reach_the_log_or_the_sink() {
    let dir = tempdir();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# ingest tokens\ntok-a=org-a\n").unwrap();
    let http = free_port();
    let extra = format!("tokens_file = \"tokens\"\nhttp_listen = \"{http}\"");
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", &extra));
    rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        for i in 0..50 {
            let status = call_any(channel.clone(), &format!("/evil.Service/Inject{i}"), None).await;
            assert_eq!(status.code(), Code::Unimplemented);
            // A valid token does not make an unknown method worth recording.
            let status = call_any(channel.clone(), &format!("/evil.Service/Inject{i}"), Some("tok-a")).await;
            assert_eq!(status.code(), Code::Unimplemented);
        }
        let mut client = TelemetryServiceClient::new(channel);
        for token in [None, Some("tok-b"), Some("tok-"), Some("tok-ab")] {
            let request = pb::EmitTelemetryEventRequest { event: Some(ev("", json!({"evil": true}))) };
            let request = match token {
                Some(t) => with_token(request, t),
                None => tonic::Request::new(request),
            };
            let err = client.emit_telemetry_event(request).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
        }
        let good = pb::EmitTelemetryEventRequest { event: Some(ev("", json!({"good": true}))) };
        client.emit_telemetry_event(with_token(good, "tok-a")).await.unwrap();
    });
    // Request telemetry is appended in call order: once the good call's
    // event is out, everything recorded before it is too.
    let out = dir.path().join("out.jsonl");
    wait_for("the good call's event and its request telemetry", || read_jsonl(&out).len() >= 2);
    let lines = read_jsonl(&out);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(lines[0]["metadata"]["good"], true);
    assert_eq!(lines[1]["eventType"], "grpc_request");
    assert_eq!(lines[1]["orgId"], "org-a");
    assert_eq!(lines[1]["metadata"]["status_code"], "OK");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("evil") && !text.contains("UNAUTHENTICATED"), "{text}");
    let metrics =
        rt.block_on(async { reqwest::get(format!("http://{http}/metrics")).await.unwrap().text().await.unwrap() });
    assert_eq!(metric(&metrics, "wasmtel_ingest_unknown_method_calls_total"), 100);
    assert_eq!(metric(&metrics, "wasmtel_ingest_unauthenticated_calls_total"), 4);
}

#[test]
fn a_changed_tokens_file_takes_effect_without_a_restart() {
    let dir = tempdir();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "old-token=org-a\n").unwrap();
    let rt = server_runtime();
    let (addr, _stop) = start(
        &rt,
        &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", "tokens_file = \"tokens\""),
    );
    let emit = |token: &str| {
        rt.block_on(async {
            let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
            let request = pb::EmitTelemetryEventRequest { event: Some(ev("", json!({}))) };
            client.emit_telemetry_event(with_token(request, token)).await.map(|_| ()).map_err(|e| e.code())
        })
    };
    assert_eq!(emit("old-token"), Ok(()));
    assert_eq!(emit("new-token"), Err(Code::Unauthenticated));
    std::fs::write(&tokens, "new-token=org-b\n").unwrap();
    wait_for("the new token to be accepted", || emit("new-token").is_ok());
    assert_eq!(emit("old-token"), Err(Code::Unauthenticated), "a removed token is refused");
    // A broken file keeps the tokens that work.
    std::fs::write(&tokens, "this line has no equals sign\n").unwrap();
    let before = std::time::Instant::now();
    while before.elapsed() < std::time::Duration::from_millis(1500) {
        assert_eq!(emit("new-token"), Ok(()));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn check(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("check.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmtel")).args(["check", "--config"]).arg(&path).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const BASE: &str = "state_dir = \"state\"\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n";

#[test]
fn one_of_tls_cert_and_tls_key_is_refused() {
    let dir = tempdir();
    crate::reporting_e2e::certificates(dir.path());
    for (section, keys, missing) in [
        ("ingest", "tls_cert = \"server.pem\"", "ingest.tls_key"),
        ("ingest", "tls_key = \"server.key\"", "ingest.tls_cert"),
        ("ingest", "client_ca = \"ca.pem\"", "ingest.client_ca"),
        ("receiver", "tls_cert = \"server.pem\"", "receiver.tls_key"),
        ("receiver", "client_ca = \"ca.pem\"", "receiver.client_ca"),
    ] {
        let (ok, stderr) = check(dir.path(), &format!("{BASE}[{section}]\n{keys}\n"));
        assert!(!ok, "{section} with only {keys} must be refused");
        assert!(stderr.contains(&format!("key `{missing}`")), "{stderr}");
        assert!(stderr.contains(&format!("{section}.tls_cert and {section}.tls_key")), "names both keys: {stderr}");
    }
    // A key file that holds no key is named too.
    let (ok, stderr) = check(dir.path(), &format!("{BASE}[ingest]\ntls_cert = \"server.pem\"\ntls_key = \"ca.pem\"\n"));
    assert!(!ok && stderr.contains("ingest.tls_key") && stderr.contains("no PEM private key"), "{stderr}");
    let (ok, stderr) =
        check(dir.path(), &format!("{BASE}[ingest]\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\n"));
    assert!(ok, "{stderr}");
}

#[test]
fn ingest_requires_client_certificates_on_grpc_and_http_when_client_ca_is_set() {
    let dir = tempdir();
    crate::reporting_e2e::certificates(dir.path());
    let http = free_port();
    let extra = format!(
        "tls_cert = \"server.pem\"\ntls_key = \"server.key\"\nclient_ca = \"ca.pem\"\nhttp_listen = \"{http}\"\nrequest_telemetry = false"
    );
    let rt = server_runtime();
    let (addr, _stop) = start(&rt, &config(dir.path(), "[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"", &extra));
    wait_for("the HTTPS listener", || std::net::TcpStream::connect(http).is_ok());
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    rt.block_on(async {
        let grpc = |identity: Option<(&str, &str)>| {
            let mut tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(read("ca.pem")))
                .domain_name("localhost");
            if let Some((cert, key)) = identity {
                tls = tls.identity(tonic::transport::Identity::from_pem(read(cert), read(key)));
            }
            async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
                    .unwrap()
                    .tls_config(tls)
                    .unwrap()
                    .connect()
                    .await?;
                let request = pb::EmitTelemetryEventRequest { event: Some(ev("o", json!({"via": "grpc"}))) };
                TelemetryServiceClient::new(channel).emit_telemetry_event(request).await.map_err(Into::into).map(|_| ())
            }
        };
        let refused: Result<(), Box<dyn std::error::Error>> = grpc(None).await;
        assert!(refused.is_err(), "no client certificate");
        let refused: Result<(), Box<dyn std::error::Error>> = grpc(Some(("rogue.pem", "rogue.key"))).await;
        assert!(refused.is_err(), "a certificate from an untrusted CA");
        let accepted: Result<(), Box<dyn std::error::Error>> = grpc(Some(("client.pem", "client.key"))).await;
        accepted.unwrap();

        let https = |identity: Option<(&str, &str)>| {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .add_root_certificate(reqwest::Certificate::from_pem(&read("ca.pem")).unwrap());
            if let Some((cert, key)) = identity {
                let pem = [read(cert), read(key)].concat();
                builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
            }
            let client = builder.build().unwrap();
            let url = format!("https://localhost:{}/v1/events", http.port());
            async move { client.post(url).json(&json!({"event": "via-http"})).send().await }
        };
        assert!(https(None).await.is_err(), "no client certificate over HTTPS");
        assert!(https(Some(("rogue.pem", "rogue.key"))).await.is_err(), "an untrusted client certificate");
        let r = https(Some(("client.pem", "client.key"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let plain = reqwest::Client::new().post(format!("http://127.0.0.1:{}/v1/events", http.port())).send().await;
        assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served");
    });
    let out = dir.path().join("out.jsonl");
    wait_for("both events", || read_jsonl(&out).len() == 2);
}

#[test]
fn a_receiver_token_reports_only_for_its_systems() {
    let dir = tempdir();
    std::fs::write(dir.path().join("tokens"), "tok-a=sys-a|sys-a2\ntok-any=*\n").unwrap();
    let config = wasmtel::receiver::ReceiverConfig {
        listen: "127.0.0.1:0".into(),
        database: dir.path().join("recv.db"),
        tokens_file: Some(dir.path().join("tokens")),
        ..Default::default()
    };
    let rt = server_runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        wasmtel::receiver::serve(Path::new("receiver.toml"), &config, listener, std::future::pending()).await.unwrap()
    });
    rt.block_on(async {
        let mut client =
            zpb::telemetry_service_client::TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        let base = |system: &str| zpb::ReportBaseInformationRequest {
            system_id: system.into(),
            version: "v1".into(),
            instances: vec![],
        };
        client.report_base_information(with_token(base("sys-a"), "tok-a")).await.unwrap();
        client.report_base_information(with_token(base("sys-a2"), "tok-a")).await.unwrap();
        let err = client.report_base_information(with_token(base("sys-b"), "tok-a")).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("sys-b"), "{}", err.message());
        let counts =
            zpb::ReportResourceCountsRequest { system_id: "sys-b".into(), report_id: None, resource_counts: vec![] };
        let err = client.report_resource_counts(with_token(counts.clone(), "tok-a")).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "counts for another system");
        client.report_resource_counts(with_token(counts, "tok-any")).await.unwrap();
        let err = client.report_base_information(base("sys-a")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    });
    let store = wasmtel::receiver::ReceiverStore::open(&dir.path().join("recv.db")).unwrap();
    let systems: Vec<String> = store.systems().unwrap().into_iter().map(|s| s.system_id).collect();
    assert_eq!(systems, ["sys-a", "sys-a2", "sys-b"]);
}

fn refused(text: &str, key: &str, says: &str) {
    let err =
        wasmtel::config::parse(Path::new("wasmtel.toml"), text).err().unwrap_or_else(|| panic!("accepted:\n{text}"));
    assert_eq!(err.key, key, "{err}");
    assert!(err.message.contains(says), "{err}");
    assert!(err.to_string().contains("wasmtel.toml"), "{err}");
}

#[test]
fn kafka_properties_that_weaken_delivery_are_refused() {
    let sink = |props: &str| {
        format!(
            "{BASE}[[sinks]]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopic = \"t\"\n[sinks.properties]\n{props}\n"
        )
    };
    refused(
        &sink("acks = \"1\"\n\"enable.idempotence\" = \"false\""),
        "sinks[0].properties.\"acks\"",
        "expected `all`",
    );
    refused(
        &sink("\"enable.idempotence\" = \"false\""),
        "sinks[0].properties.\"enable.idempotence\"",
        "expected `true`",
    );
    refused(
        &sink("\"max.in.flight.requests.per.connection\" = \"10\""),
        "sinks[0].properties.\"max.in.flight.requests.per.connection\"",
        "expected 1 to 5",
    );
    refused(&sink("\"request.required.acks\" = \"0\""), "sinks[0].properties.\"request.required.acks\"", "`all`");
    refused(&sink("\"linger.ms\" = \"100\""), "sinks[0].properties.\"linger.ms\"", "set `linger_ms` instead");
    wasmtel::config::parse(
        Path::new("w.toml"),
        &sink(
            "acks = \"all\"\n\"max.in.flight.requests.per.connection\" = \"5\"\n\"socket.keepalive.enable\" = \"true\"",
        ),
    )
    .unwrap();
    let worker = |props: &str| {
        format!("{BASE}[worker]\nbrokers = \"127.0.0.1:9092\"\ntopic = \"t\"\n[worker.properties]\n{props}\n")
    };
    refused(
        &worker("\"enable.auto.commit\" = \"true\""),
        "worker.properties.\"enable.auto.commit\"",
        "committed only once",
    );
    refused(&worker("\"group.id\" = \"g\""), "worker.properties.\"group.id\"", "set `group_id` instead");
}

#[test]
fn config_values_that_would_hang_panic_or_overflow_are_clear_errors() {
    let loki = |extra: &str| format!("{BASE}[[sinks]]\nkind = \"loki\"\nendpoint = \"http://127.0.0.1:1\"\n{extra}\n");
    refused(&loki("batch_max_events = 0"), "sinks[0].batch_max_events", "found 0, expected 1 to");
    refused(
        &loki("reject_older_than_hours = 18446744073709551615"),
        "sinks[0].reject_older_than_hours",
        "expected 1 to 87600",
    );
    refused(&loki("timeout_ms = 0"), "sinks[0].timeout_ms", "expected 1 to");
    refused(
        &format!("{BASE}[receiver]\nreport_max_age_hours = 18446744073709551615\n"),
        "receiver.report_max_age_hours",
        "expected 1 to 87600",
    );
    refused(&format!("{BASE}[ingest]\nrequest_timeout_ms = 0\n"), "ingest.request_timeout_ms", "expected 1 to");
    refused(&format!("{BASE}[ingest]\nmax_batch = 0\n"), "ingest.max_batch", "expected 1 to");
    refused(
        &format!(
            "{BASE}[worker]\nbrokers = \"b\"\ntopic = \"t\"\n[worker.loki]\nendpoint = \"http://x\"\nbatch_max_bytes = 0\n"
        ),
        "worker.loki.batch_max_bytes",
        "expected 1 to",
    );
}
