//! `wasmtel bench ingest`: `BatchEmitTelemetry` of 500-event batches over
//! loopback from N concurrent clients → spool → redaction → JSONL sink, with
//! redaction on (the WASM redactor-pii) and off, in one run: events/s until
//! every event is in the sink, p50/p99 RPC latency, and the process's peak
//! RSS.

use std::time::{Duration, Instant};

use crate::proto::ingest as pb;
use crate::proto::ingest::telemetry_service_client::TelemetryServiceClient;

use super::synthetic;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs the benchmark and prints the figures.
pub fn run(clients: usize, batches: usize, batch: usize) -> anyhow::Result<()> {
    let total = clients * batches * batch;
    println!(
        "bench ingest: {clients} clients × {batches} BatchEmit × {batch} events = {total} events over loopback → JSONL sink"
    );
    let events: Vec<pb::TelemetryEvent> = synthetic::events(batch)
        .into_iter()
        .map(|e| pb::TelemetryEvent {
            org_id: e.org_id,
            user_id: e.user_id,
            device_id: e.device_id,
            session_id: e.session_id,
            event_type: e.event_type,
            source: e.source,
            metadata: serde_json::Value::Object(e.metadata).to_string().into_bytes(),
            created_at: None,
            id: String::new(),
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut rates = Vec::new();
    for redaction in [true, false] {
        let dir = std::env::temp_dir().join(format!("wasmtel-bench-ingest-{}-{redaction}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let redactors = "[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\nbatch_size = 500\n";
        let text = format!(
            "state_dir = \"state\"\n[ingest]\nmax_batch = {batch}\nrequest_telemetry = false\n{redactors}[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\nstreams = [\"events\"]\n"
        );
        let loaded = crate::config::parse(&dir.join("bench.toml"), &text)?;
        let mut plan = crate::topology::Plan::build(&loaded)?;
        if !redaction {
            plan.chain = crate::transforms::redact::RedactionChain::new(Vec::new());
            plan.allow_unredacted = true;
        }
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(async move {
            crate::sources::ingest::serve_plan(plan, listener, async {
                if stopped.await.is_err() {
                    tracing::debug!("the benchmark dropped its stop signal");
                }
            })
            .await
        });
        let started = Instant::now();
        let (latencies, busy) = runtime.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let events = events.clone();
                tasks.push(tokio::spawn(async move {
                    let mut client = TelemetryServiceClient::connect(format!("http://{addr}")).await?;
                    let (mut latencies, mut busy) = (Vec::new(), 0u64);
                    for _ in 0..batches {
                        loop {
                            let t = Instant::now();
                            match client
                                .batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events: events.clone() })
                                .await
                            {
                                Ok(_) => {
                                    latencies.push(t.elapsed());
                                    break;
                                }
                                Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                                    busy += 1;
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                }
                                Err(s) => return Err(anyhow::anyhow!("{s}")),
                            }
                        }
                    }
                    anyhow::Ok((latencies, busy))
                }));
            }
            let (mut all, mut busy) = (Vec::new(), 0);
            for t in tasks {
                let (l, b) = t.await??;
                all.extend(l);
                busy += b;
            }
            anyhow::Ok((all, busy))
        })?;
        // Until every event is in the sink.
        let out = dir.join("out.jsonl");
        loop {
            let lines = std::fs::read(&out).map(|b| b.iter().filter(|c| **c == b'\n').count()).unwrap_or(0);
            if lines >= total {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "only {lines} of {total} events reached the sink"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let secs = started.elapsed().as_secs_f64();
        let _ = stop.send(());
        runtime.block_on(server)??;
        let mut sorted = latencies.clone();
        sorted.sort();
        let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
        println!(
            "  redaction {:<3}  {:>8.0} events/s end to end   RPC p50 {:>6.1} ms  p99 {:>6.1} ms   {busy} RESOURCE_EXHAUSTED retries   peak RSS {:.0} MiB",
            if redaction { "on" } else { "off" },
            total as f64 / secs,
            pct(0.5),
            pct(0.99),
            peak_rss_mib()
        );
        rates.push(total as f64 / secs);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("  ratio: with redaction {:.2}x the throughput without", rates[0] / rates[1]);
    Ok(())
}
