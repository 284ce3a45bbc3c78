//! `wasmtel bench ingest`: `BatchEmitTelemetry` over loopback from 1, 4 and
//! 16 concurrent clients → raw log (group commit) → redaction → redacted log
//! → JSONL sink, with redaction on (the WASM redactor-pii) and off (a
//! native redactor with no rules: the stage runs, no guest is called), in
//! one run. Events/s are counted end to end: from the first request until the
//! sink file holds every event. Beside them, in the same run:
//!
//! - the same events through `wasmtel redact` offline (the ceiling for the
//!   redaction part);
//! - what group commit buys: the same request bytes appended by the same
//!   number of clients with one `fdatasync` each (no sharing);
//! - RPC latency p50/p99 at full load and at half of it;
//! - the peak RSS of a `wasmtel serve` process taking a 4 MiB pathological
//!   request.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::PathAndQuery;

use crate::proto::ingest as pb;
use crate::transforms::redact::{FindingSource, NativeRedactor, RedactionChain};

use super::synthetic;

/// The gRPC path of `BatchEmitTelemetry`.
const BATCH_EMIT: &str = "/wasmtel.ingest.v1.TelemetryService/BatchEmitTelemetry";

/// A gRPC codec for messages that are already encoded: requests go out as
/// the bytes they are, answers come back undecoded.
#[derive(Clone, Copy, Default)]
struct Encoded;

impl Codec for Encoded {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Encoded;
    type Decoder = Encoded;
    fn encoder(&mut self) -> Encoded {
        Encoded
    }
    fn decoder(&mut self) -> Encoded {
        Encoded
    }
}

impl Encoder for Encoded {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Encoded {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

fn pb_events(n: usize) -> Vec<pb::TelemetryEvent> {
    synthetic::events(n)
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
        .collect()
}

/// A temporary folder for one measurement.
fn scratch(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("wasmtel-bench-ingest-{}-{name}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn lines_in(path: &std::path::Path) -> usize {
    std::fs::read(path).map(|b| bytecount(&b)).unwrap_or(0)
}

/// Counts the lines of a growing file, reading only what was added since
/// the last call (so waiting for a sink costs the machine almost nothing).
struct LineCounter {
    path: std::path::PathBuf,
    offset: u64,
    lines: usize,
}

impl LineCounter {
    fn count(&mut self) -> usize {
        use std::io::{Read, Seek};
        if let Ok(mut f) = std::fs::File::open(&self.path)
            && f.seek(std::io::SeekFrom::Start(self.offset)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                self.offset += n as u64;
                self.lines += bytecount(&buf);
            }
        }
        self.lines
    }
}

fn bytecount(b: &[u8]) -> usize {
    b.iter().filter(|c| **c == b'\n').count()
}

/// One measured configuration.
struct Run {
    end_to_end: f64,
    p50: f64,
    p99: f64,
}

/// Serves, sends `per_client` batches from each client (at `rate` events/s
/// in total, or as fast as possible), waits until the sink holds them all.
fn measure(
    runtime: &tokio::runtime::Runtime,
    events: &[pb::TelemetryEvent],
    clients: usize,
    per_client: usize,
    redaction: bool,
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let dir = scratch(&format!("{clients}-{redaction}"))?;
    let text = format!(
        "state_dir = \"state\"\n[ingest]\nmax_batch = {}\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\nbatch_size = 512\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\nstreams = [\"events\"]\n",
        events.len()
    );
    let loaded = crate::config::parse(&dir.join("bench.toml"), &text)?;
    let mut plan = crate::topology::Plan::build(&loaded)?;
    if !redaction {
        // A redactor with no rules: the stage runs, no guest is called.
        let nothing: Arc<dyn FindingSource> = Arc::new(NativeRedactor::new(pii_rules::RuleSet::empty()));
        plan.chain = RedactionChain::new(vec![nothing]);
    }
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(crate::sources::ingest::serve_plan(plan, listener, async {
        if stopped.await.is_err() {
            tracing::debug!("the benchmark dropped its stop signal");
        }
    }));
    let total = clients * per_client * events.len();
    let gap = rate.map(|r| Duration::from_secs_f64(events.len() as f64 * clients as f64 / r));
    // The request is encoded once: the clients share the two cores with the
    // server, so they should cost as little as they can.
    let body = Bytes::from(pb::BatchEmitTelemetryRequest { events: events.to_vec() }.encode_to_vec());
    let started = Instant::now();
    let latencies = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
                let mut client = tonic::client::Grpc::new(channel);
                let mut latencies = Vec::with_capacity(per_client);
                let mut next = tokio::time::Instant::now();
                for _ in 0..per_client {
                    if let Some(gap) = gap {
                        tokio::time::sleep_until(next).await;
                        next += gap;
                    }
                    loop {
                        let t = Instant::now();
                        client.ready().await?;
                        let path = PathAndQuery::from_static(BATCH_EMIT);
                        match client.unary(tonic::Request::new(body.clone()), path, Encoded).await {
                            Ok(_) => {
                                latencies.push(t.elapsed());
                                break;
                            }
                            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                                tokio::time::sleep(Duration::from_millis(5)).await
                            }
                            Err(s) => return Err(anyhow::anyhow!("{s}")),
                        }
                    }
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        anyhow::Ok(all)
    })?;
    let mut out = LineCounter { path: dir.join("out.jsonl"), offset: 0, lines: 0 };
    while out.count() < total {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(900), "only {} of {total} events arrived", out.lines);
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = started.elapsed().as_secs_f64();
    if stop.send(()).is_err() {
        anyhow::bail!("the server stopped early");
    }
    runtime.block_on(server)??;
    std::fs::remove_dir_all(&dir)?;
    let mut sorted = latencies;
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    Ok(Run { end_to_end: total as f64 / secs, p50: pct(0.5), p99: pct(0.99) })
}

