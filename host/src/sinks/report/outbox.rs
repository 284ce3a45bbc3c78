//! The outbox between collectors and a report sink: every report is
//! written to disk before delivery starts, and removed only once the
//! receiver has taken all of it, so a crash or an unreachable endpoint never
//! loses one. Progress (report ID, batches sent) is saved after every
//! accepted batch so a later run resumes instead of starting over.
//!
//! Layout: `<state_dir>/outbox/<sink>/pending/*.json` (oldest first by name;
//! the report, written once) each with a small `*.progress` file beside it
//! (rewritten after every accepted batch, so progress costs the same for a
//! report of ten counts or ten thousand), and `.../rejected/*.json` (refused
//! as invalid: kept for inspection, not retried). Writes are atomic
//! (temporary file + rename).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// A report on its way to one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReport {
    /// The report.
    pub report: Report,
    /// The report ID to continue with, once the receiver issued one.
    pub report_id: Option<String>,
    /// Count batches the receiver accepted under `report_id`.
    pub batches_sent: usize,
    /// Calls made for it so far (all runs).
    pub attempts: u32,
    /// Why the last delivery stopped, if it did.
    pub last_error: Option<String>,
}

/// The part of a [`PendingReport`] that changes during delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    report_id: Option<String>,
    batches_sent: usize,
    attempts: u32,
    last_error: Option<String>,
}

impl PendingReport {
    /// A report nothing has been sent of yet.
    pub fn new(report: Report) -> PendingReport {
        PendingReport { report, report_id: None, batches_sent: 0, attempts: 0, last_error: None }
    }
}

/// One sink's outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    pending: PathBuf,
    rejected: PathBuf,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Outbox {
    /// Opens (creating) the outbox of sink `name` under `state_dir`.
    pub fn open(state_dir: &Path, name: &str) -> std::io::Result<Outbox> {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let base = state_dir.join("outbox").join(safe);
        let outbox = Outbox { pending: base.join("pending"), rejected: base.join("rejected") };
        std::fs::create_dir_all(&outbox.pending)?;
        std::fs::create_dir_all(&outbox.rejected)?;
        Ok(outbox)
    }

    /// Adds a report; returns its file.
    pub fn push(&self, item: &PendingReport) -> std::io::Result<PathBuf> {
        let name = format!(
            "{:013}-{:06}-{}.json",
            chrono::Utc::now().timestamp_millis(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000,
            std::process::id()
        );
        let path = self.pending.join(name);
        write_atomic(&path, &serde_json::to_vec(&item.report)?)?;
        self.update(&path, item)?;
        Ok(path)
    }

    /// Pending reports, oldest first.
    pub fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.pending)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads one pending report with its progress.
    pub fn load(&self, path: &Path) -> std::io::Result<PendingReport> {
        let invalid = |e: serde_json::Error| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
        };
        let report = serde_json::from_slice(&std::fs::read(path)?).map_err(invalid)?;
        let progress: Progress = match std::fs::read(path.with_extension("progress")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(invalid)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Progress::default(),
            Err(e) => return Err(e),
        };
        Ok(PendingReport {
            report,
            report_id: progress.report_id,
            batches_sent: progress.batches_sent,
            attempts: progress.attempts,
            last_error: progress.last_error,
        })
    }

    /// Saves delivery progress (not the report, which does not change), atomically.
    pub fn update(&self, path: &Path, item: &PendingReport) -> std::io::Result<()> {
        let progress = Progress {
            report_id: item.report_id.clone(),
            batches_sent: item.batches_sent,
            attempts: item.attempts,
            last_error: item.last_error.clone(),
        };
        write_atomic(&path.with_extension("progress"), &serde_json::to_vec(&progress)?)
    }

    /// Removes a delivered report.
    pub fn complete(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)?;
        match std::fs::remove_file(path.with_extension("progress")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves a report the receiver refused as invalid to `rejected/`
    /// (report and progress in one file, with the reason).
    pub fn reject(&self, path: &Path, item: &PendingReport) -> std::io::Result<PathBuf> {
        let target = self.rejected.join(path.file_name().unwrap_or_default());
        write_atomic(&target, &serde_json::to_vec_pretty(item)?)?;
        self.complete(path)?;
        Ok(target)
    }

    /// Reports refused as invalid.
    pub fn rejected(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&self.rejected)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        Ok(files)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
