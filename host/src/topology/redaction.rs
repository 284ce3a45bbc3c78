//! The redaction stage: sources → redactor chain → redacted log, with the
//! dead-letter store and the audit trail beside it.
//!
//! One driver thread reads batches from the sources (the raw log first,
//! then the mode's own source) and hands them to a pool of worker threads,
//! which decode, check, redact and encode them — the CPU part, on every
//! core. The driver takes the results back in input order and, for each
//! group of finished batches, writes the dead letters (synced), the audit
//! records (synced), then the redacted events (one group commit), and only
//! then lets the sources move their positions. So an event leaves its source
//! only once it is durable downstream; a crash in between re-reads it, and
//! [`RedactionStage::run`] skips what the redacted log already holds (each
//! redacted record carries its source position), so nothing is written
//! twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{AuditLog, AuditRecord};
use crate::dead_letter::{DeadLetter, DeadLetterStore, Stage};
use crate::event::codec::RawEvent;
use crate::event::codec::{self, NO_ORIGIN};
use crate::log::{Item, Log, LogError};
use crate::sources::{Input, Poll, Source, SourceBatch};
use crate::stats::Stats;
use crate::transforms::redact::{Document, EncodedRecord, LineRecord, Outcome, Packed, RedactionChain, Rejected};

use super::StageError;
use super::health::Health;

/// The stage's name in health reports.
pub const STAGE: &str = "redaction";

/// Events per batch read from a source.
pub const BATCH_EVENTS: usize = 1024;

/// What one worker made of one batch.
struct Done {
    token: u64,
    source: usize,
    dead: Vec<DeadLetter>,
    audit: Vec<AuditRecord>,
    redacted: Vec<Vec<u8>>,
    stats: Stats,
}

/// A batch for a worker, and where to put the result.
struct Job {
    batch: SourceBatch,
    source: usize,
    source_name: String,
    reply: SyncSender<Done>,
}

/// Everything the stage writes to.
pub struct Outputs {
    /// The redacted log.
    pub redacted: Arc<Log>,
    /// The dead-letter store.
    pub dead: Arc<DeadLetterStore>,
    /// The audit trail.
    pub audit: Arc<Mutex<AuditLog>>,
    /// Shared counters.
    pub stats: Arc<Mutex<Stats>>,
    /// Shared health.
    pub health: Arc<Health>,
}

/// The redaction stage.
pub struct RedactionStage {
    /// The redactors.
    pub chain: RedactionChain,
    /// Worker threads.
    pub threads: usize,
    /// Where results go.
    pub outputs: Outputs,
}

/// Why [`RedactionStage::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum StageEnd {
    /// Every source reached its end.
    Exhausted,
    /// Asked to stop.
    Stopped,
}

impl RedactionStage {
    /// Runs until every source has ended or `stop` is set (then finishes the
    /// batches in flight). An error leaves the sources' positions at the
    /// last durable batch; the caller restarts with fresh sources.
    pub fn run(&self, sources: &mut [Box<dyn Source>], stop: &AtomicBool) -> Result<StageEnd, StageError> {
        self.skip_what_is_durable(sources)?;
        let (job_tx, job_rx) = sync_channel::<Job>(self.threads * 2);
        let job_rx = Arc::new(Mutex::new(job_rx));
        std::thread::scope(|scope| {
            for i in 0..self.threads {
                let rx = Arc::clone(&job_rx);
                let chain = self.chain.clone();
                std::thread::Builder::new()
                    .name(format!("wasmtel-redact-{i}"))
                    .spawn_scoped(scope, move || worker(&chain, &rx))
                    .map_err(|e| StageError::Other(format!("cannot start a redaction thread: {e}")))?;
            }
            self.drive(sources, stop, job_tx)
        })
    }

