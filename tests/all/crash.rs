//! Crashes under load: `wasmtel serve` is killed with SIGKILL five times
//! while four gRPC clients send events (each with its own id, retried with
//! the same id until acknowledged). Every acknowledged event ends up in the
//! JSONL sink, redacted; the sink itself writes no event twice (a duplicate
//! can only come from a client's retry of a request whose answer the crash
//! swallowed); and the state folder refuses a second process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wasmtel::proto::ingest as pb;
use wasmtel::proto::ingest::telemetry_service_client::TelemetryServiceClient;

use crate::common::*;

/// What the clients know: ids acknowledged, ids sent more than once.
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<String>,
    retried: BTreeSet<String>,
}

#[test]
fn acknowledged_events_survive_a_kill_9_loop_under_load() {
    let dir = tempdir();
    let addr = free_port();
    let path = serve_config(dir.path(), addr);
    let mut server = serve(&path, addr);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let done = Arc::new(AtomicBool::new(false));
    let rt = crate::reporting::server_runtime();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (ledger, done) = (ledger.clone(), done.clone());
            rt.spawn(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .unwrap()
                    .timeout(Duration::from_secs(5))
                    .connect_lazy();
                let mut client = TelemetryServiceClient::new(channel);
                // Until the kills are over, and at least 20 batches.
                let mut batch = 0;
                while batch < 20 || !done.load(Ordering::SeqCst) {
                    batch += 1;
                    let events: Vec<pb::TelemetryEvent> = (0..50)
                        .map(|i| pb::TelemetryEvent {
                            id: format!("c{c}-{batch}-{i}"),
                            org_id: "o".into(),
                            user_id: format!("user{c}{i}@example.com"),
                            event_type: "login".into(),
                            source: "sdk".into(),
                            metadata: json!({"c": c, "batch": batch, "i": i}).to_string().into_bytes(),
                            ..Default::default()
                        })
                        .collect();
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        let request = pb::BatchEmitTelemetryRequest { events: events.clone() };
                        match client.batch_emit_telemetry(request).await {
                            Ok(_) => break,
                            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                    let mut l = ledger.lock().unwrap();
                    for e in &events {
                        l.acked.insert(e.id.clone());
                        if attempts > 1 {
                            l.retried.insert(e.id.clone());
                        }
                    }
                }
            })
        })
        .collect();
    // Five kills at varying moments of the load, each followed by a restart.
    for kill in 0..5 {
        std::thread::sleep(Duration::from_millis(300 + 150 * kill));
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        server = serve(&path, addr);
    }
    done.store(true, Ordering::SeqCst);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    let ledger = ledger.lock().unwrap();
    assert!(ledger.acked.len() >= 4 * 20 * 50, "{}", ledger.acked.len());
    let out = dir.path().join("out.jsonl");
    wait_for("every acknowledged event in the sink", || {
        let ids: BTreeSet<String> = read_jsonl(&out).iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
        ledger.acked.is_subset(&ids)
    });
    drop(server);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("@example.com"), "an e-mail reached the sink");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in read_jsonl(&out) {
        *counts.entry(line["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let twice: Vec<&String> = counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    let unexplained: Vec<&&String> = twice.iter().filter(|id| !ledger.retried.contains(**id)).collect();
    assert!(unexplained.is_empty(), "written twice though sent once: {unexplained:?}");
    eprintln!(
        "kill -9 ×5: {} acknowledged, {} in the sink, {} duplicates (all from client retries)",
        ledger.acked.len(),
        counts.values().sum::<usize>(),
        twice.len()
    );
}

fn first_alive(server: &KillOnDrop) -> bool {
    std::path::Path::new(&format!("/proc/{}", server.0.id())).exists()
}

#[test]
fn a_second_process_on_the_same_state_folder_is_refused() {
    let dir = tempdir();
    let addr = free_port();
    let path = serve_config(dir.path(), addr);
    let first = serve(&path, addr);
    let other = free_port();
    let text = std::fs::read_to_string(&path).unwrap().replace(&addr.to_string(), &other.to_string());
    let second_config = dir.path().join("second.toml");
    std::fs::write(&second_config, text).unwrap();
    // Spawned (not `output()`): should it wrongly start serving, the test
    // fails instead of hanging.
    let second = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(&second_config)
        .env("WASMTEL_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut second = KillOnDrop(second);
    let started = std::time::Instant::now();
    while second.0.try_wait().unwrap().is_none() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exited = second.0.try_wait().unwrap().is_some();
    if !exited {
        second.0.kill().unwrap();
    }
    let status = second.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        exited,
        "the second process kept running (the first one alive: {:?}); its stderr:\n{stderr}",
        first_alive(&first)
    );
    assert!(!status.success());
    assert!(
        stderr.contains("in use by another wasmtel process") && stderr.contains(&format!("pid {}", first.0.id())),
        "{stderr}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let state = dir.path().join("state");
    assert_eq!(mode(&state), 0o700);
    for entry in std::fs::read_dir(state.join("log/raw")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().extension().is_some_and(|x| x == "seg") {
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }
}
