//! The TOML configuration: its types, defaults and loading.
//!
//! One file configures a run. Every error names the file, the key (as a path
//! such as `redactors[0].deadline_ms`) and what was expected, so an operator
//! can fix it without reading the source. Relative paths in the file are
//! resolved against the file's own directory.

mod types;

use std::fmt;
use std::path::{Path, PathBuf};

pub use types::*;

/// A configuration problem: which file, which key, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file being read.
    pub file: PathBuf,
    /// The key path, e.g. `redactors[0].module`; empty for whole-file errors.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// Creates an error for `key` in `file`.
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { file: file.to_path_buf(), key: key.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config error in {}: {}", self.file.display(), self.message)
        } else {
            write!(f, "config error in {}, key `{}`: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A loaded configuration plus where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed settings, with relative paths already resolved.
    pub config: Config,
    /// The file it was read from.
    pub file: PathBuf,
}

/// Reads, parses and checks a configuration file.
pub fn load(file: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, "", format!("cannot read the file: {e} (check the --config path)")))?;
    parse(file, &text)
}

/// Parses configuration text as if read from `file` (used for relative paths
/// and error messages).
pub fn parse(file: &Path, text: &str) -> Result<LoadedConfig, ConfigError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|r| format!(" (line {})", text[..r.start.min(text.len())].matches('\n').count() + 1))
            .unwrap_or_default()
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        ConfigError::new(file, "", format!("not valid TOML: {}{}", e.message().trim(), line_of(e.span())))
    })?;
    let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        ConfigError::new(file, key, format!("{}{}", inner.message().trim(), line_of(inner.span())))
    })?;
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    config.resolve_paths(base);
    if let Some(capacity) = config.ingest.as_ref().and_then(|i| i.queue_capacity) {
        tracing::warn!(file = %file.display(), "ingest.queue_capacity is deprecated: set [log] max_events instead");
        config.log.max_events = capacity;
    }
    config.validate(file)?;
    Ok(LoadedConfig { config, file: file.to_path_buf() })
}