    /// Reads, dispatches and writes back in order.
    fn drive(
        &self,
        sources: &mut [Box<dyn Source>],
        stop: &AtomicBool,
        jobs: SyncSender<Job>,
    ) -> Result<StageEnd, StageError> {
        let mut inflight: VecDeque<Receiver<Done>> = VecDeque::new();
        let mut ended = vec![false; sources.len()];
        let depth = self.threads * 2;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            while !stopping && inflight.len() < depth {
                let wait = if inflight.is_empty() { Duration::from_millis(100) } else { Duration::ZERO };
                let Some((i, batch)) = next_batch(sources, &mut ended, wait)? else { break };
                let (reply, done) = sync_channel(1);
                let job = Job { batch, source: i, source_name: sources[i].name().to_string(), reply };
                jobs.send(job).map_err(|_| StageError::Other("the redaction workers stopped".into()))?;
                inflight.push_back(done);
            }
            if inflight.is_empty() {
                if stopping {
                    return Ok(StageEnd::Stopped);
                }
                if ended.iter().all(|e| *e) {
                    return Ok(StageEnd::Exhausted);
                }
                continue;
            }
            // Write back the oldest batch, plus every later one already done.
            let mut done = Vec::new();
            let first = inflight.pop_front().expect("not empty");
            done.push(first.recv().map_err(|_| StageError::Other("a redaction worker stopped".into()))?);
            while let Some(next) = inflight.front() {
                match next.try_recv() {
                    Ok(d) => {
                        done.push(d);
                        inflight.pop_front();
                    }
                    Err(_) => break,
                }
            }
            self.write(done, sources, stop)?;
        }
    }

    /// Makes a group of finished batches durable, then commits the sources.
    fn write(&self, done: Vec<Done>, sources: &mut [Box<dyn Source>], stop: &AtomicBool) -> Result<(), StageError> {
        let o = &self.outputs;
        let dead: Vec<DeadLetter> = done.iter().flat_map(|d| d.dead.iter().cloned()).collect();
        o.dead.record(&dead)?;
        let audit: Vec<AuditRecord> = done.iter().flat_map(|d| d.audit.iter().cloned()).collect();
        o.audit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(&audit)
            .map_err(|e| StageError::Io { context: "cannot write the audit trail".into(), source: e })?;
        let payloads: Vec<&[u8]> = done.iter().flat_map(|d| d.redacted.iter().map(Vec::as_slice)).collect();
        append_when_room(&o.redacted, &payloads, &o.health, stop)?;
        for d in &done {
            sources[d.source].commit(d.token)?;
        }
        let mut stats = o.stats.lock().unwrap_or_else(|p| p.into_inner());
        for d in done {
            merge(&mut stats, d.stats);
        }
        drop(stats);
        o.health.ok(STAGE);
        Ok(())
    }

    /// Lets each source skip what the redacted log already holds from it.
    fn skip_what_is_durable(&self, sources: &mut [Box<dyn Source>]) -> Result<(), StageError> {
        let log = &self.outputs.redacted;
        let mut last = vec![None::<u64>; sources.len()];
        for base in log.segment_bases().into_iter().rev() {
            let mut reader = log.reader(base);
            let mut items = Vec::new();
            while reader.read(4096, 64 << 20, &mut items)? > 0 {
                for item in items.drain(..) {
                    let Item::Record { payload, .. } = item else { continue };
                    let Some(origin) = codec::origin(&payload) else { continue };
                    for (i, s) in sources.iter().enumerate() {
                        if origin != NO_ORIGIN && s.owns(origin) {
                            last[i] = Some(last[i].map_or(origin, |o: u64| o.max(origin)));
                        }
                    }
                }
            }
            if last.iter().any(Option::is_some) {
                break;
            }
        }
        for (s, origin) in sources.iter_mut().zip(last) {
            if let Some(origin) = origin {
                s.skip_to(origin)?;
            }
        }
        Ok(())
    }
}

/// The next batch of the first source that has one.
fn next_batch(
    sources: &mut [Box<dyn Source>],
    ended: &mut [bool],
    wait: Duration,
) -> Result<Option<(usize, SourceBatch)>, StageError> {
    let open = ended.iter().filter(|e| !**e).count().max(1) as u32;
    for (i, source) in sources.iter_mut().enumerate() {
        if ended[i] {
            continue;
        }
        match source.next_batch(BATCH_EVENTS, wait / open)? {
            Poll::Batch(b) => return Ok(Some((i, b))),
            Poll::Idle => {}
            Poll::End => ended[i] = true,
        }
    }
    Ok(None)
}

