//! The audit trail: one JSONL record per redacted field and rule — which
//! event, which module (name and SHA-256), which rule, which field path, what
//! was done and how often. Never the original value: paths are rendered with
//! already-redacted keys. Files are created owner-only (0600); every write
//! is synced.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::jsonl::JsonlFile;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// When the redaction happened.
    pub ts: DateTime<Utc>,
    /// Which event (`<source>:<sequence>`).
    pub event_id: String,
    /// The redactor module's configured name.
    pub module: String,
    /// SHA-256 of the module's bytes.
    pub module_sha256: String,
    /// The rule that matched.
    pub rule_id: String,
    /// The field, e.g. `metadata.headers.authorization`.
    pub field_path: String,
    /// `value` or `key`.
    pub part: &'static str,
    /// What was done: `replaced`.
    pub action: &'static str,
    /// How many spans of this rule were replaced in the field.
    pub count: u32,
}

/// Appends audit records to `audit.jsonl` in the state folder.
pub struct AuditLog {
    file: JsonlFile,
}

impl AuditLog {
    /// Opens (creating) `<state_dir>/audit.jsonl`.
    pub fn open(state_dir: &Path) -> std::io::Result<AuditLog> {
        Ok(AuditLog { file: JsonlFile::open_private(&state_dir.join("audit.jsonl"))? })
    }

    /// The file written to.
    pub fn path(&self) -> &PathBuf {
        self.file.path()
    }

    /// Appends records and syncs them to disk (before the events they
    /// describe are delivered).
    pub fn write(&mut self, records: &[AuditRecord]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        for r in records {
            self.file.write_value(r)?;
        }
        self.file.sync()
    }
}
