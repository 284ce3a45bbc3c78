//! `wasmtel status`: what a state folder holds, read without its lock (so
//! it works beside a running `serve`): whether a process owns it, each log's
//! size and its readers' positions and lag (the redaction stage on the raw
//! log, every sink on the redacted log), the dead-letter store, and the
//! reports waiting in each report sink's outbox.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::log::{StateLock, peek};

/// One log's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogStatus {
    /// Bytes of its segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Oldest retained sequence number.
    pub first_seq: u64,
    /// Sequence number the next record gets.
    pub next_seq: u64,
    /// Each reader's position and lag (records it has not taken yet).
    pub readers: BTreeMap<String, Reader>,
}

/// One reader of a log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reader {
    /// Next sequence number it reads.
    pub position: u64,
    /// Records behind the end of the log.
    pub lag: u64,
}

/// What `wasmtel status` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The process holding the state folder's lock, if any.
    pub running_pid: Option<u32>,
    /// The raw log (accepted, not yet redacted).
    pub raw: LogStatus,
    /// The redacted log (waiting for sinks).
    pub redacted: LogStatus,
    /// Dead letters kept.
    pub dead_letters: u64,
    /// Bytes of the dead-letter store.
    pub dead_letter_bytes: u64,
    /// Dead letters rotated out so far.
    pub dead_letters_dropped: u64,
    /// Dead letters replayed so far.
    pub dead_letters_replayed: u64,
    /// Reports waiting per report sink.
    pub outbox: BTreeMap<String, usize>,
}

fn log_status(dir: &Path) -> anyhow::Result<LogStatus> {
    let summary = peek::summary(dir)?;
    let readers = summary
        .cursors
        .iter()
        .map(|(name, (position, _))| {
            (name.clone(), Reader { position: *position, lag: summary.next_seq.saturating_sub(*position) })
        })
        .collect();
    Ok(LogStatus {
        bytes: summary.bytes(),
        segments: summary.segments.len(),
        first_seq: summary.first_seq(),
        next_seq: summary.next_seq,
        readers,
    })
}

/// Reads the status of `state_dir`.
pub fn read(state_dir: &Path) -> anyhow::Result<Status> {
    if !state_dir.exists() {
        anyhow::bail!("{} does not exist (is it the config's state_dir?)", state_dir.display());
    }
    let dead = crate::dead_letter::counts(state_dir)?;
    let mut outbox = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(state_dir.join("outbox")) {
        for entry in entries.flatten() {
            let pending = std::fs::read_dir(entry.path().join("pending"))
                .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
                .unwrap_or(0);
            outbox.insert(entry.file_name().to_string_lossy().into_owned(), pending);
        }
    }
    Ok(Status {
        running_pid: StateLock::holder(state_dir),
        raw: log_status(&crate::topology::log_dir(state_dir, "raw"))?,
        redacted: log_status(&crate::topology::log_dir(state_dir, "redacted"))?,
        dead_letters: dead.kept,
        dead_letter_bytes: dead.bytes,
        dead_letters_dropped: dead.dropped,
        dead_letters_replayed: dead.replayed,
        outbox,
    })
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.running_pid {
            Some(pid) => writeln!(f, "process:      running (pid {pid})")?,
            None => writeln!(f, "process:      not running")?,
        }
        for (name, log) in [("raw log", &self.raw), ("redacted log", &self.redacted)] {
            writeln!(
                f,
                "{name:<13} {} bytes in {} segments, records {}..{}",
                log.bytes, log.segments, log.first_seq, log.next_seq
            )?;
            for (reader, r) in &log.readers {
                writeln!(f, "  {reader:<24} at {:>10}  lag {:>8}", r.position, r.lag)?;
            }
        }
        writeln!(
            f,
            "dead letters: {} kept ({} bytes), {} rotated out, {} replayed",
            self.dead_letters, self.dead_letter_bytes, self.dead_letters_dropped, self.dead_letters_replayed
        )?;
        for (sink, n) in &self.outbox {
            writeln!(f, "outbox {sink}: {n} report(s) waiting")?;
        }
        Ok(())
    }
}
