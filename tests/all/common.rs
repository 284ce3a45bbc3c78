//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use serde_json::Value;
use wasmtel::config::{Limits, UnknownFields};
use wasmtel::event::Event;
use wasmtel::runtime::redactor::RedactorModule;
use wasmtel::runtime::{ModuleSource, Runtime, RuntimeOptions};
use wasmtel::transforms::redact::{Failed, FindingSource, Passed, RedactionChain, new_batch};

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

/// Runs events through one redactor.
pub fn redact_with(redactor: Arc<dyn FindingSource>, events: Vec<Event>) -> Result<Passed, Failed> {
    let ids: Vec<String> = (0..events.len()).map(|i| format!("test:{}", i + 1)).collect();
    RedactionChain::new(vec![redactor]).redact(events, &ids, &mut new_batch())
}

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Reads a JSONL file into values (empty when missing).
pub fn read_jsonl(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
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
pub fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child process killed (SIGKILL) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
