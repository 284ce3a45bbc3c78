//! Hostile guests as tiny WebAssembly text modules (`tests/wat/`): each is a
//! core module doing one bad thing, wrapped by `tests/wat/redactor.wat` into
//! a component of the `redactor` world. For each: the host stays up, the
//! work fails closed (events dead-lettered with a reason, nothing reaches
//! the sink), and the error says what happened.

use std::sync::{Arc, Mutex};

use serde_json::json;
use wasmtel::config::Limits;
use wasmtel::runtime::redactor::RedactorModule;
use wasmtel::runtime::{GuestFailure, ModuleSource};

use crate::common::*;

const LIMITS: Limits = Limits { deadline_ms: 50, memory_mib: 16 };

/// The component for `tests/wat/<case>.wat`, with `imports` added to the
/// wrapper's component imports.
fn component(case: &str, imports: &str) -> Vec<u8> {
    let dir = repo().join("tests/wat");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let text = read("redactor.wat").replace(";; @CORE", &read(&format!("{case}.wat"))).replace(";; @IMPORTS", imports);
    wat::parse_str(&text).unwrap_or_else(|e| panic!("tests/wat/{case}.wat: {e}"))
}

/// Loads a case as a redactor in the shared runtime.
fn load(case: &str, imports: &str, limits: Limits) -> anyhow::Result<RedactorModule> {
    let source = ModuleSource::from_bytes(case, &format!("tests/wat/{case}.wat"), Arc::from(component(case, imports)));
    RedactorModule::new(runtime(), source, limits, Default::default())
}

fn events() -> Vec<wasmtel::event::Event> {
    vec![
        event(json!({"orgId": "o1", "userId": "a secret", "metadata": {"note": "the secret is here"}})),
        event(json!({"orgId": "o2", "metadata": {"k": "another secret"}})),
    ]
}

/// The host keeps serving: the builtin redactor redacts in the same runtime.
fn assert_host_serves() {
    let email = vec![event(json!({"orgId": "o", "metadata": {"m": "mail bob@example.com"}}))];
    let passed = redact_with(pii_redactor(&[]), email).expect("the host still redacts");
    assert!(!passed.passed[0].event().to_json_line().contains("bob@example.com"));
}

/// Through the library: every event is rejected, alone, with a failure
/// `expected` accepts, and comes back untouched for the dead-letter store.
fn assert_fails_closed(module: RedactorModule, expected: impl Fn(&GuestFailure) -> bool) {
    let input = events();
    let failed = redact_with(Arc::new(module), input.clone()).expect_err("the batch must fail");
    assert_eq!(failed.rejected.len(), input.len(), "each event tried alone, each rejected");
    assert!(failed.passed.is_empty());
    for (r, original) in failed.rejected.iter().zip(&input) {
        assert!(expected(&r.failure), "unexpected failure: {}", r.failure);
        assert_eq!(&r.record.event, original, "the dead letter is the untouched input");
    }
    assert_host_serves();
}

/// Through the whole stage graph: the case's component as a file in a run;
/// every event is dead-lettered with a reason containing `reason`, the sink
/// gets nothing.
fn assert_run_dead_letters(case: &str, limits: Limits, reason: &str) {
    let dir = tempdir();
    let module = dir.path().join(format!("{case}.wasm"));
    std::fs::write(&module, component(case, "")).unwrap();
    let input: String = events().iter().map(|e| e.to_json_line() + "\n").collect();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let toml = format!(
        "state_dir = \"state\"\n[limits]\ndeadline_ms = {}\nmemory_mib = {}\n[events]\npath = \"in.jsonl\"\n\
         [[redactors]]\nname = \"{case}\"\nmodule = {:?}\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n",
        limits.deadline_ms,
        limits.memory_mib,
        module.display().to_string()
    );
    std::fs::write(dir.path().join("wasmtel.toml"), toml).unwrap();
    let stats = run_once(&wasmtel::config::load(&dir.path().join("wasmtel.toml")).unwrap());
    assert_eq!((stats.events_out, stats.dead_redact), (0, 2), "{case}: both events dead-lettered");
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap_or_default();
    assert!(!out.contains("secret"), "{case}: un-redacted data reached the sink: {out}");
    let dead = dead_letters(&dir.path().join("state"));
    assert_eq!(dead.len(), 2);
    for d in &dead {
        assert_eq!((d["stage"].as_str(), d["component"].as_str()), (Some("redact"), Some(case)));
        assert!(d["reason"].as_str().unwrap().contains(reason), "{case}: {}", d["reason"]);
    }
    assert_host_serves();
}