/// The same requests' records appended by `clients` writers: through the
/// log (group commit: concurrent appends share one `fdatasync`) and with
/// one `write` + `fdatasync` per request (no sharing). Events/s for both.
fn group_commit_vs_per_request(batch: usize, clients: usize, per_client: usize) -> anyhow::Result<(f64, f64)> {
    let dir = scratch("append")?;
    let records: Vec<crate::event::Record> = synthetic::records(batch);
    let payloads: Vec<Vec<u8>> =
        records.iter().map(|r| crate::event::codec::event_bytes(r, crate::event::codec::NO_ORIGIN)).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let mut frames = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        crate::log::segment::encode_record(i as u64, p, &mut frames);
    }
    let events = (clients * per_client * batch) as f64;
    let options = crate::log::LogOptions { max_bytes: u64::MAX / 2, max_events: u64::MAX / 2, ..Default::default() };
    let (log, _) = crate::log::Log::open(&dir.join("log"), options)?;
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> Result<(), crate::log::LogError> {
                    for _ in 0..per_client {
                        log.append(&refs)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("an appender panicked"))??;
        }
        Ok(())
    })?;
    let grouped = events / started.elapsed().as_secs_f64();
    let file = Mutex::new(std::fs::File::create(dir.join("plain"))?);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    for _ in 0..per_client {
                        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                        f.write_all(&frames)?;
                        f.sync_data()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    let single = events / started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir)?;
    Ok((grouped, single))
}

/// `wasmtel redact` over the same events, in a child process: events/s.
fn offline(events: &[pb::TelemetryEvent], total: usize) -> anyhow::Result<f64> {
    let dir = scratch("offline")?;
    let input = dir.join("in.jsonl");
    let mut text = String::new();
    let lines: Vec<String> = synthetic::records(events.len()).iter().map(|r| r.to_json_line()).collect();
    while bytecount(text.as_bytes()) < total {
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
    }
    std::fs::write(&input, &text)?;
    let n = bytecount(text.as_bytes());
    // Compile the module into the state folder's cache first, as a running
    // serve has it: the measurement is the redaction, not the compiler.
    std::fs::write(dir.join("one.jsonl"), &lines[0])?;
    std::process::Command::new(std::env::current_exe()?)
        .args(["redact", "--module", "builtin:redactor-pii", "--state-dir"])
        .arg(dir.join("state"))
        .stdin(std::fs::File::open(dir.join("one.jsonl"))?)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["redact", "--module", "builtin:redactor-pii", "--state-dir"])
        .arg(dir.join("state"))
        .env("WASMTEL_LOG", "error")
        .stdin(std::fs::File::open(&input)?)
        .stdout(std::fs::File::create(dir.join("out.jsonl"))?)
        .stderr(std::process::Stdio::null())
        .status()?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "wasmtel redact failed");
    anyhow::ensure!(lines_in(&dir.join("out.jsonl")) == n, "wasmtel redact lost events");
    std::fs::remove_dir_all(&dir)?;
    Ok(n as f64 / secs)
}

