//! The one delivery loop every event sink runs in: read the redacted log at
//! the sink's own durable cursor, hand the sink a batch, dead-letter what it
//! refuses, send again (with backoff, for as long as it takes) what it could
//! not deliver now, and move the cursor only once the batch is settled. A
//! slow or down sink never holds up another: each has its own cursor and
//! task, and the log keeps its events until it catches up.
//!
//! When the log is full because this sink is the one behind, its
//! `when_full` policy decides: `block` waits (ingest then answers with a
//! retryable status), `dead_letter` moves its oldest events to the
//! dead-letter store (counted, replayable) so everything else goes on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Stream, UnknownFields, WhenFull};
use crate::dead_letter::{DeadLetter, DeadLetterStore, Stage};
use crate::event::codec::{self, Entry};
use crate::event::{Event, Record};
use crate::guard::{Redacted, RedactedLine};
use crate::log::{Cursor, Item as LogItem, Log};
use crate::sinks::{EventSink, Item};
use crate::stats::Stats;

use super::StageError;
use super::health::Health;

/// Most items per batch handed to a sink.
pub const BATCH_EVENTS: usize = 1000;
/// Most bytes read from the log per batch.
pub const BATCH_BYTES: usize = 8 << 20;
/// Longest wait between two sends to a destination that is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where the process is in its life, as the delivery tasks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Deliver as events arrive.
    Running,
    /// Nothing more will arrive: deliver what is there, until caught up or
    /// `until` passes; what is left stays in the log for the next start.
    Drain {
        /// The deadline, if any.
        until: Option<Instant>,
    },
}

impl Phase {
    fn expired(self) -> bool {
        matches!(self, Phase::Drain { until: Some(t) } if Instant::now() >= t)
    }
}

/// One sink's delivery task.
pub struct Delivery {
    /// The sink.
    pub sink: Box<dyn EventSink>,
    /// The redacted log.
    pub log: Arc<Log>,
    /// The dead-letter store.
    pub dead: Arc<DeadLetterStore>,
    /// Shared health.
    pub health: Arc<Health>,
    /// Shared counters.
    pub stats: Arc<Mutex<Stats>>,
    /// Its policy when the log is full because it is behind.
    pub when_full: WhenFull,
}