/// A load error through a config: `wasmtel run` refuses to start, naming
/// the module's config key.
fn plan_error(case: &str, imports: &str) -> String {
    let dir = tempdir();
    let module = dir.path().join(format!("{case}.wasm"));
    std::fs::write(&module, component(case, imports)).unwrap();
    let toml = format!(
        "state_dir = \"state\"\n[limits]\ndeadline_ms = 50\n[[redactors]]\nname = \"{case}\"\nmodule = {:?}\n",
        module.display().to_string()
    );
    let loaded = wasmtel::config::parse(&dir.path().join("wasmtel.toml"), &toml).unwrap();
    let err = wasmtel::topology::Plan::build(&loaded).err().expect("the module must be refused").to_string();
    assert!(err.contains("redactors[0].module") && err.contains(&module.display().to_string()), "{err}");
    err
}

#[test]
fn the_wat_wrapper_is_a_working_redactor() {
    let module = load("well-behaved", "", LIMITS).expect("loads");
    let passed = redact_with(Arc::new(module), events()).expect("no findings, no failure");
    assert_eq!(passed.passed.len(), 2);
}

#[test]
fn an_infinite_loop_in_the_start_function_is_a_clear_load_error() {
    let err = format!("{:#}", load("start-loop", "", LIMITS).err().expect("instantiation must be interrupted"));
    assert!(err.contains("cannot be instantiated") && err.contains("50 ms deadline"), "{err}");
    let err = plan_error("start-loop", "");
    assert!(err.contains("50 ms deadline"), "{err}");
    assert_host_serves();
}

#[test]
fn memory_growth_stops_at_the_cap() {
    assert_fails_closed(load("memory-grow", "", LIMITS).unwrap(), |f| {
        matches!(f, GuestFailure::MemoryCap { cap_mib: 16 })
    });
    assert_run_dead_letters("memory-grow", LIMITS, "memory cap");
}

#[test]
fn table_growth_stops_at_the_cap() {
    assert_fails_closed(
        load("table-grow", "", LIMITS).unwrap(),
        |f| matches!(f, GuestFailure::Trap(m) if m.contains("table cap") && m.contains("20000 elements")),
    );
    assert_run_dead_letters("table-grow", LIMITS, "table cap");
}

#[test]
fn deep_recursion_exhausts_the_stack_not_the_host() {
    assert_fails_closed(
        load("recursion", "", LIMITS).unwrap(),
        |f| matches!(f, GuestFailure::Trap(m) if m.contains("call stack exhausted")),
    );
    assert_run_dead_letters("recursion", LIMITS, "call stack exhausted");
}

#[test]
fn a_million_findings_are_refused() {
    let limits = Limits { deadline_ms: 5_000, memory_mib: 64 };
    assert_fails_closed(
        load("million-findings", "", limits).unwrap(),
        |f| matches!(f, GuestFailure::InvalidFinding(m) if m.starts_with("1000000 findings for a batch of")),
    );
    assert_run_dead_letters("million-findings", limits, "more findings than bytes");
}

#[test]
fn invalid_utf8_in_a_replacement_is_refused() {
    assert_fails_closed(
        load("bad-utf8", "", LIMITS).unwrap(),
        |f| matches!(f, GuestFailure::Trap(m) if m.contains("utf-8")),
    );
    assert_run_dead_letters("bad-utf8", LIMITS, "utf-8");
}

