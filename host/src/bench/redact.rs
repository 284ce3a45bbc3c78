//! `wasmtel bench redact`: the redactor-pii rules through WASM (packed
//! batches, full host path: pack, call, validate, apply) against the same
//! rules compiled natively behind the same interface, in the same process on
//! the same events. Prints events/s, MB/s and the ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Limits, UnknownFields};
use crate::event::limits::EventLimits;
use crate::event::{Event, Record};
use crate::runtime::redactor::RedactorModule;
use crate::runtime::{ModuleSource, Runtime, RuntimeOptions};
use crate::transforms::redact::{FindingSource, LineRecord, NativeRedactor, Packed, RedactionChain, pack};

use super::synthetic;

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured.
    pub label: String,
    /// Events per second.
    pub events_per_sec: f64,
    /// Input megabytes (JSON form) per second.
    pub mb_per_sec: f64,
    /// Findings produced (to check both sides did the same work).
    pub findings: u64,
}

/// Runs the benchmark and prints the figures.
pub fn run(events: usize, batch_size: usize) -> anyhow::Result<Vec<Figure>> {
    let input = synthetic::records(events);
    let bytes: usize = input.iter().map(|r| r.to_json_line().len() + 1).sum();
    println!(
        "bench redact: {events} synthetic events, {:.0} bytes/event on average, batches of {batch_size}",
        bytes as f64 / events as f64
    );

    let runtime = Runtime::new(RuntimeOptions::default())?;
    let source = ModuleSource::resolve("redactor-pii", "builtin:redactor-pii", None)?;
    // Generous limits: the benchmark measures speed, not the sandbox's limits.
    let limits = Limits { deadline_ms: 10_000, memory_mib: 256 };
    let wasm: Arc<dyn FindingSource> = Arc::new(RedactorModule::new(runtime, source, limits, Default::default())?);
    let native: Arc<dyn FindingSource> = Arc::new(NativeRedactor::new(pii_rules::RuleSet::all()));

    let sources = [native, wasm];
    let mut figures = Vec::new();
    let mut outputs = Vec::new();
    let labels = ["native (same rules, no sandbox)", "wasm (redactor-pii component)"];
    for (label, redactor) in labels.into_iter().zip(&sources) {
        let chain = RedactionChain::new(vec![redactor.clone()]);
        let (elapsed, findings, output) = measure(&chain, &input, batch_size)?;
        let secs = elapsed.as_secs_f64();
        let figure = Figure {
            label: label.to_string(),
            events_per_sec: events as f64 / secs,
            mb_per_sec: bytes as f64 / secs / 1e6,
            findings,
        };
        println!(
            "  {:<34} {:>10.0} events/s  {:>7.1} MB/s  ({findings} findings)",
            figure.label, figure.events_per_sec, figure.mb_per_sec
        );
        figures.push(figure);
        outputs.push(output);
    }
    // The scan alone (pre-packed batches, no apply): the sandbox's own cost.
    let batches: Vec<_> = input
        .chunks(batch_size)
        .map(|chunk| {
            let mut b = Packed::default();
            pack(chunk.iter(), usize::MAX, &mut b);
            b.batch
        })
        .collect();
    let mut scan_times = Vec::new();
    for (label, redactor) in [("native", &sources[0]), ("wasm", &sources[1])] {
        redactor.find(&batches[0]).map_err(|f| anyhow::anyhow!("{f}"))?;
        let start = Instant::now();
        for b in &batches {
            redactor.find(b).map_err(|f| anyhow::anyhow!("{f}"))?;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  scan only, {label:<27} {:>10.0} events/s  {:>7.1} MB/s  ({:.2} µs per call)",
            events as f64 / secs,
            bytes as f64 / secs / 1e6,
            secs * 1e6 / batches.len() as f64
        );
        scan_times.push(secs);
    }
    println!(
        "  scan-only ratio: wasm is {:.2}x slower than native (boundary crossing + sandboxed scan)",
        scan_times[1] / scan_times[0]
    );
    parse_figures(&input, bytes)?;
    line_figures(&sources, &input, bytes, batch_size)?;
    let ratio = figures[0].events_per_sec / figures[1].events_per_sec;
    println!("  ratio: wasm is {ratio:.2}x slower than native ({:.0}% of native throughput)", 100.0 / ratio);
    println!("  outputs identical: {}", if outputs[0] == outputs[1] { "yes" } else { "NO" });
    Ok(figures)
}