/// Peak RSS (MiB) of a `wasmtel serve` process after start, and after it
/// took a 4 MiB request of 500 events × 1,600 small fields.
fn pathological_rss() -> anyhow::Result<(f64, f64)> {
    let dir = scratch("rss")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    std::fs::write(
        dir.join("serve.toml"),
        format!(
            "state_dir = \"state\"\n[ingest]\nlisten = \"{addr}\"\nrequest_telemetry = false\n[[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n[[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
        ),
    )?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(dir.join("serve.toml"))
        .env("WASMTEL_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let hwm = |pid: u32| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .map_or(0.0, |kb: f64| kb / 1024.0)
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = hwm(child.id());
    let fields: serde_json::Map<String, serde_json::Value> =
        (0..800).map(|i| (format!("{i}"), serde_json::json!(i % 10))).collect();
    let metadata = serde_json::json!({ "w": fields }).to_string().into_bytes();
    let events: Vec<pb::TelemetryEvent> = (0..500)
        .map(|_| pb::TelemetryEvent { org_id: "o".into(), metadata: metadata.clone(), ..Default::default() })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut client =
            crate::proto::ingest::telemetry_service_client::TelemetryServiceClient::connect(format!("http://{addr}"))
                .await?
                .max_encoding_message_size(8 << 20);
        client.batch_emit_telemetry(pb::BatchEmitTelemetryRequest { events }).await?;
        anyhow::Ok(())
    })?;
    while lines_in(&dir.join("out.jsonl")) < 500 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "the request was not delivered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = hwm(child.id());
    child.kill()?;
    child.wait()?;
    std::fs::remove_dir_all(&dir)?;
    Ok((before, after))
}

/// Runs the benchmark and prints the figures.
pub fn run(clients: &[usize], total: usize, batch: usize) -> anyhow::Result<()> {
    let events = pb_events(batch);
    println!(
        "bench ingest: {total} events per measurement, BatchEmit of {batch} over loopback → raw log → redaction → redacted log → JSONL sink; end to end = until the sink holds every event"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let offline = offline(&events, total)?;
    println!("  wasmtel redact offline (same events, same rules)      {offline:>9.0} events/s");
    for &n in clients {
        let per_client = (total / batch / n).max(1);
        let on = measure(&runtime, &events, n, per_client, true, None)?;
        let off = measure(&runtime, &events, n, per_client, false, None)?;
        let half = measure(&runtime, &events, n, per_client, true, Some(on.end_to_end / 2.0))?;
        let (grouped, single) = group_commit_vs_per_request(events.len(), n, per_client)?;
        println!(
            "  {n:>2} clients  redaction on  {:>9.0} events/s ({:.2}x offline)  p50 {:>6.1} ms  p99 {:>6.1} ms",
            on.end_to_end,
            on.end_to_end / offline,
            on.p50,
            on.p99
        );
        println!(
            "  {n:>2} clients  redaction off {:>9.0} events/s  p50 {:>6.1} ms  p99 {:>6.1} ms  (on/off {:.2})",
            off.end_to_end,
            off.p50,
            off.p99,
            on.end_to_end / off.end_to_end
        );
        println!("  {n:>2} clients  at half load   p50 {:>6.1} ms  p99 {:>6.1} ms", half.p50, half.p99);
        println!(
            "  {n:>2} clients  appending the requests: group commit {grouped:>9.0} events/s, one fdatasync per request {single:>9.0} events/s ({:.2}x)",
            grouped / single
        );
    }
    let (before, after) = pathological_rss()?;
    println!("  a 4 MiB request (500 events × 1,600 fields): serve peak RSS {before:.0} MiB at start → {after:.0} MiB");
    Ok(())
}
