//! The `collector-sql` guest against the bundled sample database (a real
//! SQLite file created from `examples/sample-data/seed.sql`), and the
//! boundaries of its `sql` capability.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtel::config::{self, DataSource, Limits};
use wasmtel::datasource::DataSources;
use wasmtel::report::CountParentType;
use wasmtel::runtime::collector::CollectorModule;
use wasmtel::runtime::{GuestFailure, ModuleSource};

use crate::common::*;

/// The `[collectors.config]` table of the quickstart config.
fn quickstart_collector_config() -> BTreeMap<String, String> {
    let loaded = config::load(&repo().join("examples/quickstart.toml")).unwrap();
    loaded.config.collectors[0].config.iter().map(|(k, v)| (k.clone(), v.as_text())).collect()
}

fn sample_db(dir: &std::path::Path) -> Arc<DataSources> {
    let mut sources = BTreeMap::new();
    sources.insert(
        "main".to_string(),
        DataSource::Sqlite {
            path: dir.join("sample.db"),
            seed_sql: Some(repo().join("examples/sample-data/seed.sql")),
            max_rows: wasmtel::datasource::MAX_ROWS,
            max_bytes: wasmtel::datasource::MAX_BYTES,
        },
    );
    Arc::new(DataSources::open(std::path::Path::new("test.toml"), &sources).unwrap())
}

fn collector(data: Arc<DataSources>, grants: &[&str], config: BTreeMap<String, String>) -> CollectorModule {
    let source = ModuleSource::resolve("counts", wasmtel::guests::COLLECTOR_SQL, None).unwrap();
    let limits = Limits { deadline_ms: 10_000, memory_mib: 64 };
    CollectorModule::new(
        runtime(),
        source,
        limits,
        config,
        data,
        grants.iter().map(|s| s.to_string()).collect(),
        Default::default(),
    )
    .unwrap()
}

#[test]
fn counts_match_the_seeded_database() {
    let dir = tempdir();
    let module = collector(sample_db(dir.path()), &["main"], quickstart_collector_config());
    let collected = module.collect().expect("collection succeeds");
    let mut got: BTreeMap<(String, String), u32> = BTreeMap::new();
    for c in &collected.counts {
        let expected_type =
            if c.resource_name == "organizations" { CountParentType::Instance } else { CountParentType::Organization };
        assert_eq!(c.parent_type, expected_type, "{c:?}");
        got.insert((c.resource_name.clone(), c.parent_id.clone()), c.amount);
    }
    // examples/sample-data/EXPECTED.md
    let expected = [
        ("organizations", "inst-acme", 3),
        ("organizations", "inst-globex", 2),
        ("users", "org-acme-1", 12),
        ("users", "org-acme-2", 7),
        ("users", "org-acme-3", 0),
        ("users", "org-globex-1", 25),
        ("users", "org-globex-2", 3),
        ("projects", "org-acme-1", 4),
        ("projects", "org-acme-2", 2),
        ("projects", "org-acme-3", 1),
        ("projects", "org-globex-1", 3),
        ("projects", "org-globex-2", 0),
        ("applications", "org-acme-1", 6),
        ("applications", "org-acme-2", 3),
        ("applications", "org-acme-3", 0),
        ("applications", "org-globex-1", 10),
        ("applications", "org-globex-2", 0),
        ("sessions", "org-acme-1", 30),
        ("sessions", "org-acme-2", 9),
        ("sessions", "org-acme-3", 0),
        ("sessions", "org-globex-1", 40),
        ("sessions", "org-globex-2", 5),
        ("actions", "org-acme-1", 2),
        ("actions", "org-acme-2", 1),
        ("actions", "org-acme-3", 0),
        ("actions", "org-globex-1", 3),
        ("actions", "org-globex-2", 0),
    ];
    let expected: BTreeMap<(String, String), u32> =
        expected.iter().map(|(r, p, n)| ((r.to_string(), p.to_string()), *n)).collect();
    assert_eq!(got, expected);
    assert_eq!(collected.counts.len(), 27);
    let users = collected.counts.iter().find(|c| c.resource_name == "users").unwrap();
    assert_eq!(users.table_name, "users14");
    let base = collected.base.expect("base information");
    assert_eq!(base.version, "v2.71.0");
    let ids: Vec<_> = base.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["inst-acme", "inst-globex"]);
    assert_eq!(base.instances[1].domains, ["globex.example.net"]);
    assert_eq!(base.instances[0].created_at.timestamp(), 1_672_531_200);
}

#[test]
fn queries_outside_the_grant_are_refused() {
    let dir = tempdir();
    let module = collector(sample_db(dir.path()), &[], quickstart_collector_config());
    match module.collect() {
        Err(GuestFailure::PluginError(msg)) => {
            assert!(msg.contains("not granted") || msg.contains("no data sources granted"), "{msg}")
        }
        other => panic!("expected a refused query, got {other:?}"),
    }
}

#[test]
fn writes_are_refused_through_the_capability() {
    let dir = tempdir();
    let mut cfg = quickstart_collector_config();
    cfg.insert("resources".into(), "users".into());
    cfg.insert("resource.users.sql".into(), "DELETE FROM users14 RETURNING instance_id, 'organization' AS parent_type, resource_owner AS parent_id, 1 AS amount".into());
    let data = sample_db(dir.path());
    let module = collector(data.clone(), &["main"], cfg);
    assert!(matches!(module.collect(), Err(GuestFailure::PluginError(m)) if m.contains("query failed")));
    let rows = data.query("main", "SELECT count(*) FROM users14", &[], std::time::Duration::from_secs(1)).unwrap();
    assert_eq!(rows.rows[0][0], wasmtel::datasource::SqlCell::Integer(51), "nothing was deleted");
}

#[test]
fn missing_module_config_is_a_clear_plugin_error() {
    let dir = tempdir();
    let module = collector(sample_db(dir.path()), &["main"], config(&[("resources", "users")]));
    match module.collect() {
        Err(GuestFailure::PluginError(msg)) => assert!(msg.contains("resource.users.sql"), "{msg}"),
        other => panic!("expected invalid config, got {other:?}"),
    }
}

#[test]
fn a_huge_sql_result_is_stopped_by_the_byte_budget_with_host_memory_flat() {
    let dir = tempdir();
    let seed = repo().join("examples/sample-data/seed.sql");
    // 200 rows of 10 MB (each below SQLite's length limit): 2 GB if the
    // host read it all.
    let config = format!(
        r#"state_dir = "state"
[data_sources.main]
kind = "sqlite"
path = "sample.db"
seed_sql = {seed:?}
max_bytes = 16777216
[[collectors]]
name = "hog"
module = "builtin:collector-sql"
sources = ["main"]
deadline_ms = 20000
[collectors.config]
resources = "users"
"resource.users.sql" = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 200) SELECT 'i' AS instance_id, 'instance' AS parent_type, 'p' AS parent_id, 1 AS amount, zeroblob(10000000) AS pad FROM c"
[[sinks]]
kind = "jsonl"
path = "out.jsonl"
streams = ["reports"]
"#
    );
    let path = dir.path().join("hog.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["run", "--once", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The high-water mark only grows: its last reading before the exit is
    // at least every earlier peak.
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1));
            peak_kib = peak_kib.max(hwm.and_then(|v| v.parse().ok()).unwrap_or(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("data source \"main\"") && stderr.contains("max_bytes = 16777216"),
        "the error names the source and the limit: {stderr}"
    );
    assert!(peak_kib > 0 && peak_kib < 400 * 1024, "peak RSS {} MiB", peak_kib / 1024);
}