fn measure(
    chain: &RedactionChain,
    input: &[Record],
    batch_size: usize,
) -> anyhow::Result<(Duration, u64, Vec<String>)> {
    let mut scratch = Packed::default();
    // Warm up (instantiation, caches).
    let warm = chain.redact(input.iter().take(batch_size).cloned().collect(), &mut scratch);
    anyhow::ensure!(warm.rejected.is_empty(), "redaction failed during the warm-up");
    let mut findings = 0u64;
    let mut output = Vec::with_capacity(input.len());
    let start = Instant::now();
    for chunk in input.chunks(batch_size) {
        let outcome = chain.redact(chunk.to_vec(), &mut scratch);
        if let Some(r) = outcome.rejected.first() {
            anyhow::bail!("redaction failed during the benchmark: {}", r.failure);
        }
        findings += outcome.findings_per_rule.values().sum::<u64>();
        output.extend(outcome.passed);
    }
    let elapsed = start.elapsed();
    Ok((elapsed, findings, output.into_iter().map(|e| e.into_record().to_json_line()).collect()))
}

/// Reading the JSON lines: into `serde_json` `Value` trees and events (what
/// the redaction path does today) vs the borrowed scanner
/// ([`crate::event::scan`]) the shape-preserving path is built on.
fn parse_figures(input: &[Record], bytes: usize) -> anyhow::Result<()> {
    let lines: Vec<String> = input.iter().map(|r| r.to_json_line()).collect();
    let now = chrono::Utc::now();
    let start = Instant::now();
    for line in &lines {
        crate::event::Event::from_json_line(line, crate::config::UnknownFields::Preserve, now)?;
    }
    let tree = start.elapsed().as_secs_f64();
    let mut tokens = Vec::new();
    let start = Instant::now();
    for line in &lines {
        crate::event::scan::scan(line, &mut tokens)?;
    }
    let scanned = start.elapsed().as_secs_f64();
    for (label, secs) in [("parse into Value + Event", tree), ("borrowed scan (event::scan)", scanned)] {
        println!("  {label:<34} {:>10.0} events/s  {:>7.1} MB/s", lines.len() as f64 / secs, bytes as f64 / secs / 1e6);
    }
    println!("  borrowed scan is {:.2}x the speed of the Value parse", tree / scanned);
    Ok(())
}

/// What `wasmtel redact` does per line, minus the I/O: read the JSON line,
/// redact it, write it. The shape-preserving path ([`LineRecord`]: scan,
/// pack, patch) against the event-model path it replaced (`Value` parse
/// into an [`Event`], redact, serialize), both with each finding source.
fn line_figures(
    sources: &[Arc<dyn FindingSource>; 2],
    input: &[Record],
    bytes: usize,
    batch_size: usize,
) -> anyhow::Result<()> {
    let lines: Vec<String> = input.iter().map(|r| r.to_json_line()).collect();
    let limits = EventLimits::default();
    let mut shape = Vec::new();
    for (label, source) in [("native", &sources[0]), ("wasm", &sources[1])] {
        let chain = RedactionChain::new(vec![source.clone()]);
        let mut scratch = Packed::default();
        for (path, fast) in [("event-model path", false), ("line path", true)] {
            let start = Instant::now();
            let mut out = Vec::with_capacity(bytes + lines.len());
            for chunk in lines.chunks(batch_size) {
                if fast {
                    let docs = chunk
                        .iter()
                        .map(|l| LineRecord::parse(l, String::new(), UnknownFields::Preserve, &limits))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(anyhow::Error::msg)?;
                    let outcome = chain.redact(docs, &mut scratch);
                    anyhow::ensure!(outcome.rejected.is_empty(), "redaction failed during the benchmark");
                    for line in outcome.passed {
                        out.extend_from_slice(line.text().as_bytes());
                        out.push(b'\n');
                    }
                } else {
                    let now = chrono::Utc::now();
                    let docs = chunk
                        .iter()
                        .map(|l| {
                            let (id, event) = Event::from_json_line_with_id(l, UnknownFields::Preserve, now)?;
                            Ok(Record { id: id.unwrap_or_default(), event })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let outcome = chain.redact(docs, &mut scratch);
                    anyhow::ensure!(outcome.rejected.is_empty(), "redaction failed during the benchmark");
                    for event in outcome.passed {
                        serde_json::to_writer(&mut out, event.record())?;
                        out.push(b'\n');
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let rate = lines.len() as f64 / secs;
            println!(
                "  {:<34} {rate:>10.0} events/s  {:>7.1} MB/s",
                format!("{path}, {label}"),
                bytes as f64 / secs / 1e6
            );
            if fast {
                shape.push(rate);
            }
        }
    }
    println!(
        "  line path: wasm is {:.2}x native; lines with no finding are written byte for byte",
        shape[1] / shape[0]
    );
    Ok(())
}
