//! `wasmtel bench kafka` and `wasmtel bench loki`: delivery throughput.
//!
//! Kafka: the same synthetic events produced (a) by a bare rdkafka producer
//! with the sink's exact settings (no wasmtel pipeline), (b) through the
//! Kafka sink with redaction off, (c) through redaction (the WASM
//! redactor-pii) and the Kafka sink — into the same broker, in one run; the
//! ratios are against (a), per round, and reported as min/median/max over
//! the rounds (a single round is at the mercy of the broker). Loki: the
//! same events encoded and pushed to the Loki stand-in as snappy protobuf
//! and as JSON.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::synthetic;
use crate::config::Limits;
use crate::event::Record;
use crate::guard::Redacted;
use crate::runtime::redactor::RedactorModule;
use crate::runtime::{ModuleSource, Runtime, RuntimeOptions};
use crate::sinks::kafka::{KafkaConfig, KafkaSink};
use crate::sinks::{EventSink, Item};
use crate::transforms::redact::{FindingSource, NativeRedactor, Packed, RedactionChain};

fn redactor_chain() -> anyhow::Result<RedactionChain> {
    let runtime = Runtime::new(RuntimeOptions::default())?;
    let source = ModuleSource::resolve("redactor-pii", "builtin:redactor-pii", None)?;
    let module =
        RedactorModule::new(runtime, source, Limits { deadline_ms: 10_000, memory_mib: 256 }, Default::default())?;
    Ok(RedactionChain::new(vec![Arc::new(module)]))
}

/// `records` through a redactor with no rules: what a sink gets when the
/// redactors find nothing (the only way to a [`Redacted`] is the chain).
fn unchanged(records: Vec<Record>) -> Vec<Redacted> {
    let nothing: Arc<dyn FindingSource> = Arc::new(NativeRedactor::new(pii_rules::RuleSet::empty()));
    RedactionChain::new(vec![nothing]).redact(records, &mut Packed::default()).passed
}

/// Runs the Kafka benchmark against `brokers`/`topic` and prints the figures.
pub fn kafka(brokers: &str, topic: &str, events: usize, batch: usize) -> anyhow::Result<()> {
    let input = synthetic::records(events);
    let config: KafkaConfig = toml::from_str(&format!("brokers = {brokers:?}\ntopic = {topic:?}"))?;
    println!(
        "bench kafka: {events} synthetic events into {topic} on {brokers} (acks=all, idempotent, {} compression, linger {} ms; the sink takes batches of {batch}; {ROUNDS} rounds)",
        config.compression, config.linger_ms
    );

    // (a) A bare producer, same settings, same payloads.
    let producer: FutureProducer = config.client_config().create()?;
    let payloads: Vec<(String, String)> = input.iter().map(|r| (r.event.org_id.clone(), r.to_json_line())).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let bare_run = || -> anyhow::Result<f64> {
        runtime.block_on(async {
            let start = Instant::now();
            let mut waiting = Vec::with_capacity(payloads.len());
            for (key, value) in &payloads {
                let mut record = FutureRecord::to(topic).key(key.as_str()).payload(value.as_str());
                loop {
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            waiting.push(delivery);
                            break;
                        }
                        Err((_, r)) => {
                            record = r;
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        }
                    }
                }
            }
            for w in waiting {
                w.await.map_err(|_| anyhow::anyhow!("cancelled"))?.map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(start.elapsed().as_secs_f64())
        })
    };
    let rate = |secs: f64| events as f64 / secs;
    let mut sink = KafkaSink::new(config.clone())?;
    let chain = redactor_chain()?;
    let mut scratch = Packed::default();
    let sealed: Vec<Item> = unchanged(input.clone()).into_iter().map(Item::Event).collect();
    let mut rounds: Vec<[f64; 3]> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // The broker slows as its storage grows: each round measures all
        // three back to back, so a round's ratios compare like with like.
        let bare = bare_run()?;
        // (b) The sink, redaction off.
        let start = Instant::now();
        for chunk in sealed.chunks(batch) {
            let sent = runtime.block_on(sink.send(chunk))?;
            anyhow::ensure!(sent.refused.is_empty() && sent.retry.is_empty(), "deliveries failed: {sent:?}");
        }
        let off = start.elapsed().as_secs_f64();
        // (c) Redaction (WASM) + the sink.
        let start = Instant::now();
        for chunk in input.chunks(batch) {
            let outcome = chain.redact(chunk.to_vec(), &mut scratch);
            if let Some(r) = outcome.rejected.first() {
                anyhow::bail!("{}", r.failure);
            }
            let items: Vec<Item> = outcome.passed.into_iter().map(Item::Event).collect();
            let sent = runtime.block_on(sink.send(&items))?;
            anyhow::ensure!(sent.refused.is_empty() && sent.retry.is_empty(), "deliveries failed: {sent:?}");
        }
        let on = start.elapsed().as_secs_f64();
        println!(
            "  round {}: bare producer {:>8.0}/s  sink {:>8.0}/s  sink+redaction {:>8.0}/s",
            round + 1,
            rate(bare),
            rate(off),
            rate(on)
        );
        rounds.push([bare, off, on]);
    }
    let spread = |ratio: &dyn Fn(&[f64; 3]) -> f64| {
        let mut r: Vec<f64> = rounds.iter().map(ratio).collect();
        r.sort_by(f64::total_cmp);
        (r[0], r[r.len() / 2], r[r.len() - 1])
    };
    let (min, median, max) = spread(&|r| r[0] / r[1]);
    println!("  kafka sink, redaction off      vs bare producer: median {median:.2}x (min {min:.2}, max {max:.2})");
    let (min, median, max) = spread(&|r| r[0] / r[2]);
    println!("  kafka sink, redaction on (wasm) vs bare producer: median {median:.2}x (min {min:.2}, max {max:.2})");
    Ok(())
}

