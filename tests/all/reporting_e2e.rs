//! Reporting between real processes: `wasmtel receive` (TLS, bearer token)
//! and `wasmtel run` with the collector-sql guest on the sample database;
//! the opt-out (zero connections); and what the receiver says to bad input.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::Code;
use wasmtel::proto::zitadel as pb;
use wasmtel::proto::zitadel::telemetry_service_client::TelemetryServiceClient;

use crate::common::*;
use crate::reporting::{server_runtime, start_receiver};

/// Reports waiting in the zitadel sink's outbox.
fn pending_reports(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/outbox/zitadel/pending"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count()
}

/// A CA and a `localhost` server certificate, as PEM files in `dir`.
pub fn certificates(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    // A client certificate from the same CA, for mutual TLS.
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["wasmtel-client".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &ca).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    // And one from a CA nobody trusts.
    let rogue_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut rogue_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    rogue_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let rogue_ca = rcgen::CertifiedIssuer::self_signed(rogue_params, rogue_ca_key).unwrap();
    let rogue_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["rogue".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let rogue = params.signed_by(&rogue_key, &rogue_ca).unwrap();
    std::fs::write(dir.join("rogue.pem"), rogue.pem()).unwrap();
    std::fs::write(dir.join("rogue.key"), rogue_key.serialize_pem()).unwrap();
}

/// A run config: the sample collector, reporting to `endpoint`.
fn run_config(dir: &Path, name: &str, endpoint: &str, sink_extra: &str) -> std::path::PathBuf {
    let quickstart = std::fs::read_to_string(repo().join("examples/quickstart.toml")).unwrap();
    let collectors = &quickstart[quickstart.find("[[collectors]]").unwrap()..];
    let text = format!(
        r#"state_dir = "state"
[data_sources.main]
kind = "sqlite"
path = "state/sample.db"
seed_sql = {seed:?}

[[sinks]]
kind = "zitadel"
endpoint = "{endpoint}"
bulk_size = 10
timeout_ms = 2000
{sink_extra}
[sinks.retry]
max_attempts = 2
initial_backoff_ms = 50

{collectors}"#,
        seed = repo().join("examples/sample-data/seed.sql").display().to_string()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `wasmtel run --once` with a report token in its environment.
fn run_once(config: &Path, token: &str) -> std::process::Output {
    wasmtel().args(["run", "--once", "--config"]).arg(config).env("TEST_REPORT_TOKEN", token).output().unwrap()
}

fn wasmtel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmtel"));
    cmd.env("WASMTEL_LOG", "wasmtel=info").env_remove("DO_NOT_TRACK").env_remove("WASMTEL_DISABLE");
    cmd
}

#[test]
fn receive_and_run_processes_over_mutual_tls_with_a_token() {
    let dir = tempdir();
    certificates(dir.path());
    let addr = free_port();
    let receiver_toml = format!(
        "[receiver]\nlisten = \"{addr}\"\ndatabase = \"recv.db\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\nclient_ca = \"ca.pem\"\ntokens_env = \"TEST_RECEIVER_TOKENS\"\n"
    );
    std::fs::write(dir.path().join("receiver.toml"), receiver_toml).unwrap();
    let _receiver = KillOnDrop(
        wasmtel()
            .args(["receive", "--config"])
            .arg(dir.path().join("receiver.toml"))
            .env("TEST_RECEIVER_TOKENS", "other-token=other-system, s3cret-token=*")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the receiver", || TcpStream::connect(addr).is_ok());

    let endpoint = format!("https://localhost:{}", addr.port());
    let ca = dir.path().join("ca.pem").display().to_string();
    let config = run_config(
        dir.path(),
        "tls.toml",
        &endpoint,
        &format!(
            "tls_ca = {ca:?}\ntls_client_cert = \"client.pem\"\ntls_client_key = \"client.key\"\nbearer_token_env = \"TEST_REPORT_TOKEN\""
        ),
    );
    let out = run_once(&config, "s3cret-token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("report delivered"), "{stderr}");

    let out = wasmtel().args(["reports", "--json", "--db"]).arg(dir.path().join("recv.db")).output().unwrap();
    let systems: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let system = &systems[0];
    assert_eq!(system["version"], "v2.71.0");
    assert_eq!(system["instances"].as_array().unwrap().len(), 2);
    let counts = system["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 27, "all counts computed by collector-sql arrived");
    let users_acme_1 = counts.iter().find(|c| c["resourceName"] == "users" && c["parentId"] == "org-acme-1").unwrap();
    assert_eq!(users_acme_1["amount"], 12);
    assert_eq!(users_acme_1["tableName"], "users14");
    let system_id = std::fs::read_to_string(dir.path().join("state/system-id")).unwrap();
    assert_eq!(system["systemId"], system_id.trim());

    // The table form lists the same.
    let out = wasmtel().args(["reports", "--db"]).arg(dir.path().join("recv.db")).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("users") && table.contains("users14") && table.contains("47"), "{table}");

    // A wrong token is refused (UNAUTHENTICATED is not retried) and the report is kept.
    let out = run_once(&config, "wrong");
    assert!(out.status.success());
    let pending = pending_reports(dir.path());
    assert_eq!(pending, 1, "{}", String::from_utf8_lossy(&out.stderr));
    // Without the CA the TLS handshake fails: kept as well, never an error for the run.
    let plain = run_config(dir.path(), "no-ca.toml", &endpoint, "bearer_token_env = \"TEST_REPORT_TOKEN\"");
    let out = run_once(&plain, "s3cret-token");
    assert!(out.status.success());
    let pending = pending_reports(dir.path());
    assert_eq!(pending, 2);
    // Without a client certificate the receiver refuses the handshake: kept.
    let no_client = run_config(
        dir.path(),
        "no-client.toml",
        &endpoint,
        &format!("tls_ca = {ca:?}\nbearer_token_env = \"TEST_REPORT_TOKEN\""),
    );
    let out = run_once(&no_client, "s3cret-token");
    assert!(out.status.success());
    assert_eq!(pending_reports(dir.path()), 3);
    // A token bound to another system is refused for this one (PERMISSION_DENIED): kept.
    let out = run_once(&config, "other-token");
    assert!(out.status.success());
    assert_eq!(pending_reports(dir.path()), 4, "{}", String::from_utf8_lossy(&out.stderr));
    // With the right settings, the next run delivers what was kept.
    let out = run_once(&config, "s3cret-token");
    assert!(out.status.success());
    let pending = pending_reports(dir.path());
    assert_eq!(pending, 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn opt_out_makes_zero_connections() {
    for (var, value) in [("DO_NOT_TRACK", "1"), ("WASMTEL_DISABLE", "1")] {
        let dir = tempdir();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopper = stop.clone();
        let acceptor = std::thread::spawn(move || {
            while !stopper.load(Ordering::SeqCst) {
                if listener.accept().is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let config = run_config(dir.path(), "run.toml", &format!("http://{addr}"), "");
        let out = wasmtel().args(["run", "--once", "--config"]).arg(&config).env(var, value).output().unwrap();
        stop.store(true, Ordering::SeqCst);
        acceptor.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "{var}: no connection may be made");
        assert_eq!(stderr.matches("reporting is switched off").count(), 1, "says so once: {stderr}");
        assert!(stderr.contains(&format!("{var}={value}")), "{stderr}");
    }
}

#[test]
fn the_receiver_answers_bad_input_with_clear_codes_and_keeps_serving() {
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start_receiver(&rt, &dir.path().join("recv.db"), None);
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        let base = |system: &str| pb::ReportBaseInformationRequest {
            system_id: system.into(),
            version: "v1".into(),
            instances: vec![],
        };
        let count = |parent_type: i32| pb::ResourceCount {
            instance_id: "i".into(),
            parent_type,
            parent_id: "o".into(),
            resource_name: "users".into(),
            table_name: "users".into(),
            updated_at: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
            amount: 1,
        };
        let counts = |system: &str, report: Option<String>, n: usize| pb::ReportResourceCountsRequest {
            system_id: system.into(),
            report_id: report,
            resource_counts: (0..n).map(|_| count(2)).collect(),
        };

        let err = client.report_base_information(base("")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("system_id is required"), "{}", err.message());

        let err = client.report_resource_counts(counts("sys-a", Some("no-such-report".into()), 1)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains("unknown"), "{}", err.message());

        let report_a = client.report_base_information(base("sys-a")).await.unwrap().into_inner().report_id;
        let err = client.report_resource_counts(counts("sys-b", Some(report_a.clone()), 1)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "a report ID is bound to its system");
        assert!(err.message().contains("another system"), "{}", err.message());

        let mut bad = counts("sys-a", Some(report_a.clone()), 2);
        bad.resource_counts[1].parent_type = 0;
        let err = client.report_resource_counts(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("resource_counts[1].parent_type"), "{}", err.message());
        let mut bad = counts("sys-a", Some(report_a.clone()), 1);
        bad.resource_counts[0].updated_at = None;
        let err = client.report_resource_counts(bad).await.unwrap_err();
        assert!(err.message().contains("resource_counts[0].updated_at is required"), "{}", err.message());

        let err = client.report_resource_counts(counts("sys-a", Some(report_a.clone()), 10_001)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("at most 10000"), "{}", err.message());

        let mut huge = counts("sys-a", Some(report_a.clone()), 1);
        huge.resource_counts[0].resource_name = "x".repeat(5 << 20);
        let err = client.report_resource_counts(huge).await.unwrap_err();
        assert!(matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument), "{err:?}");

        // Nothing of the refused requests was stored; a valid batch is.
        client.report_resource_counts(counts("sys-a", Some(report_a), 1)).await.unwrap();
    });

    // Garbage bytes and a truncated HTTP/2 preface on raw sockets.
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x00\x01\x02garbage\xff\xfe",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(junk);
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    }
    // The server still serves: health check and a valid call.
    rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest { service: "zitadel.analytics.v2beta.TelemetryService".into() })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        let mut client = TelemetryServiceClient::new(channel);
        let base =
            pb::ReportBaseInformationRequest { system_id: "sys-c".into(), version: "v1".into(), instances: vec![] };
        assert!(!client.report_base_information(base).await.unwrap().into_inner().report_id.is_empty());
    });
    let store = wasmtel::receiver::ReceiverStore::open(&dir.path().join("recv.db")).unwrap();
    let systems = store.systems().unwrap();
    let a = systems.iter().find(|s| s.system_id == "sys-a").unwrap();
    assert_eq!(a.counts.len(), 1);
    assert!(systems.iter().all(|s| s.system_id != "sys-b"));
}
