//! Faults other than a clean crash, against a real `wasmtel serve`: a sink
//! down for 30 s while the others flow, a full disk under the state folder
//! and under a sink (small tmpfs mounts), a sink that keeps failing, a
//! report receiver that never answers. What was acknowledged is never lost,
//! health and ingest say when events cannot be taken, and the process
//! recovers (or exits non-zero so a service manager restarts it).
//!
//! The disk tests mount tmpfs, which needs root (CI runs as root); without
//! it they fail saying so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tonic::Code;
use wasmtel::devtools::loki::LokiStub;
use wasmtel::proto::ingest as pb;
use wasmtel::proto::ingest::telemetry_service_client::TelemetryServiceClient;

use crate::common::*;
use crate::reporting::server_runtime;

/// A small tmpfs mounted for a test, unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).output();
        match out {
            Ok(o) if o.status.success() => Tmpfs(path.to_path_buf()),
            other => {
                panic!("this test mounts a small tmpfs to fill a disk and needs root (CI runs as root): {other:?}")
            }
        }
    }

    /// Fills the file system up, leaving nothing free; returns the filler.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg("-l").arg(&self.0).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("serve.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn batch(tag: &str, n: usize) -> pb::BatchEmitTelemetryRequest {
    let events = (0..n)
        .map(|i| pb::TelemetryEvent {
            id: format!("{tag}-{i}"),
            org_id: "o".into(),
            user_id: format!("u{i}@example.com"),
            event_type: "login".into(),
            source: "sdk".into(),
            metadata: json!({"tag": tag, "i": i}).to_string().into_bytes(),
            ..Default::default()
        })
        .collect();
    pb::BatchEmitTelemetryRequest { events }
}

/// Sends a batch; the gRPC status code.
fn send(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    request: pb::BatchEmitTelemetryRequest,
) -> Result<(), tonic::Status> {
    rt.block_on(async {
        let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await.unwrap();
        client.batch_emit_telemetry(request).await.map(|_| ())
    })
}

fn health(rt: &tokio::runtime::Runtime, addr: SocketAddr) -> i32 {
    rt.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .unwrap()
            .into_inner()
            .status
    })
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

fn ids(path: &Path) -> std::collections::BTreeSet<String> {
    read_jsonl(path).iter().map(|l| l["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_full_disk_under_the_state_folder_refuses_with_unavailable_and_loses_nothing() {
    let dir = tempdir();
    let fs = Tmpfs::mount(&dir.path().join("state"), "24m");
    let addr = free_port();
    let http = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "state_dir = \"state\"\n[ingest]\nlisten = \"{addr}\"\nhttp_listen = \"{http}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
        ),
    );
    let _server = serve(&config, addr);
    let rt = server_runtime();
    send(&rt, addr, batch("before", 100)).unwrap();
    let out = dir.path().join("out.jsonl");
    wait_for("the first 100", || ids(&out).len() == 100);

    let filler = fs.fill();
    let err = send(&rt, addr, batch("full", 100)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("No space left") || err.message().contains("space"),
        "a clear error: {}",
        err.message()
    );
    wait_for("health NOT_SERVING", || health(&rt, addr) == NOT_SERVING);
    let ready = rt.block_on(async { reqwest::get(format!("http://{http}/ready")).await.unwrap() });
    assert_eq!(ready.status(), 503);
    let body = rt.block_on(ready.text()).unwrap();
    assert!(body.contains("space"), "{body}");

    std::fs::remove_file(&filler).unwrap();
    wait_for("ingest to take events again", || send(&rt, addr, batch("after", 100)).is_ok());
    wait_for("health SERVING", || health(&rt, addr) == SERVING);
    let want: std::collections::BTreeSet<String> =
        ["before", "after"].iter().flat_map(|t| (0..100).map(move |i| format!("{t}-{i}"))).collect();
    wait_for("every acknowledged event", || want.is_subset(&ids(&out)));
    assert!(ids(&out).iter().all(|id| !id.starts_with("full-")), "nothing refused was delivered");
}

#[test]
fn a_sink_on_a_full_disk_stops_ingest_until_it_recovers() {
    let dir = tempdir();
    let fs = Tmpfs::mount(&dir.path().join("sink"), "1m");
    let addr = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "state_dir = \"state\"\n[ingest]\nlisten = \"{addr}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"sink/out.jsonl\"\n"
        ),
    );
    let _server = serve(&config, addr);
    let rt = server_runtime();
    let filler = fs.fill();
    send(&rt, addr, batch("a", 50)).unwrap();
    wait_for(
        "ingest to answer UNAVAILABLE while the sink cannot write",
        || matches!(send(&rt, addr, batch("probe", 1)), Err(e) if e.code() == Code::Unavailable),
    );
    assert_eq!(health(&rt, addr), NOT_SERVING);
    std::fs::remove_file(&filler).unwrap();
    let out = dir.path().join("sink/out.jsonl");
    wait_for("the 50 acknowledged events", || (0..50).all(|i| ids(&out).contains(&format!("a-{i}"))));
    wait_for("health SERVING again", || health(&rt, addr) == SERVING);
    send(&rt, addr, batch("b", 10)).unwrap();
    wait_for("the next batch", || (0..10).all(|i| ids(&out).contains(&format!("b-{i}"))));
    let lines = read_jsonl(&out);
    let mut seen = std::collections::BTreeSet::new();
    for l in &lines {
        let id = l["id"].as_str().unwrap();
        assert!(id.starts_with("probe") || seen.insert(id.to_string()), "{id} written twice");
    }
}