/// Appends to the redacted log, waiting while it is full (a sink is behind
/// and blocks, as configured) until there is room or the stage is stopped.
/// A group that does not fit at once is appended in halves, so a log
/// smaller than a batch still moves.
fn append_when_room(log: &Log, payloads: &[&[u8]], health: &Health, stop: &AtomicBool) -> Result<(), StageError> {
    let mut warned = false;
    let mut waited = 0;
    loop {
        match log.append(payloads) {
            Ok(_) => return Ok(()),
            Err(LogError::Full { .. }) if stop.load(Ordering::SeqCst) => return Err(StageError::Interrupted),
            Err(LogError::Full { .. }) if payloads.len() > 1 && (log.live_events() == 0 || waited >= 4) => {
                let (first, second) = payloads.split_at(payloads.len() / 2);
                append_when_room(log, first, health, stop)?;
                return append_when_room(log, second, health, stop);
            }
            Err(LogError::Full { .. }) => {
                if !warned {
                    tracing::warn!(
                        "the redacted log is full: a sink is behind; waiting for room (ingest will refuse once the raw log fills too)"
                    );
                    health.degraded(STAGE, "the redacted log is full; waiting for the sinks");
                    warned = true;
                }
                waited += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A worker thread: takes jobs until the channel closes.
fn worker(chain: &RedactionChain, jobs: &Mutex<Receiver<Job>>) {
    let mut scratch = Packed::default();
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let done = process(chain, &mut scratch, job.batch, job.source, &job.source_name);
        if job.reply.send(done).is_err() {
            return;
        }
    }
}

/// Which kind of document an input became.
#[derive(Clone, Copy)]
enum Kind {
    /// A parsed event ([`Record`]).
    Event,
    /// A JSONL line, patched in place ([`LineRecord`]).
    Line,
    /// A raw-log entry, its metadata text patched in place ([`EncodedRecord`]).
    Raw,
}

/// Redacts one batch: JSONL lines (JSONL and Kafka sources) and raw-log
/// entries (ingest) on their text, never parsed into a tree; events that
/// arrive parsed as they are. A source's batch holds one kind; a mixed one
/// keeps its order all the same.
fn process(chain: &RedactionChain, scratch: &mut Packed, batch: SourceBatch, source: usize, name: &str) -> Done {
    let mut stats = Stats { events_in: batch.inputs.len() as u64, ..Stats::default() };
    // A line without `createdAt` happened when it was read.
    let received = chrono::Utc::now();
    let mut dead = Vec::new();
    let (mut records, mut lines, mut raws) = (Vec::new(), Vec::new(), Vec::new());
    // Per input that is a document: its kind, index among its kind, origin.
    let mut order = Vec::with_capacity(batch.inputs.len());
    for input in batch.inputs {
        let malformed = match input {
            Input::Encoded { payload, origin, id } => match codec::decode_raw_event(&payload) {
                Ok(Some(raw)) => match EncodedRecord::new(RawEvent { origin, ..raw }) {
                    Ok(doc) => {
                        order.push((Kind::Raw, raws.len(), origin));
                        raws.push(doc);
                        continue;
                    }
                    Err(reason) => (id, reason, String::from_utf8_lossy(&payload).into()),
                },
                Ok(None) => (id, "a report or line in the raw log (only events belong there)".into(), String::new()),
                Err(e) => (id, e.to_string(), String::from_utf8_lossy(&payload).into()),
            },
            Input::Line { text, id, origin, rules } => {
                match LineRecord::parse(&text, id.clone(), rules.unknown, &rules.limits) {
                    Ok(line) => {
                        order.push((Kind::Line, lines.len(), origin));
                        lines.push(line);
                        continue;
                    }
                    Err(reason) => (id, reason, text.trim().to_string()),
                }
            }
            Input::Event { record, origin } => {
                order.push((Kind::Event, records.len(), origin));
                records.push(record);
                continue;
            }
            Input::Malformed { id, reason, raw } => (id, reason, raw),
        };
        let (id, reason, raw) = malformed;
        let stage = if id.starts_with("raw-log:") { Stage::Log } else { Stage::Source };
        dead.push(DeadLetter::raw(stage, name, &reason, &id, &raw));
        stats.dead_source += 1;
    }
    let mut run = Run { chain, scratch, stats: &mut stats, dead: &mut dead, audit: Vec::new() };
    let mut records =
        run.redact(records, |r| DeadLetter::event(Stage::Redact, &r.module, &r.failure.to_string(), &r.record));
    let mut lines = run.redact(lines, |r| {
        let (id, text) = r.record.into_parts();
        DeadLetter::line(Stage::Redact, &r.module, &r.failure.to_string(), &id, &text)
    });
    let mut raws = run.redact(raws, |r| {
        let reason = r.failure.to_string();
        let raw = r.record.into_raw();
        match raw.clone().into_record() {
            Ok(record) => DeadLetter::event(Stage::Redact, &r.module, &reason, &record),
            Err(e) => DeadLetter::raw(Stage::Redact, &r.module, &format!("{reason}; {e}"), &raw.id, &raw.metadata),
        }
    });
    let audit = std::mem::take(&mut run.audit);
    let mut redacted = Vec::with_capacity(order.len());
    for (kind, i, origin) in order {
        let bytes = match kind {
            Kind::Event => records[i].take().map(|e| codec::event_bytes(e.record(), origin)),
            Kind::Line => lines[i].take().map(|l| codec::line_bytes(l.id(), l.text(), origin, received)),
            Kind::Raw => raws[i].take().map(|raw| raw.to_bytes()),
        };
        redacted.extend(bytes);
    }
    stats.events_out = redacted.len() as u64;
    Done { token: batch.token, source, dead, audit, redacted, stats }
}

/// One batch's redaction: what every kind of document adds to.
struct Run<'a> {
    chain: &'a RedactionChain,
    scratch: &'a mut Packed,
    stats: &'a mut Stats,
    dead: &'a mut Vec<DeadLetter>,
    audit: Vec<AuditRecord>,
}

impl Run<'_> {
    /// Redacts `docs`; returns each one's sealed form by input index (`None`
    /// where it was rejected and dead-lettered with `letter`).
    fn redact<D: Document>(
        &mut self,
        docs: Vec<D>,
        letter: impl Fn(Rejected<D>) -> DeadLetter,
    ) -> Vec<Option<D::Sealed>> {
        let mut out: Vec<Option<D::Sealed>> = (0..docs.len()).map(|_| None).collect();
        if docs.is_empty() {
            return out;
        }
        let outcome = self.chain.redact(docs, self.scratch);
        note(&outcome, self.stats, &mut self.audit);
        for r in outcome.rejected {
            self.dead.push(letter(r));
            self.stats.dead_redact += 1;
        }
        for (sealed, i) in outcome.passed.into_iter().zip(outcome.passed_index) {
            out[i] = Some(sealed);
        }
        out
    }
}

/// Counts an outcome's findings and failed calls, and takes its audit records.
fn note<D: Document>(outcome: &Outcome<D>, stats: &mut Stats, audit: &mut Vec<AuditRecord>) {
    for (module, kind) in &outcome.failed_calls {
        tracing::warn!(module, kind, "a redactor call failed; narrowing it down to the events that cause it");
        *stats.guest_failures.entry((*kind).to_string()).or_default() += 1;
    }
    for (rule, n) in &outcome.findings_per_rule {
        *stats.findings.entry(rule.clone()).or_default() += n;
    }
    audit.extend(outcome.audit.iter().cloned());
}

/// Adds `from` to `into`.
pub fn merge(into: &mut Stats, from: Stats) {
    into.events_in += from.events_in;
    into.events_out += from.events_out;
    into.dead_source += from.dead_source;
    into.dead_redact += from.dead_redact;
    into.dead_sink += from.dead_sink;
    for (k, v) in from.findings {
        *into.findings.entry(k).or_default() += v;
    }
    for (k, v) in from.guest_failures {
        *into.guest_failures.entry(k).or_default() += v;
    }
}
