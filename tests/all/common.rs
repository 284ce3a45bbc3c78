//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use serde_json::Value;
use wasmtel::config::{Limits, UnknownFields};
use wasmtel::event::{Event, Record};
use wasmtel::runtime::redactor::RedactorModule;
use wasmtel::runtime::{ModuleSource, Runtime, RuntimeOptions};
use wasmtel::stats::Stats;
use wasmtel::topology::{Mode, Plan, Topology};
use wasmtel::transforms::redact::{FindingSource, Outcome, Packed, RedactionChain};

/// One runtime for the whole test binary, with a component cache under the
/// target folder so each guest compiles once.
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeOptions {
                cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
                max_memory_mib: 256,
                max_instances: 256,
            })
            .expect("runtime")
        })
        .clone()
}

/// Module config from pairs.
pub fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Loads a redactor component from a path.
pub fn redactor(name: &str, path: &str, limits: Limits, pairs: &[(&str, &str)]) -> RedactorModule {
    let source = ModuleSource::resolve(name, path, None).expect("module file");
    RedactorModule::new(runtime(), source, limits, config(pairs)).expect("module loads")
}

/// The builtin redactor-pii with its default config.
pub fn pii_redactor(pairs: &[(&str, &str)]) -> Arc<dyn FindingSource> {
    Arc::new(redactor("pii", wasmtel::guests::REDACTOR_PII, Limits { deadline_ms: 5_000, memory_mib: 64 }, pairs))
}

/// Parses an event from JSON.
pub fn event(json: Value) -> Event {
    Event::from_json(json, UnknownFields::Reject, Utc::now()).expect("valid event")
}

/// Events as records with ids `test:1`, `test:2`, ...
pub fn records(events: Vec<Event>) -> Vec<Record> {
    events.into_iter().enumerate().map(|(i, event)| Record { id: format!("test:{}", i + 1), event }).collect()
}

/// Runs events through one redactor: `Ok` when all passed, `Err` with the
/// outcome when any was rejected.
#[allow(clippy::result_large_err)]
pub fn redact_with(redactor: Arc<dyn FindingSource>, events: Vec<Event>) -> Result<Outcome, Outcome> {
    let outcome = RedactionChain::new(vec![redactor]).redact(records(events), &mut Packed::default());
    if outcome.rejected.is_empty() { Ok(outcome) } else { Err(outcome) }
}

/// A multi-threaded runtime for tests that run the stage graph.
pub fn graph_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// `wasmtel run --once` in-process: the whole stage graph over the
/// config's `[events]`, until the input is exhausted and the sinks drained.
pub fn run_once(loaded: &wasmtel::config::LoadedConfig) -> Stats {
    let topology = Topology::open(Plan::build(loaded).expect("plan"), Mode::Run { once: true }).expect("topology");
    graph_runtime().block_on(topology.run(std::future::pending())).expect("the run completes")
}

/// The dead letters of a state folder, as JSON (with their ids).
pub fn dead_letters(state_dir: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    wasmtel::dead_letter::read(state_dir, |stored| {
        let mut v = serde_json::to_value(&stored.letter).unwrap();
        v["id"] = stored.id.into();
        out.push(v);
    })
    .expect("readable dead-letter store");
    out
}

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Reads the complete lines of a JSONL file into values (empty when
/// missing). A last line without its newline is being written right now by
/// the process under test and is left for the next read, as a tailing
/// consumer would; any other line must be valid JSON.
pub fn read_jsonl(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Polls `f` until it holds; panics (naming `what`) after 60 s so a broken
/// test fails instead of hanging. A guard, not a timing check.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !f() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            panic!("gave up waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A loopback address nothing listens on (yet).
/// Never the same port twice in this test binary, so two tests running in
/// parallel cannot be handed one port between its release and its use.
pub fn free_port() -> std::net::SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&addr.port()) {
            given.push(addr.port());
            return addr;
        }
    }
}

/// A child process killed (SIGKILL) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Puts a report into a report sink's outbox and delivers what it holds.
pub fn send(sink: &mut wasmtel::sinks::report::ReportSink, report: &wasmtel::report::Report) {
    sink.push(report).expect("outbox write");
    drain(sink);
}

/// Delivers what a report sink's outbox holds (as its task would), on one
/// runtime for the whole test binary: a sink's gRPC channel lives on the
/// runtime it was first used on, as it does in the process.
pub fn drain(sink: &mut wasmtel::sinks::report::ReportSink) {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(graph_runtime).block_on(sink.drain()).expect("outbox readable");
}

/// A config for `wasmtel serve` on `addr`: the builtin redactor and a JSONL
/// sink `out.jsonl`, written to `dir/serve.toml`.
pub fn serve_config(dir: &std::path::Path, addr: std::net::SocketAddr) -> PathBuf {
    let text = format!(
        "state_dir = \"state\"\n[ingest]\nlisten = \"{addr}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `wasmtel serve --config` as a process (standard output as given),
/// once it answers on `addr`.
pub fn serve_with(config: &std::path::Path, addr: std::net::SocketAddr, stdout: std::process::Stdio) -> KillOnDrop {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(config)
        .env("WASMTEL_LOG", "warn")
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    wait_for("the server", || std::net::TcpStream::connect(addr).is_ok());
    assert!(child.0.try_wait().unwrap().is_none(), "the server on {addr} exited at start (is the port taken?)");
    child
}

/// [`serve_with`] with standard output discarded.
pub fn serve(config: &std::path::Path, addr: std::net::SocketAddr) -> KillOnDrop {
    serve_with(config, addr, std::process::Stdio::null())
}

/// The resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}