#[test]
fn a_sink_that_keeps_failing_makes_the_process_exit_and_a_restart_delivers() {
    let dir = tempdir();
    let addr = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "state_dir = \"state\"\n[pipeline]\nmax_restarts = 2\n[ingest]\nlisten = \"{addr}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"stdout\"\n"
        ),
    );
    // Standard output is a pipe nobody reads: writes fail (EPIPE).
    let mut server = serve_with(&config, addr, Stdio::piped());
    drop(server.0.stdout.take());
    let rt = server_runtime();
    send(&rt, addr, batch("kept", 20)).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the process should give up and exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "a non-zero exit for the service manager");
    // Restarted with a working standard output: what was acknowledged arrives.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("WASMTEL_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = KillOnDrop(out);
    let stdout = out.0.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).take(20).collect::<Vec<_>>()
    });
    let lines = lines.join().unwrap();
    let got: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, (0..20).map(|i| format!("kept-{i}")).collect());
}

#[test]
fn a_report_receiver_that_never_answers_does_not_hold_up_events_or_shutdown() {
    let dir = tempdir();
    // Accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming() {
            held.push(s);
        }
    });
    let quickstart = std::fs::read_to_string(repo().join("examples/quickstart.toml")).unwrap();
    let collectors = &quickstart[quickstart.find("[[collectors]]").unwrap()..];
    let addr = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"state_dir = "state"
[ingest]
listen = "{addr}"
request_telemetry = false
[data_sources.main]
kind = "sqlite"
path = "state/sample.db"
seed_sql = {seed:?}
[[redactors]]
name = "pii"
module = "builtin:redactor-pii"
[[sinks]]
kind = "jsonl"
path = "out.jsonl"
streams = ["events"]
[[sinks]]
kind = "zitadel"
endpoint = "http://{hole_addr}"
timeout_ms = 600000
[sinks.retry]
max_elapsed_ms = 3600000
{collectors}"#,
            seed = repo().join("examples/sample-data/seed.sql").display().to_string()
        ),
    );
    let mut server = serve(&config, addr);
    let rt = server_runtime();
    for round in 0..20 {
        send(&rt, addr, batch(&format!("r{round}"), 500)).unwrap();
    }
    let out = dir.path().join("out.jsonl");
    wait_for("all 10,000 events in the sink", || ids(&out).len() == 10_000);
    let pending = std::fs::read_dir(dir.path().join("state/outbox/zitadel/pending"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(pending, 1, "the report is still waiting for the receiver while every event arrived");
    // SIGTERM: the process stops even though a report delivery hangs.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "SIGTERM must stop the process");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn loki_down_for_30_s_while_jsonl_and_kafka_keep_flowing() {
    use rdkafka::Message;
    let dir = tempdir();
    let broker = crate::kafka::Broker::start(&["flow:1"]);
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    stub.state().faults.extend(std::iter::repeat_n(503, 1_000_000));
    let addr = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "state_dir = \"state\"\n[ingest]\nlisten = \"{addr}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n[[sinks]]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopic = \"flow\"\n[[sinks]]\nkind = \"loki\"\nendpoint = \"{}\"\n[sinks.retry]\nmax_attempts = 2\ninitial_backoff_ms = 50\n",
            broker.addr(),
            stub.endpoint()
        ),
    );
    let _server = serve(&config, addr);
    let outage = Instant::now();
    for round in 0..5 {
        send(&rt, addr, batch(&format!("r{round}"), 100)).unwrap();
    }
    let out = dir.path().join("out.jsonl");
    wait_for("the JSONL sink has all 500 while Loki is down", || ids(&out).len() == 500);
    let consumer = crate::kafka::consumer(&broker, "flow-test", "flow");
    let mut in_kafka = 0;
    while in_kafka < 500 && outage.elapsed() < Duration::from_secs(25) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            assert!(m.payload().is_some());
            in_kafka += 1;
        }
    }
    assert_eq!(in_kafka, 500, "Kafka has all 500 while Loki is down");
    assert!(stub.state().lines().is_empty(), "Loki is down");
    let state = dir.path().join("state");
    let lag = wasmtel::status::read(&state).unwrap().redacted.readers["loki"].lag;
    assert_eq!(lag, 500, "the Loki sink's events wait in the redacted log");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed()));
    stub.state().faults.clear();
    wait_for("Loki gets all 500 once it is back", || stub.state().lines().len() == 500);
    assert_eq!(stub.state().duplicates, 0);
}
