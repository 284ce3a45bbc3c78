//! `wasmtel bench report`: resource counts reported over loopback to the
//! real receiver (SQLite storage) through the gRPC reporter sink, with
//! durable outbox progress, for bulk sizes 100 and 1000. The baseline is
//! the receiver's storage alone (the same batches written straight to
//! SQLite, no gRPC, no outbox), measured in the same run.

use std::time::Instant;

use chrono::Utc;

use crate::installation::ReportingSwitch;
use crate::receiver::{ReceiverConfig, ReceiverStore};
use crate::report::{BaseInformation, CountParentType, Report, ResourceCount};
use crate::sinks::report::zitadel::{self, ZitadelConfig};

/// A report with one `users` count per organization.
pub fn report(orgs: usize) -> Report {
    let now = Utc::now();
    Report {
        collector: "bench".into(),
        module_sha256: "bench".into(),
        collected_at: now,
        base: Some(BaseInformation { version: "bench".into(), instances: Vec::new() }),
        counts: (0..orgs)
            .map(|i| ResourceCount {
                instance_id: format!("inst-{}", i % 10),
                parent_type: CountParentType::Organization,
                parent_id: format!("org-{i:06}"),
                resource_name: "users".into(),
                table_name: "users14".into(),
                updated_at: now,
                amount: (i % 1000) as u32,
            })
            .collect(),
    }
}

/// Runs the benchmark and prints the figures.
pub fn run(orgs: usize) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let config = ReceiverConfig { database: dir.join("receiver.db"), ..ReceiverConfig::default() };
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        crate::receiver::serve(std::path::Path::new("receiver.toml"), &config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let report = report(orgs);
    println!("bench report: {orgs} resource counts (one per organization) to a receiver on {addr}");
    for bulk in [100usize, 1000] {
        let sink_config: ZitadelConfig =
            toml::from_str(&format!("endpoint = \"http://{addr}\"\nbulk_size = {bulk}\nname = \"bench-{bulk}\""))?;
        let mut sink = zitadel::sink(sink_config, &dir.join(format!("state-{bulk}")), ReportingSwitch::default())?;
        sink.push(&crate::bench::report::report(10))?; // connect and warm up
        runtime.block_on(sink.drain())?;
        let start = Instant::now();
        sink.push(&report)?;
        runtime.block_on(sink.drain())?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(sink.stats().delivered == 2, "the benchmark report was not delivered");
        let rpcs = orgs.div_ceil(bulk) + usize::from(orgs.is_multiple_of(bulk)) + 1;
        println!(
            "  bulk {bulk:>5}: {:>9.0} counts/s  {:>7.2} ms per RPC  ({rpcs} RPCs in {:.0} ms)",
            orgs as f64 / secs,
            secs * 1e3 / rpcs as f64,
            secs * 1e3
        );

        // Baseline: the same batches straight into a fresh store.
        let store = ReceiverStore::open(&dir.join(format!("direct-{bulk}.db")))?;
        let report_id = store.begin_report("bench", report.base.as_ref())?;
        let start = Instant::now();
        for chunk in report.counts.chunks(bulk) {
            store.store_counts("bench", &report_id, chunk)?;
        }
        let direct = start.elapsed().as_secs_f64();
        println!(
            "  bulk {bulk:>5}: {:>9.0} counts/s  storage only (baseline); gRPC reporting costs {:.2}x the storage time",
            orgs as f64 / direct,
            secs / direct
        );
    }
    let _ = stop.send(());
    runtime.block_on(server)??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("wasmtel-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