/// Rounds of `bench kafka`: the broker's noise is larger than a single
/// round's difference, so the ratios are reported as min/median/max.
const ROUNDS: usize = 5;

/// Runs the Loki benchmark against the in-process stand-in.
pub fn loki(events: usize) -> anyhow::Result<()> {
    use crate::devtools::loki::LokiStub;
    use crate::sinks::loki::service::LokiClient;
    use crate::sinks::loki::{LokiConfig, encode};

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stub = runtime.block_on(LokiStub::start())?;
    let now = chrono::Utc::now();
    let records = synthetic::records(events)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.event.created_at = now - chrono::Duration::milliseconds((events - i) as i64);
            r
        })
        .collect();
    let sealed: Vec<Redacted> = unchanged(records);
    let sealed: Vec<&Redacted> = sealed.iter().collect();
    println!("bench loki: {events} events pushed to the Loki stand-in on {} (batches of 1000)", stub.addr);
    let mut figures = Vec::new();
    for encoding in ["protobuf", "json"] {
        stub.state().clear();
        let config: LokiConfig = toml::from_str(&format!("endpoint = {:?}\nencoding = {encoding:?}", stub.endpoint()))?;
        let client = LokiClient::new(&config)?;
        let start = Instant::now();
        let (entries, refused) = encode::prepare(&sealed, &config, chrono::Utc::now());
        anyhow::ensure!(refused.is_empty(), "entries refused: {}", refused[0].1);
        let outcome = runtime.block_on(client.deliver(&entries));
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(outcome.refused.is_empty() && outcome.undelivered.is_empty(), "push failed");
        anyhow::ensure!(
            stub.state().lines().len() == events,
            "the stand-in stored {} of {events}",
            stub.state().lines().len()
        );
        let refs: Vec<&encode::Entry> = entries.iter().take(1000).collect();
        let body = if encoding == "protobuf" { encode::protobuf_body(&refs) } else { encode::json_body(&refs, false) };
        println!(
            "  {encoding:<9} {:>9.0} events/s  {:>6.0} bytes/event on the wire  ({} pushes)",
            events as f64 / secs,
            body.len() as f64 / refs.len() as f64,
            outcome.pushes
        );
        figures.push(secs);
    }
    println!("  protobuf is {:.2}x the speed of JSON", figures[1] / figures[0]);
    Ok(())
}
