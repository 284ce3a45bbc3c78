//! Kafka end to end against a real broker (tansu, started by
//! `scripts/kafka-broker` on 127.0.0.1): JSONL → redactor → Kafka sink →
//! `wasmtel worker` processes in one consumer group → Loki (the stand-in).
//! Every event carries a sequence number, so a missing one is found and
//! duplicates are counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmtel::devtools::loki::LokiStub;

use crate::common::*;
use crate::reporting::server_runtime;

/// A broker process, stopped when dropped.
pub struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    topics: Vec<String>,
}

impl Broker {
    /// Starts a broker with `topics` (`name:partitions`).
    pub fn start(topics: &[&str]) -> Broker {
        let port = free_port().port();
        let broker = Broker { dir: tempdir(), port, topics: topics.iter().map(|t| t.to_string()).collect() };
        broker.up();
        broker
    }

    fn up(&self) {
        let out = Command::new(repo().join("scripts/kafka-broker"))
            .arg("start")
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .args(&self.topics)
            .output()
            .unwrap();
        assert!(out.status.success(), "broker did not start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the broker process (its data stays).
    pub fn stop(&self) {
        let _ = Command::new(repo().join("scripts/kafka-broker")).arg("stop").arg(self.dir.path()).status();
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&self) {
        self.up();
    }

    /// `host:port` for clients.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child process killed when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A consumer in group `group` reading `topic` of `broker` from the start.
pub fn consumer(broker: &Broker, group: &str, topic: &str) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

fn wasmtel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmtel"));
    cmd.env("WASMTEL_LOG", "wasmtel=info");
    cmd
}

fn start_worker(dir: &Path, name: &str, broker: &Broker, loki: &str) -> Proc {
    let toml = format!(
        r#"state_dir = "{name}-state"
[[redactors]]
name = "pii"
module = "builtin:redactor-pii"
[worker]
brokers = "{brokers}"
topic = "events"
group_id = "loki-writers"
session_timeout_ms = 6000
[worker.loki]
endpoint = "{loki}"
batch_timeout_ms = 200
[worker.loki.retry]
initial_backoff_ms = 50
max_backoff_ms = 500
"#,
        brokers = broker.addr()
    );
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let log = dir.join(format!("{name}.log"));
    let child = wasmtel()
        .args(["worker", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc { child, log }
}

/// Writes events `from..to` (each with `metadata.seq`, some with PII) and a
/// producer config sending them to the broker.
fn producer_config(dir: &Path, broker: &Broker, from: usize, to: usize, extra: &str) -> PathBuf {
    let events: String = (from..to)
        .map(|i| {
            let e = json!({"orgId": format!("org-{}", i % 10), "userId": format!("u{i}@example.com"), "eventType": "login", "source": "sdk",
                "createdAt": wasmtel::event::format_time(chrono::Utc::now()), "metadata": {"seq": i, "ip": "203.0.113.9"}});
            format!("{e}\n")
        })
        .collect();
    let input = dir.join(format!("events-{from}.jsonl"));
    std::fs::write(&input, events).unwrap();
    let toml = format!(
        r#"state_dir = "producer-state"
[events]
path = {input:?}
[[redactors]]
name = "pii"
module = "builtin:redactor-pii"
[[sinks]]
kind = "kafka"
brokers = "{brokers}"
topic = "events"
{extra}
"#,
        input = input.display().to_string(),
        brokers = broker.addr()
    );
    let path = dir.join(format!("producer-{from}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

fn produce(config: &Path) -> String {
    let out = wasmtel().args(["run", "--once", "--config"]).arg(config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Sequence numbers in Loki and how often each arrived.
fn seqs(stub: &LokiStub) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in stub.state().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["userId"], "<EMAIL>", "events reach Loki redacted");
        *seen.entry(v["metadata"]["seq"].as_u64().unwrap()).or_insert(0) += 1;
    }
    seen
}

/// Waits until Loki has every sequence number below `n`; returns the duplicates.
fn wait_for_all(stub: &LokiStub, n: u64, workers: &[&Proc]) -> usize {
    let started = Instant::now();
    loop {
        let seen = seqs(stub);
        if (0..n).all(|s| seen.contains_key(&s)) {
            let duplicates = seen.values().map(|c| c - 1).sum::<usize>() + stub.state().duplicates as usize;
            eprintln!("all {n} events arrived; duplicates: {duplicates}");
            return duplicates;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let missing: Vec<u64> = (0..n).filter(|s| !seen.contains_key(s)).collect();
            let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
            panic!(
                "{} events missing, e.g. {:?}\nworker logs:\n{}",
                missing.len(),
                &missing[..missing.len().min(10)],
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn events_flow_through_kafka_and_two_workers_to_loki() {
    let dir = tempdir();
    let broker = Broker::start(&["events:3"]);
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    let mut a = start_worker(dir.path(), "a", &broker, &stub.endpoint());
    let mut b = start_worker(dir.path(), "b", &broker, &stub.endpoint());
    wait_for("both workers to get partitions", || {
        a.log().contains("partitions assigned") && b.log().contains("partitions assigned")
    });
    std::thread::sleep(Duration::from_secs(2));
    produce(&producer_config(dir.path(), &broker, 0, 300, ""));
    let duplicates = wait_for_all(&stub, 300, &[&a, &b]);
    eprintln!("duplicates (counted, at-least-once): {duplicates}");
    // Graceful shutdown: both exit cleanly and say what they did.
    assert!(a.terminate().success(), "{}", a.log());
    assert!(b.terminate().success(), "{}", b.log());
    let delivered = |log: String| -> u64 {
        let line = log
            .lines()
            .find(|l| l.contains("wasmtel worker: consumed"))
            .unwrap_or_else(|| panic!("no summary in {log}"))
            .to_string();
        line.split("delivered ").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap()
    };
    let (da, db) = (delivered(a.log()), delivered(b.log()));
    assert!(da > 0 && db > 0, "both workers shared the partitions ({da} and {db})");
    assert!(da + db >= 300);
}

#[test]
fn a_worker_stopped_mid_stream_hands_its_partitions_over_and_nothing_is_missing() {
    let dir = tempdir();
    let broker = Broker::start(&["events:3"]);
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    let mut a = start_worker(dir.path(), "a", &broker, &stub.endpoint());
    let b = start_worker(dir.path(), "b", &broker, &stub.endpoint());
    wait_for("both workers to get partitions", || {
        a.log().contains("partitions assigned") && b.log().contains("partitions assigned")
    });
    std::thread::sleep(Duration::from_secs(2));
    produce(&producer_config(dir.path(), &broker, 0, 200, ""));
    wait_for("some events in Loki", || seqs(&stub).len() >= 20);
    // SIGTERM mid-stream: the worker flushes its batch, commits, leaves the
    // group; the other worker is assigned its partitions.
    assert!(a.terminate().success(), "{}", a.log());
    produce(&producer_config(dir.path(), &broker, 200, 400, ""));
    let duplicates = wait_for_all(&stub, 400, &[&b]);
    eprintln!("duplicates after a worker stopped: {duplicates}");
    assert!(b.log().matches("partitions assigned").count() >= 2, "the survivor got a new assignment: {}", b.log());
}

#[test]
fn a_twenty_second_broker_outage_loses_nothing() {
    let dir = tempdir();
    let broker = Broker::start(&["events:3"]);
    let rt = server_runtime();
    let stub = rt.block_on(LokiStub::start()).unwrap();
    let worker = start_worker(dir.path(), "a", &broker, &stub.endpoint());
    produce(&producer_config(dir.path(), &broker, 0, 100, ""));
    wait_for_all(&stub, 100, &[&worker]);

    broker.stop();
    // The producer starts while the broker is down and keeps its messages
    // until it is back (delivery timeout 120 s).
    let config = producer_config(dir.path(), &broker, 100, 200, "");
    let producer = wasmtel().args(["run", "--once", "--config"]).arg(&config).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(20));
    broker.restart();
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dead-lettered:    0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_all(&stub, 200, &[&worker]);
}

/// A broker that is down does not lose or dead-letter events: they wait in
/// the redacted log (the run ends after its drain timeout) and the next run
/// delivers them, ids in the `wasmtel-event-id` header. A message the
/// producer refuses for good (too large) is dead-lettered with the reason.
#[test]
fn a_down_broker_keeps_events_and_refused_messages_are_dead_lettered() {
    use rdkafka::Message;
    use rdkafka::message::Headers;
    let dir = tempdir();
    let broker = Broker::start(&["events:1"]);
    broker.stop();
    let extra = "delivery_timeout_ms = 2000\n[sinks.properties]\n\"message.max.bytes\" = \"2000\"\n[pipeline]\ndrain_timeout_ms = 4000\n";
    let config = producer_config(dir.path(), &broker, 0, 5, extra);
    let stderr = produce(&config);
    assert!(stderr.contains("dead-lettered:    0"), "{stderr}");
    let state = dir.path().join("producer-state");
    let lag = |s: &Path| wasmtel::status::read(s).unwrap().redacted.readers.get("kafka").map_or(u64::MAX, |r| r.lag);
    assert_eq!(lag(&state), 5, "the 5 events wait in the redacted log");

    broker.restart();
    // A second run (no new input) delivers what waited; one oversized event
    // in its input is refused by the producer and dead-lettered.
    let big = json!({"orgId": "org-big", "eventType": "login", "metadata": {"blob": "x".repeat(5000)}});
    std::fs::write(
        dir.path().join("events-0.jsonl"),
        format!("{}{big}\n", std::fs::read_to_string(dir.path().join("events-0.jsonl")).unwrap()),
    )
    .unwrap();
    let stderr = produce(&config);
    assert!(stderr.contains("dead-lettered:    1"), "{stderr}");
    assert_eq!(lag(&state), 0);
    let dead = dead_letters(&state);
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(dead[0]["stage"] == "sink" && dead[0]["reason"].as_str().unwrap().contains("Kafka"), "{dead:#?}");
    assert_eq!(dead[0]["event"]["orgId"], "org-big", "what a sink refused is kept (redacted)");

    let consumer = consumer(&broker, "down-broker-test", "events");
    let mut ids = Vec::new();
    let started = Instant::now();
    while ids.len() < 5 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let header = m.headers().and_then(|h| h.iter().find(|h| h.key == "wasmtel-event-id")).and_then(|h| h.value);
            let id = String::from_utf8(header.expect("the event id header").to_vec()).unwrap();
            let value: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            assert_eq!(value["id"], id.as_str(), "the same id in the value and the header");
            ids.push(id);
        }
    }
    ids.sort();
    let want: Vec<String> = (1..=5).map(|n| format!("events-0.jsonl:{n}")).collect();
    assert_eq!(ids, want, "each event once, with its id");
}
