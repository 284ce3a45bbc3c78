//! The audit trail: one JSONL record per redacted field and rule — which
//! event, which module (name, SHA-256 and signer), which rule, which field
//! path, what was done and how often. Never the original value: paths are
//! rendered with already-redacted keys. Files are created owner-only (0600);
//! every write is synced.
//!
//! Retention: once `audit.jsonl` reaches `[audit] max_file_bytes` (default
//! 64 MiB) it is renamed to `audit.<UTC time>.jsonl` and a new file is
//! started; only the newest `keep_files` (default 10) rotated files are
//! kept, so the trail takes at most about `(keep_files + 1) ×
//! max_file_bytes` on disk. Ship rotated files elsewhere if policy needs
//! more history.

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
    /// Key id of the key that signed the module (`null` for an unsigned or
    /// builtin module).
    pub signer: Option<String>,
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

/// `[audit]` settings: how much of the trail is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Size at which `audit.jsonl` is rotated (default 64 MiB, at least 4096).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept (default 10); older ones are deleted.
    #[serde(default = "default_keep_files")]
    pub keep_files: usize,
}

fn default_max_file_bytes() -> u64 {
    64 << 20
}
fn default_keep_files() -> usize {
    10
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { max_file_bytes: default_max_file_bytes(), keep_files: default_keep_files() }
    }
}

impl AuditConfig {
    /// Checks the ranges (`file` names the config in errors).
    pub fn validate(&self, file: &Path) -> Result<(), crate::config::ConfigError> {
        if self.max_file_bytes < 4096 {
            return Err(crate::config::ConfigError::new(
                file,
                "audit.max_file_bytes",
                format!("found {}, expected at least 4096", self.max_file_bytes),
            ));
        }
        if self.keep_files > 100_000 {
            return Err(crate::config::ConfigError::new(
                file,
                "audit.keep_files",
                format!("found {}, expected at most 100000", self.keep_files),
            ));
        }
        Ok(())
    }
}

/// Appends audit records to `audit.jsonl` in the state folder, rotating it.
pub struct AuditLog {
    file: JsonlFile,
    dir: PathBuf,
    config: AuditConfig,
    bytes: u64,
}

impl AuditLog {
    /// Opens (creating) `<state_dir>/audit.jsonl` with the default retention.
    pub fn open(state_dir: &Path) -> std::io::Result<AuditLog> {
        AuditLog::open_with(state_dir, AuditConfig::default())
    }

    /// Opens (creating) `<state_dir>/audit.jsonl`, rotating per `config`.
    pub fn open_with(state_dir: &Path, config: AuditConfig) -> std::io::Result<AuditLog> {
        let path = state_dir.join("audit.jsonl");
        let file = JsonlFile::open_private(&path)?;
        let bytes = std::fs::metadata(&path)?.len();
        Ok(AuditLog { file, dir: state_dir.to_path_buf(), config, bytes })
    }

    /// Rotated files, oldest first.
    pub fn rotated(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit.") && n.ends_with(".jsonl") && n != "audit.jsonl")
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let target = self.dir.join(format!("audit.{stamp}.jsonl"));
        self.file.sync()?;
        std::fs::rename(self.file.path(), &target)?;
        self.file = JsonlFile::open_private(&self.dir.join("audit.jsonl"))?;
        self.bytes = 0;
        let rotated = self.rotated()?;
        for old in &rotated[..rotated.len().saturating_sub(self.config.keep_files)] {
            std::fs::remove_file(old)?;
        }
        std::fs::File::open(&self.dir)?.sync_all()
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
        if self.bytes >= self.config.max_file_bytes {
            self.rotate()?;
        }
        for r in records {
            let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
            self.bytes += line.len() as u64 + 1;
            self.file.write_line(&line)?;
        }
        self.file.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> AuditRecord {
        AuditRecord {
            ts: Utc::now(),
            event_id: format!("e{i}"),
            module: "pii".into(),
            module_sha256: "00".repeat(32),
            signer: None,
            rule_id: "email".into(),
            field_path: "metadata.email".into(),
            part: "value",
            action: "replaced",
            count: 1,
        }
    }

    #[test]
    fn the_trail_rotates_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig { max_file_bytes: 4096, keep_files: 2 };
        let mut audit = AuditLog::open_with(dir.path(), config).unwrap();
        for i in 0..400 {
            audit.write(&[record(i)]).unwrap();
        }
        let rotated = audit.rotated().unwrap();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        let mut total = std::fs::metadata(audit.path()).unwrap().len();
        for f in &rotated {
            let len = std::fs::metadata(f).unwrap().len();
            assert!((4096..4096 + 512).contains(&len), "{len}");
            total += len;
        }
        assert!(total < 3 * (4096 + 512), "bounded: {total}");
        // The newest records are in the current file, whole lines only.
        let text = std::fs::read_to_string(audit.path()).unwrap();
        assert!(text.ends_with("\n") && text.contains("\"eventId\":\"e399\""), "{text}");
        use std::os::unix::fs::PermissionsExt;
        for f in rotated.iter().chain([audit.path()]) {
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