/// Captures the host log lines written on this thread while `f` runs.
fn host_log_lines(f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Lines::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    // The chain runs on this thread, so a thread-local subscriber sees the guest's lines.
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    text.lines().map(String::from).collect()
}

fn load_with(case: &str, grants: wasmtel::config::ModuleGrants) -> RedactorModule {
    let source = ModuleSource::from_bytes(case, &format!("tests/wat/{case}.wat"), Arc::from(component(case, "")));
    RedactorModule::with_grants(runtime(), source, LIMITS, Default::default(), grants).unwrap()
}

/// The host log lines a flood of `log` calls gets through, with the module
/// granted `grants`, and how long the calls took in seconds.
fn log_flood_lines(grants: wasmtel::config::ModuleGrants) -> (Vec<String>, f64) {
    let module = load_with("log-flood", grants);
    let started = std::time::Instant::now();
    let lines = host_log_lines(|| {
        assert_fails_closed(module, |f| matches!(f, GuestFailure::Timeout { deadline_ms: 50 }));
    });
    (lines, started.elapsed().as_secs_f64())
}

/// A guest logging in an endless loop is stopped by the deadline and its
/// batch fails closed; its lines are rate-limited per module (10 per second
/// by default, bursts of as many) and what was dropped is counted in the
/// log. The lines themselves are withheld: the chain (this module alone)
/// fails on them, so they cannot be shown redacted.
#[test]
fn a_flood_of_log_calls_is_rate_limited_and_stopped_by_the_deadline() {
    let (lines, seconds) = log_flood_lines(Default::default());
    let withheld: Vec<&String> = lines.iter().filter(|l| l.contains("guest log line withheld")).collect();
    assert!(!withheld.is_empty(), "{lines:#?}");
    assert!(
        withheld.iter().all(|l| l.contains("module=\"log-flood\"") || l.contains("module=log-flood")),
        "{}",
        withheld[0]
    );
    let allowed = 10 + (10.0 * seconds).ceil() as usize;
    assert!(withheld.len() <= allowed, "{} lines got through in {seconds:.2} s (at most {allowed})", withheld.len());
    assert!(lines.iter().any(|l| l.contains("guest log lines dropped") && l.contains("dropped=")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("flood") && !l.contains("log-flood")), "no raw line: {lines:#?}");
    assert_run_dead_letters("log-flood", LIMITS, "timeout");
}

/// A redactor that copies PII into its log: the line reaches the host log
/// only after the chain redacted it.
#[test]
fn a_redactor_cannot_copy_pii_into_the_host_log() {
    let chain: Vec<Arc<dyn wasmtel::transforms::redact::FindingSource>> =
        vec![Arc::new(load_with("log-pii", Default::default())), pii_redactor(&[])];
    let chain = wasmtel::transforms::redact::RedactionChain::new(chain);
    let lines = host_log_lines(|| {
        let records = records(events());
        let outcome = chain.redact(records, &mut Default::default());
        assert_eq!(outcome.passed.len(), 2);
    });
    assert!(!lines.iter().any(|l| l.contains("jane.doe@example.com")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("saw user") && l.contains("in the batch") && l.contains("log-pii")),
        "{lines:#?}"
    );
}

#[test]
fn grants_log_false_keeps_a_module_out_of_the_host_log() {
    let grants = wasmtel::config::ModuleGrants { log: false, ..Default::default() };
    let (lines, _) = log_flood_lines(grants);
    assert!(!lines.iter().any(|l| l.contains("flood")), "{lines:#?}");
}

#[test]
fn a_missing_import_is_a_load_error_naming_it() {
    let imports =
        r#"(import "wasmtel:telemetry/net@0.2.0" (instance (export "connect" (func (param "host" string)))))"#;
    let err = format!("{:#}", load("well-behaved", imports, LIMITS).err().expect("the import is missing"));
    assert!(err.contains("wasmtel:telemetry/net@0.2.0") && err.contains("does not implement"), "{err}");
    let err = plan_error("well-behaved", imports);
    assert!(err.contains("wasmtel:telemetry/net@0.2.0"), "{err}");
    assert_host_serves();
}