impl Delivery {
    /// Delivers until the phase says it is done. Returns `Err` on a fault of
    /// the sink, the log or the dead-letter store (the caller restarts it).
    pub async fn run(&mut self, mut phase: tokio::sync::watch::Receiver<Phase>) -> Result<(), StageError> {
        let name = self.sink.name().to_string();
        let mut cursor = self.log.cursor(&name)?;
        // Saved at once, so `wasmtel status` sees every sink's lag.
        cursor.commit(cursor.position(), cursor.aux())?;
        let skip = self.sink.resume(cursor.aux())?;
        if skip > 0 {
            let position = self.position_after(cursor.position(), skip)?;
            cursor.commit(position, self.sink.checkpoint())?;
        }
        let mut reader = self.log.reader(cursor.position());
        let mut durable = self.log.subscribe();
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if reader.read(BATCH_EVENTS, BATCH_BYTES, &mut raw)? == 0 {
                let now = *phase.borrow();
                if now != Phase::Running && (reader.position() >= self.log.durable_seq() || now.expired()) {
                    return Ok(());
                }
                tokio::select! {
                    _ = durable.changed() => {}
                    _ = phase.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
            let items = self.decode(std::mem::take(&mut raw)).await?;
            if !self.settle(items, &cursor, &mut phase).await? {
                return Ok(());
            }
            cursor.commit(reader.position(), self.sink.checkpoint())?;
            self.health.ok(&name);
        }
    }

    /// The log position after the first `skip` items this sink takes, from
    /// `from` (they are already at the destination).
    fn position_after(&self, from: u64, mut skip: u64) -> Result<u64, StageError> {
        let mut reader = self.log.reader(from);
        let mut raw = Vec::new();
        while skip > 0 {
            raw.clear();
            if reader.read(1, BATCH_BYTES, &mut raw)? == 0 {
                break;
            }
            if let Some(LogItem::Record { payload, .. }) = raw.first() {
                let takes = match codec::decode(payload) {
                    Ok(Entry::Event { .. } | Entry::Line { .. }) => self.sink.accepts(Stream::Events),
                    Ok(Entry::Report(_)) => self.sink.accepts(Stream::Reports),
                    Err(_) => false,
                };
                if takes {
                    skip -= 1;
                }
            }
        }
        Ok(reader.position())
    }

    /// Log items → sink items; unreadable ones are dead-lettered.
    async fn decode(&self, raw: Vec<LogItem>) -> Result<Vec<Item>, StageError> {
        let mut items = Vec::with_capacity(raw.len());
        let mut dead = Vec::new();
        for item in raw {
            match item {
                LogItem::Record { seq, payload } => match codec::decode(&payload) {
                    Ok(Entry::Event { record, .. }) if self.sink.accepts(Stream::Events) => {
                        items.push(Item::Event(Redacted::seal(record)))
                    }
                    Ok(Entry::Line { id, text, received, .. }) if self.sink.accepts(Stream::Events) => {
                        if self.sink.takes_lines() {
                            items.push(Item::Line(RedactedLine::seal(id, text)));
                        } else {
                            match line_record(id, &text, received) {
                                Ok(record) => items.push(Item::Event(Redacted::seal(record))),
                                Err((id, reason)) => {
                                    dead.push(DeadLetter::line(Stage::Sink, self.sink.name(), &reason, &id, &text))
                                }
                            }
                        }
                    }
                    Ok(Entry::Report(report)) if self.sink.accepts(Stream::Reports) => items.push(Item::Report(report)),
                    Ok(_) => {}
                    Err(e) => dead.push(DeadLetter::raw(
                        Stage::Log,
                        "redacted-log",
                        &e.to_string(),
                        &format!("redacted-log:{seq}"),
                        &String::from_utf8_lossy(&payload),
                    )),
                },
                LogItem::Corrupt { segment, offset, len, reason, bytes } => dead.push(DeadLetter::raw(
                    Stage::Log,
                    "redacted-log",
                    &format!("{len} unreadable bytes in the redacted log: {reason}"),
                    &format!("redacted-log:{}:{offset}", segment.file_name().unwrap_or_default().to_string_lossy()),
                    &String::from_utf8_lossy(&bytes),
                )),
            }
        }
        self.dead_letter(dead).await?;
        Ok(items)
    }

    /// Sends `items` until each is delivered or dead-lettered; false if the
    /// task must stop first (what is left stays in the log).
    async fn settle(
        &mut self,
        items: Vec<Item>,
        cursor: &Cursor,
        phase: &mut tokio::sync::watch::Receiver<Phase>,
    ) -> Result<bool, StageError> {
        let name = self.sink.name().to_string();
        let mut pending = items;
        let mut backoff = Duration::from_millis(200);
        while !pending.is_empty() {
            if self.when_full == WhenFull::DeadLetter && self.log.is_full() && self.is_behind_most(cursor) {
                let reason =
                    format!("sink {name} is behind and the redacted log is full (when_full = \"dead_letter\")");
                let dead = pending.iter().map(|i| letter(&name, &reason, i)).collect();
                self.count(|s| s.dead_lettered += pending.len() as u64);
                self.dead_letter(dead).await?;
                return Ok(true);
            }
            let sent = self.sink.send(&pending).await?;
            let refused: Vec<DeadLetter> = sent.refused.iter().map(|(i, r)| letter(&name, r, &pending[*i])).collect();
            let delivered = pending.len() - sent.refused.len() - sent.retry.len();
            self.count(|s| {
                s.sent += delivered as u64;
                s.dead_lettered += refused.len() as u64;
            });
            self.dead_letter(refused).await?;
            let Some((_, reason)) = sent.retry.first() else { return Ok(true) };
            self.health.degraded(&name, reason);
            self.count(|s| s.retries += 1);
            tracing::warn!(sink = %name, waiting = sent.retry.len(), "not delivered now ({reason}); sending again in {backoff:?}");
            pending = sent.retry.iter().map(|(i, _)| pending[*i].clone()).collect();
            let deadline = tokio::time::Instant::now() + backoff;
            loop {
                if phase.borrow().expired() {
                    return Ok(false);
                }
                if self.when_full == WhenFull::DeadLetter && self.log.is_full() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = phase.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Ok(true)
    }

    /// Whether this sink's cursor is the furthest behind (so moving it frees
    /// room).
    fn is_behind_most(&self, cursor: &Cursor) -> bool {
        self.log.next_seq().saturating_sub(cursor.position()) >= self.log.live_events()
    }

    fn count(&self, f: impl FnOnce(&mut crate::stats::SinkStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(stats.per_sink.entry(self.sink.name().to_string()).or_default());
    }

    /// Writes dead letters (synced) off the async threads.
    async fn dead_letter(&self, letters: Vec<DeadLetter>) -> Result<(), StageError> {
        if letters.is_empty() {
            return Ok(());
        }
        let n = letters.len() as u64;
        let dead = Arc::clone(&self.dead);
        tokio::task::spawn_blocking(move || dead.record(&letters))
            .await
            .map_err(|e| StageError::Other(format!("the dead-letter writer stopped: {e}")))??;
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).dead_sink += n;
        Ok(())
    }
}

/// A redacted line in the event model, for a sink that takes events: read
/// as the source read it (unknown top-level fields were refused there
/// already, or are kept in metadata), a missing `createdAt` being when it
/// was read (so every sink and every retry see the same event).
fn line_record(id: String, text: &str, received: chrono::DateTime<chrono::Utc>) -> Result<Record, (String, String)> {
    match Event::from_json_line_with_id(text, UnknownFields::Preserve, received) {
        Ok((_, event)) => Ok(Record { id, event }),
        Err(e) => Err((id, format!("the redacted line cannot be read as an event: {e}"))),
    }
}

/// A dead letter for an item a sink did not take.
fn letter(sink: &str, reason: &str, item: &Item) -> DeadLetter {
    match item {
        Item::Event(e) => DeadLetter::event(Stage::Sink, sink, reason, e.record()),
        Item::Line(l) => DeadLetter::line(Stage::Sink, sink, reason, l.id(), l.text()),
        Item::Report(r) => DeadLetter::raw(
            Stage::Sink,
            sink,
            reason,
            "report",
            &serde_json::to_string(r).expect("a report serializes"),
        ),
    }
}
